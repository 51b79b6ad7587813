//! Helpers shared by the integration tests: a valid base file, textual edits
//! of it, and positions computed from the text so tests don't hard-code
//! line numbers that drift when the base changes.

#![allow(dead_code)]
// each test binary uses a different subset
// Shared by the test binaries of this crate, not a public API.
#![allow(unreachable_pub)]

use std::path::PathBuf;

use config::{Config, Problem, Problems};

/// A valid file that sits exactly on every boundary the rules allow: the
/// minimum daily budget, the managed-service minimums, a one-day flight, a
/// line item budget equal to its order's, a frequency cap of 1 per 1 hour,
/// every OS, a daypart slot of the whole day and one of a single minute.
pub const BASE: &str = "\
advertiser:
  id: acme
  name: ACME
  domains: [acme.example]
  categories: [IAB17-18]

audiences:
  - id: viewers
    kind: views
    products: [P1]
    lookback_days: 365
  - id: fans
    kind: interests
    interests: [hiking]
    recency_days: 1
  - id: pages
    kind: products
    products: [P1]
  - id: sections
    kind: categories
    categories: [IAB17]

creatives:
  - id: banner
    format: display
    size: 300x250
    image_url: https://cdn.acme.example/b.jpg
    click_url: https://acme.example/
  - id: spot
    format: video
    duration_s: 15
    media:
      - url: https://cdn.acme.example/v.mp4
        mime: video/mp4
        width: 1920
        height: 1080
        bitrate_kbps: 4500
    click_url: https://acme.example/
    companions: [banner]
    companion_required: true
  - id: jingle
    format: audio
    duration_s: 30
    media:
      - url: http://cdn.acme.example/a.mp3
        mime: audio/mpeg
        bitrate_kbps: 128
    click_url: https://acme.example/

orders:
  - id: managed-order
    service: managed
    budget: 50000.00
    flight: { start: 2026-11-01, end: 2026-11-30 }
    line_items:
      - id: li-display
        media: display
        cpm: 6.00
        budget: { daily: 1.00 }
        frequency_cap: { impressions: 1, per_hours: 1 }
        audiences: { any_of: [viewers, pages], none_of: [fans] }
        targeting:
          countries: [USA, CAN]
          regions: [US-CO, CA-BC, US-DC]
          cities: [Denver, São Paulo]
          os: [ios, android, windows, macos, linux, chromeos, tvos, roku, tizen, webos, fireos]
          sites: { allow: [news.example, Blog.Example], block: [spam.example] }
          apps: { allow: [com.example.app, '123456789'] }
          publishers: { block: [pub-2] }
          dayparts:
            slots:
              - { days: [mon, tue, wed, thu, fri], from: 00:00, to: '24:00' }
              - { days: [sat, sun], from: '10:00', to: '10:01' }
          devices: [desktop, phone, tablet, ctv, connected_device, set_top_box, dooh]
          keywords: { broad: [tents], negative: [free] }
          deals: [DEAL-1]
        creatives: [banner]
      - id: li-video
        media: video
        cpm: 20.00
        budget: { lifetime: 50000.00 }
        creatives: [spot]
  - id: audio-order
    service: managed
    budget: 25000
    flight: { start: 2026-11-01, end: 2026-11-01 }
    line_items:
      - id: li-audio
        media: audio
        cpm: 10
        budget: { lifetime: 25000 }
        audiences: { none_of: [sections] }
        creatives: [jingle]
  - id: self-order
    service: self_service
    budget: 0.000001
    flight: { start: 2026-11-01, end: 2026-12-31 }
    line_items:
      - id: li-self
        media: display
        cpm: 0.000001
        budget: { lifetime: 0.000001 }
        creatives: [banner]
";

/// A second valid advertiser, for checks across files.
pub const OTHER: &str = "\
advertiser:
  id: northwind
  name: Northwind
  domains: [northwind.example]

audiences:
  - id: readers
    kind: interests
    interests: [mystery]

creatives:
  - id: nw-banner
    format: display
    size: 320x50
    image_url: https://cdn.northwind.example/b.png
    click_url: https://northwind.example/

orders:
  - id: nw-order
    service: self_service
    budget: 900.00
    flight: { start: 2026-11-15, end: 2026-12-15 }
    line_items:
      - id: nw-line
        media: display
        cpm: 1.80
        budget: { daily: 30.00 }
        creatives: [nw-banner]
";

/// `text` with the single occurrence of `from` replaced by `to`.
pub fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur exactly once in the text being edited"
    );
    text.replacen(from, to, 1)
}

/// 1-based line and character column of `target` inside the single
/// occurrence of `context` in `text`.
pub fn at(text: &str, context: &str, target: &str) -> (u64, u64) {
    assert_eq!(
        text.matches(context).count(),
        1,
        "{context:?} must occur exactly once"
    );
    let start = text.find(context).expect("counted above");
    let offset = start + context.find(target).expect("target inside context");
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() as u64 + 1;
    (line, column)
}

pub fn load(files: &[(&str, &str)]) -> Result<Config, Problems> {
    let files: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), (*text).to_owned()))
        .collect();
    config::load_files(&files)
}

pub fn problems(files: &[(&str, &str)]) -> Vec<Problem> {
    match load(files) {
        Ok(_) => panic!("expected problems, the config loaded"),
        Err(problems) => problems.0,
    }
}

/// The only problem of a single file named `a.yaml`.
pub fn only_problem(text: &str) -> Problem {
    let found = problems(&[("a.yaml", text)]);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one problem, got:\n{}",
        Problems(found.clone())
    );
    found.into_iter().next().expect("length checked")
}

/// Asserts the single problem of `text` is at `pos` and its message is `message`.
pub fn assert_problem(text: &str, pos: (u64, u64), message: &str) {
    let p = only_problem(text);
    assert_eq!((p.line, p.column), pos, "position of: {}", p.message);
    assert_eq!(p.message, message);
}

pub fn assert_loads(files: &[(&str, &str)]) -> Config {
    match load(files) {
        Ok(config) => config,
        Err(problems) => panic!("expected no problems, got:\n{problems}"),
    }
}

/// An advertiser with one native creative (every part, attributes given
/// out of order and repeated) and a native line item.
pub const NATIVE: &str = "\
advertiser:
  id: outfitter
  name: Outfitter
  domains: [outfitter.example]

creatives:
  - id: tent-ad
    format: native
    title: Two-person tent
    description: Light, quick to pitch, dry in a storm.
    sponsored_by: Outfitter
    image: { url: https://cdn.outfitter.example/tent.jpg, w: 1200, h: 627 }
    icon: { url: https://cdn.outfitter.example/logo.png, w: 128, h: 128 }
    cta: Shop now
    price: $249.00
    attributes: [6, 1, 6]
    click_url: https://outfitter.example/tent

orders:
  - id: native-order
    service: self_service
    budget: 500
    flight: { start: 2026-11-01, end: 2026-11-30 }
    line_items:
      - id: native-line
        media: native
        cpm: 3.50
        budget: { daily: 20 }
        creatives: [tent-ad]
";
