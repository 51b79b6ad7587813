use super::*;
use crate::encode::*;
use serde_json::{json, Value};

const VENDOR: u16 = 755;

fn settings() -> PrivacySettings {
    PrivacySettings { vendor_id: VENDOR }
}

/// A minimal valid request with `extra` merged in at the top level, as
/// JSON text through `ortb::parse_request`.
fn check_with(extra: Value, settings: &PrivacySettings) -> Result<(), Restriction> {
    decide_with(extra, settings).map(|_| ())
}

/// [`check_with`], with what [`decide`] allows.
fn decide_with(extra: Value, settings: &PrivacySettings) -> Result<Allowed, Restriction> {
    let mut req = json!({
        "id": "r1",
        "imp": [{ "id": "1", "banner": { "w": 300, "h": 250 } }],
        "site": { "page": "https://news.example/" },
        "device": { "devicetype": 2 },
        "user": { "buyeruid": "u-1" }
    });
    for (k, v) in extra.as_object().expect("an object") {
        req[k] = v.clone();
    }
    let body = req.to_string();
    let parsed = ortb::parse_request(body.as_bytes()).expect("request parses");
    decide(&parsed, settings)
}

fn check(extra: Value) -> Result<(), Restriction> {
    check_with(extra, &settings())
}

// (purposes 1–3, vendors 2, 6, 8 — no purpose 4):
const IAB_EXAMPLE: &str = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA";
// iab_gpp's documentation example (purpose 3 and vendor 755 only):
const PURPOSE_3_ONLY: &str = "CPXuQIAPXuQIAAfKABENB-CgACAAAAAAAAYgF5wAQF5gAAAA.YAAAAAAAAAAA";
// A TCF v1 consent string.
const TCF_V1: &str = "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA";
// GPP sections from iab_gpp's decode tests (tests/data).
const USNAT_OPTED_OUT: &str = "BVVVVVVVVWA";
const USNAT_NOT_APPLICABLE: &str = "BAAAAAAAAQA";
const USNAT_V2_NOT_APPLICABLE: &str = "CAAAAAAAAAWA.Q";
const USCA_OPTED_OUT: &str = "BVVVVVVY";
const USCA_NOT_APPLICABLE: &str = "BAAAAACA";
const USCA_DID_NOT_OPT_OUT_WITH_GPC: &str = "BVqqqqpY.YA";
const USVA_OPTED_OUT: &str = "BVVVVWY";
const USVA_NOT_APPLICABLE: &str = "BAAAABA";
const USCO_OPTED_OUT: &str = "BVVVVVg";

#[test]
fn the_test_encoder_writes_the_iab_example_byte_for_byte() {
    let tc = Tc {
        created: 15_822_430_593,
        cmp: (27, 0, 0),
        vendor_list_version: 15,
        policy_version: 2,
        service_specific: false,
        purposes: vec![1, 2, 3],
        publisher_cc: "AA",
        vendors: vec![2, 6, 8],
        li_vendors: vec![2, 6, 8],
        ..Tc::default()
    };
    assert_eq!(tc.encode(), IAB_EXAMPLE);
}

// ------------------------------------------------------------ labels

#[test]
fn labels_are_distinct_snake_case() {
    let labels: Vec<&str> = Restriction::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(
        labels,
        [
            "coppa",
            "gdpr_no_consent",
            "limit_ad_tracking",
            "us_privacy_opt_out",
            "gpp_opt_out",
            "gpp_unreadable",
            "global_privacy_control"
        ]
    );
    assert_eq!(Restriction::GppOptOut.to_string(), "gpp_opt_out");
    // The metric's cells are indexed by the discriminant.
    for (i, r) in Restriction::ALL.iter().enumerate() {
        assert_eq!(*r as usize, i, "{r}");
    }
    assert_eq!(PrivacySettings::default().vendor_id, UNSET_VENDOR_ID);
}

// ------------------------------------------------------------ plain signals

#[test]
fn no_signal_allows() {
    assert_eq!(check(json!({})), Ok(()));
    assert_eq!(check(json!({ "regs": {} })), Ok(()));
    assert_eq!(
        check(json!({ "regs": { "coppa": 0, "gdpr": 0 }, "device": { "lmt": 0, "dnt": 0 } })),
        Ok(())
    );
}

#[test]
fn coppa() {
    assert_eq!(
        check(json!({ "regs": { "coppa": 1 } })),
        Err(Restriction::Coppa)
    );
    // First found: COPPA before everything else.
    assert_eq!(
        check(
            json!({ "regs": { "coppa": 1, "gdpr": 1, "us_privacy": "1YYN" },
                      "device": { "lmt": 1 } })
        ),
        Err(Restriction::Coppa)
    );
}

#[test]
fn limit_ad_tracking_and_do_not_track() {
    assert_eq!(
        check(json!({ "device": { "lmt": 1 } })),
        Err(Restriction::LimitAdTracking)
    );
    assert_eq!(
        check(json!({ "device": { "dnt": 1 } })),
        Err(Restriction::LimitAdTracking)
    );
    assert_eq!(
        check(json!({ "device": { "lmt": true } })),
        Err(Restriction::LimitAdTracking),
        "a boolean flag is coerced"
    );
    assert_eq!(
        check(json!({ "device": { "lmt": 1 }, "regs": { "gdpr": 1 } })),
        Err(Restriction::LimitAdTracking),
        "checked before the TC string is decoded"
    );
}

