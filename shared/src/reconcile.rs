//! Rebuilding Redis's money counters from the replicas' journals.
//!
//! Every charge a replica acknowledged is in its journal (the live file and
//! the generations kept for reports), with its bid, day, billed and
//! over-delivered amounts and its keys. After Redis lost data, the sum of
//! the journals is what was spent: `reconcile` compares it with Redis,
//! reports every difference, and (unless it is a dry run) writes the
//! journals' spend back, marks the charged bids whose notices are still
//! accepted as duplicates, and sets a new epoch so the replicas bid again.
//!
//! A bid found in two journals (a replica silent past its claim deadline
//! whose charge another replica took over) counts once, and is reported.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use config::Timestamp;
use ledger::{BidKey, SpendKey};

use crate::keys::Keys;
use crate::ledger_impl::DAY_TTL_SECS;
use crate::StartError;

/// What the journals say.
#[derive(Debug, Default)]
pub struct Totals {
    /// Charge records read, and bids counted once.
    pub records: u64,
    pub bids: u64,
    /// Bids found in more than one journal.
    pub duplicates: Vec<BidKey>,
    pub life: BTreeMap<SpendKey, i64>,
    /// (key, day) → (billed, over-delivered).
    pub days: BTreeMap<(SpendKey, i64), (i64, i64)>,
    pub kinds: BTreeMap<SpendKey, &'static str>,
    /// Charged bids and when their notices expire (ms).
    pub forget: HashMap<BidKey, i64>,
    /// Journals of replicas still running: their lifetime spend is read
    /// from the generations kept for reports, which may miss old history.
    pub from_generations: Vec<PathBuf>,
}

/// What a stopped replica's checkpoint and journal hold, replayed as it
/// would at its start: `None` when the replica is running (it holds the
/// directory's lock).
fn replayed(
    dir: &std::path::Path,
    now: Timestamp,
) -> std::io::Result<Option<Vec<ledger::Durable>>> {
    let ledger = Arc::new(ledger::MemoryLedger::new(ledger::Options {
        // Every day Redis keeps.
        keep_days: DAY_TTL_SECS / 86_400,
        ..ledger::Options::default()
    }));
    // Read as it is, never written: the directory may be a read-only
    // copy, and a stopped replica's own start cuts its torn tail.
    if ledger::journal::read_stopped(dir, &*ledger, now)
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .is_none()
    {
        return Ok(None);
    }
    let mut items = Vec::new();
    ledger::Ledger::export(&*ledger, now, &mut |i| items.push(i));
    Ok(Some(items))
}

/// Reads every replica's journal. Lifetime spend comes from each stopped
/// replica's checkpoint and journal (all of its history); a running
/// replica's lifetime spend, and every day's, from the journal generations
/// kept for reports (listed in `from_generations`: older history may be
/// pruned from them).
pub fn read_journals(dirs: &[PathBuf]) -> std::io::Result<Totals> {
    read_journals_at(dirs, config::Clock::now(&config::SystemClock))
}

/// What tells a directory from another whatever path names it: its device
/// and inode (a bind mount is the same directory).
fn dir_id(dir: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let m = std::fs::metadata(dir)?;
    Ok((m.dev(), m.ino()))
}

