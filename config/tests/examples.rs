//! The format by example (the spec's example files, kept unchanged in
//! testdata/config/spec-example) must load unchanged, with zero problems,
//! into exactly these values; the shipped examples/config is the same
//! advertisers with flights running for years, plus an exchange and rates.

use std::path::Path;

use config::{
    AudienceKind, Budget, Config, CreativeKind, Date, Device, Flight, FrequencyCap, Keywords,
    Media, MediaFile, Micros, Service,
};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../testdata/config/spec-example"
);
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/config");

fn load() -> Config {
    match config::load_dir(Path::new(DIR)) {
        Ok(config) => config,
        Err(problems) => panic!("the examples must load cleanly:\n{problems}"),
    }
}

fn date(s: &str) -> Date {
    Date::parse(s).expect("test date")
}

#[test]
fn examples_load_with_zero_problems_in_path_order() {
    let config = load();
    let ids: Vec<&str> = config.advertisers.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["acme-outdoor", "northwind-books"]);
    assert_eq!(
        config.summary().to_string(),
        "2 advertisers, 3 orders, 5 line items, 7 creatives, 5 audiences"
    );
    assert!(config.advertisers[0]
        .file
        .ends_with("spec-example/acme-outdoor.yaml"));
    assert!(config.advertisers[0].file.starts_with(DIR));
}

#[test]
fn acme_advertiser_and_audiences() {
    let config = load();
    let acme = &config.advertisers[0];
    assert_eq!(acme.name, "ACME Outdoor Gear");
    assert_eq!(acme.domains, ["acme-outdoor.example"]);
    assert_eq!(acme.categories, ["IAB17-18"]);

    let kinds: Vec<(&str, &AudienceKind)> = acme
        .audiences
        .iter()
        .map(|a| (a.id.as_str(), &a.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "tent-viewers",
                &AudienceKind::Views {
                    products: vec!["B0TENT0001".into(), "B0TENT0002".into()],
                    lookback_days: 30,
                    own: vec![
                        "acme-outdoor\u{1f}B0TENT0001".into(),
                        "acme-outdoor\u{1f}B0TENT0002".into()
                    ],
                }
            ),
            (
                "hikers",
                &AudienceKind::Interests {
                    interests: vec!["hiking".into(), "camping".into()],
                    // Not written in the file: the default.
                    recency_days: 90,
                }
            ),
            (
                "tent-pages",
                &AudienceKind::Products {
                    products: vec!["B0TENT0001".into(), "B0COMPET01".into()],
                }
            ),
            (
                "outdoor-pages",
                &AudienceKind::Categories {
                    categories: vec!["IAB17-18".into(), "IAB17-20".into()],
                }
            ),
        ]
    );
}

#[test]
fn acme_creatives() {
    let config = load();
    let creatives = &config.advertisers[0].creatives;
    let ids: Vec<&str> = creatives.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "tent-banner-300x250",
            "tent-banner-728x90",
            "tent-video-15s",
            "tent-audio-30s",
            "tent-companion-640x640"
        ]
    );
    assert_eq!(
        creatives[1].kind,
        CreativeKind::Display {
            w: 728,
            h: 90,
            image_url: "https://cdn.acme-outdoor.example/tent-728x90.jpg".into()
        }
    );
    assert_eq!(
        creatives[1].click_url,
        "https://www.acme-outdoor.example/tents"
    );

    let video = &creatives[2];
    assert_eq!(video.media(), Media::Video);
    assert_eq!(video.companions, ["tent-banner-300x250"]);
    assert!(!video.companion_required);
    let CreativeKind::Video { duration_s, media } = &video.kind else {
        panic!("tent-video-15s is a video: {:?}", video.kind);
    };
    assert_eq!(*duration_s, 15);
    assert_eq!(
        media[0],
        MediaFile {
            url: "https://cdn.acme-outdoor.example/tent-15s-1080.mp4".into(),
            mime: "video/mp4".into(),
            width: Some(1920),
            height: Some(1080),
            bitrate_kbps: Some(4500),
        }
    );
    assert_eq!((media[1].width, media[1].height), (Some(854), Some(480)));

    let audio = &creatives[3];
    assert_eq!(audio.media(), Media::Audio);
    assert_eq!(audio.companions, ["tent-companion-640x640"]);
    assert_eq!(
        audio.kind,
        CreativeKind::Audio {
            duration_s: 30,
            media: vec![MediaFile {
                url: "https://cdn.acme-outdoor.example/tent-30s.mp3".into(),
                mime: "audio/mpeg".into(),
                width: None,
                height: None,
                bitrate_kbps: Some(128),
            }],
        }
    );
    assert_eq!(creatives[4].media(), Media::Display);
}

