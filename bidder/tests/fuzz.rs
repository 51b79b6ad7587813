//! Fuzzing on stable: property tests that feed the notice reader, the
//! clearing-price parser and the privacy-signal decoders (TCF v2, GPP, US
//! Privacy) random and mutated input.
//!
//! `cargo-fuzz` needs nightly, which CI does not have. The normal test run
//! does a bounded number of cases per property (see [`config`]);
//! `scripts/fuzz.sh` runs the same properties in release mode for as long as
//! it is given, with `PROPTEST_CASES` raised and a fresh `PROPTEST_RNG_SEED`
//! each round.
//!
//! notice.rs has unit properties of its own (single-byte tampering, round
//! trips); these add whole-query fuzzing from outside the crate.

use std::time::{Duration, Instant};

use bidder::context::Context;
use bidder::notice::{self, Kind, NoticeError, NoticeUrl, Price, Signer};
use bidder::privacy::{self, PrivacySettings, Restriction};
use config::{Micros, Timestamp};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};

#[path = "../../scripts/fuzz_support.rs"]
mod fuzz_support;
use fuzz_support::{config, remember, ByteEdit};

// ===========================================================================
// Notices

const NOW: i64 = 1_764_000_000_000;
const DAY: i64 = 86_400_000;

fn signer() -> Signer {
    Signer::new(b"fuzz secret")
}

fn any_kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

/// What a real notice says; `price` is what the exchange put in place of
/// the macro (the macro itself, a decimal, or anything).
#[derive(Clone, Debug)]
struct Real {
    kind: Kind,
    bid_id: String,
    imp_id: String,
    line_item: String,
    order: String,
    creative: String,
    bid_price: i64,
    at_ms: i64,
    test: bool,
    price: Option<String>,
}

fn real_notice() -> impl Strategy<Value = Real> {
    (
        any_kind(),
        "[0-9a-f]{32}",
        "\\PC{1,20}",
        "\\PC{1,30}",
        "\\PC{1,12}",
        "[a-z0-9-]{1,16}",
        1i64..10_000_000_000,
        0i64..DAY,
        any::<bool>(),
        prop_oneof![
            Just(None),
            Just(Some(notice::AUCTION_PRICE_MACRO.to_owned())),
            "[0-9]{1,6}(\\.[0-9]{0,9})?".prop_map(Some),
            "[0-9a-zA-Z%.+=_-]{0,40}".prop_map(Some),
        ],
    )
        .prop_map(
            |(kind, bid_id, imp_id, line_item, order, creative, bid_price, age, test, price)| {
                Real {
                    kind,
                    bid_id,
                    imp_id,
                    line_item,
                    order,
                    creative,
                    bid_price,
                    at_ms: NOW - age,
                    test,
                    price,
                }
            },
        )
}

impl Real {
    /// The query string the exchange calls back with.
    fn query(&self) -> String {
        let ids = format!(
            "&li={}&o={}",
            notice::encode(&self.line_item),
            notice::encode(&self.order)
        );
        let creative = notice::encode(&self.creative);
        let signed = NoticeUrl {
            bid_id: &self.bid_id,
            imp_id: &self.imp_id,
            line_item_and_order: &ids,
            creative: &creative,
            bid_price: Micros(self.bid_price),
            at_ms: self.at_ms,
            test: self.test,
            exchange: "default",
            currency: "USD",
            rate: config::Rate::ONE,
            charge_on: config::ChargeOn::First,
            encrypted: false,
            keyword: None,
            audience: None,
            ids_encoded: true,
        }
        .signed();
        let mut url = String::new();
        NoticeUrl::write(
            "http://bidder.example/",
            self.kind,
            &signed,
            &signer(),
            &mut url,
        );
        let query = url.split_once('?').expect("a query").1;
        let (ours, _) = query.split_once("&price=").expect("the price macro");
        match &self.price {
            None => ours.to_owned(),
            Some(p) => format!("{ours}&price={p}"),
        }
    }
}

/// The part of a notice query the exchange may not change: everything
/// before `&price=`, the signature included.
fn signed_part(query: &str) -> &str {
    query.find("&price=").map_or(query, |i| &query[..i])
}

