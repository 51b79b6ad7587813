//! Model files: a round trip changes nothing; damaged, foreign and
//! unknown files are typed errors.

use std::path::PathBuf;

use predict::{
    Features, Model, ModelError, Outcome, Params, Trainer, CHECKSUM_SEED, DEFAULT_CLICK_PRIOR,
    DEFAULT_CONVERSION_PRIOR, DEFAULT_CROSSES,
};
use rapidhash::v3::{rapidhash_v3_seeded, RapidSecrets};

const HEADER_LEN: usize = 152;

fn dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("predict-file-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn candidates(model: &Model) -> Vec<(Features, String)> {
    (0..200)
        .map(|i| {
            let li = format!("li-{}", i % 7);
            let site = format!("site-{}", i % 13);
            let hour = (i % 24).to_string();
            let f = model
                .hasher()
                .features(
                    &[
                        ("li", &li),
                        ("site", &site),
                        ("hour", &hour),
                        ("device", "phone"),
                    ],
                    DEFAULT_CROSSES,
                )
                .expect("fits");
            (f, li)
        })
        .collect()
}

fn trained() -> Model {
    let mut t = Trainer::new(Params {
        bits: 16,
        ..Params::default()
    })
    .expect("valid");
    for i in 0..20_000u32 {
        let li = format!("li-{}", i % 5);
        let site = format!("site-{}", i % 13);
        let f = t
            .hasher()
            .features(&[("li", &li), ("site", &site)], DEFAULT_CROSSES)
            .expect("fits");
        let outcome = Outcome {
            clicked: (i * 7919) % 97 < 3 + i % 13 / 3,
            converted: (i * 104_729) % 1009 < 2,
        };
        t.train(&f, &li, outcome).expect("own features");
    }
    t.finish()
}

#[test]
fn save_and_load_give_identical_predictions() {
    let model = trained();
    let path = dir("round-trip").join("model.bin");
    model.save(&path).expect("save");
    let loaded = Model::load(&path).expect("load");
    for (f, li) in candidates(&model) {
        assert_eq!(model.predict(&f, &li), loaded.predict(&f, &li));
    }
    assert_eq!(loaded.to_bytes(), model.to_bytes());
    assert_eq!(loaded.params(), model.params());
    assert_eq!(loaded.line_item("li-3"), model.line_item("li-3"));
    assert_eq!(loaded.totals(), model.totals());
}

#[test]
fn save_replaces_the_file_and_leaves_no_temporary_behind() {
    let dir = dir("replace");
    let path = dir.join("model.bin");
    Model::priors_only().save(&path).expect("first save");
    let model = trained();
    model.save(&path).expect("second save");
    assert!(!Model::load(&path).expect("load").is_priors_only());
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["model.bin"]);
}

#[test]
fn save_into_a_missing_directory_is_an_io_error_naming_it() {
    let path = dir("missing").join("no/such/dir/model.bin");
    let err = Model::priors_only().save(&path).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");
}

#[test]
fn priors_only_round_trips_and_answers_the_defaults() {
    let path = dir("priors").join("model.bin");
    Model::priors_only().save(&path).expect("save");
    let model = Model::load(&path).expect("load");
    assert!(model.is_priors_only());
    let f = model
        .hasher()
        .features(&[("li", "x")], DEFAULT_CROSSES)
        .expect("fits");
    let p = model.predict(&f, "x");
    assert_eq!(p.click, DEFAULT_CLICK_PRIOR);
    assert_eq!(p.conversion, DEFAULT_CONVERSION_PRIOR);
}

#[test]
fn a_flipped_byte_anywhere_is_an_error() {
    let bytes = trained().to_bytes();
    // Header fields, the weights, the line items, the checksum.
    let len = bytes.len();
    for at in [
        0,
        9,
        13,
        20,
        30,
        100,
        HEADER_LEN + 5,
        len / 2,
        len - 40,
        len - 1,
    ] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x10;
        let err = Model::from_bytes(&damaged).expect_err("damaged");
        match at {
            0 => assert!(matches!(err, ModelError::NotAModel), "{at}: {err}"),
            9 => assert!(
                matches!(err, ModelError::UnsupportedVersion { .. }),
                "{at}: {err}"
            ),
            20 => assert!(matches!(err, ModelError::TooLarge { .. }), "{at}: {err}"),
            _ => assert!(matches!(err, ModelError::Checksum), "{at}: {err}"),
        }
    }
}

