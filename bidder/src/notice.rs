//! Win and billing notice URLs: what the bidder writes into `nurl`/`burl`,
//! and reading them back when the exchange calls.
//!
//! A notice carries everything needed to settle the bid (bid id, line item,
//! order, creative, the bid price in micros, when it was made), so settling
//! needs no lookup of bid-time state. An HMAC-SHA256 over those fields
//! (`s=`) proves the bidder wrote them: an unsigned, tampered or expired
//! notice charges nothing. The clearing price the exchange substitutes comes
//! after the signature and is capped at the signed bid price.

use std::fmt::Write as _;

use config::Micros;

pub const AUCTION_PRICE_MACRO: &str = "${AUCTION_PRICE}";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoticeError {
    #[error("notice is missing {0:?}")]
    Missing(&'static str),
    #[error("notice field {0:?} is not valid")]
    Invalid(&'static str),
    #[error("notice signature is missing or does not match")]
    Signature,
    #[error("notice has expired")]
    Expired,
    /// The charge could not be made durable; the exchange should retry.
    #[error("the charge could not be recorded; retry")]
    Storage,
}

/// Signs and verifies notice URLs with the notice secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

/// 128 bits of HMAC-SHA256: forging one is out of reach, and nurl/burl
/// stay short.
const SIG_BYTES: usize = 16;

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            key: secret.to_vec(),
        }
    }

    fn mac(&self) -> hmac::Hmac<sha2::Sha256> {
        use hmac::KeyInit;
        // HMAC takes keys of any length; this cannot fail.
        hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    fn sign_into(&self, signed: &str, out: &mut String) {
        use hmac::Mac;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        for b in &mac.finalize().into_bytes()[..SIG_BYTES] {
            let _ = write!(out, "{b:02x}");
        }
    }

    fn verify(&self, signed: &str, sig_hex: &str) -> bool {
        use hmac::Mac;
        let Some(sig) = hex(sig_hex) else {
            return false;
        };
        if sig.len() != SIG_BYTES {
            return false;
        }
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        // Constant time: the comparison must not tell a forger how close
        // a guess came.
        mac.verify_truncated_left(&sig).is_ok()
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A notice URL to write. `line_item_and_order` (`&li=…&o=…`) and
/// `creative` come percent-encoded from the snapshot, which encodes them
/// once per config load.
pub struct NoticeUrl<'a> {
    pub base: &'a str,
    pub path: &'a str,
    pub bid_id: &'a str,
    pub imp_id: &'a str,
    pub line_item_and_order: &'a str,
    pub creative: &'a str,
    pub bid_price: Micros,
    pub at_ms: i64,
    pub test: bool,
    pub signer: &'a Signer,
}

impl NoticeUrl<'_> {
    /// The signed query, the same for the win, billing and loss URLs of one
    /// bid: computed (and signed) once per bid.
    pub fn query(&self) -> String {
        let mut s = String::with_capacity(160);
        s.push_str("b=");
        encode_into(self.bid_id, &mut s);
        s.push_str("&i=");
        encode_into(self.imp_id, &mut s);
        s.push_str(self.line_item_and_order);
        s.push_str("&c=");
        s.push_str(self.creative);
        let _ = write!(
            s,
            "&bp={}&ts={}&t={}",
            self.bid_price.as_i64(),
            self.at_ms,
            u8::from(self.test)
        );
        // The signature covers the query up to `&s=` exactly as written:
        // the exchange sends it back unchanged but for the price.
        let signed = s.clone();
        s.push_str("&s=");
        self.signer.sign_into(&signed, &mut s);
        s
    }

    /// `base` + `path` + `?` + `query` + the price macro.
    pub fn write_url(base: &str, path: &str, query: &str, out: &mut String) {
        out.push_str(base.trim_end_matches('/'));
        out.push_str(path);
        out.push('?');
        out.push_str(query);
        out.push_str("&price=");
        out.push_str(AUCTION_PRICE_MACRO);
    }

    pub fn write_into(&self, s: &mut String) {
        NoticeUrl::write_url(self.base, self.path, &self.query(), s);
    }
}

