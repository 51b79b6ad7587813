//! Native: reading requests (string or object, 1.0 wrapper or bare 1.2),
//! fitting a product ad to their assets, and the response the bidder puts
//! in `adm`, checked by reading it back as JSON.
//!
//! Three real requests (prebid-server fixtures) are in `testdata/native/`
//! (attribution in `testdata/native/NOTICE`).

use std::fs;
use std::path::PathBuf;

use creatives::{
    fit_native, native_response, parse_native_request, AssetKind, ImageMisfit, NativeAd,
    NativeError, NativeField, NativeImage, NativeMisfit, NativeRequest, NativeTrackers,
    NativeVersion, TextMisfit, UnsupportedAsset, MAX_ASSETS, MAX_REQUEST_BYTES,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

// ---------------------------------------------------------------- fixtures

const CLICK: &str = "https://shop.example/tent?src=native&q=\"two person\"";
const IMPRESSION: &str = "https://bidder.example/imp?b=bid-1&p=${AUCTION_PRICE}";
const CLICK_TRACKER: &str = "https://bidder.example/click?b=bid-1";

fn ad() -> NativeAd<'static> {
    NativeAd {
        title: "Ultralight two-person tent",
        description: "Three-season tent, 1.2 kg, pitched in two minutes.",
        sponsored_by: "Acme Outdoor",
        image: NativeImage {
            url: "https://cdn.example/tent-1200x627.jpg",
            w: 1200,
            h: 627,
        },
        icon: Some(NativeImage {
            url: "https://cdn.example/acme-100.png",
            w: 100,
            h: 100,
        }),
        cta: Some("Shop now"),
        price: Some("$249.99"),
        click_url: CLICK,
    }
}

fn trackers() -> NativeTrackers<'static> {
    NativeTrackers {
        impression_url: IMPRESSION,
        click_trackers: &[CLICK_TRACKER],
        privacy_url: None,
    }
}

/// The request as an exchange sends it in `imp.native.request`: a JSON
/// string holding the JSON text.
fn encoded(request: &Value) -> String {
    Value::String(request.to_string()).to_string()
}

fn parse(request: &Value) -> NativeRequest {
    parse_native_request(&encoded(request)).expect("request parses")
}

/// A 1.2 request with the given assets, offering an impression pixel.
fn request(assets: Value) -> Value {
    json!({
        "ver": "1.2",
        "assets": assets,
        "eventtrackers": [{"event": 1, "methods": [1, 2]}]
    })
}

/// Fits and writes the response; returns it parsed back (unwrapped) and
/// whether it was wrapped.
fn respond(ad: &NativeAd<'_>, req: &NativeRequest) -> (Value, bool) {
    let fit = fit_native(ad, req).expect("the ad fits");
    let text = native_response(ad, &fit, &trackers());
    let mut v: Value = serde_json::from_str(&text).expect("the response is JSON");
    match v.get_mut("native").map(Value::take) {
        Some(inner) => (inner, true),
        None => (v, false),
    }
}

fn asset(response: &Value, id: i64) -> Option<&Value> {
    response["assets"]
        .as_array()
        .expect("assets is an array")
        .iter()
        .find(|a| a["id"] == id)
}

fn ids(response: &Value) -> Vec<i64> {
    response["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

fn fixture(name: &str, imp: usize) -> String {
    #[derive(Deserialize)]
    struct Request<'a> {
        #[serde(borrow)]
        imp: Vec<Imp<'a>>,
    }
    #[derive(Deserialize)]
    struct Imp<'a> {
        #[serde(borrow)]
        native: Option<Native<'a>>,
    }
    #[derive(Deserialize)]
    struct Native<'a> {
        #[serde(borrow)]
        request: &'a RawValue,
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/native")
        .join(name);
    let text = fs::read_to_string(&path).unwrap();
    let req: Request<'_> = serde_json::from_str(&text).unwrap();
    req.imp[imp]
        .native
        .as_ref()
        .expect("a native imp")
        .request
        .get()
        .to_owned()
}

// ---------------------------------------------------------------- assets

