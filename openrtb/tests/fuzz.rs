//! Fuzzing on stable: property tests that feed the request parser, the
//! request checks and the response reader random and mutated input.
//!
//! `cargo-fuzz` needs nightly, which CI does not have, so the corpus-mutation
//! fuzzing lives here as proptest properties. The normal test run does a
//! bounded number of cases per property (see [`config`]); `scripts/fuzz.sh`
//! runs the same properties in release mode for as long as it is given,
//! with `PROPTEST_CASES` raised and a fresh `PROPTEST_RNG_SEED` each round.
//!
//! Every request body also goes through [`ortb::parse_request_serde`], the
//! serde model the crate's own reader must match: the same request, or a
//! refusal of the same kind.
//!
//! The property everywhere: no input makes [`ortb::parse_request`],
//! [`ortb::BidRequest::validate`], the request's accessors or the
//! `BidResponse` reader panic or overflow the stack; each returns a value
//! or a typed error, and error texts stay short enough for a 400 body.

use std::fs;
use std::sync::LazyLock;

use ortb::{parse_request, BidRequest, BidResponse, ParseError};
use proptest::prelude::*;
use proptest::sample::Index;

mod common;
use common::{json_files, REQUESTS, RESPONSES};

#[path = "../../scripts/fuzz_support.rs"]
mod fuzz_support;
use fuzz_support::{byte_edits, config, remember, ByteEdit, JSON_TOKENS};

fn corpus(dir: &str) -> Vec<Vec<u8>> {
    json_files(dir)
        .iter()
        .map(|p| fs::read(p).unwrap())
        .collect()
}

static REQUEST_CORPUS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| corpus(REQUESTS));
static RESPONSE_CORPUS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| corpus(RESPONSES));

// ---------------------------------------------------------------------------
// Mutations

/// Text put in place of one JSON value: other types, edge numbers, escapes
/// serde_json refuses, deep nesting and huge arrays.
fn replacement() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => edge_values(),
        2 => json_value(),
        1 => deep_nesting(),
        1 => huge_array(),
        1 => (0usize..65_536).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
        1 => (1usize..600).prop_map(|n| format!("1{}", "0".repeat(n))),
        1 => (1usize..600).prop_map(|n| format!("0.{}1", "0".repeat(n))),
    ]
}

/// Small values at the edges: other types, edge numbers, escapes serde_json
/// refuses.
fn edge_values() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1",
        "-1",
        "300.0",
        "300.5",
        "1.5e2",
        "1e400",
        "-1e400",
        "1e-400",
        "2147483648",
        "-2147483649",
        "18446744073709551616",
        "99999999999999999999999999999999",
        "0.0000001",
        "\"\"",
        "\"1\"",
        "\" 7 \"",
        "\"NaN\"",
        "\"inf\"",
        "\"1e99999\"",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "\"\\udc00\\ud800\"",
        "\"\\uD83D\\uDE00\"",
        "\"caf\\u00e9 \\\"quoted\\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
        "[]",
        "{}",
        "[null]",
        "[1,\"a\",null,true,{},[]]",
        "{\"\":null}",
        "{\"id\":{\"id\":[{\"id\":1}]}}",
        "{\"gdpr\":\"1\",\"us_privacy\":1,\"gpp_sid\":\"2\",\"consent\":[]}",
        "{\"schain\":{\"nodes\":[{\"asi\":1},null]},\"eids\":{},\"segtax\":\"x\"}",
    ])
    .prop_map(str::to_owned)
}

/// Small random JSON of every type, written as text.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        // Mapped, not filtered: a long fuzz run would hit proptest's
        // limit on rejected values.
        any::<f64>().prop_map(|f| if f.is_finite() {
            format!("{f:e}")
        } else {
            "0".to_owned()
        }),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z_]{0,8}", inner), 0..6).prop_map(|kv| {
                let fields: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// Every key the request model reads, for JSON shaped like a request.
