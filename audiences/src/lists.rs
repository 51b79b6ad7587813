//! List audiences: sets of user ids an advertiser uploads (CRM exports,
//! DMP segments, hashed e-mails), matched against the ids a bid request
//! carries.
//!
//! # Ownership
//!
//! A list is stored under its advertiser and its id together: if a config
//! moves a list id to another advertiser, that advertiser starts with an
//! empty list, never with the first one's customers.
//!
//! # Memory
//!
//! A list is a sorted `Vec<u64>` of seeded hashes of its member ids (the
//! ids themselves are not kept in memory), an index of where each prefix
//! starts and a one-bit-per-key filter: about 9.3 bytes a member (up to
//! twice the index and filter just past a power of two). A lookup is one
//! hash, a filter bit, and a binary search of some 16 keys. The hash seed
//! is random per process, so no one can craft collisions offline; the chance
//! that some id of a request collides with one of a million members is
//! about 10⁶ / 2⁶⁴. Loading (member files, logs) streams: it holds 16 bytes
//! per line read, never the ids.
//!
//! Readers never lock: the lists sit behind an `ArcSwap`, and a batch
//! builds a new sorted vector beside the old one and swaps it in. A batch
//! is applied whole or not at all.
//!
//! # Durability
//!
//! With a state directory, each list has an append-only log under
//! `lists/`: a first line `@advertiser<TAB>id` naming it, then each batch
//! as `+id` / `-id` lines and a commit line `.<count> <checksum>`, fsync'd
//! before the batch is applied or acknowledged. On open, an uncommitted
//! last batch (a crash mid-write) is cut off; damage anywhere else sets the
//! log aside as `*.damaged` and keeps the whole batches before it (and says
//! so in the log), rather than silently dropping later acknowledged ones.
//! The log is rewritten compactly, one line per id it ever named (removals
//! included: an opted-out id must stay out even if a member file lists it
//! again), when it has grown to twice that.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use serde::Deserialize;

use crate::event::{lines, DataError};

/// Longest member id accepted, in bytes (ids seen in `user.eids` are well
/// under 200; UID2 tokens run to some hundreds).
pub const MAX_ID_BYTES: usize = 512;

/// Log lines beyond twice the ids a log names before it is rewritten.
const COMPACT_SLACK: usize = 100_000;

/// A request's ids, by source: the bid path's view of `user.buyeruid` and
/// `user.eids`, without this crate knowing OpenRTB.
pub trait UserIds {
    /// Calls `f` with each id the request carries under `source` until it
    /// returns true; returns whether it did.
    fn any(&self, source: &config::ListSource, f: &mut dyn FnMut(&str) -> bool) -> bool;

    /// A request's earlier answer for list `key`, if it kept one: a
    /// request asks about the same list for every line item buying it.
    fn remembered(&self, _key: &str) -> Option<bool> {
        None
    }

    /// Keeps a request's answer for list `key`.
    fn remember(&self, _key: &str, _member: bool) {}
}

/// One list's members: sorted keyed hashes, where each run of a common
/// top-bits prefix starts, and a filter.
///
/// The hashes are uniform, so a prefix of `bits` bits splits a list into
/// runs of about 16: a lookup reads one index entry and binary-searches
/// one short run (a cache line or two) instead of walking 20 levels of an
/// 8 MB array, most of them cache misses.
///
/// Most ids a request carries are in no list, so before that, one bit per
/// key in a filter of about eight bits a member (1 MB for a million, so
/// it stays in cache where the 8 MB of keys cannot) turns away nearly
/// nine in ten of them with no cache miss on the keys at all.
#[derive(Debug, Default)]
struct Members {
    keys: Vec<u64>,
    /// `index[p]` is the first position of a key with prefix `p` or above.
    index: Vec<u32>,
    bits: u32,
    /// A bit per key, set at `key mod len` (the low bits, independent of
    /// the prefix): a clear bit means no member.
    filter: Vec<u64>,
}

/// Members per index entry, on average.
const PER_BUCKET: usize = 16;
/// Filter bits per member (at least; the filter is a power of two).
const FILTER_BITS: usize = 8;

