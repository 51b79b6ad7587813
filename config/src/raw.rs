//! The YAML shape, as written, with source positions.
//!
//! Everything the validator may complain about is kept as written (strings,
//! `i64`, money text) inside `Spanned`, so that a bad value becomes a
//! positioned semantic problem instead of a type error that hides the rest
//! of the file. Creatives and audiences are flat structs rather than tagged
//! enums because serde buffers tagged enums and the positions would be lost.
//!
//! The mappings are declared through `mappings!`, which also describes each
//! one from the same tokens: for the JSON Schema (`crate::schema`), and for
//! the loader's unknown-key and missing-key messages.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::Deserialize as DeriveDeserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::model::{
    ChargeOn, DaypartZone, Device, EncryptionScheme, Media, Os, Placement, Service,
};
use crate::schema::{Defs, Describe, Key, Mapping};
use crate::time::Weekday;

pub(crate) type Text = Spanned<String>;
pub(crate) type Int = Spanned<i64>;

/// A YAML list where a key with no value (`key:`) reads as an empty list,
/// leaving "must not be empty" to the validator.
#[derive(Debug)]
pub(crate) struct List<T>(pub Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<Vec<T>>::deserialize(d).map(|v| List(v.unwrap_or_default()))
    }
}

/// A key that may be left out, told apart from one written with nothing
/// after it (`key:`): `Option` takes that null for a key not written, and
/// an empty `deals` written down must be refused, not read as "no deal".
#[derive(Debug)]
pub(crate) struct Given<T>(pub Option<Spanned<T>>);

