use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as WEB_SAFE;
use proptest::prelude::*;

// Google's published example keys and prices (Authorized Buyers, "Decrypt
// price confirmations").
const E_KEY: &str = "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=";
const I_KEY: &str = "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=";
const VECTORS: [(&str, u64); 3] = [
    ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw", 100),
    ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCAWJRxOgA", 1900),
    ("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemC32prpWWw", 2700),
];

fn keys() -> Keys {
    Keys::from_base64(E_KEY, I_KEY).expect("Google's example keys")
}

fn decode(text: &str) -> [u8; DECODED_LEN] {
    WEB_SAFE
        .decode(text)
        .expect("base64")
        .try_into()
        .expect("28 bytes")
}

fn is_encoding(r: Result<u64, DecryptError>) -> bool {
    matches!(r, Err(DecryptError::Encoding(_)))
}

#[test]
fn googles_vectors_decrypt_to_their_prices() {
    let keys = keys();
    for (text, micros) in VECTORS {
        assert_eq!(keys.decrypt(text), Ok(micros), "{text}");
    }
}

#[test]
fn googles_vectors_decrypt_with_padding_too() {
    let keys = keys();
    for (text, micros) in VECTORS {
        assert_eq!(keys.decrypt(&format!("{text}==")), Ok(micros), "{text}==");
    }
}

#[test]
fn encrypt_writes_googles_vectors_byte_for_byte() {
    let keys = keys();
    for (text, micros) in VECTORS {
        let iv: [u8; 16] = decode(text)[..16].try_into().expect("16 bytes");
        assert_eq!(keys.encrypt(micros, iv), text);
    }
}

#[test]
fn every_single_byte_change_fails_the_integrity_check() {
    let keys = keys();
    for (text, _) in VECTORS {
        let bytes = decode(text);
        for i in 0..DECODED_LEN {
            for flip in 1..=u8::MAX {
                let mut changed = bytes;
                changed[i] ^= flip;
                let got = keys.decrypt(&WEB_SAFE.encode(changed));
                assert_eq!(
                    got,
                    Err(DecryptError::Integrity),
                    "{text}: byte {i} ^ {flip:#04x}"
                );
            }
        }
    }
}

#[test]
fn a_wrong_key_fails_the_integrity_check() {
    let swapped = Keys::from_base64(I_KEY, E_KEY).expect("keys");
    let other_integrity = Keys::from_base64(E_KEY, E_KEY).expect("keys");
    let other_encryption = Keys::from_base64(I_KEY, I_KEY).expect("keys");
    for (text, _) in VECTORS {
        for keys in [&swapped, &other_integrity, &other_encryption] {
            assert_eq!(keys.decrypt(text), Err(DecryptError::Integrity), "{text}");
        }
    }
}

#[test]
fn wrong_lengths_are_refused_before_the_signature_is_checked() {
    let keys = keys();
    let bytes = decode(VECTORS[0].0);
    assert_eq!(
        keys.decrypt(&WEB_SAFE.encode(&bytes[..27])),
        Err(DecryptError::Length { len: 27 })
    );
    let mut longer = bytes.to_vec();
    longer.push(0);
    assert_eq!(
        keys.decrypt(&WEB_SAFE.encode(&longer)),
        Err(DecryptError::Length { len: 29 })
    );
    // 48 bytes: the most MAX_TEXT_LEN characters hold.
    assert_eq!(
        keys.decrypt(&WEB_SAFE.encode([7u8; 48])),
        Err(DecryptError::Length { len: 48 })
    );
    assert_eq!(keys.decrypt(""), Err(DecryptError::Length { len: 0 }));
}

#[test]
fn long_texts_are_refused_before_decoding() {
    let keys = keys();
    let text = "A".repeat(MAX_TEXT_LEN + 1);
    assert_eq!(
        keys.decrypt(&text),
        Err(DecryptError::TooLong {
            len: MAX_TEXT_LEN + 1
        })
    );
    // Measured in bytes, so a few wide characters cannot slip past.
    assert_eq!(
        keys.decrypt(&"é".repeat(33)),
        Err(DecryptError::TooLong { len: 66 })
    );
}

#[test]
fn characters_outside_the_web_safe_alphabet_are_refused() {
    let keys = keys();
    let text = VECTORS[0].0;
    assert!(text.contains('_'));
    // The standard alphabet's spelling of the same bytes.
    assert!(is_encoding(keys.decrypt(&text.replace('_', "/"))));
    // Bytes fb ef be are "----" in web-safe base64.
    let mut iv = [0u8; 16];
    iv[..3].copy_from_slice(&[0xfb, 0xef, 0xbe]);
    let with_dash = keys.encrypt(1, iv);
    assert!(with_dash.contains('-'));
    assert_eq!(keys.decrypt(&with_dash), Ok(1));
    assert!(is_encoding(keys.decrypt(&with_dash.replace('-', "+"))));
    for bad in [
        " YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw",
        "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw\n",
        "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce%5F6msaw",
        "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw%3D%3D",
        "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce.6msaw",
        "YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCcé6msaw",
    ] {
        assert!(is_encoding(keys.decrypt(bad)), "{bad:?}");
    }
}

#[test]
fn only_canonical_padding_is_accepted() {
    let keys = keys();
    let text = VECTORS[0].0;
    for bad in ["=", "===", "=A", "A=="] {
        let t = format!("{text}{bad}");
        assert!(is_encoding(keys.decrypt(&t)), "{t}");
    }
    assert!(is_encoding(keys.decrypt(&format!("={text}"))));
    assert!(is_encoding(keys.decrypt("==")));
}

