//! Writing the BidResponse: one seatbid, one bid per chosen imp.
//!
//! The JSON is written by hand from fragments the snapshot rendered at load
//! time (creative markup, advertiser domains and categories, encoded ids):
//! per bid only the ids, the price, the notice URLs and the size are new.
//! `ortb::BidResponse` reads it back in the tests, so the two cannot drift.

use config::{Micros, Timestamp};
use ortb::BidRequest;

use crate::notice::{push_int, Kind, NoticeUrl, Prepared};
use crate::select::{Choice, ChoiceKind};
use crate::snapshot::Snapshot;
use creatives::push_json_str;

/// `AdSystem` of our VAST.
pub(crate) const AD_SYSTEM: &str = "bidder";

/// OpenRTB `mtype`: what the markup is.
const MTYPE_BANNER: i32 = 1;
const MTYPE_VIDEO: i32 = 2;
const MTYPE_AUDIO: i32 = 3;
const MTYPE_NATIVE: i32 = 4;

/// The OpenRTB version an answer is written in: the one the exchange's
/// `x-openrtb-version` header names when we speak it, else 2.6. A 2.5
/// answer leaves out what 2.5 does not have (`mtype`, `dur`, `langb`, a
/// `protocol` past its list):
/// 2.5's response schema allows no other members, and exchanges that check
/// it dropped our bids.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    V2_5 = 0,
    #[default]
    V2_6 = 1,
}

impl Dialect {
    /// From the value of an `x-openrtb-version` header: `None` when it
    /// names no version (absent, or not one), for the exchange profile's
    /// default to decide. Only a 2.5 exchange is answered in 2.5: 2.6 is a
    /// superset, and the versions before 2.5 are answered as it is
    /// answered. What follows the minor version (a patch level, `2.5.1`;
    /// a label, `2.5-beta`) leaves it the version it is (exchange probe:
    /// `2.5.0` was answered in 2.6), and so does a leading `v`.
    pub fn of_header(value: Option<&[u8]>) -> Option<Dialect> {
        let v = value?.trim_ascii();
        let v = v
            .strip_prefix(b"v")
            .or_else(|| v.strip_prefix(b"V"))
            .unwrap_or(v);
        let (major, minor) = match v {
            [major @ (b'2' | b'3'), b'.', minor, rest @ ..]
                if minor.is_ascii_digit() && !rest.first().is_some_and(u8::is_ascii_digit) =>
            {
                (major, minor)
            }
            _ => return None,
        };
        Some(match *major == b'2' && (b'0'..=b'5').contains(minor) {
            true => Dialect::V2_5,
            false => Dialect::V2_6,
        })
    }

    /// The header value the answer carries.
    pub fn header(self) -> &'static str {
        match self {
            Dialect::V2_5 => "2.5",
            Dialect::V2_6 => "2.6",
        }
    }

    fn has_2_6(self) -> bool {
        self == Dialect::V2_6
    }
}

/// `,"mtype":N`, in the versions that have it.
fn push_mtype(out: &mut String, dialect: Dialect, mtype: i32) {
    if dialect.has_2_6() {
        out.push_str(",\"mtype\":");
        push_int(out, mtype);
    }
}

pub(crate) struct Answer<'a> {
    pub snap: &'a Snapshot,
    pub req: &'a BidRequest<'a>,
    pub public_url: &'a str,
    /// `public_url` escaped for a banner's markup
    /// ([`crate::track::Urls::with_base_in_attr`]).
    pub public_url_in_attr: &'a str,
    /// `--privacy-url`: for native slots that show a buyer's privacy link.
    pub privacy_url: Option<&'a str>,
    pub test: bool,
    pub now: Timestamp,
    pub signer: &'a crate::notice::Signer,
    /// The exchange the answer goes to: its id and charge rule go into the
    /// notices.
    pub profile: &'a crate::snapshot::Profile,
    /// What prices are written in.
    pub currency: crate::context::Currency,
    /// Who the ads are for, when privacy signals let us remember it for
    /// attribution (`Context::measurement`).
    pub user: Option<&'a str>,
    /// The request asks for the DSA transparency object in each bid
    /// ([`Snapshot::dsa_json`](crate::snapshot::Snapshot::dsa_json)).
    pub dsa: bool,
    pub dialect: Dialect,
}

