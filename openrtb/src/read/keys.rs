//! From a packed key to its field, for one object of the model: a table
//! built at compile time, so that finding a key's field is a multiply, a
//! load and one comparison, the same few instructions for every object.
//!
//! It lets one shared field loop read every object (see `read_fields` in
//! the parent module): before it, each object had its own copy of that
//! loop with the key comparisons of its fields inlined, 3–14 KB of code an
//! object, and a bid that runs through a dozen objects with its caches
//! cold fetched all of it.

use super::cursor::pack;

/// Slots of a table: a power of two with room to spare, so that a
/// multiplier that spreads the largest object's keys (36) without a
/// collision is found within a few hundred tries; and two cache lines,
/// which a bid with cold caches fetches for each object it reads (256
/// slots made four). With 64, the search for the largest object runs
/// past the compiler's limit on constant evaluation.
const SLOTS: usize = 128;
// A slot's index is a byte, and `slot` takes the hash's top bits.
const _: () = assert!(SLOTS.is_power_of_two() && SLOTS <= 256);

/// No field in this slot.
const EMPTY: u8 = u8::MAX;

/// One object's keys: their names and packed forms ([`pack`]), in the
/// order of the object's fields, and the table from a hash of a packed key
/// to its field. Not generic over the object, so that one loop serves all.
pub(crate) struct Keys {
    names: &'static [&'static str],
    packed: &'static [u128],
    multiplier: u64,
    slots: [u8; SLOTS],
}

/// The slot of `key` under `multiplier`: the top bits of a multiplicative
/// hash of its two halves (the high half holds the length, and the bytes
/// past the eighth).
#[inline]
const fn slot(key: u128, multiplier: u64) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(32);
    (folded.wrapping_mul(multiplier) >> (64 - SLOTS.trailing_zeros())) as usize
}

/// `names` packed, for [`Keys::new`].
pub(crate) const fn packed<const N: usize>(names: &[&str]) -> [u128; N] {
    assert!(names.len() == N);
    let mut out = [0u128; N];
    let mut i = 0;
    while i < N {
        out[i] = pack(names[i].as_bytes());
        i += 1;
    }
    out
}

impl Keys {
    /// The table of an object's fields, or a compile-time error if no
    /// multiplier tried spreads their keys (a new field whose key
    /// collides: the search then needs more tries or a larger table).
    pub(crate) const fn new(names: &'static [&'static str], packed: &'static [u128]) -> Keys {
        assert!(names.len() == packed.len());
        assert!(
            packed.len() < EMPTY as usize,
            "more fields than a slot can name"
        );
        // Every key longer than 15 bytes packs to the same value: a field
        // with one would read any long key of the input, and two would
        // collide in every table.
        let mut i = 0;
        while i < packed.len() {
            assert!(
                packed[i] != u128::MAX,
                "a field key is longer than 15 bytes"
            );
            let mut j = 0;
            while j < i {
                assert!(packed[j] != packed[i], "two fields share a key");
                j += 1;
            }
            i += 1;
        }
        // Odd multipliers from a fixed sequence: the same table on every
        // build.
        let mut multiplier: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut tries = 0;
        while tries < 100_000 {
            let mut slots = [EMPTY; SLOTS];
            let mut i = 0;
            let mut spread = true;
            while i < packed.len() {
                let s = slot(packed[i], multiplier);
                if slots[s] != EMPTY {
                    spread = false;
                    break;
                }
                slots[s] = i as u8;
                i += 1;
            }
            if spread {
                return Keys {
                    names,
                    packed,
                    multiplier,
                    slots,
                };
            }
            multiplier = multiplier
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407)
                | 1;
            tries += 1;
        }
        panic!("no multiplier spreads this object's keys");
    }

    /// The field of `key`, if the object has one by that key.
    #[inline]
    pub(crate) fn field(&self, key: u128) -> Option<usize> {
        let i = usize::from(self.slots[slot(key, self.multiplier)]);
        // An empty slot's index is past the end: no field.
        match self.packed.get(i) {
            Some(&k) if k == key => Some(i),
            _ => None,
        }
    }

    /// How many fields the object has.
    pub(crate) fn len(&self) -> usize {
        self.packed.len()
    }

    /// The key of field `i`, as the JSON has it.
    pub(crate) fn name(&self, i: usize) -> &'static str {
        self.names.get(i).copied().unwrap_or("")
    }
}
