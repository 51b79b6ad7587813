//! A first-price bid's id says so, and under which slot kind its win
//! teaches the shading curve: the bid is counted when its answer is sent,
//! its win when the ledger charges it (`App::notice`), and nothing is kept
//! per bid in between. The id is the one place that comes back with the
//! win, signed, in every notice of every version: earlier versions read the
//! id as opaque text, so a notice written by this one is charged by any
//! replica of a rolling deploy or a rollback, and theirs by this one.
//!
//! The id's last four hex digits are a 12-bit mark and the slot kind; the
//! other 112 bits stay random (the ledger's key is the first 64). An id
//! of an earlier version, random throughout, reads as marked with odds of
//! 4 in 65,536: during a deploy, that share of the other version's
//! first-price wins would count under some slot kind's curve, a bin's
//! wins being capped at its bids.

use ledger::BidId;
use shading::SlotKind;

/// The mark in the id's low 16 bits, with the slot kind's code (1–4) in
/// the lowest four.
const MARK: u128 = 0xf9e0;
const MASK: u128 = 0xfff0;

fn code(slot: SlotKind) -> u128 {
    match slot {
        SlotKind::Banner => 1,
        SlotKind::Video => 2,
        SlotKind::Audio => 3,
        SlotKind::Native => 4,
    }
}

/// A new bid's id from 128 random bits: marked when the bid is first price.
pub(crate) fn bid_id(random: u128, first_price: Option<SlotKind>) -> BidId {
    match first_price {
        Some(slot) => BidId::new((random & !0xffff) | MARK | code(slot)),
        // A random id that happens to carry the mark loses it.
        None if random & MASK == MARK => BidId::new(random ^ 0x8000),
        None => BidId::new(random),
    }
}

/// The slot kind of a first-price bid, from its id; `None` for any other.
pub(crate) fn of(bid_id: &str) -> Option<SlotKind> {
    let tail = bid_id.get(bid_id.len().checked_sub(4)?..)?;
    let low = u128::from_str_radix(tail, 16).ok()?;
    if low & MASK != MARK || tail.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    match low & 0xf {
        1 => Some(SlotKind::Banner),
        2 => Some(SlotKind::Video),
        3 => Some(SlotKind::Audio),
        4 => Some(SlotKind::Native),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SLOTS: [SlotKind; 4] = [
        SlotKind::Banner,
        SlotKind::Video,
        SlotKind::Audio,
        SlotKind::Native,
    ];

    proptest! {
        /// Marked ids read back as their slot kind, unmarked ones as none,
        /// whatever the random bits; the ledger's key is the random high
        /// half either way, the key the auction warms the ledger for
        /// before it knows the mark (`BidId::key_of`).
        #[test]
        fn the_mark_reads_back(random in any::<u128>(), slot in 0usize..5) {
            let first_price = SLOTS.get(slot).copied();
            let id = bid_id(random, first_price);
            prop_assert_eq!(of(id.as_str()), first_price);
            prop_assert_eq!(id.key().0, (random >> 64) as u64);
            prop_assert_eq!(id.key(), ledger::BidId::key_of(random));
            prop_assert_eq!(ledger::BidKey::of(id.as_str()), Some(id.key()));
        }
    }

    #[test]
    fn ids_of_earlier_versions_and_junk_read_as_unmarked() {
        // An id as earlier versions wrote them, and what this one writes.
        assert_eq!(of("0123456789abcdef0123456789abcdef"), None);
        assert_eq!(
            of("0123456789abcdef0123456789abf9e2"),
            Some(SlotKind::Video)
        );
        for junk in [
            "",
            "f9e",
            "f9e0",
            "f9e5",
            "F9E1",
            "0123456789abcdef0123456789abf9ex",
        ] {
            assert_eq!(of(junk), None, "{junk}");
        }
        // Every unmarked id this version writes stays unmarked.
        let marked_by_chance = 0xabcd_u128 << 112 | MARK | 3;
        assert_eq!(of(bid_id(marked_by_chance, None).as_str()), None);
    }
}