impl Members {
    fn new(keys: Vec<u64>) -> Members {
        let buckets = (keys.len() / PER_BUCKET).max(1).next_power_of_two();
        let bits = buckets.trailing_zeros();
        let mut index = Vec::with_capacity(buckets + 1);
        let mut at = 0;
        for p in 0..buckets as u64 {
            while at < keys.len() && prefix(keys[at], bits) < p {
                at += 1;
            }
            index.push(at as u32);
        }
        index.push(keys.len() as u32);
        let words = (keys.len() * FILTER_BITS / 64).max(1).next_power_of_two();
        let mut filter = vec![0u64; words];
        for &k in &keys {
            let bit = k as usize & (words * 64 - 1);
            filter[bit / 64] |= 1 << (bit % 64);
        }
        Members {
            keys,
            index,
            bits,
            filter,
        }
    }

    fn contains(&self, key: u64) -> bool {
        let bit = key as usize & (self.filter.len() * 64 - 1);
        if self.filter[bit / 64] & (1 << (bit % 64)) == 0 {
            return false;
        }
        let p = prefix(key, self.bits) as usize;
        match (self.index.get(p), self.index.get(p + 1)) {
            (Some(&from), Some(&to)) => self.keys[from as usize..to as usize]
                .binary_search(&key)
                .is_ok(),
            _ => false,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.index.capacity() * 4 + self.filter.capacity() * 8
    }
}

fn prefix(key: u64, bits: u32) -> u64 {
    if bits == 0 {
        0
    } else {
        key >> (64 - bits)
    }
}

/// What a batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Ids that were not members and now are.
    pub added: usize,
    /// Ids that were members and no longer are.
    pub removed: usize,
    /// Members of the list after the batch.
    pub members: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A line of the batch is bad: nothing of it was applied.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The batch would take the lists past their limit.
    #[error("the lists would hold {would} members, more than the limit of {limit}")]
    Full { would: usize, limit: usize },
    /// The batch could not be made durable: nothing of it was applied.
    #[error("list log {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// One parsed batch line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberLine<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(default)]
    remove: bool,
}

fn is_hex_digest(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An id as stored: trimmed, and a SHA-256 hex digest in lower case (so
/// `sha256_email` matches whatever case either side wrote it in).
pub fn normalize_id(id: &str) -> std::borrow::Cow<'_, str> {
    let id = id.trim();
    if is_hex_digest(id) && id.bytes().any(|b| b.is_ascii_uppercase()) {
        return std::borrow::Cow::Owned(id.to_ascii_lowercase());
    }
    std::borrow::Cow::Borrowed(id)
}

/// Why an id is refused, if it is.
fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("\"id\" is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("\"id\" is longer than {MAX_ID_BYTES} bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err("\"id\" holds control characters".into());
    }
    // A plain address would put personal data in our logs and memory; and
    // it could never match, since requests carry only hashes.
    if id.contains('@') {
        return Err(
            "\"id\" looks like a plain e-mail address; send the SHA-256 hex of the \
                    trimmed, lower-cased address instead"
                .into(),
        );
    }
    Ok(())
}

/// One member line, read and checked: the normalised id and whether it
/// is added.
fn parse_member(line: &str) -> Result<(std::borrow::Cow<'_, str>, bool), String> {
    crate::event::too_long(line)?;
    let m: MemberLine<'_> = serde_json::from_str(line).map_err(|e| {
        format!(
            "not a member line ({{\"id\": \"…\"}} with an optional \"remove\": true): {}",
            crate::event::json_reason(&e)
        )
    })?;
    let add = !m.remove;
    let id = match m.id {
        std::borrow::Cow::Borrowed(b) => normalize_id(b),
        std::borrow::Cow::Owned(o) => std::borrow::Cow::Owned(normalize_id(&o).into_owned()),
    };
    check_id(&id)?;
    Ok((id, add))
}

