//! `vast_xml` for a 15 s video with two renditions and a 300x250 companion,
//! at VAST 4.2, `vast_json` (the same document written into a JSON string,
//! as a bid response carries it), and the same JSON from the creative's
//! `VastTemplate`, as the bidder writes it. Run: `cargo bench -p creatives
//! --bench vast`.

use std::hint::black_box;

use config::{Creative, CreativeKind, MediaFile};
use creatives::{
    vast_json, vast_xml, Companion, CompanionTemplate, EventUrls, Vast, VastBid, VastTemplate,
    VastVersion,
};
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let video = Creative {
        id: "tent-video-15s".into(),
        at: Default::default(),
        kind: CreativeKind::Video {
            duration_s: 15,
            media: vec![
                MediaFile {
                    url: "https://cdn.acme-outdoor.example/tent-15s-1080.mp4".into(),
                    mime: "video/mp4".into(),
                    width: Some(1920),
                    height: Some(1080),
                    bitrate_kbps: Some(4500),
                },
                MediaFile {
                    url: "https://cdn.acme-outdoor.example/tent-15s-480.mp4".into(),
                    mime: "video/mp4".into(),
                    width: Some(854),
                    height: Some(480),
                    bitrate_kbps: Some(1200),
                },
            ],
        },
        click_url: "https://www.acme-outdoor.example/tents".into(),
        companions: vec!["tent-banner-300x250".into()],
        companion_required: true,
        attributes: vec![],
        language: None,
    };
    let banner = Creative {
        id: "tent-banner-300x250".into(),
        at: Default::default(),
        kind: CreativeKind::Display {
            w: 300,
            h: 250,
            image_url: "https://cdn.acme-outdoor.example/tent-300x250.jpg".into(),
        },
        click_url: "https://www.acme-outdoor.example/tents".into(),
        companions: vec![],
        companion_required: false,
        attributes: vec![],
        language: None,
    };
    let CreativeKind::Video { media, .. } = &video.kind else {
        unreachable!()
    };
    let media: Vec<&MediaFile> = media.iter().collect();
    let notice = "https://bidder.example/notice";
    let bid = "bid-7f3c2a9e-0d41-4c55-9a8e-2b1f6d0c4e11";
    let impression = format!("{notice}/imp?b={bid}&li=tent-ctv-video&p=${{AUCTION_PRICE}}");
    let tracking = format!("{notice}/event?b={bid}&e={{event}}");
    let click = format!("{notice}/click?b={bid}&c=tent-video-15s");
    let companion_click = format!("{notice}/click?b={bid}&c=tent-banner-300x250");
    let vast = Vast {
        version: VastVersion::V4_2,
        ad_id: bid,
        ad_system: "bidder",
        ad_title: "ACME Outdoor Gear: tents (15 s)",
        creative: &video,
        media: &media,
        impression_url: &impression,
        tracking: EventUrls(&|e, out| out.push_str(&tracking.replace("{event}", e))),
        click_tracking_url: Some(&click),
        companion: Some(Companion {
            creative: &banner,
            required: true,
            click_tracking_url: Some(&companion_click),
        }),
    };
    c.bench_function("vast_xml/video+companion/4.2", |b| {
        b.iter(|| vast_xml(black_box(&vast)))
    });
    let mut out = String::with_capacity(8192);
    c.bench_function("vast_json/video+companion/4.2", |b| {
        b.iter(|| {
            out.clear();
            vast_json(black_box(&vast), &mut out);
            black_box(out.len())
        })
    });
    let template = VastTemplate::new(vast.version, vast.ad_system, vast.ad_title, &video);
    let side = CompanionTemplate::new(vast.version, &banner, true);
    let bid_values = VastBid {
        ad_id: bid,
        impression_url: &impression,
        tracking: vast.tracking,
        click_tracking_url: Some(&click),
        renditions: &[0, 1],
        companion: Some((&side, Some(&companion_click))),
        plain_urls: [&impression, &click, &companion_click]
            .iter()
            .all(|u| creatives::url_is_plain(u)),
    };
    c.bench_function("vast_template/video+companion/4.2", |b| {
        b.iter(|| {
            out.clear();
            template.write_json(black_box(&bid_values), &mut out);
            black_box(out.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
