//! VAST output: every shape the bidder can emit validates against the IAB XSD
//! of its version (`xmllint --schema`, from libxml2-utils), and carries what
//! it should.
//!
//! The XSDs are vendored in `testdata/vast/xsd/` (attribution in
//! `testdata/NOTICE`). Without `xmllint` these tests fail: install
//! libxml2-utils (`apt-get install -y libxml2-utils`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use config::{Creative, CreativeKind, MediaFile};
use creatives::{image_mime, vast_xml, Companion, EventUrls, Vast, VastVersion};
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

use VastVersion::*;

// ---------------------------------------------------------------- fixtures

const CLICK: &str = "https://www.acme-outdoor.example/tents?src=vast&x=<1>";
const IMPRESSION: &str = "https://bidder.example/imp?b=bid-1&p=${AUCTION_PRICE}";
const TRACKING: &str = "https://bidder.example/ev?b=bid-1&e={event}";

/// Each event's tracking URL: [`TRACKING`] with the event's name in it.
fn tracking(event: &str, out: &mut String) {
    out.push_str(&TRACKING.replace("{event}", event));
}
const CLICK_TRACKING: &str = "https://bidder.example/click?b=bid-1&c=video&r=<x>";
const COMPANION_CLICK_TRACKING: &str = "https://bidder.example/click?b=bid-1&c=banner";

fn media(url: &str, mime: &str, size: Option<(u32, u32)>, kbps: Option<u32>) -> MediaFile {
    MediaFile {
        url: url.into(),
        mime: mime.into(),
        width: size.map(|s| s.0),
        height: size.map(|s| s.1),
        bitrate_kbps: kbps,
    }
}

fn video() -> Creative {
    Creative {
        id: "tent-video-15s".into(),
        at: Default::default(),
        kind: CreativeKind::Video {
            duration_s: 15,
            media: vec![
                media(
                    "https://cdn.acme-outdoor.example/tent-15s-1080.mp4",
                    "video/mp4",
                    Some((1920, 1080)),
                    Some(4500),
                ),
                media(
                    "https://cdn.acme-outdoor.example/tent-15s-480.webm",
                    "video/webm",
                    Some((854, 480)),
                    None,
                ),
            ],
        },
        click_url: CLICK.into(),
        companions: vec!["tent-banner-300x250".into()],
        companion_required: false,
        attributes: vec![],
        language: None,
    }
}

fn audio() -> Creative {
    Creative {
        id: "tent-audio-30s".into(),
        at: Default::default(),
        kind: CreativeKind::Audio {
            duration_s: 30,
            media: vec![media(
                "https://cdn.acme-outdoor.example/tent-30s.mp3",
                "audio/mpeg",
                None,
                Some(128),
            )],
        },
        click_url: "https://www.acme-outdoor.example/tents".into(),
        companions: vec!["tent-companion-640x640".into()],
        companion_required: false,
        attributes: vec![],
        language: None,
    }
}

fn display(id: &str, w: u32, h: u32, image_url: &str, click_url: &str) -> Creative {
    Creative {
        id: id.into(),
        at: Default::default(),
        kind: CreativeKind::Display {
            w,
            h,
            image_url: image_url.into(),
        },
        click_url: click_url.into(),
        companions: vec![],
        companion_required: false,
        attributes: vec![],
        language: None,
    }
}

fn banner() -> Creative {
    display(
        "tent-banner-300x250",
        300,
        250,
        "https://cdn.acme-outdoor.example/tent-300x250.jpg",
        "https://www.acme-outdoor.example/tents?from=companion&y=2",
    )
}

fn square() -> Creative {
    display(
        "tent-companion-640x640",
        640,
        640,
        "https://cdn.acme-outdoor.example/tent-640.PNG?v=3",
        "https://www.acme-outdoor.example/tents?from=audio-companion",
    )
}

/// The shapes the bidder emits.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    VideoRequiredCompanion,
    VideoOptionalCompanion,
    VideoAlone,
    AudioCompanion,
    AudioAlone,
}

const SHAPES: [Shape; 5] = [
    Shape::VideoRequiredCompanion,
    Shape::VideoOptionalCompanion,
    Shape::VideoAlone,
    Shape::AudioCompanion,
    Shape::AudioAlone,
];

impl Shape {
    fn is_audio(self) -> bool {
        matches!(self, Shape::AudioCompanion | Shape::AudioAlone)
    }

    fn has_companion(self) -> bool {
        !matches!(self, Shape::VideoAlone | Shape::AudioAlone)
    }
}

