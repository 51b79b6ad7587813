//! The OpenRTB 2.5/2.6 model the bidder reads and writes.
//!
//! * Requests borrow from the body ([`parse_request`]); strings are
//!   `Cow<'a, str>`, owned only when the JSON string had escapes.
//! * Reading is tolerant: unknown fields are ignored, `null` arrays are
//!   empty, code lists are plain integers so new codes pass, and scalar
//!   fields of the wrong JSON type (`"gdpr": "1"`, `"lmt": true`, `w: 300.0`,
//!   numeric ids) are coerced or read as absent instead of failing the request.
//!   Required fields are checked separately by [`BidRequest::validate`].
//! * Every `ext` stays raw; accessors such as [`Regs::gdpr`] read the 2.6
//!   field first, then the 2.5 `ext` form, and never fail.
//! * Money is integer micros (1e-6 of the currency). Floors are read from the
//!   number's exact decimal text and rounded up; bid prices are written from
//!   micros as exact decimals.

mod de;
mod error;
mod request;
mod response;

pub use error::{InvalidRequest, ParseError};
pub use request::*;
pub use response::{Bid, BidResponse, SeatBid};

/// Parses a BidRequest body, borrowing strings from it.
///
/// This only checks that the body has the request's shape; call
/// [`BidRequest::validate`] for OpenRTB's required fields.
pub fn parse_request(body: &[u8]) -> Result<BidRequest<'_>, ParseError> {
    serde_json::from_slice(body).map_err(ParseError::from)
}
