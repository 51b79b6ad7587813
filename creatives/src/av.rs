//! Which video or audio creative fits a slot, with which renditions and
//! which companion banner. Plain values in: the bidder translates the
//! OpenRTB `imp.video` / `imp.audio` into an [`AvSlot`].

use config::{Creative, CreativeKind, MediaFile};

/// What the player offers, from `imp.video` or `imp.audio`.
#[derive(Debug, Default, Clone)]
pub struct AvSlot<'a> {
    /// Accepted mime types; empty accepts any.
    pub mimes: Vec<&'a str>,
    pub min_duration: Option<u32>,
    pub max_duration: Option<u32>,
    /// Exact durations (2.6 `rqddurs`); when given, min/max do not apply.
    pub required_durations: Vec<u32>,
    pub min_bitrate: Option<u32>,
    pub max_bitrate: Option<u32>,
    /// The player's size (video only).
    pub w: Option<u32>,
    pub h: Option<u32>,
    /// Companion banner slots offered (`companionad`): each size, with
    /// the image types its `mimes` take ([`crate::mime_mask`]; every bit
    /// when they say nothing of images).
    pub companion_sizes: Vec<(u32, u32, u8)>,
    /// `companiontype`: 1 static, 2 HTML, 3 iframe. Empty means any.
    pub companion_types: Vec<i32>,
    /// `poddur`: the seconds a dynamic pod has to fill; a longer spot
    /// does not go in. 0 or none: no bound.
    pub pod_duration: Option<u32>,
    /// `delivery` lists methods and progressive (2) is not one: every
    /// rendition VAST writes is progressive (`vast.rs`), so none plays.
    pub no_progressive: bool,
    /// The VAST the player takes cannot say a companion is required (2.0
    /// has no `required` attribute): a creative that requires its
    /// companion would play without the player knowing it must show it.
    pub cannot_require_companion: bool,
}

/// Why a creative does not fit, in the order [`fit_av`] asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Misfit {
    /// Not a video or audio creative.
    Media,
    Duration,
    /// The slot's `delivery` has no progressive download, which is how
    /// every rendition is served.
    Delivery,
    Mime,
    Bitrate,
    /// The creative requires its companion and no offered slot takes it,
    /// or the VAST the player takes cannot say it is required.
    Companion,
}

impl Misfit {
    /// Its name in `/v1/explain`'s `detail`.
    pub fn as_str(self) -> &'static str {
        match self {
            Misfit::Media => "media",
            Misfit::Duration => "duration",
            Misfit::Delivery => "delivery",
            Misfit::Mime => "mime",
            Misfit::Bitrate => "bitrate",
            Misfit::Companion => "companion",
        }
    }
}

/// A fitting creative: its renditions, best first, and the companion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvFit {
    /// Indices into the creative's `media`.
    pub renditions: Vec<usize>,
    /// Index into `companions` (the advertiser's creatives handed in).
    pub companion: Option<usize>,
    pub duration_s: u32,
}

/// Checks `creative` against `slot`. `companions` are the creative's
/// companion creatives, in the creative's order.
pub fn fit_av(
    creative: &Creative,
    slot: &AvSlot<'_>,
    companions: &[&Creative],
) -> Result<AvFit, Misfit> {
    let (duration_s, media) = match &creative.kind {
        CreativeKind::Video { duration_s, media } | CreativeKind::Audio { duration_s, media } => {
            (*duration_s, media)
        }
        CreativeKind::Display { .. } | CreativeKind::Native(_) => return Err(Misfit::Media),
    };
    let duration_ok = if slot.required_durations.is_empty() {
        slot.min_duration.is_none_or(|m| duration_s >= m)
            // A spot never goes into a slot shorter than it; 0 means unset.
            && slot.max_duration.is_none_or(|m| m == 0 || duration_s <= m)
    } else {
        slot.required_durations.contains(&duration_s)
    };
    if !duration_ok || slot.pod_duration.is_some_and(|p| p > 0 && duration_s > p) {
        return Err(Misfit::Duration);
    }
    if slot.no_progressive {
        return Err(Misfit::Delivery);
    }
    let by_mime: Vec<usize> = (0..media.len())
        .filter(|&i| {
            slot.mimes.is_empty() || slot.mimes.iter().any(|m| same_mime(m, &media[i].mime))
        })
        .collect();
    if by_mime.is_empty() {
        return Err(Misfit::Mime);
    }
    let mut renditions: Vec<usize> = by_mime
        .into_iter()
        .filter(|&i| bitrate_ok(&media[i], slot))
        .collect();
    if renditions.is_empty() {
        return Err(Misfit::Bitrate);
    }
    renditions.sort_by_key(|&i| rank(&media[i], slot));

    // `companions` are those the slot may show (its blocked attributes
    // and security applied by the caller): a required companion none of
    // which may be shown leaves the spot without the companion it needs.
    let companion = pick_companion(companions, slot);
    if creative.companion_required && (companion.is_none() || slot.cannot_require_companion) {
        return Err(Misfit::Companion);
    }
    Ok(AvFit {
        renditions,
        companion,
        duration_s,
    })
}

