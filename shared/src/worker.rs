//! Background work of a replica, off the bid path: leases asked for by
//! bids, writes (commits, give-backs, frequency), heartbeats, reading which
//! bids other replicas charged, giving back idle leases and refreshing the
//! cluster spend that explain and reports show.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use config::Date;
use ledger::{BidKey, BudgetKind, Ledger as _, SpendKey};

use crate::keys::Keys;
use crate::ledger_impl::{lock, rand_u64, Cached, Inner, Told, DAY_TTL_SECS};

/// A write to Redis, retried until it is applied.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Commit {
        bid: BidKey,
        keys: [SpendKey; 2],
        day: i64,
        hold_day: i64,
        over: i64,
        hold: i64,
        kind: Option<BudgetKind>,
        forget: i64,
    },
    Abort {
        bid: BidKey,
        keys: [SpendKey; 2],
        day: i64,
        /// The deadline of the claim to let go.
        claim: i64,
    },
    Give {
        key: SpendKey,
        day: i64,
        amount: i64,
        /// Applied once however often it is retried.
        nonce: String,
    },
    FreqGive {
        r: String,
        bid: BidKey,
    },
    /// Lets go of this replica's claims left before a crash.
    Clean,
    FreqWon {
        w: String,
        r: String,
        window_ms: i64,
        bid: BidKey,
        at: i64,
    },
}

const TICK: Duration = Duration::from_millis(50);
/// Heartbeats in a row that must find no replica knowing a state before a
/// fresh replica creates one.
const QUIET_BEATS: u32 = 4;
/// Time a pass spends on queued writes before its other work.
const WRITE_SLICE: Duration = Duration::from_millis(100);
/// Writes kept for a retry while Redis is away; past this the oldest are
/// dropped with an error (they are in the journals: reconcile restores
/// them).
const MAX_PENDING: usize = 1_000_000;

pub(crate) async fn apply(inner: &Inner, op: &Op) -> Result<(), String> {
    let k = &inner.keys;
    let me = inner.opts.replica.clone();
    match op {
        Op::Commit {
            bid,
            keys,
            day,
            hold_day,
            over,
            hold,
            kind,
            forget,
        } => {
            let b = k.bid(*bid);
            let spend = k.spend([&keys[0], &keys[1]], *day);
            let names = [
                k.lease(&keys[0], *hold_day),
                k.lease(&keys[1], *hold_day),
                k.charged(),
                k.claims_of(&me),
                k.freq_handover(*bid),
            ];
            let mut all: Vec<&str> = vec![b.as_str()];
            all.extend(spend.iter().chain(&names).map(String::as_str));
            let got: i64 = inner
                .run(
                    &inner.scripts.commit,
                    &all,
                    &[
                        me,
                        over.to_string(),
                        hold.to_string(),
                        kind.map_or("", BudgetKind::as_str).to_string(),
                        (forget - inner.now().as_millis()).max(60_000).to_string(),
                        bid.to_string(),
                        inner.opts.stream_len.to_string(),
                        DAY_TTL_SECS.to_string(),
                        Keys::claim_member(*bid, keys, *day),
                        inner.now().as_millis().to_string(),
                    ],
                )
                .await?;
            if got == -2 {
                // Nothing written: tried again behind the other writes
                // until the key is mended (the charge stays held meanwhile).
                inner.health.wrong_type(&all.join(" "));
                inner.queue(op.clone());
            } else if got < 0 {
                tracing::error!(
                    bid = %bid,
                    "a charge journaled here was taken over by another replica (this one \
                     was silent past the claim deadline): Redis counts it once; \
                     `bidder ledger reconcile` reports it in both journals"
                );
            }
            Ok(())
        }
        Op::Abort {
            bid,
            keys,
            day,
            claim,
        } => {
            let b = k.bid(*bid);
            let spend = k.spend([&keys[0], &keys[1]], *day);
            let claims = k.claims_of(&me);
            let mut all: Vec<&str> = vec![b.as_str()];
            all.extend(spend.iter().map(String::as_str));
            all.push(&claims);
            inner
                .run::<i64>(
                    &inner.scripts.abort,
                    &all,
                    &[me, Keys::claim_member(*bid, keys, *day), claim.to_string()],
                )
                .await
                .map(|_| ())
        }
        Op::Give {
            key,
            day,
            amount,
            nonce,
        } => {
            let names = [
                k.life(key),
                k.day(key, *day),
                k.lease(key, *day),
                k.held_by(&me),
                k.nonce(nonce),
            ];
            let all: Vec<&str> = names.iter().map(String::as_str).collect();
            inner
                .run::<i64>(
                    &inner.scripts.give,
                    &all,
                    &[me, amount.to_string(), Keys::lease_member(key, *day)],
                )
                .await
                .map(|_| ())
        }
        Op::Clean => {
            // Claims of bids this replica knows as charged (restored from
            // its checkpoint, whose records no commit was queued for) are
            // committed, not let go.
            let members: Vec<String> = inner
                .cmd(redis::cmd("SMEMBERS").arg(k.claims_of(&me)).clone())
                .await?;
            let parsed: Vec<(BidKey, SpendKey, SpendKey, i64)> = members
                .iter()
                .filter_map(|m| {
                    let mut f = m.split('\t');
                    Some((
                        BidKey(u64::from_str_radix(f.next()?, 16).ok()?),
                        SpendKey::parse(f.next()?)?,
                        SpendKey::parse(f.next()?)?,
                        f.next()?.parse::<i64>().ok()?,
                    ))
                })
                .collect();
            // Claims of this run are this run's to commit (with the lease
            // their bid held) or abort: a commit here, with no hold, would
            // strand that lease when a replay delayed this pass.
            let owners: Vec<Option<String>> = if parsed.is_empty() {
                Vec::new()
            } else {
                let mut mget = redis::cmd("MGET");
                for (bid, ..) in &parsed {
                    mget.arg(k.bid(*bid));
                }
                inner.cmd(mget).await?
            };
            let this_run = format!("c {} ", inner.owner);
            for ((bid, k1, k2, day), owner) in parsed.into_iter().zip(owners) {
                if owner.is_some_and(|o| o.starts_with(&this_run)) {
                    continue;
                }
                if inner.local.is_charged(bid) {
                    Box::pin(apply(
                        inner,
                        &Op::Commit {
                            bid,
                            keys: [k1, k2],
                            day,
                            hold_day: day,
                            over: 0,
                            hold: 0,
                            kind: None,
                            forget: inner.now().as_millis() + 86_400_000,
                        },
                    ))
                    .await?;
                }
            }
            let gone: i64 = inner
                .run(
                    &inner.scripts.clean,
                    &[&k.claims_of(&me)],
                    &[me.clone(), k.prefix().to_string(), inner.owner.clone()],
                )
                .await?;
            if gone > 0 {
                tracing::warn!(
                    claims = gone,
                    "let go of charges this replica had claimed but not journaled before it stopped"
                );
            }
            Ok(())
        }
        Op::FreqGive { r, bid } => inner
            .run::<i64>(&inner.scripts.freq_give, &[r], &[bid.to_string()])
            .await
            .map(|_| ()),
        Op::FreqWon {
            w,
            r,
            window_ms,
            bid,
            at,
        } => inner
            .run::<i64>(
                &inner.scripts.freq_won,
                &[w, r],
                &[at.to_string(), window_ms.to_string(), bid.to_string()],
            )
            .await
            .map(|_| ()),
    }
}

