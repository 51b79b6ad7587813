//! Which ad a shopper's view or purchase is owed to.
//!
//! Each advertiser lists its products and its windows. A view or purchase
//! of one of them is attributed to that advertiser's **last touch** of the
//! shopper: the last click within `click_days` before it, else the last
//! impression within `view_days`. When several advertisers list the
//! product, a click beats an impression and the later touch beats the
//! earlier, so each conversion is attributed once, to one line item,
//! creative and keyword.
//!
//! Shoppers are known by the keyed hash tracking URLs carry (the raw id
//! never reaches the journal). State is bounded: past `max_entries` touches
//! (or remembered conversions), those too old for any window go first,
//! then a tenth of the rest, counted as evicted.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use config::{Config, Micros};

use crate::fact::Dims;
use crate::record::{Kind, Record};

const DAY_MS: i64 = 86_400_000;

/// How much later than its longest window a conversion may be uploaded and
/// still be attributed: advertisers upload orders in daily or weekly
/// batches, and a window reaches back from the conversion, not from its
/// upload.
pub const LATE_UPLOAD_MS: i64 = 7 * DAY_MS;

/// Who may be owed a product's conversions, and for how long.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    by_product: HashMap<String, Vec<Window>>,
    max_window_ms: i64,
}

#[derive(Clone, Debug)]
struct Window {
    advertiser: Arc<str>,
    click_ms: i64,
    view_ms: i64,
}

impl Catalog {
    pub fn from_config(config: &Config) -> Catalog {
        let mut c = Catalog::default();
        for a in &config.advertisers {
            let adv: Arc<str> = a.id.as_str().into();
            let w = Window {
                advertiser: adv,
                click_ms: i64::from(a.attribution.click_days) * DAY_MS,
                view_ms: i64::from(a.attribution.view_days) * DAY_MS,
            };
            c.max_window_ms = c.max_window_ms.max(w.click_ms).max(w.view_ms);
            for p in &a.products {
                c.by_product.entry(p.clone()).or_default().push(w.clone());
            }
        }
        c
    }

    /// The longest window and [`LATE_UPLOAD_MS`]: touches and conversions
    /// older than this can be forgotten.
    pub fn keep_ms(&self) -> i64 {
        self.max_window_ms.saturating_add(LATE_UPLOAD_MS)
    }

    pub fn lists(&self, product: &str) -> bool {
        self.by_product.contains_key(product)
    }
}

/// A shopper's view or purchase, as the event channel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conversion {
    pub purchase: bool,
    /// The keyed hash of the shopper (as tracking URLs carry it).
    pub user: u64,
    /// The shopper's key under the other construction, when there is one
    /// (the bidder makes user keys two ways, see `--url-signatures`):
    /// touches recorded by replicas or builds that wrote it are under it.
    /// Looked up beside `user`; an attributed conversion is recorded under
    /// the key its touch had, so that `bidder train` joins the two.
    pub other_user: Option<u64>,
    pub product: String,
    pub at_ms: i64,
    /// A purchase's value in USD micros.
    pub amount: Micros,
    pub order_id: Option<String>,
    /// Only this advertiser's touches count (its own pixel's events).
    pub advertiser: Option<String>,
}

/// What became of a conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Attributed: this record goes into the journal.
    Attributed(Record),
    /// No advertiser lists the product, or no touch is within its window.
    Unattributed,
    /// Seen before (the same order id, or the same event sent again).
    Duplicate,
}

impl Outcome {
    /// `basket_line`: a later line of an order already counted (its sale
    /// adds to sales, not another purchase).
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Attributed(r) if r.kind == Kind::Purchase && r.n == 0 => "basket_line",
            Outcome::Attributed(_) => "attributed",
            Outcome::Unattributed => "unattributed",
            Outcome::Duplicate => "duplicate",
        }
    }
}

/// How many of a shopper's latest clicks, and of their latest
/// impressions, by one advertiser are kept. A purchase is often uploaded
/// after the shopper was shown another of the advertiser's ads (yesterday's
/// orders uploaded today, the shopper still in a retargeting audience
/// until then): its last touch is then an earlier one, which the newest
/// alone would not find.
const KEPT_PER_KIND: usize = 4;

/// Conversions kept for a later touch per shopper key: a shopper's few
/// orders of a day. Bounds the work a touch does (each kept one is looked
/// at), which pixel calls under one made-up id could otherwise grow to the
/// whole bound's (review finding: seconds of the writer per touch).
const MAX_PARKED_PER_KEY: usize = 8;

#[derive(Clone, Debug)]
struct Touch {
    at_ms: i64,
    /// Shared by the shopper's touches of the same ad: a retargeted shopper
    /// sees one ad again and again, and each copy would cost its eight
    /// names.
    dims: Arc<Dims>,
}

/// One kind of touch, newest first.
type Kept = [Option<Touch>; KEPT_PER_KIND];

#[derive(Clone, Debug, Default)]
struct Last {
    clicks: Kept,
    impressions: Kept,
}

impl Last {
    fn held(&self) -> usize {
        self.clicks
            .iter()
            .chain(&self.impressions)
            .flatten()
            .count()
    }

    /// Forgets the touches before `cutoff` (too old for any window);
    /// whether none is left.
    fn forget_before(&mut self, cutoff: i64) -> bool {
        for t in self.clicks.iter_mut().chain(&mut self.impressions) {
            if t.as_ref().is_some_and(|t| t.at_ms < cutoff) {
                *t = None;
            }
        }
        self.clicks[0].is_none() && self.impressions[0].is_none()
    }

    /// The same ad's dims when one of these touches has them.
    fn dims_like(&self, dims: &Dims) -> Arc<Dims> {
        self.clicks
            .iter()
            .chain(&self.impressions)
            .flatten()
            .find(|t| *t.dims == *dims)
            .map_or_else(|| Arc::new(dims.clone()), |t| t.dims.clone())
    }

    /// Keeps `touch` in its place by time among the newest; returns how
    /// many more touches are held (0 when it displaced the oldest, or was
    /// older than all of a full list).
    fn keep(&mut self, touch: Touch, click: bool) -> usize {
        let kept = if click {
            &mut self.clicks
        } else {
            &mut self.impressions
        };
        // The same touch again (a journal line read twice: a replica's
        // copy, a day read back) is not a second one: it would push an
        // earlier touch out.
        if kept
            .iter()
            .flatten()
            .any(|t| t.at_ms == touch.at_ms && Arc::ptr_eq(&t.dims, &touch.dims))
        {
            return 0;
        }
        let at = kept
            .iter()
            .position(|t| t.as_ref().is_none_or(|t| t.at_ms <= touch.at_ms));
        let Some(at) = at else {
            return 0;
        };
        let grew = usize::from(kept[KEPT_PER_KIND - 1].is_none());
        kept[at..].rotate_right(1);
        kept[at] = Some(touch);
        grew
    }

    /// The last touch of a kind at or before `at_ms`, when it is within
    /// `window` of it (an older one of that kind would be further).
    fn last_before(kept: &Kept, at_ms: i64, window: i64) -> Option<&Touch> {
        kept.iter()
            .flatten()
            .find(|t| t.at_ms <= at_ms)
            .filter(|t| at_ms - t.at_ms <= window)
    }
}