/// Whether a slot's listed MIME type takes a rendition's: whatever the
/// case, parameters (`; codecs=…`) and white space, and under the names
/// players and exchanges give the same formats (`audio/mp3` is what
/// browsers and Prebid send for `audio/mpeg`); `video/*` takes any video.
fn same_mime(listed: &str, mime: &str) -> bool {
    // As written nearly always: the same type, whole.
    if listed.eq_ignore_ascii_case(mime) {
        return true;
    }
    fn base(m: &str) -> &str {
        let m = m.split(';').next().unwrap_or(m).trim();
        // The usual aliases, to the registered name.
        const ALIASES: &[(&str, &str)] = &[
            ("audio/mp3", "audio/mpeg"),
            ("audio/x-mp3", "audio/mpeg"),
            ("audio/mpeg3", "audio/mpeg"),
            ("audio/x-mpeg", "audio/mpeg"),
            ("audio/x-mpeg-3", "audio/mpeg"),
            ("audio/m4a", "audio/mp4"),
            ("audio/x-m4a", "audio/mp4"),
            ("audio/x-aac", "audio/aac"),
            ("audio/x-wav", "audio/wav"),
            ("audio/wave", "audio/wav"),
            ("video/x-mp4", "video/mp4"),
        ];
        ALIASES
            .iter()
            .find(|(alias, _)| m.eq_ignore_ascii_case(alias))
            .map_or(m, |&(_, name)| name)
    }
    let (listed, mime) = (base(listed), base(mime));
    if listed.eq_ignore_ascii_case(mime) || listed == "*/*" {
        return true;
    }
    // `video/*`: the type before the slash, any subtype.
    listed
        .strip_suffix("/*")
        .zip(mime.split_once('/'))
        .is_some_and(|(kind, (of, _))| kind.eq_ignore_ascii_case(of))
}

fn bitrate_ok(m: &MediaFile, slot: &AvSlot<'_>) -> bool {
    match m.bitrate_kbps {
        // A rendition of unknown bitrate is taken: the player can still
        // choose among the renditions listed.
        None => true,
        Some(b) => {
            slot.min_bitrate.is_none_or(|x| x == 0 || b >= x)
                && slot.max_bitrate.is_none_or(|x| x == 0 || b <= x)
        }
    }
}

/// Best first: for video, renditions that fit inside the player before
/// larger ones, then the closest in size; then the higher bitrate.
fn rank(m: &MediaFile, slot: &AvSlot<'_>) -> (u8, u64, std::cmp::Reverse<u32>) {
    let bitrate = std::cmp::Reverse(m.bitrate_kbps.unwrap_or(0));
    match (slot.w, slot.h, m.width, m.height) {
        (Some(pw), Some(ph), Some(w), Some(h)) if pw > 0 && ph > 0 => {
            let inside = u8::from(w > pw || h > ph);
            let gap = u64::from(pw.abs_diff(w)) * u64::from(ph)
                + u64::from(ph.abs_diff(h)) * u64::from(pw);
            (inside, gap, bitrate)
        }
        _ => (0, 0, bitrate),
    }
}