/// Cluster spend under a key on a day.
pub(crate) async fn read(inner: &Inner, key: &SpendKey, day: i64) -> Result<Cached, String> {
    read_many(inner, &[(key.clone(), day)])
        .await?
        .pop()
        .ok_or_else(|| "Redis: no answer".to_string())
}

/// Cluster spend under many keys, in one round trip.
async fn read_many(inner: &Inner, wanted: &[(SpendKey, i64)]) -> Result<Vec<Cached>, String> {
    let k = &inner.keys;
    let names: Vec<String> = wanted
        .iter()
        .flat_map(|(key, day)| [k.life(key), k.day(key, *day)])
        .collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let flat: Vec<String> = inner
        .run(&inner.scripts.read, &all, &[] as &[String])
        .await?;
    let rows: Vec<Vec<Option<String>>> = flat
        .chunks(2)
        .map(|p| {
            p.iter()
                .map(|s| Some(s.clone()).filter(|s| !s.is_empty()))
                .collect()
        })
        .collect();
    let num = |v: Option<&Option<String>>| {
        v.and_then(|s| s.as_deref())
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
    };
    Ok(rows
        .chunks(2)
        .map(|pair| {
            let (life, d) = (&pair[0], pair.get(1));
            let kind = life
                .get(1)
                .and_then(|s| s.as_deref())
                .and_then(BudgetKind::parse);
            Cached {
                life: num(life.first()),
                day: d.map_or(0, |d| num(d.first())),
                over: d.map_or(0, |d| num(d.get(1))),
                kind,
            }
        })
        .collect())
}

pub(crate) async fn kind(inner: &Inner, key: &SpendKey) -> Result<Option<BudgetKind>, String> {
    let day = inner.now().date().days_since_epoch();
    read(inner, key, day).await.map(|c| c.kind)
}

/// The budget types of `keys`, a few hundred to a round trip: one bounded
/// wait per batch, not per key, when Redis does not answer.
pub(crate) async fn kinds(
    inner: &Inner,
    keys: &[SpendKey],
) -> Result<Vec<Option<BudgetKind>>, String> {
    let day = inner.now().date().days_since_epoch();
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(256) {
        let wanted: Vec<(SpendKey, i64)> = chunk.iter().map(|k| (k.clone(), day)).collect();
        out.extend(read_many(inner, &wanted).await?.into_iter().map(|c| c.kind));
    }
    Ok(out)
}