/// Global Privacy Control outside a GPP string: the IAB's `regs.ext.gpc`
/// (a string, as the extension writes it, or a number) and `regs.gpc`.
/// Behavioural data was used for a user whose browser said "do not sell
/// or share" (found by the exchange probe).
#[test]
fn global_privacy_control() {
    let gpc = Err(Restriction::GlobalPrivacyControl);
    assert_eq!(check(json!({ "regs": { "ext": { "gpc": "1" } } })), gpc);
    assert_eq!(check(json!({ "regs": { "ext": { "gpc": 1 } } })), gpc);
    assert_eq!(check(json!({ "regs": { "gpc": 1 } })), gpc);
    // With every 2.6 signal at the top level, the extension is still read.
    let all = json!({ "gdpr": 0, "us_privacy": "1NNN",
                      "gpp": gpp(&[(7, USNAT_NOT_APPLICABLE)]), "gpp_sid": [7] });
    let mut regs = all.clone();
    regs["ext"] = json!({ "gpc": "1" });
    assert_eq!(check(json!({ "regs": regs })), gpc);
    for off in [
        json!({ "ext": { "gpc": "0" } }),
        json!({ "gpc": 0 }),
        json!({}),
    ] {
        assert_eq!(check(json!({ "regs": off })), Ok(()), "{off}");
    }
    // A US Privacy opt-out is reported as itself.
    assert_eq!(
        check(json!({ "regs": { "us_privacy": "1YYN", "ext": { "gpc": "1" } } })),
        Err(Restriction::UsPrivacyOptOut)
    );
}

/// A GPP string that does not decode, while `gpp_sid` says it carries a
/// US section or one this crate cannot read (or lists none: then every
/// section applies), may hold an opt-out: not read is not "no opt-out", as
/// for one too long to read. With only a section that holds no opt-out
/// listed (TCF Canada) it is ignored.
#[test]
fn an_unreadable_gpp_string_with_a_us_section_listed_opts_out() {
    for sid in [
        json!([7]),
        json!([8, 2]),
        json!([6]),
        json!([24]),
        json!([99]),
        json!([]),
    ] {
        assert_eq!(
            check(json!({ "regs": { "gpp": "garbage", "gpp_sid": sid } })),
            Err(Restriction::GppUnreadable),
            "{sid}"
        );
    }
    assert_eq!(
        check(json!({ "regs": { "gpp": "garbage", "gpp_sid": [5] } })),
        Ok(()),
        "only a section that holds no opt-out"
    );
    // Its TCF section applies but cannot be read: no consent.
    assert_eq!(
        check(json!({ "regs": { "gpp": "garbage", "gpp_sid": [2] },
                      "user": { "consent": Tc::granting(&[VENDOR]).encode() } })),
        Err(Restriction::GdprNoConsent)
    );
}

#[test]
fn us_privacy_string() {
    let usp = |s: &str| check(json!({ "regs": { "us_privacy": s } }));
    assert_eq!(usp("1YYN"), Err(Restriction::UsPrivacyOptOut));
    assert_eq!(usp("1NYY"), Err(Restriction::UsPrivacyOptOut));
    assert_eq!(usp("1yyn"), Err(Restriction::UsPrivacyOptOut));
    assert_eq!(usp("1YNN"), Ok(()));
    assert_eq!(usp("1---"), Ok(()));
    // White space around it is not part of it.
    assert_eq!(usp(" 1YYN "), Err(Restriction::UsPrivacyOptOut));
    assert_eq!(usp("1YNN\n"), Ok(()));
    // Empty: no signal, as exchanges send it.
    assert_eq!(usp(""), Ok(()));
    assert_eq!(usp("  "), Ok(()));
    // Anything else unreadable may be an opt-out: taken as one.
    for s in [
        "1YY", "1YYNN", "2YYN", "YYN1", "1XYN", "1Y?N", "zzzz", "1NNNN",
    ] {
        assert_eq!(usp(s), Err(Restriction::UsPrivacyOptOut), "{s:?}");
    }
    // 2.5 location.
    assert_eq!(
        check(json!({ "regs": { "ext": { "us_privacy": "1YYN" } } })),
        Err(Restriction::UsPrivacyOptOut)
    );
}

/// A 2.6 field that allows does not hide its 2.5 copy in `regs.ext` that
/// restricts: the stricter of the two holds, whichever place it is in.
#[test]
fn the_stricter_of_a_signal_and_its_2_5_copy_holds() {
    let cases = [
        (
            json!({ "gdpr": 0, "ext": { "gdpr": 1 } }),
            Err(Restriction::GdprNoConsent),
        ),
        (
            json!({ "gdpr": 1, "ext": { "gdpr": 0 } }),
            Err(Restriction::GdprNoConsent),
        ),
        (
            json!({ "us_privacy": "1YNN", "ext": { "us_privacy": "1YYN" } }),
            Err(Restriction::UsPrivacyOptOut),
        ),
        (
            json!({ "us_privacy": "1YYN", "ext": { "us_privacy": "1YNN" } }),
            Err(Restriction::UsPrivacyOptOut),
        ),
        (
            json!({ "gpc": 0, "ext": { "gpc": "1" } }),
            Err(Restriction::GlobalPrivacyControl),
        ),
        (
            json!({ "gpp": "", "ext": { "gpp": "garbage", "gpp_sid": [7] } }),
            Err(Restriction::GppUnreadable),
        ),
        (
            json!({ "gpp": "garbage", "gpp_sid": [99], "ext": { "gpp_sid": [7] } }),
            Err(Restriction::GppUnreadable),
        ),
        // Both copies saying the same, or allowing: as either alone.
        (
            json!({ "gdpr": 0, "us_privacy": "1YNN", "gpc": 0,
                    "ext": { "gdpr": 0, "us_privacy": "1YNN", "gpc": 0 } }),
            Ok(()),
        ),
        (
            json!({ "us_privacy": "1YNN", "ext": { "us_privacy": "1---" } }),
            Ok(()),
        ),
    ];
    for (regs, want) in cases {
        assert_eq!(check(json!({ "regs": regs })), want, "{regs}");
    }
}

// ------------------------------------------------------------ GDPR

fn gdpr_with(consent: &str) -> Result<(), Restriction> {
    check(json!({ "regs": { "gdpr": 1 }, "user": { "consent": consent } }))
}