/// A notice as read back from its query string.
#[derive(Debug, PartialEq, Eq)]
pub struct Notice {
    pub bid_id: String,
    pub line_item: String,
    pub order: String,
    pub bid_price: Micros,
    /// The clearing CPM the exchange substituted; `None` when it left the
    /// macro as is, in which case the bid price is charged.
    pub clearing: Option<Micros>,
    pub test: bool,
    /// When the bid was made (milliseconds since the epoch).
    pub at_ms: i64,
}

/// Reads a notice, checking its signature and that it is no older than
/// `ttl_ms` at `now_ms`.
pub fn verify(
    query: &str,
    signer: &Signer,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<Notice, NoticeError> {
    let (signed, rest) = query.split_once("&s=").ok_or(NoticeError::Signature)?;
    let sig = rest.split('&').next().unwrap_or("");
    if !signer.verify(signed, sig) {
        return Err(NoticeError::Signature);
    }
    let n = parse(query)?;
    // A minute of clock skew between replicas is tolerated.
    if n.at_ms > now_ms + 60_000 || now_ms - n.at_ms > ttl_ms {
        return Err(NoticeError::Expired);
    }
    Ok(n)
}

fn parse(query: &str) -> Result<Notice, NoticeError> {
    let mut bid_id = None;
    let mut line_item = None;
    let mut order = None;
    let mut bid_price = None;
    let mut price = None;
    let mut test = false;
    let mut at_ms = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v).ok_or(NoticeError::Invalid("query"))?;
        match k {
            "b" => bid_id = Some(v),
            "li" => line_item = Some(v),
            "o" => order = Some(v),
            "bp" => {
                bid_price = Some(Micros(
                    v.parse::<i64>()
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or(NoticeError::Invalid("bp"))?,
                ))
            }
            "price" => price = Some(v),
            "ts" => at_ms = Some(v.parse::<i64>().map_err(|_| NoticeError::Invalid("ts"))?),
            "t" => test = v == "1",
            _ => {}
        }
    }
    let non_empty = |v: Option<String>, name| {
        v.filter(|s| !s.is_empty())
            .ok_or(NoticeError::Missing(name))
    };
    let clearing = match price.as_deref() {
        None | Some("") | Some(AUCTION_PRICE_MACRO) => None,
        Some(p) => Some(parse_price(p).ok_or(NoticeError::Invalid("price"))?),
    };
    Ok(Notice {
        bid_id: non_empty(bid_id, "b")?,
        line_item: non_empty(line_item, "li")?,
        order: non_empty(order, "o")?,
        bid_price: bid_price.ok_or(NoticeError::Missing("bp"))?,
        clearing,
        test,
        at_ms: at_ms.ok_or(NoticeError::Missing("ts"))?,
    })
}

/// `${AUCTION_PRICE}` as an exact decimal: digits past the sixth decimal are
/// dropped (never rounded up), so a notice cannot charge a micro too much.
pub fn parse_price(s: &str) -> Option<Micros> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros: i64 = 0;
    for (i, b) in frac.bytes().take(6).enumerate() {
        micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
    }
    units
        .checked_mul(1_000_000)?
        .checked_add(micros)
        .map(Micros)
}

/// Percent-encodes an id for a query string.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    encode_into(s, &mut out);
    out
}