/// Gives back every lease not covering a hold, and waits for pending
/// writes (shutdown).
pub(crate) async fn close(inner: &Inner) {
    give_back(inner, true);
    let mut flushed = false;
    for _ in 0..100 {
        if inner.pending_ops.load(Ordering::Relaxed) <= 0 {
            flushed = true;
            break;
        }
        inner.wake.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !flushed {
        tracing::warn!(
            pending = inner.pending_ops.load(Ordering::Relaxed),
            "Redis writes still pending at shutdown: they are in the journal; \
             the next start or `bidder ledger reconcile` applies them"
        );
    }
    // After the charges (they come first), with what time is left.
    let _ = tokio::time::timeout(Duration::from_millis(800), hand_over_frequency(inner)).await;
}

/// At a stop: the frequency keys of this replica's capped bids not charged
/// yet, by bid, for the replica that charges one to count its impression
/// (`COMMIT`). Only this replica knows a bid's user; without this, a win
/// charged elsewhere after a deploy counted under no cap (replica probe).
/// Kept as long as the slot would have been; bounded by the bids in flight.
async fn hand_over_frequency(inner: &Inner) {
    let now = inner.now().as_millis();
    let slots: Vec<(u64, String, i64)> = lock(&inner.freq)
        .iter()
        .filter(|(_, s)| s.keep_until > now)
        .map(|(&bid, s)| {
            let text = format!("{}\n{}\n{}", s.w, s.r, s.window_ms);
            (bid, text, s.keep_until - now)
        })
        .collect();
    if slots.is_empty() {
        return;
    }
    // In pipelines of a thousand: each answers within the connection's
    // response timeout.
    let sent: Result<(), String> = async {
        let mut conn = inner.connection().await?;
        for chunk in slots.chunks(1_000) {
            let mut pipe = redis::pipe();
            for (bid, text, ms) in chunk {
                pipe.cmd("SET")
                    .arg(inner.keys.freq_handover(BidKey(*bid)))
                    .arg(text)
                    .arg("PX")
                    .arg(*ms)
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = sent {
        tracing::warn!(
            bids = slots.len(),
            error = %e,
            "capped bids in flight not handed over at the stop: a win of theirs charged on \
             another replica counts under no frequency cap"
        );
    }
}

/// Returns unused leases: all of them when `all`, otherwise those idle,
/// those of past days, and what passes twice a lease's size.
fn give_back(inner: &Inner, all: bool) {
    let now = inner.now();
    let now_ms = now.as_millis();
    let today = now.date().days_since_epoch();
    let mut gives = Vec::new();
    for shard in &inner.leases {
        let mut shard = lock(shard);
        shard.retain(|(key, day), l| {
            let held = inner
                .local
                .spent(key, Date::from_days_since_epoch(*day))
                .held_today
                .as_i64();
            let balance = l.granted - held;
            // A running rate of spend per maintenance pass (about 1 s).
            l.rate = (l.rate + l.used) / 2;
            l.used = 0;
            let target = l
                .last_cost
                .saturating_mul(inner.opts.min_lease_bids)
                .max(l.rate * inner.opts.lease_ms / 1000);
            let give = if all || *day < today || now_ms - l.last_use_ms > inner.opts.idle_return_ms
            {
                balance
            } else if balance > 2 * target {
                balance - target
            } else {
                0
            };
            if give > 0 {
                l.granted -= give;
                gives.push((key.clone(), *day, give));
            }
            l.granted > 0 || held > 0 || (*day >= today && now_ms - l.last_use_ms < 60_000)
        });
    }
    for (key, day, amount) in gives {
        inner.give(key, day, amount);
    }
}

/// One heartbeat: alive, reclaim the silent, and check the epoch.
async fn heartbeat(inner: &Inner, epoch: &mut Option<String>) -> Result<(), String> {
    let k = &inner.keys;
    let now = inner.now().as_millis();
    let beat: Result<(i64, String, i64, i64), String> = inner
        .run(
            &inner.scripts.heartbeat,
            &[
                &k.replicas(),
                &k.epoch(),
                &k.known(),
                &k.reads_per_bid(),
                &k.all_read_per_bid_since(),
            ],
            &[
                inner.opts.replica.clone(),
                now.to_string(),
                inner.opts.dead_after_ms.to_string(),
                k.prefix().to_string(),
                epoch.clone().unwrap_or_default(),
                inner.opts.retire_ms.to_string(),
            ],
        )
        .await;
    let (present, found, knowing, all_read_for) = match beat {
        Ok(b) => b,
        Err(e) => {
            // Cut off, this replica cannot see who joins: per-url until a
            // heartbeat goes through again, and one more after that.
            inner.last_beat_ms.store(i64::MIN, Ordering::Relaxed);
            all_read_per_bid(inner, false);
            return Err(e);
        }
    };
    if present == 0
        && inner
            .leases
            .iter()
            .any(|s| lock(s).values().any(|l| l.granted > 0))
    {
        // Silent long enough that the others took our leases back: what we
        // thought we held is not ours any more.
        tracing::warn!("this replica's leases were reclaimed while it was cut off; asking anew");
        for s in &inner.leases {
            for l in lock(s).values_mut() {
                l.granted = 0;
            }
        }
    }
    // After a silence longer than `dead_after`, the others were dropped
    // and may not have come back yet: one more heartbeat first.
    let before = inner.last_beat_ms.swap(now, Ordering::Relaxed);
    let seen_all = before != i64::MIN && now.saturating_sub(before) <= inner.opts.dead_after_ms;
    all_read_per_bid(
        inner,
        seen_all && all_read_for >= 0 && all_read_for >= inner.opts.per_bid_after_ms,
    );
    // Fresh only now: bids waiting for Redis must not spend the leases
    // just found reclaimed.
    inner.health.beat();
    check_epoch(inner, epoch, found, knowing).await
}

/// Sets [`Inner::all_read_per_bid`], saying when it changes.
fn all_read_per_bid(inner: &Inner, all: bool) {
    if inner.all_read_per_bid.swap(all, Ordering::Relaxed) != all {
        tracing::info!(
            all_read_per_bid = all,
            "URLs are signed {} from now on",
            if all {
                "per bid: every replica has read them for the soak"
            } else {
                "per URL: not every replica has read per-bid URLs for the soak"
            }
        );
    }
}

async fn check_epoch(
    inner: &Inner,
    epoch: &mut Option<String>,
    found: String,
    knowing: i64,
) -> Result<(), String> {
    let remembered = epoch.clone();
    if found.is_empty() {
        // Only a first start creates the state: this replica has no
        // charges and knows no epoch, and no live replica knows one (after
        // Redis lost its data, the others still do).
        let quiet = if knowing == 0 {
            inner.quiet_beats.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            inner.quiet_beats.store(0, Ordering::Relaxed);
            0
        };
        // Several heartbeats long: replicas that know the state re-register
        // within one heartbeat of Redis coming back.
        if remembered.is_none() && inner.opts.may_initialise && quiet < QUIET_BEATS {
            inner.health.waiting(
                "no shared state in Redis yet: waiting to see that no other replica knows one",
            );
            return Ok(());
        }
        if remembered.is_none() && inner.opts.may_initialise && knowing == 0 {
            let fresh = format!("i-{:016x}", rand_u64());
            let now: String = inner
                .run(
                    &inner.scripts.init,
                    &[&inner.keys.epoch(), &inner.keys.known()],
                    std::slice::from_ref(&fresh),
                )
                .await?;
            if now.is_empty() {
                // A replica that knows the state registered meanwhile.
                inner.quiet_beats.store(0, Ordering::Relaxed);
                return Ok(());
            }
            if now == fresh {
                tracing::info!(epoch = %now, "shared state created in Redis");
            }
            remember(inner, epoch, now);
            inner.health.lost(None);
            return Ok(());
        }
        inner.health.lost(Some(
            "Redis has lost the shared state (no epoch): budgeted line items stay off until \
             `bidder ledger reconcile` rebuilds it from the replicas' journals"
                .into(),
        ));
        return Ok(());
    }
    if let Some(knew) = found.strip_prefix("x-") {
        inner.health.lost(Some(format!(
            "Redis's shared state was created anew after losing its data while a replica \
             knew an earlier one ({knew}): budgeted line items stay off on every replica until \
             `bidder ledger reconcile` rebuilds it from the journals"
        )));
        return Ok(());
    }
    match remembered {
        Some(r) if r != found && !found.starts_with("r-") => {
            // A state created by a fresh replica over a history this one
            // knows: every replica stops, not this one alone.
            let marked: Result<i64, String> = inner
                .run(
                    &inner.scripts.conflict,
                    &[&inner.keys.epoch()],
                    &[found.clone(), r.clone()],
                )
                .await;
            if marked == Ok(1) {
                tracing::error!(
                    found = %found,
                    knew = %r,
                    "Redis's shared state was created anew over the history this replica \
                     knows: every replica stops bidding on budgets until `bidder ledger \
                     reconcile`"
                );
            }
            inner.health.lost(Some(format!(
                "Redis's shared state was created anew ({found}, this replica knew {r}) after \
                 losing its data: budgeted line items stay off until `bidder ledger reconcile` \
                 rebuilds it"
            )));
        }
        _ => {
            if epoch.as_deref() != Some(found.as_str()) {
                if remembered.is_some() && found.starts_with("r-") {
                    // Not yet: the next heartbeat tries again, and budgeted
                    // line items stay off meanwhile.
                    if let Err(e) = restore_holds(inner, &found).await {
                        tracing::warn!(
                            error = %e,
                            "the rebuilt shared state cannot yet hold this replica's bids in \
                             flight: budgeted line items stay off, here and (for new leases) on \
                             every replica, until it can"
                        );
                        return Err(e);
                    }
                }
                remember(inner, epoch, found);
            } else {
                // Known from the file at a restart: the scripts check it.
                *lock(&inner.epoch) = found;
            }
            inner.health.lost(None);
        }
    }
    Ok(())
}

/// Redis lost the state this replica knew and `bidder ledger reconcile`
/// rebuilt it (`epoch`): the leases it had are gone, but its bids still
/// waiting for their notices may win. Each (key, day)'s lease is topped up
/// to its holds before the replica says it knows the new state; other
/// replicas' leases wait for that (`LEASE`, why 4). A reconcile of a state
/// that lost nothing finds the leases there and adds nothing.
async fn restore_holds(inner: &Inner, epoch: &str) -> Result<(), String> {
    let mut held = Vec::new();
    for shard in &inner.leases {
        for ((key, day), l) in lock(shard).iter_mut() {
            l.granted = 0;
            let h = inner
                .local
                .spent(key, Date::from_days_since_epoch(*day))
                .held_today
                .as_i64();
            // Every lease, holds or not: where the state lost nothing its
            // leases are still there, and what is not known here as
            // granted would stay leased in Redis, never given back.
            held.push((key.clone(), *day, h));
        }
    }
    let k = &inner.keys;
    let me = &inner.opts.replica;
    let (mut keys, mut amount) = (0u64, 0i64);
    for (key, day, h) in held {
        let member = Keys::lease_member(&key, day);
        let names = [
            k.life(&key),
            k.day(&key, day),
            k.lease(&key, day),
            k.held_by(me),
            k.epoch(),
        ];
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let r: i64 = inner
            .run(
                &inner.scripts.restore,
                &all,
                &[
                    me.clone(),
                    h.to_string(),
                    member,
                    DAY_TTL_SECS.to_string(),
                    epoch.to_string(),
                ],
            )
            .await?;
        if r == -3 {
            return Err("the shared state changed while its holds were leased again".into());
        }
        if r < 0 {
            inner.health.wrong_type(&names.join(" "));
            return Err("a key holds another type: the holds cannot be leased again".into());
        }
        // What Redis lends this replica there now: the hold, or more where
        // the state lost nothing (its balance is given back as usual).
        if let Some(l) = lock(&inner.leases[inner.shard(&key)]).get_mut(&(key, day)) {
            l.granted = r;
        }
        if h > 0 {
            keys += 1;
            amount += h;
        }
    }
    tracing::info!(
        epoch,
        keys,
        held_micros = amount,
        "the rebuilt shared state holds again what this replica's bids in flight hold"
    );
    Ok(())
}

/// Bought bids asked about per pass (`MGET`s of a thousand keys each).
const KEEP_BIDS_PER_PASS: usize = 5_000;
/// Keys and days kept per pass: a script call each.
const KEEP_KEYS_PER_PASS: usize = 256;

/// Makes this replica's leases cover again what the bought bids of its
/// previous run hold here ([`Inner::keep`]), after that run's leases were
/// reclaimed (`RESET`), a bounded share per pass so that heartbeats and
/// writes never wait long behind it:
///
/// - first, which of the bids were charged by another replica while this
///   one was away (their billing notices went there; the stream of
///   charges told only the replicas then reading it): their holds go, or
///   their leases were kept until their notices expired, a day (review
///   finding);
/// - then, for each key and day, `KEEP` with what is held there now. What
///   it adds is added to the lease known here, not set to Redis's total:
///   give-backs and commits still queued would otherwise be counted twice.
///
/// A key of another type is skipped (the line item stays off anyway, see
/// `LEASE`); a failed call leaves the rest for the next pass.
pub(crate) async fn keep_leases(inner: &Inner) -> Result<(), String> {
    let bids: Vec<BidKey> = {
        let mut keep = lock(&inner.keep);
        let n = keep.bids.len().min(KEEP_BIDS_PER_PASS);
        keep.bids.drain(..n).collect()
    };
    if !bids.is_empty() {
        let charged = charged(inner, &bids).await;
        let Ok(charged) = charged else {
            let mut keep = lock(&inner.keep);
            for b in bids.into_iter().rev() {
                keep.bids.push_front(b);
            }
            return charged.map(|_| ());
        };
        for (bid, _) in bids.iter().zip(charged).filter(|(_, c)| *c) {
            settled_elsewhere(inner, *bid);
        }
        if !lock(&inner.keep).bids.is_empty() {
            return Ok(());
        }
    }
    let todo: Vec<_> = {
        let mut keep = lock(&inner.keep);
        let n = keep.keys.len().min(KEEP_KEYS_PER_PASS);
        keep.keys.drain(..n).collect()
    };
    let k = &inner.keys;
    let me = &inner.opts.replica;
    let mut todo = todo.into_iter();
    while let Some((key, day)) = todo.next() {
        let held = inner
            .local
            .spent(&key, Date::from_days_since_epoch(day))
            .held_today
            .as_i64();
        let names = [
            k.life(&key),
            k.day(&key, day),
            k.lease(&key, day),
            k.held_by(me),
            k.retiring(),
            k.retiring_of(me),
        ];
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let got: Result<Vec<i64>, String> = inner
            .run(
                &inner.scripts.keep,
                &all,
                &[
                    me.clone(),
                    held.to_string(),
                    Keys::lease_member(&key, day),
                    DAY_TTL_SECS.to_string(),
                ],
            )
            .await;
        match got.as_deref() {
            Ok([lease, added, ..]) if *lease >= 0 => {
                lock(&inner.leases[inner.shard(&key)])
                    .entry((key, day))
                    .or_default()
                    .granted += *added;
            }
            Ok(_) => inner.health.wrong_type(&names.join(" ")),
            Err(_) => {
                let mut keep = lock(&inner.keep);
                for at in todo.rev() {
                    keep.keys.push_front(at);
                }
                keep.keys.push_front((key, day));
                return got.map(|_| ());
            }
        }
    }
    Ok(())
}

/// Whether each of `bids` was charged, on any replica (`b:BID` is `d`).
pub(crate) async fn charged(inner: &Inner, bids: &[BidKey]) -> Result<Vec<bool>, String> {
    let mut conn = inner.connection().await?;
    let keys: Vec<String> = bids.iter().map(|&b| inner.keys.bid(b)).collect();
    // MGETs of a thousand keys: a few commands, each short enough for the
    // claims of win notices on the same connection.
    let mut pipe = redis::pipe();
    for chunk in keys.chunks(1_000) {
        pipe.cmd("MGET").arg(chunk);
    }
    let read = pipe.query_async::<Vec<Vec<Option<String>>>>(&mut conn);
    match tokio::time::timeout(inner.opts.timeout, read).await {
        Ok(Ok(v)) => Ok(v
            .iter()
            .flatten()
            .map(|m| m.as_deref() == Some("d"))
            .collect()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer from Redis".into()),
    }
}

/// Claims `events` (a bid, and whether its click or its impression) for
/// this replica to record: `Some(true)` for each it claimed, `Some(false)`
/// for each another replica claimed first, `None` for each Redis did not
/// answer for. Pipelines of `SET NX`, a few thousand each, so that a
/// round after a pause (many events at once) is not one pipeline past the
/// timeout.
pub(crate) async fn claim_tracked(inner: &Inner, events: &[(BidKey, bool)]) -> Vec<Option<bool>> {
    let mut out = Vec::with_capacity(events.len());
    let Ok(mut conn) = inner.connection().await else {
        out.resize(events.len(), None);
        return out;
    };
    for chunk in events.chunks(5_000) {
        let mut pipe = redis::pipe();
        for &(bid, click) in chunk {
            // The value says nothing: the key is the claim.
            pipe.cmd("SET")
                .arg(inner.keys.tracked(bid, click))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(crate::TRACKED_CLAIM_MS);
        }
        let set = pipe.query_async::<Vec<Option<String>>>(&mut conn);
        match tokio::time::timeout(inner.opts.timeout, set).await {
            Ok(Ok(v)) if v.len() == chunk.len() => {
                out.extend(v.iter().map(|r| Some(r.is_some())));
            }
            // Not answered (or not in full): the rest is not known either.
            _ => break,
        }
    }
    out.resize(events.len(), None);
    out
}

fn remember(inner: &Inner, epoch: &mut Option<String>, value: String) {
    *lock(&inner.epoch) = value.clone();
    if let Some(path) = &inner.opts.epoch_file {
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, format!("{value}\n"))
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            tracing::error!(path = %path.display(), error = %e, "cannot remember the shared state's epoch");
        }
    }
    *epoch = Some(value);
}

/// The entries of stream `key` after `last`, at most `count`; none at the
/// first read, which only finds where the stream ends (what came before
/// this replica started is not its business). `health`: a failure says
/// Redis is failing, as the calls the bidding depends on say it.
async fn read_stream(
    inner: &Inner,
    key: &str,
    last: &mut Option<String>,
    count: usize,
    health: bool,
) -> Result<Vec<(String, Vec<String>)>, String> {
    let query = |cmd: redis::Cmd| async move {
        if health {
            return inner.cmd(cmd).await;
        }
        let mut conn = inner.connection().await?;
        match tokio::time::timeout(inner.opts.timeout, cmd.query_async(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_string()),
        }
    };
    let Some(from) = last.clone() else {
        let tail: Vec<(String, Vec<String>)> = query(
            redis::cmd("XREVRANGE")
                .arg(key)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .clone(),
        )
        .await?;
        *last = Some(
            tail.first()
                .map_or_else(|| "0-0".to_string(), |(id, _)| id.clone()),
        );
        return Ok(Vec::new());
    };
    query(
        redis::cmd("XRANGE")
            .arg(key)
            .arg(format!("({from}"))
            .arg("+")
            .arg("COUNT")
            .arg(count)
            .clone(),
    )
    .await
}

/// The value of `name` in a stream entry's fields.
fn entry_field<'a>(fields: &'a [String], name: &str) -> Option<&'a String> {
    fields
        .chunks(2)
        .find(|c| c.first().map(String::as_str) == Some(name))
        .and_then(|c| c.get(1))
}

/// A bid another replica charged: its hold here goes, and the lease that
/// covered it goes back to Redis.
fn settled_elsewhere(inner: &Inner, bid: BidKey) {
    if let Some((amount, day, keys)) = inner.local.settled_elsewhere(bid) {
        if amount.as_i64() > 0 {
            for key in keys {
                let a = inner.shrink(&key, day, amount.as_i64());
                if a > 0 {
                    inner.give(key, day, a);
                }
            }
        }
    }
}

/// Bids charged by other replicas since `last`: holds here let go.
async fn settled(inner: &Inner, last: &mut Option<String>) -> Result<(), String> {
    let entries = read_stream(inner, &inner.keys.charged(), last, 5000, true).await?;
    for (id, fields) in &entries {
        // Past this entry whatever it holds: a run of this replica's own
        // charges must not stop the reading.
        *last = Some(id.clone());
        let field = |name: &str| entry_field(fields, name);
        if field("r").map(String::as_str) == Some(inner.opts.replica.as_str()) {
            continue;
        }
        let Some(bid) = field("b").and_then(|b| u64::from_str_radix(b, 16).ok()) else {
            continue;
        };
        // An impression charged elsewhere counts under the cap this
        // replica took the slot for.
        let slot = lock(&inner.freq).remove(&bid);
        if let Some(s) = slot {
            inner.queue(Op::FreqWon {
                w: s.w,
                r: s.r,
                window_ms: s.window_ms,
                bid: BidKey(bid),
                at: inner.now().as_millis(),
            });
        }
        settled_elsewhere(inner, BidKey(bid));
    }
    Ok(())
}

/// Losses told here for bids other replicas hold, gathered since the last
/// pass (see `Inner::lost_elsewhere`), go on to them in the stream of
/// losses: at most [`LOSS_ENTRIES_PER_PASS`] entries of
/// [`LOSSES_PER_ENTRY`] bids, in one round trip, never queued behind or in
/// front of the charges' writes. Best effort: a loss that does not get
/// through lets its hold end with its reservation.
async fn pass_on_losses(inner: &Inner) {
    let mut pipe = redis::pipe();
    let mut entries = 0;
    // Wins first: a win not handed on lets a bought impression's hold go
    // (over-delivery); a loss not handed on only holds budget a while.
    for told in [Told::Won, Told::Lost] {
        while entries < LOSS_ENTRIES_PER_PASS {
            let bids = inner.take_told(told, LOSSES_PER_ENTRY);
            if bids.is_empty() {
                break;
            }
            let mut list = String::with_capacity(bids.len() * 17);
            for (i, bid) in bids.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                list.push_str(&BidKey(*bid).to_string());
            }
            pipe.cmd("XADD")
                .arg(inner.keys.lost())
                .arg("MAXLEN")
                .arg("~")
                .arg(LOST_STREAM_LEN)
                .arg("*")
                .arg("r")
                .arg(&inner.opts.replica)
                .arg(told.field())
                .arg(list)
                .ignore();
            entries += 1;
        }
    }
    if entries == 0 || inner.unavailable() {
        return;
    }
    if let Ok(mut conn) = inner.connection().await {
        let _ = tokio::time::timeout(inner.opts.timeout, pipe.query_async::<()>(&mut conn)).await;
    }
}