/// The VAST for one shape, all renditions listed (as the bidder would pick
/// them), with the click URLs above.
fn render(version: VastVersion, shape: Shape) -> String {
    let (main, companion) = if shape.is_audio() {
        (audio(), square())
    } else {
        (video(), banner())
    };
    let files = match &main.kind {
        CreativeKind::Video { media, .. } | CreativeKind::Audio { media, .. } => media,
        CreativeKind::Display { .. } | CreativeKind::Native(_) => unreachable!(),
    };
    let files: Vec<&MediaFile> = files.iter().collect();
    vast_xml(&Vast {
        version,
        ad_id: "bid-1",
        ad_system: "bidder",
        ad_title: "ACME Outdoor Gear: tents",
        creative: &main,
        media: &files,
        impression_url: IMPRESSION,
        tracking: EventUrls(&tracking),
        click_tracking_url: Some(CLICK_TRACKING),
        companion: shape.has_companion().then_some(Companion {
            creative: &companion,
            required: shape == Shape::VideoRequiredCompanion,
            click_tracking_url: Some(COMPANION_CLICK_TRACKING),
        }),
    })
}

// ---------------------------------------------------------------- xmllint

fn xsd(version: VastVersion) -> PathBuf {
    let file = match version {
        V2_0 => "vast_2.0.1.xsd",
        V3_0 => "vast3_draft.xsd",
        V4_0 => "vast4.xsd",
        V4_1 => "vast_4.1.xsd",
        V4_2 => "vast_4.2.xsd",
    };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/vast/xsd")
        .join(file)
}

/// `xmllint --noout --schema XSD -` on the document: Ok, or xmllint's words.
fn validate(xml: &str, version: VastVersion) -> Result<(), String> {
    let schema = xsd(version);
    assert!(schema.is_file(), "missing {}", schema.display());
    let child = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "xmllint is not installed: the VAST schema tests need it. \
             Install libxml2-utils (apt-get install -y libxml2-utils)."
        ),
        Err(e) => panic!("cannot run xmllint: {e}"),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(xml.as_bytes())
        .expect("xmllint reads the document");
    let out = child.wait_with_output().expect("xmllint runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn assert_valid(xml: &str, version: VastVersion) {
    if let Err(e) = validate(xml, version) {
        panic!("VAST {version} does not validate:\n{e}\n{xml}");
    }
}

// ---------------------------------------------------------------- reading back

