//! The bidder: HTTP server and the auction pipeline.
//!
//! A bid request's path: `server` (read body, deadline) → `ortb` (parse) →
//! `context` (one pass over the request) → `select` (candidates from the
//! `snapshot` index, checks, price) → `respond` (BidResponse with notice
//! URLs). Exchanges call back on `notice`; spend, reservations, frequency
//! and the charge journal live in the `ledger` crate.

mod answer_buf;
pub mod app;
pub mod audience_log;
mod awaiting;
mod body;
pub mod changes;
mod checks;
pub mod context;
mod explain;
mod failure;
mod first_price;
mod form;
mod keywords;
pub mod metrics;
pub mod nobid;
pub mod notice;
pub mod notice_ttl;
pub mod pixel;
pub mod reporting;
mod respond;
mod select;
pub mod served;
pub mod server;
pub mod simulate;
mod snapshot;
pub mod sync;
mod targeting;
#[cfg(test)]
mod testing;
pub mod track;
pub mod traffic;
pub mod train;
pub mod ui;
mod value;
pub mod world;

pub use answer_buf::AnswerBuf;
pub use app::{App, BidAnswer, ExplainError, Settings};
/// Privacy signals live in a crate of their own; `bidder::privacy` names it.
pub use privacy;
pub use respond::Dialect;
