//! One pass over the request for what selection needs: who, where, on what
//! device, what the page is about, and what privacy allows.

use std::borrow::Cow;

use audiences::{Page, Visitor};
use config::{Date, Timestamp};
use ortb::BidRequest;

use crate::keywords::RequestKeywords;
use crate::privacy::{PrivacySettings, Restriction};

pub struct Context<'r> {
    /// Why behavioural audiences are off for this request, if they are.
    pub restriction: Option<Restriction>,
    /// The user may be named in the ad's tracking URLs (the user key
    /// that attributes sales): behavioural use allowed, and under GDPR
    /// consent for measurement too (`privacy::Allowed`).
    pub measurement: bool,
    pub visitor: Visitor<'r>,
    /// The user's ids by source, for list audiences.
    pub ids: RequestIds<'r>,
    pub page: Page<'r>,
    /// ISO-3166-1 alpha-3 as OpenRTB sends it (`device.geo`, else `user.geo`).
    pub country: Option<&'r str>,
    /// `country` as the line items' country lists are kept
    /// ([`crate::snapshot::country_key`]).
    pub country_key: Option<[u8; 3]>,
    pub devicetype: Option<i32>,
    /// `geo.region` (ISO-3166-2 subdivision, usually without the country).
    pub region: Option<&'r str>,
    pub city: Option<&'r str>,
    /// Minutes east of UTC where the user is (`geo.utcoffset`).
    pub utcoffset: Option<i32>,
    pub os: Option<&'r str>,
    /// `site.domain`, else the host of `site.page`.
    pub site_domain: Option<&'r str>,
    pub app_bundle: Option<&'r str>,
    /// `site.publisher.id` or `app.publisher.id`.
    pub publisher: Option<&'r str>,
    pub keywords: RequestKeywords<'r>,
    pub bcat: &'r [Cow<'r, str>],
    /// `acat`: when given, the only advertiser categories allowed.
    pub acat: &'r [Cow<'r, str>],
    pub badv: &'r [Cow<'r, str>],
    /// `wlang` and `wlangb` (`BidRequest::allowed_languages`): when
    /// either lists any, the only languages a creative that says its own
    /// may be in ([`Context::allows_language`]).
    pub languages: Option<Box<[String]>>,
    /// `bcat` or `acat` is given in a taxonomy other than IAB 1.0 (the
    /// request's `cattax`), which our categories cannot be compared with.
    pub bcat_foreign: bool,
    /// Some `badv` entry is more than a bare domain (a URL, a port, a
    /// trailing dot): the check reads each entry's host (see
    /// `checks::listed_domain`). Found once here, so a plain list costs
    /// each candidate nothing more.
    pub badv_loose: bool,
    /// `test: 1`: answered as usual, but nothing is spent or counted.
    pub test: bool,
    /// The page is https (`site.page`): every imp on it is secure, whatever
    /// its own `secure` says.
    pub secure_page: bool,
    /// What the answer is priced in (USD unless the request says otherwise).
    pub currency: Currency,
    /// The currency rates, when there are some recent enough to price in.
    pub rates: Option<&'r config::CurrencyRates>,
    /// Some line item buys native: only then is a native request read.
    pub buys_native: bool,
    /// The InLine VAST version for players that name no protocol: the
    /// exchange's `vast_default`.
    pub vast_default: creatives::VastVersion,
    /// Our tracking URLs (the public URL) are https: VAST and native ads
    /// may serve on secure slots.
    pub https_trackers: bool,
    /// The Digital Services Act signal (`regs.ext.dsa`), when there is
    /// one: read by the endpoint ([`Context::dsa_stop`]) and the answer.
    pub dsa: ortb::DsaAsk,
    pub now: Timestamp,
    pub today: Date,
}

/// `user.buyeruid` and `user.eids` as list audiences read them. The eids
/// are read at the first list audience that asks (2.5 requests carry them
/// in `user.ext`, which costs a parse), and once.
pub struct RequestIds<'r> {
    user: Option<&'r ortb::User<'r>>,
    eids: std::cell::OnceCell<Cow<'r, [ortb::Eid<'r>]>>,
    /// Lists already asked about (by a hash of their key) and the answer:
    /// every line item buying a list asks again, on every imp.
    answers: std::cell::RefCell<Vec<(u64, bool)>>,
}