#[test]
fn acme_orders_and_line_items() {
    let config = load();
    let orders = &config.advertisers[0].orders;
    assert_eq!(orders.len(), 2);

    let q4 = &orders[0];
    assert_eq!(q4.id, "acme-q4-managed");
    assert_eq!(q4.service, Service::Managed);
    assert_eq!(q4.budget, Micros(60_000_000_000));
    assert_eq!(
        q4.flight,
        Flight {
            start: date("2026-11-01"),
            end: date("2026-12-31")
        }
    );

    let display = &q4.line_items[0];
    assert_eq!(display.id, "tent-remarketing-display");
    assert_eq!(display.media, Media::Display);
    assert_eq!(display.cpm, Micros(6_000_000));
    assert_eq!(display.budget, Budget::Daily(Micros(800_000_000)));
    assert_eq!(
        display.frequency_cap,
        Some(FrequencyCap {
            impressions: 3,
            per_hours: 24
        })
    );
    let rule = display.audiences.as_ref().expect("audience rule");
    assert_eq!(rule.any_of, ["tent-viewers", "tent-pages"]);
    assert!(rule.none_of.is_empty());
    assert_eq!(display.targeting.countries, ["USA", "CAN"]);
    assert_eq!(
        display.targeting.devices,
        [Device::Desktop, Device::Phone, Device::Tablet]
    );
    assert_eq!(display.targeting.keywords, None);
    assert!(display.targeting.deals.is_empty());
    assert_eq!(
        display.creatives,
        ["tent-banner-300x250", "tent-banner-728x90"]
    );

    let video = &q4.line_items[1];
    assert_eq!(video.media, Media::Video);
    assert_eq!(video.cpm, Micros(22_000_000));
    assert_eq!(video.budget, Budget::Lifetime(Micros(30_000_000_000)));
    assert_eq!(video.frequency_cap, None);
    assert_eq!(
        video.audiences.as_ref().map(|r| r.any_of.clone()),
        Some(vec!["hikers".to_owned(), "outdoor-pages".to_owned()])
    );
    assert_eq!(
        video.targeting.devices,
        [Device::Ctv, Device::Desktop, Device::Phone, Device::Tablet]
    );

    let audio_order = &orders[1];
    assert_eq!(audio_order.budget, Micros::from_units(25_000));
    let audio = &audio_order.line_items[0];
    assert_eq!(audio.media, Media::Audio);
    assert_eq!(audio.cpm, Micros(12_000_000));
    assert_eq!(audio.budget, Budget::Lifetime(Micros::from_units(25_000)));
    // No targeting key: no restriction.
    assert_eq!(audio.targeting, Default::default());
}

#[test]
fn northwind_keywords_deals_and_self_service() {
    let config = load();
    let nw = &config.advertisers[1];
    assert_eq!(nw.id, "northwind-books");
    assert_eq!(
        nw.audiences[0].kind,
        AudienceKind::Interests {
            interests: vec!["mystery-fiction".into()],
            recency_days: 90
        }
    );
    let order = &nw.orders[0];
    assert_eq!(order.service, Service::SelfService);
    assert_eq!(order.budget, Micros(900_000_000));
    assert_eq!(
        (order.flight.start, order.flight.end),
        (date("2026-11-15"), date("2026-12-15"))
    );

    let readers = &order.line_items[0];
    assert_eq!(readers.cpm, Micros(1_800_000));
    assert_eq!(readers.budget, Budget::Daily(Micros(30_000_000)));
    assert_eq!(
        readers.targeting.keywords,
        Some(Keywords {
            broad: vec!["mystery novel".into()],
            phrase: vec!["new release".into()],
            exact: vec!["thriller books".into()],
            negative: vec!["free ebook".into()],
        })
    );
    assert_eq!(readers.targeting.devices, [Device::Phone, Device::Tablet]);
    assert!(readers.targeting.countries.is_empty());

    let deal = &order.line_items[1];
    assert_eq!(deal.cpm, Micros(3_500_000));
    assert_eq!(deal.budget, Budget::Daily(Micros(20_000_000)));
    assert_eq!(deal.targeting.deals, ["DEAL-NW-PREMIUM-01"]);
    assert_eq!(deal.audiences, None);
    assert_eq!(deal.frequency_cap, None);
    assert_eq!(deal.creatives, ["nw-banner-300x250"]);
}

#[test]
fn example_files_load_the_same_through_load_files() {
    let mut files = Vec::new();
    for name in ["acme-outdoor.yaml", "northwind-books.yaml"] {
        let path = Path::new(DIR).join(name);
        let text = std::fs::read_to_string(&path).expect("example file readable");
        files.push((path, text));
    }
    assert_eq!(config::load_files(&files), Ok(load()));
}

/// The shipped examples: the spec's advertisers exactly, but for flights
/// that run to 2030 (so the README's example still bids next year), plus
/// an exchange profile and currency rates.
#[test]
fn shipped_examples_are_the_spec_with_longer_flights() {
    let shipped = match config::load_dir(Path::new(SHIPPED)) {
        Ok(config) => config,
        Err(problems) => panic!("examples/config must load cleanly:\n{problems}"),
    };
    let spec = load();
    assert_eq!(shipped.advertisers.len(), spec.advertisers.len());
    for (a, b) in shipped.advertisers.iter().zip(&spec.advertisers) {
        assert_eq!(a.orders.len(), b.orders.len());
        for (x, y) in a.orders.iter().zip(&b.orders) {
            assert_eq!(x.flight.start, y.flight.start, "{}", x.id);
            assert!(
                x.flight.end >= date("2030-01-01"),
                "{} ends {}",
                x.id,
                x.flight.end
            );
            let mut x = x.clone();
            x.flight = y.flight;
            assert_eq!(&x, y);
        }
        assert_eq!(
            (&a.id, &a.audiences, &a.creatives),
            (&b.id, &b.audiences, &b.creatives)
        );
    }
    assert_eq!(shipped.exchanges.len(), 1);
    assert_eq!(shipped.exchanges[0].id, "example-exchange");
    assert_eq!(shipped.exchanges[0].price_encryption, None);
    let rates = shipped.currency_rates.expect("example rates");
    assert!(rates.rate("EUR").is_some() && rates.rate("JPY").is_some());
}