/// Reads the losses other replicas were told of since `last` (from the
/// stream's end at the first read): each hold this replica keeps for one
/// goes as if the notice had come here (a bid already won or charged keeps
/// it). A few entries a pass; a reader left behind skips what the stream
/// no longer holds, and those holds end with their reservations.
async fn lost_elsewhere(inner: &Inner, last: &mut Option<String>) -> Result<(), String> {
    // Best effort: read apart from the calls whose failures say Redis is
    // failing, so a slow read here never stops the bidding.
    let entries = read_stream(inner, &inner.keys.lost(), last, LOSS_ENTRIES_READ, false).await?;
    for (id, fields) in &entries {
        *last = Some(id.clone());
        let field = |name: &str| entry_field(fields, name);
        if field("r").map(String::as_str) == Some(inner.opts.replica.as_str()) {
            continue;
        }
        // Win notices told elsewhere, of bids billed later.
        if let Some(list) = field(Told::Won.field()) {
            for bid in list.split(',').take(LOSSES_PER_ENTRY) {
                if let Ok(bid) = u64::from_str_radix(bid, 16) {
                    inner.won_here(BidKey(bid));
                }
            }
        }
        let Some(list) = field(Told::Lost.field()) else {
            continue;
        };
        for bid in list.split(',').take(LOSSES_PER_ENTRY) {
            let Ok(bid) = u64::from_str_radix(bid, 16) else {
                continue;
            };
            if let (_, Some(give)) = inner.release_here(BidKey(bid)) {
                inner.queue(give);
            }
        }
    }
    Ok(())
}

