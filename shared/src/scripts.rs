//! The Lua scripts: every change to shared money state is one script, run
//! atomically by Redis, so replicas never interleave inside a check and its
//! write. Amounts are integer micros; Redis's Lua numbers are doubles,
//! exact to 2^53 (9 billion units of a currency), and every amount written
//! back goes through `%d` so it never turns into `1e+15`.
//!
//! Layout under the prefix `P`:
//! - `P s:K`: a budget key's lifetime `spent`, `charging`, `leased`, `kind`;
//! - `P d:K:DAY`: the same for one UTC day (bids charge to their day), and
//!   `over` (won beyond a cap, not billed); kept 8 days;
//! - `P l:K:DAY`: each replica's outstanding lease under the key that day;
//! - `P r:REPLICA`: where a replica holds leases (`K<tab>DAY`), to reclaim
//!   them when it stops answering;
//! - `P retiring`: leases reclaimed from a replica that stopped (or
//!   restarted), by when they go back (ms, Redis's clock): until then they
//!   still count as leased, since the bids they covered may still win;
//!   `P retiring-seq` numbers them; `P retiring-of:REPLICA` lists a
//!   replica's own entries there (for `KEEP`);
//! - `P beat-at`: replica → its last heartbeat on Redis's clock;
//! - `P replicas`: replicas by their last heartbeat (ms);
//! - `P reads-per-bid`: replica → its last heartbeat (ms) that said it reads
//!   `per-bid` signed URLs (a heartbeat of an earlier version says nothing,
//!   so its time in `replicas` moves past this one);
//! - `P all-read-per-bid-since`: since when (ms, Redis's clock) every
//!   listed replica has said so at every heartbeat; deleted by the first
//!   heartbeat that finds one that did not;
//! - `P b:BID`: a charge: `c REPLICA DEADLINE BILLED` while its record is
//!   written, `d` once durable; until the bid's notices expire;
//! - `P charged`: a stream of charged bids, so the replica that held one
//!   lets its hold go;
//! - `P f:LINEITEM:USER:w` / `:r`: a frequency cap's impressions (by time)
//!   and bids in flight (by reservation end);
//! - `P epoch`: written when the state was created or rebuilt; its absence
//!   means Redis lost what it had.

use redis::Script;

/// Shared helpers prepended to the scripts that need them.
const COMMON: &str = r#"
local function n(v) return tonumber(v) or 0 end
local function s(v) return string.format('%d', v) end
-- Whether each of KEYS holds what `types` names for it (a letter a key:
-- h hash, z sorted set, s set, t string, - anything) or nothing. Checked
-- before a script's first write: Redis keeps what a script wrote before
-- an error, and a key of another type (another program writing under our
-- prefix) met part-way would leave half a change behind.
local function typed(types)
  local names = {h = 'hash', z = 'zset', s = 'set', t = 'string'}
  for i = 1, #types do
    local want = names[string.sub(types, i, i)]
    if want then
      local t = redis.call('TYPE', KEYS[i])['ok']
      if t ~= 'none' and t ~= want then return false end
    end
  end
  return true
end
local function redis_ms()
  local t = redis.call('TIME')
  return n(t[1]) * 1000 + math.floor(n(t[2]) / 1000)
end
"#;

/// `reclaim(prefix, replica, back_at)`: a stopped replica's leases leave it
/// but stay leased until `back_at` (`P retiring`): the bids they covered
/// are still out and may win, and their holds died with the replica's
/// process. Given back at once, other replicas leased the same budget
/// again and the cluster bought half as much again as a budget allowed
/// (a restart, a crash, an outage of Redis longer than `dead_after`).
/// `release(prefix, now)` gives back what is due. Both on Redis's clock
/// (`redis_ms`), which every replica reads alike: on a replica's own, one
/// ahead of the others released early. A member is unique (a sequence
/// number), and read back anchored at both ends: replica names may be
/// digits only.
const RECLAIM: &str = r#"
local function reclaim(prefix, replica, back_at)
  local set = prefix .. 'r:' .. replica
  local total = 0
  for _, m in ipairs(redis.call('SMEMBERS', set)) do
    local key, day = string.match(m, '^(.*)\t(%-?%d+)$')
    if key then
      local l = prefix .. 'l:' .. key .. ':' .. day
      local a = n(redis.call('HGET', l, replica))
      if a > 0 then
        redis.call('HDEL', l, replica)
        local seq = redis.call('INCR', prefix .. 'retiring-seq')
        local member = key .. '\t' .. day .. '\t' .. s(a) .. '\t' .. replica .. '\t' .. s(seq)
        redis.call('ZADD', prefix .. 'retiring', s(back_at), member)
        redis.call('SADD', prefix .. 'retiring-of:' .. replica, member)
        total = total + a
      end
    end
  end
  redis.call('DEL', set)
  return total
