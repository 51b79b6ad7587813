//! Tolerance, validation and error messages on hand-made bodies.

use std::borrow::Cow;

use ortb::{parse_request, InvalidRequest, ParseError};

fn parse(json: &str) -> ortb::BidRequest<'_> {
    parse_request(json.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{json}"))
}

fn invalid(json: &str) -> InvalidRequest {
    parse(json).validate().unwrap_err()
}

#[test]
fn null_arrays_are_empty() {
    let req = parse(
        r#"{"id":"r","cur":null,"bcat":null,"badv":null,"bapp":null,"wseat":null,
            "imp":[{"id":"1","banner":{"format":null,"battr":null,"mimes":null,"api":null},
                    "video":{"protocols":null,"companionad":null,"mimes":null,"rqddurs":null},
                    "pmp":{"deals":null}}],
            "user":{"data":null,"eids":null,"kwarray":null},
            "regs":{"gpp_sid":null},
            "source":{"schain":{"nodes":null}}}"#,
    );
    assert!(req.cur.is_empty() && req.bcat.is_empty() && req.badv.is_empty());
    let imp = &req.imp[0];
    let banner = imp.banner.as_deref().unwrap();
    assert!(banner.format.is_empty() && banner.battr.is_empty() && banner.mimes.is_empty());
    let video = imp.video.as_deref().unwrap();
    assert!(video.protocols.is_empty() && video.companionad.is_empty());
    assert!(imp.pmp.as_ref().unwrap().deals.is_empty());
    let user = req.user.as_ref().unwrap();
    assert!(user.data.is_empty() && user.eids.is_empty() && user.eids().is_empty());
    assert!(req.regs.as_ref().unwrap().gpp_sid().is_empty());
    assert!(req
        .source
        .as_ref()
        .unwrap()
        .schain()
        .unwrap()
        .nodes
        .is_empty());
    req.validate().unwrap();
}

#[test]
fn missing_arrays_are_empty_and_defaults_apply() {
    let req = parse(r#"{"id":"r","imp":[{"id":"1","banner":{}}]}"#);
    let imp = &req.imp[0];
    assert_eq!(imp.bidfloor, 0);
    assert_eq!(imp.bidfloorcur, "USD");
    assert!(req.cur.is_empty());
    assert_eq!(req.auction_type(), 2);
    assert!(!req.is_test());
    assert!(req.site.is_none() && req.device.is_none() && req.regs.is_none());
    let banner = imp.banner.as_deref().unwrap();
    assert!(banner.format.is_empty());
    assert_eq!(banner.sizes().count(), 0);
    req.validate().unwrap();
}

#[test]
fn unknown_fields_are_ignored() {
    let req = parse(
        r#"{"id":"r","future_field":{"deep":[1,{"x":null}]},"imp":[{"id":"1","qty":{"multiplier":1.5},
            "banner":{"w":300,"h":250,"expdir":[1,2],"unknown":"x"},"dt":1.7e12,"metric":[{"type":"viewability","value":0.9}]}],
            "device":{"sua":{"browsers":[]},"ifa_type":"ppid","eids":[]},"wlang":["en"]}"#,
    );
    let banner = req.imp[0].banner.as_deref().unwrap();
    assert_eq!((banner.w, banner.h), (Some(300), Some(250)));
    req.validate().unwrap();
}

