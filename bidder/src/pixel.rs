//! The advertiser pixel: `GET /px/{advertiser}?e=view|purchase&p=PRODUCT
//! [&amount=…&currency=…&order_id=…]` on the bid port.
//!
//! The advertiser's pages load it; it records a shopper event for the user
//! of our cookie (set by a user sync) into the same store and journal as
//! uploads. The advertiser's servers may call it too (a purchase confirmed
//! by the back office), naming the user with `uid=`: the id we signed for
//! that advertiser and handed its page at `/px/{advertiser}/sync`.
//! Either way: views feed `views` audiences, purchases end them and are
//! attributed to the last touch. It always answers a 1×1 GIF and never
//! redirects. It records nothing for an advertiser the config does not
//! have, for a page (`Referer`/`Origin`) outside the advertiser's own
//! `domains`, where privacy signals in the query say no, or past
//! [`PER_USER_PER_MINUTE`] events of one user or
//! `--pixel-events-per-ip-per-minute` of one address.

use std::collections::HashMap;
use std::sync::Mutex;

/// Events one user may record a minute: a shopper browsing fast views a
/// page every few seconds; a script hammering the pixel is cut off.
pub const PER_USER_PER_MINUTE: u32 = 30;
/// Keys tracked in one minute's counts; past it new ones wait for the
/// next minute (memory stays bounded under a flood of fake ids).
const MAX_USERS_PER_MINUTE: usize = 1_000_000;
/// The key an address is limited under: an IPv4 address (also when
/// written as IPv6-mapped), or an IPv6 address's /64 (one subscriber's
/// usual allocation: rotating within it buys nothing).
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Longest product id, order id or currency accepted.
const MAX_FIELD: usize = 128;

/// What the pixel did, for metrics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Recorded,
    NoUser,
    NoConsent,
    Flooded,
}

impl Recorded {
    pub fn as_str(self) -> &'static str {
        match self {
            Recorded::Recorded => "recorded",
            Recorded::NoUser => "no_user",
            Recorded::NoConsent => "no_consent",
            Recorded::Flooded => "flooded",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PixelError {
    #[error("no advertiser has this id")]
    UnknownAdvertiser,
    #[error("the page is not on the advertiser's domains")]
    ForeignPage,
    /// Our cookie, and no page (`Origin` or `Referer`) to say where from:
    /// any site could have its visitors' browsers call the pixel with
    /// their referrer withheld and write their events (audience probe).
    #[error("a call by our cookie must come from a page of the advertiser's (Origin or Referer); a server names the user with uid=")]
    NoPage,
    #[error("uid is not an id we signed for this advertiser")]
    ForeignUid,
    #[error("{0}")]
    Invalid(String),
}

/// The event a pixel call describes, in the shopper-event format (so it
/// is read exactly as an upload is), its `user` for the caller to set once
/// it knows who that is: read first, so a malformed call is refused
/// whatever else it says.
pub fn event(query: &str, at: config::Timestamp) -> Result<serde_json::Value, PixelError> {
    let bad = |s: String| PixelError::Invalid(s);
    let mut fields: HashMap<&str, String> = HashMap::new();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        // `uid` is read by the caller; here only checked to come once.
        if !matches!(k, "e" | "p" | "amount" | "currency" | "order_id" | "uid") {
            continue;
        }
        let v = crate::form::decode(v).ok_or_else(|| bad(format!("{k}: not UTF-8")))?;
        if v.len() > MAX_FIELD {
            return Err(bad(format!("{k}: longer than {MAX_FIELD} bytes")));
        }
        if fields.insert(k, v).is_some() {
            return Err(bad(format!("{k} is given twice")));
        }
    }
    let event = match fields.get("e").map(String::as_str) {
        Some(e @ ("view" | "purchase")) => e,
        _ => return Err(bad("e must be view or purchase".into())),
    };
    let product = fields
        .get("p")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("p (the product id) is missing".into()))?;
    let mut line = serde_json::json!({
        "user": "",
        "event": event,
        "product": product,
        "at": at.to_string(),
    });
    if event == "purchase" {
        for k in ["amount", "currency", "order_id"] {
            if let Some(v) = fields.get(k) {
                line[k] = serde_json::Value::String(v.clone());
            }
        }
    }
    Ok(line)
}

/// How long the same purchase by the same user, without an `order_id`, is
/// taken for one: a thank-you page reloaded, or opened again from the
/// browser's history, calls the pixel again.
pub const IMPLIED_ORDER_MS: i64 = 30 * 60 * 1000;