#[test]
fn gdpr_consent_for_purposes_1_3_4_and_our_vendor_allows() {
    assert_eq!(gdpr_with(&Tc::granting(&[VENDOR]).encode()), Ok(()));
    // Just the three purposes, among other vendors.
    let tc = Tc {
        purposes: vec![1, 3, 4],
        vendors: vec![1, 2, 3, VENDOR, 900],
        ..Tc::default()
    };
    assert_eq!(gdpr_with(&tc.encode()), Ok(()));
    // Range-encoded vendor consents.
    let tc = Tc {
        ranges: true,
        vendors: (1..=1200).filter(|v| v % 7 != 0).collect(),
        ..Tc::granting(&[])
    };
    assert!(tc.vendors.contains(&VENDOR));
    assert_eq!(gdpr_with(&tc.encode()), Ok(()));
    // Other segments (here iab_gpp's disclosed-vendors example) are not read.
    let with_segment = format!(
        "{}.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw",
        Tc::granting(&[VENDOR]).encode()
    );
    assert_eq!(gdpr_with(&with_segment), Ok(()));
}

#[test]
fn gdpr_missing_purpose_refuses() {
    for missing in REQUIRED_PURPOSES {
        let tc = Tc {
            purposes: (1..=11).filter(|&p| p != missing).collect(),
            ..Tc::granting(&[VENDOR])
        };
        assert_eq!(
            gdpr_with(&tc.encode()),
            Err(Restriction::GdprNoConsent),
            "purpose {missing} missing"
        );
    }
    // Public strings: the IAB example lacks purpose 4 (vendor 8 has
    // consent); iab_gpp's example grants purpose 3 to vendor 755 only.
    let vendor_8 = PrivacySettings { vendor_id: 8 };
    let gdpr = |tc: &str| json!({ "regs": { "gdpr": 1 }, "user": { "consent": tc } });
    assert_eq!(
        check_with(gdpr(IAB_EXAMPLE), &vendor_8),
        Err(Restriction::GdprNoConsent)
    );
    assert_eq!(check(gdpr(PURPOSE_3_ONLY)), Err(Restriction::GdprNoConsent));
}

#[test]
fn gdpr_legitimate_interest_is_not_consent() {
    let tc = Tc {
        li_purposes: (1..=11).collect(),
        li_vendors: vec![VENDOR],
        ..Tc::granting(&[1, 2])
    };
    assert_eq!(gdpr_with(&tc.encode()), Err(Restriction::GdprNoConsent));
    let tc = Tc {
        li_purposes: vec![1, 3, 4],
        ..Tc::granting(&[VENDOR])
    };
    let purposes_by_li_only = Tc {
        purposes: vec![2],
        ..tc
    };
    assert_eq!(
        gdpr_with(&purposes_by_li_only.encode()),
        Err(Restriction::GdprNoConsent)
    );
}

#[test]
fn gdpr_vendor_without_consent_refuses() {
    assert_eq!(
        gdpr_with(&Tc::granting(&[1, 2, VENDOR - 1, VENDOR + 1]).encode()),
        Err(Restriction::GdprNoConsent)
    );
    let ranged = Tc {
        ranges: true,
        ..Tc::granting(&[(1..VENDOR).collect::<Vec<_>>(), vec![VENDOR + 1]].concat())
    };
    assert_eq!(gdpr_with(&ranged.encode()), Err(Restriction::GdprNoConsent));
    // The default settings name no vendor: nothing grants consent.
    assert_eq!(
        check_with(
            json!({ "regs": { "gdpr": 1 }, "user": { "consent": Tc::granting(&[VENDOR]).encode() } }),
            &PrivacySettings::default()
        ),
        Err(Restriction::GdprNoConsent)
    );
}

#[test]
fn gdpr_without_a_decodable_string_refuses() {
    assert_eq!(
        check(json!({ "regs": { "gdpr": 1 } })),
        Err(Restriction::GdprNoConsent)
    );
    let granting = Tc::granting(&[VENDOR]).encode();
    let truncated = &granting[..granting.len() / 2];
    let v1 = Tc {
        version: 1,
        ..Tc::granting(&[VENDOR])
    }
    .encode();
    for s in [
        "",
        "garbage",
        "not base64!",
        "CPXuQIAPXuQIAAfKABENB-Cg",
        truncated,
        TCF_V1,
        &v1,
    ] {
        assert_eq!(gdpr_with(s), Err(Restriction::GdprNoConsent), "{s:?}");
    }
}

#[test]
fn gdpr_not_applying_needs_no_string() {
    assert_eq!(check(json!({ "regs": { "gdpr": 0 } })), Ok(()));
    assert_eq!(
        check(json!({ "regs": { "gdpr": 0 }, "user": { "consent": "garbage" } })),
        Ok(())
    );
    assert_eq!(check(json!({ "regs": { "ext": { "gdpr": 0 } } })), Ok(()));
}

/// Where no one says whether GDPR applies (no `regs`, `gdpr` absent, null
/// or empty), a TC string given was made for someone GDPR covers: one that
/// refuses us holds (privacy probe: behavioural audiences and the user key
/// went through beside `"gdpr": ""`). One that grants lets measurement
/// follow it; one that cannot be read grants nothing, as a user sync with
/// `gdpr=` empty beside it is refused. A `gdpr` of 0 says GDPR does not
/// apply: its string is not read.
#[test]
fn a_tc_string_holds_where_no_one_says_whether_gdpr_applies() {
    let refusing = Tc::granting(&[1]).encode();
    let granting = Tc::granting(&[VENDOR]).encode();
    let no_measurement = Tc {
        purposes: vec![1, 3, 4],
        vendors: vec![VENDOR],
        ..Tc::default()
    }
    .encode();
    for regs in [
        None,
        Some(json!({})),
        Some(json!({ "gdpr": "" })),
        Some(json!({ "gdpr": null })),
    ] {
        for user in [
            json!({ "buyeruid": "u-1", "consent": refusing }),
            json!({ "buyeruid": "u-1", "ext": { "consent": refusing } }),
        ] {
            let mut req = json!({ "user": user });
            if let Some(r) = &regs {
                req["regs"] = r.clone();
            }
            assert_eq!(
                check(req),
                Err(Restriction::GdprNoConsent),
                "{regs:?} {user}"
            );
        }
        let with = |consent: &str| {
            let mut req = json!({ "user": { "buyeruid": "u-1", "consent": consent } });
            if let Some(r) = &regs {
                req["regs"] = r.clone();
            }
            decide_with(req, &settings())
        };
        assert_eq!(
            with(&granting),
            Ok(Allowed { measurement: true }),
            "{regs:?}"
        );
        assert_eq!(
            with(&no_measurement),
            Ok(Allowed { measurement: false }),
            "{regs:?}"
        );
        assert_eq!(with("garbage"), Err(Restriction::GdprNoConsent), "{regs:?}");
        // Blank says nothing: exchanges send it for "no signal".
        assert_eq!(with(" "), Ok(ALL_ALLOWED), "{regs:?}");
        // A `user.ext` naming a consent that cannot be read is no
        // better than a string that cannot be read.
        let mut req = json!({ "user": { "buyeruid": "u-1", "ext": { "consent": 7 } } });
        if let Some(r) = &regs {
            req["regs"] = r.clone();
        }
        assert_eq!(check(req), Err(Restriction::GdprNoConsent), "{regs:?}");
    }
    for regs in [json!({ "gdpr": 0 }), json!({ "ext": { "gdpr": 0 } })] {
        let req = json!({ "regs": regs, "user": { "buyeruid": "u-1", "consent": refusing } });
        assert_eq!(check(req), Ok(()), "{regs}");
    }
}

