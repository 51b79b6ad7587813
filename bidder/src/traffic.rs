//! Synthetic OpenRTB 2.6 bid requests shaped from a config, so that
//! `bidder simulate` without a traffic file exercises every line item.
//!
//! [`synthesize`] writes, for each line item, requests that line item can
//! bid on: its media (banner sizes from its creatives; video and audio slots
//! built around a creative's mimes, duration and companions), countries,
//! regions, cities, devices, operating systems, site/app/publisher allow
//! lists, keywords, deals and audiences. When a line item targets several
//! values (two countries, three devices, two sizes…), it gets one variant
//! per value, up to [`MAX_VARIANTS`], so the traffic as a whole covers what
//! the config targets rather than only each list's first entry.
//!
//! What a request cannot carry is left to the simulation: flights and
//! day-parts depend on the simulated clock (requests give no
//! `geo.utcoffset`, so `user` day-parts read UTC), and budgets, pacing and
//! frequency caps on what was spent and shown before. Templates are not
//! weighted: a line item with more variants gets a larger share of the
//! traffic.
//!
//! Users: a request whose line item has no behavioural audience to meet
//! carries the placeholder [`USER`] as `user.buyeruid`, which the simulator
//! replaces with varying ids so frequency caps behave as with real traffic.
//! Contextual audiences (`products`, `categories`) are met by the page and
//! are preferred; only when none can be does a request carry a real member
//! of a behavioural audience (`views`, `interests`) from the audience data.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::Path;

use config::{
    Advertiser, AllowBlock, Audience, AudienceKind, Config, Creative, CreativeKind, Device,
    LineItem, Media, Os, Placement, Timestamp,
};
use serde_json::{json, Map, Value};

use crate::keywords::{KeywordRule, RequestKeywords};

/// The user id a template carries when any user will do.
pub const USER: &str = "USER";

/// At most this many requests per line item.
pub const MAX_VARIANTS: usize = 8;

/// At most this many user ids from [`users_in_dir`].
pub const MAX_USERS: usize = 100_000;

/// One synthetic bid request, shaped for one line item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub line_item: String,
    /// The BidRequest JSON. `user.buyeruid` is [`USER`] when any user will
    /// do; then, unless a config value (a deal, product or publisher id)
    /// itself holds the letters `USER`, that is the only place they occur.
    pub body: String,
    /// What the request could not satisfy, so its line item will not bid
    /// on it: no user in the audience data is in a behavioural audience
    /// the line item needs, or its targeting contradicts itself. `None`
    /// when every rule a request can meet is met.
    pub unmet: Option<String>,
}

impl Template {
    /// The body with [`USER`] in `user.buyeruid` replaced by `user`, and
    /// nothing else touched.
    pub fn body_for(&self, user: &str) -> String {
        let id = Value::String(user.to_string()).to_string();
        self.body.replace(
            &format!("\"buyeruid\":\"{USER}\""),
            &format!("\"buyeruid\":{id}"),
        )
    }
}

/// Requests for every line item of `config`, at least one each, in config
/// order (advertiser, order, line item). `members(audience, user)` says
/// whether `user` is in a behavioural audience now; `users` are the ids to
/// try (see [`users_in_dir`]).
pub fn synthesize(
    config: &Config,
    members: &dyn Fn(&Audience, &str) -> bool,
    users: &[String],
) -> Vec<Template> {
    // Contextual audiences only read the page, so an empty store answers
    // them exactly as the bidder's will.
    let contextual = audiences::Store::new();
    let mut out = Vec::new();
    let mut n = 0usize;
    for adv in &config.advertisers {
        for order in &adv.orders {
            for item in &order.line_items {
                let who = audience_plan(adv, item, &contextual, members, users);
                for k in 0..variants(adv, item, &who) {
                    let mut unmet = Vec::new();
                    let body = request(adv, item, &who, k, n, &mut unmet);
                    out.push(Template {
                        line_item: item.id.clone(),
                        body: body.to_string(),
                        unmet: (!unmet.is_empty()).then(|| unmet.join("; ")),
                    });
                    n += 1;
                }
            }
        }
    }
    out
}

/// The distinct user ids in the audience event files (`*.jsonl`, one
/// `{"user": …}` object a line) under `dir`, recursively, sorted: the
/// smallest [`MAX_USERS`] of them, so the answer does not depend on the
/// order files are read in. Lines without a string `user` are skipped: the
/// store that loads the same files reports them.
pub fn users_in_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        user: std::borrow::Cow<'a, str>,
    }
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|x| x == "jsonl") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut users = BTreeSet::new();
    for file in files {
        let reader = std::io::BufReader::new(std::fs::File::open(&file)?);
        for line in reader.lines() {
            let line = line?;
            let Ok(parsed) = serde_json::from_str::<Line<'_>>(line.trim()) else {
                continue;
            };
            // An id longer than requests carry is skipped as the store's
            // load skips its events: no traffic for a user without any.
            if parsed.user.is_empty()
                || parsed.user.len() > audiences::MAX_USER_BYTES
                || users.contains(parsed.user.as_ref())
            {
                continue;
            }
            users.insert(parsed.user.into_owned());
            if users.len() > MAX_USERS {
                users.pop_last();
            }
        }
    }
    Ok(users.into_iter().collect())
}

/// How a line item's audience rule is met.
enum Who {
    /// No audience is needed: any user, the placeholder.
    Anyone,
    /// Pages that meet a contextual audience of `any_of` and none of
    /// `none_of`; any user.
    Pages(Vec<PageHint>),
    /// Users in a behavioural audience of `any_of` and in none of `none_of`.
    Members(Vec<String>),
    /// Nothing found: why.
    Nobody(String),
}

#[derive(Clone)]
enum PageHint {
    Product(String),
    /// A content category and the `cattax` it is read in.
    Category(String, i32),
}

fn behavioural(a: &Audience) -> bool {
    matches!(
        a.kind,
        AudienceKind::Views { .. } | AudienceKind::Interests { .. } | AudienceKind::List { .. }
    )
}