/// The order id of a pixel purchase that names none: the same for the
/// same user, advertiser, product, amount and currency within one
/// [`IMPLIED_ORDER_MS`] step of the clock, so that a reload is a
/// duplicate as a resent order is (reports probe: three calls, three
/// purchases). A MAC under the notice secret, which every replica shares:
/// the same on each, and no way back to the user id for whoever reads the
/// journal, whose users are pseudonyms (review: a fixed-key hash let a
/// reader with a candidate id confirm the purchase). Two such purchases
/// of the same in one step count once; a shop that sends `order_id` is
/// counted by it.
pub fn implied_order(
    event: &serde_json::Value,
    at: config::Timestamp,
    signer: &crate::notice::Signer,
) -> String {
    let field = |k: &str| event[k].as_str().unwrap_or_default();
    // JSON: its fields cannot run into one another.
    let material = serde_json::json!([
        field("user"),
        field("advertiser"),
        field("product"),
        field("amount"),
        field("currency"),
        at.as_millis().div_euclid(IMPLIED_ORDER_MS),
    ])
    .to_string();
    let mac = signer.sign_text(IMPLIED_ORDER, &material);
    format!("pixel-{}", &mac[..16])
}

/// The purpose [`implied_order`] signs for: no other signed text is one.
const IMPLIED_ORDER: &str = "pixel-implied-order";

/// The `p` of a pixel query, decoded (for the advertiser's product check).
pub fn product_of(query: &str) -> Option<String> {
    crate::form::field(query, "p")
}

/// Whether a `Referer` or `Origin` value names a page on one of `domains`
/// (the domain itself or a subdomain of it).
pub fn page_allowed(page: &str, domains: &[String]) -> bool {
    let rest = page
        .strip_prefix("https://")
        .or_else(|| page.strip_prefix("http://"))
        .unwrap_or("");
    if page
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return false;
    }
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return false,
        None => authority,
    }
    .to_ascii_lowercase();
    domains.iter().any(|d| {
        let d = d.to_ascii_lowercase();
        host == d || host.strip_suffix(&d).is_some_and(|s| s.ends_with('.'))
    })
}

/// Events per key (a user, an address) in the current minute.
pub struct Limiter {
    per_minute: u32,
    /// Keys as 64-bit hashes under a per-process key: 12 bytes a key, and
    /// no one can aim collisions at another's count.
    counts: Mutex<(i64, HashMap<u64, u32>)>,
    hasher: std::collections::hash_map::RandomState,
}

impl Limiter {
    /// At most `per_minute` events a key (0: no limit).
    pub fn new(per_minute: u32) -> Limiter {
        Limiter {
            per_minute,
            counts: Mutex::new((0, HashMap::new())),
            hasher: Default::default(),
        }
    }

    /// Counts one event of `key` at `now_ms`; `false` past the limit.
    pub fn allow(&self, key: &str, now_ms: i64) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        use std::hash::BuildHasher as _;
        let key = self.hasher.hash_one(key);
        let mut g = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let minute = now_ms.div_euclid(60_000);
        if g.0 != minute {
            // The old minute's map is dropped after the lock is let go.
            let old = std::mem::replace(&mut *g, (minute, HashMap::new()));
            drop(g);
            drop(old);
            g = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            if g.0 != minute {
                *g = (minute, HashMap::new());
            }
        }
        if !g.1.contains_key(&key) && g.1.len() >= MAX_USERS_PER_MINUTE {
            return false;
        }
        let n = g.1.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n <= self.per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_the_advertiser_only() {
        let d = vec!["shop.example".to_owned()];
        for ok in [
            "https://shop.example/dp/1",
            "https://www.shop.example/",
            "http://SHOP.example:8443",
        ] {
            assert!(page_allowed(ok, &d), "{ok}");
        }
        for bad in [
            "https://evilshop.example/",
            "https://shop.example.evil.example/",
            "https://shop.example@evil.example/",
            "https://evil.example\\.shop.example/",
            "https://shop.example:x/",
            "null",
            "",
        ] {
            assert!(!page_allowed(bad, &d), "{bad}");
        }
    }

    #[test]
    fn queries_read_strictly() {
        let at = config::Timestamp(0);
        let v = event(
            "e=purchase&p=tent-1&amount=10.50&currency=USD&order_id=A%201",
            at,
        )
        .unwrap();
        assert_eq!(
            (v["event"].as_str(), v["order_id"].as_str()),
            (Some("purchase"), Some("A 1"))
        );
        for bad in ["e=click&p=x", "e=view", "e=view&p=x&p=y", "e=view&p=%FF"] {
            assert!(event(bad, at).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_limited_by_subscriber() {
        let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), address_key(mapped));
    }

    #[test]
    fn one_user_is_cut_off_per_minute() {
        let l = Limiter::new(PER_USER_PER_MINUTE);
        for _ in 0..PER_USER_PER_MINUTE {
            assert!(l.allow("u", 0));
        }
        assert!(!l.allow("u", 59_999));
        assert!(l.allow("other", 59_999));
        assert!(l.allow("u", 60_000), "a new minute");
    }
}
