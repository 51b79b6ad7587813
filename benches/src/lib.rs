//! Shared fixtures for the benches and the load script: a generated config
//! of any number of line items, and the banner request they bid on.

use std::fmt::Write as _;

/// The banner request the benches and the load test send: a 300x250 slot on
/// a US desktop page about a tent, ~2.5 KB like real exchange traffic.
pub const BANNER_REQUEST: &str = include_str!("banner-request.json");

/// The video request of the instruction counts: the banner request's page
/// and user, with a secure 640x360 pre-roll slot (5–30 s, VAST 2–4, a
/// 300x250 companion) in place of the banner.
pub const VIDEO_REQUEST: &str = include_str!("video-request.json");

/// An advertiser with a 15 s video creative, its 300x250 companion and
/// one video line item, added to the generated config for video bids (the
/// tests' `TUBE`).
pub const VIDEO_ADVERTISER: &str = include_str!("../../testdata/config/video/tube.yaml");

/// A bidder on `files` at the benches' fixed time (2026-11-25 noon UTC),
/// its tracking URLs on https (secure slots take video only then), with
/// deadlines far longer than any run: benches measure the work, not the
/// deadline.
pub fn bench_app(files: &[(std::path::PathBuf, String)], store: audiences::Store) -> bidder::App {
    bench_app_signing(files, store, bidder::notice::UrlSignatures::default())
}

/// [`bench_app`] writing its URLs' signatures `how`.
pub fn bench_app_signing(
    files: &[(std::path::PathBuf, String)],
    store: audiences::Store,
    how: bidder::notice::UrlSignatures,
) -> bidder::App {
    bench_app_on(
        config::load_files(files).expect("bench config is valid"),
        store,
        how,
    )
}

/// [`bench_app_signing`] on a config already loaded.
pub fn bench_app_on(
    config: config::Config,
    store: audiences::Store,
    how: bidder::notice::UrlSignatures,
) -> bidder::App {
    let now = config::Timestamp::parse_rfc3339("2026-11-25T12:00:00Z").expect("fixed time");
    let app = bidder::App::new(
        bidder::Settings {
            default_tmax: std::time::Duration::from_secs(3600),
            max_tmax: std::time::Duration::from_secs(3600),
            public_url: "https://bidder.bench.example".into(),
            url_signatures: how,
            ..bidder::Settings::default()
        },
        std::sync::Arc::new(config::ManualClock::new(now)),
        store,
        None,
    );
    app.install(config);
    app
}

/// `json` minified, as exchanges send it, with a `tmax` of an hour.
pub fn minified(json: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
    v["tmax"] = 3_600_000.into();
    serde_json::to_vec(&v).expect("serialisable")
}

/// Sizes drawn for generated creatives: the common IAB ones.
const SIZES: [(u32, u32); 6] = [
    (300, 250),
    (728, 90),
    (320, 50),
    (160, 600),
    (300, 600),
    (970, 250),
];
const COUNTRIES: [&str; 6] = ["USA", "CAN", "GBR", "DEU", "FRA", "JPN"];
const DEVICES: [&str; 3] = ["desktop", "phone", "tablet"];

/// A small deterministic generator, so every run benches the same config.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// YAML files (name, text) holding `line_items` display line items spread
/// over advertisers of 10 line items each, with a mix of targeting: a tenth
/// carry an audience, a few a keyword rule, CPMs from 0.50 to 20.00.
pub fn generated_config(line_items: usize) -> Vec<(std::path::PathBuf, String)> {
    generated_config_flying(line_items, "2026-01-01", "2026-12-31")
}

