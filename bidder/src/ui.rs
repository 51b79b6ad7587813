//! `/ui` on the admin port: one page for people, behind the admin token.
//!
//! A browser cannot send a bearer token, so `/ui/login` takes the token in
//! a form and answers with a session cookie: `HttpOnly` (no script reads
//! it), `SameSite=Strict` (no other site's page can use it), scoped to
//! `/ui`, valid 12 hours. The cookie holds its expiry and an HMAC of it
//! under the admin token — not the token itself — so it grants the page
//! and nothing else, and rotating the token ends every session. The login
//! page also reads a token from the URL's fragment (`/ui/login#token=…`)
//! and submits it: a bookmark (or a headless browser in a test) can log in
//! without the token ever reaching a server log, as a fragment is never
//! sent.

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

const COOKIE: &str = "bidder_ui";
/// Wrong tokens accepted per minute from one client (in the login form;
/// as `/v1` bearer tokens, counted apart); past it its logins (or `/v1`
/// calls) wait for the next minute (429). Tokens are long and random: this bounds
/// the work a guesser gets from the port, not the odds. Per client, so that
/// one (a page in someone's browser, a script) locks out itself only.
pub const FAILED_LOGINS_PER_MINUTE: u32 = 20;
/// Wrong tokens accepted per minute from all clients together: what many
/// addresses guessing at once get, at most.
pub const FAILED_LOGINS_PER_MINUTE_IN_ALL: u32 = 1_000;
/// Login forms read at once; past it, a login is answered 503 before its
/// body is read. The form is the one body the admin port reads before a
/// token is checked: 4,096 connections each sending a login's headers and
/// no body held every connection slot for the body timeout (30 s), and
/// `/healthz` and `/readyz` with them (probe finding). A connection
/// waiting for its headers is shed when the port is full; one whose
/// request is in flight is not, so those are the ones to bound.
pub const LOGINS_READ_AT_ONCE: usize = 8;
/// How long a login form's body may take: a few hundred bytes, sent with
/// its headers by any browser.
pub const LOGIN_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Clients whose failures are told apart in a minute; past it, the others
/// count together as one.
const CLIENTS_COUNTED: usize = 4_096;

/// Failed logins in the current minute, per client and in all.
#[derive(Default)]
pub struct Failures(std::sync::Mutex<Minute>);

#[derive(Default)]
pub struct Minute {
    minute: i64,
    all: u32,
    by_client: std::collections::HashMap<Client, u32>,
    others: u32,
}

impl Minute {
    fn at(&mut self, now_secs: i64) -> &mut Self {
        if self.minute != now_secs / 60 {
            *self = Minute {
                minute: now_secs / 60,
                ..Minute::default()
            };
        }
        self
    }

    fn of(&mut self, client: Client) -> &mut u32 {
        if self.by_client.len() < CLIENTS_COUNTED || self.by_client.contains_key(&client) {
            self.by_client.entry(client).or_default()
        } else {
            &mut self.others
        }
    }

    /// What [`Self::of`] counts for `client`, without making room for it:
    /// asking must not fill the table that failures are counted in.
    fn count(&self, client: Client) -> u32 {
        match self.by_client.get(&client) {
            Some(&n) => n,
            None if self.by_client.len() < CLIENTS_COUNTED => 0,
            None => self.others,
        }
    }
}

/// A client as failures are counted: an IPv4 address, or an IPv6 /64 (one
/// host is given a whole /64 and may speak from any address in it, so per
/// address it could guess 2^64 times as often). An IPv4 address mapped
/// into IPv6 is that IPv4 address.
type Client = std::net::IpAddr;

fn client(ip: std::net::IpAddr) -> Client {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.into(),
            None => std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1)).into(),
        },
        v4 => v4,
    }
}

impl Failures {
    /// Whether `client` may try a login at `now_secs`.
    pub fn allowed(&self, ip: std::net::IpAddr, now_secs: i64) -> bool {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let m = g.at(now_secs);
        m.all < FAILED_LOGINS_PER_MINUTE_IN_ALL && m.count(client(ip)) < FAILED_LOGINS_PER_MINUTE
    }

    /// As [`Self::allowed`], the client's own count alone: for `/v1`,
    /// which the bound over all clients would let anyone close. A client
    /// the table has no room for is not limited: the others' shared count
    /// was such a bound (review finding: 4,096 addresses guessing closed
    /// `/v1` to every operator for the rest of the minute). Its guesses
    /// cost the port a comparison each; the token's length keeps the odds.
    pub fn client_allowed(&self, ip: std::net::IpAddr, now_secs: i64) -> bool {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        g.at(now_secs)
            .by_client
            .get(&client(ip))
            .is_none_or(|&n| n < FAILED_LOGINS_PER_MINUTE)
    }