impl Answer<'_> {
    /// `choices` pairs an imp index with what it bids; `bid_ids` has one id
    /// per choice.
    pub(crate) fn write(
        &self,
        choices: &[(usize, Choice)],
        bid_ids: &[ledger::BidId],
        response_id: &str,
    ) -> crate::AnswerBuf {
        // Room for the whole answer at once: a banner bid with its signed
        // URLs runs to about 2 KB, a VAST bid to about 5 KB, and growing
        // the string copies all of it each time.
        let room: usize = choices
            .iter()
            .map(|(_, c)| match c.kind {
                ChoiceKind::Banner { .. } => 2_560,
                ChoiceKind::Native { .. } => 3_072,
                ChoiceKind::Av { .. } => 6_144,
            })
            .sum();
        let mut out = crate::AnswerBuf::string(room + 256);
        // Once for all the bids, which share their user (an HMAC while
        // URLs are signed `per-url`).
        let user = self.user.map(|u| self.signer.user_key(u));
        out.push_str("{\"id\":");
        push_json_str(&mut out, &self.req.id);
        out.push_str(",\"seatbid\":[{\"bid\":[");
        for (n, ((imp_index, choice), bid_id)) in choices.iter().zip(bid_ids).enumerate() {
            if n > 0 {
                out.push(',');
            }
            self.write_bid(
                &mut out,
                &self.req.imp[*imp_index].id,
                choice,
                bid_id.as_str(),
                user,
            );
        }
        out.push(']');
        if let Some((_, member)) = &self.profile.seat {
            out.push_str(member);
        }
        out.push_str("}],\"bidid\":");
        push_json_str(&mut out, response_id);
        out.push_str(",\"cur\":\"");
        out.push_str(self.currency.code());
        out.push_str("\"}");
        crate::AnswerBuf::of(out)
    }

    /// `user`: [`crate::track::user_key`] of [`Answer::user`].
    fn write_bid(
        &self,
        out: &mut String,
        imp_id: &str,
        choice: &Choice,
        bid_id: &str,
        user: Option<u64>,
    ) {
        let item = &self.snap.items[choice.item];
        let creative = &self.snap.creative_json[item.advertiser][choice.creative];
        out.push_str("{\"id\":");
        push_json_str(out, bid_id);
        out.push_str(",\"impid\":");
        push_json_str(out, imp_id);
        out.push_str(",\"price\":");
        push_price(out, choice.answer_price(self.currency));
        // The page and the exchange see these URLs: they carry a token of
        // the audience, never its name (which would tell them the user is
        // on an advertiser's customer or retargeting list).
        // A token of its own per bid (`notice::bid_audience_token`).
        let mut token_hex = hex::Buffer::<8>::new();
        let audience = choice.audience.map(|a| {
            &*token_hex.format(&crate::notice::bid_audience_token(
                self.signer,
                bid_id,
                &self.snap.audience_tokens[item.advertiser][a],
            ))
        });
        let notice = NoticeUrl {
            bid_id,
            imp_id,
            line_item_and_order: &item.notice_ids,
            creative: &creative.notice_id,
            bid_price: choice.price,
            at_ms: self.now.as_millis(),
            test: self.test,
            exchange: &self.profile.notice_id,
            currency: self.currency.code(),
            rate: self.currency.rate,
            charge_on: self.profile.charge_on,
            encrypted: self.profile.price_keys.is_some(),
            keyword: choice.keyword.as_deref(),
            audience,
            // The snapshot's, each `notice::encode`d at load.
            ids_encoded: true,
        };
        let signed = notice.signed();
        let urls = Prepared::new(self.public_url, &signed, self.signer);
        for kind in Kind::ALL {
            // Notice URLs hold only percent-encoded values and URL
            // punctuation: nothing in them needs JSON escaping.
            out.push_str(",\"");
            out.push_str(kind.member());
            out.push_str("\":\"");
            urls.write(kind, out);
            out.push('"');
        }
        out.push(',');
        // A companion's attributes are the bid's too (`attr`).
        let companion = match &choice.kind {
            ChoiceKind::Av { companion, .. } => *companion,
            _ => None,
        };
        out.push_str(creative.members_with(companion));
        out.push_str(creative.language(self.dialect));
        out.push(',');
        out.push_str(&item.cid_json);
        let track = crate::track::Urls::new(
            self.public_url,
            &notice,
            choice.keyword.as_deref(),
            user,
            choice.pricing.features.as_ref(),
            self.signer,
            Some(urls.bid_key()),
        )
        .with_base_in_attr(self.public_url_in_attr);
        match &choice.kind {
            ChoiceKind::Banner { w, h, ratio } => {
                // The creative's markup, escaped for HTML and JSON at load,
                // around the tracking URLs, which share their signed text
                // escaped once.
                if let Some(template) = &creative.banner {
                    out.push_str(",\"adm\":");
                    let signed = track.signed_in_attr();
                    let layout = match ratio {
                        Some(_) => creatives::BannerLayout::Scaled,
                        None => creatives::BannerLayout::Fixed,
                    };
                    template.write_json(
                        layout,
                        &|o| track.click_in_attr(&signed, o),
                        &|o| track.impression_in_attr(&signed, o),
                        out,
                    );
                }
                out.push_str(",\"w\":");
                push_int(out, *w);
                out.push_str(",\"h\":");
                push_int(out, *h);
                // OpenRTB 2.6: required of a bid for a flexible slot.
                if let Some((wr, hr)) = ratio {
                    out.push_str(",\"wratio\":");
                    push_int(out, *wr);
                    out.push_str(",\"hratio\":");
                    push_int(out, *hr);
                }
                push_mtype(out, self.dialect, MTYPE_BANNER);
            }
            ChoiceKind::Av {
                fit,
                companion,
                version,
            } => self.write_av(out, choice, bid_id, &track, fit, *companion, *version),
            ChoiceKind::Native { fit } => self.write_native(out, choice, &track, fit),
        }
        if let Some(deal) = &choice.deal {
            out.push_str(",\"dealid\":");
            push_json_str(out, deal);
        }
        if self.dsa {
            out.push_str(&self.snap.dsa_json[item.advertiser]);
        }
        out.push('}');
    }
}