/// Last touches and conversions seen.
pub struct Attributor {
    touches: HashMap<(u64, Arc<str>), Last>,
    /// Touches held in `touches`, what `max_entries` bounds.
    held: usize,
    /// Conversions no touch was found for yet, by shopper key (under each
    /// of a conversion's keys): a touch before one may still be recorded
    /// after it came. An impression or click waits for its bid's charge
    /// (an exchange that bills on a later notice, up to the notice
    /// lifetime); a purchase uploaded meanwhile was unattributed for good
    /// (and a resend a duplicate). Attributed by [`Attributor::late`] when
    /// such a touch is recorded here; kept for `park_ms` after the
    /// conversion, [`MAX_PARKED_PER_KEY`] a key (the newest), within
    /// [`Attributor::max_parked`] in all.
    parked: HashMap<u64, Vec<Conversion>>,
    parked_n: usize,
    park_ms: i64,
    /// Conversions counted (by a per-process keyed hash of the event, or
    /// of its order id), with when they happened.
    seen: HashMap<u64, i64>,
    hasher: RandomState,
    max_entries: usize,
    evicted: u64,
}

impl Attributor {
    pub fn new(max_entries: usize) -> Attributor {
        Attributor {
            touches: HashMap::new(),
            held: 0,
            parked: HashMap::new(),
            parked_n: 0,
            park_ms: 0,
            seen: HashMap::new(),
            hasher: RandomState::new(),
            max_entries: max_entries.max(16),
            evicted: 0,
        }
    }

    /// Touches held (up to `KEPT_PER_KIND` of each kind per shopper and
    /// advertiser).
    pub fn touches(&self) -> usize {
        self.held
    }

    /// Conversions without a touch are kept for `ms` after they happened,
    /// for one recorded later (see `parked`): the longest a touch can wait
    /// to be recorded. 0 (the default) keeps none.
    pub fn park_for(&mut self, ms: i64) {
        self.park_ms = ms.max(0);
    }

    /// Conversions kept for a touch recorded later.
    pub fn parked(&self) -> usize {
        self.parked_n
    }

    /// Entries dropped early to stay within bounds.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// An impression or click of the ad `dims` (product empty) by `user`.
    pub fn touch(&mut self, user: u64, dims: &Dims, at_ms: i64, click: bool, keep_ms: i64) {
        if user == 0 {
            return;
        }
        if self.held >= self.max_entries {
            let cutoff = at_ms.saturating_sub(keep_ms);
            let (dropped, left) = shrink(
                &mut self.touches,
                self.max_entries,
                |l| l.forget_before(cutoff),
                Last::held,
            );
            self.evicted += dropped;
            self.held = left;
        }
        let last = self
            .touches
            .entry((user, dims.advertiser.clone()))
            .or_default();
        let dims = last.dims_like(dims);
        self.held += last.keep(Touch { at_ms, dims }, click);
    }

    /// Marks a conversion read back from the journal as counted, at `now_ms`.
    pub fn remember(&mut self, r: &Record, now_ms: i64, keep_ms: i64) {
        let [event, order] = self.record_ids(r);
        for id in [event, order].into_iter().flatten() {
            self.mark(id, r.at_ms, now_ms, keep_ms);
        }
        // Counted elsewhere (another replica's journal): a copy kept here
        // for a later touch must not count it again.
        if !self.parked.is_empty() {
            let purchase = r.kind == Kind::Purchase;
            let adv = &*r.dims.advertiser;
            let same = |a: &Self, c: &Conversion| {
                c.purchase == purchase
                    && c.product == *r.dims.product
                    && c.advertiser.as_deref().is_none_or(|named| named == adv)
                    && Some(a.event_id(
                        purchase,
                        r.user,
                        &c.product,
                        c.at_ms,
                        order_of(c),
                        Some(adv),
                    )) == event
            };
            let found: Vec<Conversion> = self
                .parked
                .get(&r.user)
                .into_iter()
                .flatten()
                .filter(|c| same(self, c))
                .cloned()
                .collect();
            for c in &found {
                self.unpark(c);
            }
        }
    }

    /// Drops `c` from `parked`, under each of its keys.
    fn unpark(&mut self, c: &Conversion) {
        for user in keys_of(c) {
            if let Entry::Occupied(mut e) = self.parked.entry(user) {
                let before = e.get().len();
                e.get_mut().retain(|p| p != c);
                self.parked_n -= before - e.get().len();
                if e.get().is_empty() {
                    e.remove();
                }
            }
        }
    }

    /// How many copies of conversions are kept for a touch recorded later:
    /// a thirty-second of the entries (125,000 of the default 4,000,000).
    /// A conversion is kept under each of its user keys, usually two, at
    /// about 600 bytes a copy: some 60,000 conversions, 75 MB (a growth
    /// probe measured 1.2 KB a conversion; a sixteenth held 125,000 in
    /// 150-200 MB). Most conversions kept are never touched (purchases
    /// nobody's ad led to), and advertiser pixels, which anyone can call,
    /// make them.
    fn max_parked(&self) -> usize {
        (self.max_entries / 32).max(16)
    }

    /// Keeps `c`, attributed to nobody at `now_ms`, for a touch recorded
    /// later (when it may still come: within `park_ms`).
    fn park(&mut self, c: &Conversion, now_ms: i64) {
        if c.at_ms < now_ms.saturating_sub(self.park_ms) {
            return;
        }
        // Kept already (sent again after its `seen` mark was evicted):
        // once, or a touch would count it twice.
        if self.parked.get(&c.user).is_some_and(|v| v.contains(c)) {
            return;
        }
        let copies = keys_of(c).count();
        if self.parked_n + copies > self.max_parked() {
            self.make_room(now_ms);
            if self.parked_n + copies > self.max_parked() {
                return;
            }
        }
        for user in keys_of(c) {
            // The oldest of a full key goes, under all of its keys (one
            // left under another key would miss the unparking by a
            // record under this one): the first a touch no longer reaches.
            let oldest = self
                .parked
                .get(&user)
                .filter(|v| v.len() >= MAX_PARKED_PER_KEY)
                .and_then(|v| v.iter().min_by_key(|p| p.at_ms).cloned());
            if let Some(oldest) = oldest {
                self.unpark(&oldest);
                self.evicted += 1;
            }
        }
        for user in keys_of(c) {
            self.parked.entry(user).or_default().push(c.clone());
            self.parked_n += 1;
        }
    }

    /// Below nine tenths of [`Attributor::max_parked`]: first those past
    /// `park_ms`, then others; each whole, under all of its keys.
    fn make_room(&mut self, now_ms: i64) {
        let cutoff = now_ms.saturating_sub(self.park_ms);
        let target = self.max_parked() - self.max_parked() / 10;
        let mut stale = Vec::new();
        let mut others = Vec::new();
        for (&user, v) in &self.parked {
            for c in v.iter().filter(|c| c.user == user) {
                if c.at_ms < cutoff {
                    stale.push(c.clone());
                } else {
                    others.push(c.clone());
                }
            }
        }
        for c in &stale {
            self.unpark(c);
        }
        // The oldest first, not the map's order (at random): the newest
        // have the longest left to meet their touch.
        others.sort_unstable_by_key(|c| c.at_ms);
        for c in &others {
            if self.parked_n <= target {
                break;
            }
            self.unpark(c);
            self.evicted += 1;
        }
    }