/// The members a batch adds (`true`) or removes, by normalised id.
fn parse_batch(source_name: &str, text: &str) -> Result<Vec<(String, bool)>, DataError> {
    let mut out = Vec::new();
    for (line, trimmed) in lines(text) {
        let (id, add) = parse_member(trimmed).map_err(|reason| DataError {
            source_name: source_name.to_string(),
            line,
            reason,
        })?;
        out.push((id.into_owned(), add));
    }
    Ok(out)
}

/// 64-bit FNV-1a: tells a torn or garbled batch from a whole one (an
/// accident check: only we write here).
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The map key of a list: advertiser and id, which hold no whitespace.
fn list_key(advertiser: &str, list: &str) -> String {
    format!("{advertiser}\t{list}")
}

/// A log's file name: readable where it can be, always unique (the
/// parts are percent-encoded, dots included, around a dot).
fn file_name(key: &str) -> String {
    const SAFE: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_');
    let (adv, list) = key.split_once('\t').unwrap_or(("", key));
    let name = format!(
        "{}.{}.log",
        percent_encoding::utf8_percent_encode(adv, SAFE),
        percent_encoding::utf8_percent_encode(list, SAFE)
    );
    if name.len() <= 200 {
        name
    } else {
        // File systems take 255 bytes; the header names the list anyway.
        format!("{:016x}.log", checksum(key.as_bytes()))
    }
}

/// A batch in the log's form.
fn encode_batch<S: AsRef<str>>(batch: &[(S, bool)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        batch
            .iter()
            .map(|(id, _)| id.as_ref().len() + 2)
            .sum::<usize>()
            + 32,
    );
    for (id, add) in batch {
        out.push(if *add { b'+' } else { b'-' });
        out.extend_from_slice(id.as_ref().as_bytes());
        out.push(b'\n');
    }
    let sum = checksum(&out);
    out.extend_from_slice(format!(".{} {sum:016x}\n", batch.len()).as_bytes());
    out
}

/// An id's key with, in its lowest bit, whether the line adds it: 8
/// bytes a line read, where a pair would take 16. Keys are hashes with
/// the lowest bit cleared (63 bits: a collision among a million members
/// stays a 10⁻⁷-per-request matter).
type Op = u64;

fn op(key: u64, add: bool) -> Op {
    (key & !1) | u64::from(add)
}

fn op_key(op: Op) -> u64 {
    op & !1
}

fn op_adds(op: Op) -> bool {
    op & 1 == 1
}

/// What reading a log found.
struct LogRead {
    key: String,
    /// Every committed line's (key hash, added), in order.
    ops: Vec<Op>,
    /// Where the last whole batch ends.
    good_len: u64,
    lines: usize,
    /// Something other than an uncommitted last batch follows `good_len`.
    damaged: bool,
}

/// Reads a log through `hash`, holding 16 bytes per line, not the ids.
/// `Ok(None)` for a file without a readable header.
fn read_log(path: &Path, hash: &dyn Fn(&str) -> u64) -> std::io::Result<Option<LogRead>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut raw = Vec::new();
    let n = reader.read_until(b'\n', &mut raw)?;
    let header = std::str::from_utf8(&raw)
        .ok()
        .and_then(|h| h.strip_suffix('\n')?.strip_prefix('@'))
        .filter(|h| {
            h.split_once('\t')
                .is_some_and(|(a, l)| !a.is_empty() && !l.is_empty())
        });
    let Some(key) = header.map(str::to_owned) else {
        return Ok(None);
    };
    let mut read = LogRead {
        key,
        ops: Vec::new(),
        good_len: n as u64,
        lines: 1,
        damaged: false,
    };
    let mut pending: Vec<Op> = Vec::new();
    let mut sum = checksum(b"");
    let mut len = n as u64;
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw)?;
        if n == 0 {
            break;
        }
        if raw.last() != Some(&b'\n') {
            // A torn last line: the batch it belongs to was never
            // acknowledged.
            break;
        }
        len += n as u64;
        let text = std::str::from_utf8(&raw[..n - 1]).ok();
        match text.map(|t| (t.as_bytes().first().copied(), t)) {
            Some((Some(b @ (b'+' | b'-')), t)) => {
                for &byte in &raw {
                    sum = (sum ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                }
                pending.push(op(hash(&t[1..]), b == b'+'));
            }
            Some((Some(b'.'), t)) => {
                let whole = t[1..].split_once(' ').is_some_and(|(count, s)| {
                    count.parse::<usize>().ok() == Some(pending.len())
                        && u64::from_str_radix(s, 16).ok() == Some(sum)
                });
                if !whole {
                    read.damaged = true;
                    break;
                }
                read.lines += pending.len() + 1;
                read.ops.append(&mut pending);
                sum = checksum(b"");
                read.good_len = len;
            }
            _ => {
                read.damaged = true;
                break;
            }
        }
    }
    // Past a damaged line, anything that still reads as a commit means
    // acknowledged batches would be lost: the caller sets the log aside.
    if read.damaged {
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut rest)?;
        let tail_commits = rest
            .split(|&b| b == b'\n')
            .filter(|l| l.first() == Some(&b'.'))
            .count();
        // A damaged commit line with nothing whole after it is an
        // uncommitted last batch, torn where it happened to be torn.
        read.damaged = tail_commits > 0;
    }
    Ok(Some(read))
}