end
local function release(prefix, now)
  local due = redis.call('ZRANGEBYSCORE', prefix .. 'retiring', '-inf', s(now), 'LIMIT', 0, 64)
  for _, m in ipairs(due) do
    local key, day, a, r = string.match(m, '^(.*)\t(%-?%d+)\t(%d+)\t([^\t]*)\t%d+$')
    if key then
      redis.call('SREM', prefix .. 'retiring-of:' .. r, m)
      redis.call('HINCRBY', prefix .. 's:' .. key, 'leased', s(-n(a)))
      local d = prefix .. 'd:' .. key .. ':' .. day
      -- A day's record past its keeping has nothing left to give back to.
      if redis.call('EXISTS', d) == 1 then
        redis.call('HINCRBY', d, 'leased', s(-n(a)))
      end
    end
    redis.call('ZREM', prefix .. 'retiring', m)
  end
end
"#;

/// Lends a replica budget under a line item and its order for one day.
///
/// KEYS: s, d, l of the line item; s, d, l of the order; `r:REPLICA`;
/// `replicas`; `epoch`; `known`. ARGV: replica, want, min, now, alive_ms,
/// day_ttl_s, member1, member2, then per key: kind (0 none, 1 daily, 2
/// lifetime, 3 paced), cap, and a paced budget's plan minutes: elapsed
/// and in all (`ledger::plan_minutes`); then the epoch this replica knows.
///
/// Grants at least `min` or nothing: `{grant, why}` where `why` is 1
/// (budget), 2 (pacing), 3 (the state is not the one this replica
/// knows: Redis lost it), 4 (the state was rebuilt and a replica has
/// not yet leased again what its bids in flight hold) or 5 (one of the
/// keys holds another type: this line item alone stays off, where an error
/// would count as Redis failing and stop every line item) when nothing is
/// granted. Near the end of a
/// budget a grant shrinks to half of what is left split over the live
/// replicas, so the last of a budget is shared rather than stranded in one
/// replica's lease.
const LEASE: &str = r#"
if redis.call('GET', KEYS[9]) ~= ARGV[17] then return {0, 3} end
if not typed('hhhhhhsz-h') then return {0, 5} end
local since = n(ARGV[4]) - n(ARGV[5])
-- A rebuilt state (`r-`): until every live replica that knew the state
-- before has leased again what its bids in flight hold (`RESTORE`, before
-- it says it knows the new epoch), the room seen here still has their
-- wins to come.
if string.sub(ARGV[17], 1, 2) == 'r-' then
  for _, r in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], since, '+inf')) do
    local k = redis.call('HGET', KEYS[10], r)
    if k and k ~= ARGV[17] then return {0, 4} end
  end
