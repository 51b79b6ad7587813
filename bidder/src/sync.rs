//! User sync: `GET /sync/{exchange}` on the bid port.
//!
//! A browser (an exchange's sync pixel, or a page) calls it; the bidder
//! gives it a user id of its own in a first-party cookie — reusing the one
//! the browser already has — and sends it on (302) to the exchange's
//! `sync_url` with the id in place of its `${UID}`/`$UID` macro, so the
//! exchange stores it and sends it back as `user.buyeruid`. The shopper
//! events our pixel records are keyed by that same id, which is what makes
//! a `views` audience match in production.
//!
//! Where privacy signals forbid keeping data about the user (GDPR without
//! a consent string granting it to us, a US Privacy or GPP opt-out), no
//! cookie is set (one already there is cleared) and the exchange gets no
//! id. A `redir` parameter may name where to go instead, but only on a
//! host the profile lists: the endpoint is never an open redirect.

use crate::notice::Signer;
use crate::snapshot::Profile;

/// The cookie's name.
pub const COOKIE: &str = "bidder_uid";
/// A year: the longest a cookie of ours lives.
pub const MAX_AGE_SECS: u32 = 365 * 24 * 3600;

/// What a sync answers: 302 to `location`, with `set_cookie` if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Synced {
    pub location: String,
    pub set_cookie: Option<String>,
    /// The id given (none where privacy forbids one).
    pub uid: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SyncError {
    #[error("this exchange has no sync_url in its profile")]
    NoSyncUrl,
    #[error("redir: {0}")]
    Redirect(String),
    #[error("{0} is given twice")]
    Repeated(&'static str),
}

/// What the cookie holds: the id and our signature of it. The id alone
/// is not secret (exchanges get it, and send it back in every bid
/// request), so a pixel call must not be able to name any user it likes:
/// only a browser we gave the cookie can speak for its id, and no one can
/// make up ids without asking us for each.
pub(crate) const COOKIE_SIGNATURE: &str = "user-cookie";

/// The cookie's value for `uid`.
pub fn cookie_value(uid: &str, signer: &Signer) -> String {
    format!("{uid}.{}", signer.sign_text(COOKIE_SIGNATURE, uid))
}

/// The bidder user id in a `Cookie` header, when its value is one we
/// wrote (32 lower-case hex digits and our signature of them); anything
/// else is ignored.
pub fn cookie_uid(header: Option<&[u8]>, signer: &Signer) -> Option<String> {
    let text = std::str::from_utf8(header?).ok()?;
    text.split(';')
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter_map(|v| v.split_once('.'))
        .find(|(uid, sig)| {
            uid.len() == 32
                && uid
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                && signer.verify_named(COOKIE_SIGNATURE, uid, sig)
        })
        .map(|(uid, _)| uid.to_owned())
}

/// Whether a `Cookie` header carries our cookie at all (signed or not).
fn has_cookie(header: Option<&[u8]>) -> bool {
    header
        .and_then(|h| std::str::from_utf8(h).ok())
        .is_some_and(|t| {
            t.split(';')
                .any(|c| c.trim().starts_with(&format!("{COOKIE}=")))
        })
}

/// A new user id: 128 random bits, so no one can guess another's.
pub fn new_uid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The query's parameters this endpoint reads, each at most once.
#[derive(Default)]
struct Params {
    gdpr: Option<String>,
    consent: Option<String>,
    us_privacy: Option<String>,
    gpp: Option<String>,
    gpp_sid: Option<String>,
    redir: Option<String>,
    /// Global Privacy Control passed on in the query (`gpc=1`, by an
    /// advertiser's server calling for its shopper), or the browser's own
    /// (`Sec-GPC: 1`): an opt-out of sale and sharing, which California's
    /// law makes binding. `1` opts out, as the header's one value does;
    /// anything else (an exchange's unfilled macro) says nothing.
    gpc: Option<String>,
    browser_gpc: bool,
}

/// The parameters of `query`; `gpc`: the browser sent Global Privacy
/// Control.
fn params(query: &str, gpc: bool) -> Result<Params, SyncError> {
    let mut p = Params {
        browser_gpc: gpc,
        ..Params::default()
    };
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (slot, name) = match k {
            "gdpr" => (&mut p.gdpr, "gdpr"),
            "gdpr_consent" => (&mut p.consent, "gdpr_consent"),
            "us_privacy" => (&mut p.us_privacy, "us_privacy"),
            "gpp" => (&mut p.gpp, "gpp"),
            "gpp_sid" => (&mut p.gpp_sid, "gpp_sid"),
            "redir" => (&mut p.redir, "redir"),
            "gpc" => (&mut p.gpc, "gpc"),
            // Exchanges add their own; they decide nothing here.
            _ => continue,
        };
        // Not UTF-8: read as empty, which grants nothing and goes nowhere.
        let v = crate::form::decode(v).unwrap_or_default();
        if slot.replace(v).is_some() {
            return Err(SyncError::Repeated(name));
        }
    }
    Ok(p)
}

