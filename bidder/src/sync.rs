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

/// The bidder user id in a `Cookie` header, when it is one we could have
/// written (32 lower-case hex digits); anything else is ignored.
pub fn cookie_uid(header: Option<&[u8]>) -> Option<String> {
    let text = std::str::from_utf8(header?).ok()?;
    text.split(';')
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .find(|v| {
            v.len() == 32
                && v.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        .map(str::to_owned)
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
}

fn params(query: &str) -> Result<Params, SyncError> {
    let mut p = Params::default();
    for pair in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (slot, name) = match k {
            "gdpr" => (&mut p.gdpr, "gdpr"),
            "gdpr_consent" => (&mut p.consent, "gdpr_consent"),
            "us_privacy" => (&mut p.us_privacy, "us_privacy"),
            "gpp" => (&mut p.gpp, "gpp"),
            "gpp_sid" => (&mut p.gpp_sid, "gpp_sid"),
            "redir" => (&mut p.redir, "redir"),
            // Exchanges add their own; they decide nothing here.
            _ => continue,
        };
        let v = percent_encoding::percent_decode_str(&v.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned();
        if slot.replace(v).is_some() {
            return Err(SyncError::Repeated(name));
        }
    }
    Ok(p)
}

/// Where `redir` may send the browser: an https URL on one of `hosts`.
fn allowed_redirect(url: &str, hosts: &[String]) -> Result<(), SyncError> {
    let bad = |why: &str| Err(SyncError::Redirect(why.to_owned()));
    if hosts.is_empty() {
        return bad("this exchange's profile allows none (sync_redirect_hosts)");
    }
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
    if hosts.contains(&host) {
        Ok(())
    } else {
        bad("its host is not one of this exchange's sync_redirect_hosts")
    }
}

/// Puts `uid` (empty for none) in place of the user id macro.
fn with_uid(template: &str, uid: &str) -> String {
    template.replace("${UID}", uid).replace("$UID", uid)
}

/// Whether the privacy signals of a query string (`gdpr`, `gdpr_consent`,
/// `us_privacy`, `gpp`, `gpp_sid`) allow keeping data about the user. A
/// signal given twice, or a `gdpr` that is not a number, does not.
pub fn query_allows(query: &str, privacy: &privacy::PrivacySettings) -> bool {
    let Ok(p) = params(query) else {
        return false;
    };
    allows(&p, privacy)
}

fn allows(p: &Params, privacy: &privacy::PrivacySettings) -> bool {
    let gpp_sid: Vec<i32> = p
        .gpp_sid
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .take(64)
        .collect();
    let gdpr = match p.gdpr.as_deref().map(|g| g.trim().parse::<i32>()) {
        None => None,
        Some(Ok(g)) => Some(g),
        // Present but unreadable is taken as applying.
        Some(Err(_)) => return false,
    };
    let signals = privacy::Signals {
        gdpr,
        consent: p.consent.as_deref(),
        us_privacy: p.us_privacy.as_deref(),
        gpp: p.gpp.as_deref(),
        gpp_sid: &gpp_sid,
    };
    privacy::signals_allow(&signals, privacy).is_ok()
}

/// Answers a sync call of `profile`'s exchange.
pub fn sync(
    profile: &Profile,
    query: &str,
    cookie: Option<&[u8]>,
    privacy: &privacy::PrivacySettings,
) -> Result<Synced, SyncError> {
    let p = params(query)?;
    let target = match &p.redir {
        Some(r) => {
            allowed_redirect(r, &profile.sync_redirect_hosts)?;
            r.clone()
        }
        None => profile.sync_url.clone().ok_or(SyncError::NoSyncUrl)?,
    };
    let allowed = allows(&p, privacy);
    if !allowed {
        return Ok(Synced {
            location: with_uid(&target, ""),
            // One set before the user said no goes now.
            set_cookie: cookie_uid(cookie)
                .map(|_| format!("{COOKIE}=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=None")),
            uid: None,
        });
    }
    let uid = cookie_uid(cookie).unwrap_or_else(new_uid);
    Ok(Synced {
        location: with_uid(&target, &uid),
        // Set again each time: the year starts over from the last visit.
        set_cookie: Some(format!(
            "{COOKIE}={uid}; Max-Age={MAX_AGE_SECS}; Path=/; Secure; HttpOnly; SameSite=None"
        )),
        uid: Some(uid),
    })
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
    }

    #[test]
    fn only_our_cookie_values_are_read() {
        let id = "0123456789abcdef0123456789abcdef";
        let h = format!("a=1; {COOKIE}={id}; b=2");
        assert_eq!(cookie_uid(Some(h.as_bytes())).as_deref(), Some(id));
        for bad in [
            "bidder_uid=../../x",
            "bidder_uid=0123",
            "bidder_uid=0123456789ABCDEF0123456789ABCDEF",
        ] {
            assert_eq!(cookie_uid(Some(bad.as_bytes())), None, "{bad}");
        }
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