fn audience_plan(
    adv: &Advertiser,
    item: &LineItem,
    contextual: &audiences::Store,
    members: &dyn Fn(&Audience, &str) -> bool,
    users: &[String],
) -> Who {
    let Some(rule) = &item.audiences else {
        return Who::Anyone;
    };
    let find = |ids: &[String]| -> Vec<&Audience> {
        ids.iter()
            .filter_map(|id| adv.audiences.iter().find(|a| &a.id == id))
            .collect()
    };
    let any_of = find(&rule.any_of);
    let none_of = find(&rule.none_of);
    if any_of.is_empty() {
        // Only exclusions: the pages carry no product or category and the
        // placeholder users are in no audience.
        return Who::Anyone;
    }
    // Contextual kinds never read the clock.
    let now = Timestamp(0);
    let page_ok = |hint: &PageHint| {
        let page = match hint {
            PageHint::Product(p) => audiences::Page {
                products: std::iter::once(p.as_str()).collect(),
                ..audiences::Page::default()
            },
            PageHint::Category(c, tax) => audiences::Page {
                categories: std::iter::once(c.as_str()).collect(),
                cattax: Some(*tax),
                ..audiences::Page::default()
            },
        };
        let visitor = audiences::Visitor {
            user: None,
            behavioural: false,
            now,
        };
        let is = |a: &&Audience| contextual.matches(a, &visitor, &page);
        any_of.iter().any(is) && !none_of.iter().any(is)
    };
    let mut pages = Vec::new();
    for a in &any_of {
        match &a.kind {
            AudienceKind::Products { products } => pages.extend(
                products
                    .iter()
                    .map(|p| PageHint::Product(p.clone()))
                    .filter(page_ok),
            ),
            AudienceKind::Categories { categories } => {
                for c in categories {
                    // IAB 1.0 ids read as 1.0; others as Content Taxonomy 2.2.
                    if let Some(hint) = [1, 6]
                        .into_iter()
                        .map(|tax| PageHint::Category(c.clone(), tax))
                        .find(page_ok)
                    {
                        pages.push(hint);
                    }
                }
            }
            AudienceKind::Views { .. }
            | AudienceKind::Interests { .. }
            | AudienceKind::List { .. } => {}
        }
    }
    if !pages.is_empty() {
        pages.truncate(MAX_VARIANTS);
        return Who::Pages(pages);
    }
    let wanted: Vec<&Audience> = any_of.iter().copied().filter(|a| behavioural(a)).collect();
    let excluded: Vec<&Audience> = none_of.iter().copied().filter(|a| behavioural(a)).collect();
    let found: Vec<String> = users
        .iter()
        .filter(|u| wanted.iter().any(|a| members(a, u)) && !excluded.iter().any(|a| members(a, u)))
        .take(MAX_VARIANTS)
        .cloned()
        .collect();
    if !found.is_empty() {
        return Who::Members(found);
    }
    let ids: Vec<&str> = any_of.iter().map(|a| a.id.as_str()).collect();
    Who::Nobody(format!(
        "no page can meet, and no user in the audience data is in, any of [{}]",
        ids.join(", ")
    ))
}

/// As many variants as the longest list the line item targets, within
/// [`MAX_VARIANTS`].
fn variants(adv: &Advertiser, item: &LineItem, who: &Who) -> usize {
    let t = &item.targeting;
    let keywords = t
        .keywords
        .as_ref()
        .map_or(0, |k| k.exact.len() + k.phrase.len() + k.broad.len());
    let media = match item.media {
        Media::Display => display_sizes(adv, item).len(),
        Media::Video | Media::Audio | Media::Native => item.creatives.len(),
    };
    let audience = match who {
        Who::Pages(p) => p.len(),
        Who::Members(m) => m.len(),
        Who::Anyone | Who::Nobody(_) => 1,
    };
    [
        t.countries.len(),
        t.regions.len(),
        t.cities.len(),
        t.devices.len(),
        t.os.len(),
        t.deals.len(),
        t.sites.allow.len(),
        t.apps.allow.len(),
        t.publishers.allow.len(),
        t.placements.len(),
        keywords,
        media,
        audience,
    ]
    .into_iter()
    .max()
    .unwrap_or(1)
    .clamp(1, MAX_VARIANTS)
}

/// `list[k]`, cycling.
fn pick<T>(list: &[T], k: usize) -> Option<&T> {
    (!list.is_empty()).then(|| &list[k % list.len()])
}

/// The distinct sizes of the line item's display creatives, in creative
/// order.
fn display_sizes(adv: &Advertiser, item: &LineItem) -> Vec<(u32, u32)> {
    let mut sizes = Vec::new();
    for c in creatives_of(adv, item) {
        if let CreativeKind::Display { w, h, .. } = c.kind {
            if !sizes.contains(&(w, h)) {
                sizes.push((w, h));
            }
        }
    }
    sizes
}

fn creatives_of<'a>(adv: &'a Advertiser, item: &LineItem) -> Vec<&'a Creative> {
    item.creatives
        .iter()
        .filter_map(|id| adv.creatives.iter().find(|c| &c.id == id))
        .collect()
}