/// Entries of the block lists (`badv`, `bcat`, `acat` together) read at
/// most: past it, every advertiser is taken as blocked (reason `blocked`).
/// Each advertiser is compared with every entry for every line item on
/// every imp (CPU probe: a megabyte of `bcat` held a core for a second), and
/// an entry not read could be the one that blocks it. Exchanges send tens,
/// a few hundred at most.
pub(crate) const MAX_BLOCK_ENTRIES: usize = 2_048;

/// Entries of each page list (`Page::products`, `Page::categories`) read
/// at most: a page is about a few things, and each is compared with every
/// audience's for every line item that buys one (CPU probe: 143,000
/// categories in one request cost a second of CPU).
pub(crate) const MAX_PAGE_ENTRIES: usize = 64;

/// Ids read per source per request at most, over all its `user.eids`
/// entries: an exchange sends a handful; a request with thousands must not
/// buy thousands of lookups.
const MAX_IDS: usize = 64;

/// Which list an answer is for: FNV-1a of its key (a handful per request,
/// so a collision between two of them is no concern).
fn answer_key(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl audiences::UserIds for RequestIds<'_> {
    fn any(&self, source: &config::ListSource, f: &mut dyn FnMut(&str) -> bool) -> bool {
        let Some(user) = self.user else {
            return false;
        };
        // The zero id is everyone without one (`is_zeroed`): a list that
        // holds it (MAID lists often do) must not take in all of them.
        let mut f = |id: &str| !is_zeroed(id) && f(id);
        match source {
            config::ListSource::BuyerUid => user.buyeruid.as_deref().is_some_and(&mut f),
            other => {
                let name = match other {
                    config::ListSource::Sha256Email => "sha256_email",
                    _ => other.as_str(),
                };
                let eids = self.eids.get_or_init(|| user.eids());
                eids.iter()
                    .take(MAX_IDS)
                    .filter(|e| {
                        e.source
                            .as_deref()
                            .is_some_and(|s| s.trim().eq_ignore_ascii_case(name))
                    })
                    .flat_map(|e| e.uids.iter())
                    .take(MAX_IDS)
                    .filter_map(|u| u.id.as_deref())
                    .any(&mut f)
            }
        }
    }

    fn remembered(&self, key: &str) -> Option<bool> {
        let k = answer_key(key);
        self.answers
            .borrow()
            .iter()
            .find(|(x, _)| *x == k)
            .map(|&(_, member)| member)
    }

    fn remember(&self, key: &str, member: bool) {
        self.answers.borrow_mut().push((answer_key(key), member));
    }
}

