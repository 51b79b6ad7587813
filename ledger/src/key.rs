//! The keys money is counted under. Built in one place, so a line item's
//! spend is never looked up under a string spelled slightly differently.

use std::fmt;
use std::sync::Arc;

/// A budget: a line item's own, or its order's total.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpendKey {
    LineItem(Arc<str>),
    Order(Arc<str>),
}

impl SpendKey {
    pub fn line_item(id: &str) -> SpendKey {
        SpendKey::LineItem(id.into())
    }

    pub fn order(id: &str) -> SpendKey {
        SpendKey::Order(id.into())
    }

    pub fn id(&self) -> &str {
        match self {
            SpendKey::LineItem(id) | SpendKey::Order(id) => id,
        }
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

impl fmt::Display for SpendKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpendKey::LineItem(id) => write!(f, "li:{id}"),
            SpendKey::Order(id) => write!(f, "order:{id}"),
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
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BidId {
    digits: [u8; 32],
    key: BidKey,
}

impl BidId {
    pub fn new(random: u128) -> BidId {
        let mut digits = [0u8; 32];
        hex::encode_to_slice(random.to_be_bytes(), &mut digits)
            .unwrap_or_else(|_| unreachable!("16 bytes are 32 hex digits"));
        // The first 16 digits are the high 64 bits: what `BidKey::of`
        // reads back from the id.
        BidId {
            digits,
            key: BidKey((random >> 64) as u64),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits).unwrap_or_else(|_| unreachable!("hex digits are ASCII"))
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