/// One element: its path from the root (`VAST/Ad/InLine/...`), attributes
/// and text (CDATA and references resolved).
#[derive(Debug)]
struct El {
    path: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl El {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn attr_names(&self) -> Vec<&str> {
        self.attrs.iter().map(|(k, _)| k.as_str()).collect()
    }
}

fn parse(xml: &str) -> Vec<El> {
    let mut reader = Reader::from_str(xml);
    let mut els: Vec<El> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    loop {
        let event = reader.read_event().expect("well-formed XML");
        let element = |e: &quick_xml::events::BytesStart<'_>, open: &[usize], els: &[El]| {
            let name = e.name().as_ref().to_string();
            let path = match open.last() {
                Some(&i) => format!("{}/{name}", els[i].path),
                None => name,
            };
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.expect("attribute");
                    let value = a
                        .normalized_value(XmlVersion::Explicit1_0)
                        .expect("attribute value");
                    (a.key.as_ref().to_string(), value.into_owned())
                })
                .collect();
            El {
                path,
                attrs,
                text: String::new(),
            }
        };
        match event {
            Event::Start(e) => {
                let el = element(&e, &open, &els);
                els.push(el);
                open.push(els.len() - 1);
            }
            Event::Empty(e) => {
                let el = element(&e, &open, &els);
                els.push(el);
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Text(t) => {
                if let Some(&i) = open.last() {
                    els[i].text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(&i) = open.last() {
                    els[i].text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().expect("char ref") {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .expect("predefined entity")
                        .to_string(),
                };
                if let Some(&i) = open.last() {
                    els[i].text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(open.is_empty(), "unclosed elements");
    els
}

/// The elements whose path ends with `suffix` (whole names).
fn find<'a>(els: &'a [El], suffix: &str) -> Vec<&'a El> {
    els.iter()
        .filter(|e| e.path == suffix || e.path.ends_with(&format!("/{suffix}")))
        .collect()
}

fn one<'a>(els: &'a [El], suffix: &str) -> &'a El {
    let found = find(els, suffix);
    assert_eq!(found.len(), 1, "exactly one {suffix}: {found:?}");
    found[0]
}

fn texts(els: &[El], suffix: &str) -> Vec<String> {
    find(els, suffix).iter().map(|e| e.text.clone()).collect()
}

/// Names of the children of the element at `path`, in order.
fn children(els: &[El], path: &str) -> Vec<String> {
    let prefix = format!("{path}/");
    els.iter()
        .filter_map(|e| e.path.strip_prefix(&prefix))
        .filter(|rest| !rest.contains('/'))
        .map(str::to_string)
        .collect()
}

const LINEAR: &str = "VAST/Ad/InLine/Creatives/Creative/Linear";
const COMPANION: &str = "VAST/Ad/InLine/Creatives/Creative/CompanionAds/Companion";

// ---------------------------------------------------------------- tests

#[test]
fn every_version_and_shape_validates_against_its_xsd() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for version in VastVersion::ALL {
        for shape in SHAPES {
            let xml = render(version, shape);
            checked += 1;
            if let Err(e) = validate(&xml, version) {
                failures.push(format!("VAST {version} {shape:?}:\n{e}\n{xml}\n"));
            }
        }
    }
    assert_eq!(checked, 25);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The validator is strict where the writer is careful: each quirk the
/// writer handles, undone, makes the document invalid.
#[test]
fn each_handled_xsd_quirk_is_enforced_by_the_xsd() {
    type Mutation = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(VastVersion, Shape, &str, Mutation)> = vec![
        (
            V4_2,
            Shape::VideoAlone,
            "4.x needs the VAST namespace",
            Box::new(|x| x.replace(" xmlns=\"http://www.iab.com/VAST\"", "")),
        ),
        (
            V2_0,
            Shape::VideoRequiredCompanion,
            "2.0 has no CompanionAds@required",
            Box::new(|x| x.replace("<CompanionAds>", "<CompanionAds required=\"all\">")),
        ),
        (
            V3_0,
            Shape::VideoOptionalCompanion,
            "the 3.0 XSD has no CompanionClickTracking in InLine companions",
            Box::new(|x| {
                x.replace(
                    "</CompanionClickThrough>",
                    "</CompanionClickThrough><CompanionClickTracking>https://t.example/</CompanionClickTracking>",
                )
            }),
        ),
        (
            V4_1,
            Shape::VideoAlone,
            "4.1 requires AdServingId",
            Box::new(|x| x.replace("<AdServingId>bid-1</AdServingId>", "")),
        ),
        (
            V4_0,
            Shape::AudioAlone,
            "4.0 has no Ad@adType",
            Box::new(|x| x.replace("<Ad id=\"bid-1\">", "<Ad id=\"bid-1\" adType=\"audio\">")),
        ),
        (
            V4_2,
            Shape::VideoAlone,
            "4.x requires UniversalAdId",
            Box::new(|x| {
                let start = x.find("<UniversalAdId").expect("has one");
                let end = x.find("</UniversalAdId>").expect("has one") + "</UniversalAdId>".len();
                format!("{}{}", &x[..start], &x[end..])
            }),
        ),
        (
            V4_0,
            Shape::VideoAlone,
            "4.0 requires UniversalAdId@idValue",
            Box::new(|x| x.replace(" idValue=\"tent-video-15s\"", "")),
        ),
        (
            V4_2,
            Shape::VideoAlone,
            "4.x puts Impression before AdTitle",
            Box::new(|x| {
                let title = "<AdTitle>ACME Outdoor Gear: tents</AdTitle>";
                x.replace(title, "")
                    .replace("<Impression>", &format!("{title}<Impression>"))
            }),
        ),
        (
            V4_2,
            Shape::AudioAlone,
            "MediaFile@width is required, even for audio",
            Box::new(|x| x.replace(" width=\"0\"", "")),
        ),
        (
            V2_0,
            Shape::VideoAlone,
            "2.0 requires Ad@id",
            Box::new(|x| x.replace("<Ad id=\"bid-1\">", "<Ad>")),
        ),
    ];
    for (version, shape, what, mutate) in cases {
        let xml = render(version, shape);
        assert_valid(&xml, version);
        let broken = mutate(&xml);
        assert_ne!(broken, xml, "{what}: the mutation changed nothing");
        assert!(
            validate(&broken, version).is_err(),
            "{what}: xmllint accepted\n{broken}"
        );
    }
}

#[test]
fn protocols_map_to_the_highest_inline_version() {
    let p = |codes: &[i32]| VastVersion::from_protocols(codes, V3_0);
    assert_eq!(p(&[2, 3]), Some(V3_0));
    assert_eq!(
        p(&[2, 5]),
        Some(V2_0),
        "a 2.0 Wrapper implies the 2.0 InLine"
    );
    assert_eq!(p(&[7, 11, 13]), Some(V4_2));
    assert_eq!(
        p(&[5, 6, 8]),
        Some(V4_0),
        "Wrapper codes alone: their InLines"
    );
    assert_eq!(p(&[4, 5, 6, 8]), Some(V4_0));
    assert_eq!(p(&[13, 2]), Some(V4_2));
    assert_eq!(
        p(&[3, 7, 11, 14]),
        Some(V4_2),
        "the 4.2 Wrapper implies 4.2"
    );
    assert_eq!(p(&[7, 12]), Some(V4_1));
    assert_eq!(p(&[6]), Some(V3_0));
    // VAST 1.0 (InLine and Wrapper) and DAAST are never written.
    assert_eq!(p(&[1, 4, 9, 10]), None);
    assert_eq!(p(&[0, -1, 15, 99, 3]), Some(V3_0));
    // No protocols at all: the exchange's default.
    assert_eq!(p(&[]), Some(V3_0));
    assert_eq!(VastVersion::from_protocols(&[], V4_1), Some(V4_1));
    assert_eq!(VastVersion::from_protocols(&[1], V4_1), None);

    let codes: Vec<i32> = VastVersion::ALL.iter().map(|v| v.protocol()).collect();
    assert_eq!(codes, [2, 3, 7, 11, 13]);
    let names: Vec<&str> = VastVersion::ALL.iter().map(|v| v.as_str()).collect();
    assert_eq!(names, ["2.0", "3.0", "4.0", "4.1", "4.2"]);
    for v in VastVersion::ALL {
        assert_eq!(VastVersion::from_protocol(v.protocol()), Some(v));
        assert_eq!(v.to_string(), v.as_str());
    }
    assert!(V2_0 < V3_0 && V3_0 < V4_0 && V4_0 < V4_1 && V4_1 < V4_2);
}

#[test]
fn root_ad_and_inline_per_version() {
    for version in VastVersion::ALL {
        let xml = render(version, Shape::VideoRequiredCompanion);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><VAST "));
        let els = parse(&xml);
        let root = one(&els, "VAST");
        assert_eq!(root.attr("version"), Some(version.as_str()));
        let ns = (version >= V4_0).then_some("http://www.iab.com/VAST");
        assert_eq!(root.attr("xmlns"), ns, "{version}");
        assert_eq!(one(&els, "VAST/Ad").attr("id"), Some("bid-1"));
        assert_eq!(
            one(&els, "VAST/Ad").attr("adType"),
            None,
            "video is the default"
        );
        assert_eq!(texts(&els, "InLine/AdSystem"), ["bidder"]);
        assert_eq!(texts(&els, "InLine/AdTitle"), ["ACME Outdoor Gear: tents"]);
        assert_eq!(texts(&els, "InLine/Impression"), [IMPRESSION]);
        let serving = texts(&els, "InLine/AdServingId");
        if version >= V4_1 {
            assert_eq!(serving, ["bid-1"]);
        } else {
            assert!(serving.is_empty(), "{version}");
        }
        let order = children(&els, "VAST/Ad/InLine");
        let expected: &[&str] = match version {
            V2_0 | V3_0 => &["AdSystem", "AdTitle", "Impression", "Creatives"],
            V4_0 => &["AdSystem", "Impression", "AdTitle", "Creatives"],
            V4_1 | V4_2 => &[
                "AdSystem",
                "Impression",
                "AdServingId",
                "AdTitle",
                "Creatives",
            ],
        };
        assert_eq!(order, expected, "{version}");
        // The linear creative, then the companion's, each with its id.
        let creatives = find(&els, "InLine/Creatives/Creative");
        let ids: Vec<_> = creatives.iter().map(|c| c.attr("id")).collect();
        assert_eq!(
            ids,
            [Some("tent-video-15s"), Some("tent-banner-300x250")],
            "{version}"
        );
    }
}

#[test]
fn universal_ad_id_in_4x_creatives() {
    for version in VastVersion::ALL {
        let els = parse(&render(version, Shape::VideoOptionalCompanion));
        let ids = find(&els, "Creative/UniversalAdId");
        if version < V4_0 {
            assert!(ids.is_empty(), "{version}");
            continue;
        }
        let values: Vec<&str> = ids.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            values,
            ["tent-video-15s", "tent-banner-300x250"],
            "{version}"
        );
        for id in &ids {
            assert_eq!(id.attr("idRegistry"), Some("unknown"));
            let id_value = (version == V4_0).then_some(id.text.as_str());
            assert_eq!(id.attr("idValue"), id_value, "{version}");
        }
        // The XSD sequence puts it last in the Creative.
        let linear_children = children(&els, "VAST/Ad/InLine/Creatives/Creative");
        assert_eq!(
            linear_children,
            ["Linear", "UniversalAdId", "CompanionAds", "UniversalAdId"]
        );
    }
}

