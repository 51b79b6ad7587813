//! Model files and compact features on hostile bytes: never a panic. Long
//! runs: `scripts/fuzz.sh`.

#[path = "../../scripts/fuzz_support.rs"]
mod fuzz_support;
use fuzz_support::{byte_edits, config, remember};

use std::sync::LazyLock;

use predict::{
    FeatureHasher, Features, Model, Outcome, Params, Trainer, CHECKSUM_SEED, MAX_COMPACT_LEN,
};
use rapidhash::v3::{rapidhash_v3_seeded, RapidSecrets};

static CHECKSUM: RapidSecrets = RapidSecrets::seed(CHECKSUM_SEED);
use proptest::prelude::*;

/// A small valid file to damage.
static VALID: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut t = Trainer::new(Params {
        bits: 16,
        holdout_cap: 100,
        ..Params::default()
    })
    .expect("valid");
    for i in 0..500u32 {
        let li = format!("li-{}", i % 3);
        let f = t.hasher().features(&[("li", &li)], &[]).expect("fits");
        let outcome = Outcome {
            clicked: i % 17 == 0,
            converted: i % 101 == 0,
        };
        t.train(&f, &li, outcome).expect("own features");
    }
    t.finish().to_bytes()
});

mod properties {
    use super::*;

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            remember("arbitrary_bytes_never_panic", &bytes);
            prop_assert!(Model::from_bytes(&bytes).is_err());
        }

        #[test]
        fn damaged_model_files_never_panic(
            edits in proptest::collection::vec(byte_edits(proptest::collection::vec(any::<u8>(), 1..16), 64, 64), 1..4)
        ) {
            let mut bytes = VALID.clone();
            for e in &edits {
                e.apply(&mut bytes);
            }
            remember("damaged_model_files_never_panic", &bytes);
            // An edit may undo another; anything else is an error.
            if bytes != *VALID {
                prop_assert!(Model::from_bytes(&bytes).is_err());
            }
        }

        /// Past the length and checksum checks, as a broken writer's file
        /// would be: the parser itself must hold.
        #[test]
        fn damaged_then_resigned_model_files_never_panic(
            edits in proptest::collection::vec(byte_edits(proptest::collection::vec(any::<u8>(), 1..16), 64, 64), 1..4)
        ) {
            let mut bytes = VALID.clone();
            for e in &edits {
                e.apply(&mut bytes);
            }
            if bytes.len() >= 32 {
                let len = bytes.len() as u64;
                bytes[16..24].copy_from_slice(&len.to_le_bytes());
                let body = bytes.len() - 8;
                let sum = rapidhash_v3_seeded(&bytes[..body], &CHECKSUM);
                bytes[body..].copy_from_slice(&sum.to_le_bytes());
            }
            remember("damaged_then_resigned_model_files_never_panic", &bytes);
            if let Ok(model) = Model::from_bytes(&bytes) {
                // Whatever it read must write back the same.
                prop_assert_eq!(model.to_bytes(), bytes);
            }
        }

        #[test]
        fn arbitrary_compact_text_never_panics(text in any::<String>()) {
            remember("arbitrary_compact_text_never_panics", &text);
            let _ = Features::from_compact(&text);
        }

        #[test]
        fn compact_features_round_trip(
            seed in any::<u64>(),
            pairs in proptest::collection::vec(("[a-z_]{1,12}", any::<String>()), 0..32),
        ) {
            let pairs: Vec<(&str, &str)> =
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let f = FeatureHasher::new(seed).features(&pairs, &[]).expect("at most 32");
            let compact = f.to_compact();
            prop_assert!(compact.as_str().len() <= MAX_COMPACT_LEN);
            prop_assert_eq!(Features::from_compact(compact.as_str()), Ok(f));
        }
    }
}
