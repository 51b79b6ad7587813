//! Fuzzing on stable: property tests that feed the Native request reader
//! random text, random JSON, generated requests and mutated real requests
//! (see `openrtb/tests/fuzz.rs` for the scheme; `scripts/fuzz.sh` runs the
//! `properties` here for as long as it is given).
//!
//! The property: [`parse_native_request`] returns a request or a typed
//! error with a short text, never panics; and when it returns a request,
//! whatever ad is fitted to it gives a response that is JSON, answers only
//! the request's asset ids, in order and once each, answers every required
//! one, and keeps every text within its asset's `len`.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::LazyLock;

use creatives::{
    fit_native, native_response, parse_native_request, AssetKind, NativeAd, NativeImage,
    NativeTrackers,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

#[path = "../../scripts/fuzz_support.rs"]
mod fuzz_support;
use fuzz_support::{byte_edits, config, remember, ByteEdit, JSON_TOKENS};

/// The native requests of the fixtures, as the JSON text inside the
/// string (mutations of the encoded form mostly break the string).
static FIXTURES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/native");
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        for imp in v["imp"].as_array().unwrap() {
            if let Some(Value::String(request)) = imp.pointer("/native/request") {
                out.push(request.clone());
            }
        }
    }
    assert!(out.len() >= 3, "fixtures in {}", dir.display());
    out
});

const IMPRESSION: &str = "https://bidder.example/imp?b=1";

/// Checks the property on one input (see the module docs).
fn check(raw: &str, ad: &NativeAd<'_>) {
    let req = match parse_native_request(raw) {
        Ok(req) => req,
        Err(e) => {
            assert!(e.to_string().len() <= 400, "error text too long: {e}");
            return;
        }
    };
    let assets = req.assets();
    assert!(!assets.is_empty() && assets.len() <= creatives::MAX_ASSETS);
    for (i, a) in assets.iter().enumerate() {
        assert!(
            assets[..i].iter().all(|b| b.id != a.id),
            "duplicate id {}",
            a.id
        );
    }
    let Ok(fit) = fit_native(ad, &req) else {
        return;
    };
    let text = native_response(
        ad,
        &fit,
        &NativeTrackers {
            impression_url: IMPRESSION,
            click_trackers: &["https://bidder.example/c"],
            privacy_url: None,
        },
    );
    let mut v: Value = serde_json::from_str(&text).expect("the response is JSON");
    if fit.wrapped() {
        v = v["native"].take();
    }
    let out = v["assets"].as_array().expect("assets");
    let out_ids: Vec<i64> = out.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    let mut position = HashMap::new();
    for (i, a) in assets.iter().enumerate() {
        position.insert(a.id, i);
    }
    let mut last = None;
    for id in &out_ids {
        let p = *position.get(id).expect("an id from the request");
        assert!(
            last < Some(p),
            "ids in request order, once each: {out_ids:?}"
        );
        last = Some(p);
    }
    for a in assets.iter().filter(|a| a.required) {
        assert!(out_ids.contains(&a.id), "required asset {} answered", a.id);
    }
    for o in out {
        let id = o["id"].as_i64().unwrap();
        let asked = &assets[position[&id]];
        let (text, len) = match &asked.kind {
            AssetKind::Title { len } => (o["title"]["text"].as_str(), *len),
            AssetKind::Data { len, .. } => (o["data"]["value"].as_str(), *len),
            _ => continue,
        };
        let text = text.expect("a text asset has its text");
        if let Some(len) = len {
            assert!(
                text.encode_utf16().count() <= len as usize,
                "asset {id}: {text:?} over {len}"
            );
        }
    }
    let tracked = if fit.event_trackers() {
        &v["eventtrackers"][0]["url"]
    } else {
        &v["imptrackers"][0]
    };
    assert_eq!(tracked, IMPRESSION);
}

// ---------------------------------------------------------------- inputs

/// Ads with any text, sizes and image URLs.
#[derive(Clone, Debug)]
struct Ad {
    texts: [String; 3],
    cta: Option<String>,
    price: Option<String>,
    image: (String, u32, u32),
    icon: Option<(String, u32, u32)>,
}