#[derive(Clone, Debug)]
enum Edit {
    Bytes(ByteEdit),
    /// Swap two `&`-separated parameters.
    SwapParams(Index, Index),
    /// Percent-encode one character (same text once decoded).
    PercentEncode(Index),
    /// Upper-case the signature's hex digits.
    UpperCase(Index, usize),
    /// Put this text where the exchange writes the clearing price.
    SetPrice(String),
}

fn edit() -> impl Strategy<Value = Edit> {
    let inserted = prop_oneof![
        "\\PC{1,8}",
        prop::sample::select(vec![
            "&",
            "=",
            "%",
            "%00",
            "%zz",
            "&s=",
            "&price=",
            "&b=",
            "+",
            "0",
            "1",
            "f",
            "F",
            " ",
            "\u{0}",
            "\u{1F600}",
        ])
        .prop_map(str::to_owned),
    ];
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Bytes(ByteEdit::SetByte(at, b))),
        3 => (any::<Index>(), inserted)
            .prop_map(|(at, s)| Edit::Bytes(ByteEdit::Insert(at, s.into_bytes()))),
        2 => (any::<Index>(), 1usize..40).prop_map(|(at, n)| Edit::Bytes(ByteEdit::Delete(at, n))),
        2 => (any::<Index>(), 1usize..60, any::<Index>())
            .prop_map(|(from, n, to)| Edit::Bytes(ByteEdit::Duplicate(from, n, to))),
        1 => any::<Index>().prop_map(|at| Edit::Bytes(ByteEdit::Truncate(at))),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapParams(a, b)),
        1 => any::<Index>().prop_map(Edit::PercentEncode),
        1 => (any::<Index>(), 1usize..33).prop_map(|(at, n)| Edit::UpperCase(at, n)),
        3 => prop_oneof![
            "\\PC{0,24}",
            "[0-9.%+A-F]{0,24}",
            "[0-9]{0,20}\\.?[0-9]{0,10}",
        ]
        .prop_map(Edit::SetPrice),
    ]
}