/// Variant `k` of the line item's request; `n` numbers the request.
fn request(
    adv: &Advertiser,
    item: &LineItem,
    who: &Who,
    k: usize,
    n: usize,
    unmet: &mut Vec<String>,
) -> Value {
    let t = &item.targeting;
    let device = pick(&t.devices, k)
        .copied()
        .unwrap_or_else(|| default_device(item.media, pick(&t.os, k).copied(), k));
    // Counted in rounds of the device list, so a device that comes round
    // again comes with another OS.
    let os = pick(&t.os, k)
        .copied()
        .unwrap_or_else(|| default_os(device, k / t.devices.len().max(1)));

    // Players on TVs and in audio apps are apps; a site allow list can only
    // be met by a site, an app allow list only by an app.
    let tv = matches!(
        device,
        Device::Ctv | Device::ConnectedDevice | Device::SetTopBox
    );
    let use_app = !t.apps.allow.is_empty()
        || (t.sites.allow.is_empty() && (tv || item.media == Media::Audio));
    if !t.apps.allow.is_empty() && !t.sites.allow.is_empty() {
        unmet.push(
            "it allows only listed sites and only listed apps; a request comes from one or the other"
                .into(),
        );
    }

    let (page, user) = match who {
        Who::Anyone => (None, USER.to_string()),
        Who::Pages(pages) => (pick(pages, k).cloned(), USER.to_string()),
        Who::Members(users) => (None, pick(users, k).cloned().unwrap_or_default()),
        Who::Nobody(why) => {
            unmet.push(why.clone());
            (None, USER.to_string())
        }
    };

    let floor = floor(item);
    let mut imp = json!({ "id": "1", "bidfloor": floor, "bidfloorcur": "USD" });
    match item.media {
        Media::Display => {
            let sizes = display_sizes(adv, item);
            let (w, h) = pick(&sizes, k).copied().unwrap_or_else(|| {
                unmet.push("it has no display creative".into());
                (300, 250)
            });
            imp["banner"] = json!({ "format": [{ "w": w, "h": h }], "w": w, "h": h });
        }
        Media::Video | Media::Audio => {
            let spots: Vec<&Creative> = creatives_of(adv, item)
                .into_iter()
                .filter(|c| c.media() == item.media)
                .collect();
            match pick(&spots, k) {
                Some(c) => {
                    let slot = av_slot(adv, item, c, device, k, unmet);
                    imp[item.media.as_str()] = slot;
                    if item.media == Media::Video && imp["video"]["plcmt"] == 3 {
                        imp["instl"] = json!(1);
                    }
                }
                None => {
                    unmet.push(format!("it has no {} creative", item.media));
                    imp[item.media.as_str()] = json!({ "mimes": [], "protocols": [2, 3, 7] });
                }
            }
        }
        Media::Native => {
            let ads: Vec<&Creative> = creatives_of(adv, item)
                .into_iter()
                .filter(|c| c.media() == Media::Native)
                .collect();
            imp["native"] = match pick(&ads, k) {
                Some(c) => native_slot(c),
                None => {
                    unmet.push("it has no native creative".into());
                    json!({ "request": "{}", "ver": "1.2" })
                }
            };
        }
    }
    if let Some(deal) = pick(&t.deals, k) {
        imp["pmp"] = json!({
            "private_auction": 1,
            "deals": [{ "id": deal, "bidfloor": floor, "bidfloorcur": "USD", "at": 1 }],
        });
    }

    let mut context = Map::new();
    let publisher = choose(
        &t.publishers,
        k,
        &["pub-1001", "pub-1002", "pub-1003"],
        |a, b| a == b,
        "publisher",
        unmet,
    );
    let mut products = None;
    let mut categories = None;
    match &page {
        Some(PageHint::Product(p)) => products = Some(p.clone()),
        Some(PageHint::Category(c, tax)) => categories = Some((c.clone(), *tax)),
        None => {}
    }
    if let Some((c, tax)) = &categories {
        context.insert("cat".into(), json!([c]));
        context.insert("cattax".into(), json!(tax));
    }
    if let Some(kw) = t.keywords.as_ref() {
        let positives: Vec<&String> = kw.exact.iter().chain(&kw.phrase).chain(&kw.broad).collect();
        let rule = KeywordRule::compile(kw);
        let carries = |words: &str| -> bool {
            let array = [std::borrow::Cow::Borrowed(words)];
            let mut rk = RequestKeywords::default();
            if words.contains(',') {
                rk.add(None, &array);
            } else {
                rk.add(Some(words), &[]);
            }
            rule.matches(&rk)
        };
        let fitting: Vec<&String> = positives.into_iter().filter(|w| carries(w)).collect();
        match pick(&fitting, k) {
            // A comma would split the keyword in the comma-separated form.
            Some(w) if w.contains(',') => {
                context.insert("kwarray".into(), json!([w]));
            }
            Some(w) => {
                context.insert("keywords".into(), json!(case_safe(w)));
            }
            None if kw.exact.is_empty() && kw.phrase.is_empty() && kw.broad.is_empty() => {}
            None => unmet.push("every keyword it targets contains a negative keyword".into()),
        }
    }
    context.insert("publisher".into(), json!({ "id": publisher }));

    let mut body = json!({
        "id": format!("traffic-{n}"),
        "at": 1,
        "tmax": 1000,
        "cur": ["USD"],
        "imp": [imp],
    });
    if use_app {
        let defaults: &[&str] = match item.media {
            Media::Audio => &["com.example.music", "com.example.podcasts"],
            _ if tv => &["com.example.tv", "com.example.streaming"],
            _ => &["com.example.reader", "com.example.games"],
        };
        let bundle = choose(
            &t.apps,
            k,
            defaults,
            |a, b| a.eq_ignore_ascii_case(b),
            "app",
            unmet,
        );
        let bundle = case_safe(&bundle);
        context.insert("id".into(), json!(format!("app-{bundle}")));
        context.insert("bundle".into(), json!(bundle));
        context.insert("name".into(), json!(bundle));
        if let Some(p) = &products {
            context.insert("content".into(), json!({ "id": p }));
        }
        body["app"] = Value::Object(context);
    } else {
        let domain = choose(
            &t.sites,
            k,
            &[
                "news.example",
                "recipes.example",
                "sports.example",
                "weather.example",
            ],
            crate::targeting::domain_within,
            "site",
            unmet,
        );
        let domain = case_safe(&domain);
        context.insert("id".into(), json!(format!("site-{domain}")));
        context.insert("domain".into(), json!(domain));
        let url = match &products {
            // Shops name the product in the path; an id that would not
            // survive in a path goes in the content instead.
            Some(p) if url_safe(p) => format!("https://{domain}/dp/{p}"),
            Some(p) => {
                context.insert("content".into(), json!({ "id": p }));
                format!("https://{domain}/")
            }
            None => format!("https://{domain}/"),
        };
        context.insert("page".into(), json!(url));
        body["site"] = Value::Object(context);
    }

    let mut geo = geo(item, k);
    geo["type"] = json!(2);
    body["device"] = json!({
        "ua": user_agent(os, device),
        "devicetype": devicetype(device),
        "os": os_name(os),
        "geo": geo,
    });
    body["user"] = json!({ "buyeruid": user });
    body
}

/// Half the CPM, in dollars: a floor the line item clears.
fn floor(item: &LineItem) -> f64 {
    (item.cpm.as_i64() / 2) as f64 / 1e6
}