impl Ad {
    fn borrow(&self) -> NativeAd<'_> {
        fn image((url, w, h): &(String, u32, u32)) -> NativeImage<'_> {
            NativeImage { url, w: *w, h: *h }
        }
        NativeAd {
            title: &self.texts[0],
            description: &self.texts[1],
            sponsored_by: &self.texts[2],
            image: image(&self.image),
            icon: self.icon.as_ref().map(image),
            cta: self.cta.as_deref(),
            price: self.price.as_deref(),
            click_url: "https://shop.example/?q=\"x\"",
        }
    }
}

fn ad() -> impl Strategy<Value = Ad> {
    let text = prop_oneof![
        "\\PC{0,40}",
        Just("Ultralight two-person tent".to_owned()),
        Just(String::new()),
        "[a-z ]{0,200}",
    ];
    let image = (
        prop::sample::select(vec![
            "https://cdn.example/a.jpg",
            "https://cdn.example/a.png?x=1",
            "https://cdn.example/a",
            "",
        ])
        .prop_map(str::to_owned),
        prop_oneof![Just(0u32), 1u32..3000, Just(u32::MAX)],
        prop_oneof![Just(0u32), 1u32..3000, Just(u32::MAX)],
    );
    (
        [text.clone(), text.clone(), text.clone()],
        prop::option::of(text.clone()),
        prop::option::of(text),
        image.clone(),
        prop::option::of(image),
    )
        .prop_map(|(texts, cta, price, image, icon)| Ad {
            texts,
            cta,
            price,
            image,
            icon,
        })
}

/// A number as exchanges write them, or something that is not one.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        12 => (-5i64..3000).prop_map(Value::from),
        1 => (-5i64..3000).prop_map(|n| Value::from(n.to_string())),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        1 => prop::sample::select(vec![
            Value::Null, Value::Bool(true), Value::from(""), Value::from("x"), Value::from("1e999"),
            Value::from(" 7 "), Value::from("NaN"), serde_json::json!([]), serde_json::json!({}),
        ]),
    ]
}

/// Requests shaped like real ones, with odd values in their fields.
fn request() -> impl Strategy<Value = String> {
    let len =
        prop_oneof![1 => Just(Value::Null), 3 => (-2i64..60).prop_map(Value::from), 1 => number()];
    // Mostly absent or small: random exact sizes would almost never fit.
    let dim =
        prop_oneof![4 => Just(Value::Null), 2 => (0i64..400).prop_map(Value::from), 1 => number()];
    let object = prop_oneof![
        3 => len.clone().prop_map(|len| serde_json::json!({"title": {"len": len}})),
        3 => (prop_oneof![3 => Just(3i64), 2 => Just(1i64), 1 => 0i64..5], dim.clone(), dim.clone(), dim.clone(), dim, prop::collection::vec(
            prop::sample::select(vec!["image/png", "image/jpeg", "image/jpg", "image/gif", "x"]), 0..3))
            .prop_map(|(t, w, h, wmin, hmin, mimes)| serde_json::json!(
                {"img": {"type": t, "w": w, "h": h, "wmin": wmin, "hmin": hmin, "mimes": mimes}})),
        4 => (prop_oneof![4 => prop::sample::select(vec![1i64, 2, 6, 12]), 1 => 0i64..14, 1 => Just(500)], len)
            .prop_map(|(t, len)| serde_json::json!({"data": {"type": t, "len": len}})),
        1 => Just(serde_json::json!({"video": {"mimes": ["video/mp4"]}})),
        1 => Just(serde_json::json!({"ext": {}})),
    ];
    let required = prop_oneof![
        3 => Just(Value::from(0)),
        3 => Just(Value::from(1)),
        1 => number(),
    ];
    // Ids are the position, now and then another (duplicates included).
    let asset = (prop::option::weighted(0.02, 0i64..12), required, object);
    let assets = prop::collection::vec(asset, 0..10).prop_map(|assets| {
        assets
            .into_iter()
            .enumerate()
            .map(|(i, (id, required, mut a))| {
                a["id"] = Value::from(id.unwrap_or(i as i64));
                a["required"] = required;
                a
            })
            .collect::<Vec<Value>>()
    });
    (
        assets,
        prop::sample::select(vec![
            Value::Null,
            Value::from("1.0"),
            Value::from("1.1"),
            Value::from("1.2"),
            Value::from(1.2),
            Value::from("9"),
        ]),
        prop::option::of(prop::collection::vec(
            (number(), prop::collection::vec(number(), 0..3)),
            0..3,
        )),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(assets, ver, trackers, wrap, encode)| {
            let mut r = serde_json::json!({"ver": ver, "assets": assets});
            if let Some(trackers) = trackers {
                r["eventtrackers"] = trackers
                    .into_iter()
                    .map(|(event, methods)| serde_json::json!({"event": event, "methods": methods}))
                    .collect();
            }
            if wrap {
                r = serde_json::json!({ "native": r });
            }
            let text = r.to_string();
            if encode {
                Value::String(text).to_string()
            } else {
                text
            }
        })
}