fn apply(query: &str, edit: &Edit) -> String {
    let mut bytes = query.as_bytes().to_vec();
    match edit {
        Edit::Bytes(edit) => edit.apply(&mut bytes),
        Edit::SwapParams(a, b) => {
            let mut params: Vec<&str> = query.split('&').collect();
            let (a, b) = (a.index(params.len()), b.index(params.len()));
            params.swap(a, b);
            return params.join("&");
        }
        Edit::PercentEncode(at) if !bytes.is_empty() => {
            let i = at.index(bytes.len());
            let hex = format!("%{:02X}", bytes[i]);
            bytes.splice(i..=i, hex.bytes());
        }
        Edit::SetPrice(price) => {
            return format!("{}&price={price}", signed_part(query));
        }
        Edit::UpperCase(at, n) => {
            if let Some(s) = query.find("&s=") {
                let start = s + 3 + at.index(32);
                for b in bytes.iter_mut().skip(start).take(*n) {
                    b.make_ascii_uppercase();
                }
            }
        }
        _ => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

mod notice_properties {
    use super::*;

    proptest! {
        #![proptest_config(config(256))]

        /// Nothing we did not sign reads as a notice: random text, text made of
        /// the query's own alphabet, and the notice layout with made-up values
        /// and a made-up signature.
        #[test]
        fn arbitrary_queries_are_refused(
            kind in any_kind(),
            query in prop_oneof![
                "\\PC{0,300}",
                "[a-z0-9=&%.${}_:+-]{0,300}",
                prop::collection::vec(any::<u8>(), 0..300)
                    .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                (
                    "[0-9a-f]{32}", "[^&]{0,12}", "[^&]{0,12}", "[^&]{0,12}", "[^&]{0,12}",
                    "-?[0-9]{1,20}", "-?[0-9]{1,20}", "[01]", "[0-9a-f]{32}", "[^&]{0,12}",
                )
                    .prop_map(|(b, i, li, o, c, bp, ts, t, s, price)| {
                        format!("b={b}&i={i}&li={li}&o={o}&c={c}&bp={bp}&ts={ts}&t={t}&s={s}&price={price}")
                    }),
            ],
        ) {
            remember("arbitrary_queries", &query);
            let now = NOW;
            prop_assert_eq!(
                notice::verify(kind, &query, &signer(), now, DAY).err(),
                Some(NoticeError::Signature),
                "{}", query
            );
        }

        /// One to three edits of a real notice query: refused whenever the
        /// signed part changed; when only the price did, read back with every
        /// signed value intact and a charge within the bid.
        #[test]
        fn mutated_notices_are_refused_unless_only_the_price_changed(
            real in real_notice(),
            edits in prop::collection::vec(edit(), 1..4),
        ) {
            let query = real.query();
            let mut mutated = query.clone();
            for e in &edits {
                mutated = apply(&mutated, e);
            }
            // An edit can undo itself. Not `prop_assume!`: a long fuzz run
            // would hit proptest's limit on rejected cases.
            if mutated == query {
                return Ok(());
            }
            remember("mutated_notices", &mutated);

            let result = notice::verify(real.kind, &mutated, &signer(), NOW, DAY);
            let ours = signed_part(&query);
            let price_only = mutated == ours
                || mutated
                    .strip_prefix(ours)
                    .and_then(|rest| rest.strip_prefix("&price="))
                    .is_some_and(|price| !price.contains('&'));
            if !price_only {
                prop_assert_eq!(result.err(), Some(NoticeError::Signature), "{}", mutated);
                return Ok(());
            }
            let n = match result {
                Ok(n) => n,
                Err(e) => return Err(TestCaseError::fail(format!("{e}: {mutated}"))),
            };
            prop_assert_eq!(n.kind, real.kind);
            prop_assert_eq!(&n.bid_id, &real.bid_id);
            prop_assert_eq!(&n.imp_id, &real.imp_id);
            prop_assert_eq!(&n.line_item, &real.line_item);
            prop_assert_eq!(&n.order, &real.order);
            prop_assert_eq!(&n.creative, &real.creative);
            prop_assert_eq!(n.bid_price, Micros(real.bid_price));
            prop_assert_eq!(n.at_ms, real.at_ms);
            prop_assert_eq!(n.test, real.test);
            if let Price::Cpm(p) = n.price {
                prop_assert!(p > Micros::ZERO);
            }
            prop_assert!(n.cpm() > Micros::ZERO && n.cpm() <= n.bid_price);
        }

        /// `parse_price` against an independent reading of its grammar
        /// (`digits[.digits]`, not both empty), truncating past six decimals.
        #[test]
        fn parse_price_is_exact_or_refused(
            s in prop_oneof![
                "\\PC{0,40}",
                "[0-9.]{0,40}",
                "[0-9]{0,25}\\.?[0-9]{0,12}",
                "[-+ 0-9.eE,]{0,20}",
                (0usize..4096).prop_map(|n| "9".repeat(n)),
                (0usize..4096, 0usize..4096)
                    .prop_map(|(a, b)| format!("{}.{}", "0".repeat(a), "1".repeat(b))),
            ],
        ) {
            prop_assert_eq!(notice::parse_price(&s), expected_price(&s), "{:?}", s);
        }
    }
}

/// The oracle for `parse_price`, written apart from it.
fn expected_price(s: &str) -> Option<Micros> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let significant = int.trim_start_matches('0');
    if significant.len() > 19 {
        return None;
    }
    let units: u128 = if significant.is_empty() {
        0
    } else {
        significant.parse().ok()?
    };
    let micros: u128 = format!("{:0<6}", &frac[..frac.len().min(6)]).parse().ok()?;
    // Past the sixth decimal, anything but zeros is the next micro up.
    let up = u128::from(frac.len() > 6 && frac[6..].chars().any(|c| c != '0'));
    i64::try_from(units * 1_000_000 + micros + up)
        .ok()
        .map(Micros)
}

// ===========================================================================
// Privacy signals

// Bits written most significant first, base64url: the privacy crate's
// test encoder (it fills the last byte, as the reference encoders do).
use privacy::encode::Writer as Bits;

/// A vendor section of a TC string core: `MaxVendorId`, then a bitfield or
/// range entries.
#[derive(Clone, Debug)]
enum VendorSection {
    /// As an honest encoder writes it: `MaxVendorId` bits, or sorted
    /// disjoint runs, so the string gets past the bidder's own checks to
    /// the decoder.
    Honest {
        ranges: bool,
        ids: std::collections::BTreeSet<u16>,
    },
    /// Any bits after a bitfield's `MaxVendorId`.
    Bitfield { max: u16, bits: Vec<bool> },
    /// Range entries with random counts and bounds, out of range by one
    /// sometimes, overlapping often.
    Ranges {
        max: u16,
        count: Option<u16>,
        entries: Vec<(bool, Index, Index)>,
    },
}

fn vendor_section() -> impl Strategy<Value = VendorSection> {
    let max = prop_oneof![0u16..1500, Just(10_000), Just(10_001), any::<u16>()];
    prop_oneof![
        3 => (
            any::<bool>(),
            prop::collection::btree_set(prop_oneof![1u16..1500, 1u16..=10_000], 0..60),
        )
            .prop_map(|(ranges, ids)| VendorSection::Honest { ranges, ids }),
        1 => (max.clone(), prop::collection::vec(any::<bool>(), 0..1500))
            .prop_map(|(max, bits)| VendorSection::Bitfield { max, bits }),
        1 => (
            max,
            prop::option::of(0u16..4096),
            prop::collection::vec((any::<bool>(), any::<Index>(), any::<Index>()), 0..40),
        )
            .prop_map(|(max, count, entries)| VendorSection::Ranges { max, count, entries }),
    ]
}

impl VendorSection {
    fn write(&self, w: &mut Bits) {
        match self {
            VendorSection::Honest { ranges, ids } => {
                let max = ids.iter().copied().max().unwrap_or(0);
                w.int(max.into(), 16);
                if !*ranges {
                    w.int(0, 1);
                    w.0.extend((1..=max).map(|id| ids.contains(&id)));
                    return;
                }
                let mut runs: Vec<(u16, u16)> = Vec::new();
                for &id in ids {
                    match runs.last_mut() {
                        Some(run) if run.1 + 1 == id => run.1 = id,
                        _ => runs.push((id, id)),
                    }
                }
                w.int(1, 1).int(runs.len() as u64, 12);
                for (first, last) in runs {
                    if first == last {
                        w.int(0, 1).int(first.into(), 16);
                    } else {
                        w.int(1, 1).int(first.into(), 16).int(last.into(), 16);
                    }
                }
            }
            VendorSection::Bitfield { max, bits } => {
                w.int((*max).into(), 16).int(0, 1);
                // As many bits as MaxVendorId says, or fewer when generated short.
                w.0.extend(bits.iter().take(usize::from(*max)));
            }
            VendorSection::Ranges {
                max,
                count,
                entries,
            } => {
                w.int((*max).into(), 16).int(1, 1);
                let count = count.map_or(entries.len() as u64, u64::from);
                w.int(count, 12);
                // Ids from 0 to max + 1: in range mostly, out by one sometimes.
                let id = |i: &Index| i.index(usize::from(*max) + 2) as u64;
                for (range, a, b) in entries {
                    if *range {
                        let (first, last) = (id(a), id(b));
                        w.int(1, 1)
                            .int(first.min(last), 16)
                            .int(first.max(last), 16);
                    } else {
                        w.int(0, 1).int(id(a), 16);
                    }
                }
            }
        }
    }
}

/// The vendor id the privacy properties use most; `tc_string` grants it
/// consent in some strings so the decoder's whole path is reached.
const VENDOR: u16 = 755;

/// Bit offset of purpose 1's consent bit in the TC string core (after the
/// 6-bit version): created, updated, CMP id and version, screen, language,
/// vendor list version, policy version, two flags, special features.
const PURPOSE_1_BIT: usize = 36 + 36 + 12 + 12 + 6 + 12 + 12 + 6 + 1 + 1 + 12;

/// TCF v2 TC strings: version 2 (mostly), random fixed fields, two vendor
/// sections, publisher restrictions, trailing junk and other segments. A
/// quarter grant purposes 1, 3 and 4 and vendor [`VENDOR`].
fn tc_string() -> impl Strategy<Value = String> {
    (
        prop_oneof![4 => Just(2u64), 1 => 0u64..64],
        prop::collection::vec(any::<bool>(), 207),
        prop::bool::weighted(0.25),
        vendor_section(),
        vendor_section(),
        prop_oneof![3 => Just(0u64), 1 => 0u64..4096],
        prop_oneof![
            3 => Just(Vec::new()),
            1 => prop::collection::vec(any::<bool>(), 0..300),
        ],
        prop::collection::vec("[A-Za-z0-9_-]{0,60}", 0..3),
    )
        .prop_map(
            |(version, mut fixed, grant, mut consents, interests, restrictions, tail, segments)| {
                if grant {
                    for purpose in [1, 3, 4] {
                        fixed[PURPOSE_1_BIT + purpose - 1] = true;
                    }
                    if let VendorSection::Honest { ids, .. } = &mut consents {
                        ids.insert(VENDOR);
                    }
                }
                let mut w = Bits::default();
                w.int(version, 6);
                w.0.extend(fixed);
                consents.write(&mut w);
                interests.write(&mut w);
                w.int(restrictions, 12);
                w.0.extend(tail);
                let mut s = w.base64url();
                for segment in segments {
                    s.push('.');
                    s.push_str(&segment);
                }
                s
            },
        )
}

// Public strings (from iab_gpp's tests and the IAB examples) to mutate.
const KNOWN_TC: [&str; 3] = [
    "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA",
    "CPXuQIAPXuQIAAfKABENB-CgACAAAAAAAAYgF5wAQF5gAAAA.YAAAAAAAAAAA",
    "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA",
];
const KNOWN_SECTIONS: [&str; 10] = [
    "BVVVVVVVVWA",
    "BAAAAAAAAQA",
    "CAAAAAAAAAWA.Q",
    "BVVVVVVY",
    "BAAAAACA",
    "BVqqqqpY.YA",
    "BVVVVWY",
    "BAAAABA",
    "BVVVVVg",
    "1YYN",
];
const KNOWN_GPP: [&str; 4] = [
    "DBABM~CPXuQIAPXuQIAAfKABENB-CgACAAAAAAAAYgF5wAQF5gAAAA.YAAAAAAAAAAA",
    "DBABTA~1YYN",
    "DBABLA~BVVVVVVVVWA",
    "DBACNY~CPXuQIAPXuQIAAfKABENB-CgACAAAAAAAAYgF5wAQF5gAAAA~1YNN",
];

/// A known string with a few characters replaced, inserted or deleted.
fn mutated(known: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(known.to_vec()),
        prop::collection::vec((0u8..3, any::<Index>(), "[A-Za-z0-9_.~-]"), 0..6),
    )
        .prop_map(|(s, edits)| {
            let mut chars: Vec<char> = s.chars().collect();
            for (op, at, c) in edits {
                let c = c.chars().next().unwrap_or('A');
                let i = at.index(chars.len() + 1);
                match op {
                    0 if i < chars.len() => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ => {}
                }
            }
            chars.into_iter().collect()
        })
}

