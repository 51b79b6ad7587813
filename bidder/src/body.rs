//! Reading a request body: size limit first, gzip second.
//!
//! The limit is checked against `Content-Length` before a byte is read and
//! again while streaming (chunked bodies carry no length), and once more on
//! the inflated size, so a small gzip bomb cannot grow past it either.

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use hyper::header::{HeaderMap, CONTENT_ENCODING};

#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("unsupported Content-Encoding {0:?}; send identity or gzip")]
    UnsupportedEncoding(String),
    #[error("request body is not valid gzip: {0}")]
    BadGzip(std::io::Error),
    #[error(
        "gzip request body of more than {0} members (64, and one a KiB); compress it as fewer"
    )]
    GzipMembers(usize),
    #[error("could not read the request body: {0}")]
    Read(hyper::Error),
    #[error("too many request bodies are being read at once")]
    Busy,
}

/// The memory bid request bodies still being read may hold together
/// (`--max-body-memory`, 128 MiB), beyond what hyper buffers per
/// connection (`server::READ_BUFFER_BYTES`): a
/// body that comes in several reads is gathered here until its last, for
/// up to the longest deadline. Per request the limit is `--max-body-bytes`
/// (1 MB), but 4,096 connections each trickling a megabyte held 1.35 GB,
/// past the pod's memory limit, and glibc kept most of it after they
/// closed. Past the budget, a body is not read further: the request is a
/// no-bid and its connection closed. A body holds about what it has sent
/// (at most twice), so holding the budget takes sending that much.
pub(crate) struct Held {
    bytes: AtomicUsize,
    cap: usize,
}

impl Held {
    pub(crate) const fn new(cap: usize) -> Held {
        Held {
            bytes: AtomicUsize::new(0),
            cap,
        }
    }

    fn take(&self, n: usize) -> bool {
        // Not an add and a take-back: two bodies racing near the cap
        // would both be refused where one fits.
        self.bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                b.checked_add(n).filter(|&t| t <= self.cap)
            })
            .is_ok()
    }
}

/// What one body being read holds of a [`Held`] budget: given back when
/// the read ends, however it ends (a deadline drops the read's future).
struct Holding<'a> {
    held: Option<&'a Held>,
    bytes: usize,
}

