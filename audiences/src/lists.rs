//! List audiences: sets of user ids an advertiser uploads (CRM exports,
//! DMP segments, hashed e-mails), matched against the ids a bid request
//! carries.
//!
//! # Memory
//!
//! A list is a sorted `Vec<u64>` of keyed SipHashes of its member ids (the
//! ids themselves are not kept in memory), an index of where each prefix
//! starts and a one-bit-per-key filter: about 9.25 bytes a member (up to
//! twice the index and filter just past a power of two), so a million
//! members take under 10 MB. A lookup is one hash, a filter bit, and a
//! binary search of some 16 keys. The
//! hash key is random per process, so no one can craft collisions offline;
//! the chance that some id of a request collides with one of a million
//! members is about 10⁶ / 2⁶⁴.
//!
//! Readers never lock: the lists sit behind an `ArcSwap`, and a batch
//! builds a new sorted vector beside the old one and swaps it in. A batch
//! is applied whole or not at all.
//!
//! # Durability
//!
//! With a state directory, each list has an append-only log,
//! `lists/<id>.log`: a batch is written as `+id` / `-id` lines and a commit
//! line `.<count> <checksum>`, fsync'd before the batch is applied or
//! acknowledged. On open, the log is read up to the last whole batch (a
//! torn tail from a crash is cut off) and rewritten compactly when it has
//! grown well past the list.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use serde::Deserialize;

use crate::event::{lines, DataError};

/// Longest member id accepted, in bytes (ids seen in `user.eids` are well
/// under 200; UID2 tokens run to some hundreds).
pub const MAX_ID_BYTES: usize = 512;

/// Log lines beyond twice a list's members before the log is rewritten.
const COMPACT_SLACK: usize = 100_000;

/// A request's ids, by source: the bid path's view of `user.buyeruid` and
/// `user.eids`, without this crate knowing OpenRTB.
pub trait UserIds {
    /// Calls `f` with each id the request carries under `source` until it
    /// returns true; returns whether it did.
    fn any(&self, source: &config::ListSource, f: &mut dyn FnMut(&str) -> bool) -> bool;
}

/// One list's members: sorted keyed hashes, where each run of a common
/// top-bits prefix starts, and a filter.
///
/// The hashes are uniform, so a prefix of `bits` bits splits a list into
/// runs of about 16: a lookup reads one index entry and binary-searches
/// one short run (a cache line or two) instead of walking 20 levels of an
/// 8 MB array, most of them cache misses. The index costs 4 bytes per 16
/// members.
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

/// An id as stored: trimmed, and a SHA-256 hex digest in lower case (so
/// `sha256_email` matches whatever case either side wrote it in).
pub fn normalize_id(id: &str) -> std::borrow::Cow<'_, str> {
    let id = id.trim();
    if id.len() == 64
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && id.bytes().any(|b| b.is_ascii_uppercase())
    {
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

/// The members a batch adds (`true`) or removes, by normalised id, the
/// last line for an id winning.
fn parse_batch(source_name: &str, text: &str) -> Result<Vec<(String, bool)>, DataError> {
    let mut out = Vec::new();
    for (line, trimmed) in lines(text) {
        let fail = |reason: String| DataError {
            source_name: source_name.to_string(),
            line,
            reason,
        };
        let m: MemberLine<'_> = serde_json::from_str(trimmed).map_err(|e| {
            fail(format!(
                "not a member line ({{\"id\": \"…\"}} with an optional \"remove\": true): {e}"
            ))
        })?;
        let id = normalize_id(&m.id);
        check_id(&id).map_err(fail)?;
        out.push((id.into_owned(), !m.remove));
    }
    Ok(out)
}

/// A list's log file.
struct Log {
    path: PathBuf,
    file: File,
    /// Lines in the log, to know when to rewrite it.
    lines: usize,
}