    /// The conversions kept for shopper `user` that a touch just recorded
    /// here (at `touch_at`, of the ad `dims`) makes attributable: those
    /// whose last touch it is, attributed at `now_ms`: the records to
    /// journal. Called after each touch recorded here while any are kept;
    /// those past `park_ms` go. Not for another replica's touches, nor
    /// when the last touch is one (review findings): a replica journals
    /// the touch, then the conversion it made attributable, and one that
    /// kept a copy of the same conversion (a pixel that fired on both)
    /// would count it again between the two lines.
    pub fn late(
        &mut self,
        user: u64,
        touch_at: i64,
        dims: &Dims,
        catalog: &Catalog,
        now_ms: i64,
    ) -> Vec<Record> {
        let Some(kept) = self.parked.get(&user) else {
            return Vec::new();
        };
        let cutoff = now_ms.saturating_sub(self.park_ms);
        let kept = kept.clone();
        let mut out = Vec::new();
        for c in kept {
            if c.at_ms < cutoff {
                self.unpark(&c);
                continue;
            }
            let Some(windows) = catalog.by_product.get(&c.product) else {
                continue;
            };
            let Some((touch, user)) = self.last_touch(&c, windows) else {
                continue;
            };
            if touch.at_ms == touch_at && *touch.dims == *dims {
                self.unpark(&c);
                out.push(self.record(&c, touch, user, now_ms, catalog.keep_ms()));
            }
        }
        out
    }

    /// Undoes [`Attributor::attribute`]'s counting of a record that could
    /// not be written: the uploader's retry counts it.
    pub fn forget(&mut self, r: &Record) {
        let [event, order] = self.record_ids(r);
        // A basket's later line (no purchase of its own) leaves its order
        // counted: the first line's record stands.
        let order = order.filter(|_| r.n > 0);
        for id in [event, order].into_iter().flatten() {
            self.seen.remove(&id);
        }
    }

    fn record_ids(&self, r: &Record) -> [Option<u64>; 2] {
        let purchase = r.kind == Kind::Purchase;
        let (user, at) = (r.user, r.at_ms);
        let (product, order) = (&r.dims.product, &r.order_id);
        [
            Some(self.event_id(purchase, user, product, at, order, Some(&r.dims.advertiser))),
            self.order_id(purchase, order, &r.dims.advertiser),
        ]
    }

    /// What makes a conversion the same as another: with an order id, the
    /// order of that product in `advertiser`'s numbering (each shop numbers
    /// its own: reports probe, one shop's order 5001 made another's a
    /// duplicate), or in no one's for a conversion that names no
    /// advertiser (an upload that counts for every advertiser listing the
    /// product; see `seen_before`); else the event itself.
    fn event_id(
        &self,
        purchase: bool,
        user: u64,
        product: &str,
        at_ms: i64,
        order: &str,
        advertiser: Option<&str>,
    ) -> u64 {
        match (purchase && !order.is_empty(), advertiser) {
            (true, Some(a)) => {
                self.hasher
                    .hash_one(("advertiser-product-order", a, product, order))
            }
            (true, None) => self.hasher.hash_one(("product-order", product, order)),
            (false, _) => self.hasher.hash_one((purchase, user, product, at_ms)),
        }
    }

    /// Whether `c` was counted before, under either of its keys. An order
    /// that names no advertiser is the same purchase as that order in any
    /// numbering of an advertiser listing the product (a copy after a
    /// touch, counted under that advertiser); one that names its
    /// advertiser, as that order in its numbering or in no one's.
    fn seen_before(&self, c: &Conversion, windows: &[Window]) -> bool {
        let order = order_of(c);
        let named = c.advertiser.as_deref();
        let id = |user: u64, adv: Option<&str>| {
            self.event_id(c.purchase, user, &c.product, c.at_ms, order, adv)
        };
        if keys_of(c).any(|u| self.seen.contains_key(&id(u, named))) {
            return true;
        }
        if !c.purchase || order.is_empty() {
            return false;
        }
        match named {
            Some(_) => self.seen.contains_key(&id(c.user, None)),
            None => windows
                .iter()
                .any(|w| self.seen.contains_key(&id(c.user, Some(&w.advertiser)))),
        }
    }

    /// An advertiser's order (its several products count once): each
    /// advertiser numbers its orders its own way.
    fn order_id(&self, purchase: bool, order: &str, advertiser: &str) -> Option<u64> {
        (purchase && !order.is_empty()).then(|| self.hasher.hash_one(("order", advertiser, order)))
    }

    /// Counts a conversion of `at_ms` as seen at `now_ms` (the server's
    /// time: a date an uploader chose never decides what is forgotten).
    fn mark(&mut self, id: u64, at_ms: i64, now_ms: i64, keep_ms: i64) -> bool {
        if !self.seen.contains_key(&id) && self.seen.len() >= self.max_entries {
            let cutoff = now_ms.saturating_sub(keep_ms);
            self.evicted += shrink(&mut self.seen, self.max_entries, |at| *at < cutoff, |_| 1).0;
        }
        match self.seen.entry(id) {
            Entry::Occupied(_) => false,
            Entry::Vacant(v) => {
                v.insert(at_ms);
                true
            }
        }
    }

    /// Attributes a conversion to its last touch, once, at `now_ms`.
    pub fn attribute(&mut self, c: &Conversion, catalog: &Catalog, now_ms: i64) -> Outcome {
        let Some(windows) = catalog.by_product.get(&c.product) else {
            return Outcome::Unattributed;
        };
        let order = order_of(c);
        // Uploaded too long after it happened: its touches may be
        // forgotten (and its day past what the journal keeps). Within
        // that, a window reaches back from the conversion, whenever it
        // comes: yesterday's orders uploaded today find yesterday's clicks.
        if c.at_ms < now_ms.saturating_sub(catalog.keep_ms()) {
            return Outcome::Unattributed;
        }
        // Seen under either key: a conversion counted (or read back from
        // the journal) under the other key is the same conversion.
        if self.seen_before(c, windows) {
            return Outcome::Duplicate;
        }
        let keep = catalog.keep_ms();
        // Counted now: a copy kept from before (its `seen` mark since
        // evicted) must not count it again at a later touch.
        if self.parked_n > 0 {
            self.unpark(c);
        }
        let Some((touch, user)) = self.last_touch(c, windows) else {
            // Remembered: a copy sent after a touch came is the same
            // purchase, not a new one. Kept, for a touch before it that
            // is recorded later.
            let named = c.advertiser.as_deref();
            let event = self.event_id(c.purchase, c.user, &c.product, c.at_ms, order, named);
            self.mark(event, c.at_ms, now_ms, keep);
            self.park(c, now_ms);
            return Outcome::Unattributed;
        };
        Outcome::Attributed(self.record(c, touch, user, now_ms, keep))
    }

