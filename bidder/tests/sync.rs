//! User sync over HTTP: the cookie (set, reused, cleared), the redirect
//! to the exchange with our id, `redir` only to listed hosts, and no id
//! at all where privacy signals say no.

mod common;

use common::{request, shop_config_dir, Reply, Server, SHOP};

fn server(name: &str) -> Server {
    let dir = shop_config_dir(name);
    std::fs::write(dir.join("shop.yaml"), SHOP).expect("config");
    std::fs::write(
        dir.join("x.yaml"),
        "exchange:\n  id: x\n  name: Exchange X\n  \
         sync_url: https://x.example/setuid?bidder=us&uid=${UID}\n  \
         sync_redirect_hosts: [cdn.x.example]\n",
    )
    .expect("exchange");
    std::fs::write(
        dir.join("y.yaml"),
        "exchange:\n  id: y\n  name: Exchange Y\n",
    )
    .expect("exchange");
    Server::start(&dir, None)
}

fn sync(s: &Server, path: &str, cookie: Option<&str>) -> Reply {
    let c;
    let headers: Vec<(&str, &str)> = match cookie {
        Some(v) => {
            c = format!("bidder_uid={v}");
            vec![("Cookie", c.as_str())]
        }
        None => vec![],
    };
    request(s.bid, "GET", path, &headers, b"")
}

/// The id our cookie sets, after checking its attributes.
fn cookie_id(r: &Reply) -> String {
    let c = r.header("set-cookie").expect("a cookie");
    for attr in [
        "Secure",
        "HttpOnly",
        "SameSite=None",
        "Path=/",
        "Max-Age=31536000",
    ] {
        assert!(c.split("; ").any(|a| a == attr), "{attr} in {c}");
    }
    let id = c
        .strip_prefix("bidder_uid=")
        .and_then(|v| v.split(';').next())
        .expect("our cookie");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    id.to_owned()
}

#[test]
fn a_sync_sets_our_id_and_sends_it_to_the_exchange() {
    let s = server("sync-basic");
    let r = sync(&s, "/sync/x", None);
    assert_eq!(r.status, 302);
    let id = cookie_id(&r);
    assert_eq!(
        r.header("location"),
        Some(format!("https://x.example/setuid?bidder=us&uid={id}").as_str())
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // The browser's id is kept.
    let again = sync(&s, "/sync/x", Some(&id));
    assert_eq!(cookie_id(&again), id);
    assert!(again.header("location").unwrap().ends_with(&id));
    // A cookie we could not have written is replaced.
    assert_ne!(cookie_id(&sync(&s, "/sync/x", Some("../../etc"))), id);
    // redir: only to the listed host, with the id.
    let r = sync(
        &s,
        "/sync/x?redir=https%3A%2F%2Fcdn.x.example%2Fp%3Fu%3D%24UID",
        Some(&id),
    );
    assert_eq!(
        r.header("location"),
        Some(format!("https://cdn.x.example/p?u={id}").as_str())
    );
    for bad in [
        "https%3A%2F%2Fevil.example%2F",
        "http%3A%2F%2Fcdn.x.example%2F",
        "https%3A%2F%2Fcdn.x.example%40evil.example%2F",
    ] {
        let r = sync(&s, &format!("/sync/x?redir={bad}"), None);
        assert_eq!(r.status, 400, "{bad}");
        assert!(r.header("location").is_none() && r.header("set-cookie").is_none());
    }
    // Unknown exchange, or one without a sync URL.
    assert_eq!(sync(&s, "/sync/nope", None).status, 404);
    assert_eq!(sync(&s, "/sync/y", None).status, 404);
    assert_eq!(request(s.bid, "POST", "/sync/x", &[], b"").status, 405);
}

#[test]
fn without_consent_no_cookie_and_no_id() {
    let s = server("sync-privacy");
    let id = "0123456789abcdef0123456789abcdef";
    for query in [
        "gdpr=1",
        "gdpr=1&gdpr_consent=",
        "gdpr=1&gdpr_consent=garbage",
        "gdpr=yes",
        "us_privacy=1YYN",
        "gpp_sid=2",
    ] {
        let r = sync(&s, &format!("/sync/x?{query}"), None);
        assert_eq!(r.status, 302, "{query}");
        assert!(r.header("set-cookie").is_none(), "{query}");
        assert_eq!(
            r.header("location"),
            Some("https://x.example/setuid?bidder=us&uid="),
            "{query}"
        );
        // One set before goes now.
        let r = sync(&s, &format!("/sync/x?{query}"), Some(id));
        let c = r.header("set-cookie").expect("cleared");
        assert!(
            c.starts_with("bidder_uid=;") && c.contains("Max-Age=0"),
            "{c}"
        );
        assert!(!r.header("location").unwrap().contains(id));
    }
    // GDPR not applying, no opt-out: synced.
    let r = sync(&s, "/sync/x?gdpr=0&us_privacy=1YNN", None);
    cookie_id(&r);
}