/// Where `redir` may send the browser: an https URL on one of `hosts`.
fn allowed_redirect(url: &str, hosts: &[String]) -> Result<(), SyncError> {
    if hosts.is_empty() {
        return Err(SyncError::Redirect(
            "this exchange's profile allows none (sync_redirect_hosts)".into(),
        ));
    }
    let host = redirect_host(url)?;
    if hosts.contains(&host) {
        Ok(())
    } else {
        Err(SyncError::Redirect(
            "its host is not one of this exchange's sync_redirect_hosts".into(),
        ))
    }
}

/// The host of an https URL fit to redirect a browser to, in lower case.
fn redirect_host(url: &str) -> Result<String, SyncError> {
    let bad = |why: &str| Err(SyncError::Redirect(why.to_owned()));
    let Some(rest) = url
        .get(..8)
        .filter(|s| s.eq_ignore_ascii_case("https://"))
        .map(|_| &url[8..])
    else {
        return bad("must be an https URL");
    };
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return bad("contains a space, a control character or a backslash");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("must not carry a user name");
    }
    let host = authority
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(authority, |(h, _)| h)
        .to_ascii_lowercase();
    if host.is_empty() {
        return bad("has no host");
    }
    // A name of letters, digits, dots and hyphens, or an IPv6 literal: a
    // percent escape (`evil.example%2F.shop.example`) is no host a
    // browser goes to, and passed the domain check as a subdomain
    // (attack probe).
    let name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let literal = host.starts_with('[')
        && host.ends_with(']')
        && host[1..host.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    if !name && !literal {
        return bad("its host is not a host name");
    }
    Ok(host)
}

/// Puts `uid` (empty for none) in place of the user id macro.
fn with_uid(template: &str, uid: &str) -> String {
    template.replace("${UID}", uid).replace("$UID", uid)
}

/// Whether the privacy signals of a query string (`gdpr`, `gdpr_consent`,
/// `us_privacy`, `gpp`, `gpp_sid`) and the browser's Global Privacy
/// Control (`gpc`, from its header) allow keeping data about the user. A
/// signal given twice, or a `gdpr` that is not a number, does not.
pub fn query_allows(query: &str, gpc: bool, privacy: &privacy::PrivacySettings) -> bool {
    let Ok(p) = params(query, gpc) else {
        return false;
    };
    allows(&p, privacy)
}

/// Whether a request's `Sec-GPC` headers say the browser's user opted
/// out: the header's one value, `1`, in any of them, also where a proxy
/// joined repeated ones with commas (outsider probe: `1, 1`, or `0` then
/// `1`, read as no signal).
pub fn gpc_header<'h>(values: impl IntoIterator<Item = &'h [u8]>) -> bool {
    values
        .into_iter()
        .flat_map(|v| v.split(|&b| b == b','))
        .any(|v| v.trim_ascii() == b"1")
}

fn allows(p: &Params, privacy: &privacy::PrivacySettings) -> bool {
    if p.browser_gpc || p.gpc.as_deref().is_some_and(|v| v.trim() == "1") {
        return false;
    }
    // Every section id must read, and no more than a string could hold: one
    // we cannot read might be the one that applies.
    let mut gpp_sid: Vec<i32> = Vec::new();
    for sid in p.gpp_sid.as_deref().unwrap_or_default().split(',') {
        let sid = sid.trim();
        if sid.is_empty() {
            continue;
        }
        match sid.parse() {
            Ok(n) if gpp_sid.len() < 64 => gpp_sid.push(n),
            _ => return false,
        }
    }
    // Empty is not set, as `"gdpr": ""` is in a bid request: an exchange
    // that does not know leaves its macro empty. Unless a consent string
    // came with it: it was made for someone GDPR covers.
    let consent_given = p.consent.as_deref().is_some_and(|c| !c.trim().is_empty());
    let gdpr = match p.gdpr.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        None if consent_given && p.gdpr.is_some() => Some(1),
        None => None,
        Some(g) => match g.parse::<i32>() {
            Ok(g) => Some(g),
            // Present but unreadable is taken as applying.
            Err(_) => return false,
        },
    };
    let signals = privacy::Signals {
        gdpr,
        consents: [p.consent.as_deref(), None],
        us_privacy: p.us_privacy.as_deref(),
        gpp: p.gpp.as_deref(),
        gpp_sid: &gpp_sid,
        ..Default::default()
    };
    privacy::signals_allow(&signals, privacy).is_ok()
}