end
local live = redis.call('ZCOUNT', KEYS[8], since, '+inf')
if live < 1 then live = 1 end
local want = n(ARGV[2])
local min = n(ARGV[3])
-- Over-delivery counts as used: a win billed short of its cost (a replica
-- whose config has a smaller budget, during a rollout) gives its lease back
-- whole, and without this the part not billed came back as room again and
-- again (replica probe: 3.16 delivered under a 2.00 budget).
local function room(sk, dk, kind, cap, m1, span)
  local life = redis.call('HMGET', sk, 'spent', 'charging', 'leased', 'over')
  local dd = redis.call('HMGET', dk, 'spent', 'charging', 'leased', 'over')
  local used_life = n(life[1]) + n(life[2]) + n(life[3]) + n(life[4])
  local used_day = n(dd[1]) + n(dd[2]) + n(dd[3]) + n(dd[4])
  if kind == 1 then return cap - used_day, 1 end
  if kind == 2 then return cap - used_life, 1 end
  -- Paced: what is left at the start of the day spread evenly over the
  -- minutes left (a day-parted line item's open ones); a lease may go out
  -- while what is used is at or under the plan at the end of this minute
  -- (one impression may overshoot).
  local r = cap - used_life
  if r < min then return r, 1 end
  local left = cap - (n(life[1]) - n(dd[1]))
  if left < 0 then left = 0 end
  local q = math.floor(left / span)
  local planned = q * m1 + math.floor((left - q * span) * m1 / span)
  if used_day > planned then return 0, 2 end
  local p = planned - used_day
  if p < min then p = min end
  if p < r then return p, 2 end
  return r, 1
end
local grant = want
for i = 0, 1 do
  local kind = n(ARGV[9 + i * 4])
  if kind ~= 0 then
    local r, why = room(KEYS[1 + i * 3], KEYS[2 + i * 3], kind, n(ARGV[10 + i * 4]),
      n(ARGV[11 + i * 4]), n(ARGV[12 + i * 4]))
    if r < min then return {0, why} end
    local share = math.floor(r / (2 * live))
    if share < min then share = min end
    if share < grant then grant = share end
  end
end
if grant < min then grant = min end
for i = 0, 1 do
  if n(ARGV[9 + i * 4]) ~= 0 then
    redis.call('HINCRBY', KEYS[1 + i * 3], 'leased', s(grant))
    redis.call('HINCRBY', KEYS[2 + i * 3], 'leased', s(grant))
    redis.call('EXPIRE', KEYS[2 + i * 3], ARGV[6])
    redis.call('HINCRBY', KEYS[3 + i * 3], ARGV[1], s(grant))
    redis.call('EXPIRE', KEYS[3 + i * 3], ARGV[6])
    redis.call('SADD', KEYS[7], ARGV[7 + i])
  end
end
return {grant, 0}
"#;

/// After `bidder ledger reconcile` rebuilt a lost state: leases again,
/// under one key and day, what this replica's bids still waiting for
/// their notices hold. The rebuilt state has their spend only once they
/// are charged; without this, other replicas would lease the same budget
/// and those wins would be over-delivery. Tops this replica's lease up to
/// the hold, whatever the room (the bids are out already), and no further:
/// a state that lost nothing (a reconcile after a failover) keeps its
/// leases, and a retry adds nothing. KEYS: s, d, l, `r:REPLICA`, `epoch`.
/// ARGV: replica, hold, lease member, day_ttl_s, the epoch. Returns the
/// replica's lease now, -3 when the epoch is not that one, -5 when a key
/// holds another type (nothing written).
const RESTORE: &str = r#"
if redis.call('GET', KEYS[5]) ~= ARGV[5] then return -3 end
if not typed('hhhs') then return -5 end
local have = n(redis.call('HGET', KEYS[3], ARGV[1]))
local a = n(ARGV[2]) - have
if a <= 0 then return have end
redis.call('HINCRBY', KEYS[1], 'leased', s(a))
redis.call('HINCRBY', KEYS[2], 'leased', s(a))
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[3], ARGV[1], s(a))
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[3])
return have + a
"#;