#[test]
fn duration_follows_each_version() {
    for version in VastVersion::ALL {
        for (shape, expected) in [
            (Shape::VideoAlone, ["00:00:15", "00:00:15.000"]),
            (Shape::AudioAlone, ["00:00:30", "00:00:30.000"]),
        ] {
            let els = parse(&render(version, shape));
            let want = if version == V2_0 {
                expected[0]
            } else {
                expected[1]
            };
            assert_eq!(texts(&els, "Linear/Duration"), [want], "{version}");
        }
    }
    // Hours and minutes too, and still valid xs:time.
    let mut long = video();
    if let CreativeKind::Video { duration_s, .. } = &mut long.kind {
        *duration_s = 3725;
    }
    for version in VastVersion::ALL {
        let xml = vast_xml(&Vast {
            version,
            ad_id: "bid-2",
            ad_system: "bidder",
            ad_title: "long",
            creative: &long,
            media: &[],
            impression_url: IMPRESSION,
            tracking: EventUrls(&tracking),
            click_tracking_url: None,
            companion: None,
        });
        assert_valid(&xml, version);
        let want = if version == V2_0 {
            "01:02:05"
        } else {
            "01:02:05.000"
        };
        assert_eq!(texts(&parse(&xml), "Linear/Duration"), [want]);
    }
}

