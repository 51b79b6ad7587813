//! parse + match + respond for a banner request, against configs of 10,
//! 1,000, 10,000 and 100,000 line items, and audience matching against a
//! store of 1,000,000 users and a list of 1,000,000 members. Run: `cargo bench -p benches --bench bid`.

use std::hint::black_box;
use std::time::Instant;

use benches::{generated_config, BANNER_REQUEST};
use bidder::{App, BidAnswer};
use config::Timestamp;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn app(line_items: usize) -> App {
    app_with(line_items, audiences::Store::new())
}

fn app_with(line_items: usize, store: audiences::Store) -> App {
    benches::bench_app(&generated_config(line_items), store)
}

fn bench(c: &mut Criterion) {
    // Exchanges send minified JSON; the file is pretty for people.
    let body = benches::minified(BANNER_REQUEST);
    let body = body.as_slice();

    c.bench_function("parse/banner-2KB-minified", |b| {
        b.iter(|| ortb::parse_request(black_box(body)).map(|r| r.imp.len()))
    });

    let mut group = c.benchmark_group("bid");
    for n in [10usize, 1_000, 10_000, 100_000] {
        let app = app(n);
        // Sanity: the bench measures a real bid, not an early no-bid.
        match app.handle_bid(body, Instant::now()) {
            BidAnswer::Bid(..) => {}
            BidAnswer::NoBid(r) => panic!("{n} line items: no bid ({r:?})"),
            BidAnswer::Invalid(r) => panic!("invalid: {r}"),
        }
        group.bench_with_input(BenchmarkId::new("parse+match+respond", n), &n, |b, _| {
            b.iter(|| match app.handle_bid(black_box(body), Instant::now()) {
                BidAnswer::Bid(json, _) => json.len(),
                _ => 0,
            })
        });
        let req = ortb::parse_request(body).expect("valid request");
        group.bench_with_input(BenchmarkId::new("match+respond", n), &n, |b, _| {
            b.iter(|| app.auction(black_box(&req)).map(|(j, _)| j.len()))
        });
    }
    // The same bid with the event journal on, as `serve` runs: each bid
    // also hands its report count to the event writer.
    {
        let state = std::env::temp_dir().join(format!("bid-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let (app, _) = app(1_000).with_journal(&state).expect("state dir");
        assert!(matches!(
            app.handle_bid(body, Instant::now()),
            BidAnswer::Bid(..)
        ));
        group.bench_function(BenchmarkId::new("parse+match+respond+events", 1_000), |b| {
            b.iter(|| match app.handle_bid(black_box(body), Instant::now()) {
                BidAnswer::Bid(json, _) => json.len(),
                _ => 0,
            })
        });
        drop(app);
        let _ = std::fs::remove_dir_all(&state);
    }
    group.finish();

    // A store of 1,000,000 users (one event each), looked up on every bid.
    let events = audiences::parse_jsonl("bench", &benches::generated_events(1_000_000))
        .expect("generated events are valid");
    let store = audiences::Store::new();
    store.insert(events);
    let viewers = config::Audience {
        id: "viewers".into(),
        kind: config::AudienceKind::Views {
            products: (0..20).map(|i| format!("B0PROD{i:04}")).collect(),
            lookback_days: 30,
            own: Vec::new(),
        },
    };
    let now = Timestamp::parse_rfc3339("2026-11-25T12:00:00Z").expect("fixed time");
    let page = audiences::Page::default();
    let mut group = c.benchmark_group("audiences-1M-users");
    let mut u = 0u64;
    group.bench_function("views-match", |b| {
        b.iter(|| {
            u = (u + 7919) % 1_000_000;
            let user = format!("user-{u}");
            let visitor = audiences::Visitor {
                user: Some(&user),
                behavioural: true,
                now,
            };
            store.matches(black_box(&viewers), &visitor, &page)
        })
    });
    group.finish();

    // A list audience of 1,000,000 members read from four sources, asked
    // about requests carrying an id under each (a member's under the last,
    // or no member's): what a bid pays per list audience.
    let lists = audiences::Store::new();
    let batch: String = (0..1_000_000u64)
        .map(|i| format!("{{\"id\":\"{}\"}}\n", benches::member_id(i)))
        .collect();
    lists
        .lists()
        .apply_jsonl("shop", "crm", "bench", &batch)
        .expect("generated members are valid");
    drop(batch);
    let crm = config::Audience {
        id: "crm".into(),
        kind: config::AudienceKind::List {
            sources: vec![
                config::ListSource::BuyerUid,
                config::ListSource::Eid("uidapi.com".into()),
                config::ListSource::Eid("id5-sync.com".into()),
                config::ListSource::Sha256Email,
            ],
            advertiser: "shop".into(),
        },
    };
    let visitor = audiences::Visitor {
        user: Some("buyer-1"),
        behavioural: true,
        now,
    };
    // Each iteration asks about another request's ids (written into the
    // same buffers, as a parsed request's are hot in cache), so the
    // lookups pay the cache misses a stream of different users costs; the
    // `ids-only` line is the cost of writing those ids, to subtract.
    let mut group = c.benchmark_group("lists-1M-members");
    let emails: Vec<[u8; 64]> = (0..65_536u64)
        .map(|i| {
            let mut e = [0u8; 64];
            e.copy_from_slice(benches::member_id(i * 13).to_uppercase().as_bytes());
            e
        })
        .collect();
    let mut ids = BenchIds([
        (config::ListSource::BuyerUid, String::new()),
        (config::ListSource::Eid("uidapi.com".into()), String::new()),
        (
            config::ListSource::Eid("id5-sync.com".into()),
            String::new(),
        ),
        (config::ListSource::Sha256Email, String::new()),
    ]);
    // Request `i`: made-up ids under the first three sources, and under
    // the last a member's hashed e-mail (or, flipped, no member's).
    fn fill(ids: &mut BenchIds, i: u64, email: &[u8; 64], member: bool) {
        use std::fmt::Write as _;
        for (n, (_, id)) in ids.0.iter_mut().enumerate().take(3) {
            id.clear();
            let _ = write!(id, "id-{n}-{i:016x}");
        }
        let last = &mut ids.0[3].1;
        last.clear();
        last.push_str(std::str::from_utf8(email).unwrap_or_default());
        if !member {
            last.replace_range(0..1, "G");
        }
    }
    fill(&mut ids, 1, &emails[1], true);
    assert!(lists.matches_with(&crm, &visitor, &page, &ids));
    fill(&mut ids, 1, &emails[1], false);
    assert!(!lists.matches_with(&crm, &visitor, &page, &ids));
    for (name, member) in [("member", true), ("non-member", false)] {
        let mut i = 0u64;
        group.bench_function(format!("list-match/{name}"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                fill(&mut ids, i, &emails[(i & 0xffff) as usize], member);
                lists.matches_with(black_box(&crm), &visitor, &page, &ids)
            })
        });
    }
    let mut i = 0u64;
    group.bench_function("ids-only", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            fill(&mut ids, i, &emails[(i & 0xffff) as usize], true);
            black_box(&ids);
        })
    });
    group.finish();

    // A video bid with its VAST (4.0, three renditions, a companion).
    let open = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/config/open");
    // The request's page is https: VAST carries our trackers (the bench
    // app's tracking URLs are https).
    let video_app = benches::bench_app_on(
        config::load_dir(&open).expect("open test config"),
        audiences::Store::new(),
        bidder::notice::UrlSignatures::default(),
    );
    let video_body = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/openrtb/requests/pbs__amx__video-simple__call0-bidder-request.json"),
    )
    .expect("vendored request");
    match video_app.handle_bid(&video_body, Instant::now()) {
        BidAnswer::Bid(..) => {}
        _ => panic!("the video request must bid"),
    }
    c.bench_function("bid-video/parse+match+vast", |b| {
        b.iter(
            || match video_app.handle_bid(black_box(&video_body), Instant::now()) {
                BidAnswer::Bid(json, _) => json.len(),
                _ => 0,
            },
        )
    });

    let mut group = c.benchmark_group("bid-1M-users");
    let app = app_with(1_000, store);
    let mut request: serde_json::Value =
        serde_json::from_slice(&benches::minified(BANNER_REQUEST)).expect("valid JSON");
    request["user"] = serde_json::json!({ "buyeruid": "user-4242" });
    let body = serde_json::to_vec(&request).expect("serialisable");
    group.bench_function("parse+match+respond/1000", |b| {
        b.iter(|| match app.handle_bid(black_box(&body), Instant::now()) {
            BidAnswer::Bid(json, _) => json.len(),
            _ => 0,
        })
    });
    group.finish();
}

/// A request's ids as the bidder's context offers them.
struct BenchIds([(config::ListSource, String); 4]);

impl audiences::UserIds for BenchIds {
    fn any(&self, source: &config::ListSource, f: &mut dyn FnMut(&str) -> bool) -> bool {
        self.0.iter().any(|(s, id)| s == source && f(id))
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
