//! The keys money is counted under. Built in one place, so a line item's
//! spend is never looked up under a string spelled slightly differently.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

/// A budget: a line item's own, or its order's total.
///
/// Its hash is worked out once, when the key is made: a bid looks its two
/// keys up about twenty times (room before and after pricing, the
/// reservation, each lookup hashing to pick a shard and again in the
/// shard's map), and hashing the id each time was 1,500 instructions of a
/// banner bid. Keys made from the config are shared (cloned, not rebuilt),
/// so comparing two is nearly always a pointer comparison.
#[derive(Clone)]
pub struct SpendKey(Arc<Inner>);

struct Inner {
    kind: Kind,
    id: Box<str>,
    /// Of `kind` and `id` only, under a fixed seed: equal keys hash alike
    /// in every process. Maps still hash it under their own seeds, and the
    /// ids come from the config, never from a request.
    hash: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    LineItem,
    Order,
}

impl SpendKey {
    fn new(kind: Kind, id: &str) -> SpendKey {
        let hash =
            foldhash::fast::FixedState::with_seed(0x5eed_0f5e_4d00_0001).hash_one((kind, id));
        SpendKey(Arc::new(Inner {
            kind,
            id: id.into(),
            hash,
        }))
    }

    pub fn line_item(id: &str) -> SpendKey {
        SpendKey::new(Kind::LineItem, id)
    }

    pub fn order(id: &str) -> SpendKey {
        SpendKey::new(Kind::Order, id)
    }

    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// A line item's own budget (not an order's).
    pub fn is_line_item(&self) -> bool {
        self.0.kind == Kind::LineItem
    }

    /// Reads what `Display` wrote (`li:<id>` or `order:<id>`).
    pub fn parse(s: &str) -> Option<SpendKey> {
        if let Some(id) = s.strip_prefix("li:") {
            Some(SpendKey::line_item(id))
        } else {
            s.strip_prefix("order:").map(SpendKey::order)
        }
    }
}

impl PartialEq for SpendKey {
    fn eq(&self, other: &SpendKey) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash
                && self.0.kind == other.0.kind
                && self.0.id == other.0.id)
    }
}

impl Eq for SpendKey {}

impl Hash for SpendKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

/// Line items first, then orders; by id within each (as the enum this
/// was sorted).
impl Ord for SpendKey {
    fn cmp(&self, other: &SpendKey) -> Ordering {
        (self.0.kind, &*self.0.id).cmp(&(other.0.kind, &*other.0.id))
    }
}

impl PartialOrd for SpendKey {
    fn partial_cmp(&self, other: &SpendKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for SpendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple(match self.0.kind {
            Kind::LineItem => "LineItem",
            Kind::Order => "Order",
        })
        .field(&self.0.id)
        .finish()
    }
}

impl fmt::Display for SpendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            Kind::LineItem => write!(f, "li:{}", self.0.id),
            Kind::Order => write!(f, "order:{}", self.0.id),
        }
    }
}

/// A bid as the ledger knows it: 64 of the bid id's random bits. Bid ids are
/// 128 random bits written by the bidder and come back inside signed
/// notices, so their bits are already uniformly spread: no hashing, and two
/// bids share a key with odds of about 2⁻⁶⁴ per pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BidKey(pub u64);

impl BidKey {
    /// The key of a bid id written by [`BidId::new`]: its first 16 hex
    /// digits. `None` for anything else.
    pub fn of(bid_id: &str) -> Option<BidKey> {
        if bid_id.len() != 32 || !bid_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u64::from_str_radix(bid_id.get(..16)?, 16).ok().map(BidKey)
    }
}

/// A new bid's id: 128 random bits as 32 lowercase hex digits, kept inline
/// (two per bid on the hot path, each a heap string before), with the
/// ledger's key of it.
#[derive(Clone)]
pub struct BidId {
    /// const-hex's buffer: its text is ASCII as written, so reading it as
    /// a `str` checks nothing (`from_utf8` over the 32 digits cost some
    /// 45 instructions, and a bid's URLs read the id nine times).
    digits: hex::Buffer<16>,
    key: BidKey,
}

