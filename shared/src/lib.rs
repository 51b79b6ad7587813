//! State replicas share through Redis, behind the ledger's traits.
//!
//! [`RedisLedger`] is a [`ledger::Ledger`]: each replica keeps its bids'
//! holds in an embedded ledger and borrows **budget leases** from Redis, so
//! that the bid path never waits on the network:
//!
//! - a bid reserves only within the lease its replica holds for the line
//!   item and the order that day; a lease comes from one atomic script that
//!   grants it only while spend, charges being written and every replica's
//!   outstanding leases stay within the budget (and, for a paced budget,
//!   within the plan for the current minute). So N replicas together never
//!   hold more than a budget;
//! - a lease is sized to about a second of the line item's spend (at least
//!   20 impressions), and shrinks near the end of a budget to half of what
//!   is left split over the live replicas; unused leases go back after a few
//!   idle seconds, at shutdown, and are reclaimed from a replica that stops
//!   answering;
//! - a win is charged once across replicas: a script claims the bid and
//!   bills up to what the caps leave, the replica's journal makes the
//!   charge durable, then a script turns it into spend and gives back the
//!   lease it held. Every acknowledged charge is in some replica's journal,
//!   and `bidder ledger reconcile` rebuilds Redis from the journals;
//! - frequency caps are counted in Redis: a capped bid is confirmed there
//!   before it is sent;
//! - when Redis cannot be reached, budgeted line items stop bidding (fail
//!   closed) until it answers again;
//! - each replica keeps a byte-for-byte copy of the others' report files
//!   ([`mirror`]), so reports and attribution are cluster-wide.

mod audience;
mod keys;
mod ledger_impl;
pub mod mirror;
pub mod reconcile;
mod scripts;
#[doc(hidden)]
pub mod testing;
mod worker;

pub use ledger_impl::{Options, RedisLedger, StartError};
pub use mirror::{Mirror, MirrorOptions, MirrorStats};
pub use redis::ConnectionInfo;

/// Pieces of audience data Redis keeps for replicas that were away (older
/// ones come from the `--data` files every replica loads): at most 2 GB.
pub const AUDIENCE_STREAM_LEN: usize = 2_000;
/// The largest piece handed to the other replicas.
pub const MAX_PUBLISHED_BYTES: usize = 1 << 20;

/// How long a replica's claim to record a bid's impression or click stays
/// in Redis ([`RedisLedger::claim_tracked`]). Past it, the other replicas'
/// event writers hold the recorded event from their copies of this
/// replica's events, which arrive within seconds; ten minutes cover a
/// copy held up by a slow disk or a short Redis outage, and keep some
/// hundred bytes per tracked event for that long only.
pub const TRACKED_CLAIM_MS: u64 = 10 * 60 * 1000;

/// Audience data another replica applied.
#[derive(Clone, Debug)]
pub struct Published {
    /// The stream entry: where to resume after a restart.
    pub id: String,
    /// `events` (shopper events, JSON lines) or `list` (list members,
    /// JSON lines, for the list `key`).
    pub topic: String,
    pub key: String,
    pub body: String,
}

/// Where a replica stopped reading a stream, as saved in `path` (`MS-SEQ`);
/// `0-0` (all the stream still holds) when there is none or it is not a
/// stream id (a damaged file must not stall the reader on an id Redis
/// refuses).
pub fn read_stream_offset(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| mirror::is_stream_id(s))
        .unwrap_or_else(|| "0-0".to_string())
}

/// The budget types `line_items` spent under on any replica sharing Redis
/// under `prefix`, read only (one plain connection, no replica registered,
/// 500 line items a round trip): what a start checks its config against
/// before serving it (a ledger's cache of Redis is empty then), and what
/// `bidder validate --redis` checks one against before a rollout. `None`
/// when no replica has made state under `prefix` (no epoch there): a
/// first rollout, or a prefix mistyped, which read as "nothing spent"
/// without a word (operator probe).
pub fn budget_kinds(
    info: redis::ConnectionInfo,
    prefix: &str,
    line_items: &[&str],
) -> Result<Option<std::collections::HashMap<String, ledger::BudgetKind>>, StartError> {
    // rediss:// needs a crypto provider for rustls; installing twice is
    // harmless (the first one stays).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let err = |e: redis::RedisError| StartError::Redis(e.to_string());
    let client = redis::Client::open(info).map_err(err)?;
    let five = std::time::Duration::from_secs(5);
    let mut conn = client.get_connection_with_timeout(five).map_err(err)?;
    // A Redis that accepts and then says nothing must not hang a rollout.
    conn.set_read_timeout(Some(five)).map_err(err)?;
    conn.set_write_timeout(Some(five)).map_err(err)?;
    let keys = keys::Keys::new(prefix);
    let epoch: Option<String> = redis::cmd("GET")
        .arg(keys.epoch())
        .query(&mut conn)
        .map_err(err)?;
    if epoch.is_none() {
        return Ok(None);
    }
    let mut kinds = std::collections::HashMap::new();
    for chunk in line_items.chunks(500) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.cmd("HGET")
                .arg(keys.life(&ledger::SpendKey::line_item(id)))
                .arg("kind");
        }
        let got: Vec<Option<String>> = pipe.query(&mut conn).map_err(err)?;
        for (id, kind) in chunk.iter().zip(got) {
            if let Some(kind) = kind.as_deref().and_then(ledger::BudgetKind::parse) {
                kinds.insert((*id).to_string(), kind);
            }
        }
    }
    Ok(Some(kinds))
}

/// Reads `redis://…` or `rediss://…` with the password (and user) from the
/// environment, never from the URL: URLs end up in process listings, logs
/// and manifests.
pub fn connection_info(
    url: &str,
    username: Option<String>,
    password: Option<String>,
) -> Result<redis::ConnectionInfo, StartError> {
    use redis::IntoConnectionInfo as _;
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("redis://") || lower.starts_with("rediss://")) {
        return Err(StartError::Url(format!(
            "{url:?}: give redis://host:port[/db] or rediss://…"
        )));
    }
    let info = url
        .into_connection_info()
        .map_err(|e| StartError::Url(format!("{url:?}: {e}")))?;
    if info.redis_settings().password().is_some() {
        return Err(StartError::Url(
            "the Redis URL carries a password: give it in BIDDER_REDIS_PASSWORD instead".into(),
        ));
    }
    let mut settings = info.redis_settings().clone();
    if let Some(u) = username.filter(|u| !u.is_empty()) {
        settings = settings.set_username(u);
    }
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        settings = settings.set_password(p);
    }
    Ok(info.set_redis_settings(settings))
}
