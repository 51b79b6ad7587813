//! Exchange-encrypted winning prices in Google's Authorized Buyers / Open
//! Bidding scheme, as the exchange substitutes them for `${AUCTION_PRICE}`.
//!
//! The text is web-safe base64 (RFC 4648 §5: `-` and `_` instead of `+` and
//! `/`; `=` padding optional) of 28 bytes:
//!
//! | bytes | field |
//! | --- | --- |
//! | 16 | initialization vector (`iv`) |
//! | 8 | encrypted price |
//! | 4 | integrity signature |
//!
//! - `pad = HMAC-SHA1(encryption_key, iv)[..8]`,
//!   `price = encrypted_price XOR pad`, a big-endian `u64` of micros of the
//!   bid currency;
//! - `signature = HMAC-SHA1(integrity_key, price || iv)[..4]`.
//!
//! [`Keys::decrypt`] checks the signature (in constant time) before it
//! looks at the price, and answers only prices that fit an `i64`.
//!
//! **Percent-encoding is the caller's business.** The price arrives in a
//! URL; web-safe base64 needs no escaping, but the optional `=` padding may
//! arrive as `%3D`, and a proxy or macro expansion may have escaped other
//! characters. Percent-decode the query value first and pass the result;
//! this crate takes `%` for what it is, a character outside the alphabet.
//!
//! ```
//! let keys = pricecrypt::Keys::from_base64(
//!     "skU7Ax_NL5pPAFyKdkfZjZz2-VhIN8bjj1rVFOaJ_5o=",
//!     "arO23ykdNqUQ5LEoQ0FVmPkBd7xB5CO89PDZlSjpFxo=",
//! )?;
//! assert_eq!(keys.decrypt("YWJjMTIzZGVmNDU2Z2hpN7fhCuPemCce_6msaw")?, 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use base64::engine::general_purpose::{GeneralPurpose, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::fmt;
use subtle::ConstantTimeEq;

/// Longest price text looked at, in bytes. A valid one is 38 characters (40 with
/// padding); anything much longer is refused before it is decoded.
pub const MAX_TEXT_LEN: usize = 64;

pub const IV_LEN: usize = 16;
const PRICE_LEN: usize = 8;
const SIG_LEN: usize = 4;
/// Decoded length of a valid price: iv, encrypted price, signature.
pub const DECODED_LEN: usize = IV_LEN + PRICE_LEN + SIG_LEN;

/// Google writes prices unpadded but hands keys out padded, so both are
/// read; padding must then be complete. (base64's `Indifferent` mode would
/// also take a short run of `=`, which no encoder writes.) Both engines
/// refuse non-zero trailing bits: a re-spelled price is not read as the
/// same one.
fn web_safe(text: &str) -> &'static GeneralPurpose {
    if text.ends_with('=') {
        &URL_SAFE
    } else {
        &URL_SAFE_NO_PAD
    }
}

/// The two keys an exchange hands out for one buyer account.
///
/// Holds keyed HMAC states, so a decryption does not rehash the keys.
#[derive(Clone)]
pub struct Keys {
    encryption: Hmac<Sha1>,
    integrity: Hmac<Sha1>,
}

/// Which of the two keys an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyName {
    Encryption,
    Integrity,
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyName::Encryption => "encryption key",
            KeyName::Integrity => "integrity key",
        })
    }
}

/// A key that cannot be used. The messages never quote the key, nor the
/// character or position base64 decoding stopped at: keys end up in logs
/// through their errors otherwise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0} is empty")]
    Empty(KeyName),
    #[error("{0} is not web-safe base64 (A-Z a-z 0-9 - _, optional = padding)")]
    Encoding(KeyName),
    #[error("{name} decodes to {len} bytes; the scheme's keys are {KEY_LEN} (a hex key, or one cut short?)")]
    Length { name: KeyName, len: usize },
}

/// The length of each key the exchange hands out. Any other length was
/// taken before: HMAC accepts any key, so every price then failed its
/// integrity check and was charged at the full bid, with nothing said.
pub const KEY_LEN: usize = 32;

/// Why a price text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecryptError {
    #[error("encrypted price is {len} bytes long; at most {MAX_TEXT_LEN} are read")]
    TooLong { len: usize },
    #[error("encrypted price is not web-safe base64: {0}")]
    Encoding(EncodingError),
    #[error("encrypted price decodes to {len} bytes, not {DECODED_LEN}")]
    Length { len: usize },
    /// Wrong keys, or a text that was altered or made up.
    #[error("encrypted price fails its integrity check")]
    Integrity,
    /// Authentic, but more than callers can hold (they keep micros in an
    /// `i64`).
    #[error("decrypted price of {micros} micros is out of range")]
    OutOfRange { micros: u64 },
}

/// Where base64 decoding of a price stopped. Opaque so that the `base64`
/// crate's version is not part of this API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodingError(base64::DecodeError);