const MODEL_KEYS: &[&str] = &[
    "api",
    "apis",
    "app",
    "asi",
    "at",
    "atype",
    "audio",
    "badv",
    "banner",
    "bapp",
    "battr",
    "bcat",
    "bidfloor",
    "bidfloorcur",
    "boxingallowed",
    "bseat",
    "btype",
    "bundle",
    "buyeruid",
    "carrier",
    "cat",
    "cattax",
    "city",
    "companionad",
    "companiontype",
    "complete",
    "connectiontype",
    "consent",
    "content",
    "context",
    "coppa",
    "country",
    "cur",
    "data",
    "deals",
    "delivery",
    "device",
    "devicetype",
    "dnt",
    "domain",
    "dooh",
    "durfloors",
    "eids",
    "episode",
    "exp",
    "ext",
    "fd",
    "feed",
    "format",
    "gdpr",
    "gender",
    "genre",
    "geo",
    "gpp",
    "gpp_sid",
    "h",
    "hp",
    "hratio",
    "id",
    "ifa",
    "imp",
    "instl",
    "ip",
    "ipv6",
    "keywords",
    "kwarray",
    "language",
    "lat",
    "len",
    "linearity",
    "livestream",
    "lmt",
    "lon",
    "long",
    "make",
    "maxbitrate",
    "maxdur",
    "maxduration",
    "maxextended",
    "maxseq",
    "metro",
    "mimes",
    "minbitrate",
    "mincpmpersec",
    "mindur",
    "minduration",
    "mobile",
    "multiplier",
    "model",
    "name",
    "native",
    "nodes",
    "nvol",
    "os",
    "osv",
    "page",
    "pagecat",
    "pchain",
    "placement",
    "playbackend",
    "playbackmethod",
    "plcmt",
    "pmp",
    "poddur",
    "podid",
    "podseq",
    "pos",
    "private_auction",
    "prodq",
    "producer",
    "protocol",
    "protocols",
    "publisher",
    "qty",
    "ref",
    "region",
    "regs",
    "request",
    "rid",
    "rqddurs",
    "rwdd",
    "schain",
    "search",
    "season",
    "sectioncat",
    "secure",
    "segment",
    "sequence",
    "series",
    "sid",
    "site",
    "skip",
    "skipafter",
    "skipmin",
    "slotinpod",
    "source",
    "startdelay",
    "stitched",
    "storeurl",
    "tagid",
    "test",
    "tid",
    "title",
    "tmax",
    "topframe",
    "type",
    "ua",
    "uids",
    "url",
    "us_privacy",
    "user",
    "utcoffset",
    "value",
    "vcm",
    "ver",
    "video",
    "w",
    "wadomain",
    "wlang",
    "wlangb",
    "wmin",
    "wratio",
    "wseat",
    "yob",
    "zip",
];

