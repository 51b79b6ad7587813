//! The OpenRTB 2.5/2.6 model the bidder reads and writes.
//!
//! * Requests borrow from the body ([`parse_request`]); strings are
//!   `Cow<'a, str>`, owned only when the JSON string had escapes.
//! * Reading is tolerant: unknown fields are ignored, `null` arrays are
//!   empty, code lists are plain integers so new codes pass, and scalar
//!   fields of the wrong JSON type (`"gdpr": "1"`, `"lmt": true`, `w: 300.0`,
//!   integer ids) are coerced or read as absent instead of failing the request.
//!   The one exception: an id the answer echoes, sent as a number whose text
//!   would not come back as sent (`1.50`, `1e3`, past 64 bits), is refused.
//!   Required fields are checked separately by [`BidRequest::validate`].
//! * Every `ext` stays raw; accessors such as [`Regs::gdpr`] read the 2.6
//!   field first, then the 2.5 `ext` form, and never fail.
//! * Money is integer micros (1e-6 of the currency). Floors are read from the
//!   number's exact decimal text and rounded up; bid prices are written from
//!   micros as exact decimals.
//!
//! ```
//! let body = br#"{"id":"r1","imp":[{"id":"1","bidfloor":1.1,"banner":{"w":300,"h":250}}],
//!                 "regs":{"ext":{"gdpr":"1"}},"user":{"ext":{"consent":"CPx"}}}"#;
//! let req = ortb::parse_request(body)?;
//! req.validate()?;
//! assert_eq!(req.imp[0].bidfloor, 1_100_000);
//! assert_eq!(req.imp[0].bidfloorcur, "USD");
//! let regs = req.regs.as_ref().expect("regs present");
//! assert_eq!(regs.gdpr(), Some(1));
//! assert_eq!(req.user.as_ref().and_then(|u| u.consent()).as_deref(), Some("CPx"));
//!
//! let bid = ortb::Bid {
//!     adm: Some("<div>ad</div>".into()),
//!     mtype: Some(1),
//!     ..ortb::Bid::new("b1", "1", 1_800_000)
//! };
//! let resp = ortb::BidResponse {
//!     id: req.id.to_string(),
//!     seatbid: vec![ortb::SeatBid { bid: vec![bid], ..Default::default() }],
//!     ..Default::default()
//! };
//! let json = serde_json::to_string(&resp)?;
//! assert!(json.contains(r#""price":1.8"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod de;
mod error;
mod list;
mod read;
mod request;
mod response;

pub use error::{InvalidRequest, ParseError};
pub use list::List;

/// How many objects the lists of one request may hold in all (imps,
/// formats, deals, data, segments, eids, uids, schain nodes, companions).
/// An empty object is two bytes of JSON and hundreds in memory: without a
/// bound, a 1 MiB body of `[],` in `imp` made about 100 MB of imps. Real
/// requests hold tens.
pub const MAX_LISTED_OBJECTS: u32 = 10_000;

/// What a privacy flag (`regs.coppa`, `regs.gdpr`, `regs.gpc`,
/// `device.lmt`, `device.dnt`) reads as when it is present but no integer
/// can be read from it (`"yes"`, `[1]`, `1.5`): set, since a signal that
/// says something nobody can read is taken at its strictest. Every reader
/// takes a flag other than 0 as set.
pub const UNREADABLE_FLAG: i32 = -1;

/// What an entry of a slot's protocol, delivery, companion-type or
/// blocking list (`protocols`, `delivery`, `companiontype`, `battr`,
/// `btype`) reads as when no code can be read from it (`"x"`, `7.5`,
/// `null`, an object), and what such a list given as something else
/// than a list or a code reads as: a code no one uses, kept, where
/// dropping it left a list that restricted or blocked nothing (video
/// probe: `protocols: ["x"]` was bid as if unrestricted, `battr: [14.5]`
/// blocked nothing). Readers of blocking lists take it as blocking every
/// attribute or type.
pub const UNREADABLE_CODE: i32 = i32::MIN;

/// How many bytes a parsed request may hold beyond its body, counted as it
/// is read: objects in lists and boxes, elements of code and string lists,
/// and strings the reader had to build (escapes decoded, numbers written as
/// text, where `1e308` is 309 characters). Vectors grow by doubling, so
/// what is allocated stays within about twice this. Without it, a 1 MiB
/// body of `"cur":[1e308,...]` held about 100 MB; real requests hold a few
/// kilobytes.
pub const MAX_PARSED_BYTES: usize = 8 << 20;

/// The longest `imp.id` a request may give, in bytes (once its escapes
/// are read). A bid's notice URLs carry its imp's id, and exchanges (and
/// the bidder's own server) refuse URLs past a few kilobytes: a bid on a
/// longer id would win and never be charged. Exchanges number their imps
/// or give them UUIDs; a longer id is refused with the request (400).
pub const MAX_IMP_ID_BYTES: usize = 128;

/// Why an id sent as a fraction, an exponent or an integer past 64 bits is
/// refused (400): ids are strings in OpenRTB, and such a number's text would
/// not come back in the answer as the exchange sent it.
pub(crate) const INEXACT_ID: &str =
    "an id must be a string or an integer: this number would not be echoed as sent";
pub use request::*;
pub use response::{Bid, BidResponse, SeatBid};

/// Parses a BidRequest body, borrowing strings from it.
///
/// This only checks that the body has the request's shape; call
/// [`BidRequest::validate`] for OpenRTB's required fields.
///
/// It reads with the crate's own JSON reader; [`parse_request_serde`] reads
/// the same model through serde and accepts and refuses the same bodies,
/// but for two bounds of this reader's own, each refused as
/// [`ParseError::Unexpected`]: more than [`MAX_LISTED_OBJECTS`] objects in
/// the request's lists, and more than [`MAX_PARSED_BYTES`] held once read.
pub fn parse_request(body: &[u8]) -> Result<BidRequest<'_>, ParseError> {
    read::request(body)
}

/// [`parse_request`] into `slot`, where the caller keeps it, not moved
/// out of a return value (the request is some 4 KB): the request read, or
/// the error. The slot is filled afresh whatever it held (an earlier
/// request's fields never carry over); after an error it holds a request
/// read part way, to be dropped.
pub fn parse_request_into<'a, 's>(
    body: &'a [u8],
    slot: &'s mut Option<BidRequest<'a>>,
) -> Result<&'s BidRequest<'a>, ParseError> {
    read::request_into(body, slot)
}

/// [`parse_request`] through serde's derive: the reference the crate's own
/// reader is tested against, slower by about half.
///
/// The model is meant for serde_json's borrowed input (`from_slice` /
/// `from_str`, as here): floors are read from the number's raw text, which a
/// reader-based or `Value`-based deserializer cannot provide.
pub fn parse_request_serde(body: &[u8]) -> Result<BidRequest<'_>, ParseError> {
    serde_json::from_slice(body).map_err(ParseError::from)
}