    /// The last touch of `c` under either of its keys among the advertisers
    /// of `windows` (its own only, when it names one): a click before an
    /// impression, then the later. With the key it was found under.
    fn last_touch(&self, c: &Conversion, windows: &[Window]) -> Option<(Touch, u64)> {
        let mine = |w: &&Window| c.advertiser.as_deref().is_none_or(|a| *w.advertiser == *a);
        let mut best: Option<(bool, Touch, u64)> = None;
        for user in keys_of(c) {
            for w in windows.iter().filter(mine) {
                let Some(last) = self.touches.get(&(user, w.advertiser.clone())) else {
                    continue;
                };
                let found = Last::last_before(&last.clicks, c.at_ms, w.click_ms)
                    .map(|t| (true, t.clone()))
                    .or_else(|| {
                        Last::last_before(&last.impressions, c.at_ms, w.view_ms)
                            .map(|t| (false, t.clone()))
                    });
                if let Some((click, t)) = found {
                    let better = match &best {
                        None => true,
                        Some((bc, bt, _)) => (click, t.at_ms) > (*bc, bt.at_ms),
                    };
                    if better {
                        best = Some((click, t, user));
                    }
                }
            }
        }
        best.map(|(_, t, user)| (t, user))
    }

    /// `c` attributed to `touch`, found under key `user`, counted at
    /// `now_ms`.
    fn record(
        &mut self,
        c: &Conversion,
        touch: Touch,
        user: u64,
        now_ms: i64,
        keep: i64,
    ) -> Record {
        let order = order_of(c);
        // Another product of an order counted before (each line of a
        // basket is an event of its own): its sale adds to sales, and the
        // order is one purchase. A line sent again is a duplicate above.
        let mut basket = false;
        if let Some(o) = self.order_id(c.purchase, order, &touch.dims.advertiser) {
            if self.seen.contains_key(&o) {
                basket = true;
            } else {
                self.mark(o, c.at_ms, now_ms, keep);
            }
        }
        // Under the key the record carries: what `remember` and `forget`
        // work out from the record.
        let adv = Some(&*touch.dims.advertiser);
        let event = self.event_id(c.purchase, user, &c.product, c.at_ms, order, adv);
        self.mark(event, c.at_ms, now_ms, keep);
        let mut dims = Arc::unwrap_or_clone(touch.dims);
        dims.product = c.product.as_str().into();
        Record {
            kind: if c.purchase {
                Kind::Purchase
            } else {
                Kind::View
            },
            at_ms: c.at_ms,
            dims,
            user,
            n: u64::from(!basket),
            amount: if c.purchase { c.amount } else { Micros::ZERO },
            order_id: order.into(),
            features: None,
        }
    }
}

/// A conversion's shopper keys: its own, and the other construction's
/// when it differs.
fn keys_of(c: &Conversion) -> impl Iterator<Item = u64> {
    [Some(c.user), c.other_user.filter(|&u| u != c.user)]
        .into_iter()
        .flatten()
}

fn order_of(c: &Conversion) -> &str {
    c.order_id.as_deref().unwrap_or_default()
}