/// A restarted replica takes on the bids its previous run had won and not
/// yet seen billed (`Ledger::carry_bought`): they hold their cost until
/// their billing notices come, often long after the previous run's leases
/// retired (`RECLAIM`). Its lease under the key and day is made to cover
/// `hold` again: first from its own retiring entries there, found through
/// its index of them (`retiring-of:REPLICA`, kept by `RECLAIM` and
/// `release`, so whoever reclaimed them: its own start, or another replica
/// that found it silent during a slow restart), which count as leased
/// already, so moving them changes no total; then, for what is still
/// short, leased anew whatever the room, as `RESTORE` does (the bids are
/// out already). Reading all of `retiring` per key took 62 ms a call at
/// 200,000 entries, and reading only its own start's score missed what
/// another replica reclaimed (review findings). A lease that covers the
/// hold already is left alone, so a retry adds nothing. KEYS: s, d, l,
/// `r:REPLICA`, `retiring`, `retiring-of:REPLICA`. ARGV: replica, hold,
/// lease member (`K<tab>DAY`, as retiring entries begin), day_ttl_s.
/// Returns `{the replica's lease now, what this call added to it}`,
/// `{-5, 0}` when a key holds another type (nothing written).
const KEEP: &str = r#"
if not typed('hhhszs') then return {-5, 0} end
local have = n(redis.call('HGET', KEYS[3], ARGV[1]))
local want = n(ARGV[2]) - have
if want <= 0 then return {have, 0} end
local moved = 0
local head = ARGV[3] .. '\t'
for _, m in ipairs(redis.call('SMEMBERS', KEYS[6])) do
  if moved >= want then break end
  if string.sub(m, 1, #head) == head then
    local at = redis.call('ZSCORE', KEYS[5], m)
    local a, r, seq = string.match(string.sub(m, #head + 1), '^(%d+)\t([^\t]*)\t(%d+)$')
    if not at or not a or r ~= ARGV[1] then
      -- Gone back already (or not ours): the index forgets it.
      redis.call('SREM', KEYS[6], m)
    else
      local take = math.min(n(a), want - moved)
      redis.call('ZREM', KEYS[5], m)
      redis.call('SREM', KEYS[6], m)
      if n(a) > take then
        local rest = head .. s(n(a) - take) .. '\t' .. r .. '\t' .. seq
        redis.call('ZADD', KEYS[5], at, rest)
        redis.call('SADD', KEYS[6], rest)
      end
      moved = moved + take
    end
  end
end
local fresh = want - moved
if fresh > 0 then
  redis.call('HINCRBY', KEYS[1], 'leased', s(fresh))
  redis.call('HINCRBY', KEYS[2], 'leased', s(fresh))
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', KEYS[3], ARGV[1], s(want))
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('SADD', KEYS[4], ARGV[3])
return {have + want, want}
"#;

/// Gives back up to `amount` of a replica's lease. KEYS: s, d, l,
/// `r:REPLICA`, the give-back's nonce. ARGV: replica, amount, lease
/// member. Returns what was given back.
const GIVE: &str = r#"
-- Once per give-back: a call that timed out after Redis ran it is retried.
if not redis.call('SET', KEYS[5], '1', 'NX', 'PX', 600000) then return 0 end
local have = n(redis.call('HGET', KEYS[3], ARGV[1]))
local a = n(ARGV[2])
if a > have then a = have end
if a <= 0 then return 0 end
if a == have then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('SREM', KEYS[4], ARGV[3])
else
  redis.call('HINCRBY', KEYS[3], ARGV[1], s(-a))
end
redis.call('HINCRBY', KEYS[1], 'leased', s(-a))
redis.call('HINCRBY', KEYS[2], 'leased', s(-a))
return a
"#;

/// Starts charging a win, once across replicas. KEYS: b, s1, d1, s2, d2,
/// `c:REPLICA` (this replica's claims, to clean after a crash),
/// `replicas`, `epoch`. ARGV:
/// owner (`REPLICA/RUN`: a restart tells its own claims from those of the
/// run that crashed), now, deadline, cost, kind1, cap1, kind2, cap2,
/// ms until the bid's notices expire, day_ttl_s, claim member (bid, keys
/// and day), the heartbeat time under which a replica counts as gone, the
/// epoch this replica knows. (Expiries are relative: Redis keeps its own
/// clock.)
///
/// `{-3, 0}`: the state is not the one this replica knows (Redis lost it).
///
/// `{-1, 0}`: charged already. `{-2, 0}`: another replica is writing its
/// record (until its deadline; past it, that replica is taken to have died
/// before its record was durable and this one takes the charge over).
/// `{1, billed}`: claimed, billed up to what the caps leave after spend and
/// the charges being written.
const CLAIM: &str = r#"
if redis.call('GET', KEYS[8]) ~= ARGV[13] then return {-3, 0} end
local m = redis.call('GET', KEYS[1])
local old = 0
if m then
  if m == 'd' then return {-1, 0} end
  local owner, dl, billed = string.match(m, '^c (%S+) (%d+) (%d+)$')
  if dl and n(dl) > n(ARGV[2]) then return {-2, 0} end
  -- Past its deadline, a claim is taken over only from a replica the
  -- others no longer hear from: a live one (or one restarting on its
  -- journal) commits or lets go of its claims itself.
  local name = owner and string.match(owner, '^(.-)/')
  local seen = name and redis.call('ZSCORE', KEYS[7], name)
  if seen and n(seen) >= n(ARGV[12]) then return {-2, 0} end
  old = n(billed)
end
if old > 0 then
  for i = 2, 5 do redis.call('HINCRBY', KEYS[i], 'charging', s(-old)) end
end
local billed = n(ARGV[4])
local function left(sk, dk, kind, cap)
  if kind == 0 then return billed end
  local h
  if kind == 1 then
    h = redis.call('HMGET', dk, 'spent', 'charging')
  else
    h = redis.call('HMGET', sk, 'spent', 'charging')
  end
  local l = cap - n(h[1]) - n(h[2])
  if l < 0 then l = 0 end
  return l
end
billed = math.min(billed, left(KEYS[2], KEYS[3], n(ARGV[5]), n(ARGV[6])),
  left(KEYS[4], KEYS[5], n(ARGV[7]), n(ARGV[8])))
for i = 2, 5 do redis.call('HINCRBY', KEYS[i], 'charging', s(billed)) end
redis.call('EXPIRE', KEYS[3], ARGV[10])
redis.call('EXPIRE', KEYS[5], ARGV[10])
redis.call('SET', KEYS[1], 'c ' .. ARGV[1] .. ' ' .. ARGV[3] .. ' ' .. s(billed), 'PX', ARGV[9])
redis.call('SADD', KEYS[6], ARGV[11])
return {1, billed}
"#;

/// A charge is durable in the replica's journal: it becomes spend.
/// KEYS: b, s1, d1, s2, d2, l1, l2, `charged`, `c:REPLICA`, `fh:BID`.
/// ARGV: replica, over, hold, kind, ms until the bid's notices expire, bid
/// (hex), stream length, day_ttl_s, claim member, now (ms).
///
/// A capped bid whose replica stopped before it was charged left its
/// frequency keys in `fh:BID` (the replica that bid is the one that knows
/// the user): its impression is counted here, as that replica would have.
///
/// Returns 1 when applied, 0 when there was nothing to apply (applied
/// before, or the claim is gone: its bid was forgotten, or Redis lost it),
/// -1 when another replica holds the claim (it took the charge over), -2
/// when a key holds another type (nothing written: the charge stays
/// `charging`, held, not spent twice at each retry).
const COMMIT: &str = r#"
if not typed('thhhhhh-s') then return -2 end
redis.call('SREM', KEYS[9], ARGV[9])
local m = redis.call('GET', KEYS[1])
if not m or m == 'd' then return 0 end
-- The handed-over keys are read and checked before anything is written: a
-- key of another type fails its command, and a script that fails after
-- its first write keeps the writes before (spend added again at each try).
local hw, hr, hwindow
if redis.call('TYPE', KEYS[10])['ok'] == 'string' then
  hw, hr, hwindow = string.match(redis.call('GET', KEYS[10]), '^(.-)\n(.-)\n(%d+)$')
  if hw then
    local tw = redis.call('TYPE', hw)['ok']
    local tr = redis.call('TYPE', hr)['ok']
    if not ((tw == 'zset' or tw == 'none') and (tr == 'zset' or tr == 'none')) then hw = nil end
  end
end
local owner, dl, billed = string.match(m, '^c (%S+) (%d+) (%d+)$')
-- Any run of this replica: a restart commits what its journal holds.
if not owner or string.sub(owner, 1, #ARGV[1] + 1) ~= ARGV[1] .. '/' then return -1 end
billed = n(billed)
for i = 2, 5 do
  redis.call('HINCRBY', KEYS[i], 'charging', s(-billed))
  redis.call('HINCRBY', KEYS[i], 'spent', s(billed))
end
local over = n(ARGV[2])
if over > 0 then
  for i = 2, 5 do
    redis.call('HINCRBY', KEYS[i], 'over', s(over))
  end
end
if ARGV[4] ~= '' then redis.call('HSETNX', KEYS[2], 'kind', ARGV[4]) end
local hold = n(ARGV[3])
if hold > 0 then
  for i = 0, 1 do
    local l = KEYS[6 + i]
    local a = n(redis.call('HGET', l, ARGV[1]))
    if a > hold then a = hold end
    if a > 0 then
      redis.call('HINCRBY', l, ARGV[1], s(-a))
      redis.call('HINCRBY', KEYS[2 + i * 2], 'leased', s(-a))
      redis.call('HINCRBY', KEYS[3 + i * 2], 'leased', s(-a))
    end
  end
end
redis.call('EXPIRE', KEYS[3], ARGV[8])
redis.call('EXPIRE', KEYS[5], ARGV[8])
if hw then
  redis.call('ZREM', hr, ARGV[6])
  redis.call('ZADD', hw, ARGV[10], ARGV[6])
  redis.call('PEXPIRE', hw, hwindow)
end
redis.call('DEL', KEYS[10])
redis.call('SET', KEYS[1], 'd', 'PX', ARGV[5])
redis.call('XADD', KEYS[8], 'MAXLEN', '~', ARGV[7], '*', 'b', ARGV[6], 'r', ARGV[1])
return 1
"#;

/// The record could not be written: the claim goes. KEYS: b, s1, d1, s2,
/// d2, `c:REPLICA`. ARGV: replica, claim member, the claim's deadline (it
/// tells one claim of a bid from a later one).
const ABORT: &str = r#"
redis.call('SREM', KEYS[6], ARGV[2])
local m = redis.call('GET', KEYS[1])
if not m then return 0 end
local owner, dl, billed = string.match(m, '^c (%S+) (%d+) (%d+)$')
if not owner or string.sub(owner, 1, #ARGV[1] + 1) ~= ARGV[1] .. '/' then return 0 end
-- Only the claim this abort is for (its deadline): a later claim of the
-- same bid, journaled meanwhile, must stay.
if dl ~= ARGV[3] then return 0 end
for i = 2, 5 do redis.call('HINCRBY', KEYS[i], 'charging', s(-n(billed))) end
redis.call('DEL', KEYS[1])
return 1
"#;

/// After a restart and the replay of its journal (whose charges were
/// committed first): the claims this replica left that never reached its
/// journal are let go, so their amounts stop holding budget room. KEYS:
/// `c:REPLICA`. ARGV: replica, prefix, this run's owner (`REPLICA/RUN`).
/// Returns how many went.
const CLEAN: &str = r#"
local gone = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local bid, k1, k2, day = string.match(member, '^(%x+)\t(.-)\t(.-)\t(%-?%d+)$')
  if bid then
    local b = ARGV[2] .. 'b:' .. bid
    local m = redis.call('GET', b)
    local owner, dl, billed
    if m then owner, dl, billed = string.match(m, '^c (%S+) (%d+) (%d+)$') end
    -- Claims of earlier runs only: this run's are being written now.
    if owner and owner ~= ARGV[3] and string.sub(owner, 1, #ARGV[1] + 1) == ARGV[1] .. '/' then
      for _, key in ipairs({ARGV[2] .. 's:' .. k1, ARGV[2] .. 'd:' .. k1 .. ':' .. day,
                            ARGV[2] .. 's:' .. k2, ARGV[2] .. 'd:' .. k2 .. ':' .. day}) do
        redis.call('HINCRBY', key, 'charging', s(-n(billed)))
      end
      redis.call('DEL', b)
      gone = gone + 1
    end
    if owner ~= ARGV[3] then redis.call('SREM', KEYS[1], member) end
  end
end
return gone
"#;

/// Takes a frequency slot if the cap allows. KEYS: w, r. ARGV: now,
/// window_ms, cap, bid, reservation end. Returns 1 when taken, 0 when
/// capped, -1 when a key holds another type (see `LEASE`'s why 5).
const FREQ_TAKE: &str = r#"
if not typed('zz') then return -1 end
local now = n(ARGV[1])
local window = n(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. s(now - window))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', s(now))
if redis.call('ZSCORE', KEYS[2], ARGV[4]) or redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  return 1
end
if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= n(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
-- Bids in flight go when their reservations end, not after the window.
local ttl = n(ARGV[5]) - now + 1000
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], s(ttl)) end
return 1
"#;

/// A bid lost (or refused): its slot goes back. KEYS: r. ARGV: bid.
const FREQ_GIVE: &str = r#"
return redis.call('ZREM', KEYS[1], ARGV[1])
"#;

/// A bid charged: an impression for the window. KEYS: w, r. ARGV: now,
/// window_ms, bid.
const FREQ_WON: &str = r#"
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#;

/// A replica says it is alive (and which epoch it knows, and that it reads
/// `per-bid` URLs), and reclaims the leases of replicas silent for longer
/// than `dead_after` (they go back `retire_ms` later, see `RECLAIM`), and
/// gives back the retired leases that are due. KEYS: replicas, epoch,
/// `known` (replica → the epoch it knows), `reads-per-bid`,
/// `all-read-per-bid-since`. ARGV: replica, now, dead_after_ms, prefix, the
/// epoch this replica knows or '', retire_ms. Returns
/// `{was_present, epoch or '', replicas that know an epoch, for how long
/// (ms) every listed replica has said at each heartbeat that it reads
/// per-bid URLs, or -1}`: counted on Redis's clock (`TIME`), which every
/// replica's heartbeat reads alike.
///
/// A replica reads `per-bid` when its time in `reads-per-bid` is its time in
/// `replicas`: both are written here (and at start), in one step. A replica
/// of an earlier version writes only `replicas`, so its time there moves on
/// and it counts as not reading them, under a name a later version used
/// before it too (a rollback of the same pods). Replicas are checked before
/// the silent ones are dropped: one whose clock is behind this one's by more
/// than `dead_after` is dropped at each heartbeat here and back at its own,
/// and is seen often enough to keep the `since` from lasting.
const HEARTBEAT: &str = r#"
local now = n(ARGV[2])
local present = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], s(now), ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], s(now))
if ARGV[5] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[5]) end
local all = true
local listed = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #listed, 2 do
  if n(redis.call('HGET', KEYS[4], listed[i])) ~= n(listed[i + 1]) then
    all = false
    break
  end
end
local all_for = -1
if all then
  local t = redis.call('TIME')
  local at = n(t[1]) * 1000 + math.floor(n(t[2]) / 1000)
  redis.call('SETNX', KEYS[5], s(at))
  all_for = at - n(redis.call('GET', KEYS[5]))
else
  redis.call('DEL', KEYS[5])
end
-- When each replica last beat, on Redis's clock: one whose own clock is
-- behind looks silent by the scores above but is not, and reclaiming it
-- at every heartbeat would retire a lease each time, until the whole
-- budget waited in `retiring`.
local at = redis_ms()
local beats = ARGV[4] .. 'beat-at'
redis.call('HSET', beats, ARGV[1], s(at))
-- Every replica that beat since the state began, never pruned here (a
-- stopped one leaves `replicas` after `dead_after`): `bidder ledger
-- reconcile` wants each one's journal.
redis.call('SADD', ARGV[4] .. 'replicas-seen', ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. s(now - n(ARGV[3])), 'LIMIT', 0, 16)
release(ARGV[4], at)
for _, r in ipairs(dead) do
  local last = n(redis.call('HGET', beats, r))
  if last == 0 or at - last >= n(ARGV[3]) then
    reclaim(ARGV[4], r, at + n(ARGV[6]))
    redis.call('ZREM', KEYS[1], r)
    redis.call('HDEL', KEYS[3], r)
    redis.call('HDEL', KEYS[4], r)
    redis.call('HDEL', beats, r)
  end
end
local ep = redis.call('GET', KEYS[2])
if present then present = 1 else present = 0 end
return {present, ep or '', redis.call('HLEN', KEYS[3]), all_for}
"#;

/// A replica starting: the leases of its previous run retire (its holds
/// died with it, its bids may still win; see `RECLAIM`). It says it reads
/// `per-bid` URLs as its heartbeats do, so that its start does not end the
/// others' count. KEYS: replicas, `reads-per-bid`. ARGV: replica, now,
/// prefix, retire_ms. Returns what retired.
const RESET: &str = r#"
local at = redis_ms()
redis.call('HSET', ARGV[3] .. 'beat-at', ARGV[1], s(at))
local total = reclaim(ARGV[3], ARGV[1], at + n(ARGV[4]))
redis.call('ZADD', KEYS[1], s(n(ARGV[2])), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], s(n(ARGV[2])))
return total
"#;