impl Answer<'_> {
    /// `adm` with the VAST of a video or audio spot, and its `mtype`,
    /// `dur`, `protocol` (and `w`/`h` of the best rendition for video).
    #[allow(clippy::too_many_arguments)]
    fn write_av(
        &self,
        out: &mut String,
        choice: &Choice,
        bid_id: &str,
        track: &crate::track::Urls<'_>,
        fit: &creatives::AvFit,
        companion: Option<usize>,
        version: creatives::VastVersion,
    ) {
        let item = &self.snap.items[choice.item];
        let adv = &self.snap.config.advertisers[item.advertiser];
        let creative = &adv.creatives[choice.creative];
        let (media, mtype) = match &creative.kind {
            config::CreativeKind::Video { media, .. } => (media, MTYPE_VIDEO),
            config::CreativeKind::Audio { media, .. } => (media, MTYPE_AUDIO),
            config::CreativeKind::Display { .. } | config::CreativeKind::Native(_) => return,
        };
        let (urls, at) = track.impression_and_click_beacon();
        let (impression_url, click) = urls.split_at(at);
        let event = |name: &str, out: &mut String| track.vast_event_into(name, out);
        // Audio has no video click; its companion carries the click.
        let click_tracking_url = (mtype == MTYPE_VIDEO).then_some(click);
        out.push_str(",\"adm\":");
        let templates = self.snap.creative_json[item.advertiser][choice.creative]
            .vast
            .as_ref()
            .and_then(|t| t.get(adv, creative, version, companion));
        match templates {
            Some((template, companion_part)) => template.write_json(
                &creatives::VastBid {
                    ad_id: bid_id,
                    impression_url,
                    tracking: creatives::EventUrls(&event),
                    click_tracking_url,
                    renditions: &fit.renditions,
                    companion: companion_part.map(|c| (c, Some(click))),
                    plain_urls: track.plain(),
                },
                out,
            ),
            // Every video and audio creative of the snapshot has its
            // templates, and each companion it lists: this writes the same
            // document, only slower, should one be missing.
            None => {
                let renditions: Vec<&config::MediaFile> = fit
                    .renditions
                    .iter()
                    .filter_map(|&i| media.get(i))
                    .collect();
                creatives::vast_json(
                    &creatives::Vast {
                        version,
                        ad_id: bid_id,
                        ad_system: AD_SYSTEM,
                        ad_title: &creative.id,
                        creative,
                        media: &renditions,
                        impression_url,
                        tracking: creatives::EventUrls(&event),
                        click_tracking_url,
                        companion: companion.map(|c| creatives::Companion {
                            creative: &adv.creatives[c],
                            required: creative.companion_required,
                            click_tracking_url: Some(click),
                        }),
                    },
                    out,
                )
            }
        }
        push_mtype(out, self.dialect, mtype);
        if self.dialect.has_2_6() {
            out.push_str(",\"dur\":");
            push_int(out, fit.duration_s);
        }
        // 2.5's list of protocols ends at 10 (VAST 4.0 Wrapper): a later
        // VAST goes unnamed there rather than by a code 2.5 does not have.
        let protocol = version.protocol();
        if self.dialect.has_2_6() || protocol <= 10 {
            out.push_str(",\"protocol\":");
            push_int(out, protocol);
        }
        if mtype == MTYPE_VIDEO {
            if let Some(m) = fit.renditions.first().and_then(|&i| media.get(i)) {
                if let (Some(w), Some(h)) = (m.width, m.height) {
                    out.push_str(",\"w\":");
                    push_int(out, w);
                    out.push_str(",\"h\":");
                    push_int(out, h);
                }
            }
        }
    }
}