/// Bids in one entry of the stream of losses, at most (about 8.5 KB).
pub(crate) const LOSSES_PER_ENTRY: usize = 500;
/// Entries a replica adds per pass (a tenth of a second), at most: 20,000
/// losses a second handed on.
const LOSS_ENTRIES_PER_PASS: usize = 4;
/// Entries a replica reads per pass, at most (about 425 KB).
const LOSS_ENTRIES_READ: usize = 50;
/// Entries the stream of losses keeps (about 8.5 MB at most).
const LOST_STREAM_LEN: usize = 1_000;

/// Reads the cached spend again, a bounded share of a pass at a time
/// (tens of thousands of keys on a slow Redis must not hold off the
/// heartbeat): `next` says where the previous pass stopped.
async fn refresh_cache(inner: &Inner, next: &mut usize) {
    // Keys of days gone by are read no more.
    let today = inner.now().date().days_since_epoch();
    lock(&inner.cache).retain(|(_, d), _| *d >= today - 2);
    let mut wanted: Vec<(SpendKey, i64)> = lock(&inner.cache).keys().cloned().collect();
    // In a stable order, so that a pass goes on where the last stopped.
    wanted.sort_unstable();
    if *next >= wanted.len() {
        *next = 0;
    }
    let began = std::time::Instant::now();
    // A few round trips a second however many line items explain and
    // reload ask about.
    for chunk in wanted[*next..].chunks(500) {
        if began.elapsed() > WRITE_SLICE {
            return;
        }
        *next += chunk.len();
        match read_many(inner, chunk).await {
            Ok(rows) => {
                let mut cache = lock(&inner.cache);
                for (kd, c) in chunk.iter().zip(rows) {
                    cache.insert(kd.clone(), c);
                }
            }
            Err(_) => return,
        }
    }
}