#[test]
fn every_asset_type_is_filled_from_its_field() {
    let req = parse(&request(json!([
        {"id": 1, "required": 1, "title": {"len": 90}},
        {"id": 2, "required": 1, "img": {"type": 3, "wmin": 1200, "hmin": 627}},
        {"id": 3, "required": 1, "img": {"type": 1, "w": 100, "h": 100}},
        {"id": 4, "required": 1, "data": {"type": 1, "len": 25}},
        {"id": 5, "required": 1, "data": {"type": 2, "len": 140}},
        {"id": 6, "required": 1, "data": {"type": 6}},
        {"id": 7, "required": 1, "data": {"type": 12, "len": 15}}
    ])));
    let a = ad();
    let fit = fit_native(&a, &req).unwrap();
    let fields: Vec<NativeField> = fit.assets().iter().map(|f| f.field).collect();
    assert_eq!(
        fields,
        [
            NativeField::Title,
            NativeField::Image,
            NativeField::Icon,
            NativeField::SponsoredBy,
            NativeField::Description,
            NativeField::Price,
            NativeField::Cta,
        ]
    );
    let (r, wrapped) = respond(&a, &req);
    assert!(!wrapped);
    assert_eq!(ids(&r), [1, 2, 3, 4, 5, 6, 7], "request order, request ids");
    assert_eq!(asset(&r, 1).unwrap()["title"]["text"], a.title);
    assert_eq!(
        asset(&r, 2).unwrap()["img"],
        json!({"url": a.image.url, "w": 1200, "h": 627})
    );
    assert_eq!(
        asset(&r, 3).unwrap()["img"],
        json!({"url": "https://cdn.example/acme-100.png", "w": 100, "h": 100})
    );
    assert_eq!(asset(&r, 4).unwrap()["data"]["value"], "Acme Outdoor");
    assert_eq!(asset(&r, 5).unwrap()["data"]["value"], a.description);
    assert_eq!(asset(&r, 6).unwrap()["data"]["value"], "$249.99");
    assert_eq!(asset(&r, 7).unwrap()["data"]["value"], "Shop now");
    for id in 1..=7 {
        let keys: Vec<&String> = asset(&r, id).unwrap().as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 2, "id and one of title/img/data: {keys:?}");
    }
    assert_eq!(r["ver"], "1.2");
    assert_eq!(
        r["link"],
        json!({"url": CLICK, "clicktrackers": [CLICK_TRACKER]})
    );
}

#[test]
fn optional_assets_are_filled_when_the_ad_has_them_and_left_out_otherwise() {
    let req = parse(&request(json!([
        {"id": 1, "required": 1, "title": {"len": 90}},
        {"id": 2, "required": 0, "data": {"type": 6}},
        {"id": 3, "data": {"type": 12, "len": 15}},
        {"id": 4, "img": {"type": 1, "wmin": 50, "hmin": 50}},
        {"id": 5, "data": {"type": 3}},
        {"id": 6, "video": {"mimes": ["video/mp4"]}}
    ])));
    let (r, _) = respond(&ad(), &req);
    assert_eq!(ids(&r), [1, 2, 3, 4]);

    let bare = NativeAd {
        price: None,
        cta: None,
        icon: None,
        ..ad()
    };
    let (r, _) = respond(&bare, &req);
    assert_eq!(ids(&r), [1]);
}