impl Answer<'_> {
    /// `adm` with the Native 1.2 response (assets, link, impression
    /// tracker), and `mtype` 4.
    fn write_native(
        &self,
        out: &mut String,
        choice: &Choice,
        track: &crate::track::Urls<'_>,
        fit: &creatives::NativeFit,
    ) {
        let item = &self.snap.items[choice.item];
        let adv = &self.snap.config.advertisers[item.advertiser];
        let Some(ad) = crate::select::native_ad(&adv.creatives[choice.creative]) else {
            return;
        };
        let (urls, at) = track.impression_and_click_beacon();
        let (impression_url, click) = urls.split_at(at);
        let json = creatives::native_response(
            &ad,
            fit,
            &creatives::NativeTrackers {
                impression_url,
                click_trackers: &[click],
                privacy_url: self.privacy_url,
            },
        );
        out.push_str(",\"adm\":");
        push_json_str(out, &json);
        push_mtype(out, self.dialect, MTYPE_NATIVE);
    }
}

/// A CPM in micros as an exact JSON number: 6_000_000 → `6.0`,
/// 1_800_000 → `1.8`, 1 → `0.000001`.
fn push_price(out: &mut String, price: Micros) {
    let m = price.as_i64().max(0);
    let (units, frac) = (m / 1_000_000, m % 1_000_000);
    push_int(out, units);
    if frac == 0 {
        out.push_str(".0");
    } else {
        // Six digits, trailing zeros dropped, without a string of their own.
        out.push('.');
        let (mut digits, mut width) = (frac, 6);
        while digits % 10 == 0 {
            digits /= 10;
            width -= 1;
        }
        let mut buf = itoa::Buffer::new();
        let text = buf.format(digits);
        for _ in text.len()..width {
            out.push('0');
        }
        out.push_str(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2.5 and the 2.x before it, at any patch level, are answered in
    /// 2.5; 2.6 and later in 2.6; a value that is no version, or none, is
    /// left to the exchange's profile.
    #[test]
    fn the_version_header_picks_the_dialect() {
        let (v25, v26) = (Some(Dialect::V2_5), Some(Dialect::V2_6));
        for (value, dialect) in [
            (Some(&b"2.5"[..]), v25),
            (Some(b" 2.5 "), v25),
            (Some(b"2.0"), v25),
            (Some(b"2.5.0"), v25),
            (Some(b"2.5.1"), v25),
            (Some(b"2.3.12"), v25),
            (Some(b"2.6"), v26),
            (Some(b"2.6.1"), v26),
            (Some(b"3.0"), v26),
            (Some(b"2.5-beta"), v25),
            (Some(b"v2.5"), v25),
            (Some(b"2.5;x"), v25),
            (Some(b"V2.6"), v26),
            (Some(b"2./"), None),
            (Some(b"2.50"), None),
            (Some(b"2.5x"), v25),
            (Some(b"v"), None),
            (Some(b"25"), None),
            (Some(b""), None),
            (None, None),
        ] {
            assert_eq!(Dialect::of_header(value), dialect, "{value:?}");
        }
    }

    #[test]
    fn prices_are_exact_decimals() {
        for (micros, text) in [
            (6_000_000, "6.0"),
            (1_800_000, "1.8"),
            (1, "0.000001"),
            (22_500_010, "22.50001"),
            (0, "0.0"),
        ] {
            let mut s = String::new();
            push_price(&mut s, Micros(micros));
            assert_eq!(s, text);
            let back: f64 = s.parse().unwrap();
            assert_eq!((back * 1e6).round() as i64, micros);
        }
    }

    proptest::proptest! {
        /// The same literal as serde_json writes, for any text: quotes,
        /// backslashes, every control character, multi-byte characters
        /// next to them.
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(s in "(?s)[a-z\\x00-\\x1f\\x7f\"\\\\é€😀<>/ ]{0,40}") {
            let mut out = String::new();
            push_json_str(&mut out, &s);
            proptest::prop_assert_eq!(&out, &serde_json::to_string(&s).unwrap());
        }

        /// Any price reads back as its micros, with no trailing zero but
        /// the one of a whole number.
        #[test]
        fn any_price_is_its_exact_decimal(micros in 0i64..1_000_000_000_000) {
            let mut s = String::new();
            push_price(&mut s, Micros(micros));
            let (units, frac) = s.split_once('.').unwrap();
            proptest::prop_assert_eq!(units.parse::<i64>().unwrap(), micros / 1_000_000);
            proptest::prop_assert!(frac == "0" || (frac.len() <= 6 && !frac.ends_with('0')));
            let padded = format!("{frac:0<6}");
            proptest::prop_assert_eq!(padded.parse::<i64>().unwrap(), micros % 1_000_000);
        }
    }

    #[test]
    fn ids_are_escaped_only_when_needed() {
        let mut s = String::new();
        push_json_str(&mut s, "plain-id_1");
        push_json_str(&mut s, "we\"ird\\id\n");
        push_json_str(&mut s, "ünïcode");
        assert_eq!(s, r#""plain-id_1""we\"ird\\id\n""ünïcode""#);
    }
}
