//! The rules: turns parsed files into the model, reporting every problem.
//!
//! Validation never stops at the first problem; an account manager fixing a
//! file wants the whole list. Each check reports what it found and the model
//! is still assembled from whatever made sense, but the loader hands it out
//! only when no problem at all was reported.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use crate::countries::{self, country_alpha2};
use crate::model::{
    Advertiser, AllowBlock, At, Audience, AudienceKind, AudienceRule, Bidding, Budget, Config,
    Creative, CreativeKind, DaypartSlot, DaypartZone, Dayparts, Device, Flight, FrequencyCap,
    Keywords, LineItem, ListSource, Media, MediaFile, Order, Os, Placement, Service, Targeting,
};
use crate::money::{Micros, MAX_AMOUNT};
use crate::problem::Problem;
use crate::raw::{
    Int, List, Money, RawAdvertiser, RawAllowBlock, RawAudience, RawBudget, RawCreative,
    RawDaypartSlot, RawDayparts, RawFile, RawKeywords, RawLineItem, RawMediaFile, RawOrder,
    RawTargeting, Text,
};
use crate::time::{Date, Weekday};

/// Managed service is staffed; below these totals it does not pay for itself.
const MANAGED_MINIMUM: Micros = Micros::from_units(50_000);
const MANAGED_AUDIO_ONLY_MINIMUM: Micros = Micros::from_units(25_000);
const MINIMUM_DAILY_BUDGET: Micros = Micros::from_units(1);
const LOOKBACK_DEFAULT: u32 = 30;
const RECENCY_DEFAULT: u32 = 90;
const DAYS_RANGE: RangeInclusive<i64> = 1..=365;
const POSITIVE: RangeInclusive<i64> = 1..=u32::MAX as i64;
/// A frequency cap's window: at most a (leap) year. Past that a window
/// outlives any flight, and its user's counts would be kept for as long;
/// a value like 100000 is a typo for a shorter window more often than a
/// cap meant to last eleven years.
const CAP_HOURS: RangeInclusive<i64> = 1..=366 * 24;
/// A spot's length: under a day, which is all VAST's `Duration` can say
/// (`HH:MM:SS`, an `xs:time` in the XSDs); a day or more wrote VAST that
/// no player validates.
const DURATION_S: RangeInclusive<i64> = 1..=86_399;

mod native;
mod profiles;

pub(crate) use profiles::{BASE_CURRENCY, VAST_VERSIONS};

/// The audience kinds as written in YAML, each with the list key it needs
/// and the key it accepts besides.
/// Bidding strategies as written in YAML.
pub(crate) const STRATEGIES: [&str; 3] = ["fixed_cpm", "max_cpc", "target_cpa"];

pub(crate) const AUDIENCE_KINDS: [(&str, &str, Option<&str>); 5] = [
    ("views", "products", Some("lookback_days")),
    ("interests", "interests", Some("recency_days")),
    ("products", "products", None),
    ("categories", "categories", None),
    ("list", "sources", None),
];

pub(crate) fn validate(
    files: &[(&Path, RawFile)],
    secrets: Secrets,
    problems: &mut Vec<Problem>,
) -> Config {
    let mut ids = GlobalIds::default();
    for (file, raw) in files {
        if let Some(adv) = &raw.advertiser {
            ids.register(file, adv, raw, problems);
        }
    }
    let mut config = Config::default();
    let mut exchanges: HashMap<String, Place> = HashMap::new();
    let mut rates_file: Option<Place> = None;
    for (file, raw) in files {
        let mut checker = FileChecker {
            file,
            problems: &mut *problems,
            ids: &ids,
            secrets,
        };
        match checker.kind(raw) {
            Some(FileKind::Advertiser(adv)) => {
                config.advertisers.push(checker.advertiser(adv, raw))
            }
            Some(FileKind::Exchange(ex)) => {
                let id = &ex.value.id;
                if id.value.trim().is_empty() {
                    // Reported as an empty id by the exchange's own checks.
                } else if let Some(first) = exchanges.get(&id.value) {
                    checker.report(
                        id.referenced,
                        format!(
                            "duplicate exchange id \"{}\": already used at {first}",
                            id.value
                        ),
                    );
                } else {
                    exchanges.insert(
                        id.value.clone(),
                        Place {
                            file: file.to_path_buf(),
                            at: id.referenced,
                        },
                    );
                }
                config.exchanges.extend(checker.exchange(ex));
            }
            Some(FileKind::CurrencyRates(rates)) => {
                if let Some(first) = &rates_file {
                    checker.report(
                        rates.referenced,
                        format!(
                            "a second currency_rates file; the rates are already given at {first}"
                        ),
                    );
                } else {
                    rates_file = Some(Place {
                        file: file.to_path_buf(),
                        at: rates.referenced,
                    });
                }
                config.currency_rates = checker.currency_rates(rates);
            }
            None => {}
        }
    }
    config
}

/// What a file is, told by its top-level key.
enum FileKind<'r> {
    Advertiser(&'r Spanned<RawAdvertiser>),
    Exchange(&'r Spanned<crate::raw::RawExchange>),
    CurrencyRates(&'r Spanned<crate::raw::RawCurrencyRates>),
}

/// Where something was first defined, for "already used at" messages.
#[derive(Clone, Debug)]
struct Place {
    file: PathBuf,
    at: Location,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.file.display(),
            self.at.line(),
            self.at.column()
        )
    }
}

/// Ids that must be unique across the whole set, and who owns which
/// creative and audience (to explain a reference across advertisers).
#[derive(Default)]
struct GlobalIds {
    advertisers: HashMap<String, Place>,
    orders: HashMap<String, Place>,
    line_items: HashMap<String, Place>,
    creatives: HashMap<String, Place>,
    creative_owner: HashMap<String, String>,
    audience_owner: HashMap<String, String>,
    lists: HashMap<String, Place>,
}

impl GlobalIds {
    fn register(
        &mut self,
        file: &Path,
        adv: &Spanned<RawAdvertiser>,
        raw: &RawFile,
        problems: &mut Vec<Problem>,
    ) {
        let adv_id = &adv.value.id;
        let mut claim = |table: &mut HashMap<String, Place>, kind: &str, id: &Text| {
            if id.value.trim().is_empty() {
                return; // reported as an empty id by the file checker
            }
            let here = Place {
                file: file.to_path_buf(),
                at: id.referenced,
            };
            match table.get(&id.value) {
                Some(first) => problems.push(problem(
                    file,
                    id.referenced,
                    format!(
                        "duplicate {kind} id \"{}\": already used at {first}{}",
                        id.value,
                        // Said where the clash is with another advertiser's
                        // file: ids of other advertisers look free to take
                        // (account-manager probe).
                        match first.file.as_path() == file
                            || kind == "audience"
                            || kind == "advertiser"
                        {
                            true => "",
                            false => " (ids are unique across advertisers)",
                        }
                    ),
                )),
                None => {
                    table.insert(id.value.clone(), here);
                }
            }
        };
        claim(&mut self.advertisers, "advertiser", adv_id);

        // Audience ids only need to be unique within their advertiser;
        // a list's across the config, since `/v1/audiences/{id}/members`
        // and member files name it alone.
        let mut audiences = HashMap::new();
        for audience in &raw.audiences.0 {
            let id = &audience.value.id;
            claim(&mut audiences, "audience", id);
            if audience.value.kind.value == "list" {
                claim(&mut self.lists, "list audience", id);
            }
            self.audience_owner
                .entry(id.value.clone())
                .or_insert_with(|| adv_id.value.clone());
        }
        for creative in &raw.creatives.0 {
            let id = &creative.value.id;
            claim(&mut self.creatives, "creative", id);
            self.creative_owner
                .entry(id.value.clone())
                .or_insert_with(|| adv_id.value.clone());
        }
        for order in &raw.orders.0 {
            claim(&mut self.orders, "order", &order.value.id);
            for item in line_items(&order.value) {
                claim(&mut self.line_items, "line item", &item.value.id);
            }
        }
    }
}

/// A `user.eids` source as exchanges write it: a lower-case domain
/// (`uidapi.com`, `id5-sync.com`).
fn is_eid_source(name: &str) -> bool {
    name.len() <= 253
        && name.contains('.')
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn line_items(order: &RawOrder) -> &[Spanned<RawLineItem>] {
    order.line_items.as_ref().map_or(&[], |l| &l.value.0)
}

fn problem(file: &Path, at: Location, message: String) -> Problem {
    Problem {
        file: file.to_path_buf(),
        line: at.line(),
        column: at.column(),
        message,
    }
}

fn at(l: Location) -> At {
    At {
        line: l.line(),
        column: l.column(),
    }
}

/// What one advertiser's references may point at.
struct Scope<'r> {
    advertiser: &'r str,
    audiences: Vec<&'r str>,
    /// `None` when the creative's format is itself invalid (already reported).
    creatives: HashMap<&'r str, Option<Media>>,
}

struct FileChecker<'a> {
    file: &'a Path,
    problems: &'a mut Vec<Problem>,
    ids: &'a GlobalIds,
    secrets: Secrets,
}