/// The background loop. Holds the ledger weakly: it ends with it.
pub(crate) async fn run(
    inner: Weak<Inner>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Op>,
    ready: std::sync::mpsc::SyncSender<Result<(), String>>,
) {
    let mut pending: VecDeque<Op> = VecDeque::new();
    let mut reset_done = false;
    let mut beats: u32 = 0;
    let mut epoch: Option<String> = None;
    let mut last_stream: Option<String> = None;
    let mut last_lost: Option<String> = None;
    let mut started = false;
    let mut last_beat = i64::MIN / 2;
    let mut last_maintenance = i64::MIN / 2;
    let mut last_stream_read = i64::MIN / 2;
    let mut cache_next = 0usize;
    let mut ready = Some(ready);
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if epoch.is_none() {
            epoch = inner
                .opts
                .epoch_file
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
        }
        let clock_ms = inner.now().as_millis();
        // Intervals run on the monotonic clock: the injected one is for
        // business time (and stands still in tests).
        let mono = inner.health.ms();
        // Nothing before the journal is replayed: another process on the
        // same directory is refused by its lock only then, and must not
        // take this replica's leases first.
        if !inner.go.load(Ordering::Relaxed) {
            drop(inner);
            tokio::time::sleep(TICK).await;
            continue;
        }
        if !started && reset_done {
            if heartbeat(&inner, &mut epoch).await.is_ok() {
                started = true;
                last_beat = mono;
            } else {
                drop(inner);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        if !started {
            // Leases of this replica's previous run: its holds died with
            // it, but its bids may still win, so they retire (RESET).
            let k = &inner.keys;
            let reset: Result<i64, String> = inner
                .run(
                    &inner.scripts.reset,
                    &[&k.replicas(), &k.reads_per_bid()],
                    &[
                        inner.opts.replica.clone(),
                        clock_ms.to_string(),
                        k.prefix().to_string(),
                        inner.opts.retire_ms.to_string(),
                    ],
                )
                .await;
            match reset {
                Ok(given) => {
                    reset_done = true;
                    if given > 0 {
                        tracing::info!(
                            micros = given,
                            back_in_ms = inner.opts.retire_ms,
                            "retired the leases of this replica's previous run: they go back once \
                             its bids can no longer win"
                        );
                    }
                    let beat = heartbeat(&inner, &mut epoch).await;
                    if beat.is_ok() {
                        started = true;
                        last_beat = mono;
                    }
                }
                Err(e) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(Err(e));
                    }
                    drop(inner);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        // Before any lease is asked for: the bought bids of the previous
        // run take their leases back first. The stream of charges is read
        // from its end first (its first read only finds the end): a bid
        // charged elsewhere after `keep_leases` asked Redis about it is
        // then in the stream, and one before is in the answer (review
        // finding: between the two, a charge was seen by neither).
        if started && !lock(&inner.keep).is_empty() {
            if last_stream.is_none() {
                let _ = settled(&inner, &mut last_stream).await;
            }
            let kept = match last_stream {
                Some(_) => keep_leases(&inner).await,
                None => Err("the stream of charges cannot be read yet".to_string()),
            };
            if let Err(e) = kept {
                // Tried again at every pass: said every ten seconds.
                let mut keep = lock(&inner.keep);
                if keep.warned_at.is_none_or(|at| mono - at >= 10_000) {
                    keep.warned_at = Some(mono);
                    tracing::warn!(
                        error = %e,
                        "the leases of bids bought before the restart could not be kept yet: \
                         tried again at the next pass"
                    );
                }
            }
        }
        // Writes first: they are owed.
        while let Ok(op) = rx.try_recv() {
            pending.push_back(op);
        }
        while pending.len() > MAX_PENDING {
            pending.pop_front();
            inner.pending_ops.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(
                "Redis writes dropped: too many pending; run `bidder ledger reconcile`"
            );
        }
        // A bounded share of each pass: a backlog (a restart's replayed
        // commits) must not starve heartbeats, leases and claims.
        let began = std::time::Instant::now();
        let mut mid_backlog = false;
        while let Some(op) = pending.front() {
            if began.elapsed() > WRITE_SLICE {
                mid_backlog = true;
                break;
            }
            if apply(&inner, op).await.is_err() {
                break;
            }
            pending.pop_front();
            inner.pending_ops.fetch_sub(1, Ordering::Relaxed);
        }
        // Leases bids are waiting for, a bounded share of the pass too:
        // the heartbeat below must not wait behind thousands of them (the
        // others reclaim a silent replica's leases). What is left waits
        // for the next pass.
        let asks: Vec<_> = lock(&inner.asks).drain().collect();
        let began = std::time::Instant::now();
        let mut asks = asks.into_iter();
        while let Some((pair, ask)) = asks.next() {
            if inner.unavailable() || began.elapsed() > WRITE_SLICE {
                let mut waiting = lock(&inner.asks);
                waiting.entry(pair).or_insert(ask);
                for (p, a) in asks {
                    waiting.entry(p).or_insert(a);
                }
                break;
            }
            match inner.lease(&ask).await {
                Ok((grant, _)) if grant > 0 => {
                    inner.granted(&ask, grant);
                    lock(&inner.refused).remove(&pair);
                }
                Ok((_, why)) => {
                    let r = match why {
                        2 => ledger::Refusal::Pacing,
                        4 | 5 => ledger::Refusal::Unavailable,
                        3 => {
                            inner.health.failed(
                                "the shared state's epoch is not the one this replica knows".into(),
                            );
                            ledger::Refusal::Unavailable
                        }
                        _ => ledger::Refusal::Budget,
                    };
                    lock(&inner.refused).insert(pair, (r, clock_ms + 1_000));
                }
                Err(_) => break,
            }
        }
        if started && mono - last_beat >= inner.opts.heartbeat_ms {
            last_beat = mono;
            if heartbeat(&inner, &mut epoch).await.is_ok() {
                beats += 1;
            }
        }
        // Ready once the state is known (created, found, or known lost),
        // or once a fresh replica has waited long enough to say it is not.
        if started && (epoch.is_some() || beats > QUIET_BEATS) {
            if let Some(r) = ready.take() {
                let _ = r.send(Ok(()));
            }
        }
        if started && mono - last_stream_read >= 100 {
            last_stream_read = mono;
            let _ = settled(&inner, &mut last_stream).await;
            pass_on_losses(&inner).await;
            let _ = lost_elsewhere(&inner, &mut last_lost).await;
        }
        if started && mono - last_maintenance >= 1_000 {
            last_maintenance = mono;
            if !inner.unavailable() {
                give_back(&inner, false);
            }
            refresh_cache(&inner, &mut cache_next).await;
            lock(&inner.refused).retain(|_, (_, until)| *until > clock_ms);
        }
        let wait = if pending.is_empty() {
            TICK
        } else if mid_backlog {
            // Mid-backlog (the writes' slice ran out, not a failed write):
            // go on at once.
            Duration::ZERO
        } else {
            Duration::from_millis(200)
        };
        // The ledger shuts this runtime down when it goes, so holding it
        // while waiting keeps nothing alive.
        let woken = inner.wake.notified();
        tokio::select! {
            op = rx.recv() => {
                if let Some(op) = op {
                    pending.push_back(op);
                }
            }
            _ = woken => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
