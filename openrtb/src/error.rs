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

/// Cuts a reason to [`MAX_REASON`] bytes, on a character boundary.
fn short(reason: &str) -> String {
    if reason.len() <= MAX_REASON {
        return reason.to_owned();
    }
    let mut cut = MAX_REASON;
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = reason[..cut].to_owned();
    out.push('…');
    out
}

impl ParseError {
    /// An error at byte `at` of `body` (its length for the end of input).
    /// Lines and columns count as serde_json counts them: columns in bytes
    /// from 1, and the end of input at the column after the last byte read.
    pub(crate) fn at(body: &[u8], at: usize, data: bool, reason: &str) -> Self {
        let at = at.min(body.len());
        let before = &body[..at];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1);
        let column = at - line_start + usize::from(at < body.len());
        let reason = short(reason);
        if data {
            ParseError::Unexpected {
                line,
                column,
                reason,
            }
        } else {
            ParseError::Malformed {
                line,
                column,
                reason,
            }
        }
    }
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        let (line, column) = (e.line(), e.column());
        let full = e.to_string();
        // serde_json appends the position to its message; we put it first instead.
        let suffix = format!(" at line {line} column {column}");
        let reason = short(full.strip_suffix(&suffix).unwrap_or(&full));
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
    /// The id rides in the signed notice URLs of the imp's bid: an id
    /// without bound made URLs the bidder's own server refuses (414), so
    /// a win went uncharged.
    #[error("imp[{index}] has an id of {len} bytes, more than {max}", max = crate::MAX_IMP_ID_BYTES)]
    ImpIdTooLong { index: usize, len: usize },
}