/// [`generated_config`] with its orders' flights from `start` to `end`
/// (`YYYY-MM-DD`): `gen-config` writes flights around the day it runs, for
/// servers that run on the wall clock.
pub fn generated_config_flying(
    line_items: usize,
    start: &str,
    end: &str,
) -> Vec<(std::path::PathBuf, String)> {
    let mut rng = Lcg(42);
    let mut files = Vec::new();
    let per_adv = 10;
    let advertisers = line_items.div_ceil(per_adv);
    // How many subcategories IAB1 to IAB20 have: a code past them is
    // refused (OpenRTB 2.5 list 5.1).
    const SUBCATEGORIES: [usize; 20] = [
        7, 23, 12, 11, 15, 9, 45, 18, 31, 9, 5, 3, 12, 8, 10, 7, 44, 6, 36, 27,
    ];
    for a in 0..advertisers {
        let mut y = String::new();
        let tier1 = 1 + rng.below(20);
        let tier2 = (1 + rng.below(10)).min(SUBCATEGORIES[tier1 - 1]);
        let _ = writeln!(
            y,
            "advertiser:\n  id: adv-{a}\n  name: Advertiser {a}\n  domains: [adv-{a}.example]\n  categories: [IAB{tier1}-{tier2}]\n",
        );
        let _ = writeln!(
            y,
            "audiences:\n  - id: pages-{a}\n    kind: categories\n    categories: [IAB17]\n  - id: viewers-{a}\n    kind: views\n    products: [B0TENT0001]\n"
        );
        let _ = writeln!(y, "creatives:");
        for (i, (w, h)) in SIZES.iter().enumerate() {
            let _ = writeln!(
                y,
                "  - id: cr-{a}-{i}\n    format: display\n    size: {w}x{h}\n    image_url: https://cdn.adv-{a}.example/{w}x{h}.png\n    click_url: https://adv-{a}.example/"
            );
        }
        let _ = writeln!(
            y,
            "\norders:\n  - id: order-{a}\n    service: self_service\n    budget: 100000000.00\n    flight: {{ start: {start}, end: {end} }}\n    line_items:"
        );
        for l in 0..per_adv.min(line_items - a * per_adv) {
            let cpm = 50 + rng.below(1950);
            let c1 = COUNTRIES[rng.below(COUNTRIES.len())];
            let c2 = COUNTRIES[rng.below(COUNTRIES.len())];
            let d = DEVICES[rng.below(DEVICES.len())];
            let s1 = rng.below(SIZES.len());
            let s2 = rng.below(SIZES.len());
            let _ = writeln!(
                y,
                "      - id: li-{a}-{l}\n        media: display\n        cpm: {}.{:02}\n        budget: {{ daily: 1000000.00 }}\n        targeting:\n          countries: [{c1}, {c2}]\n          devices: [{d}, desktop]",
                cpm / 100,
                cpm % 100
            );
            if rng.below(20) == 0 {
                let _ = writeln!(y, "          keywords:\n            broad: [camping tent]");
            }
            if rng.below(10) == 0 {
                let _ = writeln!(
                    y,
                    "        audiences: {{ any_of: [pages-{a}, viewers-{a}] }}"
                );
            }
            // One creative where both draws agree: a creative listed twice
            // is warned of at load.
            if s1 == s2 {
                let _ = writeln!(y, "        creatives: [cr-{a}-{s1}]");
            } else {
                let _ = writeln!(y, "        creatives: [cr-{a}-{s1}, cr-{a}-{s2}]");
            }
        }
        files.push((format!("adv-{a}.yaml").into(), y));
    }
    files
}

/// `users` shoppers, one audience event each (views of a handful of
/// products, and every tenth an interest), as JSON lines dated the week
/// before 2026-11-25: the shape of a retailer's pixel feed.
pub fn generated_events(users: usize) -> String {
    let mut rng = Lcg(7);
    let mut out = String::with_capacity(users * 96);
    for u in 0..users {
        let day = 18 + rng.below(7);
        let hour = rng.below(24);
        if u % 10 == 9 {
            let _ = writeln!(
                out,
                r#"{{"user":"user-{u}","event":"interest","interest":"topic-{}","at":"2026-11-{day:02}T{hour:02}:00:00Z"}}"#,
                rng.below(50)
            );
        } else {
            let _ = writeln!(
                out,
                r#"{{"user":"user-{u}","event":"view","product":"B0PROD{:04}","at":"2026-11-{day:02}T{hour:02}:00:00Z"}}"#,
                rng.below(5000)
            );
        }
    }
    out
}

/// The `i`th member id of a generated list: 64 hex digits, the shape of
/// a SHA-256 of an e-mail address (not a real digest; only the shape and
/// spread matter to the store).
pub fn member_id(i: u64) -> String {
    // splitmix64: four well-spread words from one counter.
    let mut x = i.wrapping_mul(4).wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.push_str(&format!("{z:016x}"));
    }
    out
}