/// Random strings up to 4 KB: base64url (what the decoders read), with
/// segment separators, and anything printable.
fn junk() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,64}",
        "[A-Za-z0-9_-]{0,4096}",
        "[A-Za-z0-9_.~-]{0,4096}",
        "\\PC{0,256}",
    ]
}

fn consent() -> impl Strategy<Value = String> {
    prop_oneof![4 => tc_string(), 2 => mutated(&KNOWN_TC), 2 => junk()]
}

/// GPP strings: a well-formed header listing random section ids (every US
/// section, TCF, US Privacy and unknown ids), sections of matching or
/// mismatched count, each a TC string, a mutated known section or junk.
fn gpp_string() -> impl Strategy<Value = String> {
    let section = prop_oneof![
        2 => mutated(&KNOWN_SECTIONS),
        1 => tc_string(),
        1 => "[A-Za-z0-9_-]{0,40}(\\.[A-Za-z0-9_-]{0,8}){0,2}",
        1 => "[1-][YNyn-]{3}",
        1 => junk(),
    ];
    let structured = (
        prop::collection::btree_set(prop_oneof![1u32..=24, 1u32..=80], 0..8),
        prop::collection::vec(section, 0..10),
        any::<bool>(),
    )
        .prop_map(|(ids, mut sections, matching)| {
            let ids: Vec<u32> = ids.into_iter().collect();
            if matching {
                sections.resize(ids.len(), String::new());
            }
            let mut w = Bits::default();
            w.int(3, 6).int(1, 6).int(ids.len() as u64, 12);
            let mut last = 0;
            for id in &ids {
                w.int(0, 1).fibonacci(id - last);
                last = *id;
            }
            // Pad to whole bytes, as the reference encoders do.
            while w.0.len() % 8 != 0 {
                w.0.push(false);
            }
            let mut s = w.base64url();
            for section in sections {
                s.push('~');
                s.push_str(&section);
            }
            s
        });
    prop_oneof![4 => structured, 2 => mutated(&KNOWN_GPP), 1 => junk()]
}