/// Answers a sync call of `profile`'s exchange.
pub fn sync(
    profile: &Profile,
    query: &str,
    gpc: bool,
    cookie: Option<&[u8]>,
    privacy: &privacy::PrivacySettings,
    signer: &Signer,
) -> Result<Synced, SyncError> {
    let p = params(query, gpc)?;
    let target = match &p.redir {
        Some(r) => {
            allowed_redirect(r, &profile.sync_redirect_hosts)?;
            r.clone()
        }
        None => profile.sync_url.clone().ok_or(SyncError::NoSyncUrl)?,
    };
    Ok(answer(&p, &target, cookie, privacy, signer, |uid| {
        uid.to_owned()
    }))
}

/// A sync's answer to `target`: with consent, our cookie (the one the
/// browser has, or a new id) and `target` with the id `shown(uid)` gives
/// in place of the macro; without, no cookie (one set before the user said
/// no goes now) and an empty macro.
fn answer(
    p: &Params,
    target: &str,
    cookie: Option<&[u8]>,
    privacy: &privacy::PrivacySettings,
    signer: &Signer,
    shown: impl FnOnce(&str) -> String,
) -> Synced {
    if !allows(p, privacy) {
        return Synced {
            location: with_uid(target, ""),
            set_cookie: has_cookie(cookie)
                .then(|| format!("{COOKIE}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=None")),
            uid: None,
        };
    }
    let uid = cookie_uid(cookie, signer).unwrap_or_else(new_uid);
    Synced {
        location: with_uid(target, &shown(&uid)),
        // Set again each time: the year starts over from the last visit.
        set_cookie: Some(format!(
            "{COOKIE}={}; Max-Age={MAX_AGE_SECS}; Path=/; Secure; HttpOnly; SameSite=None",
            cookie_value(&uid, signer)
        )),
        uid: Some(uid),
    }
}

/// How long an id handed to an advertiser speaks for its user: past it,
/// the advertiser's page must sync again (and consent is asked again).
pub const ADVERTISER_UID_DAYS: i64 = 90;

/// The pad our user id is masked with for one advertiser and nonce: 16
/// bytes of our keyed hash, so the value reveals nothing of the id, and
/// two advertisers (or an advertiser and an exchange, which sees the id
/// itself) cannot join their data on it.
fn advertiser_pad(advertiser: &str, nonce: &str, signer: &Signer) -> Option<[u8; 16]> {
    let hex = signer.sign_text(&format!("advertiser-uid-pad:{advertiser}"), nonce);
    sixteen_bytes(hex.get(..32)?)
}

/// Exactly 32 hex digits as the 16 bytes they spell. The length is checked
/// here: the hex decoder (const-hex) would also take a `0x` before them.
fn sixteen_bytes(digits: &str) -> Option<[u8; 16]> {
    if digits.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(digits, &mut bytes).ok()?;
    Some(bytes)
}

pub(crate) fn advertiser_signature(advertiser: &str) -> String {
    format!("advertiser-uid:{advertiser}")
}

/// Our user id as one advertiser's server may send it back to the pixel
/// (`uid=`): `v1.NONCE.EXPIRY.MASKED.SIG`, the id masked for that
/// advertiser, valid until `EXPIRY` (seconds since the epoch), signed for
/// that advertiser.
pub fn advertiser_uid_value(
    uid: &str,
    advertiser: &str,
    signer: &Signer,
    now: config::Timestamp,
) -> Option<String> {
    let mut id = sixteen_bytes(uid)?;
    let nonce = format!("{:016x}", rand::random::<u64>());
    let pad = advertiser_pad(advertiser, &nonce, signer)?;
    for (b, p) in id.iter_mut().zip(pad) {
        *b ^= p;
    }
    let expiry = now.as_millis() / 1000 + ADVERTISER_UID_DAYS * 24 * 3600;
    let body = format!("v1.{nonce}.{expiry}.{}", hex::encode(id));
    let sig = signer.sign_text(&advertiser_signature(advertiser), &body);
    Some(format!("{body}.{sig}"))
}