#[test]
fn linear_tracking_events_one_url_each() {
    for version in VastVersion::ALL {
        for shape in SHAPES {
            let els = parse(&render(version, shape));
            let tracking = find(&els, "Linear/TrackingEvents/Tracking");
            let got: Vec<(&str, &str)> = tracking
                .iter()
                .map(|t| (t.attr("event").unwrap(), t.text.as_str()))
                .collect();
            let want: Vec<(&str, String)> = [
                "start",
                "firstQuartile",
                "midpoint",
                "thirdQuartile",
                "complete",
            ]
            .iter()
            .map(|e| (*e, TRACKING.replace("{event}", e)))
            .collect();
            let want: Vec<(&str, &str)> = want.iter().map(|(e, u)| (*e, u.as_str())).collect();
            assert_eq!(got, want, "{version} {shape:?}");

            let companion = find(&els, "Companion/TrackingEvents/Tracking");
            if shape.has_companion() {
                assert_eq!(companion.len(), 1);
                assert_eq!(companion[0].attr("event"), Some("creativeView"));
                assert_eq!(
                    companion[0].text,
                    "https://bidder.example/ev?b=bid-1&e=creativeView"
                );
            } else {
                assert!(companion.is_empty());
            }
        }
    }
}

#[test]
fn urls_are_cdata_and_come_back_unchanged() {
    for version in VastVersion::ALL {
        let xml = render(version, Shape::VideoRequiredCompanion);
        // `&` and `<` sit in CDATA as written, not as entities.
        assert!(
            xml.contains(&format!("<ClickThrough><![CDATA[{CLICK}]]></ClickThrough>")),
            "{xml}"
        );
        assert!(xml.contains(&format!(
            "<ClickTracking><![CDATA[{CLICK_TRACKING}]]></ClickTracking>"
        )));
        assert!(xml.contains(&format!(
            "<Impression><![CDATA[{IMPRESSION}]]></Impression>"
        )));
        assert!(!xml.contains("&amp;"), "no URL is entity-escaped: {xml}");
        let els = parse(&xml);
        assert_eq!(texts(&els, "VideoClicks/ClickThrough"), [CLICK]);
        assert_eq!(texts(&els, "VideoClicks/ClickTracking"), [CLICK_TRACKING]);
        let order = children(&els, &format!("{LINEAR}/VideoClicks"));
        let expected = if version >= V4_0 {
            ["ClickTracking", "ClickThrough"]
        } else {
            ["ClickThrough", "ClickTracking"]
        };
        assert_eq!(order, expected, "{version}");
    }
}

/// One click-through URL in a one-rendition video, at `version`.
fn with_click(version: VastVersion, click_url: &str) -> String {
    let mut c = video();
    c.click_url = click_url.into();
    vast_xml(&Vast {
        version,
        ad_id: "bid-3",
        ad_system: "bidder",
        ad_title: "odd",
        creative: &c,
        media: &[],
        impression_url: IMPRESSION,
        tracking: EventUrls(&tracking),
        click_tracking_url: None,
        companion: None,
    })
}