impl BidId {
    pub fn new(random: u128) -> BidId {
        let mut digits = hex::Buffer::<16>::new();
        digits.format(&random.to_be_bytes());
        // The first 16 digits are the high 64 bits: what `BidKey::of`
        // reads back from the id.
        BidId {
            digits,
            key: BidId::key_of(random),
        }
    }

    /// The key of the id [`BidId::new`] makes of `random`, without making
    /// it: a bidder about to bid can warm the ledger for it
    /// ([`crate::Ledger::prefetch`]).
    pub fn key_of(random: u128) -> BidKey {
        BidKey((random >> 64) as u64)
    }

    pub fn as_str(&self) -> &str {
        self.digits.as_str()
    }

    /// [`BidKey::of`] this id, without reading it back.
    pub fn key(&self) -> BidKey {
        self.key
    }
}

impl fmt::Debug for BidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for BidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_keys_made_apart_are_one_key_and_sort_as_before() {
        use std::collections::{BTreeSet, HashMap};
        let (a, b) = (SpendKey::line_item("li-1"), SpendKey::line_item("li-1"));
        assert!(!Arc::ptr_eq(&a.0, &b.0));
        assert_eq!(a, b);
        let state = std::hash::RandomState::new();
        assert_eq!(state.hash_one(&a), state.hash_one(&b));
        let mut map = HashMap::new();
        map.insert(a.clone(), 1);
        assert_eq!(map.get(&b), Some(&1));
        // A line item and an order may share an id; they are two budgets.
        assert_ne!(SpendKey::line_item("x"), SpendKey::order("x"));
        assert_eq!(map.get(&SpendKey::order("li-1")), None);
        // Line items before orders, by id within each: reconcile's order.
        let sorted: Vec<String> = [
            SpendKey::order("a"),
            SpendKey::line_item("b"),
            SpendKey::line_item("a"),
            SpendKey::order("0"),
        ]
        .into_iter()
        .collect::<BTreeSet<_>>()
        .iter()
        .map(|k| k.to_string())
        .collect();
        assert_eq!(sorted, ["li:a", "li:b", "order:0", "order:a"]);
        assert_eq!(
            format!("{:?}", SpendKey::order("o\"1")),
            "Order(\"o\\\"1\")"
        );
        assert_eq!(SpendKey::parse("li:a"), Some(SpendKey::line_item("a")));
        assert!(SpendKey::parse("li:a").is_some_and(|k| k.is_line_item()));
    }

    #[test]
    fn bid_ids_are_32_lowercase_hex_digits_keyed_as_read_back() {
        for r in [
            0u128,
            1,
            u128::MAX,
            0x0123_4567_89ab_cdef_fedc_ba98_7654_3210,
            0x8000_0000_0000_0000_0000_0000_0000_0001,
        ] {
            let id = BidId::new(r);
            assert_eq!(id.as_str(), format!("{r:032x}"));
            assert_eq!(Some(id.key()), BidKey::of(id.as_str()));
        }
    }

    #[test]
    fn keys_round_trip() {
        for k in [SpendKey::line_item("a:b c"), SpendKey::order("o")] {
            assert_eq!(SpendKey::parse(&k.to_string()), Some(k));
        }
        assert_eq!(SpendKey::parse("x:1"), None);
    }

    #[test]
    fn bid_keys_come_from_well_formed_ids_only() {
        let id = BidId::new(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        assert_eq!(id.as_str(), "0123456789abcdef0011223344556677");
        assert_eq!(BidKey::of(id.as_str()), Some(BidKey(0x0123_4567_89ab_cdef)));
        assert_eq!(BidKey::of("0123"), None);
        assert_eq!(BidKey::of("0123456789abcdef001122334455667z"), None);
        assert_eq!(BidKey::of("+123456789abcdef0011223344556677"), None);
    }
}