/// The user id of a pixel's `uid=` when we signed it for `advertiser` and
/// it has not expired at `now`.
pub fn advertiser_uid(
    value: &str,
    advertiser: &str,
    signer: &Signer,
    now: config::Timestamp,
) -> Option<String> {
    let (body, sig) = value.rsplit_once('.')?;
    let mut parts = body.split('.');
    let (Some("v1"), Some(nonce), Some(expiry), Some(masked), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if nonce.len() != 16 || masked.len() != 32 {
        return None;
    }
    if !signer.verify_named(&advertiser_signature(advertiser), body, sig) {
        return None;
    }
    if expiry.parse::<i64>().ok()? <= now.as_millis() / 1000 {
        return None;
    }
    let mut id = sixteen_bytes(masked)?;
    let pad = advertiser_pad(advertiser, nonce, signer)?;
    for (b, p) in id.iter_mut().zip(pad) {
        *b ^= p;
    }
    Some(hex::encode(id))
}

/// `GET /px/{advertiser}/sync?redir=…`: the advertiser's own sync. Like an
/// exchange's, it gives the browser our cookie (reused if it has one);
/// then it sends it to `redir`, an https page on the advertiser's own
/// `domains`, with `${UID}`/`$UID` replaced by the id signed for that
/// advertiser, which its server may send back with server-to-server pixel
/// calls. No consent: no cookie, and the macro stays empty.
#[allow(clippy::too_many_arguments)]
pub fn advertiser_sync(
    advertiser: &str,
    domains: &[String],
    query: &str,
    gpc: bool,
    cookie: Option<&[u8]>,
    privacy: &privacy::PrivacySettings,
    signer: &Signer,
    now: config::Timestamp,
) -> Result<Synced, SyncError> {
    let p = params(query, gpc)?;
    let Some(target) = p.redir.clone() else {
        return Err(SyncError::Redirect(
            "is missing: name the advertiser's page to return to".into(),
        ));
    };
    redirect_host(&target)?;
    if !crate::pixel::page_allowed(&target, domains) {
        return Err(SyncError::Redirect(
            "its host is not on the advertiser's domains".into(),
        ));
    }
    Ok(answer(&p, &target, cookie, privacy, signer, |uid| {
        advertiser_uid_value(uid, advertiser, signer, now).unwrap_or_default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_only_to_listed_https_hosts() {
        let hosts = vec!["sync.x.example".to_owned()];
        assert!(allowed_redirect("https://sync.x.example/u?id=$UID", &hosts).is_ok());
        assert!(allowed_redirect("HTTPS://SYNC.X.EXAMPLE:443/u", &hosts).is_ok());
        for bad in [
            "http://sync.x.example/u",
            "https://evil.example/u",
            "https://sync.x.example.evil.example/u",
            "https://sync.x.example@evil.example/u",
            "https://evil.example\\@sync.x.example/",
            "//sync.x.example/u",
            "https://sync.x.example /u",
        ] {
            assert!(allowed_redirect(bad, &hosts).is_err(), "{bad}");
        }
        assert!(allowed_redirect("https://sync.x.example/", &[]).is_err());
        // A host with escapes is no host: refused before any domain check
        // (attack probe: a subdomain by its suffix).
        for bad in [
            "https://evil.example%2F.sync.x.example/",
            "https://evil.example%23.sync.x.example/",
            "https://sync_x.example/",
            "https://[::1/",
        ] {
            assert!(redirect_host(bad).is_err(), "{bad}");
        }
        assert_eq!(
            redirect_host("https://[2001:db8::1]:8443/a")
                .ok()
                .as_deref(),
            Some("[2001:db8::1]")
        );
        assert_eq!(
            redirect_host("https://Shop-1.Example/a").ok().as_deref(),
            Some("shop-1.example")
        );
    }

    #[test]
    fn advertiser_ids_speak_for_their_advertiser_only_and_expire() {
        let signer = Signer::new(b"test secret");
        let id = "0123456789abcdef0123456789abcdef";
        let now = config::Timestamp(1_800_000_000_000);
        let v = advertiser_uid_value(id, "shop", &signer, now).unwrap();
        assert_eq!(
            advertiser_uid(&v, "shop", &signer, now).as_deref(),
            Some(id)
        );
        // The id itself is not in it, and each value is new.
        assert!(!v.contains(id), "{v}");
        let w = advertiser_uid_value(id, "shop", &signer, now).unwrap();
        assert_ne!(v, w);
        assert_eq!(
            advertiser_uid(&w, "shop", &signer, now).as_deref(),
            Some(id)
        );
        assert_eq!(advertiser_uid(&v, "other", &signer, now), None);
        let later = config::Timestamp(now.0 + ADVERTISER_UID_DAYS * 24 * 3_600_000);
        assert_eq!(advertiser_uid(&v, "shop", &signer, later), None, "expired");
        // Nor is the cookie's value an advertiser id, or the other way.
        assert_eq!(
            advertiser_uid(&cookie_value(id, &signer), "shop", &signer, now),
            None
        );
        let h = format!("{COOKIE}={v}");
        assert_eq!(cookie_uid(Some(h.as_bytes()), &signer), None);
        assert_eq!(advertiser_uid(id, "shop", &signer, now), None);
        // Only an id of exactly 32 hex digits is masked: a longer one is
        // refused, not cut short, and a `0x` before it is not skipped.
        for bad in [
            &format!("{id}00")[..],
            &format!("0x{id}")[..],
            &id[..30],
            "0123456789abcdeg0123456789abcdef",
        ] {
            assert_eq!(
                advertiser_uid_value(bad, "shop", &signer, now),
                None,
                "{bad}"
            );
        }
        // Any change to any part is refused.
        for i in 0..v.len() {
            let mut b = v.clone().into_bytes();
            b[i] = if b[i] == b'0' { b'1' } else { b'0' };
            let changed = String::from_utf8(b).unwrap();
            if changed != v {
                assert_eq!(
                    advertiser_uid(&changed, "shop", &signer, now),
                    None,
                    "{changed}"
                );
            }
        }
    }

    #[test]
    fn only_cookie_values_we_signed_are_read() {
        let signer = Signer::new(b"test secret");
        let id = "0123456789abcdef0123456789abcdef";
        let h = format!("a=1; {COOKIE}={}; b=2", cookie_value(id, &signer));
        assert_eq!(cookie_uid(Some(h.as_bytes()), &signer).as_deref(), Some(id));
        let other = Signer::new(b"another secret");
        assert_eq!(cookie_uid(Some(h.as_bytes()), &other), None);
        for bad in [
            format!("{COOKIE}={id}"),
            format!("{COOKIE}={id}.{}", "0".repeat(32)),
            format!("{COOKIE}=../../x"),
            format!("{COOKIE}={}", cookie_value("0123", &signer)),
        ] {
            assert_eq!(cookie_uid(Some(bad.as_bytes()), &signer), None, "{bad}");
        }
    }

    /// `1` in any `Sec-GPC` header, or in a list a proxy joined, opts
    /// out; nothing else does.
    #[test]
    fn global_privacy_control_in_any_header_form() {
        for (values, out) in [
            (vec![&b"1"[..]], true),
            (vec![b" 1\t"], true),
            (vec![b"1, 1"], true),
            (vec![b"0", b"1"], true),
            (vec![b"0"], false),
            (vec![b"?1"], false),
            (vec![], false),
        ] {
            assert_eq!(gpc_header(values.clone()), out, "{values:?}");
        }
    }

    #[test]
    fn unreadable_gpp_section_ids_allow_nothing() {
        let p = privacy::PrivacySettings::default();
        assert!(query_allows("gpp_sid=-1,0", false, &p));
        assert!(!query_allows("gpp_sid=7,x", false, &p));
        let many = vec!["0"; 65].join(",");
        assert!(!query_allows(&format!("gpp_sid={many}"), false, &p));
        // US sections listed and no string: a string lost.
        assert!(!query_allows("gpp_sid=7,8", false, &p));
        assert!(!query_allows("gpp=&gpp_sid=7", false, &p));
    }

    /// An empty `gdpr=` (a macro the exchange could not fill) is not set,
    /// as in a bid request; one that reads as no integer applies GDPR.
    #[test]
    fn an_empty_gdpr_is_not_set() {
        let p = privacy::PrivacySettings::default();
        assert!(query_allows("gdpr=", false, &p));
        assert!(query_allows("gdpr=&gdpr_consent=", false, &p));
        assert!(query_allows("gdpr=%20", false, &p));
        assert!(!query_allows("gdpr=yes", false, &p));
        assert!(!query_allows("gdpr=1&gdpr_consent=", false, &p));
        // A consent string beside it was made for someone GDPR covers.
        assert!(!query_allows(
            "gdpr=&gdpr_consent=CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
            false,
            &p
        ));
    }

    #[test]
    fn the_macro_takes_the_id_or_nothing() {
        assert_eq!(
            with_uid("https://x/s?u=${UID}&v=$UID", "ab"),
            "https://x/s?u=ab&v=ab"
        );
        assert_eq!(with_uid("https://x/s?u=${UID}", ""), "https://x/s?u=");
    }
}