/// The first companion whose size is offered, when static images are.
fn pick_companion(companions: &[&Creative], slot: &AvSlot<'_>) -> Option<usize> {
    if !slot.companion_types.is_empty() && !slot.companion_types.contains(&1) {
        return None;
    }
    companions.iter().position(|c| match c.kind {
        CreativeKind::Display { w, h, .. } => {
            slot.companion_sizes.iter().any(|&(sw, sh, takes)| {
                // A slot that takes every type (most list none) needs no look
                // at the image's: reading it from the URL cost a video bid some
                // 150 instructions.
                (sw, sh) == (w, h) && (takes == u8::MAX || takes & crate::display_image_bit(c) != 0)
            })
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(mime: &str, w: Option<u32>, h: Option<u32>, kbps: Option<u32>) -> MediaFile {
        MediaFile {
            url: format!("https://cdn.example/{mime}-{w:?}"),
            mime: mime.into(),
            width: w,
            height: h,
            bitrate_kbps: kbps,
        }
    }

    fn video(duration_s: u32, companion_required: bool) -> Creative {
        Creative {
            id: "v".into(),
            at: Default::default(),
            kind: CreativeKind::Video {
                duration_s,
                media: vec![
                    media("video/mp4", Some(1920), Some(1080), Some(4500)),
                    media("video/mp4", Some(854), Some(480), Some(1200)),
                    media("video/webm", Some(1280), Some(720), Some(2000)),
                ],
            },
            click_url: "https://c.example/".into(),
            companions: vec!["b".into()],
            companion_required,
            attributes: vec![],
            language: None,
        }
    }

    fn banner(w: u32, h: u32) -> Creative {
        Creative {
            id: "b".into(),
            at: Default::default(),
            kind: CreativeKind::Display {
                w,
                h,
                image_url: "https://cdn.example/b.png".into(),
            },
            click_url: "https://c.example/".into(),
            companions: vec![],
            companion_required: false,
            attributes: vec![],
            language: None,
        }
    }

    #[test]
    fn durations_and_required_durations() {
        let c = video(15, false);
        let slot = |min, max, rqd: Vec<u32>| AvSlot {
            min_duration: min,
            max_duration: max,
            required_durations: rqd,
            ..AvSlot::default()
        };
        assert!(fit_av(&c, &slot(Some(5), Some(30), vec![]), &[]).is_ok());
        assert_eq!(
            fit_av(&c, &slot(Some(5), Some(10), vec![]), &[]),
            Err(Misfit::Duration)
        );
        assert_eq!(
            fit_av(&c, &slot(Some(20), None, vec![]), &[]),
            Err(Misfit::Duration)
        );
        assert!(
            fit_av(&c, &slot(None, Some(10), vec![15, 30]), &[]).is_ok(),
            "rqddurs win"
        );
        assert_eq!(
            fit_av(&c, &slot(None, None, vec![30]), &[]),
            Err(Misfit::Duration)
        );
    }

    /// `Misfit`'s order is the order `fit_av` asks in: a spot failing at
    /// two stages answers the earlier, which ranks lower. Explain reports
    /// the furthest of a line item's spots by this order.
    #[test]
    fn misfits_rank_in_the_order_they_are_checked() {
        let c = video(15, false);
        let short = AvSlot {
            max_duration: Some(10),
            ..AvSlot::default()
        };
        let streaming = AvSlot {
            no_progressive: true,
            ..AvSlot::default()
        };
        let ogg = AvSlot {
            mimes: vec!["video/ogg"],
            ..AvSlot::default()
        };
        let slow = AvSlot {
            max_bitrate: Some(1),
            ..AvSlot::default()
        };
        let each = [
            fit_av(&banner(300, 250), &AvSlot::default(), &[]),
            fit_av(&c, &short, &[]),
            fit_av(&c, &streaming, &[]),
            fit_av(&c, &ogg, &[]),
            fit_av(&c, &slow, &[]),
            fit_av(&video(15, true), &AvSlot::default(), &[]),
        ]
        .map(Result::unwrap_err);
        assert_eq!(
            each,
            [
                Misfit::Media,
                Misfit::Duration,
                Misfit::Delivery,
                Misfit::Mime,
                Misfit::Bitrate,
                Misfit::Companion,
            ]
        );
        assert!(each.windows(2).all(|w| w[0] < w[1]));
        // Two stages at once: the earlier answers.
        let pairs = [
            (
                AvSlot {
                    no_progressive: true,
                    ..short
                },
                Misfit::Duration,
            ),
            (
                AvSlot {
                    mimes: vec!["video/ogg"],
                    ..streaming
                },
                Misfit::Delivery,
            ),
            (
                AvSlot {
                    max_bitrate: Some(1),
                    ..ogg
                },
                Misfit::Mime,
            ),
        ];
        for (slot, want) in pairs {
            assert_eq!(fit_av(&c, &slot, &[]), Err(want));
        }
        assert_eq!(fit_av(&video(15, true), &slow, &[]), Err(Misfit::Bitrate));
    }

    #[test]
    fn pods_and_delivery_methods() {
        let c = video(15, false);
        let slot = |pod, no_progressive| AvSlot {
            pod_duration: pod,
            no_progressive,
            ..AvSlot::default()
        };
        assert!(fit_av(&c, &slot(Some(15), false), &[]).is_ok());
        assert!(fit_av(&c, &slot(Some(0), false), &[]).is_ok(), "0: unset");
        assert_eq!(
            fit_av(&c, &slot(Some(10), false), &[]),
            Err(Misfit::Duration)
        );
        assert_eq!(fit_av(&c, &slot(None, true), &[]), Err(Misfit::Delivery));
    }

    #[test]
    fn mime_types_match_as_players_name_them() {
        for (listed, mime) in [
            ("video/mp4", "video/mp4"),
            ("VIDEO/MP4", "video/mp4"),
            ("video/mp4; codecs=\"avc1.42E01E, mp4a.40.2\"", "video/mp4"),
            (" video/mp4 ", "video/mp4"),
            ("audio/mp3", "audio/mpeg"),
            ("audio/MP3", "audio/mpeg"),
            ("audio/mpeg", "audio/mp3"),
            ("audio/x-m4a", "audio/mp4"),
            ("video/*", "video/webm"),
            ("*/*", "audio/mpeg"),
        ] {
            assert!(same_mime(listed, mime), "{listed} takes {mime}");
        }
        for (listed, mime) in [
            ("video/webm", "video/mp4"),
            ("audio/mp3", "audio/mp4"),
            ("video/*", "audio/mpeg"),
            ("video/mp4x", "video/mp4"),
            ("", "video/mp4"),
        ] {
            assert!(!same_mime(listed, mime), "{listed} does not take {mime}");
        }
    }

    #[test]
    fn mimes_bitrates_and_rendition_order() {
        let c = video(15, false);
        let s = AvSlot {
            mimes: vec!["video/mp4"],
            w: Some(1280),
            h: Some(720),
            ..AvSlot::default()
        };
        let fit = fit_av(&c, &s, &[]).unwrap();
        // 854x480 fits inside a 1280x720 player; 1920x1080 does not.
        assert_eq!(fit.renditions, vec![1, 0]);
        let s = AvSlot {
            mimes: vec!["video/ogg"],
            ..AvSlot::default()
        };
        assert_eq!(fit_av(&c, &s, &[]), Err(Misfit::Mime));
        let s = AvSlot {
            max_bitrate: Some(1000),
            ..AvSlot::default()
        };
        assert_eq!(fit_av(&c, &s, &[]), Err(Misfit::Bitrate));
        let s = AvSlot {
            max_bitrate: Some(2500),
            ..AvSlot::default()
        };
        assert_eq!(fit_av(&c, &s, &[]).unwrap().renditions, vec![2, 1]);
    }

    #[test]
    fn companions_required_or_optional() {
        let b = banner(300, 250);
        let offered = AvSlot {
            companion_sizes: vec![(300, 250, u8::MAX)],
            ..AvSlot::default()
        };
        let other = AvSlot {
            companion_sizes: vec![(728, 90, u8::MAX)],
            ..AvSlot::default()
        };
        assert_eq!(
            fit_av(&video(15, true), &offered, &[&b]).unwrap().companion,
            Some(0)
        );
        assert_eq!(
            fit_av(&video(15, true), &other, &[&b]),
            Err(Misfit::Companion)
        );
        assert_eq!(
            fit_av(&video(15, false), &other, &[&b]).unwrap().companion,
            None
        );
        // Its companions all ruled out for this slot (blocked attributes,
        // http on a secure page): a spot that requires one does not fit.
        assert_eq!(
            fit_av(&video(15, true), &offered, &[]),
            Err(Misfit::Companion)
        );
        assert!(fit_av(&video(15, false), &offered, &[]).is_ok());
        let html_only = AvSlot {
            companion_sizes: vec![(300, 250, u8::MAX)],
            companion_types: vec![2],
            ..AvSlot::default()
        };
        assert_eq!(
            fit_av(&video(15, false), &html_only, &[&b])
                .unwrap()
                .companion,
            None
        );
    }
}