#[test]
fn a_required_asset_the_ad_lacks_is_a_misfit() {
    let bare = NativeAd {
        price: None,
        cta: Some(""),
        icon: None,
        ..ad()
    };
    let one = |asset: Value| parse(&request(json!([asset])));
    assert_eq!(
        fit_native(
            &bare,
            &one(json!({"id": 9, "required": 1, "data": {"type": 6}}))
        ),
        Err(NativeMisfit::Data {
            asset: 9,
            data_type: 6,
            why: TextMisfit::Missing
        })
    );
    assert_eq!(
        fit_native(
            &bare,
            &one(json!({"id": 9, "required": 1, "data": {"type": 12}}))
        ),
        Err(NativeMisfit::Data {
            asset: 9,
            data_type: 12,
            why: TextMisfit::Missing
        })
    );
    assert_eq!(
        fit_native(
            &bare,
            &one(json!({"id": 9, "required": 1, "img": {"type": 1}}))
        ),
        Err(NativeMisfit::Image {
            asset: 9,
            image_type: 1,
            why: ImageMisfit::Missing
        })
    );
    let untitled = NativeAd { title: " ", ..ad() };
    assert_eq!(
        fit_native(
            &untitled,
            &one(json!({"id": 9, "required": 1, "title": {"len": 25}}))
        ),
        Err(NativeMisfit::Title {
            asset: 9,
            why: TextMisfit::Missing
        })
    );
    // The same assets, optional: the ad fits without them (but not with
    // nothing at all).
    assert_eq!(
        fit_native(&bare, &one(json!({"id": 9, "data": {"type": 6}}))),
        Err(NativeMisfit::Empty)
    );
    let req = parse(&request(json!([
        {"id": 1, "required": 1, "title": {"len": 90}},
        {"id": 9, "data": {"type": 6}}
    ])));
    assert_eq!(fit_native(&bare, &req).unwrap().assets().len(), 1);
}

#[test]
fn an_ad_that_fills_nothing_does_not_fit() {
    let req = parse(&request(json!([{"id": 1, "data": {"type": 3}}])));
    assert_eq!(fit_native(&ad(), &req), Err(NativeMisfit::Empty));
}

#[test]
fn required_video_and_unsupported_assets_are_misfits() {
    let one = |asset: Value| parse(&request(json!([asset])));
    assert_eq!(
        fit_native(
            &ad(),
            &one(
                json!({"id": 4, "required": 1, "video": {"mimes": ["video/mp4"], "minduration": 5}})
            )
        ),
        Err(NativeMisfit::Video { asset: 4 })
    );
    assert_eq!(
        fit_native(
            &ad(),
            &one(json!({"id": 5, "required": 1, "data": {"type": 3, "len": 5}}))
        ),
        Err(NativeMisfit::Unsupported {
            asset: 5,
            what: UnsupportedAsset::Data(3)
        })
    );
    assert_eq!(
        fit_native(
            &ad(),
            &one(json!({"id": 6, "required": 1, "img": {"type": 501}}))
        ),
        Err(NativeMisfit::Unsupported {
            asset: 6,
            what: UnsupportedAsset::Image(501)
        })
    );
    assert_eq!(
        fit_native(&ad(), &one(json!({"id": 7, "required": 1, "ext": {}}))),
        Err(NativeMisfit::Unsupported {
            asset: 7,
            what: UnsupportedAsset::Other
        })
    );
    let misfit = fit_native(
        &ad(),
        &one(json!({"id": 5, "required": 1, "data": {"type": 3}})),
    )
    .unwrap_err();
    assert_eq!(
        misfit.to_string(),
        "asset 5 requires data type 3, which ads do not have"
    );
}

#[test]
fn images_without_a_type_are_main_images_and_type_2_is_the_icon() {
    let req = parse(&request(json!([
        {"id": 1, "required": 1, "img": {"wmin": 600}},
        {"id": 2, "required": 1, "img": {"type": 2, "w": 100, "h": 100}}
    ])));
    let (r, _) = respond(&ad(), &req);
    assert_eq!(asset(&r, 1).unwrap()["img"]["url"], ad().image.url);
    assert_eq!(asset(&r, 2).unwrap()["img"]["url"], ad().icon.unwrap().url);
}

// ---------------------------------------------------------------- sizes