#[derive(Clone, Copy)]
enum Opening {
    Existing,
    Create,
    New,
}

/// A list log opened to append, readable by its owner only: it holds
/// every member id of an advertiser's customer list (CRM ids, hashed
/// e-mails) in clear. A log made before this was readable by all: made
/// private when opened.
fn open_private(path: &Path, how: Opening) -> std::io::Result<File> {
    let mut open = OpenOptions::new();
    open.append(true);
    match how {
        Opening::Existing => {}
        Opening::Create => {
            open.create(true);
        }
        Opening::New => {
            open.create_new(true);
        }
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let file = open.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // Only where others may read it; a file this user may not chmod
        // (another owner's, a filesystem without modes) is warned of, not
        // a reason to refuse the list and with it the start.
        let open_to_others = file
            .metadata()
            .is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
        if open_to_others {
            if let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "a list log readable by other users could not be made private"
                );
            }
        }
    }
    Ok(file)
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A list's log file.
struct Log {
    path: PathBuf,
    file: File,
    /// Where the last whole batch ends: a failed write is cut back to it
    /// before the next one, so no batch ever follows torn bytes.
    good_len: u64,
    /// Lines in the log, and ids it names at the last rewrite: when the
    /// first is twice the second, the log is rewritten.
    lines: usize,
    distinct: usize,
}

/// Every list, by advertiser and id.
pub struct Lists {
    /// foldhash with a random seed per process: several times cheaper than
    /// SipHash on a 64-byte digest, and its seed keeps collisions from
    /// being aimed offline. A collision could only make one stranger a
    /// member of one list, so DoS-grade hashing buys nothing here.
    keys: foldhash::quality::RandomState,
    sets: ArcSwap<HashMap<Box<str>, Arc<Members>>>,
    /// Writers: one batch at a time, with the logs.
    writer: Mutex<Writer>,
    limit: AtomicUsize,
}

struct Writer {
    dir: Option<PathBuf>,
    logs: HashMap<Box<str>, Log>,
}

impl std::fmt::Debug for Lists {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lists")
            .field("lists", &self.sets.load().len())
            .field("members", &self.members())
            .finish_non_exhaustive()
    }
}

impl Default for Lists {
    fn default() -> Lists {
        Lists::new(usize::MAX)
    }
}

/// Members at most, across all lists, unless told otherwise: 20 million
/// take about 190 MB.
pub const DEFAULT_MAX_MEMBERS: usize = 20_000_000;

impl Lists {
    /// Lists in memory only, at most `limit` members in all.
    pub fn new(limit: usize) -> Lists {
        Lists {
            keys: foldhash::quality::RandomState::default(),
            sets: ArcSwap::default(),
            writer: Mutex::new(Writer {
                dir: None,
                logs: HashMap::new(),
            }),
            limit: AtomicUsize::new(limit.min(u32::MAX as usize)),
        }
    }