fn us_privacy() -> impl Strategy<Value = String> {
    prop_oneof!["[1-2][YNyn-]{3}", "[1YNyn-]{0,6}", junk()]
}

/// The privacy members of a request, each absent or random, in the
/// OpenRTB 2.6 place or the 2.5 `ext` place.
#[derive(Clone, Debug)]
struct Signals {
    gdpr: Option<Value>,
    consent: Option<String>,
    gpp: Option<String>,
    gpp_sid: Option<Value>,
    us_privacy: Option<String>,
    in_ext: bool,
    vendor_id: u16,
}

fn signals() -> impl Strategy<Value = Signals> {
    (
        prop::option::of(prop::sample::select(vec![
            json!(1),
            json!(0),
            json!("1"),
            json!(true),
            json!(null),
        ])),
        prop::option::of(consent()),
        prop::option::of(gpp_string()),
        prop::option::of(prop_oneof![
            prop::collection::vec(prop_oneof![0i64..30, any::<i64>()], 0..12)
                .prop_map(|v| json!(v)),
            Just(json!([2])),
            Just(json!("2")),
            Just(json!(7)),
        ]),
        prop::option::of(us_privacy()),
        any::<bool>(),
        prop_oneof![2 => Just(VENDOR), 1 => Just(8), 1 => Just(0), 1 => any::<u16>()],
    )
        .prop_map(
            |(gdpr, consent, gpp, gpp_sid, us_privacy, in_ext, vendor_id)| Signals {
                gdpr,
                consent,
                gpp,
                gpp_sid,
                us_privacy,
                in_ext,
                vendor_id,
            },
        )
}

