//! Memory stays bounded under hostile user ids. Alone in its test binary:
//! it reads this process's resident set size.

mod common;

use common::{banner_request, Server};
use serde_json::json;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn two_thousand_requests_with_100_kb_user_ids_leave_memory_flat() {
    let s = Server::example();
    // The page makes the capped line item bid if it could count the user.
    let mut r = banner_request();
    r["site"]["page"] = json!("https://shop.example/dp/B0TENT0001");
    r["user"] = json!({ "buyeruid": "ID" });
    let template = r.to_string();
    let padding = "x".repeat(100 * 1024);
    let send = |n: usize| {
        for i in 0..n {
            // Every id distinct, as an attacker would make them.
            let body = template.replace("\"ID\"", &format!("\"{i:08}{padding}\""));
            let reply = s.bid(&body);
            assert!(
                reply.status == 200 || reply.status == 204,
                "{}",
                reply.status
            );
        }
    };
    // Warm up allocator pools and lazily built state first.
    send(200);
    let before = rss_kb();
    send(2_000);
    let after = rss_kb();
    let growth_mb = (after.saturating_sub(before)) as f64 / 1024.0;
    eprintln!("RSS {before} kB -> {after} kB");
    assert!(
        growth_mb < 20.0,
        "RSS grew by {growth_mb:.1} MB ({before} kB -> {after} kB)"
    );
}