impl<'r> Context<'r> {
    /// The request's country in upper case (`country_key` as text), as
    /// targeting and the model read it: `usa` is `USA`.
    pub(crate) fn country_upper(&self) -> Option<&str> {
        self.country_key
            .as_ref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// Whether a creative whose language is `tag` (BCP 47) may serve: the
    /// request lists no languages, or lists its own, ignoring case. A
    /// publisher restricts languages, not regions: `en-US` allows an
    /// `en-GB` ad. A script, where both say one, must agree (`zh-Hant`
    /// does not allow `zh-Hans`). `xx`, OpenRTB's word for an ad with no
    /// words, serves anywhere.
    pub(crate) fn allows_language(&self, tag: &str) -> bool {
        let (language, script) = ortb::language_and_script(tag);
        if language.eq_ignore_ascii_case("xx") {
            return true;
        }
        self.languages.as_ref().is_none_or(|allowed| {
            allowed.iter().any(|l| {
                let (l, s) = ortb::language_and_script(l);
                l.eq_ignore_ascii_case(language)
                    && match (s, script) {
                        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                        _ => true,
                    }
            })
        })
    }

    pub fn new(req: &'r BidRequest<'r>, now: Timestamp, privacy: &PrivacySettings) -> Context<'r> {
        // Behavioural audiences need the user's data; contextual ones do not.
        let mut dsa = ortb::DsaAsk::default();
        let decision = crate::privacy::decide_seeing(req, privacy, |s| dsa = s.dsa);
        let restriction = decision.err();
        let measurement = decision.is_ok_and(|a| a.measurement);
        let device = req.device.as_ref();
        let user = req.user.as_ref();
        let site = req.site.as_ref();
        let app = req.app.as_ref();

        // The bidder's own id comes back as buyeruid after a cookie sync;
        // the exchange's user id and the device's advertising id follow.
        // Ids no honest system writes (too long) count as absent: they would
        // only grow the frequency store.
        let user_key = user
            .and_then(|u| user_id(u.buyeruid.as_deref()))
            .or_else(|| user.and_then(|u| user_id(u.id.as_deref())))
            .or_else(|| device.and_then(|d| user_id(d.ifa.as_deref())));

        // Device geo is where the impression happens; user geo (home) is
        // the fallback, field by field.
        let geos = [
            device.and_then(|d| d.geo.as_ref()),
            user.and_then(|u| u.geo.as_ref()),
        ];
        let country = geo_str(&geos, |g| g.country.as_deref());
        let region = geo_str(&geos, |g| g.region.as_deref());
        let city = geo_str(&geos, |g| g.city.as_deref());
        let utcoffset = geos.iter().flatten().find_map(|g| g.utcoffset);

        let mut page = Page::default();
        let mut keywords = RequestKeywords::default();
        let mut content = None;
        if let Some(site) = site {
            for list in [&site.cat, &site.pagecat, &site.sectioncat] {
                push_all(&mut page.categories, list);
            }
            push_some(
                &mut page.products,
                site.page.as_deref().and_then(product_in_url),
            );
            keywords.add(site.keywords.as_deref(), &site.kwarray);
            content = site.content.as_ref();
        }
        if let Some(app) = app {
            for list in [&app.cat, &app.pagecat, &app.sectioncat] {
                push_all(&mut page.categories, list);
            }
            keywords.add(app.keywords.as_deref(), &app.kwarray);
            content = content.or(app.content.as_ref());
        }
        if let Some(content) = content {
            push_all(&mut page.categories, &content.cat);
            push_some(&mut page.products, non_empty(content.id.as_deref()));
            push_some(
                &mut page.products,
                content.url.as_deref().and_then(product_in_url),
            );
            keywords.add(content.keywords.as_deref(), &content.kwarray);
        }
        // The user's own keywords are the user's interests (OpenRTB
        // `user.keywords`), a profile: what the page is about is
        // contextual, these are not, and they go where privacy lets
        // behavioural data go.
        if let Some(u) = user.filter(|_| restriction.is_none()) {
            keywords.add(u.keywords.as_deref(), &u.kwarray);
        }
        // The taxonomy of the categories: the site's or app's, else the
        // content's; absent means IAB 1.0 by the spec.
        page.cattax = site
            .and_then(|s| s.cattax)
            .or_else(|| app.and_then(|a| a.cattax))
            .or_else(|| content.and_then(|c| c.cattax));
        // Product hints some exchanges and retail sites pass in ext: the
        // site's or app's are the page's. An imp's are its slot's own
        // (`select::Offer::page`): a retail page's sponsored slot for one
        // product qualified every other slot of the page for it.
        for ext in [site.and_then(|s| s.ext), app.and_then(|a| a.ext)]
            .into_iter()
            .flatten()
        {
            product_hints(ext.get(), &mut page.products);
        }
        // Read up to a bound (see `MAX_PAGE_ENTRIES`); cut once here, not
        // looked at for each entry pushed.
        page.products.truncate(MAX_PAGE_ENTRIES);
        page.categories.truncate(MAX_PAGE_ENTRIES);

        Context {
            restriction,
            measurement,
            ids: RequestIds {
                user,
                eids: std::cell::OnceCell::new(),
                answers: std::cell::RefCell::new(Vec::new()),
            },
            visitor: Visitor {
                user: user_key,
                behavioural: restriction.is_none(),
                now,
            },
            page,
            country,
            country_key: country.and_then(crate::snapshot::country_key),
            devicetype: device.and_then(|d| d.devicetype),
            region,
            city,
            utcoffset,
            os: device.and_then(|d| non_empty(d.os.as_deref())),
            site_domain: site.and_then(|s| {
                non_empty(s.domain.as_deref()).or_else(|| s.page.as_deref().and_then(url_host))
            }),
            app_bundle: app.and_then(|a| non_empty(a.bundle.as_deref())),
            publisher: site
                .and_then(|s| s.publisher.as_ref())
                .or_else(|| app.and_then(|a| a.publisher.as_ref()))
                .and_then(|p| non_empty(p.id.as_deref())),
            keywords,
            bcat: &req.bcat,
            acat: &req.acat,
            badv: &req.badv,
            languages: req.allowed_languages(),
            bcat_foreign: (!req.bcat.is_empty() || !req.acat.is_empty())
                && req.cattax.is_some_and(|t| t != 1),
            // Anything but a bare host name: a scheme, a path, a port, a
            // user, white space, a wildcard, a dot first or last.
            badv_loose: req.badv.iter().any(|b| {
                b.starts_with('.')
                    || b.ends_with('.')
                    || !b.bytes().all(|c| HOST_BYTE[usize::from(c)])
            }),
            test: req.is_test(),
            secure_page: site
                .and_then(|s| s.page.as_deref())
                .is_some_and(crate::snapshot::is_https),
            currency: Currency::USD,
            rates: None,
            buys_native: true,
            vast_default: creatives::VastVersion::V3_0,
            https_trackers: false,
            dsa,
            now,
            today: now.date(),
        }
    }

