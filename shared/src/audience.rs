//! Audience data between replicas: what one applied (shopper events, list
//! batches) goes on a stream the others read.
//!
//! It runs as a task of its own with a connection of its own: a piece is up
//! to 1 MB, and reading or writing it may take longer than the money path's
//! call limit (250 ms). A slow or failed call here never marks Redis as
//! failing, never delays a lease, claim or heartbeat, and the pieces
//! waiting to go are bounded (the oldest are not dropped: new ones are, and
//! counted, while the queue is full).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::ledger_impl::{lock, Inner};

/// Pieces waiting to be written (each at most 1 MB).
pub(crate) const OUTBOX: usize = 64;
/// How often the stream is read.
const EVERY: Duration = Duration::from_millis(100);
/// One call's limit: a 1 MB piece on a busy link.
const CALL_LIMIT: Duration = Duration::from_secs(5);

/// A piece of audience data for the others.
pub(crate) struct Piece {
    pub topic: &'static str,
    pub key: String,
    pub body: Arc<str>,
}

pub(crate) async fn run(inner: Weak<Inner>, mut rx: tokio::sync::mpsc::Receiver<Piece>) {
    let mut conn: Option<ConnectionManager> = None;
    let mut waiting: Option<Piece> = None;
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        // Nothing before the journal is replayed (as the money path).
        if !inner.go.load(Ordering::Relaxed) {
            continue;
        }
        if conn.is_none() {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CALL_LIMIT))
                .set_response_timeout(Some(CALL_LIMIT))
                .set_number_of_retries(1);
            match tokio::time::timeout(
                CALL_LIMIT,
                ConnectionManager::new_with_config(inner.client.clone(), config),
            )
            .await
            {
                Ok(Ok(c)) => conn = Some(c),
                Ok(Err(e)) => {
                    tracing::debug!("audience stream: Redis: {e}");
                    continue;
                }
                Err(_) => continue,
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        // What this replica applied, in order; a piece that failed goes
        // first next time.
        loop {
            let piece = match waiting.take() {
                Some(p) => p,
                None => match rx.try_recv() {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            if let Err(e) = write(&inner, c, &piece).await {
                tracing::debug!("audience stream: {e}");
                waiting = Some(piece);
                break;
            }
        }
        if let Err(e) = read(&inner, c).await {
            tracing::debug!("audience stream: {e}");
        }
    }
}

async fn write(inner: &Inner, c: &mut ConnectionManager, p: &Piece) -> Result<(), String> {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(inner.keys.audience())
        .arg("MAXLEN")
        .arg("~")
        .arg(crate::AUDIENCE_STREAM_LEN)
        .arg("*")
        .arg("o")
        .arg(&inner.opts.replica)
        .arg("t")
        .arg(p.topic)
        .arg("k")
        .arg(&p.key)
        .arg("v")
        .arg(p.body.as_ref());
    inner.round_trips.fetch_add(1, Ordering::Relaxed);
    match tokio::time::timeout(CALL_LIMIT, cmd.query_async::<String>(c)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("Redis: {e}")),
        Err(_) => Err("Redis: timed out".into()),
    }
}

/// Audience data other replicas applied since the last entry handed on:
/// passed to the subscriber, at most as fast as it takes them.
async fn read(inner: &Inner, c: &mut ConnectionManager) -> Result<(), String> {
    let Some(sub) = lock(&inner.audience).clone() else {
        return Ok(());
    };
    loop {
        let from = lock(&sub.last).clone();
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(inner.keys.audience())
            .arg(format!("({from}"))
            .arg("+")
            .arg("COUNT")
            // Pieces are up to 1 MB: a few per call.
            .arg(2);
        inner.round_trips.fetch_add(1, Ordering::Relaxed);
        let entries: Vec<(String, Vec<String>)> =
            match tokio::time::timeout(CALL_LIMIT, cmd.query_async(c)).await {
                Ok(Ok(v)) => v,
                Ok(Err(e)) => return Err(format!("Redis: {e}")),
                Err(_) => return Err("Redis: timed out".into()),
            };
        if entries.is_empty() {
            return Ok(());
        }
        for (id, fields) in entries {
            let field = |name: &str| {
                fields
                    .chunks(2)
                    .find(|c| c.first().map(String::as_str) == Some(name))
                    .and_then(|c| c.get(1))
                    .cloned()
                    .unwrap_or_default()
            };
            if field("o") != inner.opts.replica {
                let item = crate::Published {
                    id: id.clone(),
                    topic: field("t"),
                    key: field("k"),
                    body: field("v"),
                };
                // A subscriber behind (a large list batch being written)
                // is read again next time: nothing skipped.
                match sub.tx.try_send(item) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => return Ok(()),
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                        *lock(&inner.audience) = None;
                        return Ok(());
                    }
                }
            }
            *lock(&sub.last) = id;
        }
    }
}
