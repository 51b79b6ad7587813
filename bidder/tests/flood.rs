//! While the bid port is flooded with the costliest requests anyone can
//! send, the liveness probe still answers at once: a busy pod must not be
//! killed for being busy. Alone in its test binary (it loads the machine).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{banner_request, Server};
use serde_json::json;

/// Worst cases: many imps, long consent strings, deep `ext` nesting, an
/// imp offering 60,000 sizes, and bodies near the 1 MB limit.
fn worst_cases() -> Vec<Vec<u8>> {
    let mut many = banner_request();
    many["imp"] = (0..6_000)
        .map(|i| json!({ "id": format!("{i}"), "banner": { "w": 300, "h": 250 } }))
        .collect();
    many["tmax"] = json!(1000);
    let mut consent = banner_request();
    consent["regs"] =
        json!({ "gdpr": 1, "gpp": format!("DBABMA~{}", "A".repeat(15_000)), "gpp_sid": [2, 7] });
    consent["user"]["consent"] = json!(format!("C{}", "P".repeat(15_000)));
    let mut deep = banner_request().to_string();
    let nest = 100_000;
    deep.insert_str(
        deep.len() - 1,
        &format!(",\"ext\":{}1{}", "[".repeat(nest), "]".repeat(nest)),
    );
    let mut sizes = banner_request();
    sizes["imp"][0]["banner"] = json!({
        "format": (0..60_000).map(|i| json!({ "w": 1 + i % 1000, "h": 1 + i / 1000 })).collect::<Vec<_>>()
    });
    let mut big = banner_request();
    big["site"]["keywords"] = json!("word ".repeat(190_000));
    vec![
        many.to_string().into_bytes(),
        consent.to_string().into_bytes(),
        deep.into_bytes(),
        sizes.to_string().into_bytes(),
        big.to_string().into_bytes(),
    ]
}

fn post(addr: std::net::SocketAddr, body: &[u8]) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let head = format!(
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
}

#[test]
fn healthz_answers_within_50_ms_at_p99_while_bids_flood_in() {
    let s = Server::example();
    let bodies = Arc::new(worst_cases());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (bodies, stop, sent, addr) = (bodies.clone(), stop.clone(), sent.clone(), s.bid);
            std::thread::spawn(move || {
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    post(addr, &bodies[i % bodies.len()]);
                    sent.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    // Let the flood build up, then probe.
    std::thread::sleep(Duration::from_millis(300));
    let mut latencies: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            let r = common::get(s.admin, "/healthz");
            let took = t.elapsed();
            assert_eq!(r.status, 200);
            std::thread::sleep(Duration::from_millis(10));
            took
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    let p50 = latencies[latencies.len() / 2];
    eprintln!(
        "healthz p50 {p50:?} p99 {p99:?} max {:?} while {} worst-case bids were sent",
        latencies[latencies.len() - 1],
        sent.load(Ordering::Relaxed)
    );
    assert!(sent.load(Ordering::Relaxed) > 8, "the flood ran");
    assert!(p99 <= Duration::from_millis(50), "healthz p99 {p99:?}");
}