/// Makes room in a full map: first what `stale` says is too old (it may
/// forget the old part of an entry, and says whether nothing is left), then, if
/// that left more than nine tenths of `max`, entries (in the map's random
/// order) until it does not. Sizes are each entry's `weight`. Returns the
/// weight dropped while not stale, and the weight left.
fn shrink<K, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    mut stale: impl FnMut(&mut V) -> bool,
    weight: impl Fn(&V) -> usize,
) -> (u64, usize) {
    map.retain(|_, v| !stale(v));
    let target = max - max / 10;
    let mut left: usize = map.values().map(&weight).sum();
    let mut dropped = 0u64;
    if left > target {
        map.retain(|_, v| {
            if left > target {
                let w = weight(v);
                left -= w;
                dropped += w as u64;
                false
            } else {
                true
            }
        });
    }
    (dropped, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;
    // The attributor takes dates as given (the bidder refuses future ones).
    const NOW: i64 = 0;

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        for (adv, click, view) in [("acme", 14, 1), ("other", 7, 7)] {
            let w = Window {
                advertiser: adv.into(),
                click_ms: click * DAY,
                view_ms: view * DAY,
            };
            c.by_product.entry("tent".into()).or_default().push(w);
            c.max_window_ms = c.max_window_ms.max(click * DAY);
        }
        c
    }

    fn ad(adv: &str, li: &str) -> Dims {
        Dims {
            advertiser: adv.into(),
            line_item: li.into(),
            ..Dims::default()
        }
    }

    fn buy(at: i64, order: Option<&str>) -> Conversion {
        Conversion {
            purchase: true,
            user: 7,
            other_user: None,
            product: "tent".into(),
            at_ms: at,
            amount: Micros(50_000_000),
            order_id: order.map(Into::into),
            advertiser: None,
        }
    }

    /// An attributor of `max` entries keeping conversions a day for a
    /// touch recorded later.
    fn keeping(max: usize) -> Attributor {
        let mut a = Attributor::new(max);
        a.park_for(DAY);
        a
    }

    fn li_of(o: Outcome) -> String {
        match o {
            Outcome::Attributed(r) => r.dims.line_item.to_string(),
            other => format!("{other:?}"),
        }
    }

    /// A purchase uploaded while the click before it waits to be recorded
    /// (its bid not charged yet) is attributed once the click is, to it,
    /// and once: a resend is a duplicate, and a copy counted by another
    /// replica is not counted again here (reports probe: it stayed
    /// unattributed for good, and its resend was a duplicate).
    #[test]
    fn a_touch_recorded_after_its_conversion_still_gets_it() {
        let c = catalog();
        let mut a = keeping(100);
        let now = 100 * DAY;
        let clicked = now - 3_600_000;
        let bought = now - 60_000;
        let p = buy(bought, Some("o1"));
        assert_eq!(a.attribute(&p, &c, now), Outcome::Unattributed);
        assert_eq!(a.parked(), 1);
        // A touch after the purchase finds nothing to take.
        a.touch(7, &ad("acme", "after"), bought + 1, true, c.keep_ms());
        assert!(a
            .late(7, bought + 1, &ad("acme", "after"), &c, now)
            .is_empty());
        // The click before it, recorded now.
        a.touch(7, &ad("acme", "clicked"), clicked, true, c.keep_ms());
        let late = a.late(7, clicked, &ad("acme", "clicked"), &c, now);
        assert_eq!(late.len(), 1);
        assert_eq!(&*late[0].dims.line_item, "clicked");
        assert_eq!((late[0].n, late[0].at_ms), (1, bought));
        assert_eq!(a.parked(), 0);
        assert!(
            a.late(7, clicked, &ad("acme", "clicked"), &c, now)
                .is_empty(),
            "once"
        );
        assert_eq!(a.attribute(&p, &c, now), Outcome::Duplicate);

        // Counted by another replica meanwhile: no longer kept here.
        let q = buy(bought, Some("o2"));
        let mut b = keeping(100);
        assert_eq!(b.attribute(&q, &c, now), Outcome::Unattributed);
        let Outcome::Attributed(elsewhere) = a.attribute(&q, &c, now) else {
            panic!("attributed where the click is");
        };
        b.remember(&elsewhere, now, c.keep_ms());
        assert_eq!(b.parked(), 0);
        b.touch(7, &ad("acme", "clicked"), clicked, true, c.keep_ms());
        assert!(b
            .late(7, clicked, &ad("acme", "clicked"), &c, now)
            .is_empty());

        // Past the time a touch can wait, nothing is kept.
        let mut d = keeping(100);
        assert_eq!(
            d.attribute(&buy(now - 2 * DAY, Some("o3")), &c, now),
            Outcome::Unattributed
        );
        assert_eq!(d.parked(), 0);
        // Within it, kept until then.
        assert_eq!(
            d.attribute(&buy(bought, Some("o4")), &c, now),
            Outcome::Unattributed
        );
        d.touch(7, &ad("acme", "late"), clicked, true, c.keep_ms());
        assert!(d
            .late(7, clicked, &ad("acme", "late"), &c, bought + DAY + 1)
            .is_empty());
        assert_eq!(d.parked(), 0);
    }

    /// Only the touch just recorded attributes a kept conversion, and only
    /// when it is its last touch: another replica's touch (learnt from its
    /// journal, where its own copy of the conversion follows) never does,
    /// nor a local touch after it. A kept copy counted since (a resend
    /// whose `seen` mark was evicted) is no longer kept (review findings).
    #[test]
    fn only_a_local_last_touch_attributes_a_kept_conversion() {
        let c = catalog();
        let mut a = keeping(100);
        let now = 100 * DAY;
        let bought = now - 60_000;
        let p = buy(bought, Some("o1"));
        assert_eq!(a.attribute(&p, &c, now), Outcome::Unattributed);
        // A peer's touch before it: stored, no `late` for it.
        a.touch(7, &ad("acme", "peer"), bought - 10, true, c.keep_ms());
        // A local touch: an impression, older than the peer's click.
        a.touch(7, &ad("acme", "local"), bought - 20, false, c.keep_ms());
        assert!(a
            .late(7, bought - 20, &ad("acme", "local"), &c, now)
            .is_empty());
        assert_eq!(a.parked(), 1);
        // Its `seen` mark lost, the same purchase sent again is counted
        // then, and the copy kept goes with it.
        a.seen.clear();
        assert_eq!(li_of(a.attribute(&p, &c, now)), "peer");
        assert_eq!(a.parked(), 0);
        a.touch(7, &ad("acme", "later"), bought - 5, true, c.keep_ms());
        assert!(a
            .late(7, bought - 5, &ad("acme", "later"), &c, now)
            .is_empty());
    }

    /// Evicted, a conversion goes under all of its keys: a copy left under
    /// one would miss the unparking by a record under the other.
    #[test]
    fn a_kept_conversion_goes_under_all_of_its_keys() {
        let c = catalog();
        let mut a = keeping(32 * 20);
        let now = 100 * DAY;
        for i in 0..200u64 {
            let mut p = buy(now - 1000 + i as i64, Some(&format!("o{i}")));
            p.user = 1000 + i % 7;
            p.other_user = Some(5000 + i % 11);
            assert_eq!(a.attribute(&p, &c, now), Outcome::Unattributed);
            let copies: usize = a.parked.values().map(Vec::len).sum();
            assert_eq!(copies, a.parked(), "the count is the copies");
            assert!(a.parked() <= 20);
            for v in a.parked.values() {
                for p in v {
                    for k in keys_of(p) {
                        assert!(a.parked[&k].contains(p), "a copy under each key");
                    }
                }
            }
        }
    }

    /// A shopper key keeps its newest few conversions, each once: a touch
    /// looks at no more (review finding: a pixel's made-up id grew one
    /// key's list to the whole bound, and a touch of it then took seconds).
    #[test]
    fn a_shopper_keeps_a_few_conversions_each_once() {
        let c = catalog();
        let mut a = keeping(100_000);
        let now = 100 * DAY;
        for i in 0..1000 {
            let p = buy(now - 1000 + i, Some(&format!("o{i}")));
            assert_eq!(a.attribute(&p, &c, now), Outcome::Unattributed);
        }
        assert_eq!(a.parked(), MAX_PARKED_PER_KEY);
        let newest = buy(now - 1, Some("o999"));
        a.park(&newest, now);
        assert_eq!(a.parked(), MAX_PARKED_PER_KEY, "once");
        // The newest are kept: a click before them all takes them all.
        a.touch(7, &ad("acme", "clicked"), now - 2000, true, c.keep_ms());
        let late = a.late(7, now - 2000, &ad("acme", "clicked"), &c, now);
        assert_eq!(late.len(), MAX_PARKED_PER_KEY);
        assert!(late
            .iter()
            .all(|r| r.at_ms >= now - MAX_PARKED_PER_KEY as i64));
        assert_eq!(a.parked(), 0);
    }

    /// Past the bound, the oldest kept conversions go first: the newest
    /// have the longest left to meet a touch.
    #[test]
    fn making_room_drops_the_oldest_kept_conversions() {
        let c = catalog();
        let mut a = keeping(640);
        let now = 100 * DAY;
        for i in 0..40i64 {
            let mut p = buy(now - 10_000 + i, Some(&format!("o{i}")));
            p.user = 1000 + i as u64;
            p.other_user = None;
            assert_eq!(a.attribute(&p, &c, now), Outcome::Unattributed);
        }
        let mut kept: Vec<i64> = a.parked.values().flatten().map(|p| p.at_ms).collect();
        kept.sort_unstable();
        let last = now - 10_000 + 39;
        let newest: Vec<i64> = (last + 1 - kept.len() as i64..=last).collect();
        assert!(kept.len() >= 10, "{kept:?}");
        assert_eq!(kept, newest, "the kept are the newest");
    }

    /// Kept conversions stay within the attributor's bound.
    #[test]
    fn kept_conversions_are_bounded() {
        let c = catalog();
        // A thirty-second of 640 entries: 20 copies.
        let mut a = keeping(640);
        let now = 100 * DAY;
        for i in 0..100 {
            let mut p = buy(now - i, Some(&format!("o{i}")));
            p.user = 1000 + i as u64;
            assert_eq!(a.attribute(&p, &c, now), Outcome::Unattributed);
            assert!(a.parked() <= 20, "{}", a.parked());
        }
        assert!(a.parked() >= 10, "{}", a.parked());
    }

    /// A window reaches back from the conversion, not from its upload:
    /// orders uploaded a day or a week late go to the touches before them,
    /// up to a week past the longest window (account-manager probe: a
    /// purchase five minutes after a click, uploaded 25 hours later with
    /// one-day windows, was unattributed).
    #[test]
    fn a_late_upload_finds_the_touches_before_its_conversion() {
        let mut c = Catalog::default();
        c.by_product.entry("tent".into()).or_default().push(Window {
            advertiser: "acme".into(),
            click_ms: DAY,
            view_ms: DAY,
        });
        c.max_window_ms = DAY;
        let mut a = Attributor::new(100);
        let clicked = 100 * DAY;
        a.touch(7, &ad("acme", "clicked"), clicked, true, c.keep_ms());
        let bought = clicked + 5 * 60_000;
        for (order, uploaded) in [("o1", bought + DAY + 3_600_000), ("o2", bought + 7 * DAY)] {
            assert_eq!(
                li_of(a.attribute(&buy(bought, Some(order)), &c, uploaded)),
                "clicked",
                "uploaded {} h late",
                (uploaded - bought) / 3_600_000
            );
        }
        // Past the window and the week after it: too late.
        assert_eq!(
            a.attribute(&buy(bought, Some("o3")), &c, bought + 8 * DAY + 1),
            Outcome::Unattributed
        );
        // A window still ends at the conversion: bought two days after the
        // click, uploaded at once, it is not the click's.
        assert_eq!(
            a.attribute(&buy(clicked + 2 * DAY, Some("o4")), &c, clicked + 2 * DAY),
            Outcome::Unattributed
        );
    }

    /// An order of several products is one purchase with the sales of all
    /// its lines: each line after the first adds its amount and no
    /// purchase (account-manager probe: the second product's 20.00 was
    /// dropped as a duplicate). A line sent again adds nothing.
    #[test]
    fn a_basket_is_one_purchase_with_every_lines_sale() {
        let mut c = catalog();
        let windows = c.by_product["tent"].clone();
        c.by_product.insert("stove".into(), windows);
        let mut a = Attributor::new(100);
        a.touch(7, &ad("acme", "clicked"), 0, true, c.keep_ms());
        let line = |product: &str, amount: i64| Conversion {
            product: product.into(),
            amount: Micros(amount),
            ..buy(DAY, Some("o1"))
        };
        let counted = |o: Outcome| match o {
            Outcome::Attributed(r) => (r.n, r.amount.as_i64(), r.dims.product.to_string()),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            counted(a.attribute(&line("tent", 10_000_000), &c, NOW)),
            (1, 10_000_000, "tent".into())
        );
        let stove = a.attribute(&line("stove", 20_000_000), &c, NOW);
        let Outcome::Attributed(record) = &stove else {
            panic!("{stove:?}");
        };
        assert_eq!(counted(stove.clone()), (0, 20_000_000, "stove".into()));
        assert_eq!(stove.label(), "basket_line", "the order is counted once");
        assert_eq!(
            a.attribute(&line("stove", 20_000_000), &c, NOW),
            Outcome::Duplicate
        );
        // Its record forgotten (not written), the order still counts once.
        a.forget(record);
        assert_eq!(
            counted(a.attribute(&line("stove", 20_000_000), &c, NOW)),
            (0, 20_000_000, "stove".into())
        );
    }

    #[test]
    fn the_last_click_in_its_window_beats_a_later_impression() {
        let (c, keep) = (catalog(), 30 * DAY);
        let mut a = Attributor::new(100);
        a.touch(7, &ad("acme", "clicked"), 0, true, keep);
        a.touch(7, &ad("other", "seen"), 10 * DAY, false, keep);
        assert_eq!(
            li_of(a.attribute(&buy(6 * DAY, Some("o1")), &c, NOW)),
            "clicked"
        );
        // The same order again counts nothing.
        assert_eq!(
            a.attribute(&buy(6 * DAY, Some("o1")), &c, NOW),
            Outcome::Duplicate
        );
        // Past acme's 14 click days, other's impression (7 view days) is left.
        assert_eq!(
            li_of(a.attribute(&buy(15 * DAY, Some("o2")), &c, NOW)),
            "seen"
        );
        // Past both windows: nobody's.
        assert_eq!(
            a.attribute(&buy(40 * DAY, Some("o3")), &c, NOW),
            Outcome::Unattributed
        );
        // A touch after the purchase is not its cause.
        assert_eq!(
            a.attribute(&buy(-DAY, Some("o4")), &c, NOW),
            Outcome::Unattributed
        );
    }

    /// Touches recorded under the shopper's other key count for them: the
    /// last touch wins whichever key it is under, and the record carries
    /// that touch's key (so that training joins the two).
    #[test]
    fn touches_under_the_other_user_key_are_the_shoppers() {
        let (c, keep) = (catalog(), 30 * DAY);
        let mut a = Attributor::new(100);
        a.touch(9, &ad("acme", "other-key"), 0, true, keep);
        a.touch(7, &ad("acme", "this-key"), DAY, true, keep);
        a.touch(5, &ad("acme", "someone-else"), 2 * DAY, true, keep);
        let without = buy(3 * DAY, Some("o1"));
        let with = Conversion {
            other_user: Some(9),
            order_id: Some("o2".into()),
            ..without.clone()
        };
        assert_eq!(li_of(a.attribute(&without, &c, NOW)), "this-key");
        assert_eq!(li_of(a.attribute(&with, &c, NOW)), "this-key");
        // A click under the other key beats an impression under this one,
        // later or not, and a later click under it beats an earlier one
        // under this one: the keys are one shopper's.
        let mut d = Attributor::new(100);
        d.touch(7, &ad("acme", "seen"), 2 * DAY, false, keep);
        d.touch(9, &ad("acme", "clicked"), DAY, true, keep);
        let o3 = Conversion {
            order_id: Some("o3".into()),
            ..with.clone()
        };
        assert_eq!(li_of(d.attribute(&o3, &c, NOW)), "clicked");
        d.touch(7, &ad("acme", "clicked-before"), 0, true, keep);
        let o4 = Conversion {
            order_id: Some("o4".into()),
            ..with.clone()
        };
        assert_eq!(li_of(d.attribute(&o4, &c, NOW)), "clicked");
        // Only the other key touched: its touch counts, recorded under it.
        let mut b = Attributor::new(100);
        b.touch(9, &ad("acme", "other-key"), 0, true, keep);
        match b.attribute(&with, &c, NOW) {
            Outcome::Attributed(r) => {
                assert_eq!((&*r.dims.line_item, r.user), ("other-key", 9))
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(
            b.attribute(&buy(3 * DAY, Some("o3")), &c, NOW),
            Outcome::Unattributed,
            "without the other key, its touch is not the shopper's"
        );
    }

    /// A conversion counted under either key is counted: sent again (an
    /// upload retried, `--data` read again at start) after it was
    /// attributed to a touch under the other key, or after a journal
    /// written under the other key was read back, it is a duplicate. Views
    /// have no order id, so only their event (which names the user) tells.
    #[test]
    fn a_conversion_counted_under_either_key_counts_once() {
        let (c, keep) = (catalog(), 30 * DAY);
        let mut view = buy(DAY / 2, None);
        view.purchase = false;
        let both = Conversion {
            other_user: Some(9),
            ..view.clone()
        };
        // Attributed under the other key, then sent again.
        let mut a = Attributor::new(100);
        a.touch(9, &ad("acme", "li"), 0, false, keep);
        let record = match a.attribute(&both, &c, NOW) {
            Outcome::Attributed(r) => r,
            o => panic!("{o:?}"),
        };
        assert_eq!(a.attribute(&both, &c, NOW), Outcome::Duplicate);
        // Read back from the journal by a fresh start, then sent again.
        let mut b = Attributor::new(100);
        b.touch(9, &ad("acme", "li"), 0, false, keep);
        b.remember(&record, NOW, keep);
        assert_eq!(b.attribute(&both, &c, NOW), Outcome::Duplicate);
        // Recorded under this build's key (its touch was under it), read
        // back while the shopper's last touch is under the other key.
        let mut d = Attributor::new(100);
        d.touch(9, &ad("acme", "li"), 0, false, keep);
        d.remember(
            &Record {
                user: 7,
                ..record.clone()
            },
            NOW,
            keep,
        );
        assert_eq!(d.attribute(&both, &c, NOW), Outcome::Duplicate);
        // Unattributed under this build's key, then a touch from before it
        // comes in under the other (a replica's journal copied late), and
        // the conversion is sent again.
        let mut f = Attributor::new(100);
        assert_eq!(f.attribute(&both, &c, NOW), Outcome::Unattributed);
        f.touch(9, &ad("acme", "li"), 0, false, keep);
        assert_eq!(f.attribute(&both, &c, NOW), Outcome::Duplicate);
        // A record that could not be written is forgotten under the key it
        // was marked with: the retry counts.
        let mut e = Attributor::new(100);
        e.touch(9, &ad("acme", "li"), 0, false, keep);
        let r = match e.attribute(&both, &c, NOW) {
            Outcome::Attributed(r) => r,
            o => panic!("{o:?}"),
        };
        e.forget(&r);
        assert!(matches!(
            e.attribute(&both, &c, NOW),
            Outcome::Attributed(_)
        ));
    }

    #[test]
    fn views_and_unknown_products() {
        let (c, keep) = (catalog(), 30 * DAY);
        let mut a = Attributor::new(100);
        a.touch(7, &ad("acme", "li"), 0, false, keep);
        let mut view = buy(DAY / 2, None);
        view.purchase = false;
        match a.attribute(&view, &c, NOW) {
            Outcome::Attributed(r) => {
                assert_eq!(
                    (r.kind, r.amount, &*r.dims.product),
                    (Kind::View, Micros::ZERO, "tent")
                )
            }
            o => panic!("{o:?}"),
        }
        assert_eq!(
            a.attribute(&view, &c, NOW),
            Outcome::Duplicate,
            "the same event again"
        );
        view.product = "socks".into();
        assert_eq!(a.attribute(&view, &c, NOW), Outcome::Unattributed);
        // acme's impressions count for one day only.
        assert_eq!(
            a.attribute(&buy(2 * DAY, None), &c, NOW),
            Outcome::Unattributed
        );
    }

    #[test]
    fn a_conversion_is_cut_as_its_touch_was() {
        let c = catalog();
        let mut a = Attributor::new(100);
        let touch = Dims {
            keyword: "broad:tent".into(),
            audience: "products:tent-pages".into(),
            ..ad("acme", "li")
        };
        a.touch(7, &touch, 0, true, 30 * DAY);
        match a.attribute(&buy(DAY, Some("o1")), &c, NOW) {
            Outcome::Attributed(r) => assert_eq!(
                r.dims,
                Dims {
                    product: "tent".into(),
                    ..touch
                }
            ),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn order_ids_are_each_advertisers_own() {
        let mut c = catalog();
        c.by_product.insert(
            "mug".into(),
            vec![Window {
                advertiser: "other".into(),
                click_ms: DAY,
                view_ms: DAY,
            }],
        );
        let mut a = Attributor::new(100);
        a.touch(7, &ad("acme", "tents"), 0, true, 30 * DAY);
        a.touch(7, &ad("other", "mugs"), 0, true, 30 * DAY);
        assert_eq!(
            li_of(a.attribute(&buy(DAY / 2, Some("1001")), &c, NOW)),
            "tents"
        );
        let mut mug = buy(DAY / 2, Some("1001"));
        mug.product = "mug".into();
        assert_eq!(
            li_of(a.attribute(&mug, &c, NOW)),
            "mugs",
            "another shop's order 1001"
        );
    }

    #[test]
    fn order_ids_of_advertisers_sharing_a_product_do_not_collide() {
        let mut c = catalog();
        // acme lists tent and mug; other lists mug.
        for (adv, p) in [("acme", "mug"), ("other", "mug")] {
            c.by_product.entry(p.into()).or_default().push(Window {
                advertiser: adv.into(),
                click_ms: 14 * DAY,
                view_ms: DAY,
            });
        }
        let mut a = Attributor::new(100);
        let mut mug = buy(DAY / 2, Some("1001"));
        mug.product = "mug".into();
        assert_eq!(a.attribute(&mug, &c, NOW), Outcome::Unattributed);
        a.touch(7, &ad("acme", "tents"), DAY, true, 30 * DAY);
        // acme's own order 1001 (a tent) is not the unattributed mug order.
        assert_eq!(
            li_of(a.attribute(&buy(2 * DAY, Some("1001")), &c, NOW)),
            "tents"
        );
        // The mug order sent again after acme's touch is still the same purchase.
        assert_eq!(a.attribute(&mug, &c, NOW), Outcome::Duplicate);
        // A mug in acme's order 1001 is part of that order: counted once.
        let mut mug2 = buy(2 * DAY, Some("1001"));
        mug2.product = "mug".into();
        assert_eq!(a.attribute(&mug2, &c, NOW), Outcome::Duplicate);
    }

    /// Two shops listing one product each number their orders their own
    /// way (reports probe: the other shop's unattributed order 5001 made
    /// acme's order 5001, after acme's click, a duplicate; its sale was
    /// lost). An order that names no shop is still the same purchase as a
    /// named one of that product.
    #[test]
    fn a_named_order_is_its_advertisers_own_among_shops_sharing_a_product() {
        let c = catalog();
        let named = |adv: &str, at: i64, user: u64| {
            let mut p = buy(at, Some("5001"));
            p.advertiser = Some(adv.into());
            p.user = user;
            p
        };
        let mut a = Attributor::new(100);
        assert_eq!(
            a.attribute(&named("other", DAY, 9), &c, NOW),
            Outcome::Unattributed
        );
        a.touch(7, &ad("acme", "tents"), DAY, true, 30 * DAY);
        let acme = named("acme", 2 * DAY, 7);
        assert_eq!(li_of(a.attribute(&acme, &c, NOW)), "tents");
        // Counted once, named or not, and read back the same way.
        assert_eq!(a.attribute(&acme, &c, NOW), Outcome::Duplicate);
        assert_eq!(
            a.attribute(&buy(2 * DAY, Some("5001")), &c, NOW),
            Outcome::Duplicate
        );
        let mut b = Attributor::new(100);
        b.touch(7, &ad("acme", "tents"), DAY, true, 30 * DAY);
        let Outcome::Attributed(r) = b.attribute(&acme, &c, NOW) else {
            panic!("attributed")
        };
        let mut restarted = Attributor::new(100);
        restarted.remember(&r, NOW, c.keep_ms());
        assert_eq!(restarted.attribute(&acme, &c, NOW), Outcome::Duplicate);
        assert_eq!(
            restarted.attribute(&buy(2 * DAY, Some("5001")), &c, NOW),
            Outcome::Duplicate,
            "an unnamed copy"
        );
        assert_eq!(
            restarted.attribute(&named("other", 3 * DAY, 9), &c, NOW),
            Outcome::Unattributed,
            "the other shop's 5001 is not acme's"
        );
        // An unnamed order first: a named copy of it is the same purchase.
        let mut u = Attributor::new(100);
        assert_eq!(
            u.attribute(&buy(DAY, Some("6001")), &c, NOW),
            Outcome::Unattributed
        );
        let mut copy = named("acme", DAY, 7);
        copy.order_id = Some("6001".into());
        assert_eq!(u.attribute(&copy, &c, NOW), Outcome::Duplicate);
    }

    #[test]
    fn a_date_in_the_future_forgets_nothing() {
        let c = catalog();
        let mut a = Attributor::new(16);
        a.touch(7, &ad("acme", "li"), 0, true, 30 * DAY);
        for i in 0..16 {
            a.attribute(&buy(DAY, Some(&format!("o{i}"))), &c, DAY);
        }
        // Full: a conversion dated far ahead must not make the rest stale.
        assert_eq!(a.seen.len(), 16);
        a.attribute(&buy(i64::MAX / 2, Some("future")), &c, DAY);
        assert!(
            a.seen.len() >= 15,
            "at most a tenth forgotten early: {} of 17 kept",
            a.seen.len()
        );
    }

    /// Yesterday's orders uploaded today: the shopper was shown (and
    /// clicked) the advertiser's ads again after buying. The purchase is
    /// owed to the last touch before it, not lost for a touch after it.
    #[test]
    fn a_purchase_uploaded_after_later_touches_goes_to_the_last_touch_before_it() {
        let (c, keep) = (catalog(), 30 * DAY);
        let mut a = Attributor::new(100);
        a.touch(7, &ad("acme", "clicked-before"), 0, true, keep);
        a.touch(7, &ad("acme", "seen-before"), DAY / 4, false, keep);
        a.touch(7, &ad("acme", "clicked-after"), 2 * DAY, true, keep);
        a.touch(7, &ad("acme", "seen-after"), 3 * DAY, false, keep);
        assert_eq!(
            li_of(a.attribute(&buy(DAY, Some("o1")), &c, NOW)),
            "clicked-before"
        );
        // Impressions only: the last before the purchase, in its window
        // (acme's is a day).
        let mut b = Attributor::new(100);
        b.touch(7, &ad("acme", "seen-first"), 0, false, keep);
        b.touch(7, &ad("acme", "seen-before"), DAY / 2, false, keep);
        b.touch(7, &ad("acme", "seen-after"), 2 * DAY, false, keep);
        assert_eq!(
            li_of(b.attribute(&buy(DAY, Some("o1")), &c, NOW)),
            "seen-before"
        );
        // Past the window of the last touch before it: not an older one's.
        assert_eq!(
            b.attribute(&buy(DAY / 2 + DAY + 1, Some("o2")), &c, NOW),
            Outcome::Unattributed
        );
    }

    /// Each kind keeps its newest `KEPT_PER_KIND`, whatever order they
    /// come in (tracking calls and journal days read back out of order);
    /// a shopper's repeated ad is held once.
    #[test]
    fn the_newest_touches_of_each_kind_are_kept_in_order() {
        let (c, keep) = (catalog(), 30 * DAY);
        let mut a = Attributor::new(100);
        for (i, at) in [5, 1, 3, 6, 2, 4].into_iter().enumerate() {
            a.touch(7, &ad("acme", &format!("li-{at}")), at * DAY, true, keep);
            assert_eq!(a.touches(), (i + 1).min(KEPT_PER_KIND));
        }
        let last = &a.touches[&(7, "acme".into())];
        let kept: Vec<i64> = last
            .clicks
            .iter()
            .flatten()
            .map(|t| t.at_ms / DAY)
            .collect();
        assert_eq!(kept, [6, 5, 4, 3]);
        assert_eq!(
            li_of(a.attribute(&buy(4 * DAY + 1, Some("o1")), &c, NOW)),
            "li-4"
        );
        // Before the oldest kept: not remembered any more.
        assert_eq!(
            a.attribute(&buy(2 * DAY + 1, Some("o2")), &c, NOW),
            Outcome::Unattributed
        );
        let mut b = Attributor::new(100);
        for at in 0..3 {
            b.touch(7, &ad("acme", "same"), at, false, keep);
        }
        b.touch(7, &ad("acme", "same"), 3, true, keep);
        let last = &b.touches[&(7, "acme".into())];
        let all: Vec<&Touch> = last
            .clicks
            .iter()
            .chain(&last.impressions)
            .flatten()
            .collect();
        assert_eq!(all.len(), 4);
        assert!(all.iter().all(|t| Arc::ptr_eq(&t.dims, &all[0].dims)));
    }

    /// A touch read twice (a replica's copy of a journal line, a day read
    /// back) is one touch: it does not push an earlier one out.
    #[test]
    fn the_same_touch_twice_is_kept_once() {
        let (c, keep) = (catalog(), 30 * DAY);
        let mut a = Attributor::new(100);
        a.touch(7, &ad("acme", "first"), 0, true, keep);
        for _ in 0..KEPT_PER_KIND {
            a.touch(7, &ad("acme", "again"), 2 * DAY, true, keep);
        }
        assert_eq!(a.touches(), 2);
        assert_eq!(li_of(a.attribute(&buy(DAY, Some("o1")), &c, NOW)), "first");
    }

    /// Making room forgets the touches too old for any window inside a
    /// shopper's entry, not only entries that are all old, before it drops
    /// live ones.
    #[test]
    fn old_touches_go_before_live_ones() {
        let (c, keep) = (catalog(), 30 * DAY);
        let mut a = Attributor::new(16);
        // Eight shoppers, each an old click and a recent one.
        for user in 1..=8 {
            a.touch(user, &ad("acme", "old"), 0, true, keep);
            a.touch(user, &ad("acme", "new"), 40 * DAY, true, keep);
        }
        assert_eq!(a.touches(), 16);
        // Full: the old clicks go, every shopper's recent one stays.
        a.touch(9, &ad("acme", "new"), 41 * DAY, true, keep);
        assert_eq!((a.touches(), a.evicted()), (9, 0));
        for user in 1..=9 {
            let mut b = buy(42 * DAY, Some(&format!("o{user}")));
            b.user = user;
            assert_eq!(li_of(a.attribute(&b, &c, 42 * DAY)), "new", "{user}");
        }
    }

    #[test]
    fn memory_is_bounded_in_touches() {
        let mut a = Attributor::new(100);
        for user in 1..=200 {
            for li in 0..8 {
                let at = user as i64 * 10 + li;
                a.touch(user, &ad("acme", &format!("li-{li}")), at, li % 2 == 0, DAY);
                assert!(a.touches() <= 100, "{}", a.touches());
            }
        }
        assert_eq!(
            a.touches(),
            a.touches.values().map(Last::held).sum::<usize>()
        );
        assert!(a.evicted() > 0);
    }

    #[test]
    fn memory_is_bounded() {
        let mut a = Attributor::new(100);
        for user in 1..=1_000 {
            a.touch(user, &ad("acme", "li"), user as i64, false, DAY);
        }
        assert!(a.touches() <= 100);
        assert!(a.evicted() > 0);
    }
}
