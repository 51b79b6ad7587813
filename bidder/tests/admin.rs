//! The admin port's `/v1/*` endpoints are for operators with the admin
//! token; probes and metrics stay open.

mod common;

use bidder::Settings;
use common::{banner_request, get, post, repo, Server, ADMIN_TOKEN};

const PATHS: [&str; 3] = ["/v1/explain", "/v1/config/reload", "/v1/audience-events"];

fn with(settings: Settings) -> Server {
    Server::start_exact(&repo().join("examples/config"), None, settings)
}

#[test]
fn without_an_admin_token_the_admin_api_is_closed() {
    let s = with(Settings::default());
    let body = banner_request().to_string();
    for path in PATHS {
        let r = post(
            s.admin,
            path,
            &[("Authorization", "Bearer anything")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        let r = post(s.admin, path, &[], body.as_bytes());
        assert_eq!(r.status, 403, "{path}");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(get(s.admin, path).status, 200, "{path}");
    }
}

#[test]
fn every_v1_endpoint_needs_the_admin_token() {
    let s = with(Settings {
        admin_token: Some(ADMIN_TOKEN.into()),
        audience_token: Some("uploads-only-token".into()),
        ..Settings::default()
    });
    let body = banner_request().to_string();
    let wrong = [
        None,
        Some("Bearer wrong".to_string()),
        Some(ADMIN_TOKEN.to_string()),
        Some(format!("Bearer {ADMIN_TOKEN}x")),
        Some(format!("Bearer {}", &ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1])),
        Some(format!("Bearer {}", ADMIN_TOKEN.to_uppercase())),
        Some(format!("Bearer{ADMIN_TOKEN}")),
    ];
    for path in PATHS {
        for auth in &wrong {
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("Authorization", a.as_str())).collect();
            let r = post(s.admin, path, &headers, body.as_bytes());
            assert_eq!(r.status, 401, "{path} {auth:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }
    // The uploads token opens uploads, nothing else: explain would tell
    // who is in which audience.
    for path in ["/v1/explain", "/v1/config/reload"] {
        let r = post(
            s.admin,
            path,
            &[("Authorization", "Bearer uploads-only-token")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 401, "{path}");
    }
    // The scheme's name in any case (RFC 9110 11.1), as clients send it,
    // and one or more spaces before the token (11.4's `1*SP`).
    for scheme in ["bearer ", "BEARER ", "Bearer  "] {
        let auth = format!("{scheme}{ADMIN_TOKEN}");
        let r = post(
            s.admin,
            "/v1/explain",
            &[("Authorization", auth.as_str())],
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{scheme}: {}", r.text());
    }
    let explain = common::admin(s.admin, "/v1/explain", body.as_bytes());
    assert_eq!(explain.status, 200, "{}", explain.text());
    assert!(explain.json()["line_items"].is_array());
    let reload = common::admin(s.admin, "/v1/config/reload", b"");
    assert_eq!(reload.status, 200, "{}", reload.text());
    // A known path with the wrong method, once authorised.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = common::request(
        s.admin,
        "GET",
        "/v1/explain",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 405);
    assert_eq!(common::admin(s.admin, "/v1/nothing", b"").status, 404);
}

#[test]
fn settings_never_print_their_secrets() {
    let settings = Settings {
        admin_token: Some("admin-secret-value".into()),
        audience_token: Some("audience-secret-value".into()),
        notice_secret: Some("notice-secret-value-of-32-bytes!".into()),
        ..Settings::default()
    };
    let printed = format!("{settings:?}");
    for secret in [
        "admin-secret-value",
        "audience-secret-value",
        "notice-secret-value",
    ] {
        assert!(!printed.contains(secret), "{printed}");
    }
}

/// A reload to a config without a line item (a directory emptied of its
/// advertisers' files by a copy half done) is valid and loads, and says
/// so as a warning to whoever asked for it, not only as a figure in the
/// summary (ops probe).
#[test]
fn a_reload_that_leaves_no_line_items_warns() {
    let dir = common::tempdir("reload-empty");
    for f in ["open.yaml", "rates.yaml"] {
        std::fs::copy(
            common::repo().join("testdata/config/open").join(f),
            dir.join(f),
        )
        .unwrap();
    }
    let s = Server::start(&dir, None);
    std::fs::remove_file(dir.join("open.yaml")).unwrap();
    let loaded = s.app.reload().expect("a config of rates alone is valid");
    assert_eq!(loaded.summary.line_items, 0);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.contains("has no line items (the one before had")),
        "{loaded}"
    );
}