/// A first start creates the shared state: only when there is none and no
/// live replica knows one, checked and set in one step (a replica that
/// knows the state and registers between a check and a set would find a
/// state that is not its own). KEYS: epoch, known. ARGV: the new epoch.
/// Returns the epoch there is now, '' when it may not be created.
const INIT: &str = r#"
local ep = redis.call('GET', KEYS[1])
if ep then return ep end
if redis.call('HLEN', KEYS[2]) > 0 then return '' end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]
"#;

/// Marks a state created anew over a history a replica knows: Redis lost
/// its data while no replica that knew the state was running, and a fresh
/// one (no journal of its own) created a new state and bid on budgets the
/// journals had already spent (replica probe: a daily budget bought twice).
/// The epoch becomes `x-` and the one that replica knew: every replica's
/// scripts refuse it (it is no replica's epoch) until `bidder ledger
/// reconcile` writes a rebuilt one. KEYS: epoch. ARGV: the epoch found,
/// the one the replica knew. 1 when marked, 0 when the epoch changed
/// meanwhile.
const CONFLICT: &str = r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], 'x-' .. ARGV[2])
return 1
"#;

/// Reads spend counters: per pair of KEYS (a key's lifetime hash, its
/// day's hash), `spent` and `kind`, then `spent` and `over`; empty for a
/// key that is missing or of another type. Read-only. A pipeline of
/// HMGETs failed whole on one key of another type, and the failure counted
/// as Redis failing for every line item.
const READ: &str = r#"
local out = {}
local function get(key, a, b)
  if redis.call('TYPE', key)['ok'] == 'hash' then
    local v = redis.call('HMGET', key, a, b)
    out[#out + 1] = v[1] or ''
    out[#out + 1] = v[2] or ''
  else
    out[#out + 1] = ''
    out[#out + 1] = ''
  end
end
for i = 1, #KEYS, 2 do
  get(KEYS[i], 'spent', 'kind')
  get(KEYS[i + 1], 'spent', 'over')
end
return out
"#;

/// The scripts, loaded once (redis-rs sends EVALSHA and falls back to EVAL
/// when Redis does not know a script, after a restart too).
pub(crate) struct Scripts {
    pub(crate) lease: Script,
    pub(crate) restore: Script,
    pub(crate) keep: Script,
    pub(crate) give: Script,
    pub(crate) claim: Script,
    pub(crate) commit: Script,
    pub(crate) abort: Script,
    pub(crate) freq_take: Script,
    pub(crate) freq_give: Script,
    pub(crate) freq_won: Script,
    pub(crate) heartbeat: Script,
    pub(crate) reset: Script,
    pub(crate) clean: Script,
    pub(crate) init: Script,
    pub(crate) conflict: Script,
    pub(crate) read: Script,
}

impl Scripts {
    pub(crate) fn new() -> Scripts {
        let with = |body: &str| Script::new(&format!("{COMMON}{body}"));
        let reclaiming = |body: &str| Script::new(&format!("{COMMON}{RECLAIM}{body}"));
        Scripts {
            lease: with(LEASE),
            restore: with(RESTORE),
            keep: with(KEEP),
            give: with(GIVE),
            claim: with(CLAIM),
            commit: with(COMMIT),
            abort: with(ABORT),
            freq_take: with(FREQ_TAKE),
            freq_give: with(FREQ_GIVE),
            freq_won: with(FREQ_WON),
            heartbeat: reclaiming(HEARTBEAT),
            reset: reclaiming(RESET),
            clean: with(CLEAN),
            init: Script::new(INIT),
            conflict: Script::new(CONFLICT),
            read: Script::new(READ),
        }
    }
}
