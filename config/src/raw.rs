//! The YAML shape, as written, with source positions.
//!
//! Everything the validator may complain about is kept as written (strings,
//! `i64`, money text) inside `Spanned`, so that a bad value becomes a
//! positioned semantic problem instead of a type error that hides the rest
//! of the file. Creatives and audiences are flat structs rather than tagged
//! enums because serde buffers tagged enums and the positions would be lost.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::Deserialize as DeriveDeserialize;
use serde_saphyr::Spanned;

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

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    /// One of `advertiser`, `exchange` and `currency_rates` says what the
    /// file is; the validator requires exactly one.
    #[serde(default)]
    pub advertiser: Option<Spanned<RawAdvertiser>>,
    #[serde(default)]
    pub exchange: Option<Spanned<RawExchange>>,
    #[serde(default)]
    pub currency_rates: Option<Spanned<RawCurrencyRates>>,
    #[serde(default)]
    pub audiences: List<Spanned<RawAudience>>,
    #[serde(default)]
    pub creatives: List<Spanned<RawCreative>>,
    #[serde(default)]
    pub orders: List<Spanned<RawOrder>>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdvertiser {
    pub id: Text,
    pub name: Text,
    #[serde(default)]
    pub domains: Option<Spanned<List<Text>>>,
    #[serde(default)]
    pub categories: List<Text>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudience {
    pub id: Text,
    pub kind: Text,
    #[serde(default)]
    pub products: Option<Spanned<List<Text>>>,
    #[serde(default)]
    pub lookback_days: Option<Int>,
    #[serde(default)]
    pub interests: Option<Spanned<List<Text>>>,
    #[serde(default)]
    pub recency_days: Option<Int>,
    #[serde(default)]
    pub categories: Option<Spanned<List<Text>>>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCreative {
    pub id: Text,
    pub format: Text,
    #[serde(default)]
    pub size: Option<Text>,
    #[serde(default)]
    pub image_url: Option<Text>,
    #[serde(default)]
    pub duration_s: Option<Int>,
    #[serde(default)]
    pub media: Option<Spanned<List<Spanned<RawMediaFile>>>>,
    pub click_url: Text,
    #[serde(default)]
    pub companions: List<Text>,
    #[serde(default)]
    pub companion_required: Option<Spanned<bool>>,
    /// IAB creative attributes (AdCOM List 5.3), for `battr`.
    #[serde(default)]
    pub attributes: Option<Spanned<List<Int>>>,
    // Native product ads.
    #[serde(default)]
    pub title: Option<Text>,
    #[serde(default)]
    pub description: Option<Text>,
    #[serde(default)]
    pub sponsored_by: Option<Text>,
    #[serde(default)]
    pub image: Option<Spanned<RawImage>>,
    #[serde(default)]
    pub icon: Option<Spanned<RawImage>>,
    #[serde(default)]
    pub cta: Option<Text>,
    #[serde(default)]
    pub price: Option<Text>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImage {
    pub url: Text,
    pub w: Int,
    pub h: Int,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExchange {
    pub id: Text,
    pub name: Text,
    #[serde(default)]
    pub price_encryption: Option<Spanned<RawPriceEncryption>>,
    #[serde(default)]
    pub charge_on: Option<Text>,
    #[serde(default)]
    pub vast_default: Option<Text>,
    #[serde(default)]
    pub gzip_responses: Option<Spanned<bool>>,
    #[serde(default)]
    pub tmax_default_ms: Option<Int>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPriceEncryption {
    pub scheme: Text,
    pub encryption_key_env: Text,
    pub integrity_key_env: Text,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCurrencyRates {
    pub base: Text,
    pub as_of: Text,
    pub rates: Spanned<RateMap>,
}

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

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMediaFile {
    pub url: Text,
    pub mime: Text,
    #[serde(default)]
    pub width: Option<Int>,
    #[serde(default)]
    pub height: Option<Int>,
    #[serde(default)]
    pub bitrate_kbps: Option<Int>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOrder {
    pub id: Text,
    pub service: Text,
    pub budget: Money,
    pub flight: Spanned<RawFlight>,
    #[serde(default)]
    pub line_items: Option<Spanned<List<Spanned<RawLineItem>>>>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFlight {
    pub start: Text,
    pub end: Text,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLineItem {
    pub id: Text,
    pub media: Text,
    pub cpm: Money,
    pub budget: Spanned<RawBudget>,
    #[serde(default)]
    pub frequency_cap: Option<Spanned<RawFrequencyCap>>,
    #[serde(default)]
    pub audiences: Option<Spanned<RawAudienceRule>>,
    #[serde(default)]
    pub targeting: Option<Spanned<RawTargeting>>,
    #[serde(default)]
    pub creatives: Option<Spanned<List<Text>>>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBudget {
    #[serde(default)]
    pub daily: Option<Money>,
    #[serde(default)]
    pub lifetime: Option<Money>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFrequencyCap {
    pub impressions: Int,
    pub per_hours: Int,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudienceRule {
    #[serde(default)]
    pub any_of: List<Text>,
    #[serde(default)]
    pub none_of: List<Text>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTargeting {
    #[serde(default)]
    pub countries: List<Text>,
    #[serde(default)]
    pub regions: List<Text>,
    #[serde(default)]
    pub cities: List<Text>,
    #[serde(default)]
    pub os: List<Text>,
    #[serde(default)]
    pub sites: Option<Spanned<RawAllowBlock>>,
    #[serde(default)]
    pub apps: Option<Spanned<RawAllowBlock>>,
    #[serde(default)]
    pub publishers: Option<Spanned<RawAllowBlock>>,
    #[serde(default)]
    pub dayparts: Option<Spanned<RawDayparts>>,
    #[serde(default)]
    pub devices: List<Text>,
    #[serde(default)]
    pub keywords: Option<Spanned<RawKeywords>>,
    #[serde(default)]
    pub deals: List<Text>,
    /// Spanned so that a display line item's `placements` can be pointed at
    /// even when the list is empty.
    #[serde(default)]
    pub placements: Option<Spanned<List<Text>>>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeywords {
    #[serde(default)]
    pub broad: List<Text>,
    #[serde(default)]
    pub phrase: List<Text>,
    #[serde(default)]
    pub exact: List<Text>,
    #[serde(default)]
    pub negative: List<Text>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAllowBlock {
    #[serde(default)]
    pub allow: List<Text>,
    #[serde(default)]
    pub block: List<Text>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDayparts {
    #[serde(default)]
    pub timezone: Option<Text>,
    #[serde(default)]
    pub slots: Option<Spanned<List<Spanned<RawDaypartSlot>>>>,
}

#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDaypartSlot {
    #[serde(default)]
    pub days: Option<Spanned<List<Text>>>,
    pub from: Text,
    pub to: Text,
}

/// Names the mapping an unknown key was found in, recognised by the keys it
/// accepts (serde reports only those). Kept next to the structs above; a test
/// in `load` puts a typo into each mapping to catch drift.
pub(crate) fn mapping_name(expected: &[&str]) -> Option<&'static str> {
    const MAPPINGS: &[(&str, &[&str])] = &[
        (
            "the top level of the file",
            &[
                "advertiser",
                "exchange",
                "currency_rates",
                "audiences",
                "creatives",
                "orders",
            ],
        ),
        (
            "exchange",
            &[
                "id",
                "name",
                "price_encryption",
                "charge_on",
                "vast_default",
                "gzip_responses",
                "tmax_default_ms",
            ],
        ),
        (
            "price_encryption",
            &["scheme", "encryption_key_env", "integrity_key_env"],
        ),
        ("currency_rates", &["base", "as_of", "rates"]),
        ("image or icon", &["url", "w", "h"]),
        ("advertiser", &["id", "name", "domains", "categories"]),
        (
            "audience",
            &[
                "id",
                "kind",
                "products",
                "lookback_days",
                "interests",
                "recency_days",
                "categories",
            ],
        ),
        (
            "creative",
            &[
                "id",
                "format",
                "size",
                "image_url",
                "duration_s",
                "media",
                "click_url",
                "companions",
                "companion_required",
                "attributes",
                "title",
                "description",
                "sponsored_by",
                "image",
                "icon",
                "cta",
                "price",
            ],
        ),
        (
            "media file",
            &["url", "mime", "width", "height", "bitrate_kbps"],
        ),
        (
            "order",
            &["id", "service", "budget", "flight", "line_items"],
        ),
        ("flight", &["start", "end"]),
        (
            "line item",
            &[
                "id",
                "media",
                "cpm",
                "budget",
                "frequency_cap",
                "audiences",
                "targeting",
                "creatives",
            ],
        ),
        ("line item budget", &["daily", "lifetime"]),
        ("frequency_cap", &["impressions", "per_hours"]),
        ("line item audiences", &["any_of", "none_of"]),
        (
            "targeting",
            &[
                "countries",
                "regions",
                "cities",
                "os",
                "sites",
                "apps",
                "publishers",
                "dayparts",
                "devices",
                "keywords",
                "deals",
                "placements",
            ],
        ),
        ("keywords", &["broad", "phrase", "exact", "negative"]),
        // The same keys for all three, so the message names them all.
        ("sites, apps or publishers", &["allow", "block"]),
        ("dayparts", &["timezone", "slots"]),
        ("daypart slot", &["days", "from", "to"]),
    ];
    MAPPINGS
        .iter()
        .find(|(_, keys)| *keys == expected)
        .map(|(name, _)| *name)
}

/// The mapping a required key belongs to, when only one mapping has it.
/// serde-saphyr positions a missing key at the last key of the mapping that
/// lacks it, so naming the mapping is what tells the reader where to look.
pub(crate) fn required_key_owner(key: &str) -> Option<&'static str> {
    Some(match key {
        "scheme" | "encryption_key_env" | "integrity_key_env" => "price_encryption",
        "base" | "as_of" | "rates" => "currency_rates",
        "w" | "h" => "image or icon",
        "kind" => "audience",
        "format" | "click_url" => "creative",
        "mime" => "media file",
        "service" | "flight" => "order",
        "start" | "end" => "flight",
        "media" | "cpm" => "line item",
        "impressions" | "per_hours" => "frequency_cap",
        "from" | "to" => "daypart slot",
        _ => return None,
    })
}