/// URLs that strict `xs:anyURI` validators (libxml2) reject are
/// percent-encoded where browsers would encode them; the rest is untouched.
#[test]
fn urls_are_made_valid_any_uris() {
    let cases = [
        // VAST player macros: brackets only belong in an IPv6 host.
        (
            "https://c.example/p?t=[TIMESTAMP]&c=[CACHEBUSTING]",
            "https://c.example/p?t=%5BTIMESTAMP%5D&c=%5BCACHEBUSTING%5D",
        ),
        ("https://[2001:db8::1]/p?a=1", "https://[2001:db8::1]/p?a=1"),
        (
            "https://c.example/sale?off=50%",
            "https://c.example/sale?off=50%25",
        ),
        (
            "https://c.example/p?q=%zz%2",
            "https://c.example/p?q=%25zz%252",
        ),
        (
            "https://c.example/p?q=%2F%c3%a9",
            "https://c.example/p?q=%2F%c3%a9",
        ),
        ("https://c.example/p#a#b", "https://c.example/p#a%23b"),
        ("https://c.example/a b\tc", "https://c.example/a%20b%09c"),
        (
            "https://c.example/é?x={y}|^`'\"",
            "https://c.example/é?x={y}|^`'\"",
        ),
        // `]]>` cannot sit in a CDATA section; once `]` is encoded it is not there.
        (
            "https://c.example/p?a=]]>&b=<2>",
            "https://c.example/p?a=%5D%5D>&b=<2>",
        ),
    ];
    for version in VastVersion::ALL {
        for (url, written) in cases {
            let xml = with_click(version, url);
            assert_valid(&xml, version);
            assert_eq!(
                texts(&parse(&xml), "VideoClicks/ClickThrough"),
                [written],
                "{version} {url}"
            );
        }
    }
}

/// Where `]]>` does reach a CDATA section (brackets in the host part, which
/// no real URL has), the writer splits the section and the document stays
/// well-formed: the value reads back whole.
#[test]
fn cdata_end_marker_is_split_by_the_writer() {
    let url = "https://c.example]]>/";
    let xml = with_click(V4_2, url);
    assert!(
        xml.contains("<![CDATA[https://c.example]]]]><![CDATA[>/]]>"),
        "{xml}"
    );
    assert_eq!(texts(&parse(&xml), "VideoClicks/ClickThrough"), [url]);
}

/// The VAST of `c` alone (no companion, no click tracking), with the ad
/// id, ad system and title given.
fn bare(
    version: VastVersion,
    c: &Creative,
    [ad_id, ad_system, ad_title]: [&str; 3],
    impression_url: &str,
) -> String {
    vast_xml(&Vast {
        version,
        ad_id,
        ad_system,
        ad_title,
        creative: c,
        media: &[],
        impression_url,
        tracking: EventUrls(&tracking),
        click_tracking_url: None,
        companion: None,
    })
}

#[test]
fn text_and_attributes_are_escaped() {
    let mut c = video();
    c.id = "v\"1'<&>".into();
    let title = "Tents & <More> \"50%\" 'off' ]]>";
    for version in VastVersion::ALL {
        let xml = bare(version, &c, ["bid\"<&>", "bidder & co", title], IMPRESSION);
        assert_valid(&xml, version);
        assert!(xml.contains("Tents &amp; &lt;More&gt;"), "{xml}");
        assert!(xml.contains("<Ad id=\"bid&quot;&lt;&amp;&gt;\""), "{xml}");
        let els = parse(&xml);
        assert_eq!(texts(&els, "InLine/AdTitle"), [title]);
        assert_eq!(texts(&els, "InLine/AdSystem"), ["bidder & co"]);
        assert_eq!(one(&els, "VAST/Ad").attr("id"), Some("bid\"<&>"));
        assert_eq!(one(&els, "Creatives/Creative").attr("id"), Some("v\"1'<&>"));
    }
}

/// A carriage return in text, and a tab, line feed or carriage return in
/// an attribute value, are written as character references: written as
/// they are, a parser would read the first as a line feed and the others
/// as spaces. Each comes back as it was sent.
#[test]
fn line_breaks_and_tabs_come_back_as_sent() {
    let mut c = video();
    c.id = "x\ty\nz\r".into();
    let title = "a\rb\r\nc\td";
    for version in VastVersion::ALL {
        let xml = bare(version, &c, ["bid\t5", "bidder", title], IMPRESSION);
        assert_valid(&xml, version);
        assert!(
            xml.contains("<AdTitle>a&#13;b&#13;\nc\td</AdTitle>"),
            "{xml}"
        );
        assert!(xml.contains("<Creative id=\"x&#9;y&#10;z&#13;\">"), "{xml}");
        let els = parse(&xml);
        assert_eq!(texts(&els, "InLine/AdTitle"), [title]);
        assert_eq!(one(&els, "VAST/Ad").attr("id"), Some("bid\t5"));
        assert_eq!(
            one(&els, "Creatives/Creative").attr("id"),
            Some("x\ty\nz\r")
        );
    }
}