impl Signals {
    fn request(&self) -> String {
        let mut regs = serde_json::Map::new();
        let put = |m: &mut serde_json::Map<String, Value>, k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v);
            }
        };
        put(&mut regs, "gdpr", self.gdpr.clone());
        put(&mut regs, "gpp", self.gpp.clone().map(Value::from));
        put(&mut regs, "gpp_sid", self.gpp_sid.clone());
        put(
            &mut regs,
            "us_privacy",
            self.us_privacy.clone().map(Value::from),
        );
        let mut user = json!({ "buyeruid": "u-1" });
        let (regs, user) = if self.in_ext {
            if let Some(c) = &self.consent {
                user["ext"] = json!({ "consent": c });
            }
            (json!({ "ext": regs }), user)
        } else {
            if let Some(c) = &self.consent {
                user["consent"] = json!(c);
            }
            (Value::Object(regs), user)
        };
        json!({
            "id": "r1",
            "imp": [{ "id": "1", "banner": { "w": 300, "h": 250 } }],
            "site": { "page": "https://news.example/p/B0TENT0001" },
            "device": { "devicetype": 2 },
            "user": user,
            "regs": regs,
        })
        .to_string()
    }
}

/// Per-call bound for a debug build; the decoders are linear in input
/// that `Signals` caps at 4 KB a string.
const PRIVACY_BOUND: Duration = Duration::from_millis(50);

/// The fastest of up to three runs of `f` when the first is over `bound`:
/// an algorithmic blow-up is slow every time, a descheduled thread on a
/// busy CI machine is not.
fn timed<T>(bound: Duration, f: impl Fn() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    let mut best = start.elapsed();
    for _ in 0..2 {
        if best < bound {
            break;
        }
        let start = Instant::now();
        let _ = f();
        best = best.min(start.elapsed());
    }
    (out, best)
}

