//! `POST /v1/audience-events`: authenticated, all-or-nothing uploads that
//! take effect on the next bid request.

mod common;

use bidder::Settings;
use common::{banner_request, post, repo, Server};
use serde_json::json;

fn server_with_token() -> Server {
    Server::start_with(
        &repo().join("examples/config"),
        Some(&repo().join("examples/data")),
        Settings {
            audience_token: Some("s3cret-token".into()),
            ..Settings::default()
        },
    )
}

fn bid_for(s: &Server, user: &str) -> u16 {
    let mut r = banner_request();
    r["user"] = json!({ "buyeruid": user });
    s.bid(&r.to_string()).status
}

const VIEW: &str =
    r#"{"user":"new-shopper","event":"view","product":"B0TENT0002","at":"2026-11-23T08:00:00Z"}"#;

#[test]
fn an_uploaded_view_puts_the_user_in_the_audience() {
    let s = server_with_token();
    assert_eq!(bid_for(&s, "new-shopper"), 204);
    let body = format!(
        "{VIEW}\n{}\n",
        r#"{"user":"other","event":"interest","interest":"hiking","at":"2026-11-20T00:00:00Z"}"#
    );
    let r = post(
        s.admin,
        "/v1/audience-events",
        &[("Authorization", "Bearer s3cret-token")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["applied"], 2);
    assert_eq!(bid_for(&s, "new-shopper"), 200);
}

#[test]
fn a_bad_line_applies_nothing_and_names_the_line() {
    let s = server_with_token();
    let body = format!(
        "{VIEW}\n{{\"user\":\"x\",\"event\":\"teleport\",\"at\":\"2026-11-23T08:00:00Z\"}}\n"
    );
    let r = post(
        s.admin,
        "/v1/audience-events",
        &[("Authorization", "Bearer s3cret-token")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("line 2"), "{}", r.text());
    assert_eq!(
        bid_for(&s, "new-shopper"),
        204,
        "line 1 must not be applied"
    );
}

/// An event dated more than an hour ahead of the bidder's clock is refused,
/// an interest as a view or a purchase is (an interest of a wrong year was
/// taken and matched nothing until then: audiences probe), and the batch
/// applies nothing.
#[test]
fn events_from_the_future_are_refused_whatever_their_kind() {
    let s = server_with_token();
    for line in [
        r#"{"user":"later","event":"interest","interest":"hiking","at":"2100-01-01T00:00:00Z"}"#,
        r#"{"user":"later","event":"view","product":"B0TENT0002","at":"2100-01-01T00:00:00Z"}"#,
    ] {
        let body = format!("{VIEW}\n{line}\n");
        let r = post(
            s.admin,
            "/v1/audience-events",
            &[("Authorization", "Bearer s3cret-token")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 400, "{line}: {}", r.text());
        assert!(
            r.text().contains("line 2") && r.text().contains("in the future"),
            "{}",
            r.text()
        );
        assert_eq!(bid_for(&s, "new-shopper"), 204, "nothing applied");
    }
}

/// A batch the audience log's bound cannot take is applied but not saved,
/// and the answer (507, not a 503 clients retry) says the same batch would
/// meet the same bound (it said "retry the batch", which only went round
/// in circles: audiences probe).
#[test]
fn a_batch_past_the_log_bound_says_a_retry_will_not_help() {
    let state = common::tempdir("audience-log-bound");
    let s = Server::start_in_with(
        &repo().join("examples/config"),
        &state,
        common::ts("2026-11-24T12:00:00Z"),
        |s| {
            s.audience_token = Some("s3cret-token".into());
            s.max_audience_log_bytes = 200;
        },
    );
    let body: String = (0..20)
        .map(|i| {
            format!(
                "{{\"user\":\"u-{i}\",\"event\":\"view\",\"product\":\"B0TENT0002\",\"at\":\"2026-11-23T08:00:00Z\"}}\n"
            )
        })
        .collect();
    let r = post(
        s.admin,
        "/v1/audience-events",
        &[("Authorization", "Bearer s3cret-token")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.text().contains("split it"), "{}", r.text());
    assert!(!r.text().contains("retry the batch"), "{}", r.text());
}

/// A body that is not UTF-8 is refused whole (read on a blocking thread
/// since the body moved there uncopied): 400, and its good line applied
/// nowhere; the next upload is taken as ever.
#[test]
fn a_body_that_is_not_utf8_applies_nothing() {
    let s = server_with_token();
    let mut body = format!("{VIEW}\n").into_bytes();
    body.extend_from_slice(b"{\"user\":\"x\xff\",\"event\":\"view\"}\n");
    let auth = [("Authorization", "Bearer s3cret-token")];
    let r = post(s.admin, "/v1/audience-events", &auth, &body);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(bid_for(&s, "new-shopper"), 204, "nothing applied");
    let r = post(s.admin, "/v1/audience-events", &auth, VIEW.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(bid_for(&s, "new-shopper"), 200);
}

#[test]
fn uploads_need_the_token() {
    let s = server_with_token();
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("s3cret-token"),
        Some("Bearer s3cret-token2"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let r = post(s.admin, "/v1/audience-events", &headers, VIEW.as_bytes());
        assert_eq!(r.status, 401, "{auth:?}");
    }
    assert_eq!(bid_for(&s, "new-shopper"), 204);
    // The admin token opens uploads too.
    let admin = format!("Bearer {}", common::ADMIN_TOKEN);
    let r = post(
        s.admin,
        "/v1/audience-events",
        &[("Authorization", &admin)],
        VIEW.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Without a configured token, uploads are off altogether.
    let plain = Server::start_exact(&repo().join("examples/config"), None, Settings::default());
    let r = post(
        plain.admin,
        "/v1/audience-events",
        &[("Authorization", "Bearer anything")],
        VIEW.as_bytes(),
    );
    assert_eq!(r.status, 403);
}

/// Another replica's batch is kept in this replica's audience log only
/// when the store took something of it: one it already holds (or refuses,
/// full) would grow the log, read back at every start, with nothing.
#[test]
fn a_peer_batch_that_teaches_nothing_is_not_logged() {
    let dir = common::shop_config_dir("peer-batch-log");
    let state = dir.join("state");
    let s = Server::start_in(&dir, &state, 1_000_000, common::ts("2026-11-24T12:00:00Z"));
    let batch = |id: &str| shared::Published {
        id: id.into(),
        topic: "events".into(),
        key: String::new(),
        body: format!("{VIEW}\n"),
    };
    let log = state.join("audience-events").join("2026-11-24.jsonl");
    let size = || std::fs::metadata(&log).map_or(0, |m| m.len());
    s.app.apply_peer_audience(&batch("1-0"));
    let once = size();
    assert!(once > 0, "the first batch is kept");
    s.app.apply_peer_audience(&batch("2-0"));
    assert_eq!(size(), once, "the same events again add nothing");
}
