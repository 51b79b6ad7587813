//! Native product ads, and the creative attributes every format may
//! declare.

use serde_saphyr::{Location, Spanned};

use super::{FileChecker, POSITIVE};
use crate::model::{CreativeKind, Image, NativeCreative};
use crate::raw::{RawCreative, RawImage, Text};

/// AdCOM List 5.3 (creative attributes) runs from 1 to 17.
const ATTRIBUTES: std::ops::RangeInclusive<i64> = 1..=17;

/// Longest texts a native ad may carry: exchanges ask for titles of 25 to
/// 90 characters and descriptions of up to a few hundred; longer text in a
/// YAML file is a paste mistake.
const TITLE_MAX: usize = 200;
const TEXT_MAX: usize = 1000;

impl FileChecker<'_> {
    pub(super) fn native(
        &mut self,
        subject: &str,
        c: &RawCreative,
        at: Location,
    ) -> Option<CreativeKind> {
        let format = "native";
        for (key, value) in [
            ("size", c.size.as_ref().map(|v| v.referenced)),
            ("image_url", c.image_url.as_ref().map(|v| v.referenced)),
            ("duration_s", c.duration_s.as_ref().map(|v| v.referenced)),
            ("media", c.media.as_ref().map(|v| v.referenced)),
        ] {
            if let Some(place) = value {
                self.not_applicable(subject, key, format, "creative", place);
            }
        }
        let title = self.required(subject, "title", format, &c.title, at);
        let description = self.required(subject, "description", format, &c.description, at);
        let sponsored = self.required(subject, "sponsored_by", format, &c.sponsored_by, at);
        let image = self.required(subject, "image", format, &c.image, at);
        let title = title.and_then(|t| self.text(subject, "title", t, TITLE_MAX));
        let description = description.and_then(|t| self.text(subject, "description", t, TEXT_MAX));
        let sponsored_by = sponsored.and_then(|t| self.text(subject, "sponsored_by", t, TITLE_MAX));
        let image = image.and_then(|i| self.image(subject, "image", i));
        // `None` once reported; `Some(None)` when there is no icon.
        let icon = c.icon.as_ref().map(|i| self.image(subject, "icon", i));
        let optional = |this: &mut Self, key: &str, t: &Option<Text>| match t {
            Some(t) => this.text(subject, key, t, TITLE_MAX).map(Some),
            None => Some(None),
        };
        let cta = optional(self, "cta", &c.cta);
        let price = optional(self, "price", &c.price);
        Some(CreativeKind::Native(NativeCreative {
            title: title?,
            description: description?,
            sponsored_by: sponsored_by?,
            image: image?,
            icon: icon.map_or(Some(None), |i| i.map(Some))?,
            cta: cta?,
            price: price?,
        }))
    }

    fn text(&mut self, subject: &str, key: &str, t: &Text, max: usize) -> Option<String> {
        let v = t.value.trim();
        if v.is_empty() {
            self.report(t.referenced, format!("{subject}: {key} is empty"));
            return None;
        }
        let n = v.chars().count();
        if n > max {
            self.report(
                t.referenced,
                format!("{subject}: {key} has {n} characters; at most {max} are shown"),
            );
            return None;
        }
        if v.chars().any(char::is_control) {
            self.report(
                t.referenced,
                format!("{subject}: {key} holds a control character (a tab or line break?)"),
            );
            return None;
        }
        Some(v.to_owned())
    }

    fn image(&mut self, subject: &str, key: &str, raw: &Spanned<RawImage>) -> Option<Image> {
        let i = &raw.value;
        let what = format!("{key} url");
        let url_ok = self.url(subject, &what, &i.url);
        let w = self.whole(subject, &format!("{key} w"), &i.w, POSITIVE);
        let h = self.whole(subject, &format!("{key} h"), &i.h, POSITIVE);
        let (w, h) = (w?, h?);
        url_ok.then(|| Image {
            url: i.url.value.clone(),
            w,
            h,
        })
    }

    /// Sorted and deduplicated: the bidder tests them against `battr`.
    pub(super) fn attributes(&mut self, subject: &str, c: &RawCreative) -> Option<Vec<u8>> {
        let Some(list) = &c.attributes else {
            return Some(Vec::new());
        };
        let mut out = Vec::with_capacity(list.value.0.len());
        let mut ok = true;
        for a in &list.value.0 {
            if ATTRIBUTES.contains(&a.value) {
                out.push(a.value as u8);
            } else {
                self.report(
                    a.referenced,
                    format!(
                        "{subject}: creative attribute {} is not in IAB's list (1 to 17, like \
                         6 for in-banner video that plays by itself)",
                        a.value
                    ),
                );
                ok = false;
            }
        }
        out.sort_unstable();
        out.dedup();
        ok.then_some(out)
    }

    /// A creative's `language`: `Some(None)` when it says none, `None`
    /// (reported) when it is not a BCP 47 tag of the usual shape: a
    /// language of two or three letters, then subtags of one to eight
    /// letters or digits, each after a `-`.
    pub(super) fn language(&mut self, subject: &str, c: &RawCreative) -> Option<Option<String>> {
        let Some(tag) = &c.language else {
            return Some(None);
        };
        let mut parts = tag.value.split('-');
        let primary = parts.next().unwrap_or("");
        let well_formed = (2..=3).contains(&primary.len())
            && primary.bytes().all(|b| b.is_ascii_alphabetic())
            && parts.all(|p| {
                (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !well_formed {
            self.report(
                tag.referenced,
                format!(
                    "{subject}: language \"{}\" is not a language tag; expected one such as \
                     en, de or pt-BR (IETF BCP 47)",
                    tag.value
                ),
            );
            return None;
        }
        Some(Some(tag.value.clone()))
    }
}
