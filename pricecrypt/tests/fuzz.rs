//! The decryptor on hostile text: never a panic, and only well-formed texts
//! of the right length get as far as the signature. Long runs: `scripts/fuzz.sh`.

#[path = "../../scripts/fuzz_support.rs"]
mod fuzz_support;
use fuzz_support::{config, remember};

use pricecrypt::{DecryptError, Keys, DECODED_LEN};
use proptest::prelude::*;

fn keys() -> Keys {
    // Google's published test keys.
    Keys::from_base64(
        "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=",
        "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=",
    )
    .expect("test keys")
}

mod properties {
    use super::*;

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            remember("arbitrary_text_never_panics", &text);
            let _ = keys().decrypt(&text);
        }

        #[test]
        fn near_base64_text_never_panics(text in "[A-Za-z0-9_=+/%-]{0,70}") {
            remember("near_base64_text_never_panics", &text);
            match keys().decrypt(&text) {
                Ok(_) | Err(DecryptError::Integrity) => {
                    prop_assert!(text.len() == 38 || text.len() == 40, "{}", text);
                }
                Err(DecryptError::Length { len }) => prop_assert_ne!(len, DECODED_LEN),
                Err(_) => {}
            }
        }

        #[test]
        fn arbitrary_keys_never_panic(e in any::<String>(), i in any::<String>()) {
            remember("arbitrary_keys_never_panic", format!("{e}\n{i}"));
            if let Ok(k) = Keys::from_base64(&e, &i) {
                let _ = k.decrypt("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw");
            }
        }
    }
}