    pub fn failed(&self, ip: std::net::IpAddr, now_secs: i64) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let m = g.at(now_secs);
        m.all = m.all.saturating_add(1);
        let n = m.of(client(ip));
        *n = n.saturating_add(1);
    }
}

/// Whether a browser says a login form was posted from another site's
/// page: `Sec-Fetch-Site` other than same-origin (or none: typed or
/// bookmarked), else an `Origin` that is not the `Host` the request came to
/// (`null`, an opaque origin, included). Clients that send neither (curl,
/// scripts) are not browsers driven by a page.
pub fn posted_from_elsewhere(headers: &hyper::HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(hyper::header::ORIGIN) else {
        return false;
    };
    let origin = origin.as_bytes();
    let authority = origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"));
    match (authority, headers.get(hyper::header::HOST)) {
        (Some(a), Some(host)) => !a.eq_ignore_ascii_case(host.as_bytes()),
        _ => true,
    }
}

/// Seconds a session lasts.
pub const SESSION_SECS: i64 = 12 * 3600;

fn mac(token: &str, expires: i64) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(b"bidder-ui-session\n");
    m.update(expires.to_string().as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Set-Cookie` value of a new session made at `now_secs`.
pub fn session_cookie(token: &str, now_secs: i64) -> String {
    let expires = now_secs + SESSION_SECS;
    format!(
        "{COOKIE}={expires}.{}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}",
        mac(token, expires)
    )
}

/// Whether a `Cookie` header holds a live session for `token`.
pub fn has_session(cookie_header: Option<&[u8]>, token: &str, now_secs: i64) -> bool {
    let Some(header) = cookie_header.and_then(|h| std::str::from_utf8(h).ok()) else {
        return false;
    };
    header
        .split(';')
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|v| {
            let Some((exp, sig)) = v.split_once('.') else {
                return false;
            };
            // Only as `session_cookie` writes it: `+1` and `01` would
            // parse to the same expiry under the same MAC.
            if exp.starts_with('0') || !exp.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            let Ok(expires) = exp.parse::<i64>() else {
                return false;
            };
            expires > now_secs
                && expires <= now_secs + SESSION_SECS
                && bool::from(mac(token, expires).as_bytes().ct_eq(sig.as_bytes()))
        })
}

/// The `token` field of a login form body (`application/x-www-form-urlencoded`).
pub fn form_token(body: &[u8]) -> Option<String> {
    crate::form::field(std::str::from_utf8(body).ok()?, "token")
}

/// The report page's `Content-Security-Policy`: nothing loads from
/// elsewhere, no script runs, no framing.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The login page's: as [`CSP`], and its own inline script (the one that
/// reads a token from the fragment).
pub const LOGIN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
                             script-src 'unsafe-inline'; img-src data:; form-action 'self'; \
                             frame-ancestors 'none'; base-uri 'none'";

/// The login form; `failed` after a wrong token.
pub fn login_page(failed: bool) -> String {
    let note = if failed {
        r#"<p class="err" role="alert">That token is not the admin token.</p>"#
    } else {
        ""
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bidder: sign in</title>
<style>
body{{font:16px/1.5 system-ui,sans-serif;background:#f4f6f8;color:#1d2733;display:grid;place-items:center;min-height:100vh;margin:0}}
form{{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:18rem}}
h1{{font-size:1.2rem;margin:0 0 1rem}} label{{display:block;margin-bottom:.3rem}}
input{{width:100%;box-sizing:border-box;padding:.5rem;font:inherit;margin-bottom:1rem}}
button{{padding:.5rem 1rem;font:inherit;background:#1f6feb;color:#fff;border:0;border-radius:4px}}
.err{{color:#b42318}}
</style></head>
<body><form id="login" method="post" action="/ui/login">
<h1>Bidder reports</h1>{note}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
<script>
(function () {{
  var m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {{
    history.replaceState(null, "", location.pathname);
    document.getElementById("token").value = decodeURIComponent(m[1]);
    document.getElementById("login").submit();
  }}
}})();
</script>
</body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients past the table's room share one count for the login form's
    /// sake; on `/v1` that count limits nobody, so that many addresses
    /// guessing together close no operator's `/v1`, while a client in the
    /// table is still held to its own.
    #[test]
    fn many_guessing_clients_close_nobody_elses_v1() {
        let f = Failures::default();
        let now = 1_800_000_000;
        let ip = |i: u32| std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..CLIENTS_COUNTED as u32 + 200 {
            f.failed(ip(i), now);
        }
        let operator = ip(1 << 20);
        assert!(f.client_allowed(operator, now));
        // One in the table that went past its own count waits.
        for _ in 0..FAILED_LOGINS_PER_MINUTE {
            f.failed(ip(7), now);
        }
        assert!(!f.client_allowed(ip(7), now));
        assert!(f.client_allowed(ip(8), now));
    }

    #[test]
    fn sessions_are_bound_to_the_token_and_expire() {
        let now = 1_800_000_000;
        let set = session_cookie("secret-token", now);
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"));
        assert!(!set.contains("secret-token"), "the cookie is not the token");
        let pair = set.split(';').next().unwrap();
        let header = format!("other=1; {pair}");
        assert!(has_session(
            Some(header.as_bytes()),
            "secret-token",
            now + 60
        ));
        assert!(!has_session(Some(header.as_bytes()), "rotated", now + 60));
        assert!(!has_session(
            Some(header.as_bytes()),
            "secret-token",
            now + SESSION_SECS + 1
        ));
        // An expiry pushed later is not signed.
        let forged = pair.replacen(
            &(now + SESSION_SECS).to_string(),
            &(now + SESSION_SECS * 2).to_string(),
            1,
        );
        assert!(!has_session(
            Some(forged.as_bytes()),
            "secret-token",
            now + 60
        ));
        // Only as written: `+` or a leading zero is another cookie.
        let exp = (now + SESSION_SECS).to_string();
        for other in [format!("+{exp}"), format!("0{exp}")] {
            let odd = pair.replacen(&exp, &other, 1);
            assert!(!has_session(Some(odd.as_bytes()), "secret-token", now + 60));
        }
        assert!(!has_session(None, "secret-token", now));
        assert!(!has_session(
            Some(b"bidder_ui=garbage"),
            "secret-token",
            now
        ));
    }

    #[test]
    fn failed_logins_are_limited_per_minute_and_client() {
        let f = Failures::default();
        let (a, b) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        for _ in 0..FAILED_LOGINS_PER_MINUTE {
            assert!(f.allowed(a, 600));
            f.failed(a, 600);
        }
        assert!(!f.allowed(a, 659));
        assert!(f.allowed(b, 659), "another client");
        assert!(f.allowed(a, 660), "a new minute");
        // Clients told apart are bounded; past them, the rest count as one.
        // Asking counts nobody.
        let f = Failures::default();
        for i in 0..2 * CLIENTS_COUNTED as u32 {
            assert!(f.allowed(std::net::Ipv4Addr::from(i).into(), 600));
        }
        assert_eq!(f.0.lock().unwrap().by_client.len(), 0);
        // And all clients together stop at the overall bound.
        for i in 0..FAILED_LOGINS_PER_MINUTE_IN_ALL - 1 {
            f.failed(std::net::Ipv4Addr::from(i).into(), 600);
        }
        assert!(f.allowed(b, 600));
        f.failed(a, 600);
        assert!(!f.allowed(b, 600));
        for i in 0..2 * CLIENTS_COUNTED as u32 {
            f.failed(std::net::Ipv4Addr::from(i).into(), 600);
        }
        let counted = f.0.lock().unwrap().by_client.len();
        assert_eq!(counted, CLIENTS_COUNTED);
    }

    /// One IPv6 host holds a /64: its addresses are one client, or it
    /// could guess from each of them.
    #[test]
    fn an_ipv6_client_is_its_64() {
        let f = Failures::default();
        let host: std::net::Ipv6Addr = "2001:db8:1:2::".parse().unwrap();
        for i in 0..FAILED_LOGINS_PER_MINUTE as u128 {
            let ip = std::net::Ipv6Addr::from(u128::from(host) + i + 1).into();
            assert!(f.allowed(ip, 600));
            f.failed(ip, 600);
        }
        let another_address = "2001:db8:1:2:ffff::7".parse().unwrap();
        assert!(!f.allowed(another_address, 600));
        assert!(
            f.allowed("2001:db8:1:3::1".parse().unwrap(), 600),
            "another /64"
        );
        // A mapped IPv4 address is that address.
        let v4: std::net::IpAddr = [198, 51, 100, 7].into();
        for _ in 0..FAILED_LOGINS_PER_MINUTE {
            f.failed("::ffff:198.51.100.7".parse().unwrap(), 600);
        }
        assert!(!f.allowed(v4, 600));
    }

    #[test]
    fn form_tokens_decode() {
        assert_eq!(form_token(b"token=a%2Bb+c&x=1"), Some("a+b c".into()));
        assert_eq!(form_token(b"x=1"), None);
    }
}
