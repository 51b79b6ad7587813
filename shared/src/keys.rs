//! Redis key names, built in one place (see `scripts.rs` for the layout).

use ledger::{BidKey, SpendKey};

#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn life(&self, k: &SpendKey) -> String {
        format!("{}s:{k}", self.prefix)
    }

    pub(crate) fn day(&self, k: &SpendKey, day: i64) -> String {
        format!("{}d:{k}:{day}", self.prefix)
    }

    /// The lifetime and day counters of a line item and its order, in the
    /// order the charge scripts take them (s1, d1, s2, d2).
    pub(crate) fn spend(&self, keys: [&SpendKey; 2], day: i64) -> [String; 4] {
        [
            self.life(keys[0]),
            self.day(keys[0], day),
            self.life(keys[1]),
            self.day(keys[1], day),
        ]
    }

    pub(crate) fn lease(&self, k: &SpendKey, day: i64) -> String {
        format!("{}l:{k}:{day}", self.prefix)
    }

    /// How a replica's lease location is listed for reclaiming.
    pub(crate) fn lease_member(k: &SpendKey, day: i64) -> String {
        format!("{k}\t{day}")
    }

    /// Leases reclaimed from stopped replicas, by when they go back (see
    /// `RECLAIM`).
    pub(crate) fn retiring(&self) -> String {
        format!("{}retiring", self.prefix)
    }

    /// A replica's own entries in [`Keys::retiring`] (see `KEEP`).
    pub(crate) fn retiring_of(&self, replica: &str) -> String {
        format!("{}retiring-of:{replica}", self.prefix)
    }

    pub(crate) fn held_by(&self, replica: &str) -> String {
        format!("{}r:{replica}", self.prefix)
    }

    /// A replica's claims not yet committed or aborted.
    pub(crate) fn claims_of(&self, replica: &str) -> String {
        format!("{}c:{replica}", self.prefix)
    }

    /// How a claim is listed there: enough to let it go after a crash.
    pub(crate) fn claim_member(b: BidKey, keys: &[SpendKey; 2], day: i64) -> String {
        format!("{b}\t{}\t{}\t{day}", keys[0], keys[1])
    }

    pub(crate) fn replicas(&self) -> String {
        format!("{}replicas", self.prefix)
    }

    /// Every replica that has sent a heartbeat since the state began (see
    /// `HEARTBEAT`).
    pub(crate) fn replicas_seen(&self) -> String {
        format!("{}replicas-seen", self.prefix)
    }

    /// Replica → its last heartbeat that said it reads `per-bid` URLs.
    pub(crate) fn reads_per_bid(&self) -> String {
        format!("{}reads-per-bid", self.prefix)
    }

    /// Since when every listed replica has said so at each heartbeat.
    pub(crate) fn all_read_per_bid_since(&self) -> String {
        format!("{}all-read-per-bid-since", self.prefix)
    }

    pub(crate) fn bid(&self, b: BidKey) -> String {
        format!("{}b:{b}", self.prefix)
    }

    /// The claim of the replica that records a charged bid's impression
    /// (`i`) or click (`c`): the one that sets it first, briefly (see
    /// [`crate::TRACKED_CLAIM_MS`]).
    pub(crate) fn tracked(&self, b: BidKey, click: bool) -> String {
        let kind = if click { 'c' } else { 'i' };
        format!("{}tk:{b}:{kind}", self.prefix)
    }

    /// A capped bid's frequency keys, handed over at a stop for the replica
    /// that charges the bid to count its impression (see `COMMIT`).
    pub(crate) fn freq_handover(&self, b: BidKey) -> String {
        format!("{}fh:{b}", self.prefix)
    }

    pub(crate) fn charged(&self) -> String {
        format!("{}charged", self.prefix)
    }

    /// Losses told to one replica for bids another holds (a stream of its
    /// own, short: best effort, and apart from the charges every replica
    /// must read).
    pub(crate) fn lost(&self) -> String {
        format!("{}lost", self.prefix)
    }

    /// Audience data applied on one replica, for the others.
    pub(crate) fn audience(&self) -> String {
        format!("{}audience", self.prefix)
    }

    /// Replica → the epoch it knows (a fresh replica never creates the
    /// state while another one knows it).
    pub(crate) fn known(&self) -> String {
        format!("{}known", self.prefix)
    }

    /// A give-back's nonce: applied once however often it is retried.
    pub(crate) fn nonce(&self, n: &str) -> String {
        format!("{}n:{n}", self.prefix)
    }

    pub(crate) fn epoch(&self) -> String {
        format!("{}epoch", self.prefix)
    }

    /// A frequency cap's impressions (`w`) and bids in flight (`r`). The
    /// user is hashed with a versioned, seedless hash every replica agrees
    /// on: ids come from requests and may be long.
    pub(crate) fn frequency(&self, line_item: &SpendKey, user: &str) -> (String, String) {
        let h = rapidhash::v3::rapidhash_v3(user.as_bytes());
        (
            format!("{}f:{}:{h:016x}:w", self.prefix, line_item.id()),
            format!("{}f:{}:{h:016x}:r", self.prefix, line_item.id()),
        )
    }
}