/// The `k`th allowed value that is not blocked, else the `k`th default
/// that is not blocked.
fn choose(
    list: &AllowBlock,
    k: usize,
    defaults: &[&str],
    same: impl Fn(&str, &str) -> bool,
    what: &str,
    unmet: &mut Vec<String>,
) -> String {
    let open = |v: &&str| !list.block.iter().any(|b| same(v, b));
    if !list.allow.is_empty() {
        let allowed: Vec<&str> = list.allow.iter().map(String::as_str).filter(open).collect();
        if let Some(v) = pick(&allowed, k) {
            return v.to_string();
        }
        unmet.push(format!("every {what} it allows is also blocked"));
        return list.allow[k % list.allow.len()].clone();
    }
    let free: Vec<&str> = defaults.iter().copied().filter(open).collect();
    if let Some(v) = pick(&free, k) {
        return v.to_string();
    }
    // Every default is blocked. Compared exactly, each block entry rules
    // out at most one of these numbered values; a blocked domain suffix may
    // rule out all of them, and then the value is left empty, which no
    // block list matches.
    (0..=list.block.len())
        .map(|i| format!("{}-{i}.example", defaults.first().copied().unwrap_or(what)))
        .find(|v| open(&v.as_str()))
        .unwrap_or_default()
}

/// A value matched case-insensitively, lower-cased only when it holds the
/// placeholder's letters that a plain substitution would replace.
fn case_safe(s: &str) -> String {
    if s.contains(USER) {
        s.to_lowercase()
    } else {
        s.to_string()
    }
}

fn url_safe(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        && crate::context::product_in_url(&format!("https://x.example/dp/{id}")) == Some(id)
}

/// Country, region and city for variant `k`. A region decides the country.
fn geo(item: &LineItem, k: usize) -> Value {
    let t = &item.targeting;
    let mut geo = Map::new();
    match pick(&t.regions, k) {
        Some(region) => {
            let (alpha2, sub) = region.split_once('-').unwrap_or(("", region.as_str()));
            let country = t
                .countries
                .iter()
                .find(|c| config::country_alpha2(c).is_some_and(|a| a.eq_ignore_ascii_case(alpha2)))
                .cloned()
                .or_else(|| alpha3_of(alpha2));
            match country {
                // Exchanges send the subdivision alone, with the country.
                Some(c) => {
                    geo.insert("country".into(), json!(c));
                    geo.insert("region".into(), json!(sub));
                }
                None => {
                    geo.insert("region".into(), json!(region));
                }
            }
        }
        None => {
            let country = pick(&t.countries, k).map_or("USA", String::as_str);
            geo.insert("country".into(), json!(country));
        }
    }
    if let Some(city) = pick(&t.cities, k) {
        geo.insert("city".into(), json!(case_safe(city)));
    }
    Value::Object(geo)
}

/// The alpha-3 code of an alpha-2 one. The config crate maps only the other
/// way; trying every three-letter code is cheap next to loading a config,
/// and happens only for regions outside any targeted country.
fn alpha3_of(alpha2: &str) -> Option<String> {
    let letters = b'A'..=b'Z';
    for a in letters.clone() {
        for b in letters.clone() {
            for c in letters.clone() {
                let code = [a, b, c];
                let code = std::str::from_utf8(&code).ok()?;
                if config::country_alpha2(code).is_some_and(|x| x.eq_ignore_ascii_case(alpha2)) {
                    return Some(code.to_string());
                }
            }
        }
    }
    None
}

/// A device for the media when the line item names none, from its OS when
/// it names one.
fn default_device(media: Media, os: Option<Os>, k: usize) -> Device {
    match os {
        Some(Os::Ios | Os::Android) => Device::Phone,
        Some(Os::Windows | Os::Macos | Os::Linux | Os::Chromeos) => Device::Desktop,
        Some(Os::Tvos | Os::Roku | Os::Tizen | Os::Webos | Os::Fireos) => Device::Ctv,
        None => {
            let choices: &[Device] = match media {
                Media::Display => &[Device::Desktop, Device::Phone, Device::Tablet],
                Media::Video => &[Device::Ctv, Device::Desktop, Device::Phone],
                Media::Audio => &[Device::Phone, Device::ConnectedDevice],
                Media::Native => &[Device::Phone, Device::Desktop, Device::Tablet],
            };
            choices[k % choices.len()]
        }
    }
}

fn default_os(device: Device, k: usize) -> Os {
    match device {
        Device::Desktop => [Os::Windows, Os::Macos][k % 2],
        Device::Phone => [Os::Android, Os::Ios][k % 2],
        Device::Tablet => [Os::Ios, Os::Android][k % 2],
        Device::Ctv => [Os::Roku, Os::Tizen, Os::Webos][k % 3],
        Device::ConnectedDevice => Os::Fireos,
        Device::SetTopBox => Os::Tvos,
        Device::Dooh => Os::Linux,
    }
}

/// OpenRTB 2.6 `device.devicetype`.
fn devicetype(device: Device) -> i32 {
    match device {
        Device::Desktop => 2,
        Device::Ctv => 3,
        Device::Phone => 4,
        Device::Tablet => 5,
        Device::ConnectedDevice => 6,
        Device::SetTopBox => 7,
        Device::Dooh => 8,
    }
}

/// `device.os` as devices send it.
fn os_name(os: Os) -> &'static str {
    match os {
        Os::Ios => "iOS",
        Os::Android => "Android",
        Os::Windows => "Windows",
        Os::Macos => "macOS",
        Os::Linux => "Linux",
        Os::Chromeos => "Chrome OS",
        Os::Tvos => "tvOS",
        Os::Roku => "Roku OS",
        Os::Tizen => "Tizen",
        Os::Webos => "webOS",
        Os::Fireos => "Fire OS",
    }
}