mod privacy_properties {
    use super::*;

    proptest! {
        #![proptest_config(config(128))]

        /// Random and mutated TC strings, GPP strings and sections, section
        /// ids and US Privacy strings, in both OpenRTB places: the decision
        /// never panics, is the same from `privacy::behavioural` and
        /// `Context::new`, and takes bounded time.
        #[test]
        fn privacy_signals_decode_in_bounded_time(signals in signals()) {
            let body = signals.request();
            remember("privacy_signals", &body);
            let req = ortb::parse_request(body.as_bytes()).expect("the request is valid JSON");
            let settings = PrivacySettings { vendor_id: signals.vendor_id };

            let (decision, took) = timed(PRIVACY_BOUND, || privacy::behavioural(&req, &settings));
            prop_assert!(took < PRIVACY_BOUND, "behavioural took {:?}: {}", took, body);

            let now = Timestamp(NOW);
            let (restriction, took) =
                timed(PRIVACY_BOUND, || Context::new(&req, now, &settings).restriction);
            prop_assert!(took < PRIVACY_BOUND, "Context::new took {:?}: {}", took, body);
            prop_assert_eq!(restriction, decision.err());
        }

        /// A US Privacy string alone decides exactly as its spec says: opt-out
        /// when it is `1`, then three `Y`/`N`/`-` flags (either case) of which
        /// the second is `Y`; empty says nothing; any other string cannot be
        /// read and is taken at its strictest, as an opt-out.
        #[test]
        fn us_privacy_alone_opts_out_exactly_when_it_says_so(
            usp in us_privacy(),
            in_ext in any::<bool>(),
        ) {
            let signals = Signals {
                gdpr: None,
                consent: None,
                gpp: None,
                gpp_sid: None,
                us_privacy: Some(usp.clone()),
                in_ext,
                vendor_id: VENDOR,
            };
            let body = signals.request();
            remember("us_privacy_alone", &body);
            let req = ortb::parse_request(body.as_bytes()).expect("the request is valid JSON");
            // Version 1 with three flags allows unless its second is `Y`;
            // white space around it aside, empty says nothing, and any
            // other string may be an opt-out and is taken as one.
            let flags: Vec<char> = usp.trim().chars().map(|c| c.to_ascii_uppercase()).collect();
            let readable = flags.len() == 4
                && flags[0] == '1'
                && flags[1..].iter().all(|c| matches!(c, 'Y' | 'N' | '-'));
            let opts_out = !flags.is_empty() && (!readable || flags[2] == 'Y');
            let want = if opts_out { Err(Restriction::UsPrivacyOptOut) } else { Ok(()) };
            prop_assert_eq!(
                privacy::behavioural(&req, &PrivacySettings { vendor_id: VENDOR }),
                want,
                "{:?}", usp
            );
        }
    }
}

/// `ext` objects are kept raw by the parser whatever their depth; the
/// bidder reads several of them again (product hints, 2.5 privacy fields).
/// Nested 100,000 deep in each of those places, nothing overflows.
#[test]
fn deep_ext_everywhere_the_bidder_reads_one() {
    let n = 100_000;
    // A list reads positionally: device.ext's first member is `atts`, here
    // unreadable, which restricts before GDPR is looked at.
    for (open, close, first) in [
        ("[", "]", Restriction::LimitAdTracking),
        ("{\"a\":", "}", Restriction::GdprNoConsent),
        ("{\"consent\":", "}", Restriction::GdprNoConsent),
    ] {
        let deep = format!("{}1{}", open.repeat(n), close.repeat(n));
        let body = r#"{"id":"r","imp":[{"id":"1","banner":{},"ext":D}],
            "site":{"page":"https://shop.example/p/1","ext":D},"app":{"bundle":"b","ext":D},
            "user":{"ext":D},"regs":{"gdpr":1,"ext":D},"device":{"ext":D}}"#
            .replace('D', &deep);
        let req = ortb::parse_request(body.as_bytes()).expect("ext is kept raw");
        let settings = PrivacySettings { vendor_id: VENDOR };
        let context = Context::new(&req, Timestamp(NOW), &settings);
        assert_eq!(context.restriction, Some(first), "{open}");
    }
}