#[test]
fn exact_sizes_must_match_and_minimums_take_anything_larger() {
    let main = |img: Value| {
        let mut img = img;
        img["type"] = json!(3);
        fit_native(
            &ad(),
            &parse(&request(json!([{"id": 2, "required": 1, "img": img}]))),
        )
    };
    let size_misfit = Err(NativeMisfit::Image {
        asset: 2,
        image_type: 3,
        why: ImageMisfit::Size,
    });
    assert!(main(json!({"w": 1200, "h": 627})).is_ok());
    assert_eq!(main(json!({"w": 1200, "h": 628})), size_misfit);
    assert_eq!(
        main(json!({"w": 600, "h": 314})),
        size_misfit,
        "w alone is exact"
    );
    assert!(main(json!({"wmin": 1200, "hmin": 627})).is_ok());
    assert!(
        main(json!({"wmin": 836, "hmin": 627})).is_ok(),
        "larger is fine"
    );
    assert_eq!(main(json!({"wmin": 1200, "hmin": 628})), size_misfit);
    assert_eq!(main(json!({"wmin": 1201, "hmin": 1})), size_misfit);
    // A minimum wins over an exact size beside it; 0 is "not given".
    assert!(main(json!({"w": 300, "h": 200, "wmin": 300, "hmin": 200})).is_ok());
    assert!(main(json!({"w": 1200, "h": 627, "wmin": 0, "hmin": 0})).is_ok());
    assert_eq!(
        main(json!({"w": 180, "h": 120, "wmin": 0, "hmin": 0})),
        size_misfit
    );
    assert!(main(json!({})).is_ok());
    // Strings and negatives.
    assert!(main(json!({"w": "1200", "h": "627"})).is_ok());
    assert!(main(json!({"w": -1, "h": -1})).is_ok());
}

#[test]
fn an_optional_icon_of_the_wrong_size_is_left_out() {
    let req = parse(&request(json!([
        {"id": 1, "required": 1, "title": {"len": 90}},
        {"id": 3, "required": 0, "img": {"type": 1, "wmin": 200, "hmin": 200}}
    ])));
    let (r, _) = respond(&ad(), &req);
    assert_eq!(ids(&r), [1]);
}

#[test]
fn listed_mimes_must_include_the_images_type() {
    let with_mimes = |mimes: Value, url: &'static str| {
        let a = NativeAd {
            image: NativeImage {
                url,
                w: 1200,
                h: 627,
            },
            ..ad()
        };
        let req = parse(&request(json!([
            {"id": 2, "required": 1, "img": {"type": 3, "mimes": mimes}}
        ])));
        fit_native(&a, &req).map(|_| ())
    };
    let mime_misfit = Err(NativeMisfit::Image {
        asset: 2,
        image_type: 3,
        why: ImageMisfit::Mime,
    });
    let jpg = "https://cdn.example/tent.JPG?v=2";
    assert_eq!(with_mimes(json!(["image/jpeg"]), jpg), Ok(()));
    assert_eq!(with_mimes(json!(["image/jpg", "image/gif"]), jpg), Ok(()));
    assert_eq!(with_mimes(json!([]), jpg), Ok(()), "empty takes any");
    assert_eq!(with_mimes(json!(["image/png"]), jpg), mime_misfit);
    // An unknown extension is not guessed to be png.
    assert_eq!(
        with_mimes(json!(["image/png"]), "https://cdn.example/tent?id=7"),
        mime_misfit
    );
}

// ---------------------------------------------------------------- lengths

#[test]
fn titles_and_descriptions_are_shortened_within_len() {
    let req = parse(&request(json!([
        {"id": 1, "required": 1, "title": {"len": 15}},
        {"id": 2, "required": 1, "data": {"type": 2, "len": "20"}}
    ])));
    let (r, _) = respond(&ad(), &req);
    let title = r["assets"][0]["title"]["text"].as_str().unwrap();
    assert_eq!(title, "Ultralight…");
    let desc = r["assets"][1]["data"]["value"].as_str().unwrap();
    assert_eq!(desc, "Three-season tent…");
    assert!(desc.chars().count() <= 20);

    let tiny = parse(&request(
        json!([{"id": 1, "required": 1, "title": {"len": 5}}]),
    ));
    assert_eq!(
        fit_native(&ad(), &tiny),
        Err(NativeMisfit::Title {
            asset: 1,
            why: TextMisfit::TooLong
        })
    );
}

#[test]
fn brand_price_and_cta_are_never_cut() {
    let one = |data_type: i64, len: i64, required: i64| {
        let req = parse(&request(json!([
            {"id": 1, "required": 1, "title": {"len": 90}},
            {"id": 8, "required": required, "data": {"type": data_type, "len": len}}
        ])));
        fit_native(&ad(), &req)
    };
    for (data_type, exact) in [(1, 12), (6, 7), (12, 8)] {
        assert!(
            one(data_type, exact, 1).is_ok(),
            "type {data_type} at its length"
        );
        assert_eq!(
            one(data_type, exact - 1, 1),
            Err(NativeMisfit::Data {
                asset: 8,
                data_type,
                why: TextMisfit::TooLong
            })
        );
        let optional = one(data_type, exact - 1, 0).unwrap();
        assert_eq!(optional.assets().len(), 1, "optional: left out, not cut");
    }
}