/// Whether the secrets a config names (exchanges' price keys, read from
/// the environment) are read and checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrets {
    /// Serving, validating: a missing or unusable key is a problem.
    Read,
    /// Reading the config offline (`bidder report`, `simulate`), where no
    /// price is decrypted: whoever reads reports needs no exchange's keys.
    /// Price encryption is then left out of the loaded config.
    Skipped,
}

impl FileChecker<'_> {
    fn report(&mut self, at: Location, message: String) {
        self.problems.push(problem(self.file, at, message));
    }

    /// Exactly one of the three top-level keys; the advertiser's lists
    /// belong to advertiser files only.
    fn kind<'r>(&mut self, raw: &'r RawFile) -> Option<FileKind<'r>> {
        let mut kinds = Vec::new();
        if let Some(a) = &raw.advertiser {
            kinds.push((a.referenced, "advertiser", FileKind::Advertiser(a)));
        }
        if let Some(e) = &raw.exchange {
            kinds.push((e.referenced, "exchange", FileKind::Exchange(e)));
        }
        if let Some(r) = &raw.currency_rates {
            kinds.push((r.referenced, "currency_rates", FileKind::CurrencyRates(r)));
        }
        // In the order they are written, for the message's "after".
        kinds.sort_by_key(|(at, _, _)| (at.line(), at.column()));
        if kinds.len() > 1 {
            let (at, second, _) = &kinds[1];
            self.report(
                *at,
                format!(
                    "a file holds one advertiser, one exchange or the currency rates; this one \
                     also has \"{second}\" after \"{}\": split it into two files",
                    kinds[0].1
                ),
            );
            return None;
        }
        let Some((_, name, kind)) = kinds.pop() else {
            self.problems.push(Problem {
                file: self.file.to_path_buf(),
                line: 1,
                column: 1,
                message: "the file is empty or has none of the keys that say what it is: \
                          advertiser, exchange or currency_rates"
                    .to_owned(),
            });
            return None;
        };
        if name != "advertiser" {
            let article = if name == "exchange" { "an" } else { "a" };
            let lists = [
                ("audiences", raw.audiences.0.first().map(|a| a.referenced)),
                ("creatives", raw.creatives.0.first().map(|c| c.referenced)),
                ("orders", raw.orders.0.first().map(|o| o.referenced)),
            ];
            for (key, at) in lists {
                if let Some(at) = at {
                    self.report(
                        at,
                        format!(
                            "\"{key}\" belongs in an advertiser file, not in {article} {name} file"
                        ),
                    );
                }
            }
        }
        Some(kind)
    }

    fn advertiser(&mut self, advertiser: &Spanned<RawAdvertiser>, raw: &RawFile) -> Advertiser {
        let adv = &advertiser.value;
        let subject = format!("advertiser \"{}\"", adv.id.value);
        self.id(&subject, &adv.id);
        if adv.name.value.trim().is_empty() {
            self.report(adv.name.referenced, format!("{subject}: name is empty"));
        }

        let domains = match &adv.domains {
            Some(list) if !list.value.0.is_empty() => &list.value.0[..],
            other => {
                let at = other
                    .as_ref()
                    .map_or(advertiser.referenced, |l| l.referenced);
                self.report(
                    at,
                    format!(
                        "{subject}: needs at least one domain (the landing-page domain shown to \
                         publishers, like acme.example)"
                    ),
                );
                &[]
            }
        };
        for domain in domains {
            self.domain(&subject, "domain", "acme.example", domain);
        }
        for category in &adv.categories.0 {
            if self.not_empty(&subject, "a category", category) && !is_iab1(&category.value) {
                // `bcat` is compared with these: a typo blocks nothing.
                self.report(
                    category.referenced,
                    format!(
                        "{subject}: category \"{}\" is not an IAB 1.0 code, like IAB17 or \
                         IAB17-18 (what bcat blocks are compared with)",
                        category.value
                    ),
                );
            }
        }
        let mut products: Vec<String> = Vec::new();
        for product in adv.products.iter().flat_map(|l| &l.value.0) {
            if self.event_item(&subject, "a product id", product)
                && !products.contains(&product.value)
            {
                products.push(product.value.clone());
            }
        }
        let attribution = self.attribution(&subject, adv.attribution.as_ref());

        let scope = Scope {
            advertiser: &adv.id.value,
            audiences: raw
                .audiences
                .0
                .iter()
                .map(|a| a.value.id.value.as_str())
                .collect(),
            creatives: raw
                .creatives
                .0
                .iter()
                .rev()
                .fold(HashMap::new(), |mut m, c| {
                    // Folding in reverse lets the first of duplicated ids win,
                    // matching the place "already used at" points to.
                    m.insert(
                        c.value.id.value.as_str(),
                        Media::parse(&c.value.format.value),
                    );
                    m
                }),
        };

        let audiences = raw
            .audiences
            .0
            .iter()
            .filter_map(|a| self.audience(a, scope.advertiser))
            .collect();
        let creatives = raw
            .creatives
            .0
            .iter()
            .filter_map(|c| self.creative(c, &scope))
            .collect();
        let orders = raw
            .orders
            .0
            .iter()
            .filter_map(|o| self.order(o, &scope))
            .collect();

        Advertiser {
            id: adv.id.value.clone(),
            name: adv.name.value.clone(),
            // The root's final dot read away, as in sites: `badv` is
            // compared with these, and exchanges are sent them.
            domains: domains
                .iter()
                .map(|d| d.value.strip_suffix('.').unwrap_or(&d.value).to_owned())
                .collect(),
            categories: adv
                .categories
                .0
                .iter()
                .map(|c| c.value.to_ascii_uppercase())
                .collect(),
            products,
            attribution,
            audiences,
            creatives,
            orders,
            file: self.file.to_path_buf(),
        }
    }

    /// Windows of 1 to 90 days, 14 when not given.
    fn attribution(
        &mut self,
        subject: &str,
        raw: Option<&Spanned<crate::raw::RawAttribution>>,
    ) -> crate::model::Attribution {
        let default = crate::model::Attribution::default();
        let Some(raw) = raw else {
            return default;
        };
        let mut days = |key: &str, v: &Option<Int>, fallback: u32| match v {
            Some(v) => self
                .whole(subject, &format!("attribution {key}"), v, 1..=90)
                .unwrap_or(fallback),
            None => fallback,
        };
        crate::model::Attribution {
            click_days: days("click_days", &raw.value.click_days, default.click_days),
            view_days: days("view_days", &raw.value.view_days, default.view_days),
        }
    }

    // ---- audiences ----

    fn audience(&mut self, raw: &Spanned<RawAudience>, advertiser: &str) -> Option<Audience> {
        let a = &raw.value;
        let subject = format!("audience \"{}\"", a.id.value);
        self.id(&subject, &a.id);

        let kind = a.kind.value.as_str();
        let Some(&(_, list_key, optional_key)) = AUDIENCE_KINDS.iter().find(|(k, ..)| *k == kind)
        else {
            let kinds: Vec<&str> = AUDIENCE_KINDS.iter().map(|(k, ..)| *k).collect();
            self.report(
                a.kind.referenced,
                format!(
                    "{subject}: unknown kind \"{kind}\"; expected one of: {}",
                    kinds.join(", ")
                ),
            );
            return None;
        };

        let lists = [
            ("products", &a.products),
            ("interests", &a.interests),
            ("categories", &a.categories),
            ("sources", &a.sources),
        ];
        for (key, value) in &lists {
            if let Some(value) = value.as_ref().filter(|_| *key != list_key) {
                self.not_applicable(&subject, key, kind, "audience", value.referenced);
            }
        }
        let scalars = [
            ("lookback_days", &a.lookback_days),
            ("recency_days", &a.recency_days),
        ];
        for (key, value) in &scalars {
            if let Some(value) = value.as_ref().filter(|_| Some(*key) != optional_key) {
                self.not_applicable(&subject, key, kind, "audience", value.referenced);
            }
        }

        let list = lists
            .iter()
            .find(|(key, _)| *key == list_key)
            .and_then(|(_, value)| value.as_ref());
        let items = match list {
            Some(list) if !list.value.0.is_empty() => &list.value.0[..],
            other => {
                let at = other.map_or(raw.referenced, |l| l.referenced);
                self.report(
                    at,
                    format!("{subject}: {kind} audiences need a non-empty {list_key} list"),
                );
                &[]
            }
        };
        for item in items {
            let what = format!("an entry of {list_key}");
            let ok = match kind {
                "views" | "interests" | "products" => self.event_item(&subject, &what, item),
                _ => self.not_empty(&subject, &what, item),
            };
            if ok
                && kind == "categories"
                && crate::model::looks_iab1(&item.value)
                && !is_iab1(&item.value)
            {
                // Taken as a 1.0 code, a typo would match no page: the line
                // item would never bid, with nothing said.
                self.report(
                    item.referenced,
                    format!(
                        "{subject}: category \"{}\" is not an IAB 1.0 code, like IAB17 or \
                         IAB17-18",
                        item.value
                    ),
                );
            }
        }
        // 1.0 codes compare in any case (`iab17-18` is `IAB17-18`), as the
        // advertiser's own categories do.
        let items: Vec<String> = items
            .iter()
            .map(|t| match kind {
                "categories" if crate::model::looks_iab1(&t.value) => t.value.to_ascii_uppercase(),
                "interests" => crate::model::interest_topic(&t.value).into_owned(),
                _ => t.value.clone(),
            })
            .collect();

        let days = |this: &mut Self, key: &str, value: &Option<Int>, default: u32| match value {
            Some(v) => this.whole(&subject, key, v, DAYS_RANGE),
            None => Some(default),
        };
        let kind = match kind {
            "views" => AudienceKind::Views {
                own: items
                    .iter()
                    .map(|p| crate::model::advertiser_item(advertiser, p))
                    .collect(),
                products: items,
                lookback_days: days(self, "lookback_days", &a.lookback_days, LOOKBACK_DEFAULT)?,
            },
            "interests" => AudienceKind::Interests {
                interests: items,
                recency_days: days(self, "recency_days", &a.recency_days, RECENCY_DEFAULT)?,
            },
            "products" => AudienceKind::Products { products: items },
            "list" => AudienceKind::List {
                sources: self.list_sources(&subject, a.sources.as_ref())?,
                advertiser: advertiser.to_owned(),
            },
            _ => AudienceKind::Categories { categories: items },
        };
        Some(Audience {
            id: a.id.value.clone(),
            kind,
        })
    }

    /// A list's `sources`: each known or shaped like a `user.eids` source
    /// (a domain), each once.
    fn list_sources(
        &mut self,
        subject: &str,
        raw: Option<&Spanned<List<Text>>>,
    ) -> Option<Vec<ListSource>> {
        let mut out: Vec<ListSource> = Vec::new();
        let mut ok = true;
        for t in raw.map_or(&[][..], |l| &l.value.0[..]) {
            let name = t.value.trim();
            let source = match name {
                "buyeruid" => ListSource::BuyerUid,
                "sha256_email" => ListSource::Sha256Email,
                _ if is_eid_source(name) => ListSource::Eid(name.to_owned()),
                _ => {
                    if !name.is_empty() {
                        self.report(
                            t.referenced,
                            format!(
                                "{subject}: unknown source \"{name}\"; expected buyeruid, \
                                 sha256_email or a user.eids source in lower case, such as \
                                 uidapi.com, liveramp.com or id5-sync.com"
                            ),
                        );
                    }
                    ok = false;
                    continue;
                }
            };
            if out.contains(&source) {
                self.report(
                    t.referenced,
                    format!("{subject}: source \"{name}\" is listed twice"),
                );
                ok = false;
                continue;
            }
            out.push(source);
        }
        ok.then_some(out)
    }

    // ---- creatives ----

    fn creative(&mut self, raw: &Spanned<RawCreative>, scope: &Scope<'_>) -> Option<Creative> {
        let c = &raw.value;
        let subject = format!("creative \"{}\"", c.id.value);
        self.id(&subject, &c.id);
        self.url(&subject, "click_url", &c.click_url);

        let Some(media) = Media::parse(&c.format.value) else {
            self.report(
                c.format.referenced,
                format!(
                    "{subject}: unknown format \"{}\"; expected one of: display, video, audio, native",
                    c.format.value
                ),
            );
            return None;
        };
        let format = media.as_str();

        let companion_required = c.companion_required.as_ref().is_some_and(|b| b.value);
        let companions = self.companions(&subject, c, media, scope);
        if companion_required && c.companions.0.is_empty() {
            if let Some(flag) = &c.companion_required {
                self.report(
                    flag.referenced,
                    format!("{subject}: companion_required is true but it lists no companions"),
                );
            }
        }

        let attributes = self.attributes(&subject, c);
        let language = self.language(&subject, c);
        if media != Media::Native {
            let native_only = [
                ("title", c.title.as_ref().map(|t| t.referenced)),
                ("description", c.description.as_ref().map(|t| t.referenced)),
                (
                    "sponsored_by",
                    c.sponsored_by.as_ref().map(|t| t.referenced),
                ),
                ("image", c.image.as_ref().map(|t| t.referenced)),
                ("icon", c.icon.as_ref().map(|t| t.referenced)),
                ("cta", c.cta.as_ref().map(|t| t.referenced)),
                ("price", c.price.as_ref().map(|t| t.referenced)),
            ];
            for (key, at) in native_only {
                if let Some(at) = at {
                    self.not_applicable(&subject, key, format, "creative", at);
                }
            }
        }
        let kind = match media {
            Media::Native => self.native(&subject, c, raw.referenced)?,
            Media::Display => {
                if let Some(d) = &c.duration_s {
                    self.not_applicable(&subject, "duration_s", format, "creative", d.referenced);
                }
                if let Some(m) = &c.media {
                    self.not_applicable(&subject, "media", format, "creative", m.referenced);
                }
                let size = self.required(&subject, "size", format, &c.size, raw.referenced);
                let image =
                    self.required(&subject, "image_url", format, &c.image_url, raw.referenced);
                let size = size.and_then(|s| self.size(&subject, s));
                let image = image.filter(|i| self.url(&subject, "image_url", i));
                let ((w, h), image) = (size?, image?);
                CreativeKind::Display {
                    w,
                    h,
                    image_url: image.value.clone(),
                }
            }
            Media::Video | Media::Audio => {
                if let Some(s) = &c.size {
                    self.not_applicable(&subject, "size", format, "creative", s.referenced);
                }
                if let Some(i) = &c.image_url {
                    self.not_applicable(&subject, "image_url", format, "creative", i.referenced);
                }
                let duration = self.required(
                    &subject,
                    "duration_s",
                    format,
                    &c.duration_s,
                    raw.referenced,
                );
                let duration =
                    duration.and_then(|d| self.whole(&subject, "duration_s", d, DURATION_S));
                let files = match &c.media {
                    Some(list) if !list.value.0.is_empty() => &list.value.0[..],
                    other => {
                        let at = other.as_ref().map_or(raw.referenced, |l| l.referenced);
                        self.report(
                            at,
                            format!("{subject}: a {format} creative needs at least one media file"),
                        );
                        &[]
                    }
                };
                let media_files: Vec<Option<MediaFile>> = files
                    .iter()
                    .map(|f| self.media_file(&subject, media, f))
                    .collect();
                let media_files: Option<Vec<MediaFile>> = media_files.into_iter().collect();
                let (duration_s, media_files) = (duration?, media_files?);
                if media == Media::Video {
                    CreativeKind::Video {
                        duration_s,
                        media: media_files,
                    }
                } else {
                    CreativeKind::Audio {
                        duration_s,
                        media: media_files,
                    }
                }
            }
        };
        Some(Creative {
            id: c.id.value.clone(),
            at: at(raw.referenced),
            kind,
            click_url: c.click_url.value.clone(),
            companions,
            companion_required,
            attributes: attributes?,
            language: language?,
        })
    }

    fn companions(
        &mut self,
        subject: &str,
        c: &RawCreative,
        media: Media,
        scope: &Scope<'_>,
    ) -> Vec<String> {
        if matches!(media, Media::Display | Media::Native) {
            if let Some(first) = c.companions.0.first() {
                self.report(
                    first.referenced,
                    format!(
                        "{subject}: only video and audio creatives have companions; \
                         this one is {media}"
                    ),
                );
            }
            if let Some(flag) = c.companion_required.as_ref().filter(|f| f.value) {
                self.report(
                    flag.referenced,
                    format!(
                        "{subject}: companion_required only applies to video and audio creatives"
                    ),
                );
            }
        }
        for companion in &c.companions.0 {
            match scope.creatives.get(companion.value.as_str()) {
                None => {
                    let message = self.unresolved(
                        "creative",
                        &companion.value,
                        scope,
                        scope.creatives.keys().copied(),
                        &self.ids.creative_owner,
                    );
                    self.report(
                        companion.referenced,
                        format!("{subject}: companion {message}"),
                    );
                }
                Some(Some(m)) if *m != Media::Display => self.report(
                    companion.referenced,
                    format!(
                        "{subject}: companion \"{}\" is {m}; companions must be display creatives",
                        companion.value
                    ),
                ),
                Some(_) => {}
            }
        }
        strings(&c.companions)
    }

    fn media_file(
        &mut self,
        subject: &str,
        media: Media,
        raw: &Spanned<RawMediaFile>,
    ) -> Option<MediaFile> {
        let f = &raw.value;
        let url_ok = self.url(subject, "media url", &f.url);
        let mime_ok = self.mime(subject, media, &f.mime);
        let mut ok = url_ok && mime_ok;
        let mut dimension = |this: &mut Self, key: &str, value: &Option<Int>| -> Option<u32> {
            let v = value.as_ref()?;
            if media == Media::Audio {
                this.report(
                    v.referenced,
                    format!("{subject}: {key} does not apply to audio media"),
                );
                ok = false;
                return None;
            }
            let n = this.whole(subject, key, v, POSITIVE);
            ok &= n.is_some();
            n
        };
        let width = dimension(self, "width", &f.width);
        let height = dimension(self, "height", &f.height);
        if media == Media::Video && (f.width.is_none() || f.height.is_none()) {
            self.report(
                raw.referenced,
                format!(
                    "{subject}: video media file {} needs both width and height",
                    f.url.value
                ),
            );
            ok = false;
        }
        let bitrate_kbps = match &f.bitrate_kbps {
            Some(b) => {
                let n = self.whole(subject, "bitrate_kbps", b, POSITIVE);
                ok &= n.is_some();
                n
            }
            None => None,
        };
        ok.then(|| MediaFile {
            url: f.url.value.clone(),
            mime: f.mime.value.clone(),
            width,
            height,
            bitrate_kbps,
        })
    }

    fn size(&mut self, subject: &str, size: &Text) -> Option<(u32, u32)> {
        let parsed = size.value.split_once('x').and_then(|(w, h)| {
            let dim = |s: &str| {
                s.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| s.parse::<u32>().ok())
                    .flatten()
                    .filter(|n| *n > 0)
            };
            Some((dim(w)?, dim(h)?))
        });
        if parsed.is_none() {
            self.report(
                size.referenced,
                format!(
                    "{subject}: size \"{}\" must be WIDTHxHEIGHT in pixels, both above 0, like 300x250",
                    size.value
                ),
            );
        }
        parsed
    }

    // ---- orders and line items ----

    fn order(&mut self, raw: &Spanned<RawOrder>, scope: &Scope<'_>) -> Option<Order> {
        let o = &raw.value;
        let subject = format!("order \"{}\"", o.id.value);
        self.id(&subject, &o.id);

        let service = Service::parse(&o.service.value);
        if service.is_none() {
            self.report(
                o.service.referenced,
                format!(
                    "{subject}: unknown service \"{}\"; expected self_service or managed",
                    o.service.value
                ),
            );
        }

        let budget = self.money(&subject, "budget", &o.budget);
        let budget = budget.filter(|b| {
            let ok = b.as_i64() > 0;
            if !ok {
                self.report(
                    o.budget.referenced,
                    format!(
                        "{subject}: budget must be more than 0 (it is {})",
                        b.grouped()
                    ),
                );
            }
            ok
        });

        let flight = self.flight(&subject, &o.flight.value);

        let raw_items = match &o.line_items {
            Some(list) if !list.value.0.is_empty() => &list.value.0[..],
            other => {
                let at = other.as_ref().map_or(raw.referenced, |l| l.referenced);
                self.report(at, format!("{subject}: has no line items"));
                &[]
            }
        };
        let items: Vec<Option<LineItem>> = raw_items
            .iter()
            .map(|item| self.line_item(item, budget, scope))
            .collect();

        if let (Some(Service::Managed), Some(budget)) = (service, budget) {
            self.managed_minimum(&subject, raw_items, budget, o.budget.referenced);
        }

        Some(Order {
            id: o.id.value.clone(),
            at: at(raw.referenced),
            budget_at: at(o.budget.referenced),
            service: service?,
            budget: budget?,
            flight: flight?,
            line_items: items.into_iter().collect::<Option<Vec<_>>>()?,
        })
    }

    fn managed_minimum(
        &mut self,
        subject: &str,
        items: &[Spanned<RawLineItem>],
        budget: Micros,
        at: Location,
    ) {
        let media: Vec<Option<Media>> = items
            .iter()
            .map(|i| Media::parse(&i.value.media.value))
            .collect();
        let visual = media
            .iter()
            // Native ads are display ads laid out by the publisher.
            .any(|m| matches!(m, Some(Media::Display | Media::Video | Media::Native)));
        let audio_only = !media.is_empty() && media.iter().all(|m| *m == Some(Media::Audio));
        // With unknown media (already reported) and no visual line item the
        // applicable minimum is unknowable; saying nothing beats guessing.
        let (minimum, what) = if visual {
            (MANAGED_MINIMUM, "with display, native or video line items")
        } else if audio_only {
            (MANAGED_AUDIO_ONLY_MINIMUM, "buying only audio")
        } else {
            return;
        };
        if budget < minimum {
            self.report(
                at,
                format!(
                    "{subject}: a managed-service order {what} needs a total budget of at least \
                     {} (it has {})",
                    minimum.grouped(),
                    budget.grouped()
                ),
            );
        }
    }

    fn flight(&mut self, subject: &str, f: &crate::raw::RawFlight) -> Option<Flight> {
        let date = |this: &mut Self, key: &str, text: &Text| match Date::parse(&text.value) {
            // A year typed short (0026 for 2026) is no flight anyone
            // meant. A far end (9999-12-31) is how "no end" is written.
            Ok(d) if d.year() < FIRST_FLIGHT_YEAR => {
                this.report(
                    text.referenced,
                    format!("{subject}: flight {key} {d} is before the year {FIRST_FLIGHT_YEAR}"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                this.report(text.referenced, format!("{subject}: flight {key} {e}"));
                None
            }
        };
        let start = date(self, "start", &f.start);
        let end = date(self, "end", &f.end);
        let (start, end) = (start?, end?);
        if end < start {
            self.report(
                f.end.referenced,
                format!("{subject}: the flight ends on {end}, before it starts on {start}"),
            );
            return None;
        }
        Some(Flight { start, end })
    }

    fn line_item(
        &mut self,
        raw: &Spanned<RawLineItem>,
        order_budget: Option<Micros>,
        scope: &Scope<'_>,
    ) -> Option<LineItem> {
        let l = &raw.value;
        let subject = format!("line item \"{}\"", l.id.value);
        self.id(&subject, &l.id);

        let media = Media::parse(&l.media.value);
        if media.is_none() {
            self.report(
                l.media.referenced,
                format!(
                    "{subject}: unknown media \"{}\"; expected one of: display, video, audio, native",
                    l.media.value
                ),
            );
        }

        let (cpm, bidding) = self.bidding(&subject, l, raw.referenced);
        let shading = l.shading.as_ref().is_none_or(|s| s.value);
        let budget = self.line_item_budget(&subject, &l.budget, order_budget);

        let frequency_cap = match &l.frequency_cap {
            Some(cap) => {
                let impressions = self.whole(
                    &subject,
                    "frequency_cap impressions",
                    &cap.value.impressions,
                    POSITIVE,
                );
                let per_hours = self.whole(
                    &subject,
                    "frequency_cap per_hours",
                    &cap.value.per_hours,
                    CAP_HOURS,
                );
                // Not `?`: the rest of the line item must still be checked.
                Some(
                    impressions
                        .zip(per_hours)
                        .map(|(impressions, per_hours)| FrequencyCap {
                            impressions,
                            per_hours,
                        }),
                )
            }
            None => None,
        };

        let audiences =
            l.audiences.0.as_ref().map(|rule| {
                self.audience_rule(&subject, rule.value.as_ref(), rule.referenced, scope)
            });
        let targeting = match &l.targeting {
            Some(t) => self.targeting(&subject, &t.value, media),
            None => Some(Targeting::default()),
        };
        let creatives = self.line_item_creatives(&subject, l, raw.referenced, media, scope);

        Some(LineItem {
            id: l.id.value.clone(),
            at: at(raw.referenced),
            budget_at: at(l
                .budget
                .value
                .daily
                .as_ref()
                .or(l.budget.value.lifetime.as_ref())
                .map_or(l.budget.referenced, |m| m.referenced)),
            media: media?,
            cpm: cpm?,
            bidding: bidding?,
            shading,
            budget: budget?,
            frequency_cap: match frequency_cap {
                Some(cap) => Some(cap?),
                None => None,
            },
            audiences: match audiences {
                Some(rule) => Some(rule?),
                None => None,
            },
            targeting: targeting?,
            creatives,
        })
    }

    /// The line item's bid or ceiling and its strategy: `cpm` for
    /// fixed_cpm; a goal (and an optional `max_cpm`) for the others.
    #[allow(clippy::type_complexity)]
    fn bidding(
        &mut self,
        subject: &str,
        l: &RawLineItem,
        at: Location,
    ) -> (Option<Micros>, Option<Bidding>) {
        let positive = |this: &mut Self, what: &str, m: &Money| {
            this.money(subject, what, m).filter(|v| {
                let ok = v.as_i64() > 0;
                if !ok {
                    this.report(
                        m.referenced,
                        format!("{subject}: {what} must be more than 0 (it is {v})"),
                    );
                }
                ok
            })
        };
        let Some(b) = &l.bidding else {
            let Some(cpm) = &l.cpm else {
                self.report(
                    at,
                    format!(
                        "{subject}: a cpm is required (or a bidding strategy with a goal, \
                         like bidding: {{ strategy: max_cpc, max_cpc: 1.20 }})"
                    ),
                );
                return (None, None);
            };
            return (positive(self, "cpm", cpm), Some(Bidding::FixedCpm));
        };
        let strategy = b.value.strategy.value.as_str();
        let goal_key = match strategy {
            "fixed_cpm" => None,
            "max_cpc" => Some("max_cpc"),
            "target_cpa" => Some("target_cpa"),
            other => {
                self.report(
                    b.value.strategy.referenced,
                    format!(
                        "{subject}: unknown bidding strategy \"{other}\"; expected one of: {}",
                        STRATEGIES.join(", ")
                    ),
                );
                return (None, None);
            }
        };
        // Keys that do not belong to the strategy are mistakes, not
        // defaults: a max_cpc left on a fixed_cpm line item would mislead.
        for (key, value) in [
            ("max_cpc", &b.value.max_cpc),
            ("target_cpa", &b.value.target_cpa),
        ] {
            if let Some(v) = value.as_ref().filter(|_| Some(key) != goal_key) {
                self.not_applicable(subject, key, strategy, "bidding strategy", v.referenced);
            }
        }
        let Some(goal_key) = goal_key else {
            if let Some(v) = &b.value.max_cpm {
                self.not_applicable(
                    subject,
                    "max_cpm",
                    strategy,
                    "bidding strategy",
                    v.referenced,
                );
            }
            let Some(cpm) = &l.cpm else {
                self.report(
                    b.referenced,
                    format!("{subject}: fixed_cpm bidding needs a cpm"),
                );
                return (None, None);
            };
            return (positive(self, "cpm", cpm), Some(Bidding::FixedCpm));
        };
        if let Some(cpm) = &l.cpm {
            self.report(
                cpm.referenced,
                format!(
                    "{subject}: cpm is for fixed_cpm bidding; a {strategy} line item \
                     takes bidding.max_cpm as its ceiling"
                ),
            );
        }
        let goal_raw = match goal_key {
            "max_cpc" => &b.value.max_cpc,
            _ => &b.value.target_cpa,
        };
        let Some(goal_raw) = goal_raw else {
            self.report(
                b.referenced,
                format!("{subject}: {strategy} bidding needs {goal_key}"),
            );
            return (None, None);
        };
        let goal = positive(self, goal_key, goal_raw);
        let max_cpm = b
            .value
            .max_cpm
            .as_ref()
            .map(|m| positive(self, "max_cpm", m));
        let bidding = goal.map(|g| match goal_key {
            "max_cpc" => Bidding::MaxCpc { max_cpc: g },
            _ => Bidding::TargetCpa { target_cpa: g },
        });
        // Without a ceiling, the most an impression can be worth: a
        // certain click or conversion, × 1000 per thousand.
        let ceiling = match max_cpm {
            Some(m) => m,
            None => goal.and_then(|g| g.as_i64().checked_mul(1000)).map(Micros),
        };
        if goal.is_some() && max_cpm.is_none() && ceiling.is_none() {
            self.report(
                goal_raw.referenced,
                format!("{subject}: {goal_key} is too large"),
            );
        }
        (ceiling, bidding)
    }

    fn line_item_budget(
        &mut self,
        subject: &str,
        raw: &Spanned<RawBudget>,
        order_budget: Option<Micros>,
    ) -> Option<Budget> {
        let (kind, amount) = match (&raw.value.daily, &raw.value.lifetime) {
            (Some(daily), None) => ("daily", daily),
            (None, Some(lifetime)) => ("lifetime", lifetime),
            _ => {
                self.report(
                    raw.referenced,
                    format!(
                        "{subject}: budget needs exactly one of daily or lifetime, \
                         like {{ daily: 800.00 }}"
                    ),
                );
                return None;
            }
        };
        let value = self.money(subject, &format!("{kind} budget"), amount)?;
        let mut ok = true;
        if kind == "daily" && value < MINIMUM_DAILY_BUDGET {
            self.report(
                amount.referenced,
                format!(
                    "{subject}: a daily budget must be at least {} (it is {})",
                    MINIMUM_DAILY_BUDGET.grouped(),
                    value.grouped()
                ),
            );
            ok = false;
        } else if value.as_i64() <= 0 {
            self.report(
                amount.referenced,
                format!(
                    "{subject}: the lifetime budget must be more than 0 (it is {})",
                    value.grouped()
                ),
            );
            ok = false;
        }
        if let Some(order_budget) = order_budget.filter(|b| value > *b) {
            self.report(
                amount.referenced,
                format!(
                    "{subject}: its {kind} budget {} is more than its order's total budget {}",
                    value.grouped(),
                    order_budget.grouped()
                ),
            );
            ok = false;
        }
        ok.then_some(if kind == "daily" {
            Budget::Daily(value)
        } else {
            Budget::Lifetime(value)
        })
    }

    fn audience_rule(
        &mut self,
        subject: &str,
        rule: Option<&crate::raw::RawAudienceRule>,
        at: Location,
        scope: &Scope<'_>,
    ) -> Option<AudienceRule> {
        let names_none = rule.is_none_or(|r| r.any_of.0.is_empty() && r.none_of.0.is_empty());
        let Some(r) = rule.filter(|_| !names_none) else {
            self.report(
                at,
                format!(
                    "{subject}: audiences names no audience; list some in any_of or none_of, \
                     or remove audiences to bid on every user"
                ),
            );
            return None;
        };
        let mut ok = true;
        for reference in r.any_of.0.iter().chain(&r.none_of.0) {
            if !scope.audiences.contains(&reference.value.as_str()) {
                let message = self.unresolved(
                    "audience",
                    &reference.value,
                    scope,
                    scope.audiences.iter().copied(),
                    &self.ids.audience_owner,
                );
                self.report(reference.referenced, format!("{subject}: {message}"));
                ok = false;
            }
        }
        let any_of: HashSet<&str> = r.any_of.0.iter().map(|a| a.value.as_str()).collect();
        for excluded in &r.none_of.0 {
            if any_of.contains(excluded.value.as_str()) {
                self.report(
                    excluded.referenced,
                    format!(
                        "{subject}: audience \"{}\" is in both any_of and none_of",
                        excluded.value
                    ),
                );
                ok = false;
            }
        }
        ok.then(|| AudienceRule {
            any_of: strings(&r.any_of),
            none_of: strings(&r.none_of),
        })
    }

    /// `media` is `None` when the line item's media is itself invalid
    /// (already reported); the checks that depend on it are then skipped.
    fn targeting(
        &mut self,
        subject: &str,
        t: &RawTargeting,
        media: Option<Media>,
    ) -> Option<Targeting> {
        // `deals: []` (or `deals:` with nothing after it) would read as "no
        // deal": a line item meant for a private marketplace would buy on
        // the open market. The other lists written empty restrict nothing,
        // as documented, and configs rely on it.
        let mut ok = true;
        if let Some(l) = t.deals.0.as_ref().filter(|l| l.value.0.is_empty()) {
            self.report(
                l.referenced,
                format!(
                    "{subject}: deals lists nothing, which would take this line item to the open \
                     market; list its deal ids or remove deals"
                ),
            );
            ok = false;
        }
        let deals: &[Text] = t.deals.0.as_ref().map_or(&[], |l| &l.value.0);
        let mut countries_ok = true;
        for country in &t.countries.0 {
            countries_ok &= self.country(subject, country);
        }
        ok &= countries_ok;
        // Regions are held against the countries only when every country is
        // valid, so that one mistake is not reported twice.
        let countries: Option<Vec<&str>> = (countries_ok && !t.countries.0.is_empty())
            .then(|| t.countries.0.iter().map(|c| c.value.as_str()).collect());
        for region in &t.regions.0 {
            ok &= self.region(subject, region, countries.as_deref());
        }
        for city in &t.cities.0 {
            ok &= self.not_empty(subject, "a city", city);
        }
        let mut os = Vec::with_capacity(t.os.0.len());
        for name in &t.os.0 {
            match Os::parse(&name.value) {
                Some(o) => os.push(o),
                None => {
                    self.unknown_os(subject, name);
                    ok = false;
                }
            }
        }
        let mut lists = [
            (ListKind::Sites, &t.sites, AllowBlock::default()),
            (ListKind::Apps, &t.apps, AllowBlock::default()),
            (ListKind::Publishers, &t.publishers, AllowBlock::default()),
        ];
        for (kind, raw, list) in &mut lists {
            if let Some(raw) = raw {
                match self.allow_block(subject, *kind, raw) {
                    Some(checked) => *list = checked,
                    None => ok = false,
                }
            }
        }
        let [(_, _, sites), (_, _, apps), (_, _, publishers)] = lists;
        let dayparts = match &t.dayparts {
            Some(d) => {
                let dayparts = self.dayparts(subject, d);
                ok &= dayparts.is_some();
                dayparts
            }
            None => None,
        };
        let mut devices = Vec::with_capacity(t.devices.0.len());
        for device in &t.devices.0 {
            match Device::parse(&device.value) {
                Some(d) => devices.push(d),
                None => {
                    let names: Vec<&str> = Device::ALL.iter().map(|d| d.as_str()).collect();
                    self.report(
                        device.referenced,
                        format!(
                            "{subject}: unknown device \"{}\"; expected one of: {}",
                            device.value,
                            names.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        let keywords = match &t.keywords {
            Some(k) => {
                let keywords = self.keywords(subject, k);
                ok &= keywords.is_some();
                keywords
            }
            None => None,
        };
        for deal in deals {
            ok &= self.not_empty(subject, "a deal id", deal);
        }
        let placements = match &t.placements {
            Some(list) => {
                let placements = self.placements(subject, list, media);
                ok &= placements.is_some();
                placements.unwrap_or_default()
            }
            None => Vec::new(),
        };
        ok.then(|| Targeting {
            countries: strings(&t.countries),
            devices,
            keywords,
            deals: texts(deals),
            regions: strings(&t.regions),
            cities: strings(&t.cities),
            os,
            sites,
            apps,
            publishers,
            dayparts,
            placements,
        })
    }

    /// Video and audio placement kinds. On a display line item the key
    /// itself is the mistake, so its values are not checked as well.
    fn placements(
        &mut self,
        subject: &str,
        raw: &Spanned<List<Text>>,
        media: Option<Media>,
    ) -> Option<Vec<Placement>> {
        if media == Some(Media::Display) {
            self.report(
                raw.referenced,
                format!(
                    "{subject}: placements apply to video and audio line items; this one is \
                     display"
                ),
            );
            return None;
        }
        let mut placements = Vec::with_capacity(raw.value.0.len());
        let mut ok = true;
        for name in &raw.value.0 {
            match Placement::parse(&name.value) {
                Some(p) => placements.push(p),
                None => {
                    self.unknown_placement(subject, name);
                    ok = false;
                }
            }
        }
        ok.then_some(placements)
    }

    fn unknown_placement(&mut self, subject: &str, name: &Text) {
        let names: Vec<&str> = Placement::ALL.iter().map(|p| p.as_str()).collect();
        // "in-stream", "Out Stream": the placement meant is plain enough to name.
        let squashed: String = name
            .value
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect::<String>()
            .to_ascii_lowercase();
        let lower = name.value.trim().to_ascii_lowercase();
        let hint = if let Some(p) = Placement::parse(&squashed) {
            format!(" (did you mean \"{p}\"?)")
        } else if let Some(d) = Device::parse(&lower) {
            // "ctv" is the screen the ad plays on, not how it is placed.
            format!(" ({d} is a device, not a placement; target it with devices: [{d}])")
        } else {
            String::new()
        };
        self.report(
            name.referenced,
            format!(
                "{subject}: unknown placement \"{}\"{hint}; expected one of: {}",
                name.value,
                names.join(", ")
            ),
        );
    }

    /// An ISO 3166-2 code such as `US-CO`, in one of the targeted countries.
    fn region(&mut self, subject: &str, region: &Text, countries: Option<&[&str]>) -> bool {
        let r = region.value.as_str();
        let Some((country, subdivision)) = r.split_once('-').filter(|(c, s)| {
            c.len() == 2
                && c.bytes().all(|b| b.is_ascii_uppercase())
                && (1..=3).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        }) else {
            let hint = region_hint(r, countries);
            self.report(
                region.referenced,
                format!(
                    "{subject}: region \"{r}\" is not an ISO-3166-2 subdivision code like US-CO{hint}"
                ),
            );
            return false;
        };
        if countries::alpha3_for_alpha2(country).is_none() {
            let hint = countries::suggest(country)
                .and_then(country_alpha2)
                .map(|a2| format!(" (did you mean \"{a2}-{subdivision}\"?)"))
                .unwrap_or_default();
            self.report(
                region.referenced,
                format!(
                    "{subject}: region \"{r}\" does not start with an ISO-3166-1 alpha-2 \
                     country code{hint}"
                ),
            );
            return false;
        }
        if let Some(known) = countries::subdivisions(country) {
            if known.binary_search(&subdivision).is_err() {
                self.report(
                    region.referenced,
                    format!(
                        "{subject}: region \"{r}\" is not a subdivision of {country}; \
                         expected one of: {}",
                        known
                            .iter()
                            .map(|s| format!("{country}-{s}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                return false;
            }
        }
        if let Some(countries) = countries {
            if !countries.iter().any(|c| country_alpha2(c) == Some(country)) {
                self.report(
                    region.referenced,
                    format!(
                        "{subject}: region {r} is in {country}, but the line item only targets {}",
                        countries.join(", ")
                    ),
                );
                return false;
            }
        }
        true
    }

    fn unknown_os(&mut self, subject: &str, name: &Text) {
        let names: Vec<&str> = Os::ALL.iter().map(|o| o.as_str()).collect();
        // "iOS" or "Mac OS X": what a device would send, so say which name it is.
        let hint = Os::ALL
            .into_iter()
            .find(|o| o.matches(&name.value))
            .map(|o| format!(" (did you mean \"{o}\"?)"))
            .unwrap_or_default();
        self.report(
            name.referenced,
            format!(
                "{subject}: unknown os \"{}\"{hint}; expected one of: {}",
                name.value,
                names.join(", ")
            ),
        );
    }

    fn allow_block(
        &mut self,
        subject: &str,
        kind: ListKind,
        raw: &Spanned<RawAllowBlock>,
    ) -> Option<AllowBlock> {
        let r = &raw.value;
        let key = kind.key();
        if r.allow.0.is_empty() && r.block.0.is_empty() {
            self.report(
                raw.referenced,
                format!(
                    "{subject}: {key} lists nothing to allow or block; add some or remove {key}"
                ),
            );
            return None;
        }
        let mut ok = true;
        for entry in r.allow.0.iter().chain(&r.block.0) {
            ok &= match kind {
                ListKind::Sites => self.domain(subject, "site", "news.example", entry),
                ListKind::Apps => self.app(subject, entry),
                ListKind::Publishers => self.not_empty(subject, "a publisher id", entry),
            };
        }
        for blocked in &r.block.0 {
            let b = blocked.value.as_str();
            let same = |allowed: &Text| match kind {
                // Domain names are case-insensitive; ids are not.
                ListKind::Sites => site_host(&allowed.value).eq_ignore_ascii_case(site_host(b)),
                ListKind::Apps | ListKind::Publishers => allowed.value == b,
            };
            if !b.trim().is_empty() && r.allow.0.iter().any(same) {
                self.report(
                    blocked.referenced,
                    format!(
                        "{subject}: {} \"{b}\" is in both allow and block of {key}",
                        kind.noun()
                    ),
                );
                ok = false;
            }
        }
        let entries = |list: &List<Text>| -> Vec<String> {
            match kind {
                ListKind::Sites => list
                    .0
                    .iter()
                    .map(|t| site_host(&t.value).to_owned())
                    .collect(),
                ListKind::Apps | ListKind::Publishers => strings(list),
            }
        };
        ok.then(|| AllowBlock {
            allow: entries(&r.allow),
            block: entries(&r.block),
        })
    }

    /// A bundle (com.example.app) or store id (123456789).
    fn app(&mut self, subject: &str, app: &Text) -> bool {
        if !self.not_empty(subject, "an app", app) {
            return false;
        }
        let ok = !app
            .value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            self.report(
                app.referenced,
                format!(
                    "{subject}: app \"{}\" cannot contain spaces; write its bundle or store id, \
                     like com.example.app or 123456789",
                    app.value
                ),
            );
        }
        ok
    }

    fn dayparts(&mut self, subject: &str, raw: &Spanned<RawDayparts>) -> Option<Dayparts> {
        let d = &raw.value;
        let timezone = match &d.timezone {
            None => Some(DaypartZone::User),
            Some(zone) => match DaypartZone::parse(&zone.value) {
                Some(z) => Some(z),
                None => {
                    let other = &zone.value;
                    let lower = other.trim().to_ascii_lowercase();
                    let hint = DaypartZone::ALL
                        .into_iter()
                        .map(DaypartZone::as_str)
                        .find(|z| *z == lower)
                        .map(|z| format!(" (did you mean \"{z}\"?)"))
                        .unwrap_or_default();
                    self.report(
                        zone.referenced,
                        format!(
                            "{subject}: unknown dayparts timezone \"{other}\"{hint}; expected user \
                             (the device's local time) or utc"
                        ),
                    );
                    None
                }
            },
        };
        let raw_slots = match &d.slots {
            Some(list) if !list.value.0.is_empty() => &list.value.0[..],
            other => {
                let at = other.as_ref().map_or(raw.referenced, |l| l.referenced);
                self.report(
                    at,
                    format!(
                        "{subject}: dayparts lists no slots; add some, like \
                         {{ days: [mon], from: \"07:00\", to: \"09:30\" }}, or remove dayparts"
                    ),
                );
                return None;
            }
        };
        let slots: Vec<Option<DaypartSlot>> =
            raw_slots.iter().map(|s| self.slot(subject, s)).collect();
        let slots: Option<Vec<DaypartSlot>> = slots.into_iter().collect();
        Some(Dayparts {
            timezone: timezone?,
            slots: slots?,
        })
    }

    fn slot(&mut self, subject: &str, raw: &Spanned<RawDaypartSlot>) -> Option<DaypartSlot> {
        let s = &raw.value;
        let mut ok = true;
        let raw_days = match &s.days {
            Some(list) if !list.value.0.is_empty() => &list.value.0[..],
            other => {
                let at = other.as_ref().map_or(raw.referenced, |l| l.referenced);
                self.report(
                    at,
                    format!("{subject}: a daypart slot lists no days; add some, like [mon, tue]"),
                );
                ok = false;
                &[]
            }
        };
        let mut days = Vec::with_capacity(raw_days.len());
        for day in raw_days {
            match Weekday::parse(&day.value) {
                Some(d) => days.push(d),
                None => {
                    let names: Vec<&str> = Weekday::ALL.iter().map(|d| d.as_str()).collect();
                    // "Monday", "Tue", "thurs": the day meant is plain enough to name.
                    let lower = day.value.trim().to_ascii_lowercase();
                    let hint = Weekday::ALL
                        .into_iter()
                        .find(|d| lower.len() >= 3 && d.full_name().starts_with(&lower))
                        .map(|d| format!(" (did you mean \"{d}\"?)"))
                        .unwrap_or_default();
                    self.report(
                        day.referenced,
                        format!(
                            "{subject}: unknown day \"{}\"{hint}; expected one of: {}",
                            day.value,
                            names.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        let from = self.time_of_day(subject, "from", &s.from);
        let to = self.time_of_day(subject, "to", &s.to);
        let (from, to) = (from?, to?);
        if from >= to {
            let (f, t) = (&s.from.value, &s.to.value);
            let message = if from == to {
                format!(
                    "{subject}: the daypart slot from {f} to {t} is empty; to must be after from"
                )
            } else {
                format!(
                    "{subject}: the daypart slot from {f} to {t} ends before it starts; a slot \
                     cannot cross midnight, so split it in two: one to 24:00 and one from 00:00"
                )
            };
            self.report(s.to.referenced, message);
            return None;
        }
        ok.then_some(DaypartSlot {
            days,
            from_minute: from,
            to_minute: to,
        })
    }

    /// `HH:MM` as minutes after midnight; `24:00` (1440) only as a slot's end.
    fn time_of_day(&mut self, subject: &str, key: &str, text: &Text) -> Option<u16> {
        let t = text.value.as_str();
        let two = |s: &str| {
            (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u16>().ok())
                .flatten()
        };
        let parsed = (t.len() == 5 && t.as_bytes()[2] == b':')
            .then(|| Some((two(&t[..2])?, two(&t[3..])?)))
            .flatten();
        let problem = match parsed {
            None => "is not a time written as HH:MM, like 07:00".to_owned(),
            Some((_, m)) if m >= 60 => format!("has minute {m}; minutes go from 00 to 59"),
            Some((24, 0)) if key == "to" => return Some(24 * 60),
            Some((24, 0)) => {
                "is the end of the day; 24:00 can only end a slot, use 00:00 to start one"
                    .to_owned()
            }
            Some((h, _)) if h >= 24 => {
                format!("has hour {h}; hours go from 00 to 23 (and 24:00 may end a slot)")
            }
            Some((h, m)) => return Some(h * 60 + m),
        };
        self.report(
            text.referenced,
            format!("{subject}: daypart {key} \"{t}\" {problem}"),
        );
        None
    }

    fn keywords(&mut self, subject: &str, raw: &Spanned<RawKeywords>) -> Option<Keywords> {
        let k = &raw.value;
        let lists = [
            ("broad", &k.broad),
            ("phrase", &k.phrase),
            ("exact", &k.exact),
            ("negative", &k.negative),
        ];
        if lists.iter().all(|(_, l)| l.0.is_empty()) {
            self.report(
                raw.referenced,
                format!("{subject}: keywords lists no keyword; add some or remove keywords"),
            );
            return None;
        }
        let mut ok = true;
        for (name, list) in lists {
            for keyword in &list.0 {
                ok &= self.not_empty(subject, &format!("a {name} keyword"), keyword);
            }
        }
        ok.then(|| Keywords {
            broad: strings(&k.broad),
            phrase: strings(&k.phrase),
            exact: strings(&k.exact),
            negative: strings(&k.negative),
        })
    }

    fn line_item_creatives(
        &mut self,
        subject: &str,
        l: &RawLineItem,
        item_at: Location,
        media: Option<Media>,
        scope: &Scope<'_>,
    ) -> Vec<String> {
        let refs = match &l.creatives {
            Some(list) if !list.value.0.is_empty() => &list.value.0[..],
            other => {
                let at = other.as_ref().map_or(item_at, |l| l.referenced);
                self.report(
                    at,
                    format!("{subject}: has no creatives; it needs at least one to bid"),
                );
                &[]
            }
        };
        for reference in refs {
            match scope.creatives.get(reference.value.as_str()) {
                None => {
                    let message = self.unresolved(
                        "creative",
                        &reference.value,
                        scope,
                        scope.creatives.keys().copied(),
                        &self.ids.creative_owner,
                    );
                    self.report(reference.referenced, format!("{subject}: {message}"));
                }
                Some(Some(format)) => {
                    if let Some(buys) = media.filter(|m| m != format) {
                        self.report(
                            reference.referenced,
                            format!(
                                "{subject}: creative \"{}\" is {format} but the line item buys {buys}",
                                reference.value
                            ),
                        );
                    }
                }
                Some(None) => {}
            }
        }
        refs.iter().map(|r| r.value.clone()).collect()
    }

    // ---- shared checks ----

    /// Ids end up in logs, metrics labels, reports and bid responses, and
    /// ride in every notice URL: a space or an empty id there is always a
    /// mistake, an invisible character (a bidi override, a zero-width
    /// space) shows one id as another on the report page, and a long one
    /// makes notice URLs exchanges refuse (the win is never charged).
    fn id(&mut self, subject: &str, id: &Text) {
        if id.value.trim().is_empty() {
            self.report(id.referenced, format!("{subject}: the id is empty"));
        } else if id
            .value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            self.report(
                id.referenced,
                format!("{subject}: ids cannot contain spaces; use dashes, like tent-ctv-video"),
            );
        } else if let Some(c) = id.value.chars().find(|&c| is_invisible(c)) {
            self.report(
                id.referenced,
                format!(
                    "{subject}: the id holds the invisible character U+{:04X}, which shows \
                     it as another id; type it again",
                    u32::from(c)
                ),
            );
        } else if id.value.len() > MAX_ID_BYTES {
            self.report(
                id.referenced,
                format!(
                    "{subject}: the id is {} bytes long, over {MAX_ID_BYTES}: ids ride in every \
                     notice URL",
                    id.value.len()
                ),
            );
        }
    }

    fn not_empty(&mut self, subject: &str, what: &str, text: &Text) -> bool {
        let ok = !text.value.trim().is_empty();
        if !ok {
            self.report(text.referenced, format!("{subject}: {what} is empty"));
        }
        ok
    }

    /// A product or topic as audience events name them: not empty, at most
    /// [`crate::model::MAX_ITEM_BYTES`], no control character. Events
    /// outside these are refused, so such an id would never match; and one
    /// with the separator of an advertiser's own events
    /// ([`crate::model::advertiser_item`]) read another advertiser's
    /// (review finding).
    fn event_item(&mut self, subject: &str, what: &str, text: &Text) -> bool {
        if !self.not_empty(subject, what, text) {
            return false;
        }
        let max = crate::model::MAX_ITEM_BYTES;
        let problem = if text.value.len() > max {
            format!("{subject}: {what} is longer than {max} bytes")
        } else if text.value.bytes().any(|b| b < 0x20) {
            format!("{subject}: {what} has a control character")
        } else {
            return true;
        };
        self.report(text.referenced, problem);
        false
    }

    fn not_applicable(&mut self, subject: &str, key: &str, kind: &str, noun: &str, at: Location) {
        self.report(
            at,
            format!("{subject}: \"{key}\" does not apply to a {kind} {noun}"),
        );
    }

    fn required<'v, T>(
        &mut self,
        subject: &str,
        key: &str,
        format: &str,
        value: &'v Option<Spanned<T>>,
        at: Location,
    ) -> Option<&'v Spanned<T>> {
        if value.is_none() {
            self.report(at, format!("{subject}: a {format} creative needs {key}"));
        }
        value.as_ref()
    }

    fn whole(
        &mut self,
        subject: &str,
        what: &str,
        value: &Int,
        range: RangeInclusive<i64>,
    ) -> Option<u32> {
        let v = value.value;
        if range.contains(&v) {
            return u32::try_from(v).ok();
        }
        let message = if *range.end() == i64::from(u32::MAX) {
            if v > *range.end() {
                format!("{subject}: {what} {v} is too large")
            } else {
                format!(
                    "{subject}: {what} must be at least {} (it is {v})",
                    range.start()
                )
            }
        } else {
            format!(
                "{subject}: {what} must be between {} and {} (it is {v})",
                range.start(),
                range.end()
            )
        };
        self.report(value.referenced, message);
        None
    }

    /// An amount of money: not negative, and at most [`MAX_AMOUNT`].
    fn money(&mut self, subject: &str, what: &str, money: &Money) -> Option<Micros> {
        match Micros::parse_decimal(&money.value.0) {
            Ok(m) if m.as_i64() < 0 => {
                self.report(
                    money.referenced,
                    format!(
                        "{subject}: {what} cannot be negative (it is {})",
                        m.grouped()
                    ),
                );
                None
            }
            Ok(m) if m > MAX_AMOUNT => {
                self.report(
                    money.referenced,
                    format!(
                        "{subject}: {what} {} is more than a config may say ({})",
                        m.grouped(),
                        MAX_AMOUNT.grouped()
                    ),
                );
                None
            }
            Ok(m) => Some(m),
            Err(e) => {
                self.report(money.referenced, format!("{subject}: {what} {e}"));
                None
            }
        }
    }

    fn url(&mut self, subject: &str, what: &str, url: &Text) -> bool {
        let u = url.value.as_str();
        let lower = u.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        let problem = match rest {
            None => Some("must start with http:// or https://"),
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                Some("has no host name after the scheme")
            }
            Some(_) if u.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Some("contains a space; write it as %20")
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            self.report(
                url.referenced,
                format!("{subject}: {what} \"{u}\" {problem}"),
            );
        }
        problem.is_none()
    }

    fn mime(&mut self, subject: &str, media: Media, mime: &Text) -> bool {
        // RFC 6838 restricted-name characters on both sides of one slash.
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        let ok = mime
            .value
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s));
        if !ok {
            let example = match media {
                Media::Audio => "audio/mpeg",
                _ => "video/mp4",
            };
            let message = if mime.value.trim().is_empty() {
                format!("{subject}: mime is empty")
            } else {
                format!(
                    "{subject}: mime \"{}\" is not a media type like {example}",
                    mime.value
                )
            };
            self.report(mime.referenced, message);
        }
        ok
    }

    /// A bare domain; `noun` names it in messages ("domain", "site").
    fn domain(&mut self, subject: &str, noun: &str, example: &str, domain: &Text) -> bool {
        let written = domain.value.as_str();
        // A site's `*.` and final dot are read away (`site_host`), as
        // `badv` entries are; an advertiser's final dot too (its domains
        // go out as `adomain`, and no wildcard may).
        let d = match noun {
            "site" => site_host(written),
            _ => written.strip_suffix('.').unwrap_or(written),
        };
        let problem = if written.trim().is_empty() {
            Some(format!("a {noun} is empty"))
        } else if d.contains("://") || d.contains('/') {
            Some(format!(
                "{noun} \"{written}\" must be a bare domain like {example}, without http:// or a path"
            ))
        } else if let Some((bare, _)) = d.split_once(':') {
            // A port: an advertiser's domain goes out as `adomain`, which
            // exchanges compare with their block lists as a bare name, and
            // a page's host is matched without one.
            Some(format!(
                "{noun} \"{written}\" must be a bare domain like {example}, without a port; \
                 write \"{bare}\""
            ))
        } else if let Some(bare) = d.strip_prefix("*.") {
            Some(format!(
                "{noun} \"{written}\" is a wildcard; write \"{bare}\", which covers its subdomains"
            ))
        } else if d.contains('*') {
            // Matched as a suffix of the page's host: a `*` inside matched
            // no host at all (a block list of them blocked nothing).
            Some(format!(
                "{noun} \"{written}\" holds a \"*\"; write the domain, which covers its subdomains"
            ))
        } else if let Some(bare) = d.strip_suffix('.') {
            Some(format!(
                "{noun} \"{written}\" ends with a dot; write \"{bare}\""
            ))
        } else if !d.contains('.')
            || d.chars().any(|c| {
                // `@`, `?`, `#`: the rest of a URL; `,`: two domains in one
                // string where a list was meant.
                c.is_whitespace() || c.is_control() || matches!(c, '@' | '?' | '#' | ',')
            })
        {
            Some(format!(
                "{noun} \"{written}\" is not a domain name like {example}"
            ))
        } else {
            None
        };
        if let Some(problem) = &problem {
            self.report(domain.referenced, format!("{subject}: {problem}"));
        }
        problem.is_none()
    }

    fn country(&mut self, subject: &str, country: &Text) -> bool {
        let code = country.value.as_str();
        if countries::is_alpha3(code) {
            return true;
        }
        let hint = countries::suggest(code)
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        self.report(
            country.referenced,
            format!("{subject}: country \"{code}\" is not an ISO-3166-1 alpha-3 code{hint}"),
        );
        false
    }

    /// `creative "x" is not defined for advertiser "a"`, plus the most useful hint.
    fn unresolved<'s>(
        &self,
        kind: &str,
        id: &str,
        scope: &Scope<'_>,
        candidates: impl Iterator<Item = &'s str>,
        owners: &HashMap<String, String>,
    ) -> String {
        let base = format!(
            "{kind} \"{id}\" is not defined for advertiser \"{}\"",
            scope.advertiser
        );
        if let Some(owner) = owners.get(id).filter(|o| *o != scope.advertiser) {
            return format!(
                "{base} (it belongs to advertiser \"{owner}\"; references cannot cross advertisers)"
            );
        }
        match closest(id, candidates) {
            Some(near) => format!("{base} (did you mean \"{near}\"?)"),
            None => base,
        }
    }
}

/// The three allow/block lists of targeting.
#[derive(Clone, Copy)]
enum ListKind {
    Sites,
    Apps,
    Publishers,
}

impl ListKind {
    fn key(self) -> &'static str {
        match self {
            ListKind::Sites => "sites",
            ListKind::Apps => "apps",
            ListKind::Publishers => "publishers",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            ListKind::Sites => "site",
            ListKind::Apps => "app",
            ListKind::Publishers => "publisher id",
        }
    }
}

/// What a malformed region was probably meant to be, as a parenthesised hint.
fn region_hint(region: &str, countries: Option<&[&str]>) -> String {
    let valid_subdivision =
        |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let Some((country, subdivision)) = region.trim().split_once('-') else {
        // "CO": OpenRTB's own geo.region leaves the country out.
        let r = region.trim();
        if !valid_subdivision(r) {
            return String::new();
        }
        let a2 = match countries {
            Some([only]) => country_alpha2(only),
            _ => None,
        };
        return match a2 {
            Some(a2) => format!(
                " (write the country first: did you mean \"{a2}-{}\"?)",
                r.to_ascii_uppercase()
            ),
            None => " (write the two-letter country code first, like US-CO)".to_owned(),
        };
    };
    let a2 = countries::suggest(country).and_then(country_alpha2);
    let (Some(a2), true) = (a2, valid_subdivision(subdivision)) else {
        return String::new();
    };
    let meant = format!("{a2}-{}", subdivision.to_ascii_uppercase());
    let reason = if country.trim().len() == 3 {
        "regions start with the two-letter country code: "
    } else if region.bytes().any(|b| b.is_ascii_lowercase()) {
        "codes are upper case: "
    } else {
        ""
    };
    format!(" ({reason}did you mean \"{meant}\"?)")
}

/// A site list entry as pages' hosts are matched against it: `*.news.example`
/// and `news.example.` are `news.example` (which covers its subdomains).
/// Matched as a suffix of the host, the wildcard and the root's dot matched
/// nothing, and a block list of them blocked nothing while the config
/// loaded.
fn site_host(entry: &str) -> &str {
    let host = entry.strip_prefix("*.").unwrap_or(entry);
    host.strip_suffix('.').unwrap_or(host)
}

fn strings(list: &List<Text>) -> Vec<String> {
    texts(&list.0)
}

fn texts(list: &[Text]) -> Vec<String> {
    list.iter().map(|t| t.value.clone()).collect()
}

/// The candidate a typo most plausibly meant, if any is close enough.
fn closest<'s>(target: &str, candidates: impl Iterator<Item = &'s str>) -> Option<&'s str> {
    let limit = (target.chars().count() / 4).max(2);
    candidates
        .filter(|c| !c.is_empty())
        .map(|c| (edit_distance(target, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// No flight starts or ends before this year.
const FIRST_FLIGHT_YEAR: i32 = 2000;

/// The longest id, in bytes: as long as an imp id may be
/// (`ortb::MAX_IMP_ID_BYTES`), for the same reason.
pub(crate) const MAX_ID_BYTES: usize = 128;

/// Characters that print as nothing or reorder what follows: Unicode's
/// default-ignorable code points and its other format characters (bidi
/// controls, zero-width spaces, variation selectors, tag characters, blank
/// fillers), which text editors and terminals let through.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// How many subcategories each IAB 1.0 category has (`IAB1-1` to `IAB1-7`
/// ...; `IAB24`, Uncategorized, has none): OpenRTB 2.5's list 5.1.
const IAB1_SUBCATEGORIES: [u32; 26] = [
    7, 23, 12, 11, 15, 9, 45, 18, 31, 9, 5, 3, 12, 8, 10, 7, 44, 6, 36, 27, 3, 4, 10, 0, 7, 4,
];

/// An IAB Content Category 1.0 code: `IAB1` to `IAB26`, or one of their
/// subcategories (`IAB17-18`; `IAB17` has 44).
fn is_iab1(code: &str) -> bool {
    // `iab17-18` matched bcat as well (codes compare in any case).
    let rest = match code.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("IAB") => &code[3..],
        _ => return false,
    };
    let (tier1, tier2) = match rest.split_once('-') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let number = |s: &str, max: u32| {
        !s.is_empty()
            && !s.starts_with('0')
            && s.len() <= 3
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
    };
    if !number(tier1, 26) {
        return false;
    }
    let subs = tier1
        .parse::<usize>()
        .ok()
        .and_then(|n| IAB1_SUBCATEGORIES.get(n.checked_sub(1)?))
        .copied()
        .unwrap_or(0);
    tier2.is_none_or(|t| number(t, subs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("abc", "abd"), 1);
        assert_eq!(edit_distance("abc", "ab"), 1);
        assert_eq!(edit_distance("ab", "abc"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_prefers_the_nearest_and_ignores_far_ones() {
        let ids = ["tent-viewers", "hikers", "tent-pages"];
        assert_eq!(
            closest("tent-viewer", ids.into_iter()),
            Some("tent-viewers")
        );
        assert_eq!(closest("hiker", ids.into_iter()), Some("hikers"));
        assert_eq!(closest("readers", ids.into_iter()), None);
    }
}