    /// At most `limit` members in all lists, from the next batch on.
    pub fn set_limit(&self, limit: usize) {
        // Positions in a list are u32s.
        self.limit
            .store(limit.min(u32::MAX as usize), Ordering::Relaxed);
    }

    /// The hash of a normalised id.
    fn key(&self, id: &str) -> u64 {
        let mut h = self.keys.build_hasher();
        h.write(id.as_bytes());
        h.finish() & !1
    }

    /// The hash of an id as a request carries it (trimmed; a hex digest
    /// in lower case, without allocating).
    fn request_key(&self, id: &str) -> u64 {
        let id = id.trim();
        if is_hex_digest(id) && id.bytes().any(|b| b.is_ascii_uppercase()) {
            let mut lower = [0u8; 64];
            lower.copy_from_slice(id.as_bytes());
            lower.make_ascii_lowercase();
            let mut h = self.keys.build_hasher();
            h.write(&lower);
            return h.finish() & !1;
        }
        self.key(id)
    }

    /// Whether `id` (as a request carries it) is a member of the list.
    pub fn contains(&self, advertiser: &str, list: &str, id: &str) -> bool {
        let sets = self.sets.load();
        sets.get(list_key(advertiser, list).as_str())
            .is_some_and(|m| m.contains(self.request_key(id)))
    }

    /// Whether the request carries, under one of `sources`, a member of
    /// the list. One lookup of the list, then a hash, a filter bit and
    /// perhaps a short binary search per id; the answer is remembered for
    /// the request (line items buying the same list ask again).
    pub fn any_member(
        &self,
        advertiser: &str,
        list: &str,
        sources: &[config::ListSource],
        ids: &dyn UserIds,
    ) -> bool {
        // No allocation: the key is looked up by its parts.
        let mut buf = [0u8; 256];
        let key = if advertiser.len() + list.len() < buf.len() {
            let n = advertiser.len();
            buf[..n].copy_from_slice(advertiser.as_bytes());
            buf[n] = b'\t';
            buf[n + 1..n + 1 + list.len()].copy_from_slice(list.as_bytes());
            std::str::from_utf8(&buf[..n + 1 + list.len()]).ok()
        } else {
            None
        };
        let owned;
        let key = match key {
            Some(k) => k,
            None => {
                owned = list_key(advertiser, list);
                owned.as_str()
            }
        };
        if let Some(known) = ids.remembered(key) {
            return known;
        }
        let sets = self.sets.load();
        let member = sets
            .get(key)
            .filter(|m| !m.keys.is_empty())
            .is_some_and(|members| {
                sources
                    .iter()
                    .any(|source| ids.any(source, &mut |id| members.contains(self.request_key(id))))
            });
        ids.remember(key, member);
        member
    }

    /// Members of one list.
    pub fn len(&self, advertiser: &str, list: &str) -> usize {
        self.sets
            .load()
            .get(list_key(advertiser, list).as_str())
            .map_or(0, |m| m.keys.len())
    }

    /// Members of all lists.
    pub fn members(&self) -> usize {
        self.sets.load().values().map(|m| m.keys.len()).sum()
    }

    /// Heap bytes the member sets hold (capacity, not length).
    pub fn memory_bytes(&self) -> usize {
        self.sets
            .load()
            .iter()
            .map(|(k, m)| k.len() + m.heap_bytes() + 64)
            .sum()
    }