/// As [`read_journals`], seen at `now`.
pub fn read_journals_at(dirs: &[PathBuf], now: Timestamp) -> std::io::Result<Totals> {
    let mut t = Totals::default();
    let mut seen: HashMap<BidKey, usize> = HashMap::new();
    let mut read: Vec<((u64, u64), PathBuf)> = Vec::with_capacity(dirs.len());
    for (i, dir) in dirs.iter().enumerate() {
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such journal directory", dir.display()),
            ));
        }
        // One directory given twice (or by two paths, or a bind mount)
        // would count its spend twice and call every bid of it one of two
        // replicas'. Copies are told apart by their replica.name (the
        // command's caller checks that).
        let id = dir_id(dir)?;
        if let Some((_, first)) = read.iter().find(|(seen, _)| *seen == id) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "{} and {}: the same journal directory given twice",
                    first.display(),
                    dir.display()
                ),
            ));
        }
        read.push((id, dir.clone()));
        let state = replayed(dir, now)?;
        if let Some(items) = &state {
            for item in items {
                match item {
                    ledger::Durable::Spend {
                        key,
                        lifetime,
                        kind,
                        ..
                    } => {
                        *t.life.entry(key.clone()).or_default() += lifetime.as_i64();
                        if let Some(kind) = kind {
                            t.kinds.insert(key.clone(), kind.as_str());
                        }
                    }
                    ledger::Durable::Charged { bid, forget } => {
                        t.forget.insert(*bid, forget.as_millis());
                    }
                    _ => {}
                }
            }
        } else {
            t.from_generations.push(dir.clone());
        }
        for g in ledger::journal::generations(dir)? {
            ledger::journal::read_generation(&g.file, |c, _| {
                t.records += 1;
                match seen.get(&c.bid) {
                    Some(&j) if j != i => {
                        t.duplicates.push(c.bid);
                        // Counted once: this replica's checkpoint counted
                        // it again, so it comes off.
                        if state.is_some() {
                            for k in &c.keys {
                                *t.life.entry(k.clone()).or_default() -= c.billed.as_i64();
                            }
                        }
                        return;
                    }
                    Some(_) => return,
                    None => {
                        seen.insert(c.bid, i);
                    }
                }
                t.bids += 1;
                let day = c.day.days_since_epoch();
                for k in &c.keys {
                    if state.is_none() {
                        *t.life.entry(k.clone()).or_default() += c.billed.as_i64();
                    }
                    let d = t.days.entry((k.clone(), day)).or_default();
                    d.0 += c.billed.as_i64();
                    d.1 += c.over_delivery.as_i64();
                }
                if let Some(kind) = c.kind {
                    t.kinds.insert(c.keys[0].clone(), kind.as_str());
                }
                t.forget.insert(c.bid, c.forget.as_millis());
            })?;
        }
    }
    Ok(t)
}

/// One counter that differs.
#[derive(Debug, PartialEq, Eq)]
pub struct Difference {
    pub key: String,
    /// `None`: the lifetime counter.
    pub day: Option<i64>,
    pub journals: i64,
    pub redis: i64,
}

#[derive(Debug)]
pub struct Report {
    pub totals: Totals,
    pub differences: Vec<Difference>,
    /// Bids marked as charged in Redis (notices still accepted).
    pub marked: u64,
    /// The new epoch, when written.
    pub epoch: Option<String>,
}

/// The replicas Redis knows under `prefix`: every one that has sent a
/// heartbeat since the state began (those stopped too), by name.
pub fn known_replicas(
    info: redis::ConnectionInfo,
    prefix: &str,
) -> Result<Vec<String>, StartError> {
    let err = |e: redis::RedisError| StartError::Redis(e.to_string());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(async {
        let client = redis::Client::open(info).map_err(err)?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(err)?;
        let keys = Keys::new(prefix);
        let mut names: Vec<String> = redis::cmd("ZRANGE")
            .arg(keys.replicas())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        let seen: Vec<String> = redis::cmd("SMEMBERS")
            .arg(keys.replicas_seen())
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        names.extend(seen);
        names.sort();
        names.dedup();
        Ok(names)
    })
}

