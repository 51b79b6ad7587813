//! The validated configuration the bidder runs on.
//!
//! Only `load_dir`/`load_files` build these after every rule has passed, so
//! the bidder can trust them without re-checking: references resolve, amounts
//! are positive, creative formats fit their line items.

use std::fmt;
use std::path::PathBuf;

use crate::money::{Micros, Rate};
pub use crate::time::Weekday;
use crate::time::{Date, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Config {
    pub advertisers: Vec<Advertiser>,
    /// Exchange profiles, one per `exchange:` file, in file order.
    pub exchanges: Vec<Exchange>,
    /// The `currency_rates:` file, when there is one: without it the
    /// bidder bids in USD only.
    pub currency_rates: Option<CurrencyRates>,
}

impl Config {
    /// Every line item, advertiser by advertiser, order by order.
    pub fn line_items(&self) -> impl Iterator<Item = &LineItem> {
        self.advertisers
            .iter()
            .flat_map(|a| &a.orders)
            .flat_map(|o| &o.line_items)
    }

    /// The longest reservation an exchange profile sets
    /// (`reservation_ttl_secs`), if one does: with the bidder's own, how
    /// long a bid may hold budget before its notice.
    pub fn longest_reservation_ttl_secs(&self) -> Option<u32> {
        self.exchanges
            .iter()
            .filter_map(|e| e.reservation_ttl_secs)
            .max()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            advertisers: self.advertisers.len(),
            exchanges: self.exchanges.len(),
            currencies: self.currency_rates.as_ref().map(|r| r.rates.len()),
            ..Summary::default()
        };
        for a in &self.advertisers {
            s.orders += a.orders.len();
            s.line_items += a.orders.iter().map(|o| o.line_items.len()).sum::<usize>();
            s.creatives += a.creatives.len();
            s.audiences += a.audiences.len();
        }
        s
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    pub advertisers: usize,
    pub orders: usize,
    pub line_items: usize,
    pub creatives: usize,
    pub audiences: usize,
    pub exchanges: usize,
    /// Currencies with a rate, when there is a rates file.
    pub currencies: Option<usize>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn count(n: usize, one: &str, many: &str) -> String {
            format!("{n} {}", if n == 1 { one } else { many })
        }
        write!(
            f,
            "{}, {}, {}, {}, {}",
            count(self.advertisers, "advertiser", "advertisers"),
            count(self.orders, "order", "orders"),
            count(self.line_items, "line item", "line items"),
            count(self.creatives, "creative", "creatives"),
            count(self.audiences, "audience", "audiences"),
        )?;
        if self.exchanges > 0 {
            write!(f, ", {}", count(self.exchanges, "exchange", "exchanges"))?;
        }
        if let Some(n) = self.currencies {
            write!(f, ", rates for {}", count(n, "currency", "currencies"))?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertiser {
    pub id: String,
    pub name: String,
    pub domains: Vec<String>,
    pub categories: Vec<String>,
    /// Its product ids, for attribution; empty: nothing is attributed.
    pub products: Vec<String>,
    pub attribution: Attribution,
    pub audiences: Vec<Audience>,
    pub creatives: Vec<Creative>,
    pub orders: Vec<Order>,
    /// The file it was loaded from, as given to the loader.
    pub file: PathBuf,
}

/// How long after an ad a shopper's view or purchase is its doing: the
/// last click within `click_days`, else the last impression within
/// `view_days`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attribution {
    pub click_days: u32,
    pub view_days: u32,
}

impl Default for Attribution {
    fn default() -> Self {
        Attribution {
            click_days: 14,
            view_days: 14,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audience {
    pub id: String,
    pub kind: AudienceKind,
}

/// The longest product or topic id audience events and the config take.
pub const MAX_ITEM_BYTES: usize = 256;

/// `net` as the addresses it is compared with are written: an IPv4-mapped
/// IPv6 network (`::ffff:203.0.113.0/120`, as dual-stack logs write them)
/// as its IPv4 network. A peer's address is compared in its canonical form
/// (`IpAddr::to_canonical`), so a mapped network never matched anything:
/// an `allow_from` copied from such logs cut the exchange off, and a
/// trusted proxy written so was not trusted (exchanges probe).
pub fn canonical_net(net: ipnet::IpNet) -> ipnet::IpNet {
    match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(ipnet::IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        _ => net,
    }
}

/// How the audience store names `item` when one advertiser's own site
/// recorded it (its pixel): apart from the same product seen anywhere
/// else, so that one advertiser's first-party events never join, or end,
/// another's audiences (`\u{1f}` cannot be in an uploaded product id).
pub fn advertiser_item(advertiser: &str, item: &str) -> String {
    format!("{advertiser}\u{1f}{item}")
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudienceKind {
    /// Viewed one of the products within `lookback_days` and has not bought it since.
    Views {
        products: Vec<String>,
        lookback_days: u32,
        /// The products as the owning advertiser's own events name them
        /// ([`advertiser_item`]): views and purchases its pixel recorded
        /// count for its audiences only.
        own: Vec<String>,
    },
    /// Shopping activity on these topics within `recency_days` (as
    /// [`interest_topic`] writes them).
    Interests {
        interests: Vec<String>,
        recency_days: u32,
    },
    /// Contextual: the page is about one of these products.
    Products { products: Vec<String> },
    /// Contextual: the page is in one of these content categories.
    Categories { categories: Vec<String> },
    /// A list of users uploaded by the advertiser (CRM, DMP): the request
    /// carries one of its members under one of `sources`. Its members are
    /// stored under the owning `advertiser` and the audience id, so a list
    /// id that moves to another advertiser never hands it the members.
    List {
        sources: Vec<ListSource>,
        advertiser: String,
    },
}

/// Where a list's member ids are found in a bid request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ListSource {
    /// `user.buyeruid`: the bidder's own user id, given at user sync.
    BuyerUid,
    /// A SHA-256 (hex) of the lower-cased, trimmed e-mail address, in
    /// `user.eids` under the source `sha256_email`.
    Sha256Email,
    /// `user.eids` (or 2.5 `user.ext.eids`) under this source, such as
    /// `uidapi.com`, `liveramp.com` or `id5-sync.com` (lower case).
    Eid(String),
}

impl ListSource {
    /// The `sources:` entry in YAML, and the `user.eids` source it reads.
    pub fn as_str(&self) -> &str {
        match self {
            ListSource::BuyerUid => "buyeruid",
            ListSource::Sha256Email => "sha256_email",
            ListSource::Eid(s) => s,
        }
    }
}

impl AudienceKind {
    /// Its `kind:` in YAML, as explain and reports name it.
    pub fn as_str(&self) -> &'static str {
        match self {
            AudienceKind::Views { .. } => "views",
            AudienceKind::Interests { .. } => "interests",
            AudienceKind::Products { .. } => "products",
            AudienceKind::Categories { .. } => "categories",
            AudienceKind::List { .. } => "list",
        }
    }
}

/// Where in its file something was written: the 1-based line and column
/// of its first key (0 and 0 for one built in code). Kept so that what is
/// said of it after loading (warnings) points at its place, as refusals do.
/// Not part of what it is: an equal line item written further down its file
/// is still equal, so a comment added above it changes nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct At {
    pub line: u64,
    pub column: u64,
}

impl PartialEq for At {
    fn eq(&self, _: &At) -> bool {
        true
    }
}

impl Eq for At {}

impl At {
    /// `file:line:column`, or the file alone where the place is unknown:
    /// the shape of [`crate::Problem`]'s, so editors and CI take both.
    pub fn in_file(self, file: &std::path::Path) -> String {
        if self.line == 0 {
            file.display().to_string()
        } else {
            format!("{}:{}:{}", file.display(), self.line, self.column)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creative {
    pub id: String,
    pub at: At,
    pub kind: CreativeKind,
    pub click_url: String,
    /// Ids of display creatives of the same advertiser.
    pub companions: Vec<String>,
    pub companion_required: bool,
    /// IAB creative attributes (AdCOM List 5.3) the creative has, sorted;
    /// a slot's `battr` blocks them.
    pub attributes: Vec<u8>,
    /// The language the ad is in, an IETF BCP 47 tag (`en`, `pt-BR`), as
    /// written; none: not said, and not restricted by a request's `wlang`.
    pub language: Option<String>,
}

impl Creative {
    pub fn media(&self) -> Media {
        self.kind.media()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreativeKind {
    Display {
        w: u32,
        h: u32,
        image_url: String,
    },
    Video {
        duration_s: u32,
        media: Vec<MediaFile>,
    },
    Audio {
        duration_s: u32,
        media: Vec<MediaFile>,
    },
    /// A product ad made of parts the publisher lays out (OpenRTB Native).
    Native(NativeCreative),
}

impl CreativeKind {
    pub fn media(&self) -> Media {
        match self {
            CreativeKind::Display { .. } => Media::Display,
            CreativeKind::Video { .. } => Media::Video,
            CreativeKind::Audio { .. } => Media::Audio,
            CreativeKind::Native(_) => Media::Native,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeCreative {
    pub title: String,
    pub description: String,
    /// The brand shown as the sponsor.
    pub sponsored_by: String,
    pub image: Image,
    pub icon: Option<Image>,
    /// Call to action, like "Shop now".
    pub cta: Option<String>,
    /// The price as displayed, like "$24.99": text, not money.
    pub price: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub url: String,
    pub w: u32,
    pub h: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFile {
    pub url: String,
    pub mime: String,
    /// Always set for video; never for audio.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bitrate_kbps: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Media {
    Display,
    Video,
    Audio,
    Native,
}

impl Media {
    pub const ALL: [Media; 4] = [Media::Display, Media::Video, Media::Audio, Media::Native];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Display => "display",
            Media::Video => "video",
            Media::Audio => "audio",
            Media::Native => "native",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Media> {
        Media::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    SelfService,
    Managed,
}

impl Service {
    pub const ALL: [Service; 2] = [Service::SelfService, Service::Managed];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Service::SelfService => "self_service",
            Service::Managed => "managed",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Inclusive UTC dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flight {
    pub start: Date,
    pub end: Date,
}

impl Flight {
    /// From 00:00:00.000 UTC on `start` through 23:59:59.999 UTC on `end`.
    pub fn contains(&self, now: Timestamp) -> bool {
        let date = now.date();
        self.start <= date && date <= self.end
    }

    /// Whether the flight is written as having no end: it ends in
    /// [`OPEN_ENDED_YEAR`] or later (the README's way is a far end,
    /// 9999-12-31), or more than [`OPEN_ENDED_SPAN_YEARS`] after it starts,
    /// by the calendar (2099-12-31 and 2050-12-31 are written for "no end"
    /// too; a flight from 2026-12-01 to 2046-12-02 has none, one to
    /// 2046-12-01 ends then). A lifetime
    /// budget on it is spent as demand comes, not paced to that end:
    /// paced, it was spread over some three million days, about a cent a
    /// day. A long flight with a real end (2016 to 2027) stays paced.
    pub fn is_open_ended(&self) -> bool {
        let (s, e) = (self.start, self.end);
        e.year() >= OPEN_ENDED_YEAR
            || (e.year(), e.month(), e.day())
                > (
                    s.year().saturating_add(OPEN_ENDED_SPAN_YEARS),
                    s.month(),
                    s.day(),
                )
    }
}

/// Flights that end in this year or later have no end ([`Flight::is_open_ended`]).
pub const OPEN_ENDED_YEAR: i32 = 2100;
/// Nor do flights longer than twenty years.
pub const OPEN_ENDED_SPAN_YEARS: i32 = 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub at: At,
    /// Where its `budget` amount is written: what a refused budget change
    /// points at.
    pub budget_at: At,
    pub service: Service,
    /// Total budget of the order over its whole flight.
    pub budget: Micros,
    pub flight: Flight,
    pub line_items: Vec<LineItem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineItem {
    pub id: String,
    pub at: At,
    /// Where its budget's amount (`daily` or `lifetime`) is written.
    pub budget_at: At,
    pub media: Media,
    /// The highest bid per thousand impressions: a fixed_cpm line item's
    /// bid, or a value-based one's ceiling (its `max_cpm`, else the goal
    /// × 1000, what a certain click or conversion is worth).
    pub cpm: Micros,
    pub bidding: Bidding,
    /// Lower bids in first-price auctions towards what wins.
    pub shading: bool,
    pub budget: Budget,
    pub frequency_cap: Option<FrequencyCap>,
    /// `None`: every user is eligible.
    pub audiences: Option<AudienceRule>,
    pub targeting: Targeting,
    /// Ids of creatives of the same advertiser, all of this line item's media.
    pub creatives: Vec<String>,
}

/// How a line item's bid is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Bidding {
    /// The line item's `cpm`.
    #[default]
    FixedCpm,
    /// The impression's expected value: `max_cpc` × P(click) × 1000.
    MaxCpc { max_cpc: Micros },
    /// The impression's expected value: `target_cpa` × P(conversion) × 1000.
    TargetCpa { target_cpa: Micros },
}

impl Bidding {
    /// Its `strategy:` in YAML, as explain names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Bidding::FixedCpm => "fixed_cpm",
            Bidding::MaxCpc { .. } => "max_cpc",
            Bidding::TargetCpa { .. } => "target_cpa",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Spent as demand comes each UTC day, not paced.
    Daily(Micros),
    /// For the whole flight, paced evenly through each day.
    Lifetime(Micros),
}

impl Budget {
    pub fn amount(self) -> Micros {
        match self {
            Budget::Daily(m) | Budget::Lifetime(m) => m,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrequencyCap {
    pub impressions: u32,
    pub per_hours: u32,
}

/// A user qualifies when in at least one of `any_of` (or `any_of` is empty)
/// and in none of `none_of`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AudienceRule {
    pub any_of: Vec<String>,
    pub none_of: Vec<String>,
}

/// Empty lists mean "no restriction".
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Targeting {
    /// ISO 3166-1 alpha-3, as OpenRTB `geo.country`.
    pub countries: Vec<String>,
    pub devices: Vec<Device>,
    pub keywords: Option<Keywords>,
    /// Private-marketplace deal ids: when set, bid only inside these deals.
    pub deals: Vec<String>,
    /// ISO 3166-2 subdivision codes, upper case with their country's alpha-2
    /// prefix, e.g. `US-CO` (see [`crate::country_alpha2`] to compare with
    /// an alpha-3 `geo.country`). When `countries` is set, every region is
    /// in one of them.
    pub regions: Vec<String>,
    /// City names as written, to match `geo.city` case-insensitively.
    pub cities: Vec<String>,
    pub os: Vec<Os>,
    /// Site domains (bare, like `news.example`).
    pub sites: AllowBlock,
    /// App bundles or store ids.
    pub apps: AllowBlock,
    /// Publisher ids.
    pub publishers: AllowBlock,
    /// `None`: any time of day.
    pub dayparts: Option<Dayparts>,
    /// Video and audio placement kinds, as written (duplicates kept); only
    /// ever set on video and audio line items.
    pub placements: Vec<Placement>,
}

/// Bid only on `allow` (when it is not empty), and never on `block`.
/// No value is in both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowBlock {
    pub allow: Vec<String>,
    pub block: Vec<String>,
}

impl AllowBlock {
    /// Nothing allowed specifically and nothing blocked: no restriction.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.block.is_empty()
    }
}

/// Operating systems by their YAML names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Os {
    Ios,
    Android,
    Windows,
    Macos,
    Linux,
    Chromeos,
    Tvos,
    Roku,
    Tizen,
    Webos,
    Fireos,
}

impl Os {
    pub const ALL: [Os; 11] = [
        Os::Ios,
        Os::Android,
        Os::Windows,
        Os::Macos,
        Os::Linux,
        Os::Chromeos,
        Os::Tvos,
        Os::Roku,
        Os::Tizen,
        Os::Webos,
        Os::Fireos,
    ];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Os::Ios => "ios",
            Os::Android => "android",
            Os::Windows => "windows",
            Os::Macos => "macos",
            Os::Linux => "linux",
            Os::Chromeos => "chromeos",
            Os::Tvos => "tvos",
            Os::Roku => "roku",
            Os::Tizen => "tizen",
            Os::Webos => "webos",
            Os::Fireos => "fireos",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Os> {
        Os::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The spellings of `device.os` that name this OS, once lower-cased with
    /// everything but letters and digits removed.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Os::Ios => &["ios", "iphoneos", "ipados"],
            Os::Android => &["android", "androidtv"],
            Os::Windows => &["windows", "windowsnt"],
            Os::Macos => &["macos", "macosx", "osx", "mac", "macintosh"],
            Os::Linux => &["linux"],
            Os::Chromeos => &["chromeos", "chromiumos", "cros"],
            Os::Tvos => &["tvos"],
            Os::Roku => &["roku", "rokuos"],
            Os::Tizen => &["tizen", "tizenos"],
            Os::Webos => &["webos", "webostv", "lgwebos"],
            Os::Fireos => &["fireos", "amazonfireos"],
        }
    }

    /// Whether OpenRTB `device.os` (free text such as "iOS", "Android",
    /// "Windows", "Mac OS X", "OS X", "macOS", "Linux", "Chrome OS", "tvOS",
    /// "Roku OS", "Tizen", "webOS", "Fire OS") names this OS,
    /// case-insensitively.
    ///
    /// Spaces and punctuation are ignored, as is a version at the end
    /// ("Windows 10", "Android 14.1"); the version belongs in `device.osv`. Fire OS is not Android and tvOS is not iOS here: a
    /// device says which one it runs. Does not allocate.
    pub fn matches(self, device_os: &str) -> bool {
        // Every alias is short; a longer name cannot be one of them.
        let mut buf = [0u8; 24];
        let mut len = 0;
        for b in device_os.bytes() {
            if b.is_ascii_alphanumeric() {
                if len == buf.len() {
                    return false;
                }
                buf[len] = b.to_ascii_lowercase();
                len += 1;
            } else if !b.is_ascii() {
                return false;
            }
        }
        let name = &buf[..len];
        let end = name
            .iter()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let name = &name[..end];
        !name.is_empty() && self.aliases().iter().any(|a| a.as_bytes() == name)
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hours of the week a line item bids in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dayparts {
    pub timezone: DaypartZone,
    /// Never empty.
    pub slots: Vec<DaypartSlot>,
}

impl Dayparts {
    /// Whether the instant `now`, shifted by `utcoffset_minutes` when
    /// timezone is User (None → UTC), falls in any slot.
    ///
    /// `utcoffset_minutes` is OpenRTB `device.geo.utcoffset` (local time
    /// minus UTC). An offset beyond ±18 hours names no real place and is
    /// treated as missing.
    pub fn contains(&self, now: Timestamp, utcoffset_minutes: Option<i32>) -> bool {
        let offset = self.timezone.offset_minutes(utcoffset_minutes);
        let local = Timestamp(now.0.saturating_add(offset * 60_000));
        let (day, minute) = (local.date().weekday(), local.minute_of_day());
        self.slots.iter().any(|s| s.contains(day, minute))
    }
}

impl Dayparts {
    /// The week's open minutes, for pacing ([`OpenWeek`]).
    pub fn open_week(&self) -> OpenWeek {
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for (i, day) in Weekday::ALL.into_iter().enumerate() {
            let mut spans: Vec<(u16, u16)> = self
                .slots
                .iter()
                .filter(|s| s.days.contains(&day))
                .map(|s| (s.from_minute, s.to_minute.min(MINUTES_A_DAY)))
                .filter(|(from, to)| from < to)
                .collect();
            spans.sort_unstable();
            // Overlapping slots are open once.
            let mut merged: Vec<(u16, u16)> = Vec::with_capacity(spans.len());
            for (from, to) in spans {
                match merged.last_mut() {
                    Some(last) if from <= last.1 => last.1 = last.1.max(to),
                    _ => merged.push((from, to)),
                }
            }
            days[i] = merged;
        }
        OpenWeek {
            timezone: self.timezone,
            days,
        }
    }
}

const MINUTES_A_DAY: u16 = 24 * 60;

/// When a day-parted line item may bid, by weekday, for pacing: a
/// lifetime budget spread over every minute of its flight (as one without
/// day-parts is) could spend only the share of its open minutes, and a line
/// item open two hours a day delivered 16% of its budget (value probe).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenWeek {
    timezone: DaypartZone,
    /// Per weekday (Monday first), its open minutes as sorted, disjoint
    /// `[from, to)` spans.
    days: [Vec<(u16, u16)>; 7],
}

/// How much of a paced line item's time is open: the minutes it may bid in
/// from the start of today through the current minute, and from the start
/// of today to the end of its flight. A lifetime budget is spread over the
/// second in proportion to the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenTime {
    pub elapsed: u32,
    pub span: u32,
}

impl OpenWeek {
    /// The open time at `now` for a user `utcoffset_minutes` east of UTC
    /// (read as day-parts read it), of a flight ending on `flight_end`.
    /// Counted on the ledger's clock: today is the UTC day (budgets and
    /// flights are in UTC days), and its open minutes are those whose time
    /// on the slots' clock is open. A user 5 hours west whose slots open at
    /// 20:00 has them at 01:00 UTC of the next UTC day: counted from the
    /// user's own dates, the plan funded a last evening after the UTC
    /// flight had ended, and a fifth of a four-day budget was never spent.
    pub fn open_time(
        &self,
        now: Timestamp,
        utcoffset_minutes: Option<i32>,
        flight_end: Date,
    ) -> OpenTime {
        const DAY: i64 = MINUTES_A_DAY as i64;
        let offset = self.timezone.offset_minutes(utcoffset_minutes);
        let today = now.date();
        let start = today.days_since_epoch().saturating_mul(DAY);
        // Open minutes of the UTC minutes [from, to), at most a day apart.
        let open = |from: i64, to: i64| -> u32 {
            let (from, to) = (from + offset, to + offset);
            let mut total = 0;
            let mut day = from.div_euclid(DAY);
            while day * DAY < to {
                let base = day * DAY;
                let (a, b) = (from.max(base) - base, to.min(base + DAY) - base);
                // Monday is index 0: the epoch was a Thursday (as
                // `Date::weekday` reads it, without a calendar conversion).
                let weekday = (day + 3).rem_euclid(7) as usize;
                total += self.days[weekday]
                    .iter()
                    .map(|&(f, t)| {
                        let (f, t) = (i64::from(f).max(a), i64::from(t).min(b));
                        u32::try_from((t - f).max(0)).unwrap_or(0)
                    })
                    .sum::<u32>();
                day += 1;
            }
            total
        };
        let minute = now.0.div_euclid(60_000);
        let elapsed = open(start, minute + 1);
        // A week of UTC days from today: the pattern the flight repeats.
        let week: [u32; 7] =
            std::array::from_fn(|i| open(start + i as i64 * DAY, start + (i as i64 + 1) * DAY));
        let days = (flight_end.days_since_epoch() - today.days_since_epoch() + 1).max(1);
        let (weeks, rest) = (days / 7, (days % 7) as usize);
        let span = u32::try_from(weeks)
            .unwrap_or(u32::MAX)
            .saturating_mul(week.iter().sum())
            .saturating_add(week[..rest].iter().sum::<u32>());
        OpenTime { elapsed, span }
    }
}

/// ISO 8601 offsets run from -18:00 to +18:00.
const MAX_UTC_OFFSET_MINUTES: u32 = 18 * 60;

/// Which clock the slots are read on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DaypartZone {
    /// The device's local time from `device.geo.utcoffset`, UTC when absent.
    User,
    Utc,
}

impl DaypartZone {
    pub const ALL: [DaypartZone; 2] = [DaypartZone::User, DaypartZone::Utc];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DaypartZone::User => "user",
            DaypartZone::Utc => "utc",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<DaypartZone> {
        DaypartZone::ALL.into_iter().find(|z| z.as_str() == s)
    }

    /// Minutes to add to UTC to read slots on this clock, for a user
    /// `utcoffset_minutes` east of UTC (OpenRTB `device.geo.utcoffset`). An
    /// offset beyond ±18 hours names no real place and is taken as none.
    fn offset_minutes(self, utcoffset_minutes: Option<i32>) -> i64 {
        match self {
            DaypartZone::User => utcoffset_minutes
                .filter(|m| m.unsigned_abs() <= MAX_UTC_OFFSET_MINUTES)
                .map_or(0, i64::from),
            DaypartZone::Utc => 0,
        }
    }
}

/// From `from_minute` (inclusive) to `to_minute` (exclusive), in minutes
/// after midnight, on each of `days`. `0 <= from_minute < to_minute <= 1440`;
/// a slot never crosses midnight (write two slots instead).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaypartSlot {
    /// Never empty.
    pub days: Vec<Weekday>,
    pub from_minute: u16,
    pub to_minute: u16,
}

impl DaypartSlot {
    /// Whether minute `minute` of `day` is inside this slot.
    pub fn contains(&self, day: Weekday, minute: u16) -> bool {
        self.from_minute <= minute && minute < self.to_minute && self.days.contains(&day)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Keywords {
    pub broad: Vec<String>,
    pub phrase: Vec<String>,
    pub exact: Vec<String>,
    pub negative: Vec<String>,
}

/// Where a video or audio ad plays, by its YAML name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Played before, during or after content the user asked for.
    Instream,
    /// Played alongside content that is the point of the page (an article).
    Accompanying,
    /// Takes over the screen between pieces of content.
    Interstitial,
    /// Played with no other content around it.
    Standalone,
    /// Any placement that is not in-stream: accompanying, interstitial or
    /// standalone.
    Outstream,
}

impl Placement {
    pub const ALL: [Placement; 5] = [
        Placement::Instream,
        Placement::Accompanying,
        Placement::Interstitial,
        Placement::Standalone,
        Placement::Outstream,
    ];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Instream => "instream",
            Placement::Accompanying => "accompanying",
            Placement::Interstitial => "interstitial",
            Placement::Standalone => "standalone",
            Placement::Outstream => "outstream",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Placement> {
        Placement::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether an OpenRTB 2.6 `video.plcmt` value matches: 1 in-stream →
    /// Instream; 2 accompanying content → Accompanying; 3 interstitial →
    /// Interstitial; 4 no-content/standalone → Standalone; `Outstream`
    /// matches 2, 3 and 4.
    ///
    /// Any other value (0, unknown, negative) matches nothing.
    pub fn matches_plcmt(self, plcmt: i32) -> bool {
        matches!(
            (self, plcmt),
            (Placement::Instream, 1)
                | (Placement::Accompanying | Placement::Outstream, 2)
                | (Placement::Interstitial | Placement::Outstream, 3)
                | (Placement::Standalone | Placement::Outstream, 4)
        )
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Desktop,
    Phone,
    Tablet,
    Ctv,
    ConnectedDevice,
    SetTopBox,
    Dooh,
}

impl Device {
    pub const ALL: [Device; 7] = [
        Device::Desktop,
        Device::Phone,
        Device::Tablet,
        Device::Ctv,
        Device::ConnectedDevice,
        Device::SetTopBox,
        Device::Dooh,
    ];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Phone => "phone",
            Device::Tablet => "tablet",
            Device::Ctv => "ctv",
            Device::ConnectedDevice => "connected_device",
            Device::SetTopBox => "set_top_box",
            Device::Dooh => "dooh",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Device> {
        Device::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether an OpenRTB 2.x `device.devicetype` value is this device.
    ///
    /// Type 1 ("Mobile/Tablet", the pre-2.3 catch-all) could be either a
    /// phone or a tablet, so it matches both.
    pub fn matches_devicetype(self, devicetype: i32) -> bool {
        matches!(
            (self, devicetype),
            (Device::Phone | Device::Tablet, 1)
                | (Device::Desktop, 2)
                | (Device::Ctv, 3)
                | (Device::Phone, 4)
                | (Device::Tablet, 5)
                | (Device::ConnectedDevice, 6)
                | (Device::SetTopBox, 7)
                | (Device::Dooh, 8)
        )
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        Date::parse(s).expect("test date")
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("test timestamp")
    }

    /// "More than twenty years after it starts" by the calendar, as the
    /// README says (it was 20 × 366 days: flights to 2046-12-02..06 from
    /// 2026-12-01 were paced at about a cent a day; account-manager probe).
    #[test]
    fn a_flight_past_twenty_years_has_no_end() {
        let ends = |start: &str, end: &str| {
            Flight {
                start: date(start),
                end: date(end),
            }
            .is_open_ended()
        };
        assert!(!ends("2026-12-01", "2046-12-01"));
        assert!(ends("2026-12-01", "2046-12-02"));
        assert!(ends("2026-12-01", "2046-12-31"));
        assert!(!ends("2016-01-01", "2027-12-31"));
        assert!(ends("2026-01-01", "2099-12-31"));
        assert!(ends("2090-01-01", "2100-01-01"));
        assert!(ends("2024-02-29", "2044-03-01"));
        assert!(!ends("2024-02-29", "2044-02-29"));
    }

    #[test]
    fn flight_includes_both_end_days_whole() {
        let flight = Flight {
            start: date("2026-11-01"),
            end: date("2026-12-31"),
        };
        assert!(!flight.contains(ts("2026-10-31T23:59:59.999Z")));
        assert!(flight.contains(ts("2026-11-01T00:00:00Z")));
        assert!(flight.contains(ts("2026-11-20T10:00:00Z")));
        assert!(flight.contains(ts("2026-12-31T23:59:59.999Z")));
        assert!(!flight.contains(ts("2027-01-01T00:00:00Z")));
        // The boundary is UTC, not the bid's local time.
        assert!(!flight.contains(ts("2026-11-01T00:30:00+01:00")));
        assert!(flight.contains(ts("2026-12-31T20:00:00-03:59")));
        assert!(!flight.contains(ts("2026-12-31T21:00:00-03:00")));
    }

    #[test]
    fn one_day_flight() {
        let day = date("2024-02-29");
        let flight = Flight {
            start: day,
            end: day,
        };
        assert!(flight.contains(day.start()));
        assert!(flight.contains(Timestamp(day.start().0 + 86_399_999)));
        assert!(!flight.contains(Timestamp(day.start().0 + 86_400_000)));
        assert!(!flight.contains(Timestamp(day.start().0 - 1)));
    }

    #[test]
    fn devicetype_mapping_follows_openrtb() {
        use Device::*;
        let expect: [(i32, &[Device]); 10] = [
            (0, &[]),
            (1, &[Phone, Tablet]),
            (2, &[Desktop]),
            (3, &[Ctv]),
            (4, &[Phone]),
            (5, &[Tablet]),
            (6, &[ConnectedDevice]),
            (7, &[SetTopBox]),
            (8, &[Dooh]),
            (9, &[]),
        ];
        for (devicetype, matching) in expect {
            for device in Device::ALL {
                assert_eq!(
                    device.matches_devicetype(devicetype),
                    matching.contains(&device),
                    "{device} vs devicetype {devicetype}"
                );
            }
        }
        assert!(!Desktop.matches_devicetype(-2));
    }

    #[test]
    fn plcmt_mapping_follows_openrtb_2_6() {
        use Placement::*;
        let expect: [(i32, &[Placement]); 7] = [
            (-1, &[]),
            (0, &[]),
            (1, &[Instream]),
            (2, &[Accompanying, Outstream]),
            (3, &[Interstitial, Outstream]),
            (4, &[Standalone, Outstream]),
            (5, &[]),
        ];
        for (plcmt, matching) in expect {
            for placement in Placement::ALL {
                assert_eq!(
                    placement.matches_plcmt(plcmt),
                    matching.contains(&placement),
                    "{placement} vs plcmt {plcmt}"
                );
            }
        }
        for extreme in [i32::MIN, i32::MAX] {
            assert!(Placement::ALL.iter().all(|p| !p.matches_plcmt(extreme)));
        }
    }

    #[test]
    fn placement_names_round_trip() {
        for placement in Placement::ALL {
            assert_eq!(Placement::parse(placement.as_str()), Some(placement));
            assert_eq!(placement.to_string(), placement.as_str());
        }
        assert_eq!(Placement::parse("in-stream"), None);
        assert_eq!(Placement::parse("Instream"), None);
    }

    #[test]
    fn device_names_round_trip() {
        for device in Device::ALL {
            assert_eq!(Device::parse(device.as_str()), Some(device));
        }
        assert_eq!(Device::parse("mobile"), None);
        assert_eq!(Device::parse("Desktop"), None);
    }

    #[test]
    fn os_names_round_trip() {
        for os in Os::ALL {
            assert_eq!(Os::parse(os.as_str()), Some(os));
            // Every YAML name is also what some device would send.
            assert!(os.matches(os.as_str()), "{os}");
            for alias in os.aliases() {
                assert!(alias.len() <= 24, "{alias} must fit the buffer");
            }
        }
        assert_eq!(Os::parse("iOS"), None);
        assert_eq!(Os::parse("mac"), None);
    }

    #[test]
    fn os_matches_what_devices_send() {
        use Os::*;
        let cases: [(&str, Os); 25] = [
            ("iOS", Ios),
            ("ios", Ios),
            ("IOS", Ios),
            ("iPadOS", Ios),
            ("iPhone OS", Ios),
            ("Android", Android),
            ("android 14", Android),
            ("Windows", Windows),
            ("Windows 10", Windows),
            ("Windows NT 10.0", Windows),
            ("Mac OS X", Macos),
            ("OS X", Macos),
            ("macOS", Macos),
            ("Mac OS X 10.15.7", Macos),
            ("Linux", Linux),
            ("Chrome OS", Chromeos),
            ("ChromeOS", Chromeos),
            ("tvOS", Tvos),
            ("Roku OS", Roku),
            ("Roku", Roku),
            ("Tizen", Tizen),
            ("webOS", Webos),
            ("WebOS TV", Webos),
            ("Fire OS", Fireos),
            ("fire-os", Fireos),
        ];
        for (device_os, expected) in cases {
            for os in Os::ALL {
                assert_eq!(
                    os.matches(device_os),
                    os == expected,
                    "{os} vs device.os {device_os:?}"
                );
            }
        }
        for other in [
            "",
            " ",
            "10.0",
            "Windows Phone",
            "BlackBerry",
            "Symbian",
            "iOSX",
            "Androidish",
            "Linux Ubuntu",
            "macOS\u{e9}",
            "a very long operating system name that fits no buffer",
        ] {
            assert!(
                Os::ALL.iter().all(|os| !os.matches(other)),
                "{other:?} matched"
            );
        }
    }

    fn slot(days: &[Weekday], from_minute: u16, to_minute: u16) -> DaypartSlot {
        DaypartSlot {
            days: days.to_vec(),
            from_minute,
            to_minute,
        }
    }

    #[test]
    fn daypart_slots_include_from_and_exclude_to() {
        use Weekday::*;
        let parts = Dayparts {
            timezone: DaypartZone::Utc,
            slots: vec![slot(&[Mon, Tue, Wed, Thu, Fri], 7 * 60, 9 * 60 + 30)],
        };
        // 2026-11-25 is a Wednesday.
        assert!(!parts.contains(ts("2026-11-25T06:59:59.999Z"), None));
        assert!(parts.contains(ts("2026-11-25T07:00:00Z"), None));
        assert!(parts.contains(ts("2026-11-25T09:29:59.999Z"), None));
        assert!(!parts.contains(ts("2026-11-25T09:30:00Z"), None));
        // Saturday is not listed.
        assert!(!parts.contains(ts("2026-11-28T08:00:00Z"), None));
        // A UTC daypart ignores the device's offset.
        assert!(parts.contains(ts("2026-11-25T08:00:00Z"), Some(600)));
    }

    /// Pacing reads a day-parted line item's open minutes: those of today
    /// through the current one, and those from the start of today to the
    /// end of the flight, overlapping slots once, on the slots' clock.
    #[test]
    fn open_time_counts_the_open_minutes_of_today_and_of_the_flight() {
        use Weekday::*;
        let parts = Dayparts {
            timezone: DaypartZone::Utc,
            slots: vec![
                slot(&Weekday::ALL, 0, 120),
                // Overlaps the first on Wednesdays: 00:00-03:00 in all.
                slot(&[Wed], 60, 180),
            ],
        };
        let week = parts.open_week();
        // 2026-11-25 is a Wednesday; the flight ends on Saturday the 28th:
        // Wednesday 180 minutes, then three days of 120.
        let end = Date::parse("2026-11-28").unwrap();
        let at = |t: &str, offset| week.open_time(ts(t), offset, end);
        assert_eq!(
            at("2026-11-25T00:00:00Z", None),
            OpenTime {
                elapsed: 1,
                span: 540
            }
        );
        assert_eq!(at("2026-11-25T01:30:00Z", None).elapsed, 91);
        // Past today's slots, all of today's share.
        assert_eq!(at("2026-11-25T12:00:00Z", None).elapsed, 180);
        // A later day: Thursday's 120 of 360 left.
        assert_eq!(
            at("2026-11-26T23:59:00Z", None),
            OpenTime {
                elapsed: 120,
                span: 360
            }
        );
        // Past the flight's end: today alone.
        assert_eq!(at("2026-12-01T00:30:00Z", None).span, 120);
        // A flight of weeks: whole weeks, then the days left.
        let long = week.open_time(
            ts("2026-11-25T00:00:00Z"),
            None,
            Date::parse("2027-01-05").unwrap(),
        );
        // 42 days from Wednesday: 6 weeks of 7 × 120 + 60.
        assert_eq!(long.span, 6 * (7 * 120 + 60));
        // The user's clock, on UTC days. At 16:00 UTC on Tuesday it is 01:00
        // Wednesday in Tokyo (+9): Tuesday's UTC day holds Wednesday's
        // 00:00-03:00 there, and each later UTC day to Saturday the next
        // local day's 120 (Sunday's at 15:00 UTC on Saturday, in the flight).
        let user = Dayparts {
            timezone: DaypartZone::User,
            ..parts.clone()
        }
        .open_week();
        let tokyo = user.open_time(ts("2026-11-24T16:00:00Z"), Some(540), end);
        assert_eq!(
            tokyo,
            OpenTime {
                elapsed: 61,
                span: 180 + 4 * 120
            }
        );
        // New York (-5), 20:00-22:00 there is 01:00-03:00 UTC of the next
        // UTC day: the flight's last UTC day holds Friday's evening, and no
        // evening after the flight is funded.
        let evenings = Dayparts {
            timezone: DaypartZone::User,
            slots: vec![slot(&Weekday::ALL, 20 * 60, 22 * 60)],
        }
        .open_week();
        let ny = |t: &str| evenings.open_time(ts(t), Some(-300), end);
        assert_eq!(
            ny("2026-11-25T00:30:00Z"),
            OpenTime {
                elapsed: 0,
                span: 4 * 120
            }
        );
        assert_eq!(ny("2026-11-25T02:30:00Z").elapsed, 91);
        assert_eq!(
            ny("2026-11-28T12:00:00Z"),
            OpenTime {
                elapsed: 120,
                span: 120
            }
        );
        // A UTC week ignores the offset.
        assert_eq!(
            week.open_time(ts("2026-11-24T16:00:00Z"), Some(540), end)
                .elapsed,
            120
        );
    }

    #[test]
    fn daypart_slot_can_run_to_the_end_of_the_day() {
        use Weekday::*;
        let parts = Dayparts {
            timezone: DaypartZone::Utc,
            slots: vec![slot(&[Sun], 22 * 60, 24 * 60), slot(&[Mon], 0, 60)],
        };
        // 2026-11-29 is a Sunday.
        assert!(!parts.contains(ts("2026-11-29T21:59:59.999Z"), None));
        assert!(parts.contains(ts("2026-11-29T22:00:00Z"), None));
        assert!(parts.contains(ts("2026-11-29T23:59:59.999Z"), None));
        assert!(parts.contains(ts("2026-11-30T00:00:00Z"), None));
        assert!(parts.contains(ts("2026-11-30T00:59:59.999Z"), None));
        assert!(!parts.contains(ts("2026-11-30T01:00:00Z"), None));
        // The Sunday slot does not open on Monday evening.
        assert!(!parts.contains(ts("2026-11-30T23:00:00Z"), None));
    }

    #[test]
    fn user_dayparts_shift_by_the_device_offset_across_midnight() {
        use Weekday::*;
        let parts = Dayparts {
            timezone: DaypartZone::User,
            slots: vec![slot(&[Mon], 60, 120)],
        };
        // UTC 23:30 on Sunday 2026-11-29 at +02:00 is Monday 01:30 locally.
        let sunday_late = ts("2026-11-29T23:30:00Z");
        assert!(parts.contains(sunday_late, Some(120)));
        assert!(!parts.contains(sunday_late, None), "no offset means UTC");
        assert!(!parts.contains(sunday_late, Some(0)));
        // Boundaries in local time: from inclusive, to exclusive.
        assert!(parts.contains(ts("2026-11-29T23:00:00Z"), Some(120)));
        assert!(!parts.contains(ts("2026-11-29T22:59:59.999Z"), Some(120)));
        assert!(!parts.contains(ts("2026-11-30T00:00:00Z"), Some(120)));

        // UTC 02:30 on Tuesday 2026-12-01 at -05:00 is Monday 21:30 locally.
        let evening = Dayparts {
            timezone: DaypartZone::User,
            slots: vec![slot(&[Mon], 21 * 60, 22 * 60)],
        };
        let tuesday_early = ts("2026-12-01T02:30:00Z");
        assert!(evening.contains(tuesday_early, Some(-300)));
        assert!(!evening.contains(tuesday_early, None));
        assert!(!evening.contains(tuesday_early, Some(-180)));
        // Half-hour offsets count too (India, +05:30).
        assert!(evening.contains(ts("2026-11-30T15:45:00Z"), Some(330)));
        assert!(!evening.contains(ts("2026-11-30T15:15:00Z"), Some(330)));
    }

    #[test]
    fn impossible_offsets_are_ignored() {
        use Weekday::*;
        let parts = Dayparts {
            timezone: DaypartZone::User,
            slots: vec![slot(&[Wed], 12 * 60, 13 * 60)],
        };
        let noon = ts("2026-11-25T12:30:00Z");
        assert!(parts.contains(noon, Some(18 * 60 + 1)));
        assert!(parts.contains(noon, Some(i32::MIN)));
        assert!(parts.contains(noon, Some(i32::MAX)));
        assert!(!parts.contains(noon, Some(18 * 60)));
        assert!(parts.contains(ts("2026-11-25T00:30:00Z"), Some(12 * 60)));
        // Far-off instants do not overflow.
        assert!(!parts.contains(Timestamp(i64::MAX), Some(14 * 60)));
        assert!(!parts.contains(Timestamp(i64::MIN), Some(-12 * 60)));
    }

    #[test]
    fn summary_pluralises() {
        let s = Summary {
            advertisers: 1,
            orders: 0,
            line_items: 2,
            creatives: 1,
            audiences: 3,
            exchanges: 0,
            currencies: None,
        };
        assert_eq!(
            s.to_string(),
            "1 advertiser, 0 orders, 2 line items, 1 creative, 3 audiences"
        );
        let s = Summary {
            exchanges: 2,
            currencies: Some(1),
            ..s
        };
        assert_eq!(
            s.to_string(),
            "1 advertiser, 0 orders, 2 line items, 1 creative, 3 audiences, 2 exchanges, \
             rates for 1 currency"
        );
    }
}

/// How an exchange is dealt with: one `exchange:` file each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Also the path of its bid endpoint: `POST /openrtb2/bid/{id}`.
    pub id: String,
    pub name: String,
    pub price_encryption: Option<PriceEncryption>,
    pub charge_on: ChargeOn,
    /// The InLine VAST version answered when a player names no protocol,
    /// as its OpenRTB protocol code (2 = 2.0, 3 = 3.0, 7 = 4.0, 11 = 4.1,
    /// 13 = 4.2).
    pub vast_default_protocol: i32,
    pub gzip_responses: bool,
    /// Answers in OpenRTB 2.5 when a request's `x-openrtb-version` header
    /// names no version (`openrtb_version: "2.5"`); else in 2.6.
    pub openrtb_2_5: bool,
    /// The deadline of a request that carries no `tmax`.
    pub tmax_default_ms: Option<u32>,
    /// How long its bids hold their cost while no notice charges them
    /// (`None`: the bidder's default).
    pub reservation_ttl_secs: Option<u32>,
    /// Its user-sync URL, with a `${UID}` or `$UID` macro.
    pub sync_url: Option<String>,
    /// Hosts a sync's `redir` may go to (lower case).
    pub sync_redirect_hosts: Vec<String>,
    /// Networks its bid requests may come from; empty: anywhere.
    pub allow_from: Vec<ipnet::IpNet>,
    /// Our seat at the exchange: named in answers, checked against
    /// `wseat`/`bseat`.
    pub seat: Option<String>,
    pub file: PathBuf,
}

/// The `${AUCTION_PRICE}` encryption an exchange uses, with its keys as read
/// from the environment when the config was loaded.
#[derive(Clone, PartialEq, Eq)]
pub struct PriceEncryption {
    pub scheme: EncryptionScheme,
    /// Web-safe base64, checked when the config was loaded.
    pub encryption_key: String,
    pub integrity_key: String,
    /// The IV carries when the price was encrypted (Google's does).
    pub iv_timestamps: bool,
}

impl fmt::Debug for PriceEncryption {
    /// Keys are secrets: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriceEncryption")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncryptionScheme {
    /// Google Authorized Buyers: web-safe base64 of IV, price XOR pad and
    /// an integrity tag.
    Google,
}

impl EncryptionScheme {
    pub const ALL: [EncryptionScheme; 1] = [EncryptionScheme::Google];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionScheme::Google => "google",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<EncryptionScheme> {
        EncryptionScheme::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// Which notice of a bid charges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChargeOn {
    /// The win notice (`nurl`); a billing notice changes nothing.
    Win,
    /// The billing notice (`burl`), sent when the ad rendered; a win
    /// notice only records the win.
    Billing,
    /// Whichever comes first; the other is a duplicate.
    #[default]
    First,
}

impl ChargeOn {
    pub const ALL: [ChargeOn; 3] = [ChargeOn::Win, ChargeOn::Billing, ChargeOn::First];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeOn::Win => "win",
            ChargeOn::Billing => "billing",
            ChargeOn::First => "first",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ChargeOn> {
        ChargeOn::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Exchange rates against USD, the currency of every budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CurrencyRates {
    /// The day the rates were taken.
    pub as_of: Date,
    /// How many days from `as_of` they price, when the file says
    /// (`max_age_days`); else the bidder's setting.
    pub max_age_days: Option<u32>,
    /// Upper-case ISO 4217 codes and their rates, sorted by code; USD is
    /// never listed (its rate is 1).
    pub rates: Vec<(String, Rate)>,
    pub file: PathBuf,
}

impl CurrencyRates {
    pub fn rate(&self, code: &str) -> Option<Rate> {
        if code.eq_ignore_ascii_case("USD") {
            return Some(Rate::ONE);
        }
        self.rates
            .binary_search_by(|(c, _)| {
                c.as_bytes()
                    .iter()
                    .map(u8::to_ascii_uppercase)
                    .cmp(code.bytes().map(|b| b.to_ascii_uppercase()))
            })
            .ok()
            .map(|i| self.rates[i].1)
    }
}

/// Whether `code` is meant as an IAB 1.0 code (`IAB` in any case, then a
/// digit), right or not; Content Taxonomy 2.x/3.x ids never look so. The
/// config's check and the audiences' page matching read codes alike.
#[inline]
pub fn looks_iab1(code: &str) -> bool {
    code.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("IAB"))
        && code.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
}

/// An interest topic as configured and as events name it: trimmed and in
/// lower case, so that `Gadgets`, `GADGETS` and `gadgets ` from an upload
/// are the `gadgets` a line item targets (a topic is a word, not an id;
/// product ids stay exact).
pub fn interest_topic(topic: &str) -> std::borrow::Cow<'_, str> {
    let t = topic.trim();
    if t.chars().any(char::is_uppercase) {
        std::borrow::Cow::Owned(t.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(t)
    }
}