    fn writer(&self) -> std::sync::MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a batch of JSON lines (`{"id": "…"}`, optionally with
    /// `"remove": true`) to the advertiser's list: all of it or, on the
    /// first bad line, none of it. The last line of an id wins. With a
    /// state directory the batch is on disk before it is applied.
    pub fn apply_jsonl(
        &self,
        advertiser: &str,
        list: &str,
        source_name: &str,
        text: &str,
    ) -> Result<Applied, ListError> {
        let batch = parse_batch(source_name, text)?;
        let key = list_key(advertiser, list);
        let mut w = self.writer();
        let current = self
            .sets
            .load()
            .get(key.as_str())
            .cloned()
            .unwrap_or_default();
        let ops: Vec<Op> = batch
            .iter()
            .map(|(id, add)| op(self.key(id), *add))
            .collect();
        let (keys, applied) = merged(&current, ops);
        let would = self.members() - current.keys.len() + keys.len();
        let limit = self.limit.load(Ordering::Relaxed);
        if keys.len() > current.keys.len() && would > limit {
            return Err(ListError::Full { would, limit });
        }
        // Logged even when nothing changes in memory: an id a member file
        // also lists must stay once the file drops it.
        if !batch.is_empty() {
            self.log(&mut w, &key, &batch)?;
        }
        self.publish(&key, keys);
        if let Some(log) = w.logs.get_mut(key.as_str()) {
            if log.lines > 2 * log.distinct + COMPACT_SLACK {
                // A failure leaves the longer log, which reads the same.
                if let Err(e) = self.rewrite(log) {
                    tracing::warn!("list log not compacted: {e}");
                }
            }
        }
        Ok(applied)
    }

    fn publish(&self, key: &str, keys: Vec<u64>) {
        let mut map: HashMap<Box<str>, Arc<Members>> = (**self.sets.load()).clone();
        map.insert(key.into(), Arc::new(Members::new(keys)));
        self.sets.store(Arc::new(map));
    }

    /// Appends a batch to the list's log and syncs it.
    fn log(&self, w: &mut Writer, key: &str, batch: &[(String, bool)]) -> Result<(), ListError> {
        let Some(dir) = w.dir.clone() else {
            return Ok(());
        };
        if !w.logs.contains_key(key) {
            let path = dir.join(file_name(key));
            let io = |error| ListError::Io {
                path: path.clone(),
                error,
            };
            // A file open left alone (no readable first line) is not
            // appended to: its batches would never be read back.
            if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
                let aside = path.with_extension("log.unreadable");
                std::fs::rename(&path, &aside).map_err(io)?;
                // Still member ids: private too, where it can be.
                #[cfg(unix)]
                let _ = std::fs::set_permissions(
                    &aside,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                );
            }
            let mut file = open_private(&path, Opening::Create).map_err(io)?;
            let mut len = file.metadata().map_err(io)?.len();
            if len == 0 {
                file.write_all(format!("@{key}\n").as_bytes())
                    .and_then(|()| file.sync_data())
                    .map_err(io)?;
                fsync_dir(&dir).map_err(io)?;
                len = file.metadata().map_err(io)?.len();
            }
            w.logs.insert(
                key.into(),
                Log {
                    path,
                    file,
                    good_len: len,
                    lines: 1,
                    distinct: 0,
                },
            );
        }
        let Some(log) = w.logs.get_mut(key) else {
            return Ok(());
        };
        let io = |error| ListError::Io {
            path: log.path.clone(),
            error,
        };
        // Torn bytes of an earlier failed write go first; if they cannot,
        // no batch is written after them.
        if log.file.metadata().map_err(io)?.len() != log.good_len {
            log.file.set_len(log.good_len).map_err(io)?;
        }
        let bytes = encode_batch(batch);
        let written = log
            .file
            .write_all(&bytes)
            .and_then(|()| log.file.sync_data());
        if let Err(e) = written {
            let _ = log.file.set_len(log.good_len);
            return Err(io(e));
        }
        log.good_len += bytes.len() as u64;
        log.lines += batch.len() + 1;
        Ok(())
    }