#[test]
fn non_zero_trailing_bits_are_refused() {
    // "aw" and "ax" differ only in bits past the last byte.
    let keys = keys();
    let text = VECTORS[0].0;
    let alt = format!("{}x", &text[..text.len() - 1]);
    assert!(is_encoding(keys.decrypt(&alt)), "{alt}");
}

#[test]
fn prices_beyond_i64_are_refused_after_the_signature_check() {
    let keys = keys();
    let iv = [9u8; 16];
    let max = i64::MAX.unsigned_abs();
    assert_eq!(keys.decrypt(&keys.encrypt(max, iv)), Ok(max));
    for micros in [max + 1, u64::MAX] {
        assert_eq!(
            keys.decrypt(&keys.encrypt(micros, iv)),
            Err(DecryptError::OutOfRange { micros })
        );
    }
    // A forged out-of-range price is an integrity failure, not a range one:
    // the range check must not answer for unauthenticated prices.
    let mut forged = decode(&keys.encrypt(max + 1, iv));
    forged[DECODED_LEN - 1] ^= 1;
    assert_eq!(
        keys.decrypt(&WEB_SAFE.encode(forged)),
        Err(DecryptError::Integrity)
    );
}

#[test]
fn keys_are_refused_without_quoting_them() {
    assert_eq!(
        Keys::from_base64("", I_KEY).map(|_| ()),
        Err(KeyError::Empty(KeyName::Encryption))
    );
    assert_eq!(
        Keys::from_base64(E_KEY, "").map(|_| ()),
        Err(KeyError::Empty(KeyName::Integrity))
    );
    // The standard alphabet, a stray space, a quote left from YAML.
    for bad in [
        "skU7Ax/NL5pPAFyKdkfZjZz2+VhIN8bjj1rVFOaJ/5o=",
        "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o= ",
        "'skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o='",
        "=",
    ] {
        let err = Keys::from_base64(E_KEY, bad).map(|_| ()).unwrap_err();
        assert_eq!(err, KeyError::Encoding(KeyName::Integrity), "{bad:?}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("skU7"), "{shown}");
        assert!(!shown.contains("'"), "{shown}");
        assert!(!shown.contains("47"), "the byte value of '/': {shown}");
    }
    assert_eq!(
        KeyError::Encoding(KeyName::Encryption).to_string(),
        "encryption key is not web-safe base64 (A-Z a-z 0-9 - _, optional = padding)"
    );
}

/// A key of another length than the scheme's 32 bytes is refused: taken,
/// every price failed its integrity check and was charged at the full bid
/// (operator probe: `AAAA` keys loaded as valid). A key written in hex is
/// base64 text too, of 48 bytes.
#[test]
fn keys_of_another_length_are_refused() {
    let hex = "b2453b03138f2f9a4f005c8a7647d98d9cf6f9584837c6e38f5ad514e689ff9a";
    for (bad, len) in [("AAAA", 3), (hex, 48), (&E_KEY[..40], 30)] {
        assert_eq!(
            Keys::from_base64(E_KEY, bad).map(|_| ()),
            Err(KeyError::Length {
                name: KeyName::Integrity,
                len
            }),
            "{bad}"
        );
    }
    assert_eq!(
        KeyError::Length {
            name: KeyName::Encryption,
            len: 48
        }
        .to_string(),
        "encryption key decodes to 48 bytes; the scheme's keys are 32 (a hex key, or one cut short?)"
    );
}

#[test]
fn keys_are_accepted_with_or_without_padding() {
    let unpadded = Keys::from_base64(E_KEY.trim_end_matches('='), I_KEY.trim_end_matches('='))
        .expect("unpadded keys");
    assert_eq!(unpadded.decrypt(VECTORS[0].0), Ok(100));
}

#[test]
fn debug_does_not_show_the_keys() {
    let shown = format!("{:?} {:#?}", keys(), keys());
    assert_eq!(shown, "Keys { .. } Keys { .. }");
}

proptest! {
    #[test]
    fn encrypt_then_decrypt_gives_the_price_back(
        micros in 0..=i64::MAX.unsigned_abs(),
        iv in any::<[u8; 16]>(),
        e_key in any::<[u8; KEY_LEN]>(),
        i_key in any::<[u8; KEY_LEN]>(),
    ) {
        let keys = Keys::from_base64(&WEB_SAFE.encode(e_key), &WEB_SAFE.encode(i_key))
            .expect("keys");
        let text = keys.encrypt(micros, iv);
        prop_assert_eq!(text.len(), 38);
        prop_assert_eq!(keys.decrypt(&text), Ok(micros));
    }

    #[test]
    fn a_changed_byte_never_decrypts(
        micros in any::<u64>(),
        iv in any::<[u8; 16]>(),
        at in 0..DECODED_LEN,
        flip in 1..=u8::MAX,
    ) {
        let keys = keys();
        let mut bytes = decode(&keys.encrypt(micros, iv));
        bytes[at] ^= flip;
        // A 4-byte tag: each case has 2^-32 odds of a false accept, so a
        // run of 256 fails spuriously about once in 17 million.
        prop_assert_eq!(keys.decrypt(&WEB_SAFE.encode(bytes)), Err(DecryptError::Integrity));
    }
}