#[test]
fn gdpr_openrtb_2_5_locations() {
    let granting = Tc::granting(&[VENDOR]).encode();
    let refusing = Tc::granting(&[1]).encode();
    for gdpr in [json!(1), json!("1")] {
        assert_eq!(
            check(json!({ "regs": { "ext": { "gdpr": gdpr } },
                          "user": { "ext": { "consent": granting } } })),
            Ok(())
        );
        assert_eq!(
            check(json!({ "regs": { "ext": { "gdpr": gdpr } },
                          "user": { "ext": { "consent": refusing } } })),
            Err(Restriction::GdprNoConsent)
        );
        assert_eq!(
            check(json!({ "regs": { "ext": { "gdpr": gdpr } } })),
            Err(Restriction::GdprNoConsent)
        );
    }
    // 2.6 and 2.5 mixed.
    assert_eq!(
        check(json!({ "regs": { "gdpr": 1 }, "user": { "ext": { "consent": granting } } })),
        Ok(())
    );
}

#[test]
fn gdpr_crafted_ranges_are_refused_without_expanding_them() {
    // 400 entries each claiming vendors 1–65535: the decoder alone
    // spends seconds on this 2 KB string.
    let mut w = Tc::granting(&[]).writer();
    w.0.truncate(TC_CORE_FIXED_BITS);
    w.int(65_535, 16).int(1, 1).int(400, 12);
    for _ in 0..400 {
        w.int(1, 1).int(1, 16).int(65_535, 16);
    }
    w.int(0, 16).int(0, 1).int(0, 12);
    let start = std::time::Instant::now();
    assert_eq!(gdpr_with(&w.base64url()), Err(Restriction::GdprNoConsent));
    assert!(start.elapsed() < std::time::Duration::from_secs(1));

    // Overlapping ranges within a small MaxVendorId are refused too.
    let mut w = Tc::granting(&[]).writer();
    w.0.truncate(TC_CORE_FIXED_BITS);
    w.int(VENDOR.into(), 16).int(1, 1);
    range_entries(&mut w, &[(1, VENDOR), (1, VENDOR)]);
    w.int(0, 16).int(0, 1).int(0, 12);
    assert_eq!(gdpr_with(&w.base64url()), Err(Restriction::GdprNoConsent));
    // …while the same string with one range is consent.
    let mut w = Tc::granting(&[]).writer();
    w.0.truncate(TC_CORE_FIXED_BITS);
    w.int(VENDOR.into(), 16).int(1, 1);
    range_entries(&mut w, &[(1, VENDOR)]);
    w.int(0, 16).int(0, 1).int(0, 12);
    assert_eq!(gdpr_with(&w.base64url()), Ok(()));
}

#[test]
fn gdpr_publisher_restrictions_are_refused_until_the_decoder_reads_them() {
    let tc = Tc {
        restrictions: vec![(2, 1, vec![(1, 50)])],
        ..Tc::granting(&[VENDOR])
    };
    assert_eq!(gdpr_with(&tc.encode()), Err(Restriction::GdprNoConsent));
}

// ------------------------------------------------------------ GPP

fn with_gpp(gpp: &str, sid: &[i32]) -> Result<(), Restriction> {
    check(json!({ "regs": { "gpp": gpp, "gpp_sid": sid } }))
}

#[test]
fn gpp_header_ids_match_known_strings() {
    for (header, ids) in [
        ("DBABM", vec![2]),
        ("DBACNY", vec![2, 6]),
        ("DBABTA", vec![6]),
        ("DBABLA", vec![7]),
        ("DBABBg", vec![8]),
    ] {
        assert_eq!(gpp_header_ids(header), Some(ids), "{header}");
    }
    // Several single ids: offsets from the previous id, not the previous offset.
    for ids in [
        vec![2, 6, 8],
        vec![2, 7, 9, 21],
        vec![6, 7, 8, 10],
        vec![7, 23],
    ] {
        let sections: Vec<(u32, &str)> = ids.iter().map(|&id| (id, "x")).collect();
        let header = gpp(&sections);
        let header = header.split('~').next().unwrap();
        let ids: Vec<i32> = ids.iter().map(|&id| id as i32).collect();
        assert_eq!(gpp_header_ids(header), Some(ids), "{header}");
    }
    assert_eq!(gpp_header_ids("CPXuQIAP"), None, "not a GPP header");
    assert_eq!(gpp_header_ids(""), None);
}