/// When a Google initialization vector says its price was encrypted, in
/// milliseconds since the Unix epoch: its first four bytes are the seconds
/// and the next four the microseconds, big-endian (the last eight name the
/// server). Nothing in the encryption binds a price to one auction; this
/// time is what tells a price sent now from one copied from an earlier win.
pub fn iv_time_ms(iv: &[u8; IV_LEN]) -> i64 {
    let secs = u32::from_be_bytes([iv[0], iv[1], iv[2], iv[3]]);
    let micros = u32::from_be_bytes([iv[4], iv[5], iv[6], iv[7]]);
    i64::from(secs) * 1000 + i64::from(micros / 1000)
}

impl Keys {
    /// Keys as the exchange hands them out: web-safe base64, padded or not.
    pub fn from_base64(encryption: &str, integrity: &str) -> Result<Keys, KeyError> {
        Ok(Keys {
            encryption: mac_from_base64(encryption, KeyName::Encryption)?,
            integrity: mac_from_base64(integrity, KeyName::Integrity)?,
        })
    }

    /// The price in micros of the bid currency, at most `i64::MAX`.
    ///
    /// `text` must already be percent-decoded (see the crate documentation).
    pub fn decrypt(&self, text: &str) -> Result<u64, DecryptError> {
        self.decrypt_with_iv(text).map(|(micros, _)| micros)
    }

    /// [`Keys::decrypt`], and the initialization vector the price came
    /// with: Google's holds when it was encrypted ([`iv_time_ms`]).
    pub fn decrypt_with_iv(&self, text: &str) -> Result<(u64, [u8; IV_LEN]), DecryptError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(DecryptError::TooLong { len: text.len() });
        }
        // MAX_TEXT_LEN characters never decode to more than this.
        let mut buf = [0u8; MAX_TEXT_LEN / 4 * 3];
        let len = web_safe(text)
            .decode_slice(text, &mut buf)
            .map_err(|e| match e {
                base64::DecodeSliceError::DecodeError(e) => {
                    DecryptError::Encoding(EncodingError(e))
                }
                base64::DecodeSliceError::OutputSliceTooSmall => {
                    unreachable!("the buffer holds what MAX_TEXT_LEN characters decode to")
                }
            })?;
        let Ok(bytes) = <[u8; DECODED_LEN]>::try_from(&buf[..len]) else {
            return Err(DecryptError::Length { len });
        };
        let (iv, rest) = bytes.split_at(IV_LEN);
        let (enc_price, sig) = rest.split_at(PRICE_LEN);

        let price = xor8(enc_price, &self.pad(iv));
        if !bool::from(self.signature(&price, iv).ct_eq(sig)) {
            return Err(DecryptError::Integrity);
        }
        let micros = u64::from_be_bytes(price);
        if i64::try_from(micros).is_err() {
            return Err(DecryptError::OutOfRange { micros });
        }
        let mut out = [0u8; IV_LEN];
        out.copy_from_slice(iv);
        Ok((micros, out))
    }

    /// What the exchange would send for `micros` with this `iv`: unpadded
    /// web-safe base64. For tests and simulations; an exchange picks a fresh
    /// `iv` per price (Google's holds a timestamp and a server id).
    pub fn encrypt(&self, micros: u64, iv: [u8; IV_LEN]) -> String {
        let price = micros.to_be_bytes();
        let mut bytes = [0u8; DECODED_LEN];
        bytes[..IV_LEN].copy_from_slice(&iv);
        bytes[IV_LEN..IV_LEN + PRICE_LEN].copy_from_slice(&xor8(&price, &self.pad(&iv)));
        bytes[IV_LEN + PRICE_LEN..].copy_from_slice(&self.signature(&price, &iv));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn pad(&self, iv: &[u8]) -> [u8; PRICE_LEN] {
        let mut mac = self.encryption.clone();
        mac.update(iv);
        let mut pad = [0u8; PRICE_LEN];
        pad.copy_from_slice(&mac.finalize().into_bytes()[..PRICE_LEN]);
        pad
    }

    fn signature(&self, price: &[u8; PRICE_LEN], iv: &[u8]) -> [u8; SIG_LEN] {
        let mut mac = self.integrity.clone();
        mac.update(price);
        mac.update(iv);
        let mut sig = [0u8; SIG_LEN];
        sig.copy_from_slice(&mac.finalize().into_bytes()[..SIG_LEN]);
        sig
    }
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The HMAC states are as good as the keys.
        f.write_str("Keys { .. }")
    }
}

fn mac_from_base64(text: &str, name: KeyName) -> Result<Hmac<Sha1>, KeyError> {
    if text.is_empty() {
        return Err(KeyError::Empty(name));
    }
    let key = web_safe(text)
        .decode(text)
        .map_err(|_| KeyError::Encoding(name))?;
    // Padding alone is refused by the decoder already; checked again so
    // that no base64 corner can ever yield an empty HMAC key.
    if key.is_empty() {
        return Err(KeyError::Empty(name));
    }
    if key.len() != KEY_LEN {
        return Err(KeyError::Length {
            name,
            len: key.len(),
        });
    }
    Ok(Hmac::<Sha1>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length")))
}

fn xor8(a: &[u8], b: &[u8; PRICE_LEN]) -> [u8; PRICE_LEN] {
    let mut out = [0u8; PRICE_LEN];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

#[cfg(test)]
mod tests;