#[test]
fn wrong_scalar_types_are_read_leniently() {
    let req = parse(
        r#"{"id":12345,"test":true,"at":"1","tmax":120.0,
            "imp":[{"id":1,"bidfloor":"0.75","secure":true,"instl":"0","banner":{"w":300.0,"h":"250","pos":[1],
                    "format":[{"w":320.0,"h":50}],"battr":[1,"2",3.0,null,"x",{}],"api":5}}],
            "device":{"lmt":true,"dnt":false,"devicetype":"4","geo":{"lat":"51.5","lon":-0.12,"utcoffset":"60"},
                      "ua":null,"ip":["1.2.3.4"]},
            "regs":{"coppa":"1","ext":{"gdpr":"1","us_privacy":"1YNN"}},
            "user":{"yob":"1980","ext":{"consent":"CPabc"}},
            "cur":"EUR","bcat":["IAB25",7,null]}"#,
    );
    assert_eq!(req.id, "12345");
    assert_eq!((req.test, req.at, req.tmax), (Some(1), Some(1), Some(120)));
    assert!(req.is_test());
    let imp = &req.imp[0];
    assert_eq!(imp.id, "1");
    assert_eq!(imp.bidfloor, 750_000);
    assert_eq!((imp.secure, imp.instl), (Some(1), Some(0)));
    let banner = imp.banner.as_deref().unwrap();
    assert_eq!(
        (banner.w, banner.h, banner.pos),
        (Some(300), Some(250), None)
    );
    assert_eq!(banner.sizes().collect::<Vec<_>>(), [(320, 50)]);
    // A blocking list keeps what it cannot read as a code no one uses
    // (the bidder then blocks every attribute); other lists drop it.
    let x = ortb::UNREADABLE_CODE;
    assert_eq!(
        banner.battr,
        [1, 2, 3, x, x, x],
        "unusable codes marked, the rest kept"
    );
    assert_eq!(banner.api, [5], "a lone code where a list belongs");
    let device = req.device.as_ref().unwrap();
    assert_eq!(
        (device.lmt, device.dnt, device.devicetype),
        (Some(1), Some(0), Some(4))
    );
    assert_eq!(device.ua, None);
    assert_eq!(device.ip, None, "an array is not an ip");
    let geo = device.geo.as_ref().unwrap();
    assert_eq!(
        (geo.lat, geo.longitude(), geo.utcoffset),
        (Some(51.5), Some(-0.12), Some(60))
    );
    let regs = req.regs.as_ref().unwrap();
    assert!(regs.is_coppa());
    assert_eq!(regs.gdpr(), Some(1), r#""gdpr": "1" in regs.ext"#);
    assert_eq!(regs.us_privacy().as_deref(), Some("1YNN"));
    let user = req.user.as_ref().unwrap();
    assert_eq!(user.yob, Some(1980));
    assert_eq!(user.consent().as_deref(), Some("CPabc"));
    assert_eq!(req.cur, ["EUR"], "a lone currency where a list belongs");
    // Numeric category ids (taxonomies past IAB 1.0 use them) keep their text.
    assert_eq!(req.bcat, ["IAB25", "7"]);
    req.validate().unwrap();
}

#[test]
fn escaped_strings_are_owned_plain_ones_borrowed() {
    let req = parse(
        r#"{"id":"a\"b","imp":[{"id":"1","tagid":"x\/y","banner":{"mimes":["text\/html","image/png"]}}],
            "site":{"page":"https:\/\/example.com\/a?b=c","domain":"example.com"}}"#,
    );
    assert_eq!(req.id, "a\"b");
    assert!(matches!(req.id, Cow::Owned(_)));
    assert_eq!(req.imp[0].tagid.as_deref(), Some("x/y"));
    let mimes = &req.imp[0].banner.as_deref().unwrap().mimes;
    assert!(matches!(&mimes[0], Cow::Owned(s) if s == "text/html"));
    assert!(matches!(&mimes[1], Cow::Borrowed("image/png")));
    let site = req.site.as_ref().unwrap();
    assert_eq!(site.page.as_deref(), Some("https://example.com/a?b=c"));
    assert!(matches!(site.domain, Some(Cow::Borrowed("example.com"))));
}

#[test]
fn unicode_escapes_decode() {
    let req = parse(
        r#"{"id":"r","imp":[{"id":"1","banner":{}}],"site":{"name":"Caf\u00e9 \ud83d\ude00"}}"#,
    );
    assert_eq!(req.site.as_ref().unwrap().name.as_deref(), Some("Café 😀"));
}

#[test]
fn malformed_ext_never_fails() {
    let req = parse(
        r#"{"id":"r","imp":[{"id":"1","banner":{}}],
            "regs":{"ext":"gdpr=1"},
            "user":{"ext":[1,2,3]},
            "source":{"ext":{"schain":"not-an-object"}}}"#,
    );
    assert_eq!(req.regs.as_ref().unwrap().gdpr(), None);
    assert_eq!(req.regs.as_ref().unwrap().us_privacy(), None);
    assert_eq!(req.user.as_ref().unwrap().consent(), None);
    assert!(req.user.as_ref().unwrap().eids().is_empty());
    assert!(req.source.as_ref().unwrap().schain().is_none());

    let req = parse(
        r#"{"id":"r","imp":[{"id":"1","banner":{}}],
            "regs":{"ext":{"gdpr":{"weird":true},"us_privacy":42}},
            "user":{"ext":{"consent":null,"eids":null}}}"#,
    );
    let regs = req.regs.as_ref().unwrap();
    // A GDPR flag that is there but unreadable is taken as set: it never
    // fails the request, and never lets personal data through either.
    assert_eq!(regs.gdpr(), Some(ortb::UNREADABLE_FLAG));
    assert_eq!(regs.us_privacy().as_deref(), Some("42"));
    assert_eq!(req.user.as_ref().unwrap().consent(), None);
}