#[test]
fn gpp_us_national_opt_outs() {
    assert_eq!(
        with_gpp(&gpp(&[(7, USNAT_OPTED_OUT)]), &[7]),
        Err(Restriction::GppOptOut)
    );
    assert_eq!(with_gpp(&gpp(&[(7, USNAT_NOT_APPLICABLE)]), &[7]), Ok(()));
    // iab_gpp's v2 fixture: its 16-17 field (which CMPs' defaults fill,
    // and Prebid does not read) says no consent; nothing else applies.
    assert_eq!(
        with_gpp(&gpp(&[(7, USNAT_V2_NOT_APPLICABLE)]), &[7]),
        Ok(())
    );
    assert_eq!(with_gpp(&gpp(&[(7, &usnat_v1(2, 2, 2))]), &[7]), Ok(()));
    for (sale, sharing, targeted) in [(1, 2, 2), (2, 1, 2), (2, 2, 1)] {
        assert_eq!(
            with_gpp(&gpp(&[(7, &usnat_v1(sale, sharing, targeted))]), &[7]),
            Err(Restriction::GppOptOut),
            "{sale} {sharing} {targeted}"
        );
    }
    // Global Privacy Control sub-section.
    let gpc = format!("{}.YA", usnat_v1(2, 2, 2));
    assert_eq!(
        with_gpp(&gpp(&[(7, &gpc)]), &[7]),
        Err(Restriction::GppOptOut)
    );
}

#[test]
fn gpp_us_state_opt_outs() {
    for (id, section) in [
        (8, USCA_OPTED_OUT),
        (8, USCA_DID_NOT_OPT_OUT_WITH_GPC),
        (9, USVA_OPTED_OUT),
        (10, USCO_OPTED_OUT),
    ] {
        assert_eq!(
            with_gpp(&gpp(&[(id, section)]), &[id as i32]),
            Err(Restriction::GppOptOut),
            "{id} {section}"
        );
    }
    for (id, section) in [(8, USCA_NOT_APPLICABLE), (9, USVA_NOT_APPLICABLE)] {
        assert_eq!(with_gpp(&gpp(&[(id, section)]), &[id as i32]), Ok(()));
    }
}

#[test]
fn gpp_only_applicable_sections_count() {
    let s = gpp(&[(7, USNAT_OPTED_OUT), (8, USCA_NOT_APPLICABLE)]);
    assert_eq!(with_gpp(&s, &[8]), Ok(()), "section 7 is not applicable");
    assert_eq!(with_gpp(&s, &[7]), Err(Restriction::GppOptOut));
    assert_eq!(with_gpp(&s, &[7, 8]), Err(Restriction::GppOptOut));
    // No gpp_sid: every section in the string applies.
    assert_eq!(
        check(json!({ "regs": { "gpp": s } })),
        Err(Restriction::GppOptOut)
    );
    // An applicable US id with no section in the string may be an
    // opt-out the string lost.
    assert_eq!(
        with_gpp(&gpp(&[(8, USCA_NOT_APPLICABLE)]), &[7]),
        Err(Restriction::GppUnreadable)
    );
    assert_eq!(
        with_gpp(&gpp(&[(8, USCA_NOT_APPLICABLE)]), &[8, 5]),
        Ok(()),
        "TCF Canada holds no opt-out"
    );
}

/// Maryland (24), Indiana (25), Kentucky (26) and Rhode Island (27), and
/// ids after them, are sections the decoder cannot read: applicable, each
/// may hold an opt-out, and is taken as one. Listed elsewhere, not.
#[test]
fn gpp_sections_past_the_decoder_opt_out_where_they_apply() {
    for id in [24, 25, 26, 27, 31] {
        let s = gpp(&[(8, USCA_NOT_APPLICABLE), (id, "BVVVVVVVVWA")]);
        assert_eq!(
            with_gpp(&s, &[id as i32]),
            Err(Restriction::GppUnreadable),
            "{id}"
        );
        assert_eq!(
            check(json!({ "regs": { "gpp": s } })),
            Err(Restriction::GppUnreadable),
            "{id}: no gpp_sid, every section applies"
        );
        assert_eq!(with_gpp(&s, &[8]), Ok(()), "{id} does not apply");
    }
}

#[test]
fn gpp_us_privacy_section() {
    assert_eq!(
        with_gpp(&gpp(&[(6, "1YYN")]), &[6]),
        Err(Restriction::GppOptOut)
    );
    assert_eq!(with_gpp(&gpp(&[(6, "1YNN")]), &[6]), Ok(()));
    assert_eq!(with_gpp("DBABTA~1YYN", &[6]), Err(Restriction::GppOptOut));
}

#[test]
fn gpp_with_several_single_sections() {
    // Ids 2, 6, 8 are three single entries in the header: the section
    // after the second must still be read as California.
    let s = gpp(&[
        (2, &Tc::granting(&[VENDOR]).encode()),
        (6, "1NNN"),
        (8, USCA_OPTED_OUT),
    ]);
    assert_eq!(
        check(json!({ "regs": { "gdpr": 1, "gpp": s, "gpp_sid": [2, 6, 8] } })),
        Err(Restriction::GppOptOut)
    );
    assert_eq!(
        check(json!({ "regs": { "gdpr": 1, "gpp": s, "gpp_sid": [2, 6] } })),
        Ok(())
    );
}

/// Whatever of an applicable US section cannot be read may be an opt-out
/// (the string, the section, a version the decoder does not know) and is
/// taken as one; a section that does not apply is not read at all.
#[test]
fn gpp_unreadable_us_sections_that_apply_opt_out() {
    for s in [
        "garbage",
        "DBABLA",                  // header says one section, none follows
        "DBABLA~BVVVVVVVVWA~1YYN", // two sections for one id
        "DBABLA~!!!",              // undecodable section
        "DBABLA~BVVVVV",           // truncated section
        "DBABLA~DAAAAAAAAAWA",     // a version 3 the decoder does not know
    ] {
        assert_eq!(with_gpp(s, &[7]), Err(Restriction::GppUnreadable), "{s:?}");
    }
    assert!(Gpp::parse("DBABLA~!!!").is_some(), "a readable string");
    for (section, want) in [
        ("!!!", Restriction::GppUnreadable),
        ("BA", Restriction::GppUnreadable),
        ("1Y", Restriction::GppUnreadable),
        // Read as regs.us_privacy is, in either case.
        ("1yyn", Restriction::GppOptOut),
    ] {
        let s = gpp(&[(6, section), (8, USCA_NOT_APPLICABLE)]);
        assert_eq!(with_gpp(&s, &[6]), Err(want), "{section}");
        assert_eq!(with_gpp(&s, &[8]), Ok(()), "{section}: 6 does not apply");
    }
    assert_eq!(with_gpp(&gpp(&[(6, "1YNN")]), &[6]), Ok(()));
    // The IAB's example: a TCF section and a US Privacy section that allows.
    let s = gpp(&[(2, &Tc::granting(&[VENDOR]).encode()), (6, "1YNN")]);
    assert_eq!(with_gpp(&s, &[6]), Ok(()));
}