/// Small random JSON whose keys are mostly the request's own.
fn json_ish() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        6 => prop::sample::select(vec![
            "ver", "native", "assets", "id", "required", "title", "img", "data", "video",
            "len", "type", "w", "h", "wmin", "hmin", "mimes", "eventtrackers", "event",
            "methods", "privacy", "ext",
        ]).prop_map(str::to_owned),
        1 => "[a-z]{0,6}",
    ];
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "null",
            "true",
            "0",
            "1",
            "-1",
            "3",
            "25",
            "1.2",
            "\"1.2\"",
            "\"1.0\"",
            "\"25\"",
            "\"\"",
            "\"image/png\"",
            "1e400",
            "9223372036854775808",
            "-9223372036854775809",
            "\"\\ud800\"",
            "[]",
            "{}",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        "\\PC{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    let value = leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key.clone(), inner), 0..8).prop_map(|kv| {
                let fields: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    });
    (value, any::<bool>()).prop_map(|(text, encode)| {
        if encode {
            Value::String(text).to_string()
        } else {
            text
        }
    })
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let tokens: Vec<&str> = JSON_TOKENS
        .iter()
        .copied()
        .chain([
            "\"1\"",
            "1e99",
            "{\"native\":",
            "\"required\":1,",
            "\"len\":0,",
        ])
        .collect();
    let inserted = prop_oneof![
        prop::collection::vec(any::<u8>(), 1..16),
        prop::sample::select(tokens).prop_map(|s| s.as_bytes().to_vec()),
    ];
    byte_edits(inserted, 60, 200)
}

mod properties {
    use super::*;

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn any_text_is_read_or_refused(
            text in prop_oneof!["\\PC*", any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned())],
            ad in ad(),
        ) {
            remember("any_text_is_read_or_refused", &text);
            check(&text, &ad.borrow());
        }

        #[test]
        fn json_ish_input_is_read_or_refused(text in json_ish(), ad in ad()) {
            remember("json_ish_input_is_read_or_refused", &text);
            check(&text, &ad.borrow());
        }

        #[test]
        fn generated_requests_give_valid_responses(text in request(), ad in ad()) {
            remember("generated_requests_give_valid_responses", &text);
            check(&text, &ad.borrow());
        }

        #[test]
        fn mutated_real_requests_are_read_or_refused(
            which in any::<Index>(),
            edits in prop::collection::vec(byte_edit(), 1..4),
            encode in any::<bool>(),
            ad in ad(),
        ) {
            let mut bytes = which.get(&FIXTURES).as_bytes().to_vec();
            for edit in &edits {
                edit.apply(&mut bytes);
            }
            let text = String::from_utf8_lossy(&bytes);
            let text = if encode { Value::String(text.into_owned()).to_string() } else { text.into_owned() };
            remember("mutated_real_requests_are_read_or_refused", &text);
            check(&text, &ad.borrow());
        }
    }
}

/// Not a property (it takes no generated input): out of `properties`, so
/// `scripts/fuzz.sh` does not count it as one.
#[test]
fn deep_nesting_and_huge_arrays_are_refused_without_a_crash() {
    let ad = Ad {
        texts: ["Tent".into(), "A tent".into(), "Acme".into()],
        cta: None,
        price: None,
        image: ("https://cdn.example/a.jpg".into(), 1200, 627),
        icon: None,
    };
    for depth in [200, 20_000] {
        for (open, close) in [
            ("[", "]"),
            ("{\"native\":", "}"),
            ("{\"assets\":[{\"title\":", "}]}"),
        ] {
            let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            check(&text, &ad.borrow());
        }
    }
    let many = format!(
        "{{\"assets\":[{}]}}",
        vec!["{\"id\":1,\"title\":{}}"; 3000].join(",")
    );
    check(&many, &ad.borrow());
    check(&Value::String(many).to_string(), &ad.borrow());
}
