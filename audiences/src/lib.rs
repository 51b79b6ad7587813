//! Audiences: shopper events in, membership answers out.
//!
//! The crate knows nothing of HTTP or OpenRTB. The bidder hands it plain
//! values — who the user is, which products and categories the page is about,
//! whether behavioural data may be used, and the time — and asks whether an
//! audience of the config matches.
//!
//! Behavioural kinds (`views`, `interests`) are evaluated against the event
//! history at request time with the request's clock, never precomputed, so a
//! view ages out of its lookback window exactly when it should.

mod event;
mod lists;
mod store;

pub use event::{
    for_each_jsonl_line, parse_jsonl, parse_jsonl_lines, DataError, Event, EventKind, Sale,
    MAX_LINE_BYTES, MAX_USER_BYTES,
};
pub use lists::{
    normalize_id, Applied, ListError, Lists, UserIds, DEFAULT_MAX_MEMBERS, MAX_ID_BYTES,
};
pub use store::{
    jsonl_files, Loaded, Page, PageList, Store, Unmatchable, Visitor, DEFAULT_MAX_EVENTS,
    DEFAULT_MAX_USERS, DEFAULT_RETENTION_DAYS, FUTURE_SKEW_MS, ITEM_SHARDS, USER_SHARDS,
};