impl Holding<'_> {
    /// Holds at least `bytes` in all.
    fn grow_to(&mut self, bytes: usize) -> Result<(), BodyError> {
        let Some(held) = self.held else {
            return Ok(());
        };
        if bytes > self.bytes {
            if !held.take(bytes - self.bytes) {
                return Err(BodyError::Busy);
            }
            self.bytes = bytes;
        }
        Ok(())
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        if let Some(held) = self.held {
            held.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

/// `held`: the budget a body gathered from several reads counts against
/// (`None` for the admin port's uploads, which their token and limits
/// bound).
pub(crate) async fn read(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    held: Option<&Held>,
) -> Result<Bytes, BodyError> {
    // The `Content-Length` hyper read and checked (a malformed one never
    // gets here), rather than the header looked up again and parsed.
    // `None` for a chunked body.
    let declared = body.size_hint().exact();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    // Two headers are a list of codings, as `identity, gzip` in one would
    // be: refused, not read as the first alone (a gzip body taken as
    // identity answered 400 for JSON that was not wrong).
    let mut encodings = headers.get_all(CONTENT_ENCODING).iter();
    let first = encodings.next();
    if let Some(second) = encodings.next() {
        return Err(BodyError::UnsupportedEncoding(
            second.to_str().unwrap_or("?").to_string(),
        ));
    }
    let gzip = match first.map(|v| v.to_str().unwrap_or("?")) {
        None => false,
        Some(e) if e.trim().eq_ignore_ascii_case("identity") || e.trim().is_empty() => false,
        Some(e)
            if e.trim().eq_ignore_ascii_case("gzip") || e.trim().eq_ignore_ascii_case("x-gzip") =>
        {
            true
        }
        Some(e) => return Err(BodyError::UnsupportedEncoding(e.to_string())),
    };

    // Nearly every body arrives in one frame: it is kept as hyper read it,
    // with no copy (a copy was a multi-kilobyte allocation and memcpy per
    // request, which the no-op baseline does not make). A second frame
    // starts a buffer.
    let mut body = body;
    let mut first: Option<Bytes> = None;
    let mut more: Option<BytesMut> = None;
    let mut len = 0usize;
    let mut holding = Holding { held, bytes: 0 };
    // A gathered body's buffer doubles as it comes, within its declared
    // length (else the limit: a chunked body at the limit must fit), and
    // its share is taken before it grows: it holds at most about twice
    // what it sent. (Sized to its declared length at the second read,
    // two bytes held a megabyte of the budget.)
    let most = declared.unwrap_or(limit as u64);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            if len + data.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            len += data.len();
            if let Some(buf) = &mut more {
                if len > buf.capacity() {
                    let room = room_for(len, buf.capacity(), most);
                    holding.grow_to(room)?;
                    // A buffer of exactly that size, copied into:
                    // `reserve` may double past it, twice what is held.
                    let mut bigger = BytesMut::with_capacity(room);
                    bigger.extend_from_slice(buf);
                    *buf = bigger;
                }
                buf.extend_from_slice(&data);
            } else if let Some(head) = first.take() {
                let room = room_for(len, head.len(), most);
                holding.grow_to(room)?;
                let mut buf = BytesMut::with_capacity(room);
                buf.extend_from_slice(&head);
                buf.extend_from_slice(&data);
                more = Some(buf);
            } else {
                first = Some(data);
            }
        }
    }
    let raw = match (more, first) {
        (Some(buf), _) => buf.freeze(),
        (None, Some(head)) => head,
        (None, None) => Bytes::new(),
    };
    if !gzip {
        return Ok(raw);
    }
    gunzip(&raw, limit).map(Bytes::from)
}

/// The room a gathered body of `len` bytes so far grows to from `had`:
/// twice as much (4 KB at least), within `most` (its declared length, or
/// the limit), and never less than `len`.
fn room_for(len: usize, had: usize, most: u64) -> usize {
    let doubled = had.saturating_mul(2).max(4096);
    doubled
        .min(usize::try_from(most).unwrap_or(usize::MAX))
        .max(len)
}

/// Members a gzip body of `len` bytes may have: 64, and one more per
/// KiB. A gzip stream is a series of them (RFC 1952 §2.2): compressors
/// that flush per chunk write several, block-gzip files (BGZF) one per 64
/// KiB, concatenated `.gz` files one each. But each member is a new
/// inflater, its window and tables made afresh, and a 1 MB body of fifty
/// thousand empty members took some forty times the CPU of the same
/// megabyte plain, on the worker of the bid (inflating does not yield, so
/// `tmax` could not cut it short). At one per KiB, a megabyte at the
/// bound took 4–8 ms, against 2–3 ms as one member.
pub(crate) fn max_gzip_members(len: usize) -> usize {
    64 + len / 1024
}