// ---------------------------------------------------------------- encodings

#[test]
fn string_encoded_and_object_requests_read_the_same() {
    let r = request(json!([
        {"id": 1, "required": 1, "title": {"len": 25}},
        {"id": 2, "required": "1", "img": {"type": "3", "wmin": "100", "hmin": 100.0}}
    ]));
    let from_string = parse_native_request(&encoded(&r)).unwrap();
    let from_object = parse_native_request(&r.to_string()).unwrap();
    let from_pretty = parse_native_request(&serde_json::to_string_pretty(&r).unwrap()).unwrap();
    assert_eq!(from_string, from_object);
    assert_eq!(from_string, from_pretty);
    assert_eq!(from_string.assets().len(), 2);
    assert!(from_string.assets()[1].required);
    let AssetKind::Image(img) = &from_string.assets()[1].kind else {
        panic!("an image asset");
    };
    assert_eq!(
        (img.image_type, img.wmin, img.hmin),
        (Some(3), Some(100), Some(100))
    );
}

#[test]
fn a_wrapped_1_0_request_gets_a_wrapped_response_with_imptrackers() {
    let r = json!({"native": {"ver": "1.0", "assets": [
        {"id": 1, "required": 1, "title": {"len": 25}},
        {"id": 2, "required": 1, "img": {"type": 3, "wmin": 100, "hmin": 100}}
    ]}});
    for raw in [encoded(&r), r.to_string()] {
        let req = parse_native_request(&raw).unwrap();
        assert!(req.wrapped());
        assert_eq!(req.version(), NativeVersion::V1_0);
        let (resp, wrapped) = respond(&ad(), &req);
        assert!(wrapped, "1.0 requests get the native root back");
        assert_eq!(resp["ver"], "1.0");
        assert_eq!(resp["imptrackers"], json!([IMPRESSION]));
        assert!(resp.get("eventtrackers").is_none());
        assert_eq!(ids(&resp), [1, 2]);
    }
    // Without `ver`, a wrapped request is 1.0.
    let r = json!({"native": {"assets": [{"id": 1, "title": {"len": 25}}]}});
    assert_eq!(parse(&r).version(), NativeVersion::V1_0);
    // A bare request that says 1.0 still gets the 1.0 shape back.
    let r = json!({"ver": 1, "assets": [{"id": 1, "title": {"len": 25}}]});
    let req = parse(&r);
    assert!(!req.wrapped());
    let (resp, wrapped) = respond(&ad(), &req);
    assert!(wrapped);
    assert_eq!(resp["ver"], "1.0");
}

#[test]
fn a_bare_1_1_request_gets_a_bare_response_with_imptrackers() {
    let r = json!({"ver": "1.1", "assets": [{"id": 1, "required": 1, "title": {"len": 25}}]});
    let req = parse(&r);
    assert!(!req.wrapped());
    let (resp, wrapped) = respond(&ad(), &req);
    assert!(!wrapped, "the root lost its wrapper in 1.1");
    assert_eq!(resp["ver"], "1.1");
    assert_eq!(resp["imptrackers"], json!([IMPRESSION]));
}

#[test]
fn a_1_1_request_listing_eventtrackers_still_gets_imptrackers() {
    // `eventtrackers` is a 1.2 field: a 1.1 response carrying only it
    // would lose the impression pixel.
    let r = json!({"ver": "1.1", "assets": [{"id": 1, "required": 1, "title": {"len": 25}}],
                   "eventtrackers": [{"event": 1, "methods": [1]}]});
    let (resp, _) = respond(&ad(), &parse(&r));
    assert_eq!(resp["imptrackers"], json!([IMPRESSION]));
    assert!(resp.get("eventtrackers").is_none(), "{resp}");
}