#[test]
fn the_2_6_field_wins_over_ext() {
    let req = parse(
        r#"{"id":"r","imp":[{"id":"1","banner":{}}],
            "regs":{"gdpr":0,"us_privacy":"1---","ext":{"gdpr":1,"us_privacy":"1YYY"}},
            "user":{"consent":"new","ext":{"consent":"old","eids":[{"source":"old.example"}]},
                    "eids":[{"source":"new.example","uids":[{"id":"x","atype":3}]}]}}"#,
    );
    let regs = req.regs.as_ref().unwrap();
    assert_eq!(regs.gdpr(), Some(0));
    assert_eq!(regs.us_privacy().as_deref(), Some("1---"));
    let user = req.user.as_ref().unwrap();
    assert_eq!(user.consent().as_deref(), Some("new"));
    assert_eq!(user.eids()[0].source.as_deref(), Some("new.example"));
    assert_eq!(user.eids()[0].uids[0].atype, Some(3));
}

#[test]
fn floors_from_json() {
    let floor = |f: &str| {
        let json = format!(r#"{{"id":"r","imp":[{{"id":"1","banner":{{}},"bidfloor":{f}}}]}}"#);
        parse_request(json.as_bytes()).unwrap().imp[0].bidfloor
    };
    assert_eq!(floor("4.5"), 4_500_000);
    assert_eq!(floor("0.01"), 10_000);
    assert_eq!(floor("1.1"), 1_100_000);
    assert_eq!(floor("3.00"), 3_000_000);
    assert_eq!(floor("0.0000001"), 1, "finer than a micro rounds up");
    assert_eq!(floor("1.0000001"), 1_000_001);
    assert_eq!(floor("2.5e-1"), 250_000);
    assert_eq!(floor("-1.5"), 0);
    assert_eq!(floor("null"), 0);
    // There but no number: a floor no bid clears, not none.
    assert_eq!(floor(r#""NaN""#), i64::MAX);
    assert_eq!(floor(r#""7.0 USD""#), i64::MAX);
    assert_eq!(floor("[7]"), i64::MAX);
    assert_eq!(floor(r#""""#), 0, "an empty string is none");
    assert_eq!(floor("1e400"), i64::MAX, "huge floors saturate, never wrap");

    let req = parse(
        r#"{"id":"r","imp":[{"id":"1","video":{"mincpmpersec":0.0125},"bidfloorcur":"",
            "pmp":{"deals":[{"id":"d","bidfloor":1.234567891,"bidfloorcur":"EUR"}]}}]}"#,
    );
    let imp = &req.imp[0];
    assert_eq!(imp.bidfloorcur, "USD", "empty currency means the default");
    assert_eq!(imp.video.as_deref().unwrap().mincpmpersec, Some(12_500));
    let deal = &imp.pmp.as_ref().unwrap().deals[0];
    assert_eq!(
        (deal.bidfloor, deal.bidfloorcur.as_ref()),
        (1_234_568, "EUR")
    );
}

// ---------------------------------------------------------------------------
// Validation

#[test]
fn validate_missing_id() {
    assert_eq!(
        invalid(r#"{"imp":[{"id":"1","banner":{}}]}"#),
        InvalidRequest::MissingId
    );
    assert_eq!(
        invalid(r#"{"id":"","imp":[{"id":"1","banner":{}}]}"#),
        InvalidRequest::MissingId
    );
    assert_eq!(
        invalid(r#"{"id":null,"imp":[{"id":"1","banner":{}}]}"#),
        InvalidRequest::MissingId
    );
}

#[test]
fn validate_missing_imp() {
    assert_eq!(invalid(r#"{"id":"r"}"#), InvalidRequest::MissingImp);
    assert_eq!(
        invalid(r#"{"id":"r","imp":[]}"#),
        InvalidRequest::MissingImp
    );
    assert_eq!(
        invalid(r#"{"id":"r","imp":null}"#),
        InvalidRequest::MissingImp
    );
}

#[test]
fn validate_imp_without_id() {
    assert_eq!(
        invalid(r#"{"id":"r","imp":[{"id":"1","banner":{}},{"banner":{}}]}"#),
        InvalidRequest::ImpWithoutId { index: 1 }
    );
    assert_eq!(
        invalid(r#"{"id":"r","imp":[{"id":"","video":{}}]}"#),
        InvalidRequest::ImpWithoutId { index: 0 }
    );
}

#[test]
fn validate_imp_without_media() {
    assert_eq!(
        invalid(r#"{"id":"r","imp":[{"id":"1"}]}"#),
        InvalidRequest::ImpWithoutMedia { index: 0 }
    );
    assert_eq!(
        invalid(
            r#"{"id":"r","imp":[{"id":"1","audio":{}},{"id":"2","banner":null,"video":null,"pmp":{}}]}"#
        ),
        InvalidRequest::ImpWithoutMedia { index: 1 }
    );
    for media in ["banner", "video", "audio", "native"] {
        let json = format!(r#"{{"id":"r","imp":[{{"id":"1","{media}":{{}}}}]}}"#);
        parse_request(json.as_bytes()).unwrap().validate().unwrap();
    }
}

#[test]
fn validate_duplicate_imp_ids() {
    assert_eq!(
        invalid(
            r#"{"id":"r","imp":[{"id":"1","banner":{}},{"id":"2","banner":{}},{"id":"1","video":{}}]}"#
        ),
        InvalidRequest::DuplicateImpId { index: 2, first: 0 }
    );
    // The same id written with and without an escape is still the same id.
    assert_eq!(
        invalid(r#"{"id":"r","imp":[{"id":"a/b","banner":{}},{"id":"a\/b","banner":{}}]}"#),
        InvalidRequest::DuplicateImpId { index: 1, first: 0 }
    );
}

#[test]
fn validate_imp_id_length() {
    let with_id = |id: &str| {
        format!(r#"{{"id":"r","imp":[{{"id":"1","banner":{{}}}},{{"id":"{id}","banner":{{}}}}]}}"#)
    };
    let longest = "x".repeat(ortb::MAX_IMP_ID_BYTES);
    parse_request(with_id(&longest).as_bytes())
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(
        invalid(&with_id(&format!("{longest}y"))),
        InvalidRequest::ImpIdTooLong {
            index: 1,
            len: ortb::MAX_IMP_ID_BYTES + 1
        }
    );
    // Counted as read: an escape is one byte of the id, not six of the body.
    let escaped = "\\u0078".repeat(ortb::MAX_IMP_ID_BYTES);
    parse_request(with_id(&escaped).as_bytes())
        .unwrap()
        .validate()
        .unwrap();
}

#[test]
fn invalid_request_messages() {
    assert_eq!(InvalidRequest::MissingId.to_string(), "missing id");
    assert_eq!(InvalidRequest::MissingImp.to_string(), "missing imp");
    assert_eq!(
        InvalidRequest::ImpWithoutId { index: 1 }.to_string(),
        "imp[1] has no id"
    );
    assert_eq!(
        InvalidRequest::ImpWithoutMedia { index: 0 }.to_string(),
        "imp[0] has no banner, video, audio or native object"
    );
    assert_eq!(
        InvalidRequest::DuplicateImpId { index: 2, first: 0 }.to_string(),
        "imp[2] has the same id as imp[0]"
    );
    assert_eq!(
        InvalidRequest::ImpIdTooLong { index: 0, len: 200 }.to_string(),
        "imp[0] has an id of 200 bytes, more than 128"
    );
}

// ---------------------------------------------------------------------------
// Parse errors

fn parse_err(body: &str) -> ParseError {
    match parse_request(body.as_bytes()) {
        Ok(_) => panic!("parsed: {body}"),
        Err(e) => e,
    }
}

#[test]
fn malformed_json_has_a_short_positioned_message() {
    let e = parse_err("{\n  \"id\": \"r\",\n  \"imp\": [{\"id\": \"1\" \"banner\": {}}]\n}");
    assert!(matches!(e, ParseError::Malformed { line: 3, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "malformed JSON at line 3 column 22: expected `,` or `}`"
    );

    assert_eq!(
        parse_err("").to_string(),
        "malformed JSON at line 1 column 0: EOF while parsing a value"
    );
    assert_eq!(
        parse_err(r#"{"id":"r","imp":[{"id":"1","banner":{}}]"#).to_string(),
        "malformed JSON at line 1 column 40: EOF while parsing an object"
    );
    assert_eq!(
        parse_err(r#"{"id":"r"} trailing"#).to_string(),
        "malformed JSON at line 1 column 12: trailing characters"
    );
    assert!(matches!(
        parse_err("{'id': 1}"),
        ParseError::Malformed { .. }
    ));
    assert!(matches!(
        parse_err("{\"id\":\"\u{1}\"}"),
        ParseError::Malformed { .. }
    ));
}

#[test]
fn wrong_shape_is_reported_as_unexpected() {
    let e = parse_err(r#"{"id":"r","imp":5}"#);
    assert!(matches!(e, ParseError::Unexpected { line: 1, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "unexpected value at line 1 column 17: invalid type: integer `5`, expected a sequence"
    );
    assert!(matches!(parse_err("5"), ParseError::Unexpected { .. }));
    assert!(matches!(
        parse_err(r#""body""#),
        ParseError::Unexpected { .. }
    ));
    // serde reads a struct from an array positionally; with every field
    // defaulted an empty array is an empty request, which validation rejects.
    assert_eq!(parse("[]").validate(), Err(InvalidRequest::MissingId));
    assert!(matches!(
        parse_err(r#"{"id":"r","site":"example.com"}"#),
        ParseError::Unexpected { .. }
    ));
    assert!(matches!(
        parse_err(r#"{"id":"r","imp":[{"id":"1","banner":true}]}"#),
        ParseError::Unexpected { .. }
    ));
}

#[test]
fn long_reasons_are_cut_short() {
    let long = "x".repeat(5000);
    let e = parse_err(&format!(r#"{{"id":"r","site":"{long}"}}"#));
    let msg = e.to_string();
    assert!(msg.len() < 220, "{} bytes: {msg}", msg.len());
    assert!(
        msg.starts_with("unexpected value at line 1 column"),
        "{msg}"
    );
}

#[test]
fn duplicate_imp_ids_are_found_among_many() {
    let request = |ids: &[String]| {
        let imps: Vec<String> = ids
            .iter()
            .map(|id| format!(r#"{{"id":"{id}","banner":{{"w":1,"h":1}}}}"#))
            .collect();
        format!(r#"{{"id":"r","imp":[{}]}}"#, imps.join(","))
    };
    for n in [2usize, 16, 17, ortb::MAX_LISTED_OBJECTS as usize] {
        let mut ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
        assert!(parse(&request(&ids)).validate().is_ok(), "{n} imps");
        ids[n - 1] = "i0".into();
        assert_eq!(
            invalid(&request(&ids)),
            InvalidRequest::DuplicateImpId {
                index: n - 1,
                first: 0
            },
            "{n} imps"
        );
    }
}

/// `body` is well-formed JSON refused for one of the reader's bounds, with
/// a message that ends with `why`.
fn refused_past_a_bound(body: &str, why: &str) {
    let e = parse_err(body);
    assert!(matches!(e, ParseError::Unexpected { .. }), "{e:?}");
    assert!(e.to_string().ends_with(why), "{e}");
}

/// The lists of one request hold at most `MAX_LISTED_OBJECTS` objects in
/// all, counted across lists: imps and the formats inside them alike.
#[test]
fn objects_in_lists_are_bounded_per_request() {
    let max = ortb::MAX_LISTED_OBJECTS as usize;
    let imps = |n: usize, formats: usize| {
        let format = vec![r#"{"w":1,"h":1}"#; formats].join(",");
        let imp = format!(r#"{{"id":"1","banner":{{"format":[{format}]}}}}"#);
        format!(r#"{{"id":"r","imp":[{}]}}"#, vec![imp; n].join(","))
    };
    assert_eq!(parse(&imps(max, 0)).imp.len(), max);
    assert_eq!(parse(&imps(max / 2, 1)).imp.len(), max / 2);
    for body in [imps(max + 1, 0), imps(max / 2, 2), imps(1, max)] {
        refused_past_a_bound(&body, "more than 10000 objects in the request's lists");
    }
    // Empty objects count too: they were the cheapest way to make many.
    let empties = format!(r#"{{"imp":[{}]}}"#, vec!["[]"; max + 1].join(","));
    assert!(matches!(parse_err(&empties), ParseError::Unexpected { .. }));
}

/// What a parsed request holds is bounded by `MAX_PARSED_BYTES`, however
/// its body makes it grow: numbers written out as text (`1e308` is 309
/// characters), long lists of codes or strings.
#[test]
fn what_a_request_holds_once_read_is_bounded() {
    let list = |field: &str, item: &str, n: usize| {
        format!(r#"{{"id":"r","{field}":[{}]}}"#, vec![item; n].join(","))
    };
    let refused = |body: String| {
        refused_past_a_bound(
            &body,
            "the request would hold more than 8388608 bytes once read",
        )
    };
    // About 1 MiB each: 100 MB, 8.4 MB and 12 MB once read, unbounded.
    refused(list("cur", "1e308", 170_000));
    refused(list("bcat", r#""""#, 350_000));
    refused(list("bcat", "1", 500_000));
    // Long real lists are far from it.
    let long = list("badv", r#""brand.example""#, 5_000);
    assert_eq!(parse(&long).badv.len(), 5_000);
}

// ---------------------------------------------------------------------------
// The crate's reader and serde's derive read alike

/// Outcome of one reader, in a form two readers can be compared by: the
/// request's `Debug`, or the kind of refusal.
fn outcome(read: Result<ortb::BidRequest<'_>, ParseError>) -> String {
    match read {
        Ok(req) => format!("{req:?}"),
        Err(ParseError::Malformed { .. }) => "malformed".into(),
        Err(ParseError::Unexpected { .. }) => "unexpected".into(),
    }
}

/// Ids come back in the answer (`id`, `impid`, `dealid`) and the exchange
/// matches them as text: an integer id is echoed digit for digit, and a
/// number whose text would change (`1.50` to `1.5`, 23 digits rounded) is
/// refused, as serde's model refuses it, rather than answered with a bid
/// the exchange cannot match.
#[test]
fn numeric_ids_are_echoed_exactly_or_refused() {
    let req = parse(
        r#"{"id":18446744073709551615,"imp":[{"id":-7,"banner":{"w":300,"h":250},
            "pmp":{"deals":[{"id":9007199254740993}]}}]}"#,
    );
    assert_eq!(req.id, "18446744073709551615");
    assert_eq!(req.imp[0].id, "-7");
    let deals = &req.imp[0].pmp.as_ref().unwrap().deals;
    assert_eq!(deals[0].id, "9007199254740993", "past f64's exact integers");
    for (what, body) in [
        (
            "a request id past 64 bits",
            r#"{"id":18446744073709551616,"imp":[]}"#,
        ),
        ("a fraction", r#"{"id":"r","imp":[{"id":1.50}]}"#),
        ("an exponent", r#"{"id":"r","imp":[{"id":1e3}]}"#),
        ("an integral float", r#"{"id":1.0,"imp":[]}"#),
        (
            "a deal id",
            r#"{"id":"r","imp":[{"id":"1","pmp":{"deals":[{"id":2.5}]}}]}"#,
        ),
    ] {
        for parsed in [
            parse_request(body.as_bytes()),
            ortb::parse_request_serde(body.as_bytes()),
        ] {
            match parsed {
                Err(ParseError::Unexpected { reason, .. }) => {
                    assert!(reason.contains("echoed as sent"), "{what}: {reason}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
    }
    // Other string fields stay lenient: a fractional publisher id is text.
    let req = parse(r#"{"id":"r","imp":[],"site":{"publisher":{"id":1.50}}}"#);
    let publisher = req.site.as_ref().unwrap().publisher.as_ref().unwrap();
    assert_eq!(publisher.id.as_deref(), Some("1.5"));
}

/// Edges where the two could part ways, each seen once by the fuzzing or
/// found in serde_json's source; the fuzz tests draw the rest.
#[test]
fn the_reader_agrees_with_serde_on_known_edges() {
    let halfway = format!(r#"{{"id":1{}e-745}}"#, "0".repeat(768));
    let tiny_huge = format!(r#"{{"tmax":0.{}1e655360}}"#, "0".repeat(65_535));
    let huge_tiny = format!(r#"{{"tmax":1{}e-655360}}"#, "0".repeat(65_536));
    let bodies: &[&[u8]] = &[
        // A lone boolean where a code list belongs is no code; inside the list it is 0 or 1.
        br#"{"imp":[{"audio":{"rqddurs":false,"battr":[true,false]}}]}"#,
        br#"{"cur":1,"bcat":["a",2,true,null,{}],"wseat":"s"}"#,
        // PHP encodes an empty object as `[]`; serde reads any array positionally.
        br#"{"id":"r","regs":[],"user":[],"imp":[[]]}"#,
        br#"{"regs":[1,0,"1YNN"]}"#,
        br#"{"regs":[1,0,"1YNN",null,[],null,5]}"#,
        // Keys are matched after decoding; a key seen twice is refused.
        br#"{"\u0069d":"r","imp":[]}"#,
        br#"{"id":"r","id":"s"}"#,
        br#"{"id":"r","x":1,"x":2}"#,
        // serde refuses the second key before it looks for its colon.
        br#"{"id":"r","id" 5}"#,
        // A lone surrogate: refused in a field read, let through in a value skipped or kept raw.
        br#"{"id":"\ud800"}"#,
        br#"{"x":"\ud800","ext":"\udc00","imp":[{"ext":{"k":"\ud800"}}]}"#,
        br#"{"user":{"id":{"\ud800":1}}}"#,
        // A floor currency written as no string: drained as serde drains it.
        br#"{"imp":[{"bidfloorcur":{"\ud800":0}}]}"#,
        br#"{"imp":[{"bidfloorcur":["EUR"],"pmp":{"deals":[{"bidfloorcur":true}]}}]}"#,
        // Numbers: range checked where one is read, not where one is skipped or kept raw.
        br#"{"imp":[{"banner":{"w":1e400}}]}"#,
        br#"{"x":1e400,"ext":-1e400,"imp":[{"bidfloor":1e400}]}"#,
        br#"{"tmax":-0,"test":18446744073709551616,"at":-9223372036854775809,"id":12.50}"#,
        br#"{"id":01}"#,
        // Halfway between two floats past serde's 768 digits, and an exponent
        // past 65535: `str::parse` reads both otherwise.
        halfway.as_bytes(),
        tiny_huge.as_bytes(),
        huge_tiny.as_bytes(),
        br#"{"id":1.}"#,
        br#"{"id":-}"#,
        // Syntax, and what is refused as the wrong shape after it is read.
        br#"{"id":"r",}"#,
        br#"{"imp":[1,]}"#,
        br#"{"imp":5}"#,
        br#"{"site":"\q"}"#,
        br#"{"site":nul}"#,
        br#"{"site":1e400}"#,
        br#"{"id":"r"} x"#,
        b"{\"id\":\"\x01\"}",
        b"",
        b"   ",
        // Not UTF-8: fine where nobody reads it, refused where a field does.
        b"{\"x\":\"\xff\",\"id\":\"r\"}",
        b"{\"id\":\"\xff\"}",
        b"{\"ext\":\"\xff\"}",
        b"{\"\xff\":1}",
    ];
    for body in bodies {
        assert_eq!(
            outcome(parse_request(body)),
            outcome(ortb::parse_request_serde(body)),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

/// A `null` inside a list of objects (a serializer's missing entry) is
/// skipped, as a `null` list is empty: it made the whole request a 400
/// (exchange probe 9).
#[test]
fn a_null_in_a_list_of_objects_is_skipped() {
    let req = parse(
        r#"{"id":"r","imp":[null,{"id":"1","banner":{"format":[null,{"w":300,"h":250}]}}],
            "user":{"eids":[null,{"source":"s","uids":[null,{"id":"u"}]}],"data":[null]},
            "source":{"schain":{"complete":1,"nodes":[null,{"asi":"a","sid":"1"}]}}}"#,
    );
    assert_eq!(req.imp.len(), 1);
    let banner = req.imp[0].banner.as_ref().unwrap();
    assert_eq!(banner.format.len(), 1);
    let user = req.user.as_ref().unwrap();
    assert_eq!(user.eids.len(), 1);
    assert_eq!(user.eids[0].uids.len(), 1);
    assert!(user.data.is_empty());
    let schain = req.source.as_ref().unwrap().schain().unwrap();
    assert_eq!(schain.nodes.len(), 1);
}

/// `wlang` and `wlangb` are read up to `MAX_LANGUAGE_ENTRIES` entries each
/// and `MAX_LANGUAGES` languages in all: every creative that says its
/// language is compared with each language read, and a list of 100,000
/// cost a request 140 ms at 1,000 line items. What the bounds cut off is
/// never allowed, and a cut never loosens a list.
#[test]
fn language_lists_are_read_up_to_a_bound() {
    use ortb::{MAX_LANGUAGES, MAX_LANGUAGE_ENTRIES};
    let list = |field: &str, entries: &[String]| {
        format!(r#"{{"id":"r","{field}":[{}]}}"#, entries.join(","))
    };
    let quoted = |s: &str| format!("\"{s}\"");
    let allowed = |body: &str| parse(body).allowed_languages().map(|l| l.into_vec());
    let times = |s: &str, n: usize| vec![quoted(s); n];

    // One tag per language and script: ten thousand `en` are one.
    assert_eq!(
        allowed(&list("wlang", &times("en", 10_000))),
        Some(vec!["en".to_owned()])
    );
    // Regions are not compared, so they take no places: `pt-BR` after
    // forty regions of Spanish is read.
    let mut regions: Vec<String> = (0..40).map(|i| quoted(&format!("es-r{i}"))).collect();
    regions.push(quoted("pt-BR"));
    assert_eq!(
        allowed(&list("wlangb", &regions)),
        Some(vec!["es-r0".to_owned(), "pt-br".to_owned()])
    );
    // Past `MAX_LANGUAGES` languages, the next is not allowed.
    let letters = |i: usize| {
        let a = b"abcfghijklmnopqrstuvwxyz";
        format!("{}{}", a[i / a.len()] as char, a[i % a.len()] as char)
    };
    let mut many: Vec<String> = (0..MAX_LANGUAGES).map(|i| quoted(&letters(i))).collect();
    many.push(quoted("de"));
    let read = allowed(&list("wlang", &many)).unwrap();
    assert_eq!(read.len(), MAX_LANGUAGES);
    assert!(!read.contains(&"de".to_owned()), "{read:?}");
    // Past `MAX_LANGUAGE_ENTRIES` entries, nothing more is read.
    let mut late = times("en", MAX_LANGUAGE_ENTRIES);
    late.push(quoted("de"));
    assert_eq!(allowed(&list("wlang", &late)), Some(vec!["en".to_owned()]));
    // Entries that name no language, up to the bound, then a language:
    // the list allows none, not every language.
    let mut junk = vec!["1".to_owned(); MAX_LANGUAGE_ENTRIES];
    junk.push(quoted("en"));
    assert_eq!(allowed(&list("wlang", &junk)), Some(vec![]));
    // Within the bounds such entries restrict nothing, as before.
    assert_eq!(allowed(&list("wlang", &["1".into(), quoted("?")])), None);
}

/// A slot's protocol, delivery, companion-type and blocking lists keep an
/// entry they cannot read as [`ortb::UNREADABLE_CODE`] (a list of it for
/// a value that is no list, code, boolean or null), both readers alike:
/// dropped, `protocols: ["x"]` was read as no list and bid as if the
/// player took anything, `battr: [14.5]` as blocking nothing (video
/// probe). Other code lists still drop it.
#[test]
fn unreadable_entries_of_slot_lists_are_kept_marked() {
    let x = ortb::UNREADABLE_CODE;
    for (video, protocols, battr, api) in [
        (
            r#"{"protocols":["x"],"battr":[14.5],"api":["x"]}"#,
            vec![x],
            vec![x],
            vec![],
        ),
        (
            r#"{"protocols":"x","battr":{"a":1},"api":"x"}"#,
            vec![x],
            vec![x],
            vec![],
        ),
        (
            r#"{"protocols":[2,null,[3]],"battr":[1,"2"]}"#,
            vec![2, x, x],
            vec![1, 2],
            vec![],
        ),
        (
            r#"{"protocols":null,"battr":true,"api":[7]}"#,
            vec![],
            vec![],
            vec![7],
        ),
        (
            r#"{"protocols":2147483648,"battr":[]}"#,
            vec![x],
            vec![],
            vec![],
        ),
        // A blank string where the list belongs is no list; in it, an
        // entry that is no code.
        (r#"{"protocols":" ","battr":[""]}"#, vec![], vec![x], vec![]),
    ] {
        let body = format!(r#"{{"id":"r","imp":[{{"id":"1","video":{video}}}]}}"#);
        for (how, req) in [
            ("reader", ortb::parse_request(body.as_bytes())),
            ("serde", ortb::parse_request_serde(body.as_bytes())),
        ] {
            let req = req.unwrap_or_else(|e| panic!("{how} {video}: {e}"));
            let v = req.imp[0].video.as_deref().unwrap();
            assert_eq!(v.protocols[..], protocols[..], "{how} {video}");
            assert_eq!(v.battr[..], battr[..], "{how} {video}");
            assert_eq!(v.api[..], api[..], "{how} {video}");
        }
    }
}