/// `raw`'s members inflated, one after the other: at most the limit and
/// one byte (past it, [`BodyError::TooLarge`]), at most
/// [`max_gzip_members`]. What follows a member is a member, or the body is
/// not gzip.
fn gunzip(raw: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    // Room for a typical ratio, never past what can be kept.
    let mut out = Vec::with_capacity((raw.len() * 4).min(limit + 1));
    let mut rest = raw;
    let max_members = max_gzip_members(raw.len());
    for _ in 0..max_members {
        let room = (limit + 1).saturating_sub(out.len()) as u64;
        let mut member = flate2::bufread::GzDecoder::new(rest);
        (&mut member)
            .take(room)
            .read_to_end(&mut out)
            .map_err(BodyError::BadGzip)?;
        if out.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        rest = member.into_inner();
        if rest.is_empty() {
            return Ok(out);
        }
    }
    Err(BodyError::GzipMembers(max_members))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// A gathered body's buffer doubles, within its bound, and always
    /// holds what came; the budget is taken before it grows and given
    /// back when the read ends, and a share past the cap is refused
    /// without taking any of it.
    #[test]
    fn gathered_bodies_hold_about_what_they_sent() {
        assert_eq!(room_for(10, 5, 1 << 20), 4096);
        assert_eq!(room_for(5_000, 4096, 1 << 20), 8192);
        assert_eq!(room_for(600_000, 524_288, 1 << 20), 1 << 20);
        assert_eq!(room_for(9_000, 8192, 10_000), 10_000);
        // Never less than what came, whatever the bound says.
        assert_eq!(room_for(20_000, 8192, 10_000), 20_000);
        let held = Held::new(10_000);
        {
            let mut a = Holding {
                held: Some(&held),
                bytes: 0,
            };
            a.grow_to(6_000).unwrap();
            let mut b = Holding {
                held: Some(&held),
                bytes: 0,
            };
            assert!(matches!(b.grow_to(6_000), Err(BodyError::Busy)));
            b.grow_to(4_000).unwrap();
            a.grow_to(5_000).unwrap();
            assert_eq!(held.bytes.load(Ordering::Relaxed), 10_000);
        }
        assert_eq!(held.bytes.load(Ordering::Relaxed), 0);
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    /// What the reading before this one (flate2's `MultiGzDecoder`) gave:
    /// the members' bytes, or an error.
    fn every_member(raw: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(raw)
            .read_to_end(&mut out)
            .ok()
            .map(|_| out)
    }

    #[test]
    fn members_inflate_as_one_body_up_to_the_bound() {
        let text = b"{\"id\":\"1\",\"imp\":[{\"id\":\"1\",\"banner\":{\"w\":300,\"h\":250}}]}";
        let mut bodies = vec![gzip(text), gzip(b"")];
        let mut split = Vec::new();
        for piece in text.chunks(7) {
            split.extend(gzip(piece));
        }
        bodies.push(split);
        let mut trailed = gzip(text);
        trailed.extend_from_slice(b"trailing");
        bodies.push(trailed);
        let mut cut = gzip(text);
        cut.truncate(cut.len() - 3);
        bodies.push(cut);
        bodies.push(b"not gzip".to_vec());
        bodies.push(Vec::new());
        for raw in &bodies {
            assert_eq!(gunzip(raw, 1 << 20).ok(), every_member(raw), "{raw:?}");
        }
        assert_eq!(gunzip(&bodies[2], 1 << 20).expect("gzip"), text);
        // At the bound, and one past it.
        let members = |n: usize| -> Vec<u8> { (0..n).flat_map(|_| gzip(b"{}")).collect() };
        // The first count of members past the bound its own size gives.
        let past = (64..)
            .find(|&n| max_gzip_members(members(n).len()) < n)
            .expect("a bound");
        let at = past - 1;
        assert!(at >= 64 && max_gzip_members(members(at).len()) >= at);
        let inflated = gunzip(&members(at), 1 << 20).expect("at the bound");
        assert_eq!(inflated, b"{}".repeat(at));
        assert!(matches!(
            gunzip(&members(past), 1 << 20),
            Err(BodyError::GzipMembers(n)) if n < past
        ));
        // The size limit holds across members, and within one.
        assert!(matches!(
            gunzip(&members(3), 5),
            Err(BodyError::TooLarge(5))
        ));
        assert!(matches!(
            gunzip(&gzip(&[b' '; 100]), 99),
            Err(BodyError::TooLarge(99))
        ));
        assert_eq!(
            gunzip(&gzip(&[b' '; 100]), 100)
                .expect("at the limit")
                .len(),
            100
        );
    }
}