#[test]
fn characters_xml_cannot_carry_never_break_the_document() {
    let mut c = video();
    c.click_url = "https://c.example/a b\u{1}\tc".into();
    for version in VastVersion::ALL {
        let xml = bare(
            version,
            &c,
            ["bid-4", "bidder", "bell\u{7} title"],
            "https://bidder.example/imp?\u{0}x",
        );
        assert_valid(&xml, version);
        let els = parse(&xml);
        assert_eq!(texts(&els, "InLine/AdTitle"), ["bell title"]);
        assert_eq!(
            texts(&els, "VideoClicks/ClickThrough"),
            ["https://c.example/a%20b%01%09c"]
        );
        assert_eq!(
            texts(&els, "InLine/Impression"),
            ["https://bidder.example/imp?%00x"]
        );
    }
}

#[test]
fn media_files_keep_order_and_attributes() {
    for version in VastVersion::ALL {
        let els = parse(&render(version, Shape::VideoAlone));
        let files = find(&els, "Linear/MediaFiles/MediaFile");
        assert_eq!(files.len(), 2);
        assert_eq!(
            files[0].text,
            "https://cdn.acme-outdoor.example/tent-15s-1080.mp4"
        );
        assert_eq!(
            files[0].attr_names(),
            ["delivery", "type", "width", "height", "bitrate"]
        );
        assert_eq!(files[0].attr("delivery"), Some("progressive"));
        assert_eq!(files[0].attr("type"), Some("video/mp4"));
        assert_eq!(files[0].attr("width"), Some("1920"));
        assert_eq!(files[0].attr("height"), Some("1080"));
        assert_eq!(files[0].attr("bitrate"), Some("4500"));
        // No bitrate known: no attribute.
        assert_eq!(files[1].attr("type"), Some("video/webm"));
        assert_eq!(files[1].attr("bitrate"), None);
        assert_eq!(files[1].attr("width"), Some("854"));

        let order = children(&els, LINEAR);
        let expected = if version >= V4_0 {
            ["TrackingEvents", "Duration", "MediaFiles", "VideoClicks"]
        } else {
            ["Duration", "TrackingEvents", "VideoClicks", "MediaFiles"]
        };
        assert_eq!(order, expected, "{version}");
    }

    // The bidder's pick, in its order; an empty pick lists every rendition.
    let c = video();
    let CreativeKind::Video { media, .. } = &c.kind else {
        unreachable!()
    };
    let picked = [&media[1]];
    let with = |media: &[&MediaFile]| {
        let xml = vast_xml(&Vast {
            version: V4_2,
            ad_id: "bid-5",
            ad_system: "bidder",
            ad_title: "pick",
            creative: &c,
            media,
            impression_url: IMPRESSION,
            tracking: EventUrls(&tracking),
            click_tracking_url: None,
            companion: None,
        });
        assert_valid(&xml, V4_2);
        texts(&parse(&xml), "MediaFiles/MediaFile")
    };
    assert_eq!(
        with(&picked),
        ["https://cdn.acme-outdoor.example/tent-15s-480.webm"]
    );
    assert_eq!(with(&[&media[1], &media[0]]).len(), 2);
    assert_eq!(
        with(&[]),
        [
            "https://cdn.acme-outdoor.example/tent-15s-1080.mp4",
            "https://cdn.acme-outdoor.example/tent-15s-480.webm"
        ]
    );
}