#[test]
fn truncated_files_are_errors() {
    let bytes = trained().to_bytes();
    for len in [
        1,
        7,
        8,
        11,
        12,
        23,
        100,
        HEADER_LEN + 8,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let err = Model::from_bytes(&bytes[..len]).expect_err("truncated");
        assert!(matches!(err, ModelError::Truncated { .. }), "{len}: {err}");
    }
    let path = dir("truncated").join("model.bin");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).expect("write");
    let err = Model::load(&path).expect_err("truncated");
    assert!(
        matches!(err, ModelError::Truncated { expected, found }
            if expected == bytes.len() as u64 && found == bytes.len() as u64 - 100),
        "{err}"
    );
}

#[test]
fn empty_foreign_and_future_files_are_errors() {
    let dir = dir("foreign");
    let path = dir.join("model.bin");
    std::fs::write(&path, b"").expect("write");
    assert!(matches!(Model::load(&path), Err(ModelError::Empty)));

    std::fs::write(&path, b"{\"weights\": []}\n").expect("write");
    assert!(matches!(Model::load(&path), Err(ModelError::NotAModel)));
    // A foreign file shorter than the magic.
    assert!(matches!(
        Model::from_bytes(b"PX"),
        Err(ModelError::NotAModel)
    ));

    let mut bytes = trained().to_bytes();
    bytes[8..12].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    assert!(matches!(
        Model::load(&path),
        Err(ModelError::UnsupportedVersion { found: 2 })
    ));

    let err = Model::load(dir.join("absent.bin")).expect_err("absent");
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
    assert!(err.to_string().contains("absent.bin"), "{err}");
}

#[test]
fn a_longer_file_than_it_says_is_an_error() {
    let mut bytes = trained().to_bytes();
    bytes.push(0);
    assert!(matches!(
        Model::from_bytes(&bytes),
        Err(ModelError::LengthMismatch { .. })
    ));
}

/// Re-signs bytes edited past the checksum, as a broken writer would.
fn resign(bytes: &mut [u8]) {
    static SECRETS: RapidSecrets = RapidSecrets::seed(CHECKSUM_SEED);
    let body = bytes.len() - 8;
    let sum = rapidhash_v3_seeded(&bytes[..body], &SECRETS);
    bytes[body..].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn a_checksummed_file_that_makes_no_sense_is_malformed() {
    let good = trained().to_bytes();
    let malformed = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.clone();
        edit(&mut bytes);
        resign(&mut bytes);
        match Model::from_bytes(&bytes) {
            Err(ModelError::Malformed(what)) => what,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(malformed(&|b| b[12] = 0x81), "unknown flags");
    assert_eq!(malformed(&|b| b[13] = 30), "parameters out of range");
    // alpha = NaN
    assert_eq!(
        malformed(&|b| b[32..40].copy_from_slice(&f64::NAN.to_le_bytes())),
        "parameters out of range"
    );
    // A weight of infinity.
    assert_eq!(
        malformed(&|b| b[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&f32::INFINITY.to_le_bytes())),
        "weight not finite"
    );
    // Four billion line items in a small file: refused before allocating.
    assert_eq!(
        malformed(&|b| b[144..148].copy_from_slice(&u32::MAX.to_le_bytes())),
        "too many line items"
    );
    assert_eq!(
        malformed(&|b| b[144..148].copy_from_slice(&900_000u32.to_le_bytes())),
        "line items do not fit"
    );
    // Bits 16 → 17 with the weights' flag: twice the weights the file has.
    assert_eq!(malformed(&|b| b[13] = 17), "a field runs past the end");
}