#[test]
fn gpp_openrtb_2_5_locations() {
    let s = gpp(&[(7, USNAT_OPTED_OUT)]);
    assert_eq!(
        check(json!({ "regs": { "ext": { "gpp": s, "gpp_sid": [7] } } })),
        Err(Restriction::GppOptOut)
    );
    let s = gpp(&[(7, USNAT_OPTED_OUT), (8, USCA_NOT_APPLICABLE)]);
    assert_eq!(
        check(json!({ "regs": { "ext": { "gpp": s, "gpp_sid": [8] } } })),
        Ok(())
    );
}

#[test]
fn gpp_tcf_section_is_the_consent_string_when_user_consent_is_absent() {
    let granting = gpp(&[(2, &Tc::granting(&[VENDOR]).encode())]);
    let refusing = gpp(&[(2, &Tc::granting(&[1]).encode())]);
    let regs = |gpp: &str| json!({ "gdpr": 1, "gpp": gpp, "gpp_sid": [2] });
    assert_eq!(check(json!({ "regs": regs(&granting) })), Ok(()));
    assert_eq!(
        check(json!({ "regs": regs(&refusing) })),
        Err(Restriction::GdprNoConsent)
    );
    // With user.consent too, both must grant: the stricter holds.
    assert_eq!(
        check(json!({ "regs": regs(&granting),
                      "user": { "consent": Tc::granting(&[1]).encode() } })),
        Err(Restriction::GdprNoConsent)
    );
    assert_eq!(
        check(json!({ "regs": regs(&refusing),
                      "user": { "consent": Tc::granting(&[VENDOR]).encode() } })),
        Err(Restriction::GdprNoConsent)
    );
    assert_eq!(
        check(json!({ "regs": regs(&granting),
                      "user": { "consent": Tc::granting(&[VENDOR]).encode() } })),
        Ok(())
    );
    // No gpp_sid: every section applies, the TCF one too, which applies
    // GDPR as regs.gdpr would (the IAB's example string refuses us).
    assert_eq!(
        check(json!({ "regs": { "gpp": refusing } })),
        Err(Restriction::GdprNoConsent)
    );
    assert_eq!(
        check(json!({ "regs": {
            "gpp": "DBACNYA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN" } })),
        Err(Restriction::GdprNoConsent)
    );
    assert_eq!(check(json!({ "regs": { "gpp": granting } })), Ok(()));
    // gpp_sid [2] means GDPR applies even without regs.gdpr.
    assert_eq!(
        check(json!({ "regs": { "gpp": refusing, "gpp_sid": [2] } })),
        Err(Restriction::GdprNoConsent)
    );
    assert_eq!(
        check(json!({ "regs": { "gpp": granting, "gpp_sid": [2] } })),
        Ok(())
    );
    assert_eq!(
        check(json!({ "regs": { "gpp": gpp(&[(7, USNAT_NOT_APPLICABLE)]), "gpp_sid": [2] } })),
        Err(Restriction::GdprNoConsent),
        "no TCF section and no user.consent"
    );
    // The TCF section is not read when GDPR does not apply.
    let refusing_and_us = gpp(&[(2, &Tc::granting(&[1]).encode()), (7, USNAT_NOT_APPLICABLE)]);
    assert_eq!(
        check(json!({ "regs": { "gdpr": 0, "gpp": refusing_and_us, "gpp_sid": [7] } })),
        Ok(())
    );
}

// ------------------------------------------------------------ properties

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn signal() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9_~.-]{0,300}",
            "\\PC{0,64}",
            // Real strings with a tail of noise.
            ("[A-Za-z0-9_-]{0,40}").prop_map(|t| format!("{IAB_EXAMPLE}{t}")),
            ("[A-Za-z0-9_-]{0,40}").prop_map(|t| format!("DBABMA~{USNAT_OPTED_OUT}{t}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever an exchange sends, deciding never panics, stays
        /// quick, and never grants GDPR consent to a string that is not a
        /// TC string for our vendor.
        #[test]
        fn hostile_signals_decide_quickly_and_fail_closed(
            consent in signal(),
            gpp in signal(),
            usp in signal(),
            sid in proptest::collection::vec(-2i32..30, 0..4),
        ) {
            let extra = json!({
                "regs": { "gdpr": 1, "gpp": gpp, "gpp_sid": sid, "us_privacy": usp },
                "user": { "buyeruid": "u-1", "consent": consent },
            });
            let start = std::time::Instant::now();
            let decision = check(extra);
            prop_assert!(start.elapsed() < std::time::Duration::from_millis(50));
            // Random text is no consent for vendor 755.
            prop_assert!(decision.is_err());
        }
    }
}

#[test]
fn an_oversized_gpp_string_opts_out() {
    let padded = format!("DBABTA~1YYN{}", "A".repeat(MAX_SIGNAL_BYTES));
    assert_eq!(
        with_gpp(&padded, &[6]),
        Err(Restriction::GppUnreadable),
        "a string too long to read cannot be taken as no opt-out"
    );
    assert_eq!(with_gpp("DBABTA~1YYN", &[6]), Err(Restriction::GppOptOut));
}