#[test]
fn a_bare_1_2_request_offering_an_impression_pixel_gets_eventtrackers() {
    let req = parse(&request(
        json!([{"id": 1, "required": 1, "title": {"len": 25}}]),
    ));
    assert!(req.offers_impression_pixel());
    let (resp, wrapped) = respond(&ad(), &req);
    assert!(!wrapped);
    assert_eq!(resp["ver"], "1.2");
    assert_eq!(
        resp["eventtrackers"],
        json!([{"event": 1, "method": 1, "url": IMPRESSION}])
    );
    assert!(resp.get("imptrackers").is_none());
}

#[test]
fn without_an_offered_impression_pixel_the_pixel_goes_in_imptrackers() {
    // 1.2 with no eventtrackers, an empty list, or only a JS tracker
    // offered: eventtrackers may only use offered methods.
    for trackers in [
        json!(null),
        json!([]),
        json!([{"event": 1, "methods": [2]}]),
        json!([{"event": 2, "methods": [1]}]),
    ] {
        let mut r =
            json!({"ver": "1.2", "assets": [{"id": 1, "required": 1, "title": {"len": 25}}]});
        if !trackers.is_null() {
            r["eventtrackers"] = trackers.clone();
        }
        let (resp, _) = respond(&ad(), &parse(&r));
        assert_eq!(resp["imptrackers"], json!([IMPRESSION]), "{trackers}");
        assert!(resp.get("eventtrackers").is_none(), "{trackers}");
    }
}

#[test]
fn empty_trackers_are_left_out() {
    let req = parse(&request(
        json!([{"id": 1, "required": 1, "title": {"len": 25}}]),
    ));
    let a = ad();
    let fit = fit_native(&a, &req).unwrap();
    let text = native_response(
        &a,
        &fit,
        &NativeTrackers {
            impression_url: "",
            click_trackers: &[""],
            privacy_url: None,
        },
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v.get("eventtrackers").is_none() && v.get("imptrackers").is_none());
    assert_eq!(v["link"], json!({"url": CLICK}));
}

#[test]
fn the_response_escapes_whatever_the_ad_says() {
    let a = NativeAd {
        title: "Tent \"Pro\" </script> \\ \u{0007} \u{2028}",
        ..ad()
    };
    let req = parse(&request(
        json!([{"id": 1, "required": 1, "title": {"len": 90}}]),
    ));
    let (r, _) = respond(&a, &req);
    assert_eq!(r["assets"][0]["title"]["text"], a.title);
    assert_eq!(r["link"]["url"], CLICK);
}

// ---------------------------------------------------------------- errors