/// Random JSON whose keys are mostly the model's own, at any depth: every
/// field meets every type, twice sometimes, spelt with escapes sometimes,
/// and objects meet arrays (which serde reads positionally).
fn request_shaped() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        8 => prop::sample::select(MODEL_KEYS).prop_map(str::to_owned),
        // `\u0069d` is `id`: keys are matched after decoding.
        1 => prop::sample::select(MODEL_KEYS).prop_map(|k| {
            let mut chars = k.chars();
            let first = chars.next().map_or(0, u32::from);
            format!("\\u{first:04x}{}", chars.as_str())
        }),
        1 => "[a-z_]{0,8}",
    ];
    let leaf = prop_oneof![
        4 => edge_values(),
        2 => json_value(),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            3 => prop::collection::vec((key.clone(), inner), 0..8).prop_map(|kv| {
                let fields: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// Arrays and objects nested up to 100,000 deep (balanced), the classic
/// recursive-descent stack overflow.
fn deep_nesting() -> impl Strategy<Value = String> {
    (
        prop_oneof![1usize..200, 200usize..5_000, 5_000usize..100_001],
        0u8..3,
    )
        .prop_map(|(depth, kind)| {
            let (open, close) = match kind {
                0 => ("[", "]"),
                1 => ("{\"a\":", "}"),
                _ => ("[{\"ext\":", "}]"),
            };
            format!("{}1{}", open.repeat(depth), close.repeat(depth))
        })
}

/// Long arrays of small elements. Bounded so that one case stays cheap in
/// debug builds; `validate` on many imps is covered apart (see
/// `validate_of_a_1_mib_request_of_imps_is_fast`).
fn huge_array() -> impl Strategy<Value = String> {
    (
        0usize..20_000,
        prop::sample::select(vec!["0", "\"x\"", "null", "{}", "[]", "{\"id\":\"1\"}"]),
    )
        .prop_map(|(n, elem)| format!("[{}]", vec![elem; n].join(",")))
}

/// Where a JSON value starting at `start` ends: strings to their closing
/// quote, containers to their matching bracket, scalars to the next
/// delimiter. Approximate on malformed text, which is fine for a mutator.
fn value_end(text: &[u8], start: usize) -> usize {
    match text.get(start) {
        Some(b'"') => {
            let mut i = start + 1;
            while i < text.len() {
                match text[i] {
                    b'\\' => i += 2,
                    b'"' => return i + 1,
                    _ => i += 1,
                }
            }
            text.len()
        }
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = start;
            while i < text.len() {
                match text[i] {
                    b'"' => {
                        i = value_end(text, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            text.len()
        }
        _ => text[start..]
            .iter()
            .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
            .map_or(text.len(), |n| start + n),
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Bytes(ByteEdit),
    /// Replace the value after the `n`th `:` (a member's value) with another.
    SwapValue(Index, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens: Vec<&str> = JSON_TOKENS
        .iter()
        .copied()
        .chain([
            "\"\\u", "\"ext\":", "\u{feff}", "\u{0}", "\u{fffd}", "\t\r\n ", "/*", ".", "e", "E+",
        ])
        .collect();
    let inserted = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..16),
        prop::sample::select(tokens).prop_map(|s| s.as_bytes().to_vec()),
        (
            1usize..50_000,
            prop::sample::select(vec!["[", "{", "{\"a\":", "[{\"ext\":"])
        )
            .prop_map(|(n, s)| s.repeat(n).into_bytes()),
    ];
    prop_oneof![
        11 => byte_edits(inserted, 200, 400).prop_map(Mutation::Bytes),
        4 => (any::<Index>(), replacement()).prop_map(|(at, v)| Mutation::SwapValue(at, v)),
    ]
}

fn apply(mut body: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    match mutation {
        Mutation::Bytes(edit) => edit.apply(&mut body),
        Mutation::SwapValue(at, value) => {
            let colons: Vec<usize> = body
                .iter()
                .enumerate()
                .filter(|&(_, &b)| b == b':')
                .map(|(i, _)| i)
                .collect();
            if !colons.is_empty() {
                let colon = colons[at.index(colons.len())];
                let start = body[colon + 1..]
                    .iter()
                    .position(|b| !b.is_ascii_whitespace())
                    .map_or(body.len(), |n| colon + 1 + n);
                let end = value_end(&body, start);
                body.splice(start..end, value.bytes());
            }
        }
    }
    body
}

// ---------------------------------------------------------------------------
// What is checked of every outcome

/// The longest error reason (`MAX_REASON` in src/error.rs) plus the `…`.
const MAX_REASON_BYTES: usize = 120 + '…'.len_utf8();

fn check_error(e: &ParseError) {
    let (ParseError::Malformed { reason, .. } | ParseError::Unexpected { reason, .. }) = e;
    assert!(
        reason.len() <= MAX_REASON_BYTES,
        "reason of {} bytes: {reason}",
        reason.len()
    );
    assert!(!e.to_string().is_empty());
}

/// Reads everything a parsed request offers, the way the bidder would: the
/// required-field checks, every accessor (several of which parse an `ext`
/// again) and the whole model through `Debug`.
fn exercise(req: &BidRequest<'_>) {
    if let Err(e) = req.validate() {
        assert!(!e.to_string().is_empty());
    }
    let _ = (req.auction_type(), req.is_test());
    for imp in &req.imp {
        let _ = imp.has_media();
        if let Some(banner) = &imp.banner {
            let _ = banner.sizes().count();
        }
        if let Some(video) = &imp.video {
            let _ = video.api_frameworks();
            for companion in &video.companionad {
                let _ = companion.sizes().count();
            }
        }
    }
    if let Some(user) = req.user.as_ref() {
        let _ = user.consent();
        let _ = user.eids().len();
        for data in &user.data {
            let _ = data.segtax();
        }
        if let Some(geo) = &user.geo {
            let _ = geo.longitude();
        }
    }
    if let Some(geo) = req.device.as_ref().and_then(|d| d.geo.as_ref()) {
        let _ = geo.longitude();
    }
    if let Some(regs) = &req.regs {
        let _ = (regs.gdpr(), regs.us_privacy(), regs.gpp());
        let _ = (regs.gpp_sid().len(), regs.is_coppa());
        // All signals at once read as each accessor reads its own.
        let all = regs.signals();
        assert_eq!(all.gdpr, regs.gdpr());
        assert_eq!(all.us_privacy, regs.us_privacy());
        assert_eq!(all.gpp, regs.gpp());
        assert_eq!(all.gpp_sid, regs.gpp_sid().into_owned());
    }
    if let Some(source) = &req.source {
        let _ = source.schain().map(|s| s.nodes.len());
    }
    let _ = format!("{req:?}");
}

/// The crate's own reader and serde's derive agree: the same request, or
/// the same kind of refusal (the texts may differ).
fn check_same_as_serde(body: &[u8], ours: &Result<BidRequest<'_>, ParseError>) {
    // The reader's refusals of its own (`ortb::MAX_LISTED_OBJECTS`,
    // `ortb::MAX_PARSED_BYTES`): the huge arrays drawn here can reach them.
    if let Err(ParseError::Unexpected { reason, .. }) = ours {
        if reason.contains("objects in the request's lists") || reason.contains("once read") {
            return;
        }
    }
    let reference = ortb::parse_request_serde(body);
    let agree = match (ours, &reference) {
        (Ok(a), Ok(b)) => format!("{a:?}") == format!("{b:?}"),
        (Err(ParseError::Malformed { .. }), Err(ParseError::Malformed { .. })) => true,
        (Err(ParseError::Unexpected { .. }), Err(ParseError::Unexpected { .. })) => true,
        _ => false,
    };
    if !agree {
        let shown = String::from_utf8_lossy(&body[..body.len().min(4000)]);
        panic!("reader: {ours:?}\nserde: {reference:?}\nbody: {shown}");
    }
}

fn check_request(property: &str, body: &[u8]) {
    remember(property, body);
    let ours = parse_request(body);
    check_same_as_serde(body, &ours);
    // What the bidder calls: read into a request it keeps, in a slot that
    // held another request (none of whose fields may carry over).
    let mut slot =
        parse_request(br#"{"id":"old","tmax":99,"site":{"page":"p"},"user":{"buyeruid":"u"}}"#)
            .ok();
    match (&ours, ortb::parse_request_into(body, &mut slot)) {
        (Ok(a), Ok(kept)) => assert_eq!(format!("{a:?}"), format!("{kept:?}")),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (a, b) => panic!("parse_request: {a:?}\nparse_request_into: {b:?}"),
    }
    match ours {
        Ok(req) => exercise(&req),
        Err(e) => check_error(&e),
    }
}

fn check_response(property: &str, body: &[u8]) {
    remember(property, body);
    let Ok(resp) = serde_json::from_slice::<BidResponse>(body) else {
        return;
    };
    let _ = format!("{resp:?}");
    // What we read, we can write, and prices below 2^53 micros (where the
    // writer is exact) read back unchanged.
    let json = serde_json::to_string(&resp).expect("a read response serialises");
    let prices = |r: &BidResponse| -> Vec<i64> {
        r.seatbid
            .iter()
            .flat_map(|s| &s.bid)
            .map(|b| b.price_micros)
            .collect()
    };
    if prices(&resp).iter().all(|p| p.unsigned_abs() < 1 << 53) {
        let again: BidResponse = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("re-reading our own output: {e}\n{json}"));
        assert_eq!(prices(&again), prices(&resp), "{json}");
        assert_eq!(again.id, resp.id);
    }
}

// ---------------------------------------------------------------------------
// Properties

mod properties {
    use super::*;

    proptest! {
        #![proptest_config(config(128))]

        /// One to four mutations of a vendored request.
        #[test]
        fn mutated_corpus_requests_parse_or_fail_cleanly(
            file in any::<Index>(),
            mutations in prop::collection::vec(mutation(), 1..5),
        ) {
            let corpus = &*REQUEST_CORPUS;
            let mut body = corpus[file.index(corpus.len())].clone();
            for m in &mutations {
                body = apply(body, m);
            }
            check_request("mutated_corpus_requests", &body);
        }

        /// One to three member values of a vendored request replaced by
        /// another type, an edge number, deep nesting or a huge array: the
        /// request mostly stays well-formed JSON, so what is tested is the
        /// tolerant field readers rather than the JSON syntax checks.
        #[test]
        fn requests_with_a_swapped_value_parse_or_fail_cleanly(
            file in any::<Index>(),
            swaps in prop::collection::vec((any::<Index>(), replacement()), 1..4),
        ) {
            let corpus = &*REQUEST_CORPUS;
            let mut body = corpus[file.index(corpus.len())].clone();
            for (at, value) in swaps {
                body = apply(body, &Mutation::SwapValue(at, value));
            }
            check_request("swapped_value_requests", &body);
        }

        /// JSON shaped like a request, keys from the model, values of any
        /// type: where the two readers could part ways, they must not.
        #[test]
        fn request_shaped_json_reads_as_serde_reads_it(body in request_shaped()) {
            check_request("request_shaped", body.as_bytes());
            check_request("request_shaped_in_imp", format!(r#"{{"imp":[{body}],"site":{body}}}"#).as_bytes());
        }

        /// The 2.5 homes of 2.6 members (`regs.ext.gdpr`, `user.ext.consent`,
        /// `source.ext.schain`, ...) read as serde's derive reads the same
        /// members in the object itself: an ext is read by the request's
        /// reader when an accessor asks for it, and must not part ways with
        /// serde_json, which read it before.
        #[test]
        fn ext_members_read_as_the_same_members_of_the_object(
            members in prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "gdpr", "us_privacy", "gpp", "gpp_sid", "consent", "eids", "schain", "x",
                    ]),
                    prop_oneof![edge_values(), json_value()],
                ),
                0..5,
            ),
        ) {
            let ext: Vec<String> = members.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let ext = format!("{{{}}}", ext.join(","));
            let in_ext = format!(
                r#"{{"regs":{{"ext":{ext}}},"user":{{"ext":{ext}}},"source":{{"ext":{ext}}}}}"#
            );
            let req = parse_request(in_ext.as_bytes()).unwrap();
            let (regs, user, source) = (
                req.regs.as_ref().unwrap(),
                req.user.as_ref().unwrap(),
                req.source.as_ref().unwrap(),
            );
            // Compared only where serde reads the members in the object:
            // it refuses the whole object for one bad member the ext read
            // does not read (an ext read refuses only for its own fields).
            // `read::ext`'s own tests hold it to serde on the ext itself.
            if let Ok(r) = ortb::parse_request_serde(format!(r#"{{"regs":{ext}}}"#).as_bytes()) {
                let r = r.regs.unwrap();
                let signals = regs.signals();
                prop_assert_eq!(signals.gdpr, r.gdpr);
                prop_assert_eq!(signals.us_privacy, r.us_privacy);
                prop_assert_eq!(signals.gpp, r.gpp);
                prop_assert_eq!(signals.gpp_sid, r.gpp_sid);
            }
            if let Ok(u) = ortb::parse_request_serde(format!(r#"{{"user":{ext}}}"#).as_bytes()) {
                let u = u.user.unwrap();
                prop_assert_eq!(user.consent(), u.consent);
                prop_assert_eq!(format!("{:?}", user.eids()), format!("{:?}", u.eids));
            }
            if let Ok(s) = ortb::parse_request_serde(format!(r#"{{"source":{ext}}}"#).as_bytes()) {
                let s = s.source.unwrap();
                prop_assert_eq!(
                    format!("{:?}", source.schain().map(|c| c.into_owned())),
                    format!("{:?}", s.schain)
                );
            }
        }

        /// A geo's coordinates, the request's float fields, as serde reads
        /// them: numbers as exchanges write them (negative, whole, with a
        /// fraction or an exponent, past every integer type), or any other
        /// value.
        #[test]
        fn coordinates_read_as_serde_reads_them(
            values in prop::collection::vec(
                prop_oneof![
                    any::<i64>().prop_map(|n| n.to_string()),
                    // Past i64 too: serde reads them as `u64` first.
                    any::<u64>().prop_map(|n| n.to_string()),
                    (any::<bool>(), any::<u16>(), "[0-9]{1,5}").prop_map(|(neg, i, f)| {
                        format!("{}{i}.{f}", if neg { "-" } else { "" })
                    }),
                    any::<f64>().prop_map(|f| if f.is_finite() { f.to_string() } else { "0".to_owned() }),
                    edge_values(),
                    json_value(),
                ],
                3,
            ),
        ) {
            let body = format!(
                r#"{{"id":"1","imp":[{{"id":"1"}}],"device":{{"geo":{{"lat":{},"lon":{},"long":{}}}}}}}"#,
                values[0], values[1], values[2]
            );
            check_request("coordinates", body.as_bytes());
        }

        /// Bytes with no structure, and soup of JSON tokens.
        #[test]
        fn random_bytes_parse_or_fail_cleanly(
            bytes in prop::collection::vec(any::<u8>(), 0..4096),
            tokens in prop::collection::vec(
                prop::sample::select(vec![
                    "{", "}", "[", "]", ",", ":", "\"id\"", "\"imp\"", "\"banner\"", "\"ext\"",
                    "\"regs\"", "\"user\"", "\"bidfloor\"", "\"1\"", "1", "-1.5e3", "null", "true",
                    "\"", "\\", " ",
                ]),
                0..400,
            ),
        ) {
            check_request("random_bytes", &bytes);
            check_request("token_soup", tokens.concat().as_bytes());
        }

        /// Mutated vendored responses through the `BidResponse` reader.
        #[test]
        fn mutated_corpus_responses_read_or_fail_cleanly(
            file in any::<Index>(),
            mutations in prop::collection::vec(mutation(), 1..5),
        ) {
            let corpus = &*RESPONSE_CORPUS;
            let mut body = corpus[file.index(corpus.len())].clone();
            for m in &mutations {
                body = apply(body, m);
            }
            check_response("mutated_corpus_responses", &body);
        }
    }
}

// ---------------------------------------------------------------------------
// Fixed cases the properties only reach by chance

/// `ext` (kept raw) and every other member nested 100,000 deep, at every
/// level of a request: a recursive reader would overflow the stack.
#[test]
fn nesting_100_000_deep_anywhere_does_not_overflow() {
    let deep =
        |open: &str, close: &str| format!("{}1{}", open.repeat(100_000), close.repeat(100_000));
    for (open, close) in [("[", "]"), ("{\"a\":", "}"), ("{\"ext\":", "}")] {
        let d = deep(open, close);
        for template in [
            r#"{"id":"r","imp":[{"id":"1","banner":{},"ext":D}]}"#,
            r#"{"id":"r","imp":[{"id":"1","banner":{"format":[{"w":1,"h":1,"ext":D}],"ext":D}}]}"#,
            r#"{"id":"r","imp":[{"id":"1","video":{"companionad":[{"ext":D}],"api":D}}]}"#,
            r#"{"id":"r","imp":[{"id":"1","banner":{}}],"user":{"ext":D,"data":[{"ext":D}]},"regs":{"ext":D},"source":{"ext":D}}"#,
            r#"{"id":"r","imp":[{"id":"1","banner":{}}],"site":{"cat":D,"content":{"ext":D},"publisher":{"ext":D}}}"#,
            r#"{"id":"r","imp":[{"id":"1","banner":{}}],"device":{"geo":{"lat":D,"ext":D}},"dooh":D,"ext":D}"#,
            r#"{"id":"r","imp":[{"id":"1","banner":{},"pmp":{"deals":[{"id":"d","ext":D}]}}],"unknown":D}"#,
            r#"{"id":D,"imp":D}"#,
            "D",
        ] {
            let body = template.replace('D', &d);
            check_request("fixed_nesting", body.as_bytes());
        }
        check_response(
            "fixed_nesting",
            format!(r#"{{"id":"r","seatbid":[{{"bid":[{{"id":"b","impid":"1","price":1,"ext":{d}}}],"ext":{d}}}],"ext":{d}}}"#).as_bytes(),
        );
    }
}

/// A request of about `bytes` bytes made of imps with distinct ids: the
/// shape that makes a duplicate-id scan do the most work.
fn many_imps(bytes: usize) -> (usize, String) {
    let mut body = String::from(r#"{"id":"r","imp":["#);
    let mut n = 0;
    while body.len() < bytes {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&format!(r#"{{"id":"{n}","banner":{{}}}}"#));
        n += 1;
    }
    body.push_str("]}");
    (n, body)
}

/// One request body at the default limit (1 MiB) holds about 40,000 imps.
/// The reader refuses that many (`ortb::MAX_LISTED_OBJECTS`), but
/// `validate` is public and must stay linear for any request: it once found
/// duplicate imp ids with a quadratic scan, about 10^9 string comparisons
/// for this one. serde's reader, which has no bound, builds the request.
/// The time bound is generous for a debug build.
#[test]
fn validate_of_a_1_mib_request_of_imps_is_fast() {
    let (n, body) = many_imps(1024 * 1024);
    assert!(n > ortb::MAX_LISTED_OBJECTS as usize);
    assert!(matches!(
        parse_request(body.as_bytes()),
        Err(ParseError::Unexpected { .. })
    ));
    let parse_request = ortb::parse_request_serde;
    let req = parse_request(body.as_bytes()).unwrap();
    assert_eq!(req.imp.len(), n);
    let start = std::time::Instant::now();
    assert_eq!(req.validate(), Ok(()));
    let took = start.elapsed();
    assert!(
        took < std::time::Duration::from_millis(500),
        "validate of {n} imps took {took:?}"
    );
    // The same with the last id repeating the first.
    let dup = body.replacen(&format!(r#""id":"{}""#, n - 1), r#""id":"0""#, 1);
    let req = parse_request(dup.as_bytes()).unwrap();
    assert_eq!(
        req.validate(),
        Err(ortb::InvalidRequest::DuplicateImpId {
            index: n - 1,
            first: 0
        })
    );
}

// ---------------------------------------------------------------------------
// Strings in values nobody reads, and the lists kept in place

/// `template` with each `S` replaced by a JSON string of raw `contents`.
fn with_string(template: &str, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in template.as_bytes() {
        if b == b'S' {
            out.push(b'"');
            out.extend_from_slice(contents);
            out.push(b'"');
        } else {
            out.push(b);
        }
    }
    out
}

/// A skipped string (an unknown field, an ext) is stepped over by a fast
/// path for plain strings and a slower one from its first escape: both
/// refuse what serde refuses, wherever the escape falls in an 8-byte word
/// and wherever the body ends.
#[test]
fn skipped_escapes_at_every_alignment() {
    let contents: &[&[u8]] = &[
        b"",
        b"\\\"",
        b"\\\\",
        b"abcdefg\\\"",
        b"abcdefgh\\\\",
        b"\\ud800",
        b"\\udc00\\ud800",
        b"\\u00",
        b"\\u00g0",
        b"\\q",
        b"a\x01b",
        b"\x1f",
        b"\\",
        b"abcdefgh",
        b"\xff",
        b"\\\xff",
    ];
    for s in contents {
        for pad in 0..9 {
            let p = " ".repeat(pad);
            for template in [
                format!("{{{p}\"zz\":S}}"),
                format!("{{{p}\"ext\":{{\"a\":S}}}}"),
                format!("{{{p}\"ext\":[S]}}"),
                format!("{{{p}\"zz\":S,"),
            ] {
                let body = with_string(&template, s);
                for cut in 0..=body.len() {
                    check_request("skipped_escapes", &body[..cut]);
                }
            }
        }
    }
}

/// A control character ends neither a skipped string nor the request, even
/// where taking it for the string's end would leave valid JSON.
#[test]
fn a_control_character_in_a_skipped_string_is_refused() {
    for body in [
        &b"{\"zz\":\"\x01,\"a\":1}"[..],
        b"{\"ext\":{\"k\":\"\x1f,\"a\":1}}",
        b"{\"zz\":\"\\n\x01,\"a\":1}",
    ] {
        assert!(
            matches!(parse_request(body), Err(ParseError::Malformed { .. })),
            "{body:?}"
        );
        check_request("control_in_skipped_string", body);
    }
}

/// Lists of 0 to 20 elements read alike in place and spilled (3 strings,
/// 8 codes fit in place).
#[test]
fn lists_read_alike_in_place_and_spilled() {
    for n in 0..=20usize {
        let strs: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
        let quoted: Vec<String> = strs.iter().map(|s| format!("\"{s}\"")).collect();
        let codes: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        let body = format!(
            r#"{{"cur":[{}],"imp":[{{"banner":{{"battr":[{}]}}}}]}}"#,
            quoted.join(","),
            codes.join(",")
        );
        let req = parse_request(body.as_bytes()).unwrap();
        assert_eq!(req.cur, strs, "{n} strings");
        let want: Vec<i32> = (0..n as i32).collect();
        let banner = req.imp[0].banner.as_ref().unwrap();
        assert_eq!(banner.battr, want, "{n} codes");
        assert_eq!(format!("{:?}", req.cur), format!("{strs:?}"));
        check_request("lists_in_place", body.as_bytes());
    }
}

mod skipped_and_lists {
    use super::*;

    /// Pieces of a JSON string's raw contents: plain text, escapes good
    /// and bad, control bytes and bytes that are not UTF-8.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => "[a-z0-9 ]{0,17}".prop_map(String::into_bytes),
            1 => prop::sample::select(vec![
                "\\\"", "\\\\", "\\/", "\\b", "\\n", "\\t", "\\u0041", "\\u00e9", "\\u0000",
                "\\ud800", "\\udc00", "\\uD83D\\uDE00", "\\ud800x", "\\x", "\\u12", "\\u12G4",
                "\\U0041", "\\", "\\u", "é", "😀",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            1 => (0u8..0x20).prop_map(|b| vec![b]),
            1 => prop::sample::select(vec![vec![0xffu8], vec![0xc3], vec![0xed, 0xa0, 0x80]]),
        ]
    }

    /// Where a string may sit: skipped (unknown fields, exts), read, and
    /// in lists.
    const STRING_PLACES: &[&str] = &[
        r#"{"zz":S}"#,
        r#"{"zz":[S,S]}"#,
        r#"{"zz":{S:1}}"#,
        r#"{"ext":{"k":S,"j":[1,S,{S:S}]}}"#,
        r#"{"id":"r","imp":[{"id":"1","banner":{"ext":{"k":S}},"ext":{S:[S]}}]}"#,
        r#"{"regs":{"ext":{"gdpr":S,"x":S}}}"#,
        r#"{"user":{"ext":{"consent":S,"eids":[{"source":S,"uids":[{"id":S}]}]}}}"#,
        r#"{"id":S}"#,
        r#"{"cur":[S,1,S,null,S,S]}"#,
        r#"{"imp":[{"banner":{"battr":[S,1,S]}}]}"#,
        r#"{"device":{"ua":S,"geo":{"lat":S}}}"#,
    ];

    /// An element of a code or string list, of any type.
    fn element() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (-3i64..40).prop_map(|n| n.to_string()),
            2 => "[a-z]{0,5}".prop_map(|s| format!("\"{s}\"")),
            1 => prop::sample::select(vec![
                "null", "true", "1.5", "2147483648", "1e3", "\"7\"", "\"a\\\"b\"", "[]", "{}",
                "1e400",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn list_value() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => prop::collection::vec(element(), 0..20).prop_map(|v| format!("[{}]", v.join(","))),
            // At and around the room in place: 3 strings, 8 codes.
            4 => (prop::sample::select(vec![2usize, 3, 4, 7, 8, 9, 16, 17]), element())
                .prop_map(|(n, e)| format!("[{}]", vec![e; n].join(","))),
            2 => element(),
            1 => Just("null".to_owned()),
        ]
    }

    const LIST_PLACES: &[&str] = &[
        r#"{"cur":L,"bcat":L,"badv":L}"#,
        r#"{"imp":[{"banner":{"battr":L,"btype":L,"api":L,"mimes":L}}]}"#,
        r#"{"imp":[{"video":{"protocols":L,"mimes":L,"companiontype":L,"playbackmethod":L}}]}"#,
        r#"{"imp":[{"pmp":{"deals":[{"id":"d","wseat":L,"wadomain":L}]}}]}"#,
        r#"{"site":{"cat":L,"pagecat":L,"publisher":{"cat":L},"content":{"cat":L}}}"#,
        r#"{"regs":{"gpp_sid":L}}"#,
    ];

    proptest! {
        #![proptest_config(config(128))]

        /// Strings with escapes, control bytes and bad UTF-8, read or
        /// skipped, across 8-byte boundaries, whole or cut short.
        #[test]
        fn escaped_strings_read_as_serde_reads_them(
            s in prop::collection::vec(piece(), 0..6).prop_map(|v| v.concat()),
            pad in 0usize..9,
            place in prop::sample::select(STRING_PLACES),
            cut in any::<Index>(),
        ) {
            let template = place.replacen('{', &format!("{{{}", " ".repeat(pad)), 1);
            let body = with_string(&template, &s);
            check_request("escaped_strings", &body);
            check_request("escaped_strings", &body[..cut.index(body.len() + 1)]);
        }

        /// Code and string lists of any length and element type.
        #[test]
        fn code_and_string_lists_read_as_serde_reads_them(
            place in prop::sample::select(LIST_PLACES),
            values in prop::collection::vec(list_value(), 8),
        ) {
            let mut body = String::new();
            let mut k = 0;
            for ch in place.chars() {
                if ch == 'L' {
                    body.push_str(&values[k % values.len()]);
                    k += 1;
                } else {
                    body.push(ch);
                }
            }
            check_request("lists", body.as_bytes());
        }
    }
}

/// A request whose tokens reach every place the reader skips whitespace:
/// the model's objects and lists (keys, colons, commas, both brackets,
/// empty ones), code and string lists, small integers and floats, members
/// nobody reads (skipped, nested, with empty containers), `ext`s kept raw
/// and read again by accessors, and the top-level value's both ends.
const EVERY_TOKEN: &str = r#"{"id":"r1","at":1,"tmax":120,"cur":["USD","EUR"],"bcat":[],"badv":["a.com"],"imp":[{"id":"1","bidfloor":1.5,"bidfloorcur":"USD","banner":{"w":300,"h":250,"format":[{"w":300,"h":250},{"w":728,"h":90}],"battr":[1,2]},"pmp":{"private_auction":0,"deals":[{"id":"d","bidfloor":2,"wseat":["s"]}]},"ext":{"a":[1,{"b":null}],"c":{}}}],"site":{"id":"s","domain":"example.com","cat":["IAB1"],"publisher":{"id":"p"}},"device":{"ua":"Mozilla","devicetype":2,"geo":{"country":"USA","lat":51.5,"lon":-0.12}},"user":{"id":"u","ext":{"consent":"CO","eids":[{"source":"x","uids":[{"id":"1"}]}]}},"regs":{"coppa":0,"ext":{"gdpr":1,"us_privacy":"1YNN","gpp_sid":[2,6]}},"source":{"ext":{"schain":{"ver":"1.0","complete":1,"nodes":[{"asi":"a.com","sid":"1","hp":1}]}}},"unknown":{"x":[true,false,null,-1e3,{},[]],"y":[]},"test":0}"#;

/// Positions of `body` outside its strings: between tokens, and inside
/// numbers and literals.
fn outside_strings(body: &[u8]) -> Vec<usize> {
    let (mut at, mut in_string, mut escaped) = (Vec::new(), false, false);
    for (i, &b) in body.iter().enumerate() {
        if !in_string {
            at.push(i);
        }
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (_, false, b'"') => in_string = !in_string,
            _ => {}
        }
    }
    at.push(body.len());
    at
}

/// What a request's accessors read from its `ext`s, which are read again
/// (by the same reader) when asked for.
fn ext_reads(req: &BidRequest<'_>) -> String {
    format!(
        "{:?} {:?} {:?} {:?}",
        req.regs.as_ref().map(|r| r.signals()),
        req.user
            .as_ref()
            .map(|u| (u.consent(), u.eids().into_owned())),
        req.source
            .as_ref()
            .map(|s| s.schain().map(|c| c.into_owned())),
        req.imp.iter().map(|i| i.has_media()).collect::<Vec<_>>(),
    )
}

/// Whitespace, control bytes, DEL and bytes from 0x80 up, and runs of
/// whitespace, at every place between tokens (and inside numbers and
/// literals) of a request that reaches every caller of the reader's
/// whitespace skip, and before the end of the body: read as serde_json
/// reads it. JSON's four whitespace bytes, alone or mixed, change nothing read;
/// every other byte below `!` (form feed, NUL, ...), DEL and every byte
/// from 0x80 up is refused as serde refuses it. The random properties
/// meet most of these by chance only.
#[test]
fn any_byte_between_tokens_reads_as_serde_reads_it() {
    let base = EVERY_TOKEN.as_bytes();
    let want = parse_request(base).expect("the base request reads");
    assert!(ortb::parse_request_serde(base).is_ok());
    let want_ext = ext_reads(&want);
    assert!(want_ext.contains("1YNN") && want_ext.contains("a.com") && want_ext.contains("CO"));
    let runs: &[&[u8]] = &[
        b" ",
        b"\t",
        b"\n",
        b"\r",
        b"\r\n",
        b" \t\r\n",
        b"\n\t\t  \r ",
    ];
    let structural = |b: u8| matches!(b, b'{' | b'}' | b'[' | b']' | b',' | b':');
    // Between two tokens (not inside a number or a literal).
    let between =
        |at: usize| at == 0 || at == base.len() || structural(base[at]) || structural(base[at - 1]);
    let mut inserted = Vec::with_capacity(base.len() + 8);
    for at in outside_strings(base) {
        let mut with = |middle: &[u8]| {
            inserted.clear();
            inserted.extend_from_slice(&base[..at]);
            inserted.extend_from_slice(middle);
            inserted.extend_from_slice(&base[at..]);
            let ours = parse_request(&inserted);
            check_same_as_serde(&inserted, &ours);
            ours.map(|r| ext_reads(&r)).ok()
        };
        // Every byte the whitespace skip looks at (all up to `!`, DEL, and
        // from 0x80 up the first bytes of each UTF-8 length and the
        // continuation bytes, and 0xff); the token bytes between are the
        // random properties' (each costs a pass over the request).
        let bytes = (0..=b'!').chain([0x7f, 0x80, 0xa0, 0xbf, 0xc2, 0xe2, 0xef, 0xf0, 0xff]);
        for b in bytes {
            let read = with(&[b]);
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') && between(at) {
                // Whitespace: the same request, whatever its raw exts hold.
                let ext = read.unwrap_or_else(|| panic!("{b:#04x} at {at} refused"));
                assert_eq!(ext, want_ext, "{b:#04x} at {at}");
            } else if !(b'!'..0x7f).contains(&b) {
                assert!(read.is_none(), "{b:#04x} at {at} read as whitespace");
            }
        }
        for run in runs.iter().filter(|_| between(at)) {
            let ext = with(run).unwrap_or_else(|| panic!("{run:?} at {at} refused"));
            assert_eq!(ext, want_ext, "{run:?} at {at}");
        }
        // Whitespace, then the end of the body: refused as serde refuses it.
        if at < base.len() {
            for end in [&b" "[..], b"\t\r\n ", b"\x0c", b"\0"] {
                let mut cut = base[..at].to_vec();
                cut.extend_from_slice(end);
                check_same_as_serde(&cut, &parse_request(&cut));
            }
        }
    }
    // Whitespace between every two tokens at once (a pretty-printed body,
    // its whitespace mixed): the same request.
    let mut pretty = Vec::new();
    let outside = outside_strings(base);
    for (i, &b) in base.iter().enumerate() {
        if outside.binary_search(&i).is_ok() && between(i) {
            pretty.extend_from_slice(b"\r\n\t ");
        }
        pretty.push(b);
    }
    pretty.extend_from_slice(b" \n");
    let read = parse_request(&pretty).expect("the pretty request reads");
    check_same_as_serde(&pretty, &parse_request(&pretty));
    assert_eq!(ext_reads(&read), want_ext);
}