/// A request may carry its consent in 2.6 `user.consent` and 2.5
/// `user.ext.consent` at once: where they differ, both must grant; an
/// empty one is no string, and does not hide the other.
#[test]
fn both_consent_strings_must_grant() {
    let yes = Tc::granting(&[VENDOR]).encode();
    let no = Tc::granting(&[1]).encode();
    let with = |user: Value| check(json!({ "regs": { "gdpr": 1 }, "user": user }));
    assert_eq!(
        with(json!({ "consent": yes, "ext": { "consent": no } })),
        Err(Restriction::GdprNoConsent)
    );
    assert_eq!(
        with(json!({ "consent": no, "ext": { "consent": yes } })),
        Err(Restriction::GdprNoConsent)
    );
    assert_eq!(
        with(json!({ "consent": yes, "ext": { "consent": yes } })),
        Ok(())
    );
    assert_eq!(
        with(json!({ "consent": "", "ext": { "consent": yes } })),
        Ok(())
    );
    assert_eq!(
        with(json!({ "consent": "", "ext": { "consent": "" } })),
        Err(Restriction::GdprNoConsent)
    );
}

/// Under GDPR the user is named in measurement (the tracking URLs' user
/// key) only with TCF purpose 7 allowed too, by consent or legitimate
/// interest; outside GDPR, whenever behavioural use is allowed.
#[test]
fn measurement_needs_purpose_7_under_gdpr() {
    let decide_with = |extra: Value| decide_with(extra, &settings());
    let tc = |purposes: &[u16], li: &[u16]| {
        Tc {
            purposes: purposes.to_vec(),
            li_purposes: li.to_vec(),
            li_vendors: vec![VENDOR],
            ..Tc::granting(&[VENDOR])
        }
        .encode()
    };
    // Legitimate interest for purpose 7 without our vendor's LI bit: the
    // user objected to us.
    let objected = Tc {
        purposes: vec![1, 3, 4],
        li_purposes: vec![7],
        li_vendors: vec![],
        ..Tc::granting(&[VENDOR])
    }
    .encode();
    let gdpr = |consent: String| json!({ "regs": { "gdpr": 1 }, "user": { "consent": consent } });
    let measured = |m| Ok(Allowed { measurement: m });
    assert_eq!(decide_with(json!({})), measured(true));
    assert_eq!(decide_with(gdpr(tc(&[1, 3, 4, 7], &[]))), measured(true));
    assert_eq!(decide_with(gdpr(tc(&[1, 3, 4], &[7]))), measured(true));
    assert_eq!(decide_with(gdpr(tc(&[1, 3, 4], &[]))), measured(false));
    assert_eq!(decide_with(gdpr(objected)), measured(false));
    assert_eq!(
        decide_with(gdpr(tc(&[1, 3], &[7]))),
        Err(Restriction::GdprNoConsent)
    );
    // Two strings: both must allow measurement.
    assert_eq!(
        decide_with(json!({ "regs": { "gdpr": 1 },
            "user": { "consent": tc(&[1, 3, 4, 7], &[]), "ext": { "consent": tc(&[1, 3, 4], &[]) } } })),
        measured(false)
    );
}

/// A user-sync URL's signals read as a request's: a GPP string whose TCF
/// section refuses, with no `gpp_sid`, applies GDPR and refuses there too.
#[test]
fn sync_signals_with_a_gpp_tcf_section_and_no_sid_apply_gdpr() {
    fn allows(gpp: &str) -> Result<(), Restriction> {
        let signals = Signals {
            gpp: Some(gpp),
            ..Signals::default()
        };
        signals_allow(&signals, &settings())
    }
    let refusing = gpp(&[(2, &Tc::granting(&[1]).encode())]);
    let granting = gpp(&[(2, &Tc::granting(&[VENDOR]).encode())]);
    assert_eq!(allows(&refusing), Err(Restriction::GdprNoConsent));
    assert_eq!(allows(&granting), Ok(()));
}

/// Review of the first version: every TC string is checked under every
/// copy of the GDPR signals, an unreadable `user.ext` grants nothing, a
/// missing US Privacy section is no loss beside `regs.us_privacy`, and the
/// `gpp_sid` values exchanges send for "none" (-1, 0) read nothing.
#[test]
fn consents_and_gpp_sid_as_exchanges_send_them() {
    let yes = Tc::granting(&[VENDOR]).encode();
    let no = Tc::granting(&[1]).encode();
    // GDPR applies through regs.ext's gpp_sid only; the refusing 2.5
    // consent string is read there too.
    let usnat = gpp(&[(7, USNAT_NOT_APPLICABLE)]);
    let tcf = gpp(&[(2, &yes)]);
    assert_eq!(
        check(json!({
            "regs": { "gpp": usnat, "gpp_sid": [7], "ext": { "gpp": tcf, "gpp_sid": [2] } },
            "user": { "consent": yes, "ext": { "consent": no } } })),
        Err(Restriction::GdprNoConsent)
    );
    // A user.ext that cannot be read may hold a refusing string.
    for ext in [json!("str"), json!([1])] {
        assert_eq!(
            check(json!({ "regs": { "gdpr": 1 }, "user": { "consent": yes, "ext": ext } })),
            Err(Restriction::GdprNoConsent),
            "{ext}"
        );
    }
    // Section 6 listed beside 7 while US Privacy rides in regs.us_privacy.
    assert_eq!(
        check(json!({ "regs": { "gpp": usnat, "gpp_sid": [7, 6], "us_privacy": "1YNN" } })),
        Ok(())
    );
    assert_eq!(
        check(json!({ "regs": { "gpp": usnat, "gpp_sid": [7, 6] } })),
        Err(Restriction::GppUnreadable)
    );
    for sid in [json!([-1]), json!([0])] {
        assert_eq!(
            check(json!({ "regs": { "gpp": "DBABTA~1YNN", "gpp_sid": sid } })),
            Ok(()),
            "{sid}"
        );
    }
    let eu_and_usp = gpp(&[(2, &yes), (6, "1YNN")]);
    assert_eq!(
        check(json!({ "regs": { "gdpr": 1, "gpp": eu_and_usp, "gpp_sid": [2, 6] } })),
        Ok(())
    );
    // Strings consent-management platforms write (Google's UMP): read.
    assert_eq!(with_gpp("DBABL~BVQqAAAAAg", &[7]), Ok(()));
    assert_eq!(
        with_gpp("DBABL~BVQVAAAAAg", &[7]),
        Err(Restriction::GppOptOut)
    );
    // One the decoder refuses (an MSPA covered-transaction field of 0,
    // which some encoders wrote): unreadable, and counted as such.
    assert_eq!(
        with_gpp("DBABL~BVAoAAAAAABk.QA", &[7]),
        Err(Restriction::GppUnreadable)
    );
}