    /// Entries of `badv`, `bcat` and `acat` together.
    #[inline]
    pub fn block_entries(&self) -> usize {
        self.badv.len() + self.bcat.len() + self.acat.len()
    }

    /// No bid where the DSA information is required and the publisher
    /// says it cannot show it: the ad would have to, and ours do not (a
    /// bid saying it renders it would be a false statement; one saying it
    /// does not would be thrown away).
    pub(crate) fn dsa_stop(&self) -> Option<crate::nobid::NoBid> {
        (self.dsa.required() && self.dsa.advertiser_must_render())
            .then_some(crate::nobid::NoBid::Dsa)
    }
}

/// The currency of an answer and its rate to USD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Currency {
    /// Upper-case ISO 4217.
    pub code: [u8; 3],
    pub rate: config::Rate,
}

impl Currency {
    pub const USD: Currency = Currency {
        code: *b"USD",
        rate: config::Rate::ONE,
    };

    pub fn code(&self) -> &str {
        // Most answers are in dollars: their code without a UTF-8 check of
        // its own (a bid reads it several times).
        if self.is_usd() {
            return "USD";
        }
        // Built only from ASCII letters.
        std::str::from_utf8(&self.code).unwrap_or("USD")
    }

    pub fn is_usd(&self) -> bool {
        self.code == *b"USD"
    }