impl<T> Default for Given<T> {
    fn default() -> Self {
        Given(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Given<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::<T>::deserialize(d).map(|s| Given(Some(s)))
    }
}

/// The exact text of an amount; parsed by `Micros::parse_decimal` during
/// validation so a malformed amount is reported with everything else.
#[derive(Debug)]
pub(crate) struct MoneyText(pub String);

impl<'de> Deserialize<'de> for MoneyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = MoneyText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an amount of money such as 1234.50")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MoneyText, E> {
                Ok(MoneyText(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<MoneyText, E> {
                Ok(MoneyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<MoneyText, E> {
                Ok(MoneyText(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

pub(crate) type Money = Spanned<MoneyText>;

/// `{EUR: 0.95, …}` in file order, each code and rate with its position.
#[derive(Debug, Default)]
pub(crate) struct RateMap(pub Vec<(Text, Money)>);

impl<'de> Deserialize<'de> for RateMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RateMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("currency codes with their rates, like `EUR: 0.95`")
            }
            // `rates:` with no value reads as empty, like `List`, and the
            // validator says what is missing: a map alone never sees null.
            fn visit_none<E: de::Error>(self) -> Result<RateMap, E> {
                Ok(RateMap::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<RateMap, E> {
                Ok(RateMap::default())
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<RateMap, D2::Error> {
                d.deserialize_map(V)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RateMap, A::Error> {
                let mut pairs = Vec::new();
                while let Some(code) = map.next_key::<Text>()? {
                    pairs.push((code, map.next_value::<Money>()?));
                }
                Ok(RateMap(pairs))
            }
        }
        d.deserialize_option(V)
    }
}

/// Declares the YAML's mappings. Each struct gets serde's `Deserialize`
/// with `deny_unknown_fields`, and, from the same tokens, a
/// [`Mapping`](crate::schema::Mapping): its name in messages, its keys in
/// order and whether each is required. The JSON Schema, the names of
/// mappings in unknown-key messages and the owners of missing keys are all
/// read from those, so a key added here is everywhere at once.
///
/// Inside, `///` comments are for account managers: they become the
/// schema's descriptions (hover text in an editor); notes for developers
/// are `//` comments. A key may carry `#[one_of(VALUES)]`, the values the
/// validator accepts (it parses with the same constants), which become the
/// schema's `enum`; the only serde attribute allowed is `#[serde(default)]`,
/// so that keys are never renamed behind the schema's back.
macro_rules! mappings {
    ($(
        $(#[doc = $doc:literal])*
        #[mapping = $name:literal]
        $vis:vis struct $S:ident {
            $(
                $(#[doc = $kdoc:literal])*
                $(#[one_of($values:expr)])?
                $(#[serde($default:ident)])?
                $kvis:vis $key:ident: $T:ty
            ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, DeriveDeserialize)]
            #[serde(deny_unknown_fields)]
            $vis struct $S {
                $(
                    $(#[doc = $kdoc])*
                    $(#[serde($default)])?
                    $kvis $key: $T,
                )*
            }

            impl $S {
                pub(crate) const MAPPING: Mapping = Mapping {
                    rust_name: stringify!($S),
                    name: $name,
                    doc: &[$($doc),*],
                    keys: &[$(Key {
                        name: stringify!($key),
                        doc: &[$($kdoc),*],
                        required: !(<$T as Describe>::MAY_BE_MISSING
                            || serde_default!($($default)?)),
                        describe: <$T as Describe>::describe,
                        one_of: one_of!($($values)?),
                    }),*],
                };
            }

            impl Describe for $S {
                fn describe(defs: &mut Defs) -> Value {
                    Self::MAPPING.reference(defs)
                }
            }
        )*

        /// Every mapping, in declaration order.
        pub(crate) const MAPPINGS: &[Mapping] = &[$($S::MAPPING),*];
    };
}

/// Whether `#[serde(default)]` was written; any other serde attribute does
/// not compile.
macro_rules! serde_default {
    () => {
        false
    };
    (default) => {
        true
    };
}

macro_rules! one_of {
    () => {
        None
    };
    ($values:expr) => {
        Some(|| ($values).into_iter().collect())
    };
}

mappings! {
    /// A config file: one advertiser with its audiences, creatives and
    /// orders, one exchange profile, or the currency rates.
    #[mapping = "the top level of the file"]
    pub(crate) struct RawFile {
        // One of `advertiser`, `exchange` and `currency_rates` says what the
        // file is; the validator requires exactly one.
        /// The advertiser this file buys for. A file holds one advertiser,
        /// one exchange or the currency rates.
        #[serde(default)]
        pub advertiser: Option<Spanned<RawAdvertiser>>,
        /// An exchange profile: how the bidder deals with one exchange. A
        /// file holds one advertiser, one exchange or the currency rates.
        #[serde(default)]
        pub exchange: Option<Spanned<RawExchange>>,
        /// Exchange rates against USD, for bid requests in other currencies.
        /// A file holds one advertiser, one exchange or the currency rates.
        #[serde(default)]
        pub currency_rates: Option<Spanned<RawCurrencyRates>>,
        /// The advertiser's audiences, named by its line items.
        #[serde(default)]
        pub audiences: List<Spanned<RawAudience>>,
        /// The advertiser's creatives (ads), named by its line items.
        #[serde(default)]
        pub creatives: List<Spanned<RawCreative>>,
        /// The advertiser's orders: each a budget, a flight and line items.
        #[serde(default)]
        pub orders: List<Spanned<RawOrder>>,
    }

    /// The advertiser whose ads this file buys.
    #[mapping = "advertiser"]
    pub(crate) struct RawAdvertiser {
        /// Unique across all files; no spaces, like acme-outdoor.
        pub id: Text,
        /// The advertiser's name, for people.
        pub name: Text,
        /// Landing-page domains, like acme-outdoor.example: at least one. Sent
        /// as the bid's `adomain` and checked against the request's `badv`.
        #[serde(default)]
        pub domains: Option<Spanned<List<Text>>>,
        /// IAB content categories of the ads, like IAB17-18; checked against
        /// the request's `bcat`.
        #[serde(default)]
        pub categories: List<Text>,
        /// The advertiser's product ids: a view or purchase of one of them is
        /// attributed to the advertiser's last ad the shopper clicked or saw.
        #[serde(default)]
        pub products: Option<Spanned<List<Text>>>,
        /// How long after an ad a view or purchase still counts as its doing.
        #[serde(default)]
        pub attribution: Option<Spanned<RawAttribution>>,
    }

    /// Attribution windows, in days (1 to 90; 14 each when not given).
    #[mapping = "attribution"]
    pub(crate) struct RawAttribution {
        /// Days after a click.
        #[serde(default)]
        pub click_days: Option<Int>,
        /// Days after an impression, when no click came.
        #[serde(default)]
        pub view_days: Option<Int>,
    }

    /// A set of users (views, interests) or of pages (products, categories)
    /// that line items target by id.
    #[mapping = "audience"]
    pub(crate) struct RawAudience {
        /// Unique within the advertiser; no spaces.
        pub id: Text,
        /// views: viewed one of `products` within `lookback_days` and not
        /// bought it since; interests: shopping activity on one of
        /// `interests` within `recency_days`; products: the page is about one
        /// of `products`; categories: the page is in one of `categories`;
        /// list: a member of the list uploaded for it, found by `sources`.
        #[one_of(crate::validate::AUDIENCE_KINDS.map(|(kind, ..)| kind))]
        pub kind: Text,
        /// Product ids, for views and products audiences.
        #[serde(default)]
        pub products: Option<Spanned<List<Text>>>,
        /// Views audiences: how many days a view counts, 1 to 365 (default
        /// 30).
        #[serde(default)]
        pub lookback_days: Option<Int>,
        /// Interest topics, for interests audiences.
        #[serde(default)]
        pub interests: Option<Spanned<List<Text>>>,
        /// Interests audiences: how many days activity counts, 1 to 365
        /// (default 90).
        #[serde(default)]
        pub recency_days: Option<Int>,
        /// IAB content categories, for categories audiences; IAB17 covers
        /// IAB17-18.
        #[serde(default)]
        pub categories: Option<Spanned<List<Text>>>,
        /// List audiences: where a request carries the members' ids:
        /// `buyeruid`, `sha256_email`, or a `user.eids` source such as
        /// `uidapi.com`, `liveramp.com` or `id5-sync.com`.
        #[serde(default)]
        pub sources: Option<Spanned<List<Text>>>,
    }

    /// An ad. Which keys apply depends on its format.
    #[mapping = "creative"]
    pub(crate) struct RawCreative {
        /// Unique across every advertiser of the config (notices and reports name it
        /// alone); no spaces.
        pub id: Text,
        /// display: an image (size, image_url); video or audio: a VAST spot
        /// (duration_s, media); native: a product ad the publisher lays out
        /// (title, description, sponsored_by, image).
        #[one_of(Media::ALL.map(Media::as_str))]
        pub format: Text,
        /// Display: WIDTHxHEIGHT in pixels, like 300x250.
        #[serde(default)]
        pub size: Option<Text>,
        /// Display: the image, an http:// or https:// URL.
        #[serde(default)]
        pub image_url: Option<Text>,
        /// Video and audio: the length in seconds, 1 to 86399 (under a
        /// day, as VAST's Duration can say).
        #[serde(default)]
        pub duration_s: Option<Int>,
        /// Video and audio: the media files (renditions), at least one.
        #[serde(default)]
        pub media: Option<Spanned<List<Spanned<RawMediaFile>>>>,
        /// Where a click leads, an http:// or https:// URL.
        pub click_url: Text,
        /// Video and audio: ids of display creatives shown alongside, when
        /// the player offers a slot of their size.
        #[serde(default)]
        pub companions: List<Text>,
        /// Video and audio: true to bid only where a companion is shown too.
        #[serde(default)]
        pub companion_required: Option<Spanned<bool>>,
        /// IAB creative attributes (AdCOM List 5.3, 1 to 17) the ad has; a
        /// slot whose `battr` blocks one of them does not get it.
        #[serde(default)]
        pub attributes: Option<Spanned<List<Int>>>,
        /// The language the ad is in: an IETF BCP 47 tag such as en, de or
        /// pt-BR. A request that allows only some languages (wlang,
        /// wlangb) gets no bid from an ad in another one; an ad that does
        /// not say is not held to them. The bid says it (language, or langb
        /// for a tag with more than a two-letter language).
        #[serde(default)]
        pub language: Option<Text>,
        // Native product ads.
        /// Native: the headline.
        #[serde(default)]
        pub title: Option<Text>,
        /// Native: the body text.
        #[serde(default)]
        pub description: Option<Text>,
        /// Native: the brand shown as the sponsor.
        #[serde(default)]
        pub sponsored_by: Option<Text>,
        /// Native: the main image.
        #[serde(default)]
        pub image: Option<Spanned<RawImage>>,
        /// Native: the brand's icon or logo.
        #[serde(default)]
        pub icon: Option<Spanned<RawImage>>,
        /// Native: the call to action, like "Shop now".
        #[serde(default)]
        pub cta: Option<Text>,
        /// Native: the price as shown, like "$24.99" (text, not money).
        #[serde(default)]
        pub price: Option<Text>,
    }

    /// An image of a native ad.
    #[mapping = "image or icon"]
    pub(crate) struct RawImage {
        /// An http:// or https:// URL.
        pub url: Text,
        /// Width in pixels.
        pub w: Int,
        /// Height in pixels.
        pub h: Int,
    }

    /// An exchange profile: one file per exchange.
    #[mapping = "exchange"]
    pub(crate) struct RawExchange {
        /// Also the path of its bid endpoint, `POST /openrtb2/bid/{id}`:
        /// letters, digits, '-', '_' and '.', like google-adx.
        pub id: Text,
        /// The exchange's name, for people.
        pub name: Text,
        /// How the exchange encrypts `${AUCTION_PRICE}` in notices.
        #[serde(default)]
        pub price_encryption: Option<Spanned<RawPriceEncryption>>,
        /// Which notice charges a bid: win (the win notice), billing (the
        /// billing notice) or first (whichever comes first, the default).
        #[one_of(ChargeOn::ALL.map(ChargeOn::as_str))]
        #[serde(default)]
        pub charge_on: Option<Text>,
        /// The VAST version answered when a player names none (default
        /// "3.0"); quote it, like "4.2".
        #[one_of(crate::validate::VAST_VERSIONS.map(|(version, _)| version))]
        #[serde(default)]
        pub vast_default: Option<Text>,
        /// true to gzip bid responses when the exchange accepts it.
        #[serde(default)]
        pub gzip_responses: Option<Spanned<bool>>,
        /// The OpenRTB version answers are written in when a request's
        /// x-openrtb-version header names none: "2.5" or "2.6" (the
        /// default); quote it. A header naming a version still decides.
        #[one_of(["2.5", "2.6"])]
        #[serde(default)]
        pub openrtb_version: Option<Text>,
        /// The deadline, in milliseconds, of a request that carries no
        /// `tmax`: 10 to 10000.
        #[serde(default)]
        pub tmax_default_ms: Option<Int>,
        /// How long a bid for this exchange holds its cost while no notice
        /// charges it, in seconds (1 to 3600; default the bidder's
        /// --reservation-ttl-secs). Exchanges that bill on render send
        /// their billing notice later than others send wins.
        #[serde(default)]
        pub reservation_ttl_secs: Option<Int>,
        /// The exchange's user-sync URL (https): the bidder's
        /// /sync/{id} sends the browser there with its user id in place
        /// of ${UID} (or $UID), so the exchange sends it back as
        /// user.buyeruid.
        #[serde(default)]
        pub sync_url: Option<Text>,
        /// Host names a `redir` parameter of /sync/{id} may send the
        /// browser to instead (exact names, like sync.exchange.example);
        /// without them no redir is followed.
        #[serde(default)]
        pub sync_redirect_hosts: Option<Spanned<List<Text>>>,
        /// Where this exchange's bid requests come from: networks (like
        /// 203.0.113.0/24 or 2001:db8::/32) or single addresses. Requests
        /// to its endpoint from anywhere else are refused (403) before
        /// they are read, so nobody else can hold its line items' budgets
        /// with bids. Without it, requests come from anywhere.
        #[serde(default)]
        pub allow_from: Option<Spanned<List<Text>>>,
        /// The bidder's seat (buyer account) at this exchange: answers
        /// name it (seatbid.seat), and a request whose wseat leaves it out
        /// or whose bseat lists it gets no bid (reason seat).
        #[serde(default)]
        pub seat: Option<Text>,
    }

    /// The keys of `${AUCTION_PRICE}` encryption, read from the environment
    /// when the config loads: keys never go in the YAML itself.
    #[mapping = "price_encryption"]
    pub(crate) struct RawPriceEncryption {
        /// google: Google Authorized Buyers' scheme.
        #[one_of(EncryptionScheme::ALL.map(EncryptionScheme::as_str))]
        pub scheme: Text,
        /// The environment variable holding the encryption key, like
        /// ADX_ENCRYPTION_KEY.
        pub encryption_key_env: Text,
        /// The environment variable holding the integrity key, like
        /// ADX_INTEGRITY_KEY.
        pub integrity_key_env: Text,
        /// true (the default): the IV's first eight bytes say when the
        /// price was encrypted, as Google's do, and a price dated more than
        /// 5 minutes before its bid is another win's, charged at the bid.
        /// false for an exchange that uses the scheme with random IVs.
        #[serde(default)]
        pub iv_timestamps: Option<Spanned<bool>>,
    }

    /// Exchange rates against USD: without them the bidder bids in USD
    /// only.
    #[mapping = "currency_rates"]
    pub(crate) struct RawCurrencyRates {
        /// Always USD, the currency of every budget.
        #[one_of([crate::validate::BASE_CURRENCY])]
        pub base: Text,
        /// The day the rates were taken, like 2026-11-30.
        pub as_of: Text,
        /// Units of each currency per USD, by ISO 4217 code, like EUR: 0.95.
        pub rates: Spanned<RateMap>,
        /// How many days either side of as_of the rates price, 1 to 3650
        /// (default: the bidder's --max-rates-age-days, 7). Rates fed
        /// daily leave it out; a demo's fixed rates may set it.
        #[serde(default)]
        pub max_age_days: Option<Int>,
    }

    /// A video or audio file of a creative.
    #[mapping = "media file"]
    pub(crate) struct RawMediaFile {
        /// An http:// or https:// URL.
        pub url: Text,
        /// The media type, like video/mp4 or audio/mpeg.
        pub mime: Text,
        /// Video: width in pixels (required for video, not for audio).
        #[serde(default)]
        pub width: Option<Int>,
        /// Video: height in pixels (required for video, not for audio).
        #[serde(default)]
        pub height: Option<Int>,
        /// The bitrate in kbit/s.
        #[serde(default)]
        pub bitrate_kbps: Option<Int>,
    }

    /// A budget over a flight, spent by its line items.
    #[mapping = "order"]
    pub(crate) struct RawOrder {
        /// Unique across every advertiser of the config (notices and reports name it
        /// alone); no spaces.
        pub id: Text,
        /// self_service, or managed: run by an account manager, with a
        /// total budget of at least 50,000.00 (25,000.00 buying audio only).
        #[one_of(Service::ALL.map(Service::as_str))]
        pub service: Text,
        /// The order's total budget in USD over its whole flight, like
        /// 60000.00.
        pub budget: Money,
        /// The UTC dates the order runs, both included.
        pub flight: Spanned<RawFlight>,
        /// What the order buys: at least one line item.
        #[serde(default)]
        pub line_items: Option<Spanned<List<Spanned<RawLineItem>>>>,
    }

    /// The UTC dates an order runs, both included.
    #[mapping = "flight"]
    pub(crate) struct RawFlight {
        /// The first day, like 2026-11-01.
        pub start: Text,
        /// The last day, like 2026-12-31.
        pub end: Text,
    }

    /// What to bid on, how much, and with which creatives.
    #[mapping = "line item"]
    pub(crate) struct RawLineItem {
        /// Unique across every advertiser of the config (notices and reports name it
        /// alone); no spaces.
        pub id: Text,
        /// The kind of impression bought; its creatives have this format.
        #[one_of(Media::ALL.map(Media::as_str))]
        pub media: Text,
        /// The bid, in USD per thousand impressions, like 6.00: what a
        /// fixed_cpm line item bids (the default strategy). Value-based
        /// strategies (`bidding`) take a `max_cpm` ceiling instead.
        #[serde(default)]
        pub cpm: Option<Money>,
        /// How the bid is set: fixed_cpm (the default: `cpm`), max_cpc
        /// (max CPC × predicted click rate × 1000) or target_cpa (target CPA
        /// × predicted conversion rate × 1000).
        #[serde(default)]
        pub bidding: Option<Spanned<RawBidding>>,
        /// In first-price auctions, lower the bid towards what wins
        /// (default true); false bids the whole value.
        #[serde(default)]
        pub shading: Option<Spanned<bool>>,
        /// Exactly one of daily and lifetime.
        pub budget: Spanned<RawBudget>,
        /// At most this many impressions per user in a window of hours.
        #[serde(default)]
        pub frequency_cap: Option<Spanned<RawFrequencyCap>>,
        /// The users bought; without it, every user.
        // `Given`: `audiences:` with nothing after it is written down, and
        // names no audience (it read as left out: every user).
        #[serde(default)]
        pub audiences: Given<Option<RawAudienceRule>>,
        /// Where and when to bid; without it, everywhere and always.
        #[serde(default)]
        pub targeting: Option<Spanned<RawTargeting>>,
        /// Ids of the advertiser's creatives of this line item's media: at
        /// least one.
        #[serde(default)]
        pub creatives: Option<Spanned<List<Text>>>,
    }

    /// The bidding strategy and its goal.
    #[mapping = "bidding"]
    pub(crate) struct RawBidding {
        /// fixed_cpm, max_cpc or target_cpa.
        #[one_of(crate::validate::STRATEGIES)]
        pub strategy: Text,
        /// max_cpc: the most a click is worth, in USD, like 1.20.
        #[serde(default)]
        pub max_cpc: Option<Money>,
        /// target_cpa: what a conversion is worth, in USD, like 25.00.
        #[serde(default)]
        pub target_cpa: Option<Money>,
        /// max_cpc and target_cpa: the highest bid per thousand impressions.
        #[serde(default)]
        pub max_cpm: Option<Money>,
    }

    /// Exactly one of daily and lifetime, in USD.
    #[mapping = "line item budget"]
    pub(crate) struct RawBudget {
        /// Spent as demand comes each UTC day, not paced; at least 1.00.
        #[serde(default)]
        pub daily: Option<Money>,
        /// For the whole flight, paced evenly through each day.
        #[serde(default)]
        pub lifetime: Option<Money>,
    }

    /// At most `impressions` per user in any `per_hours` hours.
    #[mapping = "frequency_cap"]
    pub(crate) struct RawFrequencyCap {
        /// Impressions a user may see, counted on wins.
        pub impressions: Int,
        /// The window, in hours: 1 to 8784 (a year).
        pub per_hours: Int,
    }

    /// A user qualifies when in one of `any_of` (or any_of is empty) and
    /// in none of `none_of`.
    #[mapping = "line item audiences"]
    pub(crate) struct RawAudienceRule {
        /// Ids of the advertiser's audiences; a user in any of them
        /// qualifies.
        #[serde(default)]
        pub any_of: List<Text>,
        /// Ids of the advertiser's audiences whose users never qualify.
        #[serde(default)]
        pub none_of: List<Text>,
    }

    /// Where and when to bid; every key is optional, and an empty list does
    /// not restrict (but `deals`, which must list something).
    #[mapping = "targeting"]
    pub(crate) struct RawTargeting {
        /// ISO 3166-1 alpha-3 codes, like USA, as OpenRTB's geo.country.
        #[serde(default)]
        pub countries: List<Text>,
        /// ISO 3166-2 subdivision codes, like US-CO.
        #[serde(default)]
        pub regions: List<Text>,
        /// City names, matched case-insensitively.
        #[serde(default)]
        pub cities: List<Text>,
        /// Operating systems.
        #[one_of(Os::ALL.map(Os::as_str))]
        #[serde(default)]
        pub os: List<Text>,
        /// Site domains, like news.example (subdomains included).
        #[serde(default)]
        pub sites: Option<Spanned<RawAllowBlock>>,
        /// App bundles or store ids, like com.example.app or 123456789.
        #[serde(default)]
        pub apps: Option<Spanned<RawAllowBlock>>,
        /// Publisher ids.
        #[serde(default)]
        pub publishers: Option<Spanned<RawAllowBlock>>,
        /// Hours of the week to bid in; without it, any time.
        #[serde(default)]
        pub dayparts: Option<Spanned<RawDayparts>>,
        /// Device types.
        #[one_of(Device::ALL.map(Device::as_str))]
        #[serde(default)]
        pub devices: List<Text>,
        /// Contextual keywords, matched against the request's keywords.
        #[serde(default)]
        pub keywords: Option<Spanned<RawKeywords>>,
        /// Private-marketplace deal ids: when set, bid only inside these
        /// deals.
        #[serde(default)]
        pub deals: Given<List<Text>>,
        // Spanned so that a display line item's `placements` can be pointed
        // at even when the list is empty.
        /// Video and audio line items: the placements bought; outstream is
        /// accompanying, interstitial and standalone.
        #[one_of(Placement::ALL.map(Placement::as_str))]
        #[serde(default)]
        pub placements: Option<Spanned<List<Text>>>,
    }

    /// Keyword phrases, matched case- and accent-insensitively.
    #[mapping = "keywords"]
    pub(crate) struct RawKeywords {
        /// Every word, in any order.
        #[serde(default)]
        pub broad: List<Text>,
        /// The words in this order.
        #[serde(default)]
        pub phrase: List<Text>,
        /// The whole keyword.
        #[serde(default)]
        pub exact: List<Text>,
        /// Any of these (matched as phrases) excludes the impression.
        #[serde(default)]
        pub negative: List<Text>,
    }

    /// Bid only on `allow` (when it is not empty), never on `block`.
    #[mapping = "sites, apps or publishers"]
    pub(crate) struct RawAllowBlock {
        /// When not empty, bid only on these.
        #[serde(default)]
        pub allow: List<Text>,
        /// Never bid on these.
        #[serde(default)]
        pub block: List<Text>,
    }

    /// Hours of the week to bid in.
    #[mapping = "dayparts"]
    pub(crate) struct RawDayparts {
        /// Which clock the slots are read on: user (the device's local time,
        /// the default) or utc.
        #[one_of(DaypartZone::ALL.map(DaypartZone::as_str))]
        #[serde(default)]
        pub timezone: Option<Text>,
        /// At least one slot.
        #[serde(default)]
        pub slots: Option<Spanned<List<Spanned<RawDaypartSlot>>>>,
    }

    /// From `from` (included) to `to` (excluded) on each of `days`; a slot
    /// never crosses midnight.
    #[mapping = "daypart slot"]
    pub(crate) struct RawDaypartSlot {
        /// The days, at least one.
        #[one_of(Weekday::ALL.map(Weekday::as_str))]
        #[serde(default)]
        pub days: Option<Spanned<List<Text>>>,
        /// HH:MM, quoted, like "07:00".
        pub from: Text,
        /// HH:MM, quoted, like "09:30"; "24:00" ends a slot at midnight.
        pub to: Text,
    }
}

/// Names the mapping an unknown key was found in, recognised by the keys it
/// accepts (serde reports only those, in declaration order).
pub(crate) fn mapping_name(expected: &[&str]) -> Option<&'static str> {
    MAPPINGS
        .iter()
        .find(|m| m.keys.iter().map(|k| k.name).eq(expected.iter().copied()))
        .map(|m| m.name)
}

/// The mapping that requires `key` and accepts every one of `present`
/// (the keys written in the mapping that lacks it), when only one does;
/// else as [`required_key_owner`].
pub(crate) fn missing_key_owner(key: &str, present: &[&str]) -> Option<&'static str> {
    let mut owners = MAPPINGS.iter().filter(|m| {
        m.keys.iter().any(|k| k.required && k.name == key)
            && present.iter().all(|p| m.keys.iter().any(|k| k.name == *p))
    });
    match (owners.next(), owners.next()) {
        (Some(owner), None) => Some(owner.name),
        _ => required_key_owner(key),
    }
}

/// The mapping a required key belongs to, when only one mapping requires
/// it. serde-saphyr positions a missing key at the last key of the mapping
/// that lacks it, so naming the mapping is what tells the reader where to
/// look.
pub(crate) fn required_key_owner(key: &str) -> Option<&'static str> {
    let mut owners = MAPPINGS
        .iter()
        .filter(|m| m.keys.iter().any(|k| k.required && k.name == key));
    match (owners.next(), owners.next()) {
        (Some(owner), None) => Some(owner.name),
        _ => None,
    }
}