/// iOS App Tracking Transparency (`device.ext.atts`): only authorized (3)
/// allows tracking; not determined, restricted and denied are as LMT.
#[test]
fn app_tracking_transparency() {
    for atts in [0, 1, 2] {
        assert_eq!(
            check(json!({ "device": { "ext": { "atts": atts } } })),
            Err(Restriction::LimitAdTracking),
            "{atts}"
        );
    }
    for unreadable in [json!("denied"), json!(2.5), json!([2]), json!(true)] {
        assert_eq!(
            check(json!({ "device": { "ext": { "atts": unreadable } } })),
            Err(Restriction::LimitAdTracking),
            "{unreadable}"
        );
    }
    assert_eq!(check(json!({ "device": { "ext": { "atts": 3 } } })), Ok(()));
    assert_eq!(
        check(json!({ "device": { "ext": { "atts": "3" } } })),
        Ok(())
    );
    assert_eq!(
        check(json!({ "device": { "ext": { "atts": null } } })),
        Ok(())
    );
    // An ext that cannot be read may hold a status nobody read.
    assert_eq!(
        check(json!({ "device": { "ext": "x" } })),
        Err(Restriction::LimitAdTracking)
    );
    assert_eq!(
        check(json!({ "device": { "ext": { "other": 1 } } })),
        Ok(())
    );
}

/// Beyond the opt-outs, US National's MSPA fields deny as Prebid's MSPA
/// controls read them by default: service-provider mode, an opt-out
/// notice not given, a known child (under 13: anything but "not
/// applicable"; 13 to 16, or 16 to 17 in v2, without consent). And a
/// `gpp_sid` listing US sections with no string at all is a string lost.
#[test]
fn mspa_fields_and_a_lost_string() {
    assert_eq!(with_gpp("DBABLA~BVVqAAAAAQA.QA", &[7]), Ok(()), "baseline");
    for (section, what) in [
        ("BVVqAAAAEQA.QA", "a known child under 13"),
        ("BVVqAAAAIQA.QA", "a known child under 13 who consented"),
        ("BVVqAAAAQQA.QA", "13 to 16, no consent"),
        ("CVVqAAAAAFRA.QA", "v2, children without consent"),
        ("BVVqAAAAAZA.QA", "service-provider mode"),
        ("BZVqAAAAAQA.QA", "sale opt-out notice not given"),
        (
            "BVlqAAAAAQA.QA",
            "targeted-advertising opt-out notice not given",
        ),
    ] {
        assert_eq!(
            with_gpp(&format!("DBABLA~{section}"), &[7]),
            Err(Restriction::GppOptOut),
            "{what}"
        );
    }
    for regs in [
        json!({ "gpp_sid": [7] }),
        json!({ "gpp": "", "gpp_sid": [7] }),
        json!({ "gpp_sid": [24] }),
        json!({ "gpp_sid": [6], "us_privacy": "" }),
    ] {
        assert_eq!(
            check(json!({ "regs": regs })),
            Err(Restriction::GppUnreadable),
            "{regs}"
        );
    }
    assert_eq!(
        check(json!({ "regs": { "gpp_sid": [6], "us_privacy": "1YNN" } })),
        Ok(())
    );
    assert_eq!(
        check(json!({ "regs": { "gpp_sid": [2, 5] } })),
        Err(Restriction::GdprNoConsent)
    );
}

/// The states whose section has one known-child field (Virginia here)
/// keep a known child's data out whatever it says but "not applicable",
/// as Prebid reads them.
#[test]
fn a_known_child_in_a_state_section() {
    use iab_gpp::sections::us_common::Consent;
    for (section, child) in [
        ("BAAAABA", Consent::NotApplicable),
        ("BAAAAFA", Consent::NoConsent),
        ("BAAAAJA", Consent::Consent),
    ] {
        let s = iab_gpp::sections::usva::UsVa::from_str(section).expect("decodes");
        assert_eq!(
            s.core.known_child_sensitive_data_consents, child,
            "{section}"
        );
    }
    assert_eq!(with_gpp(&gpp(&[(9, "BAAAABA")]), &[9]), Ok(()));
    for section in ["BAAAAFA", "BAAAAJA"] {
        assert_eq!(
            with_gpp(&gpp(&[(9, section)]), &[9]),
            Err(Restriction::GppOptOut),
            "{section}"
        );
    }
}

/// Where no one said whether GDPR applies, a refusing TC string in
/// `user.ext` refuses however its key is spelled: `\u006f` is JSON for
/// `o`, and the probe that sent it was bought behaviourally.
#[test]
fn an_escaped_consent_key_in_user_ext_still_refuses() {
    let no = Tc::granting(&[1]).encode();
    let yes = Tc::granting(&[VENDOR]).encode();
    let body = |key: &str, tc: &str| {
        format!(
            r#"{{"id":"r1","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],
            "site":{{"page":"https://news.example/"}},
            "user":{{"buyeruid":"u-1","ext":{{"{key}":"{tc}"}}}}}}"#
        )
    };
    let decide_body = |text: String| {
        let parsed = ortb::parse_request(text.as_bytes()).expect("request parses");
        decide(&parsed, &settings()).map(|_| ())
    };
    for key in ["consent", r"c\u006fnsent", r"\u0063onsent"] {
        assert_eq!(
            decide_body(body(key, &no)),
            Err(Restriction::GdprNoConsent),
            "{key}"
        );
        assert_eq!(decide_body(body(key, &yes)), Ok(()), "{key}");
    }
}