/// 64-bit FNV-1a: tells a torn or garbled batch from a whole one (an
/// accident check: only we write here).
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A log file name for a list id: safe on any file system, readable.
fn file_name(id: &str) -> String {
    const SAFE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.');
    let mut name: String = percent_encoding::utf8_percent_encode(id, SAFE).collect();
    if name.starts_with('.') {
        name.replace_range(0..1, "%2E");
    }
    name.push_str(".log");
    name
}

fn id_of_file(name: &str) -> Option<String> {
    let stem = name.strip_suffix(".log")?;
    percent_encoding::percent_decode_str(stem)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// A batch in the log's form.
fn encode_batch(batch: &[(String, bool)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(batch.iter().map(|(id, _)| id.len() + 2).sum::<usize>() + 32);
    for (id, add) in batch {
        out.push(if *add { b'+' } else { b'-' });
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    let sum = checksum(&out);
    out.extend_from_slice(format!(".{} {sum:016x}\n", batch.len()).as_bytes());
    out
}

/// The whole batches of a log, and the byte length they end at.
/// Member ids, each added (`true`) or removed.
type Batch = Vec<(String, bool)>;

fn read_log(path: &Path) -> std::io::Result<(Batch, u64, usize)> {
    let file = File::open(path)?;
    let mut reader = BufReader::new(file);
    let mut good: Vec<(String, bool)> = Vec::new();
    let mut pending: Vec<(String, bool)> = Vec::new();
    let mut pending_bytes: Vec<u8> = Vec::new();
    let (mut good_len, mut len, mut lines) = (0u64, 0u64, 0usize);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw)?;
        if n == 0 || raw.last() != Some(&b'\n') {
            break; // the end, or a torn last line
        }
        len += n as u64;
        let Ok(text) = std::str::from_utf8(&raw[..n - 1]) else {
            break;
        };
        match text.as_bytes().first() {
            Some(b'+' | b'-') => {
                pending_bytes.extend_from_slice(&raw);
                pending.push((text[1..].to_owned(), text.starts_with('+')));
            }
            Some(b'.') => {
                let whole = text[1..].split_once(' ').is_some_and(|(count, sum)| {
                    count.parse::<usize>().ok() == Some(pending.len())
                        && u64::from_str_radix(sum, 16).ok() == Some(checksum(&pending_bytes))
                });
                if !whole {
                    break;
                }
                lines += pending.len() + 1;
                good.append(&mut pending);
                pending_bytes.clear();
                good_len = len;
            }
            _ => break,
        }
    }
    Ok((good, good_len, lines))
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Every list, by audience id.
pub struct Lists {
    keys: RandomState,
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
/// take 160 MB.
pub const DEFAULT_MAX_MEMBERS: usize = 20_000_000;

impl Lists {
    /// Lists in memory only, at most `limit` members in all.
    pub fn new(limit: usize) -> Lists {
        Lists {
            keys: RandomState::new(),
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

    fn key(&self, id: &str) -> u64 {
        let mut h = self.keys.build_hasher();
        h.write(id.as_bytes());
        h.finish()
    }

    /// Whether `id` (as a request carries it) is a member of list `list`.
    pub fn contains(&self, list: &str, id: &str) -> bool {
        let sets = self.sets.load();
        let Some(members) = sets.get(list) else {
            return false;
        };
        members.contains(self.key(&normalize_id(id)))
    }

    /// Whether the request carries, under one of `sources`, a member of
    /// list `list`. One lookup of the list, then a hash and a binary
    /// search per id.
    pub fn any_member(
        &self,
        list: &str,
        sources: &[config::ListSource],
        ids: &dyn UserIds,
    ) -> bool {
        let sets = self.sets.load();
        let Some(members) = sets.get(list).filter(|m| !m.keys.is_empty()) else {
            return false;
        };
        sources.iter().any(|source| {
            ids.any(source, &mut |id| {
                let id = id.trim();
                let key = if id.len() == 64 && id.bytes().any(|b| b.is_ascii_uppercase()) {
                    // A hex digest in upper case: compared in lower case
                    // without allocating.
                    let mut lower = [0u8; 64];
                    lower.copy_from_slice(id.as_bytes());
                    lower.make_ascii_lowercase();
                    match std::str::from_utf8(&lower) {
                        Ok(l) => self.key(&normalize_id(l)),
                        Err(_) => return false,
                    }
                } else {
                    self.key(&normalize_id(id))
                };
                members.contains(key)
            })
        })
    }

    /// Members of one list.
    pub fn len(&self, list: &str) -> usize {
        self.sets.load().get(list).map_or(0, |m| m.keys.len())
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
    /// `"remove": true`) to list `list`: all of it or, on the first bad
    /// line, none of it. With a state directory the batch is on disk before
    /// it is applied.
    pub fn apply_jsonl(
        &self,
        list: &str,
        source_name: &str,
        text: &str,
    ) -> Result<Applied, ListError> {
        let batch = parse_batch(source_name, text)?;
        let mut w = self.writer();
        let current = self.sets.load().get(list).cloned().unwrap_or_default();
        let (keys, applied) = self.merged(&current, &batch);
        let would = self.members() - current.keys.len() + keys.len();
        let limit = self.limit.load(Ordering::Relaxed);
        if keys.len() > current.keys.len() && would > limit {
            return Err(ListError::Full { would, limit });
        }
        if applied.added + applied.removed > 0 {
            self.log(&mut w, list, &batch)?;
        }
        let members = keys.len();
        self.publish(list, keys);
        // Churn (the same ids added and removed again) grows the log, not
        // the list: past twice the list it is rewritten. A failure leaves
        // the longer log, which still reads the same.
        if let Some(log) = w.logs.get_mut(list) {
            if log.lines > 2 * members + COMPACT_SLACK {
                let compacted = read_log(&log.path)
                    .map_err(|error| ListError::Io {
                        path: log.path.clone(),
                        error,
                    })
                    .and_then(|(history, _, _)| self.rewrite(log, &history));
                if let Err(e) = compacted {
                    tracing::warn!("list log not compacted: {e}");
                }
            }
        }
        Ok(applied)
    }

    /// `current` with `batch` applied, and what changed.
    fn merged(&self, current: &Members, batch: &[(String, bool)]) -> (Vec<u64>, Applied) {
        // The last line of an id wins.
        let mut last: Vec<(u64, usize, bool)> = batch
            .iter()
            .enumerate()
            .map(|(i, (id, add))| (self.key(id), i, *add))
            .collect();
        last.sort_unstable_by_key(|&(k, i, _)| (k, std::cmp::Reverse(i)));
        last.dedup_by_key(|e| e.0);
        let mut out = Vec::with_capacity(current.keys.len() + last.len());
        let mut applied = Applied::default();
        let (old, mut j) = (&current.keys, 0);
        for &(key, _, add) in &last {
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
        applied.members = out.len();
        (out, applied)
    }

    fn publish(&self, list: &str, keys: Vec<u64>) {
        let mut map: HashMap<Box<str>, Arc<Members>> = (**self.sets.load()).clone();
        map.insert(list.into(), Arc::new(Members::new(keys)));
        self.sets.store(Arc::new(map));
    }

    /// Appends a batch to the list's log and syncs it.
    fn log(&self, w: &mut Writer, list: &str, batch: &[(String, bool)]) -> Result<(), ListError> {
        let Some(dir) = w.dir.clone() else {
            return Ok(());
        };
        let path = dir.join(file_name(list));
        let io = |error| ListError::Io {
            path: path.clone(),
            error,
        };
        if !w.logs.contains_key(list) {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io)?;
            fsync_dir(&dir).map_err(io)?;
            w.logs.insert(
                list.into(),
                Log {
                    path: path.clone(),
                    file,
                    lines: 0,
                },
            );
        }
        let log = w
            .logs
            .get_mut(list)
            .ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
        let bytes = encode_batch(batch);
        let start = log.file.metadata().map_err(io)?.len();
        let written = log
            .file
            .write_all(&bytes)
            .and_then(|()| log.file.sync_data());
        if let Err(e) = written {
            // Cut the partial batch off, so the next one follows a whole
            // one; if even that fails, the torn tail is cut at the next open.
            let _ = log.file.set_len(start);
            return Err(io(e));
        }
        log.lines += batch.len() + 1;
        Ok(())
    }

    /// Loads the member files under `data` (`*.members`, JSON lines, the
    /// file's stem naming the list), then the logs under `state` (which
    /// later batches are appended to). Any bad member file refuses the
    /// load; a log is read up to its last whole batch.
    pub fn open(
        &self,
        data: Option<&Path>,
        state: Option<&Path>,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<(), ListError> {
        if let Some(data) = data {
            for file in crate::store::files_with_extension(data, "members")? {
                let name = file.display().to_string();
                let list = file
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
                    .to_owned();
                if !known(&list) {
                    return Err(DataError {
                        source_name: name,
                        line: 0,
                        reason: format!(
                            "no list audience has the id \"{list}\" (the file's name names it)"
                        ),
                    }
                    .into());
                }
                let text = std::fs::read_to_string(&file).map_err(|e| DataError {
                    source_name: name.clone(),
                    line: 0,
                    reason: format!("cannot read file: {e}"),
                })?;
                let batch = parse_batch(&name, &text)?;
                self.apply_loaded(&list, &batch)?;
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
        let mut w = self.writer();
        w.dir = Some(dir.clone());
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        entries.sort();
        for path in entries {
            let Some(list) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(id_of_file)
            else {
                continue;
            };
            let (batch, good_len, lines) = read_log(&path).map_err(|e| io(&path, e))?;
            drop(w);
            self.apply_loaded(&list, &batch)?;
            w = self.writer();
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            if file.metadata().map_err(|e| io(&path, e))?.len() > good_len {
                // A torn batch from a crash: never acknowledged, so dropped.
                file.set_len(good_len).map_err(|e| io(&path, e))?;
                file.sync_all().map_err(|e| io(&path, e))?;
            }
            let mut log = Log {
                path: path.clone(),
                file,
                lines,
            };
            let members = self.len(&list);
            if lines > 2 * members + COMPACT_SLACK {
                self.rewrite(&mut log, &batch)?;
            }
            w.logs.insert(list.as_str().into(), log);
        }
        Ok(())
    }

    /// Applies a loaded batch (no logging, no limit check beyond a warning
    /// in the caller: what is on disk was acknowledged).
    fn apply_loaded(&self, list: &str, batch: &[(String, bool)]) -> Result<(), ListError> {
        let _w = self.writer();
        let current = self.sets.load().get(list).cloned().unwrap_or_default();
        let (keys, _) = self.merged(&current, batch);
        self.publish(list, keys);
        Ok(())
    }

    /// Rewrites a log as one batch of its current members.
    fn rewrite(&self, log: &mut Log, history: &[(String, bool)]) -> Result<(), ListError> {
        let mut last: HashMap<&str, bool> = HashMap::with_capacity(history.len());
        for (id, add) in history {
            last.insert(id, *add);
        }
        let mut members: Vec<(String, bool)> = last
            .into_iter()
            .filter(|&(_, add)| add)
            .map(|(id, _)| (id.to_owned(), true))
            .collect();
        members.sort_unstable();
        let tmp = log.path.with_extension("log.tmp");
        let io = |error| ListError::Io {
            path: tmp.clone(),
            error,
        };
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&encode_batch(&members)).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &log.path).map_err(io)?;
        if let Some(dir) = log.path.parent() {
            fsync_dir(dir).map_err(io)?;
        }
        log.file = OpenOptions::new()
            .append(true)
            .open(&log.path)
            .map_err(io)?;
        log.lines = members.len() + 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