    /// The answer's currency for a request's `cur`: USD when it is absent
    /// or allows USD (budgets are USD: no conversion is the safest), else
    /// the first listed currency with a rate. `None`: nothing we can price in.
    pub fn of_request(
        cur: &[std::borrow::Cow<'_, str>],
        rates: Option<&config::CurrencyRates>,
    ) -> Option<Currency> {
        if cur.is_empty() || cur.iter().any(|c| c.eq_ignore_ascii_case("USD")) {
            return Some(Currency::USD);
        }
        let rates = rates?;
        cur.iter().take(16).find_map(|c| {
            Some(Currency {
                code: Currency::code_of(c)?,
                rate: rates.rate(c)?,
            })
        })
    }

    /// [`Currency::of_request`] for a whole request, but in the currency of
    /// its first fixed-price deal (`at` 3) that is `ours` (a line item
    /// buys in it, open to our seat), that `cur` lists and that has a
    /// rate: such a deal is then bid at its agreed price to the micro,
    /// where a USD bid would be converted back at the exchange's rate, a
    /// little under the price (refused) or over it (overpaid) (exchange
    /// probe: a 2.00 EUR deal was answered as 2.105264 USD whenever `cur`
    /// allowed USD too). Another buyer's deal changes nothing: it made
    /// every bid of the answer a converted one (review).
    pub fn of_request_with_deals(
        req: &ortb::BidRequest<'_>,
        rates: Option<&config::CurrencyRates>,
        ours: impl Fn(&ortb::Deal<'_>) -> bool,
    ) -> Option<Currency> {
        Currency::of_fixed_deals(req, rates, ours).or_else(|| Currency::of_request(&req.cur, rates))
    }

    fn of_fixed_deals(
        req: &ortb::BidRequest<'_>,
        rates: Option<&config::CurrencyRates>,
        ours: impl Fn(&ortb::Deal<'_>) -> bool,
    ) -> Option<Currency> {
        // An exchange that lists no currency takes its default, USD.
        if req.cur.is_empty() {
            return None;
        }
        let rates = rates?;
        let listed = |code: &[u8; 3]| {
            req.cur
                .iter()
                .take(16)
                .any(|c| c.as_bytes().eq_ignore_ascii_case(code))
        };
        req.imp
            .iter()
            .filter_map(|imp| imp.pmp.as_ref())
            .flat_map(|pmp| pmp.deals.iter().take(64))
            .filter(|d| d.at == Some(crate::checks::FIXED_PRICE) && d.bidfloor > 0 && ours(d))
            .find_map(|d| {
                let code = Currency::code_of(&d.bidfloorcur)?;
                if &code == b"USD" || !listed(&code) {
                    return None;
                }
                Some(Currency {
                    code,
                    rate: rates.rate(&d.bidfloorcur)?,
                })
            })
    }

    /// `code` as an upper-case ISO 4217 code, if it is three letters in
    /// either case.
    pub fn code_of(code: &str) -> Option<[u8; 3]> {
        let code = <[u8; 3]>::try_from(code.as_bytes())
            .ok()?
            .map(|b| b.to_ascii_uppercase());
        code.iter().all(u8::is_ascii_uppercase).then_some(code)
    }
}

/// A floor of `amount` in `currency` as USD, rounded up so that a bid
/// clearing it clears the real floor; `None` when the currency has no rate.
pub fn floor_usd(
    amount: i64,
    currency: &str,
    rates: Option<&config::CurrencyRates>,
) -> Option<config::Micros> {
    if amount <= 0 {
        return Some(config::Micros::ZERO);
    }
    // A floor nobody clears (the reader's word for one that is no number,
    // or too large to hold) stays one in any currency: converted, it came
    // out a finite USD amount, and under a rate of a billion a unit some
    // 9,223 USD, which a bid cleared (budgets probe).
    if amount == i64::MAX {
        return Some(config::Micros(i64::MAX));
    }
    if currency.eq_ignore_ascii_case("USD") {
        return Some(config::Micros(amount));
    }
    Some(rates?.rate(currency)?.to_usd_up(config::Micros(amount)))
}

fn geo_str<'r>(
    geos: &[Option<&'r ortb::Geo<'r>>],
    field: impl Fn(&'r ortb::Geo<'r>) -> Option<&'r str>,
) -> Option<&'r str> {
    geos.iter().flatten().find_map(|g| non_empty(field(g)))
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// User ids longer than this count as absent.
pub const MAX_USER_ID_BYTES: usize = audiences::MAX_USER_BYTES;

fn user_id(s: Option<&str>) -> Option<&str> {
    non_empty(s).filter(|s| s.len() <= MAX_USER_ID_BYTES && !is_zeroed(s))
}

/// An advertising id of zeros (`00000000-0000-0000-0000-000000000000`) is
/// what iOS sends when the user has not allowed tracking and Android when
/// the user deleted the id: it is everyone without an id, not one user,
/// and as one it would hold every such user's frequency caps and
/// attribution together.
fn is_zeroed(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b == b'0' || b == b'-')
}

// Pushes one at a time rather than `extend`: smallvec's `extend` is a
// sizeable function per iterator type, and each is code a bid with cold
// caches fetches (six of them were 2 KB).
fn push_all<'r>(out: &mut audiences::PageList<'r>, from: &'r [Cow<'r, str>]) {
    for s in from {
        out.push(s);
    }
}

fn push_some<'r>(out: &mut audiences::PageList<'r>, s: Option<&'r str>) {
    if let Some(s) = s {
        out.push(s);
    }
}

/// `ext.product_id`, `ext.products` or `ext.product_ids` (strings). An ext
/// that does not have this shape is ignored: hints must never fail a request.
pub(crate) fn product_hints<'r>(ext: &'r str, out: &mut audiences::PageList<'r>) {
    #[derive(serde::Deserialize)]
    struct Hints<'a> {
        #[serde(borrow, default)]
        product_id: Option<&'a str>,
        #[serde(borrow, default)]
        products: Vec<&'a str>,
        #[serde(borrow, default)]
        product_ids: Vec<&'a str>,
    }
    // Cheap test first: almost no ext carries product hints. The searcher
    // is built once; `str::contains` would build one per ext.
    static PRODUCT: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("product"));
    if PRODUCT.find(ext.as_bytes()).is_none() {
        return;
    }
    if let Ok(h) = serde_json::from_str::<Hints<'r>>(ext) {
        let all = h
            .product_id
            .into_iter()
            .chain(h.products)
            .chain(h.product_ids);
        for p in all.filter(|p| !p.is_empty()) {
            if out.len() >= MAX_PAGE_ENTRIES {
                break;
            }
            out.push(p);
        }
    }
}