/// Compares (and unless `dry_run`, rewrites) Redis's spend with the
/// journals'. Per-day counters older than Redis keeps them are not
/// compared. Redis counters under keys no journal mentions are reported
/// and, when writing, set to zero: give every replica's journal.
pub fn reconcile(
    info: redis::ConnectionInfo,
    prefix: &str,
    dirs: &[PathBuf],
    dry_run: bool,
    now: Timestamp,
) -> Result<Report, StartError> {
    let totals = read_journals_at(dirs, now)
        .map_err(|e| StartError::Redis(format!("reading journals: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    runtime.block_on(run(info, Keys::new(prefix), totals, dry_run, now))
}

async fn run(
    info: redis::ConnectionInfo,
    keys: Keys,
    totals: Totals,
    dry_run: bool,
    now: Timestamp,
) -> Result<Report, StartError> {
    let err = |e: redis::RedisError| StartError::Redis(e.to_string());
    let client = redis::Client::open(info).map_err(err)?;
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .map_err(err)?;
    let today = now.date().days_since_epoch();
    let oldest = today - DAY_TTL_SECS / 86_400 + 1;

    // What Redis has: every spend key under the prefix.
    let mut redis_life: BTreeMap<SpendKey, i64> = BTreeMap::new();
    let mut redis_days: BTreeMap<(SpendKey, i64), i64> = BTreeMap::new();
    for pattern in [
        format!("{}s:*", keys.prefix()),
        format!("{}d:*", keys.prefix()),
    ] {
        let mut cursor: u64 = 0;
        loop {
            let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(err)?;
            for name in names {
                let spent: Option<i64> = redis::cmd("HGET")
                    .arg(&name)
                    .arg("spent")
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                let rest = &name[keys.prefix().len()..];
                if let Some(k) = rest.strip_prefix("s:").and_then(SpendKey::parse) {
                    redis_life.insert(k, spent.unwrap_or(0));
                } else if let Some((k, d)) = rest
                    .strip_prefix("d:")
                    .and_then(|r| r.rsplit_once(':'))
                    .and_then(|(k, d)| Some((SpendKey::parse(k)?, d.parse::<i64>().ok()?)))
                {
                    redis_days.insert((k, d), spent.unwrap_or(0));
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }

    let mut differences = Vec::new();
    let mut all_keys: Vec<SpendKey> = totals.life.keys().cloned().collect();
    all_keys.extend(
        redis_life
            .keys()
            .filter(|k| !totals.life.contains_key(*k))
            .cloned(),
    );
    for k in &all_keys {
        let j = totals.life.get(k).copied().unwrap_or(0);
        let r = redis_life.get(k).copied().unwrap_or(0);
        if j != r {
            differences.push(Difference {
                key: k.to_string(),
                day: None,
                journals: j,
                redis: r,
            });
        }
    }
    let mut all_days: Vec<(SpendKey, i64)> = totals
        .days
        .keys()
        .filter(|(_, d)| *d >= oldest)
        .cloned()
        .collect();
    all_days.extend(
        redis_days
            .keys()
            .filter(|kd| !totals.days.contains_key(*kd))
            .cloned(),
    );
    for kd in &all_days {
        let j = totals.days.get(kd).map_or(0, |v| v.0);
        let r = redis_days.get(kd).copied().unwrap_or(0);
        if j != r {
            differences.push(Difference {
                key: kd.0.to_string(),
                day: Some(kd.1),
                journals: j,
                redis: r,
            });
        }
    }

    let mut marked = 0;
    let mut epoch = None;
    if !dry_run {
        let mut pipe = redis::pipe();
        // Lifetime over-delivery as the days read show it (older days may
        // be pruned from the generations): leases count it as used.
        let mut life_over: BTreeMap<&SpendKey, i64> = BTreeMap::new();
        for ((k, _), (_, over)) in &totals.days {
            *life_over.entry(k).or_default() += over;
        }
        for k in &all_keys {
            let name = keys.life(k);
            pipe.cmd("HSET")
                .arg(&name)
                .arg("spent")
                .arg(totals.life.get(k).copied().unwrap_or(0))
                .arg("over")
                .arg(life_over.get(k).copied().unwrap_or(0))
                .ignore();
            if let Some(kind) = totals.kinds.get(k) {
                pipe.cmd("HSET").arg(&name).arg("kind").arg(*kind).ignore();
            }
        }
        for kd in &all_days {
            let (billed, over) = totals.days.get(kd).copied().unwrap_or((0, 0));
            let name = keys.day(&kd.0, kd.1);
            pipe.cmd("HSET")
                .arg(&name)
                .arg("spent")
                .arg(billed)
                .arg("over")
                .arg(over)
                .ignore();
            pipe.cmd("EXPIRE").arg(&name).arg(DAY_TTL_SECS).ignore();
        }
        let now_ms = now.as_millis();
        for (bid, forget) in &totals.forget {
            if *forget > now_ms {
                pipe.cmd("SET")
                    .arg(keys.bid(*bid))
                    .arg("d")
                    .arg("PX")
                    .arg(forget - now_ms)
                    .ignore();
                marked += 1;
            }
        }
        let e = format!("r-{:x}-{:x}", now_ms, std::process::id());
        pipe.cmd("SET").arg(keys.epoch()).arg(&e).ignore();
        let () = pipe.query_async(&mut conn).await.map_err(err)?;
        epoch = Some(e);
    }
    Ok(Report {
        totals,
        differences,
        marked,
        epoch,
    })
}
