//! Every vendored public request and response must be readable.

use std::borrow::Cow;
use std::fs;
use std::path::Path;

use ortb::{parse_request, BidRequest, BidResponse};

mod common;
use common::{json_files, REQUESTS, RESPONSES};

fn read(name: &str) -> Vec<u8> {
    fs::read(Path::new(REQUESTS).join(name)).unwrap()
}

fn with_request(name: &str, check: impl FnOnce(&BidRequest<'_>)) {
    let body = read(name);
    let req = parse_request(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    check(&req);
}

#[test]
fn all_84_requests_parse_and_validate() {
    let files = json_files(REQUESTS);
    assert_eq!(files.len(), 84, "vendored request count");
    let mut failures = Vec::new();
    for path in &files {
        let body = fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        match parse_request(&body) {
            Err(e) => failures.push(format!("{name}: parse: {e}")),
            Ok(req) => {
                if let Err(e) = req.validate() {
                    failures.push(format!("{name}: validate: {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_responses_deserialize() {
    let files = json_files(RESPONSES);
    assert_eq!(files.len(), 70, "vendored response count");
    let mut failures = Vec::new();
    for path in &files {
        let body = fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        if let Err(e) = serde_json::from_slice::<BidResponse>(&body) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Spot checks of values in particular files.

#[test]
fn mobile_banner_floor_and_device() {
    with_request(
        "iab-ortb2x-2.6md__L1628__6-2-3-example-3-mobile.json",
        |req| {
            let imp = &req.imp[0];
            assert_eq!(imp.bidfloor, 500_000, "bidfloor 0.5");
            assert_eq!(imp.bidfloorcur, "USD", "absent bidfloorcur defaults to USD");
            assert_eq!(
                imp.tagid.as_deref(),
                Some("agltb3B1Yi1pbmNyDQsSBFNpdGUY7fD0FAw")
            );
            assert_eq!(imp.instl, Some(0));
            let banner = imp.banner.as_deref().unwrap();
            assert_eq!((banner.w, banner.h), (Some(728), Some(90)));
            assert_eq!(banner.sizes().collect::<Vec<_>>(), [(728, 90)]);
            assert_eq!(banner.btype, [4]);
            assert_eq!(banner.battr, [14]);
            assert_eq!(banner.api, [3]);
            assert_eq!(banner.pos, Some(1));
            assert_eq!(req.bcat.len(), 5);
            assert_eq!(req.badv, ["apple.com", "go-text.me", "heywire.com"]);
            assert_eq!(req.auction_type(), 2);
            let app = req.app.as_ref().unwrap();
            assert_eq!(app.bundle.as_deref(), Some("12345"));
            assert_eq!(
                app.publisher.as_ref().unwrap().name.as_deref(),
                Some("yahoo")
            );
            let device = req.device.as_ref().unwrap();
            assert_eq!(device.devicetype, Some(1));
            assert_eq!(device.connectiontype, Some(3));
            assert_eq!(device.carrier.as_deref(), Some("VERIZON"));
            assert_eq!(device.dnt, Some(0));
        },
    );
}

#[test]
fn strings_are_borrowed_from_the_body() {
    with_request(
        "iab-ortb2x-2.6md__L1628__6-2-3-example-3-mobile.json",
        |req| {
            assert!(matches!(req.id, Cow::Borrowed("IxexyLDIIk")));
            assert!(matches!(req.imp[0].id, Cow::Borrowed("1")));
            assert!(matches!(req.bcat[0], Cow::Borrowed("IAB25")));
            let device = req.device.as_ref().unwrap();
            assert!(matches!(device.ua, Some(Cow::Borrowed(_))));
        },
    );
}

#[test]
fn dooh_banner_formats_deals_and_quirks() {
    with_request(
        "iab-ortb2x-impl__L1228__7-9-6-1-dooh-banner-bid-request.json",
        |req| {
            let imp = &req.imp[0];
            assert_eq!(imp.bidfloor, 5_000_000);
            assert_eq!(imp.bidfloorcur, "GBP");
            assert_eq!(imp.exp, Some(360));
            let banner = imp.banner.as_deref().unwrap();
            let formats: Vec<_> = banner.format.iter().map(|f| (f.w, f.h)).collect();
            assert_eq!(formats, [(Some(1080), Some(1920)), (Some(720), Some(1366))]);
            assert_eq!(
                banner.sizes().collect::<Vec<_>>(),
                [(1080, 1920), (720, 1366)]
            );
            let pmp = imp.pmp.as_ref().unwrap();
            assert_eq!(pmp.private_auction, Some(0));
            let deals: Vec<_> = pmp
                .deals
                .iter()
                .map(|d| (d.id.as_ref(), d.bidfloor, d.at))
                .collect();
            assert_eq!(
                deals,
                [
                    ("123", 4_500_000, Some(1)),
                    ("333", 3_000_000, Some(1)),
                    ("444", 2_000_000, Some(1))
                ]
            );
            assert_eq!(pmp.deals[0].bidfloorcur, "USD");
            let device = req.device.as_ref().unwrap();
            assert_eq!(
                device.devicetype,
                Some(8),
                "DOOH device type beyond the 2.5 list"
            );
            let geo = device.geo.as_ref().unwrap();
            assert_eq!(geo.lat, Some(0.0001));
            assert_eq!(geo.lon, None);
            assert_eq!(geo.longitude(), Some(-0.1235), "`long` typo is read");
            assert!(req.dooh.is_some());
            assert_eq!(req.cur, ["GBP"]);
        },
    );
}

#[test]
fn pmp_deal_floors() {
    with_request(
        "iab-ortb2x-2.6md__L1851__6-2-5-example-5-pmp-with-direct-deal.json",
        |req| {
            let pmp = req.imp[0].pmp.as_ref().unwrap();
            assert_eq!(pmp.private_auction, Some(1));
            let deals: Vec<_> = pmp
                .deals
                .iter()
                .map(|d| (d.id.as_ref(), d.bidfloor))
                .collect();
            assert_eq!(
                deals,
                [
                    ("AB-Agency1-0001", 2_500_000),
                    ("XY-Agency2-0001", 2_000_000)
                ]
            );
            assert_eq!(pmp.deals[0].wseat, ["Agency1"]);
        },
    );
    with_request(
        "pbs__rtbhouse__pmp-removal-test__pbs-incoming-request.json",
        |req| {
            let deal = &req.imp[0].pmp.as_ref().unwrap().deals[0];
            assert_eq!(
                (deal.id.as_ref(), deal.bidfloor, deal.bidfloorcur.as_ref()),
                ("deal-id-1", 5_000_000, "USD")
            );
        },
    );
    with_request("pbs__endpoints__site__pbs-incoming-request.json", |req| {
        let deal = &req.imp[0].pmp.as_ref().unwrap().deals[0];
        assert_eq!(
            (deal.id.as_ref(), deal.bidfloor),
            ("some-deal-id", 0),
            "absent deal floor is 0"
        );
    });
}

#[test]
fn video_plcmt_versus_placement() {
    let video = |req: &BidRequest<'_>| {
        let v = req.imp[0].video.as_deref().unwrap();
        (v.placement, v.plcmt)
    };
    with_request("video-ctv-instream-companion.json", |req| {
        assert_eq!(video(req), (None, Some(1)), "2.6 plcmt only");
    });
    with_request(
        "pbs__madvertise__simple-video__call0-bidder-request.json",
        |req| {
            assert_eq!(video(req), (Some(5), None), "2.5 placement only");
        },
    );
    with_request(
        "pbs__thetradedesk__ortb_response_video_parsing__call0-bidder-request.json",
        |req| assert_eq!(video(req), (Some(3), Some(4)), "both, kept apart"),
    );
}

#[test]
fn ctv_video_pod_and_companion() {
    with_request("video-ctv-instream-companion.json", |req| {
        let imp = &req.imp[0];
        assert_eq!(imp.bidfloor, 15_000_000);
        let v = imp.video.as_deref().unwrap();
        assert_eq!(v.mimes, ["video/mp4"]);
        assert_eq!(v.protocols, [3, 7, 11, 12]);
        assert_eq!((v.w, v.h), (Some(1920), Some(1080)));
        assert_eq!((v.minduration, v.maxduration), (Some(6), Some(30)));
        assert_eq!(v.podid.as_deref(), Some("pod-1"));
        assert_eq!(v.slotinpod, Some(1));
        assert_eq!(v.companiontype, [1]);
        assert_eq!(v.companionad.len(), 1);
        assert_eq!(
            (v.companionad[0].w, v.companionad[0].h),
            (Some(300), Some(250))
        );
        let app = req.app.as_ref().unwrap();
        let content = app.content.as_ref().unwrap();
        assert_eq!(content.len, Some(1800));
        assert_eq!(content.title.as_deref(), Some("Mountain Trails S2E4"));
        assert_eq!(req.device.as_ref().unwrap().devicetype, Some(3));
        let source = req.source.as_ref().unwrap();
        let schain = source.schain().unwrap();
        assert_eq!(schain.complete, Some(1));
        assert_eq!(schain.nodes[0].asi.as_deref(), Some("ssp.example"));
        assert_eq!(schain.nodes[0].hp, Some(1));
    });
}

#[test]
fn audio_with_companion_banners() {
    with_request("audio-music-stream-companion.json", |req| {
        let imp = &req.imp[0];
        assert_eq!(imp.bidfloor, 4_500_000);
        assert!(imp.banner.is_none() && imp.video.is_none());
        let audio = imp.audio.as_deref().unwrap();
        assert_eq!(audio.mimes, ["audio/mpeg", "audio/mp4"]);
        assert_eq!(audio.protocols, [2, 3, 7, 8]);
        assert_eq!((audio.minduration, audio.maxduration), (Some(10), Some(30)));
        assert_eq!(
            (audio.feed, audio.stitched, audio.nvol),
            (Some(1), Some(1), Some(1))
        );
        assert_eq!(audio.maxseq, Some(1));
        assert_eq!(audio.companiontype, [1]);
        let sizes: Vec<_> = audio
            .companionad
            .iter()
            .map(|b| (b.id.as_deref(), b.w, b.h))
            .collect();
        assert_eq!(sizes, [(Some("c1"), Some(640), Some(640))]);
        assert_eq!(audio.companionad[0].mimes, ["image/jpeg", "image/png"]);
        let app = req.app.as_ref().unwrap();
        assert_eq!(
            app.content.as_ref().unwrap().genre.as_deref(),
            Some("indie rock")
        );
        let device = req.device.as_ref().unwrap();
        assert_eq!(device.geo.as_ref().unwrap().utcoffset, Some(-480));
        assert_eq!(device.lmt, Some(0));
        let regs = req.regs.as_ref().unwrap();
        assert_eq!(regs.gdpr(), Some(0), "2.6 regs.gdpr");
        assert!(!regs.is_coppa());
        assert_eq!(
            req.user.as_ref().unwrap().buyeruid.as_deref(),
            Some("u-1004")
        );
    });
}

#[test]
fn prebid_audio_requests() {
    with_request(
        "pbs__improvedigital__audio__call0-bidder-request.json",
        |req| {
            assert!(req.imp[0].audio.is_some());
            let regs = req.regs.as_ref().unwrap();
            assert_eq!(regs.gdpr(), Some(0));
            assert!(req.user.as_ref().unwrap().consent().is_some());
            let schain = req.source.as_ref().unwrap().schain().unwrap();
            assert_eq!(schain.nodes[0].sid.as_deref(), Some("1234abc"));
        },
    );
}

#[test]
fn gdpr_and_consent_in_the_2_5_ext_form() {
    with_request(
        "pbs__madvertise__simple-video__call0-bidder-request.json",
        |req| {
            let regs = req.regs.as_ref().unwrap();
            assert_eq!(regs.gdpr, None, "no 2.6 field in this file");
            assert_eq!(regs.gdpr(), Some(1), "read from regs.ext.gdpr");
            let user = req.user.as_ref().unwrap();
            assert_eq!(user.consent, None);
            let consent = user.consent().unwrap();
            assert!(
                consent.starts_with("CO-X2XiO_eyUoAsAxBFRBECsAP_"),
                "{consent}"
            );
            assert!(
                matches!(consent, Cow::Borrowed(_)),
                "ext strings still borrow"
            );
            assert_eq!(req.imp[0].bidfloor, 3_000_000);
            assert_eq!(req.imp[0].bidfloorcur, "EUR");
            assert_eq!(req.cur, ["EUR"]);
        },
    );
    with_request(
        "pbs__amx__display-multiple__call0-bidder-request.json",
        |req| {
            let regs = req.regs.as_ref().unwrap();
            assert_eq!(regs.gdpr(), Some(0));
            assert_eq!(regs.us_privacy().as_deref(), Some("1---"));
            let user = req.user.as_ref().unwrap();
            assert!(user.eids.is_empty());
            let eids = user.eids();
            let sources: Vec<_> = eids.iter().map(|e| e.source.as_deref().unwrap()).collect();
            assert_eq!(sources, ["amxid", "adserver.org"]);
            assert_eq!(eids[0].uids[0].atype, Some(1));
            let schain = req.source.as_ref().unwrap().schain().unwrap();
            assert!(matches!(schain, Cow::Owned(_)), "came from source.ext");
            assert_eq!(schain.nodes[0].asi.as_deref(), Some("amxrtb.com"));
        },
    );
    with_request(
        "pbs__smaato__simple-banner__call0-bidder-request.json",
        |req| {
            let regs = req.regs.as_ref().unwrap();
            assert_eq!(regs.gpp().as_deref(), Some("gppString"));
            assert_eq!(&*regs.gpp_sid(), [7]);
            assert!(regs.is_coppa());
        },
    );
}

#[test]
fn gdpr_and_consent_in_the_2_6_form() {
    with_request(
        "pbs__endpoints__ortb-2.6-to-2.5-downconvert__outgoing-to-rubicon.json",
        |req| {
            let regs = req.regs.as_ref().unwrap();
            assert_eq!(regs.gdpr, Some(1));
            assert_eq!(regs.gdpr(), Some(1));
            assert_eq!(regs.us_privacy().as_deref(), Some("1YYY"));
            let user = req.user.as_ref().unwrap();
            assert_eq!(user.consent().as_deref(), Some("some-consent-string"));
            let eids = user.eids();
            assert!(matches!(eids, Cow::Borrowed(_)));
            assert_eq!(eids[0].source.as_deref(), Some("source"));
            assert_eq!(eids[0].uids.len(), 2);
            let schain = req.source.as_ref().unwrap().schain().unwrap();
            assert!(matches!(schain, Cow::Borrowed(_)));
            assert_eq!(schain.ver.as_deref(), Some("2.0"));
            assert_eq!(schain.nodes[0].rid.as_deref(), Some("123-456-7890"));
        },
    );
    with_request(
        "pbs__exchangetest__multi-bids-different-ortb-versions__outgoing-to-appnexus.json",
        |req| {
            let regs = req.regs.as_ref().unwrap();
            assert_eq!(regs.gdpr(), Some(1));
            assert!(regs.gpp().unwrap().starts_with("DBACNYA~"));
        },
    );
}

#[test]
fn site_pagecat_and_segtax() {
    with_request(
        "pbs__rubicon__simple-video__call0-bidder-request.json",
        |req| {
            let site = req.site.as_ref().unwrap();
            assert_eq!(site.pagecat, ["val1", "val2"]);
            assert!(req.app.is_some(), "this file carries both site and app");
            let data = &req.user.as_ref().unwrap().data;
            let segtax: Vec<_> = data.iter().map(|d| d.segtax()).collect();
            // segtax 4, "someValue" (unusable, so None) and "4" (string-typed).
            assert_eq!(&segtax[..3], [Some(4), None, Some(4)]);
            assert_eq!(data[0].segment[0].id.as_deref(), Some("idToCopy"));
        },
    );
}

#[test]
fn content_keywords_and_video_typo() {
    with_request("bsm__breq.banner.json", |req| {
        let content = req.site.as_ref().unwrap().content.as_ref().unwrap();
        assert_eq!(
            content.keywords.as_deref(),
            Some("keyword a,keyword b,keyword c")
        );
    });
    with_request(
        "iab-ortb2x-2.6md__L1712__6-2-4-example-4-video.json",
        |req| {
            let site = req.site.as_ref().unwrap();
            assert_eq!(
                site.r#ref.as_deref(),
                Some("http://referringsite.com/referringpage.htm")
            );
            let content = site.content.as_ref().unwrap();
            assert_eq!(
                content.keywords.as_deref(),
                Some("keyword-a,keyword-b,keyword-c")
            );
            assert_eq!(content.episode, Some(23));
            assert_eq!(content.season.as_deref(), Some("2"));
            assert_eq!(req.imp[0].bidfloor, 30_000);
            let v = req.imp[0].video.as_deref().unwrap();
            assert!(v.api.is_empty());
            assert_eq!(v.apis, [1, 2]);
            assert_eq!(v.api_frameworks(), [1, 2], "`apis` typo is read");
            let companions: Vec<_> = v.companionad.iter().map(|b| (b.w, b.h)).collect();
            assert_eq!(companions, [(Some(300), Some(250)), (Some(728), Some(90))]);
            assert_eq!(v.companionad[0].battr, [13, 14]);
            assert_eq!(v.playbackmethod, [1, 3]);
            assert_eq!(v.delivery, [2]);
            assert_eq!(v.boxingallowed, Some(1));
        },
    );
    with_request("openrtb2x-v2_5__example4_video.json", |req| {
        let v = req.imp[0].video.as_deref().unwrap();
        assert_eq!(v.api, [1, 2]);
        assert_eq!(v.api_frameworks(), [1, 2]);
    });
}

#[test]
fn upstream_quirks_are_tolerated() {
    with_request("pbs__kargo__video__call0-bidder-request.json", |req| {
        assert!(
            req.imp[0].video.as_deref().unwrap().mimes.is_empty(),
            "mimes: null"
        );
    });
    with_request(
        "pbs__mediasquare__multi-format__pbs-incoming-request.json",
        |req| {
            let imp = &req.imp[2];
            assert!(
                imp.banner.is_none() && imp.video.is_none(),
                "`null` media objects are absent"
            );
            assert!(imp.native.is_some());
            assert!(req.imp[3].video.as_deref().unwrap().plcmt == Some(1));
        },
    );
    with_request(
        "iab-ortb-protected-audience-support__L182__signaling-interest-group-auction-support.json",
        |req| {
            assert!(
                req.user.is_none(),
                "user nested in site is not the request's user"
            )
        },
    );
    with_request(
        "pbs__tadvertising_blis__banner__call0-bidder-request.json",
        |req| {
            // source.ext is the string "test-ext" here; schain comes from the 2.6 field.
            assert!(req.source.as_ref().unwrap().schain().is_some());
            assert_eq!(req.regs.as_ref().unwrap().gdpr(), Some(0));
        },
    );
    with_request(
        "iab-ortb2x-2.6md__L1555__6-2-2-example-2-expandable-creative.json",
        |req| {
            let data = &req.user.as_ref().unwrap().data;
            assert_eq!(data.len(), 3, "user.data entries with a stray `value`");
        },
    );
}