/// The bytes of a bare host name: a table, where three tests per byte
/// cost every request with a `badv` some 300 instructions more.
const HOST_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'.' || c == b'-';
        b += 1;
    }
    t
};

/// The host of an absolute URL, without port or credentials.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?;
    non_empty(Some(host))
}

/// How far into a page URL (its scheme and host count) a product id's
/// marker is looked for. A shop's product path is a few dozen bytes; a
/// path of a million slashes cost 30 ms of CPU a request (each marker
/// tried at every slash), where any other megabyte of a request costs
/// about 2 ms. Within the bound, the three walks cost some tens of
/// microseconds at most.
const PRODUCT_MARKER_WITHIN: usize = 2_048;

/// The markers of a product id in a page URL's path, the first found
/// first: `/dp/ID`, `/gp/product/ID`, `/product/ID`.
const PRODUCT_MARKERS: [&str; 3] = ["/dp/", "/gp/product/", "/product/"];

/// A product id in a shop's page URL: `/dp/ID`, `/gp/product/ID`, `/product/ID`.
/// Each marker counts at its first place only, if that place starts within
/// [`PRODUCT_MARKER_WITHIN`] bytes of the URL.
pub fn product_in_url(url: &str) -> Option<&str> {
    // memchr, not `split(['?', '#'])`: that decodes the URL a character at
    // a time.
    let path = memchr::memchr2(b'?', b'#', url.as_bytes()).map_or(url, |end| &url[..end]);
    let bytes = path.as_bytes();
    let within = &bytes[..bytes.len().min(PRODUCT_MARKER_WITHIN)];
    for marker in PRODUCT_MARKERS {
        // Every marker starts with a slash: its first place is the first
        // slash it follows from. `str::find` would set up a substring
        // searcher per marker and per bid request, several times the cost
        // of this walk over a URL's few slashes (one walk for all three
        // markers cost a banner bid some 90 instructions more: the page's
        // marker is nearly always the first one).
        let found = memchr::memchr_iter(b'/', within)
            .find(|&at| bytes[at..].starts_with(marker.as_bytes()));
        if let Some(at) = found {
            // After the marker's last byte, a slash: a character boundary.
            let rest = &path[at + marker.len()..];
            let id = rest.split('/').next().unwrap_or("");
            if !id.is_empty() {
                return Some(id);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page's lists are read up to `MAX_PAGE_ENTRIES` entries each:
    /// every line item buying a products or categories audience compares
    /// them with its own, on every imp.
    #[test]
    fn page_lists_are_read_up_to_a_bound() {
        let cats: Vec<String> = (0..1_000).map(|i| format!("\"IAB{i}\"")).collect();
        let body = format!(
            r#"{{"id":"r","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],"site":{{"cat":[{c}],"pagecat":[{c}],"ext":{{"products":[{p}]}}}}}}"#,
            c = cats.join(","),
            p = (0..1_000)
                .map(|i| format!("\"P{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let req = ortb::parse_request(body.as_bytes()).expect("parses");
        let ctx = Context::new(&req, Timestamp(0), &PrivacySettings::default());
        assert_eq!(ctx.page.categories.len(), MAX_PAGE_ENTRIES);
        assert_eq!(ctx.page.products.len(), MAX_PAGE_ENTRIES);
        let ids: Vec<String> = (0..1_000).map(|i| format!("\"P{i}\"")).collect();
        let ext = format!("{{\"products\":[{}]}}", ids.join(","));
        let mut products = audiences::PageList::new();
        product_hints(&ext, &mut products);
        assert_eq!(products.len(), MAX_PAGE_ENTRIES);
        assert_eq!(products[0], "P0");
    }

    #[test]
    fn product_hints_in_ext() {
        let mut out = audiences::PageList::new();
        product_hints(r#"{"product_id":"B0X","other":1}"#, &mut out);
        product_hints(r#"{"products":["B0Y","B0Z"]}"#, &mut out);
        product_hints(r#"{"product_ids":"not-a-list"}"#, &mut out);
        product_hints(r#"{"gpid":"/a/b"}"#, &mut out);
        assert_eq!(out[..], ["B0X", "B0Y", "B0Z"]);
    }

    #[test]
    fn a_floor_nobody_clears_stays_one_in_any_currency() {
        let rates = config::CurrencyRates {
            as_of: config::Date::parse("2026-11-24").unwrap(),
            max_age_days: None,
            rates: vec![(
                "VND".into(),
                config::Rate::parse_decimal("1000000000").unwrap(),
            )],
            file: "rates.yaml".into(),
        };
        assert_eq!(
            floor_usd(i64::MAX, "VND", Some(&rates)),
            Some(config::Micros(i64::MAX))
        );
        // 1,000,000,000 VND is one USD.
        assert_eq!(
            floor_usd(1_000_000_000_000_000, "VND", Some(&rates)),
            Some(config::Micros(1_000_000))
        );
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(url_host("https://news.example/a/b?c"), Some("news.example"));
        assert_eq!(
            url_host("http://u:p@news.example:8080/"),
            Some("news.example")
        );
        assert_eq!(url_host("news.example/a"), None);
        assert_eq!(url_host("https:///x"), None);
    }

    #[test]
    fn product_ids_in_urls() {
        assert_eq!(
            product_in_url("https://shop.example/dp/B0TENT0001"),
            Some("B0TENT0001")
        );
        assert_eq!(
            product_in_url("https://shop.example/Tent-Name/dp/B0TENT0001/ref=x?th=1"),
            Some("B0TENT0001")
        );
        assert_eq!(
            product_in_url("https://s.example/gp/product/B0X?a=1"),
            Some("B0X")
        );
        assert_eq!(
            product_in_url("https://s.example/product/123#top"),
            Some("123")
        );
        assert_eq!(product_in_url("https://s.example/products"), None);
        assert_eq!(product_in_url("https://s.example/dp/"), None);
        // A marker's first place decides it; an empty id there passes the
        // turn to the next marker, not to a later place of the same one.
        assert_eq!(
            product_in_url("https://s.example/dp//product/P/dp/D"),
            Some("P")
        );
        assert_eq!(
            product_in_url("https://s.example/product/P/dp/D"),
            Some("D")
        );
    }

    /// Markers are looked for within the URL's first 2,048 bytes: a path
    /// of a million slashes is not walked a million times per marker, and
    /// a marker past the bound is not read.
    #[test]
    fn product_markers_are_looked_for_within_a_bound() {
        let slashes = format!("https://s.example{}dp/X", "/".repeat(1_000_000));
        assert_eq!(product_in_url(&slashes), None);
        let far = format!(
            "https://s.example/{}/dp/B0FAR",
            "a".repeat(PRODUCT_MARKER_WITHIN)
        );
        assert_eq!(product_in_url(&far), None);
        let near = format!(
            "https://s.example/{}/dp/B0NEAR",
            "a".repeat(PRODUCT_MARKER_WITHIN - 40)
        );
        assert_eq!(product_in_url(&near), Some("B0NEAR"));
        // The bound falls inside a two-byte character: the walk cuts
        // bytes, not text, so nothing panics.
        let wide = format!(
            "https://s.example/x{}/dp/B0É",
            "é".repeat(PRODUCT_MARKER_WITHIN)
        );
        assert!(std::str::from_utf8(&wide.as_bytes()[..PRODUCT_MARKER_WITHIN]).is_err());
        assert_eq!(product_in_url(&wide), None);
    }

    /// The reading the walks over slashes stand for: each marker's first
    /// place by `str::find`.
    fn product_in_url_by_find(url: &str) -> Option<&str> {
        let path = url.split(['?', '#']).next().unwrap_or(url);
        PRODUCT_MARKERS.iter().find_map(|marker| {
            let at = path.find(marker)?;
            let id = path[at + marker.len()..].split('/').next().unwrap_or("");
            (!id.is_empty()).then_some(id)
        })
    }

    proptest::proptest! {
        #[test]
        fn walks_over_slashes_find_what_find_finds(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec!["/", "dp", "gp", "product", "P1", "?", "#", "é"]),
                0..24,
            )
        ) {
            let url = format!("https://s.example{}", pieces.concat());
            proptest::prop_assert_eq!(product_in_url(&url), product_in_url_by_find(&url));
        }
    }
}