fn user_agent(os: Os, device: Device) -> &'static str {
    match (os, device) {
        (Os::Ios, Device::Tablet) => "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        (Os::Ios, _) => "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        (Os::Android, Device::Tablet) => "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        (Os::Android, _) => "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
        (Os::Windows, _) => "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        (Os::Macos, _) => "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        (Os::Linux, _) => "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        (Os::Chromeos, _) => "Mozilla/5.0 (X11; CrOS x86_64 15786.48.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        (Os::Tvos, _) => "AppleCoreMedia/1.0.0.21L227 (Apple TV; U; CPU OS 17_4 like Mac OS X; en_us)",
        (Os::Roku, _) => "Roku/DVP-13.0 (13.0.0.4185)",
        (Os::Tizen, _) => "Mozilla/5.0 (SMART-TV; LINUX; Tizen 7.0) AppleWebKit/537.36 (KHTML, like Gecko) 7.0 TV Safari/537.36",
        (Os::Webos, _) => "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/94.0.4606.128 Safari/537.36 WebAppManager",
        (Os::Fireos, _) => "Mozilla/5.0 (Linux; Android 9; AFTKA Build/PS7633) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    }
}

/// The player size a device typically has.
fn player_size(device: Device) -> (u32, u32) {
    match device {
        Device::Ctv | Device::ConnectedDevice | Device::SetTopBox | Device::Dooh => (1920, 1080),
        Device::Desktop => (1280, 720),
        Device::Tablet => (1024, 576),
        Device::Phone => (640, 360),
    }
}

/// OpenRTB 2.6 `video.plcmt` for a placement kind; outstream varies among
/// the three kinds it covers.
fn plcmt(p: Placement, k: usize) -> i32 {
    match p {
        Placement::Instream => 1,
        Placement::Accompanying => 2,
        Placement::Interstitial => 3,
        Placement::Standalone => 4,
        Placement::Outstream => [2, 3, 4][k % 3],
    }
}

/// Every InLine VAST protocol code (2.0 to 4.2) with its wrapper twin.
const PROTOCOLS: [i32; 10] = [2, 3, 5, 6, 7, 8, 11, 12, 13, 14];

/// A Native 1.2 slot the creative fills: a required title and main image
/// of its size, the sponsor and description as the optional data most
/// exchanges ask for. The request goes as a JSON string, as most send it.
fn native_slot(c: &Creative) -> Value {
    let (w, h) = match &c.kind {
        CreativeKind::Native(n) => (n.image.w, n.image.h),
        _ => (1200, 627),
    };
    let request = json!({
        "ver": "1.2",
        "assets": [
            { "id": 1, "required": 1, "title": { "len": 90 } },
            { "id": 2, "required": 1, "img": { "type": 3, "w": w, "h": h } },
            { "id": 3, "required": 0, "data": { "type": 1, "len": 50 } },
            { "id": 4, "required": 0, "data": { "type": 2, "len": 200 } },
        ],
        "eventtrackers": [{ "event": 1, "methods": [1] }],
    });
    json!({ "request": request.to_string(), "ver": "1.2" })
}

/// A video or audio slot `creative` fits: its mimes, a duration range
/// around its length, its companions' sizes.
///
/// (See [`native_slot`] for native.)
fn av_slot(
    adv: &Advertiser,
    item: &LineItem,
    creative: &Creative,
    device: Device,
    k: usize,
    unmet: &mut Vec<String>,
) -> Value {
    let (duration, media) = match &creative.kind {
        CreativeKind::Video { duration_s, media } | CreativeKind::Audio { duration_s, media } => {
            (*duration_s, media.as_slice())
        }
        CreativeKind::Display { .. } | CreativeKind::Native(_) => (0, &[][..]),
    };
    let mut mimes: Vec<&str> = Vec::new();
    for m in media {
        if !mimes.iter().any(|x| x.eq_ignore_ascii_case(&m.mime)) {
            mimes.push(&m.mime);
        }
    }
    // Slots come in 15-second steps; the spot must not be longer.
    let max = duration.div_ceil(15).max(1) * 15;
    let mut slot = json!({
        "mimes": mimes,
        "minduration": duration.min(5),
        "maxduration": max,
        "protocols": PROTOCOLS,
        "startdelay": 0,
    });
    let companions: Vec<(u32, u32)> = creative
        .companions
        .iter()
        .filter_map(|id| adv.creatives.iter().find(|c| &c.id == id))
        .filter_map(creatives::display_size)
        .collect();
    if !companions.is_empty() {
        let ads: Vec<Value> = companions
            .iter()
            .enumerate()
            .map(|(i, (w, h))| {
                json!({ "id": format!("c{}", i + 1), "w": w, "h": h,
                        "mimes": ["image/jpeg", "image/png", "image/gif"] })
            })
            .collect();
        slot["companionad"] = json!(ads);
        slot["companiontype"] = json!([1]);
    }
    let placements = &item.targeting.placements;
    if creative.media() == Media::Audio {
        // The bidder reads every audio slot as in-stream.
        if !placements.is_empty() && !placements.iter().any(|p| p.matches_plcmt(1)) {
            unmet.push("audio plays in-stream, and it buys no in-stream placement".into());
        }
        slot["feed"] = json!(1);
    } else {
        let (w, h) = player_size(device);
        let plcmt = pick(placements, k).map_or(1, |p| plcmt(*p, k));
        slot["w"] = json!(w);
        slot["h"] = json!(h);
        slot["plcmt"] = json!(plcmt);
        slot["linearity"] = json!(1);
        // Only in-stream spots start relative to content.
        if plcmt != 1 {
            if let Some(o) = slot.as_object_mut() {
                o.remove("startdelay");
            }
        }
    }
    slot
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Arc;

    use config::{Clock, ManualClock};

    use super::*;
    use crate::{App, Settings};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("test time")
    }

    fn tempdir(name: &str) -> PathBuf {
        crate::testing::tempdir("traffic", name)
    }

    /// The app on `config_dir` and `data_dir` at 2026-11-24 noon UTC (a
    /// Tuesday), with the templates synthesized from the same files.
    fn setup(config_dir: &Path, data_dir: &Path) -> (App, Config, Vec<Template>) {
        let clock = Arc::new(ManualClock::new(ts("2026-11-24T12:00:00Z")));
        let now = clock.now();
        let store = audiences::Store::load_dir(data_dir, now).expect("audience data");
        let config = config::load_dir(config_dir).expect("valid config");
        let users = users_in_dir(data_dir).expect("user ids");
        let members = |a: &Audience, user: &str| {
            let visitor = audiences::Visitor {
                user: Some(user),
                behavioural: true,
                now,
            };
            store.matches(a, &visitor, &audiences::Page::default())
        };
        let templates = synthesize(&config, &members, &users);
        let settings = Settings {
            public_url: "https://bidder.test.invalid".into(),
            ..Settings::default()
        };
        let app = App::new(settings, clock, store, None);
        app.install(config.clone());
        (app, config, templates)
    }

    /// The explain verdict of the template's own line item on its body.
    fn verdict(app: &App, t: &Template, user: &str) -> Value {
        let body = t.body_for(user);
        let explained = app
            .explain(None, body.as_bytes())
            .unwrap_or_else(|e| panic!("{e}: {body}"));
        let v: Value = serde_json::from_slice(&explained).expect("explain JSON");
        v["line_items"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x["line_item"] == t.line_item.as_str()))
            .cloned()
            .unwrap_or_else(|| panic!("{} not explained", t.line_item))
    }

    /// Every line item has a template, and each template's line item bids
    /// on it, but for the line items `except`.
    fn assert_all_bid(app: &App, config: &Config, templates: &[Template], except: &[&str]) {
        for (i, t) in templates.iter().enumerate() {
            if except.contains(&t.line_item.as_str()) {
                continue;
            }
            assert_eq!(t.unmet, None, "{}: {}", t.line_item, t.body);
            let v = verdict(app, t, &format!("sim-user-{i}"));
            assert_eq!(
                v["bids"], true,
                "{} does not bid ({}) on {}",
                t.line_item, v["reason"], t.body
            );
            let req: Value = serde_json::from_str(&t.body).expect("JSON body");
            assert_eq!(req["tmax"], 1000);
            assert_eq!(req["at"], 1);
            assert_eq!(req["cur"], json!(["USD"]));
            assert_eq!(req["imp"][0]["id"], "1");
            assert!(req["device"]["ua"].is_string(), "{}", t.body);
            assert!(req["device"]["devicetype"].is_i64(), "{}", t.body);
            assert!(req["device"]["geo"].is_object(), "{}", t.body);
            assert!(req["site"].is_object() != req["app"].is_object());
            assert!(ortb::parse_request(t.body.as_bytes()).is_ok_and(|r| r.validate().is_ok()));
        }
        let ids: BTreeSet<&str> = templates.iter().map(|t| t.line_item.as_str()).collect();
        for li in config.line_items() {
            assert!(ids.contains(li.id.as_str()), "{} has no template", li.id);
        }
        let request_ids: BTreeSet<String> = values(templates, "/id");
        assert_eq!(request_ids.len(), templates.len(), "request ids are unique");
    }

    /// Every distinct value of `pointer` across the templates.
    fn values(templates: &[Template], pointer: &str) -> BTreeSet<String> {
        templates
            .iter()
            .filter_map(|t| serde_json::from_str::<Value>(&t.body).ok())
            .filter_map(|v| v.pointer(pointer).map(|x| x.to_string()))
            .collect()
    }

    #[test]
    fn every_example_line_item_bids_on_its_templates() {
        let (app, config, templates) = setup(
            &repo().join("examples/config"),
            &repo().join("examples/data"),
        );
        assert_all_bid(&app, &config, &templates, &[]);

        let media: BTreeSet<&str> = templates
            .iter()
            .flat_map(|t| {
                ["\"banner\"", "\"video\"", "\"audio\""]
                    .into_iter()
                    .filter(|m| t.body.contains(m))
            })
            .collect();
        assert_eq!(media.len(), 3, "banner, video and audio");
        assert_eq!(
            values(&templates, "/device/geo/country"),
            BTreeSet::from(["\"CAN\"".to_string(), "\"USA\"".to_string()])
        );
        let sizes = values(&templates, "/imp/0/banner/w");
        for w in ["300", "728", "320"] {
            assert!(sizes.contains(w), "{w} wide banner in {sizes:?}");
        }
        let devices = values(&templates, "/device/devicetype");
        for d in ["2", "3", "4", "5"] {
            assert!(devices.contains(d), "devicetype {d} in {devices:?}");
        }
        // The remarketing item is met by its product pages, so its users
        // vary; the audio item needs a hiker from the data.
        for t in &templates {
            match t.line_item.as_str() {
                "tent-remarketing-display" => {
                    assert!(t.body.contains("/dp/B0"), "{}", t.body);
                    assert!(t.body.contains("\"buyeruid\":\"USER\""), "{}", t.body);
                }
                "tent-audio-music" => {
                    assert!(t.body.contains("\"buyeruid\":\"u-1004\""), "{}", t.body);
                    assert!(t.body.contains("\"companionad\""), "{}", t.body);
                }
                "nw-mobile-readers" => {
                    assert!(t.body.contains("\"buyeruid\":\"u-1005\""), "{}", t.body)
                }
                "nw-deal-premium" => {
                    assert!(t.body.contains("DEAL-NW-PREMIUM-01"), "{}", t.body)
                }
                _ => {}
            }
        }
    }

    #[test]
    fn the_example_templates_bid_through_the_auction() {
        let (app, _, templates) = setup(
            &repo().join("examples/config"),
            &repo().join("examples/data"),
        );
        for (i, t) in templates.iter().enumerate() {
            let body = t.body_for(&format!("auction-user-{i}"));
            let answer = app.handle_bid(body.as_bytes(), std::time::Instant::now());
            let crate::BidAnswer::Bid(json, _) = answer else {
                panic!("{}: no bid on {body}", t.line_item);
            };
            let resp: Value = serde_json::from_slice(&json).expect("response JSON");
            let bid = &resp["seatbid"][0]["bid"][0];
            assert!(bid["price"].as_f64().is_some_and(|p| p > 0.0), "{resp}");
        }
    }

    const HANDWRITTEN: &str = r#"advertiser:
  id: radio
  name: Radio Shop
  domains: [radio-shop.example]
  categories: [IAB19]
