//! Display creatives: a clickable image.

use std::fmt::Write as _;

use config::{Creative, CreativeKind};

/// The creative's size, when it is a display creative.
pub fn display_size(creative: &Creative) -> Option<(u32, u32)> {
    match creative.kind {
        CreativeKind::Display { w, h, .. } => Some((w, h)),
        _ => None,
    }
}

/// Whether a display creative has exactly one of the offered sizes. Banner
/// slots are fixed boxes: a creative of another size would be cropped or
/// leave a gap, so there is no scaling here.
pub fn fits_sizes(creative: &Creative, sizes: &[(u32, u32)]) -> bool {
    display_size(creative).is_some_and(|s| sizes.contains(&s))
}

/// The `adm` of a display creative: its image inside a link to the click
/// URL, opening in a new window.
pub fn banner_html(creative: &Creative) -> Option<String> {
    banner_html_tracked(creative, &creative.click_url, None)
}

/// As [`banner_html`], the link going to `href` (the bidder's click
/// tracker, which redirects to the creative's click URL) and, when given,
/// a 1x1 impression `pixel` after the image.
pub fn banner_html_tracked(creative: &Creative, href: &str, pixel: Option<&str>) -> Option<String> {
    let CreativeKind::Display { w, h, image_url } = &creative.kind else {
        return None;
    };
    let mut out =
        String::with_capacity(240 + image_url.len() + href.len() + pixel.map_or(0, str::len));
    out.push_str("<a href=\"");
    escape_attr(href, &mut out);
    out.push_str("\" target=\"_blank\" rel=\"noopener\"><img src=\"");
    escape_attr(image_url, &mut out);
    // Into the markup itself: no string of its own on the bid path.
    let _ = write!(
        out,
        "\" width=\"{w}\" height=\"{h}\" alt=\"\" style=\"border:0;display:block\"></a>"
    );
    if let Some(pixel) = pixel {
        // Out of the layout but loaded: browsers skip images that are
        // display:none only sometimes, never ones that are merely tiny.
        out.push_str("<img src=\"");
        escape_attr(pixel, &mut out);
        out.push_str(
            "\" width=\"1\" height=\"1\" alt=\"\" \
             style=\"position:absolute;width:1px;height:1px;border:0;left:-9999px\">",
        );
    }
    Some(out)
}

/// URLs come from account managers' YAML: a quote or angle bracket in one
/// must not break out of the attribute into the publisher's page.
///
/// Runs of ordinary bytes are copied whole (every bid writes two or three
/// URLs through here): the characters escaped are ASCII, so a cut next to
/// one is always between UTF-8 characters.
fn escape_attr(s: &str, out: &mut String) {
    let mut from = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            _ => continue,
        };
        out.push_str(&s[from..i]);
        out.push_str(entity);
        from = i + 1;
    }
    out.push_str(&s[from..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn display(w: u32, h: u32, image: &str, click: &str) -> Creative {
        Creative {
            id: "c".into(),
            kind: CreativeKind::Display {
                w,
                h,
                image_url: image.into(),
            },
            click_url: click.into(),
            companions: vec![],
            companion_required: false,
            attributes: vec![],
        }
    }

    #[test]
    fn fits_only_an_offered_size() {
        let c = display(300, 250, "https://i.example/a.png", "https://c.example/");
        assert!(fits_sizes(&c, &[(728, 90), (300, 250)]));
        assert!(!fits_sizes(&c, &[(728, 90), (250, 300)]));
        assert!(!fits_sizes(&c, &[]));
    }

    #[test]
    fn markup_is_a_clickable_image_with_escaped_urls() {
        let c = display(
            320,
            50,
            "https://i.example/a.png?x=1&y=\"2\"",
            "https://c.example/p?a=1&b=<2>",
        );
        let html = banner_html(&c).unwrap();
        assert_eq!(
            html,
            "<a href=\"https://c.example/p?a=1&amp;b=&lt;2&gt;\" target=\"_blank\" rel=\"noopener\">\
             <img src=\"https://i.example/a.png?x=1&amp;y=&quot;2&quot;\" width=\"320\" height=\"50\" \
             alt=\"\" style=\"border:0;display:block\"></a>"
        );
    }

    #[test]
    fn tracked_markup_links_to_the_tracker_and_carries_the_pixel() {
        let c = display(300, 250, "https://i.example/a.png", "https://c.example/");
        let html = banner_html_tracked(
            &c,
            "https://bidder.example/track/click?b=1&s=2",
            Some("https://bidder.example/track/impression?b=1&s=3"),
        )
        .unwrap();
        assert!(html.starts_with(
            "<a href=\"https://bidder.example/track/click?b=1&amp;s=2\" target=\"_blank\""
        ));
        assert!(!html.contains("https://c.example/"), "{html}");
        assert!(html.ends_with(
            "<img src=\"https://bidder.example/track/impression?b=1&amp;s=3\" width=\"1\" \
             height=\"1\" alt=\"\" style=\"position:absolute;width:1px;height:1px;border:0;\
             left:-9999px\">"
        ));
    }

    #[test]
    fn no_banner_markup_for_video() {
        let c = Creative {
            id: "v".into(),
            kind: CreativeKind::Video {
                duration_s: 15,
                media: vec![],
            },
            click_url: "https://c.example/".into(),
            companions: vec![],
            companion_required: false,
            attributes: vec![],
        };
        assert_eq!(display_size(&c), None);
        assert!(banner_html(&c).is_none());
    }

    /// The one character at a time escaping this replaced: the same
    /// output for any text, multi-byte characters next to escaped ones
    /// included.
    fn escape_by_char(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn escaping_runs_matches_escaping_chars(s in "[a-zé€😀&\"'<>/?=:. ]{0,40}") {
            let mut out = String::new();
            escape_attr(&s, &mut out);
            proptest::prop_assert_eq!(out, escape_by_char(&s));
        }
    }
}
