//! Errors whose Display is a short reason fit for an HTTP 400 body.

use thiserror::Error;

/// Why a body could not be read as a BidRequest.
#[derive(Debug, Error)]
pub enum ParseError {
    /// Not JSON, or JSON cut short.
    #[error("malformed JSON at line {line} column {column}: {reason}")]
    Malformed {
        line: usize,
        column: usize,
        reason: String,
    },
    /// Valid JSON, but an object or array of the request is not the right shape
    /// (e.g. `"imp": 5`). Scalar fields never cause this; they are read leniently.
    #[error("unexpected value at line {line} column {column}: {reason}")]
    Unexpected {
        line: usize,
        column: usize,
        reason: String,
    },
}

// Error messages can quote request content (an unexpected string value, say);
// keep the 400 body short.
const MAX_REASON: usize = 120;

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        // serde_json appends the position to its message; we put it first instead.
        let suffix = format!(" at line {line} column {column}");
        let mut reason = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
            reason.push('…');
        }
        match e.classify() {
            serde_json::error::Category::Data => ParseError::Unexpected {
                line,
                column,
                reason,
            },
            _ => ParseError::Malformed {
                line,
                column,
                reason,
            },
        }
    }
}

/// A required OpenRTB field is missing or broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum InvalidRequest {
    #[error("missing id")]
    MissingId,
    #[error("missing imp")]
    MissingImp,
    #[error("imp[{index}] has no id")]
    ImpWithoutId { index: usize },
    #[error("imp[{index}] has no banner, video, audio or native object")]
    ImpWithoutMedia { index: usize },
    #[error("imp[{index}] has the same id as imp[{first}]")]
    DuplicateImpId { index: usize, first: usize },
}
