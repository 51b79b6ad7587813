//! The BidResponse side: what the bidder writes.
//!
//! Owned strings throughout: one response is built per request and it is
//! small, so borrowing would only complicate the writer. Empty and absent
//! fields are omitted on the wire.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::de;

/// OpenRTB 2.5/2.6 BidResponse.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BidResponse {
    /// Echoes the request id. Absent only in the bare `{}` no-bid form.
    #[serde(default)]
    pub id: String,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::vec"
    )]
    pub seatbid: Vec<SeatBid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bidid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cur: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customdata: Option<String>,
    /// No-bid reason code.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub nbr: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<Box<RawValue>>,
}

impl BidResponse {
    /// A no-bid for request `id`, optionally with a reason code.
    pub fn no_bid(id: impl Into<String>, nbr: Option<i32>) -> Self {
        BidResponse {
            id: id.into(),
            nbr,
            ..Default::default()
        }
    }
}

/// The bids of one seat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeatBid {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::vec"
    )]
    pub bid: Vec<Bid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    /// 1 when the bids must win or lose as a group.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub group: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<Box<RawValue>>,
}

/// One bid. Build with [`Bid::new`] and fill the rest with struct update syntax.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Bid {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub impid: String,
    /// The price in micros (1e-6 of the response currency), written as the
    /// exact decimal JSON number `price`: 1_800_000 goes out as `1.8`.
    /// Reading a response rounds `price` to the nearest micro.
    #[serde(
        rename = "price",
        serialize_with = "de::serialize_price",
        deserialize_with = "de::price_micros"
    )]
    pub price_micros: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nurl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lurl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::vec"
    )]
    pub adomain: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iurl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::vec"
    )]
    pub cat: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub cattax: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "de::i32_vec"
    )]
    pub attr: Vec<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub api: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub protocol: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dealid: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub w: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub h: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub wratio: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub hratio: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub exp: Option<i32>,
    /// 2.6 markup type: 1 banner, 2 video, 3 audio, 4 native.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub mtype: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub dur: Option<i32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "de::opt_i32"
    )]
    pub slotinpod: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<Box<RawValue>>,
}

impl Bid {
    /// A bid on `impid` at `price_micros` (1e-6 of the response currency);
    /// every optional field empty.
    pub fn new(id: impl Into<String>, impid: impl Into<String>, price_micros: i64) -> Self {
        Bid {
            id: id.into(),
            impid: impid.into(),
            price_micros,
            ..Default::default()
        }
    }
}