    /// Loads the member files under `data` (`*.members`, JSON lines, the
    /// file's stem naming the list, whose advertiser `owner` gives), then
    /// the logs under `state` (which later batches are appended to). A
    /// member file naming no list, or with a bad line, refuses the load.
    pub fn open(
        &self,
        data: Option<&Path>,
        state: Option<&Path>,
        owner: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ListError> {
        if let Some(data) = data {
            for file in crate::store::files_with_extension(data, "members")? {
                let name = file.display().to_string();
                let list = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                let Some(advertiser) = owner(&list) else {
                    return Err(DataError {
                        source_name: name,
                        line: 0,
                        reason: format!(
                            "no list audience has the id \"{list}\" (the file's name names it)"
                        ),
                    }
                    .into());
                };
                let ops = self.read_member_file(&file, &name)?;
                self.apply_loaded(&list_key(&advertiser, &list), ops);
            }
        }
        let Some(state) = state else {
            return Ok(());
        };
        let dir = state.join("lists");
        let io = |path: &Path, error| ListError::Io {
            path: path.to_path_buf(),
            error,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        entries.sort();
        let mut logs = HashMap::new();
        for path in entries {
            let Some(read) = read_log(&path, &|id| self.key(id)).map_err(|e| io(&path, e))? else {
                tracing::error!(
                    path = %path.display(),
                    "list log without a readable first line: left as it is, not loaded"
                );
                continue;
            };
            let LogRead {
                key,
                ops,
                good_len,
                lines,
                damaged,
            } = read;
            let distinct = self.apply_loaded(&key, ops);
            let mut log = Log {
                path: path.clone(),
                file: open_private(&path, Opening::Existing).map_err(|e| io(&path, e))?,
                good_len,
                lines,
                distinct,
            };
            if damaged {
                // Keep the evidence; carry on with what was whole.
                let aside = path.with_extension("log.damaged");
                tracing::error!(
                    path = %path.display(),
                    aside = %aside.display(),
                    "list log damaged before its end: its whole batches up to the damage \
                     are kept, the file is set aside"
                );
                std::fs::copy(&path, &aside).map_err(|e| io(&aside, e))?;
                log.file.set_len(good_len).map_err(|e| io(&path, e))?;
                self.rewrite(&mut log)?;
            } else if log.file.metadata().map_err(|e| io(&path, e))?.len() > good_len {
                // An uncommitted last batch: never acknowledged, dropped.
                log.file.set_len(good_len).map_err(|e| io(&path, e))?;
                log.file.sync_all().map_err(|e| io(&path, e))?;
            }
            if log.lines > 2 * log.distinct + COMPACT_SLACK {
                self.rewrite(&mut log)?;
            }
            logs.insert(key.into_boxed_str(), log);
        }
        let mut w = self.writer();
        w.dir = Some(dir);
        w.logs = logs;
        Ok(())
    }

    /// A member file's adds and removals, streamed.
    fn read_member_file(&self, path: &Path, name: &str) -> Result<Vec<Op>, ListError> {
        let fail = |line: usize, reason: String| DataError {
            source_name: name.to_owned(),
            line,
            reason,
        };
        let file = File::open(path).map_err(|e| fail(0, format!("cannot read file: {e}")))?;
        let mut reader = BufReader::new(file);
        let mut ops = Vec::new();
        let mut raw = String::new();
        let mut line = 0;
        loop {
            raw.clear();
            line += 1;
            let n = reader
                .read_line(&mut raw)
                .map_err(|e| fail(line, format!("cannot read file: {e}")))?;
            if n == 0 {
                break;
            }
            let text = raw.trim();
            if text.is_empty() {
                continue;
            }
            let (id, add) = parse_member(text).map_err(|reason| fail(line, reason))?;
            ops.push(op(self.key(&id), add));
        }
        Ok(ops)
    }

    /// Applies what was loaded (no logging; no limit: what is on disk was
    /// acknowledged, or is the operator's own file).
    /// Returns how many distinct ids `ops` named.
    fn apply_loaded(&self, key: &str, ops: Vec<Op>) -> usize {
        let _w = self.writer();
        let current = self.sets.load().get(key).cloned().unwrap_or_default();
        let last = last_ops(ops);
        let distinct = last.len();
        let (keys, _) = merged(&current, last);
        self.publish(key, keys);
        distinct
    }

    /// Rewrites a log as one batch: each id it names once, added or
    /// removed as its last line says. Streams the old log twice (hashes
    /// first, then the lines to keep), writes a new file beside it, syncs
    /// it, renames it over, and appends to that same handle from then on.
    fn rewrite(&self, log: &mut Log) -> Result<(), ListError> {
        let io = |path: &Path, error| ListError::Io {
            path: path.to_path_buf(),
            error,
        };
        let read = read_log(&log.path, &|id| self.key(id))
            .map_err(|e| io(&log.path, e))?
            .ok_or_else(|| io(&log.path, std::io::ErrorKind::InvalidData.into()))?;
        let key = read.key;
        let good_len = read.good_len;
        let last = last_ops(read.ops);
        let tmp = log.path.with_extension("log.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut out = open_private(&tmp, Opening::New).map_err(|e| io(&tmp, e))?;
        let mut body: Vec<u8> = Vec::new();
        // Which of `last` are written: a bit each.
        let mut written = vec![0u64; last.len().div_ceil(64)];
        let mut reader = BufReader::new(File::open(&log.path).map_err(|e| io(&log.path, e))?);
        let mut raw = Vec::new();
        let mut offset = 0u64;
        let mut count = 0usize;
        loop {
            raw.clear();
            let n = reader
                .read_until(b'\n', &mut raw)
                .map_err(|e| io(&log.path, e))?;
            if n == 0 || offset + n as u64 > good_len {
                break;
            }
            offset += n as u64;
            let Some(id) = std::str::from_utf8(&raw)
                .ok()
                .and_then(|t| t.strip_suffix('\n'))
                .filter(|t| t.starts_with(['+', '-']))
                .map(|t| &t[1..])
            else {
                continue;
            };
            let k = self.key(id);
            let Ok(i) = last.binary_search_by_key(&k, |&o| op_key(o)) else {
                continue;
            };
            if written[i / 64] & (1 << (i % 64)) == 0 {
                written[i / 64] |= 1 << (i % 64);
                body.push(if op_adds(last[i]) { b'+' } else { b'-' });
                body.extend_from_slice(id.as_bytes());
                body.push(b'\n');
                count += 1;
            }
        }
        let sum = checksum(&body);
        let mut bytes = format!("@{}\n", key).into_bytes();
        bytes.append(&mut body);
        bytes.extend_from_slice(format!(".{count} {sum:016x}\n").as_bytes());
        out.write_all(&bytes)
            .and_then(|()| out.sync_all())
            .map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &log.path).map_err(|e| io(&tmp, e))?;
        if let Some(dir) = log.path.parent() {
            fsync_dir(dir).map_err(|e| io(dir, e))?;
        }
        out.seek(std::io::SeekFrom::End(0))
            .map_err(|e| io(&log.path, e))?;
        log.file = out;
        log.good_len = bytes.len() as u64;
        log.lines = count + 2;
        log.distinct = count;
        Ok(())
    }
}

/// Each key's last operation, sorted by key, in place: a stable sort by
/// key keeps each key's operations in order, and the last of each run is
/// kept (no second copy of a million operations).
fn last_ops(mut ops: Vec<Op>) -> Vec<Op> {
    ops.sort_by_key(|&o| op_key(o));
    let mut kept = 0;
    for i in 0..ops.len() {
        if i + 1 == ops.len() || op_key(ops[i + 1]) != op_key(ops[i]) {
            ops[kept] = ops[i];
            kept += 1;
        }
    }
    ops.truncate(kept);
    ops
}

/// `current` with `ops` applied (the last of a key winning), and what
/// changed.
fn merged(current: &Members, ops: Vec<Op>) -> (Vec<u64>, Applied) {
    let last = last_ops(ops);
    let mut out = Vec::with_capacity(current.keys.len() + last.len());
    let mut applied = Applied::default();
    let (old, mut j) = (&current.keys, 0);
    for &o in &last {
        let (key, add) = (op_key(o), op_adds(o));
        while j < old.len() && old[j] < key {
            out.push(old[j]);
            j += 1;
        }
        let was = j < old.len() && old[j] == key;
        if was {
            j += 1;
        }
        match (was, add) {
            (false, true) => applied.added += 1,
            (true, false) => applied.removed += 1,
            _ => {}
        }
        if add {
            out.push(key);
        }
    }
    out.extend_from_slice(&old[j..]);
    out.shrink_to_fit();
    applied.members = out.len();
    (out, applied)
}

#[cfg(test)]
mod tests;