fn encode_into(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> String {
        let ids = format!(
            "&li={}&o={}",
            encode("tent remarketing&x"),
            encode("acme-q4")
        );
        let mut s = String::new();
        NoticeUrl {
            base: "http://bidder.example:8080/",
            path: "/notice/win",
            bid_id: "abc1",
            imp_id: "1",
            line_item_and_order: &ids,
            creative: &encode("c-1"),
            bid_price: Micros(6_000_000),
            at_ms: NOW,
            test: false,
            signer: &signer(),
        }
        .write_into(&mut s);
        s
    }

    const NOW: i64 = 1_764_000_000_000;
    const DAY: i64 = 86_400_000;

    fn signer() -> Signer {
        Signer::new(b"test secret")
    }

    #[test]
    fn forged_tampered_and_expired_notices_are_refused() {
        let u = url();
        let q = u.split_once('?').unwrap().1;
        assert!(verify(q, &signer(), NOW, DAY).is_ok());
        assert_eq!(
            verify(q, &Signer::new(b"another secret"), NOW, DAY).unwrap_err(),
            NoticeError::Signature
        );
        let richer = q.replace("bp=6000000", "bp=60000000");
        assert_eq!(
            verify(&richer, &signer(), NOW, DAY).unwrap_err(),
            NoticeError::Signature
        );
        let unsigned = q.split("&s=").next().unwrap();
        assert_eq!(
            verify(unsigned, &signer(), NOW, DAY).unwrap_err(),
            NoticeError::Signature
        );
        let bad_hex = q.replace("&s=", "&s=zz");
        assert_eq!(
            verify(&bad_hex, &signer(), NOW, DAY).unwrap_err(),
            NoticeError::Signature
        );
        assert_eq!(
            verify(q, &signer(), NOW + DAY + 1, DAY).unwrap_err(),
            NoticeError::Expired
        );
        assert_eq!(
            verify(q, &signer(), NOW - 120_000, DAY).unwrap_err(),
            NoticeError::Expired
        );
        // The price is outside the signature: the exchange fills it in.
        let priced = q.replace("${AUCTION_PRICE}", "4.10");
        assert_eq!(
            verify(&priced, &signer(), NOW, DAY).unwrap().clearing,
            Some(Micros(4_100_000))
        );
    }

    #[test]
    fn round_trips_and_keeps_the_macro() {
        let u = url();
        assert!(u.starts_with("http://bidder.example:8080/notice/win?b=abc1&"));
        assert!(u.ends_with("&price=${AUCTION_PRICE}"));
        let q = u.split_once('?').unwrap().1;
        let n = parse(q).unwrap();
        assert_eq!(n.line_item, "tent remarketing&x");
        assert_eq!(n.bid_price, Micros(6_000_000));
        assert_eq!(
            n.clearing, None,
            "unsubstituted macro charges the bid price"
        );
        let q2 = q.replace("${AUCTION_PRICE}", "4.25");
        assert_eq!(parse(&q2).unwrap().clearing, Some(Micros(4_250_000)));
    }

    #[test]
    fn prices_are_exact_and_never_rounded_up() {
        assert_eq!(parse_price("1.5"), Some(Micros(1_500_000)));
        assert_eq!(parse_price("0.000001"), Some(Micros(1)));
        assert_eq!(parse_price("2.0000019"), Some(Micros(2_000_001)));
        assert_eq!(parse_price("7"), Some(Micros(7_000_000)));
        assert_eq!(parse_price(".5"), Some(Micros(500_000)));
        assert_eq!(parse_price("-1"), None);
        assert_eq!(parse_price("1e3"), None);
        assert_eq!(parse_price(""), None);
    }

    #[test]
    fn refuses_incomplete_notices() {
        assert_eq!(parse("b=1&li=x&o=y"), Err(NoticeError::Missing("bp")));
        assert_eq!(parse("li=x&o=y&bp=5"), Err(NoticeError::Missing("b")));
        assert_eq!(
            parse("b=1&li=x&o=y&bp=abc"),
            Err(NoticeError::Invalid("bp"))
        );
        assert_eq!(
            parse("b=1&li=x&o=y&bp=5&price=lots"),
            Err(NoticeError::Invalid("price"))
        );
    }
}