audiences:
  - id: gadget-fans
    kind: interests
    interests: [gadgets]
  - id: returners
    kind: views
    products: [P-RADIO-1]
    lookback_days: 30
  - id: lapsed
    kind: views
    products: [P-OLD]
    lookback_days: 7
  - id: radio-pages
    kind: products
    products: [P-RADIO-1, P-RADIO-2]
  - id: tech-pages
    kind: categories
    categories: ["596", IAB19-6]
  - id: gadget-pages
    kind: categories
    categories: [IAB19-20]
creatives:
  - id: b300
    format: display
    size: 300x250
    image_url: https://cdn.radio-shop.example/b300.png
    click_url: https://radio-shop.example/
  - id: b320
    format: display
    size: 320x50
    image_url: https://cdn.radio-shop.example/b320.png
    click_url: https://radio-shop.example/
  - id: cover-640
    format: display
    size: 640x640
    image_url: https://cdn.radio-shop.example/cover.png
    click_url: https://radio-shop.example/
  - id: spot-30
    format: audio
    duration_s: 30
    media:
      - url: https://cdn.radio-shop.example/spot.mp3
        mime: audio/mpeg
        bitrate_kbps: 128
      - url: https://cdn.radio-shop.example/spot.aac
        mime: audio/aac
        bitrate_kbps: 96
    click_url: https://radio-shop.example/
    companions: [cover-640]
    companion_required: true
  - id: radio-ad
    format: native
    title: The pocket radio that fits everything
    description: Twelve bands, a week of battery, and a speaker you can hear.
    sponsored_by: Radio Shop
    image: { url: https://cdn.radio-shop.example/native.jpg, w: 1200, h: 627 }
    icon: { url: https://cdn.radio-shop.example/icon.png, w: 128, h: 128 }
    cta: Shop now
    price: "$49.00"
    click_url: https://radio-shop.example/p/P-RADIO-1
  - id: clip-20
    format: video
    duration_s: 20
    media:
      - url: https://cdn.radio-shop.example/clip.webm
        mime: video/webm
        width: 1280
        height: 720
        bitrate_kbps: 2000
    click_url: https://radio-shop.example/
    companions: [b300]
orders:
  - id: o1
    service: self_service
    budget: 5000.00
    flight: { start: 2026-11-01, end: 2026-12-31 }
    line_items:
      - id: regional-os
        media: display
        cpm: 2.00
        budget: { daily: 50.00 }
        frequency_cap: { impressions: 2, per_hours: 1 }
        audiences: { any_of: [radio-pages, tech-pages], none_of: [returners] }
        targeting:
          countries: [USA, CAN]
          regions: [US-CO, US-WA, CA-ON]
          cities: [Denver, Seattle]
          os: [ios, android, macos]
          devices: [phone, tablet, desktop]
          sites: { allow: [news.example, radio.example], block: [bad.news.example] }
          publishers: { allow: [pub-7], block: [pub-8] }
        creatives: [b300, b320]
      - id: keyword-deal
        media: display
        cpm: 4.50
        budget: { daily: 50.00 }
        audiences: { none_of: [gadget-pages] }
        targeting:
          keywords:
            broad: [portable radio]
            phrase: [free radio, shortwave receiver]
            exact: [dab radio]
            negative: [free]
          deals: [DEAL-A, DEAL-B]
          dayparts:
            timezone: utc
            slots: [{ days: [tue, wed], from: "09:00", to: "17:00" }]
        creatives: [b320]
      - id: app-audio
        media: audio
        cpm: 9.00
        budget: { lifetime: 3000.00 }
        audiences: { any_of: [gadget-fans], none_of: [returners] }
        targeting:
          countries: [DEU]
          regions: [DE-BE]
          os: [android, fireos]
          apps: { allow: [com.example.radio, de.example.fm], block: [com.example.bad] }
          placements: [instream]
        creatives: [spot-30]
      - id: outstream-video
        media: video
        cpm: 7.00
        budget: { daily: 80.00 }
        audiences: { any_of: [returners, gadget-fans], none_of: [gadget-pages] }
        targeting:
          regions: [GB-LND]
          devices: [desktop]
          placements: [outstream, accompanying]
        creatives: [clip-20]
      - id: native-product
        media: native
        cpm: 5.00
        budget: { daily: 40.00 }
        audiences: { any_of: [radio-pages] }
        targeting:
          devices: [phone, tablet]
        creatives: [radio-ad]
      - id: nobody-home
        media: display
        cpm: 1.00
        budget: { daily: 5.00 }
        audiences: { any_of: [lapsed] }
        targeting:
          countries: [FRA]
        creatives: [b300]
"#;

    /// fan-1 and fan-2 like gadgets; viewer does too, and is a returner.
    const HANDWRITTEN_EVENTS: &str = r#"{"user":"fan-2","event":"interest","interest":"gadgets","at":"2026-11-20T10:00:00Z"}
{"user":"fan-1","event":"interest","interest":"gadgets","at":"2026-11-21T10:00:00Z"}
{"user":"fan-1","event":"interest","interest":"gadgets","at":"2026-11-22T10:00:00Z"}
{"user":"viewer","event":"view","product":"P-RADIO-1","at":"2026-11-22T10:00:00Z"}
{"user":"viewer","event":"interest","interest":"gadgets","at":"2026-11-22T10:00:00Z"}
"#;

    fn handwritten_config(dir: &Path) -> PathBuf {
        let config_dir = dir.join("config");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        std::fs::write(config_dir.join("radio.yaml"), HANDWRITTEN).expect("write config");
        config_dir
    }

    fn bodies(templates: &[Template], line_item: &str) -> Vec<Value> {
        templates
            .iter()
            .filter(|t| t.line_item == line_item)
            .filter_map(|t| serde_json::from_str(&t.body).ok())
            .collect()
    }

    fn strings(list: &[Value], pointer: &str) -> BTreeSet<String> {
        list.iter()
            .filter_map(|r| r.pointer(pointer))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect()
    }

    #[test]
    fn every_handwritten_line_item_bids_on_its_templates() {
        let dir = tempdir("handwritten");
        let data_dir = dir.join("data");
        std::fs::create_dir_all(data_dir.join("nested")).expect("data dir");
        std::fs::write(data_dir.join("nested/events.jsonl"), HANDWRITTEN_EVENTS)
            .expect("write events");
        let (app, config, templates) = setup(&handwritten_config(&dir), &data_dir);
        assert_all_bid(&app, &config, &templates, &["nobody-home"]);
        let (nobody, rest): (Vec<Template>, Vec<Template>) = templates
            .into_iter()
            .partition(|t| t.line_item == "nobody-home");

        // No one viewed P-OLD: the template is still there, and says why
        // it gets no bid.
        assert_eq!(nobody.len(), 1);
        assert!(nobody[0]
            .unmet
            .as_deref()
            .is_some_and(|u| u.contains("lapsed")));
        let v = verdict(&app, &nobody[0], "sim-user-1");
        assert_eq!(v["bids"], false);
        assert_eq!(v["reason"], "audience");

        // Four pages meet radio-pages or tech-pages, in two taxonomies.
        let regional = bodies(&rest, "regional-os");
        assert_eq!(regional.len(), 4);
        assert_eq!(
            strings(&regional, "/site/cattax"),
            BTreeSet::from(["1".into(), "6".into()])
        );
        assert_eq!(
            strings(&regional, "/site/page")
                .iter()
                .filter_map(|p| crate::context::product_in_url(p))
                .collect::<BTreeSet<_>>(),
            BTreeSet::from(["P-RADIO-1", "P-RADIO-2"])
        );
        assert_eq!(
            strings(&regional, "/device/geo/region"),
            BTreeSet::from(["CO".into(), "WA".into(), "ON".into()])
        );
        assert_eq!(
            strings(&regional, "/device/geo/country"),
            BTreeSet::from(["USA".into(), "CAN".into()])
        );
        assert_eq!(strings(&regional, "/device/geo/city").len(), 2);
        assert_eq!(strings(&regional, "/device/os").len(), 3);
        assert_eq!(strings(&regional, "/device/devicetype").len(), 3);
        assert_eq!(
            strings(&regional, "/site/domain"),
            BTreeSet::from(["news.example".into(), "radio.example".into()])
        );
        assert_eq!(
            strings(&regional, "/site/publisher/id"),
            BTreeSet::from(["pub-7".into()])
        );
        assert_eq!(
            strings(&regional, "/user/buyeruid"),
            BTreeSet::from([USER.into()])
        );

        let deal = bodies(&rest, "keyword-deal");
        assert_eq!(
            strings(&deal, "/imp/0/pmp/deals/0/id"),
            BTreeSet::from(["DEAL-A".into(), "DEAL-B".into()])
        );
        assert_eq!(
            strings(&deal, "/site/keywords"),
            BTreeSet::from([
                "dab radio".into(),
                "portable radio".into(),
                "shortwave receiver".into()
            ]),
            "every positive keyword but the one holding a negative"
        );
        assert!(deal
            .iter()
            .all(|r| r["imp"][0]["pmp"]["deals"][0]["bidfloor"].as_f64() < Some(4.5)));

        let audio = bodies(&rest, "app-audio");
        assert_eq!(
            strings(&audio, "/app/bundle"),
            BTreeSet::from(["com.example.radio".into(), "de.example.fm".into()])
        );
        assert_eq!(
            strings(&audio, "/device/geo/country"),
            BTreeSet::from(["DEU".into()])
        );
        assert_eq!(
            strings(&audio, "/device/geo/region"),
            BTreeSet::from(["BE".into()])
        );
        assert_eq!(
            strings(&audio, "/device/os"),
            BTreeSet::from(["Android".into(), "Fire OS".into()])
        );
        assert_eq!(
            strings(&audio, "/imp/0/audio/companionad/0/w"),
            BTreeSet::from(["640".into()])
        );
        assert_eq!(
            strings(&audio, "/user/buyeruid"),
            BTreeSet::from(["fan-1".into(), "fan-2".into()]),
            "viewer is a returner, which app-audio excludes"
        );

        let video = bodies(&rest, "outstream-video");
        assert_eq!(
            strings(&video, "/device/geo/country"),
            BTreeSet::from(["GBR".into()])
        );
        assert!(!strings(&video, "/imp/0/video/plcmt").contains("1"));
        assert_eq!(
            strings(&video, "/user/buyeruid"),
            BTreeSet::from(["fan-1".into(), "fan-2".into(), "viewer".into()])
        );
        assert_eq!(
            strings(&video, "/imp/0/video/companionad/0/w"),
            BTreeSet::from(["300".into()])
        );
    }

    #[test]
    fn excluded_users_are_never_picked() {
        let config =
            config::load_dir(&handwritten_config(&tempdir("excluded"))).expect("valid config");
        let users = vec!["a".to_string(), "b".to_string()];
        // Everyone is a returner too, so app-audio finds no one to ask for.
        let everyone = |_: &Audience, _: &str| true;
        let templates = synthesize(&config, &everyone, &users);
        for t in templates.iter().filter(|t| t.line_item == "app-audio") {
            assert!(t
                .unmet
                .as_deref()
                .is_some_and(|u| u.contains("gadget-fans")));
            assert!(t.body.contains("\"buyeruid\":\"USER\""), "{}", t.body);
        }
        // outstream-video excludes a page, not users.
        let video = bodies(&templates, "outstream-video");
        assert_eq!(
            strings(&video, "/user/buyeruid"),
            BTreeSet::from(["a".into(), "b".into()])
        );
        // regional-os needs no user at all: its pages meet its audiences.
        let regional = bodies(&templates, "regional-os");
        assert_eq!(
            strings(&regional, "/user/buyeruid"),
            BTreeSet::from([USER.into()])
        );
    }

    #[test]
    fn users_are_read_deduplicated_and_sorted() {
        let dir = tempdir("users");
        std::fs::create_dir_all(dir.join("a/b")).expect("dirs");
        std::fs::write(
            dir.join("a/b/one.jsonl"),
            "{\"user\":\"u-3\",\"event\":\"interest\",\"interest\":\"x\",\"at\":\"2026-11-20T10:00:00Z\"}\n\nnot json\n{\"user\":7}\n{\"user\":\"\"}\n{\"user\":\"u-1\"}\n",
        )
        .expect("write");
        std::fs::write(
            dir.join("two.jsonl"),
            "{\"user\":\"u-3\"}\n  {\"user\":\"u-2\"}  \n",
        )
        .expect("write");
        std::fs::write(dir.join("skip.txt"), "{\"user\":\"u-9\"}\n").expect("write");
        assert_eq!(
            users_in_dir(&dir).expect("read"),
            ["u-1", "u-2", "u-3"].map(String::from)
        );
        assert!(users_in_dir(&dir.join("missing")).is_err());
        assert_eq!(
            users_in_dir(&repo().join("examples/data")).expect("read"),
            ["u-1001", "u-1002", "u-1003", "u-1004", "u-1005"].map(String::from)
        );
    }

    #[test]
    fn body_for_replaces_only_the_user() {
        let t = Template {
            line_item: "li".into(),
            body: r#"{"id":"USER-1","user":{"buyeruid":"USER"}}"#.into(),
            unmet: None,
        };
        assert_eq!(
            t.body_for("a\"b"),
            r#"{"id":"USER-1","user":{"buyeruid":"a\"b"}}"#
        );
    }

    #[test]
    fn names_match_what_the_bidder_reads() {
        for os in Os::ALL {
            assert!(os.matches(os_name(os)), "{os}");
            for device in Device::ALL {
                assert!(!user_agent(os, device).contains(USER));
            }
        }
        for device in Device::ALL {
            assert!(device.matches_devicetype(devicetype(device)), "{device}");
        }
        for p in Placement::ALL {
            for k in 0..3 {
                assert!(p.matches_plcmt(plcmt(p, k)), "{p}");
            }
        }
        assert_eq!(alpha3_of("DE").as_deref(), Some("DEU"));
        assert_eq!(alpha3_of("ZZ"), None);
    }
}