#[test]
fn audio_has_no_picture_and_no_linear_click() {
    for version in VastVersion::ALL {
        for shape in [Shape::AudioCompanion, Shape::AudioAlone] {
            let els = parse(&render(version, shape));
            let ad_type = (version >= V4_1).then_some("audio");
            assert_eq!(one(&els, "VAST/Ad").attr("adType"), ad_type, "{version}");
            let file = one(&els, "Linear/MediaFiles/MediaFile");
            assert_eq!(file.text, "https://cdn.acme-outdoor.example/tent-30s.mp3");
            assert_eq!(file.attr("type"), Some("audio/mpeg"));
            assert_eq!(file.attr("width"), Some("0"));
            assert_eq!(file.attr("height"), Some("0"));
            assert_eq!(file.attr("bitrate"), Some("128"));
            assert!(find(&els, "Linear/VideoClicks").is_empty(), "{version}");
        }
        // The click is on the screen's banner.
        let els = parse(&render(version, Shape::AudioCompanion));
        let companion = one(&els, COMPANION);
        assert_eq!(companion.attr("width"), Some("640"));
        assert_eq!(companion.attr("height"), Some("640"));
        assert_eq!(
            texts(&els, "Companion/CompanionClickThrough"),
            ["https://www.acme-outdoor.example/tents?from=audio-companion"]
        );
        let resource = one(&els, "Companion/StaticResource");
        assert_eq!(resource.attr("creativeType"), Some("image/png"));
        assert_eq!(
            resource.text,
            "https://cdn.acme-outdoor.example/tent-640.PNG?v=3"
        );
    }
}

#[test]
fn companions_per_version() {
    for version in VastVersion::ALL {
        for shape in [Shape::VideoRequiredCompanion, Shape::VideoOptionalCompanion] {
            let els = parse(&render(version, shape));
            let ads = one(&els, "Creative/CompanionAds");
            let required =
                (shape == Shape::VideoRequiredCompanion && version >= V3_0).then_some("all");
            assert_eq!(ads.attr("required"), required, "{version} {shape:?}");

            let companion = one(&els, COMPANION);
            assert_eq!(companion.attr("id"), Some("tent-banner-300x250"));
            assert_eq!(companion.attr("width"), Some("300"));
            assert_eq!(companion.attr("height"), Some("250"));
            let resource = one(&els, "Companion/StaticResource");
            assert_eq!(resource.attr("creativeType"), Some("image/jpeg"));
            assert_eq!(
                resource.text,
                "https://cdn.acme-outdoor.example/tent-300x250.jpg"
            );
            assert_eq!(
                texts(&els, "Companion/CompanionClickThrough"),
                ["https://www.acme-outdoor.example/tents?from=companion&y=2"]
            );
            let tracking = find(&els, "Companion/CompanionClickTracking");
            let order = children(&els, COMPANION);
            if version >= V4_0 {
                assert_eq!(tracking.len(), 1);
                assert_eq!(tracking[0].text, COMPANION_CLICK_TRACKING);
                assert_eq!(tracking[0].attr("id"), Some("tent-banner-300x250"));
                assert_eq!(
                    order,
                    [
                        "StaticResource",
                        "CompanionClickThrough",
                        "CompanionClickTracking",
                        "TrackingEvents"
                    ]
                );
            } else {
                assert!(tracking.is_empty(), "{version}");
                assert_eq!(
                    order,
                    ["StaticResource", "TrackingEvents", "CompanionClickThrough"]
                );
            }
        }
    }
}

#[test]
fn a_companion_that_is_not_display_is_left_out() {
    let v = video();
    let a = audio();
    for version in VastVersion::ALL {
        let xml = vast_xml(&Vast {
            version,
            ad_id: "bid-6",
            ad_system: "bidder",
            ad_title: "t",
            creative: &v,
            media: &[],
            impression_url: IMPRESSION,
            tracking: EventUrls(&tracking),
            click_tracking_url: None,
            companion: Some(Companion {
                creative: &a,
                required: true,
                click_tracking_url: None,
            }),
        });
        assert_valid(&xml, version);
        let els = parse(&xml);
        assert!(find(&els, "CompanionAds").is_empty());
        assert_eq!(find(&els, "Creatives/Creative").len(), 1);
        // No click tracking given: none written.
        assert!(find(&els, "VideoClicks/ClickTracking").is_empty());
        assert_eq!(texts(&els, "VideoClicks/ClickThrough"), [CLICK]);
    }
}

#[test]
fn image_mime_types() {
    let cases = [
        ("https://i.example/a.png", "image/png"),
        ("https://i.example/a.PNG", "image/png"),
        ("https://i.example/a.jpg", "image/jpeg"),
        ("https://i.example/a.JPEG?x=1.gif", "image/jpeg"),
        ("https://i.example/a.gif#f.png", "image/gif"),
        ("https://i.example/a.webp", "image/webp"),
        ("https://i.example/logo.svg", "image/svg+xml"),
        ("https://i.example/a.tiff", "image/png"),
        ("https://i.example/img", "image/png"),
        ("https://i.example", "image/png"),
        ("https://i.example/dir.jpg/img", "image/png"),
        ("", "image/png"),
    ];
    for (url, mime) in cases {
        assert_eq!(image_mime(url), mime, "{url}");
    }
}