#[test]
fn malformed_and_unbounded_requests_are_errors() {
    let err = |raw: &str| parse_native_request(raw).unwrap_err();
    assert!(matches!(err(""), NativeError::NotAnObject));
    assert!(matches!(err("null"), NativeError::NotAnObject));
    assert!(matches!(
        err("\"placeholder request\""),
        NativeError::NotAnObject
    ));
    assert!(matches!(err("[]"), NativeError::NotAnObject));
    assert!(matches!(
        err("{\"assets\":[{\"id\":1,"),
        NativeError::Json(_)
    ));
    // The openrtb2x example elides its assets as "[ ... ]".
    assert!(matches!(
        err(r#""{\"native\":{\"ver\":\"1.0\",\"assets\":[ ... ]}}""#),
        NativeError::Json(_)
    ));
    assert!(matches!(err(r#"{"ver":"1.2"}"#), NativeError::NoAssets));
    assert!(matches!(err(r#"{"assets":[]}"#), NativeError::NoAssets));
    // The rubicon fixture's request: trackers, no assets.
    assert!(matches!(
        err(r#""{\"eventtrackers\":[],\"context\":1,\"plcmttype\":2}""#),
        NativeError::NoAssets
    ));
    assert!(matches!(
        err(r#"{"assets":[{"required":1,"title":{"len":25}}]}"#),
        NativeError::MissingAssetId { index: 0 }
    ));
    assert!(matches!(
        err(r#"{"assets":[{"id":1,"title":{}},{"id":"1","data":{"type":1}}]}"#),
        NativeError::DuplicateAssetId { id: 1 }
    ));
    assert!(matches!(
        err(r#"{"assets":[{"id":3,"title":{"len":25},"data":{"type":1}}]}"#),
        NativeError::AmbiguousAsset { id: 3 }
    ));
    assert!(matches!(
        err(r#"{"native":{"native":{"assets":[{"id":1,"title":{}}]}}}"#),
        NativeError::Wrapper
    ));
    assert!(matches!(
        err(r#"{"assets":[{"id":1,"title":{}}],"native":{"assets":[{"id":1,"title":{}}]}}"#),
        NativeError::Wrapper
    ));
    // Wrong shapes: a string where an object or array goes, a word where a
    // number goes.
    assert!(matches!(err(r#"{"assets":"all"}"#), NativeError::Json(_)));
    assert!(matches!(
        err(r#"{"assets":[{"id":1,"title":"x"}]}"#),
        NativeError::Json(_)
    ));
    assert!(matches!(
        err(r#"{"assets":[{"id":1,"title":{"len":"long"}}]}"#),
        NativeError::Json(_)
    ));
    assert!(matches!(
        err(r#"{"assets":[{"id":1,"img":{"mimes":[3]}}]}"#),
        NativeError::Json(_)
    ));
    assert!(matches!(
        err(r#"{"assets":[{"id":1,"video":7}]}"#),
        NativeError::Json(_)
    ));
}

#[test]
fn size_and_asset_count_are_bounded() {
    let many = |n: usize| {
        let assets: Vec<Value> = (0..n)
            .map(|i| json!({"id": i, "data": {"type": 2}}))
            .collect();
        encoded(&json!({"assets": assets}))
    };
    assert_eq!(
        parse_native_request(&many(MAX_ASSETS))
            .unwrap()
            .assets()
            .len(),
        MAX_ASSETS
    );
    assert_eq!(
        parse_native_request(&many(MAX_ASSETS + 1)),
        Err(NativeError::TooManyAssets)
    );
    let padded = format!(
        "{{\"assets\":[{{\"id\":1,\"title\":{{}}}}],\"ext\":\"{}\"}}",
        "x".repeat(MAX_REQUEST_BYTES)
    );
    assert!(matches!(
        parse_native_request(&padded),
        Err(NativeError::TooLarge { .. })
    ));
    let just_fits = format!(
        "{{\"assets\":[{{\"id\":1,\"title\":{{}}}}],\"ext\":\"{}\"}}",
        "x".repeat(MAX_REQUEST_BYTES - 60)
    );
    assert!(just_fits.len() <= MAX_REQUEST_BYTES);
    assert!(parse_native_request(&just_fits).is_ok());
    // Lengths beyond u32 saturate instead of failing or wrapping.
    let req = parse(&json!({"assets": [{"id": 1, "title": {"len": 1e30}}]}));
    assert_eq!(
        req.assets()[0].kind,
        AssetKind::Title {
            len: Some(u32::MAX)
        }
    );
}

// ---------------------------------------------------------------- real requests

#[test]
fn smartadserver_1_2_with_eventtrackers_and_minimum_sizes() {
    let raw = fixture(
        "pbs__smartadserver__native-app__call0-bidder-request.json",
        0,
    );
    assert!(raw.starts_with('"'), "string-encoded");
    let req = parse_native_request(&raw).unwrap();
    assert_eq!(req.version(), NativeVersion::V1_2);
    assert!(!req.wrapped());
    assert!(req.offers_impression_pixel());
    assert_eq!(req.assets().len(), 7);

    let (r, wrapped) = respond(&ad(), &req);
    assert!(!wrapped);
    // 1 title (25: shortened), 2 desc (90), 3 cta (optional, 15), 4 main
    // image (1200x627 min), 5 icon (100x100 min), 7 price (optional); 6
    // (rating, optional) left out.
    assert_eq!(ids(&r), [1, 2, 3, 4, 5, 7]);
    let title = asset(&r, 1).unwrap()["title"]["text"].as_str().unwrap();
    assert_eq!(title, "Ultralight two-person…");
    assert!(title.chars().count() <= 25);
    assert_eq!(
        r["eventtrackers"],
        json!([{"event": 1, "method": 1, "url": IMPRESSION}])
    );

    // A smaller main image does not meet 1200x627.
    let small = NativeAd {
        image: NativeImage {
            url: "https://cdn.example/tent-600.jpg",
            w: 600,
            h: 314,
        },
        ..ad()
    };
    assert_eq!(
        fit_native(&small, &req),
        Err(NativeMisfit::Image {
            asset: 4,
            image_type: 3,
            why: ImageMisfit::Size
        })
    );
}

#[test]
fn smaato_1_2_requiring_ratings_and_downloads_is_a_misfit() {
    let req = parse_native_request(&fixture(
        "pbs__smaato__native__call0-bidder-request.json",
        0,
    ))
    .unwrap();
    assert_eq!(req.assets().len(), 15);
    // Its asset 12 says "require", not "required": optional.
    assert!(!req.assets().iter().find(|a| a.id == 12).unwrap().required);
    // Assets in request order: 4 (main 150x50 exact) fails first.
    assert_eq!(
        fit_native(&ad(), &req),
        Err(NativeMisfit::Image {
            asset: 4,
            image_type: 3,
            why: ImageMisfit::Size
        })
    );
    let sized = NativeAd {
        image: NativeImage {
            url: "https://cdn.example/tent-150x50.png",
            w: 150,
            h: 50,
        },
        icon: Some(NativeImage {
            url: "https://cdn.example/acme-50.png",
            w: 50,
            h: 50,
        }),
        ..ad()
    };
    assert_eq!(
        fit_native(&sized, &req),
        Err(NativeMisfit::Unsupported {
            asset: 5,
            what: UnsupportedAsset::Data(3)
        })
    );
}

#[test]
fn axonix_1_1_without_eventtrackers_gets_imptrackers() {
    let req = parse_native_request(&fixture(
        "pbs__axonix__banner-video-native__call0-bidder-request.json",
        1,
    ))
    .unwrap();
    assert_eq!(req.version(), NativeVersion::V1_1);
    assert!(!req.offers_impression_pixel());
    let (r, wrapped) = respond(&ad(), &req);
    assert!(!wrapped);
    // 6 (data type 500, optional) left out.
    assert_eq!(ids(&r), [1, 2, 3, 4, 5]);
    assert_eq!(r["ver"], "1.1");
    assert_eq!(r["imptrackers"], json!([IMPRESSION]));
    assert!(r.get("eventtrackers").is_none());
    assert_eq!(asset(&r, 3).unwrap()["data"]["value"], "Acme Outdoor");
    assert_eq!(asset(&r, 5).unwrap()["data"]["value"], "$249.99");
}

/// The buyer's privacy page goes in `privacy` where the request says the
/// slot shows one (`privacy: 1`), and nowhere else: not without the flag,
/// not with no page given, not as an empty string.
#[test]
fn the_privacy_link_goes_where_the_slot_shows_one() {
    const PAGE: &str = "https://bidder.example/privacy";
    let a = ad();
    let assets = json!([{"id": 1, "required": 1, "title": {"len": 90}}]);
    let with_flag = |flag: Value| {
        let mut r = request(assets.clone());
        r["privacy"] = flag;
        parse(&r)
    };
    let written = |req: &NativeRequest, url: Option<&str>| {
        let fit = fit_native(&a, req).expect("the ad fits");
        let text = native_response(
            &a,
            &fit,
            &NativeTrackers {
                privacy_url: url,
                ..trackers()
            },
        );
        let v: Value = serde_json::from_str(&text).expect("the response is JSON");
        v.get("privacy").cloned()
    };
    assert_eq!(written(&with_flag(json!(1)), Some(PAGE)), Some(json!(PAGE)));
    assert_eq!(written(&with_flag(json!(0)), Some(PAGE)), None);
    assert_eq!(written(&parse(&request(assets.clone())), Some(PAGE)), None);
    assert_eq!(written(&with_flag(json!(1)), None), None);
    assert_eq!(written(&with_flag(json!(1)), Some("")), None);
    // Before 1.2 a response has no `privacy`: none is written.
    let mut older = request(assets.clone());
    older["ver"] = json!("1.1");
    older["privacy"] = json!(1);
    assert_eq!(written(&parse(&older), Some(PAGE)), None);
}
