//! The config compiled for the hot path: line items flattened with what each
//! check needs precomputed, sorted by CPM, and indexed by slot size.
//!
//! A snapshot is immutable; a reload builds a new one and swaps the pointer,
//! so a request sees one config from start to end.

use std::collections::HashMap;
use std::sync::OnceLock;

use config::{Budget, ChargeOn, Config, Device, Flight, FrequencyCap, Media, Micros, Timestamp};

use crate::checks::{Check, Stop};
use crate::keywords::KeywordRule;
use crate::nobid::NoBid;
use crate::notice;

/// The snapshot's maps are built once per config load and only read on the
/// bid path: a request's key can lengthen no probe chain, so a fast hasher
/// (seeded per process) does.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// One line item, ready to be checked against an imp.
#[derive(Debug)]
pub struct Item {
    pub advertiser: usize,
    pub order: usize,
    pub line_item: usize,
    pub id: String,
    /// Keys under which spend is counted: the line item and its order.
    pub spend_key: ledger::SpendKey,
    pub order_key: ledger::SpendKey,
    pub media: Media,
    /// The highest bid: a fixed CPM, or a value-based strategy's ceiling.
    pub cpm: Micros,
    pub bidding: config::Bidding,
    /// Lower bids in first-price auctions (`shading`, default true).
    pub shading: bool,
    pub flight: Flight,
    pub budget: Budget,
    pub order_budget: Micros,
    /// ISO-3166-1 alpha-3; empty means anywhere.
    pub countries: Vec<String>,
    /// `countries` as [`country_key`]s, which the country check compares
    /// with the request's: three bytes each, not a case-blind comparison
    /// of strings per line item and country (some 30 instructions each).
    pub country_keys: Vec<[u8; 3]>,
    /// Empty means any device.
    pub devices: Vec<Device>,
    /// Audience indices within the advertiser: `(any_of, none_of)`.
    pub audiences: Option<(Vec<usize>, Vec<usize>)>,
    /// Whether `any_of` holds a behavioural kind (views, interests,
    /// lists): when privacy switches those off, a miss is reported as
    /// `privacy`.
    pub behavioural: bool,
    /// Whether `none_of` holds one: where privacy switches those off, an
    /// exclusion (a suppression list of customers, say) cannot be checked,
    /// and the line item does not bid (`privacy`) rather than bid on
    /// everyone it meant to leave out.
    pub excludes_behavioural: bool,
    pub deals: Vec<String>,
    /// Video/audio placement kinds bought; empty means any.
    pub placements: Vec<config::Placement>,
    /// Geo beyond country, OS, inventory lists, day-parts: `None` for the
    /// many line items that set none of them.
    pub rules: Option<Box<crate::targeting::Rules>>,
    /// The checks this line item runs, in order (`crate::checks`): compiled
    /// once here, so the auction and explain walk one list.
    pub(crate) checks: Box<[crate::checks::Check]>,
    pub keywords: Option<KeywordRule>,
    pub frequency: Option<FrequencyCap>,
    /// Creative indices within the advertiser.
    pub creatives: Vec<usize>,
    /// `"cid":"<line item>"`, escaped once here rather than per bid.
    pub cid_json: String,
    /// `&li=<line item>&o=<order>` for notice URLs, percent-encoded once.
    pub notice_ids: String,
    /// What reports count its bids under (creative, exchange and keyword
    /// filled in per bid).
    pub report: reports::Dims,
}

pub struct Snapshot {
    pub config: Config,
    /// Sorted by CPM, highest first: walking the index in item order walks
    /// candidates from the best price down, so selection stops early.
    pub items: Vec<Item>,
    index: Index,
    /// Line item id → index in `items`, for notices.
    by_id: Map<String, usize>,
    /// `[advertiser][creative]`: what a bid says about its creative, as
    /// ready-made JSON members — the markup is static, so it is escaped once
    /// per config load instead of once per bid.
    pub creative_json: Vec<Vec<CreativeJson>>,
    /// `[advertiser]`: a bid's `ext` with the Digital Services Act
    /// transparency object (`,"ext":{"dsa":{…}}`), for requests that ask
    /// for it: the advertiser's name as who the ad is shown on behalf of
    /// and who paid for it (cut to the 100 characters the extension
    /// allows), and `adrender` 0, as our ads do not show it themselves.
    pub dsa_json: Vec<String>,
    /// Configured exchanges, by id; plain `/openrtb2/bid` gets the one with
    /// id `default` when there is one, else [`Snapshot::default_profile`].
    profiles: Map<String, Profile>,
    default_profile: Profile,
    /// Some line item buys native.
    pub buys_native: bool,
    /// Creative id → (advertiser, creative): where a tracked click goes.
    creatives_by_id: crate::track::CreativeIndex,
    /// `[advertiser][creative]`: creative ids as reports carry them.
    pub creative_ids: Vec<Vec<std::sync::Arc<str>>>,
    /// `[advertiser][audience]`: `kind:id`, as reports and the audience
    /// token name an audience.
    pub audience_labels: Vec<Vec<std::sync::Arc<str>>>,
    /// `[advertiser][audience]`: the token signed URLs carry for each
    /// audience (`notice::audience_token` of its label), made once per
    /// config: each is an HMAC, which a bid for an audience made per bid
    /// and a tracking call read back by trying every audience of the
    /// advertiser in turn.
    pub audience_tokens: Vec<Vec<String>>,
    /// Products and attribution windows, for the event journal.
    pub catalog: reports::attribution::Catalog,
    pub loaded_at: Timestamp,
    /// This config's line items and those that left within the notice
    /// lifetime, with their budgets (`App::install` sets it): what a late
    /// win of a removed line item is billed within.
    pub served: crate::served::Served,
}

/// The id plain `/openrtb2/bid` answers as, and its metrics label.
pub(crate) const DEFAULT_EXCHANGE: &str = "default";

/// An exchange profile ready for the hot path and for notices.
#[derive(Debug)]
pub struct Profile {
    pub id: String,
    /// The id percent-encoded for notice URLs.
    pub notice_id: String,
    pub charge_on: ChargeOn,
    /// The InLine version a player that names no protocol gets.
    pub vast_default: creatives::VastVersion,
    pub gzip_responses: bool,
    /// The version answers are written in when a request's header names
    /// none.
    pub dialect: crate::respond::Dialect,
    pub tmax_default: Option<std::time::Duration>,
    /// How long its bids hold their cost with no notice (`None`: the
    /// bidder's setting).
    pub reservation_ttl: Option<std::time::Duration>,
    pub price_keys: Option<pricecrypt::Keys>,
    /// Its encrypted prices carry when they were encrypted
    /// (`price_encryption.iv_timestamps`).
    pub price_iv_timestamps: bool,
    pub counters: crate::metrics::ExchangeCounters,
    /// The id as reports carry it.
    pub report_id: std::sync::Arc<str>,
    /// Its user-sync URL and the hosts a sync's `redir` may go to.
    pub sync_url: Option<String>,
    pub sync_redirect_hosts: Vec<String>,
    /// Where its bid requests may come from.
    pub sources: Sources,
    /// Our seat there, and `,"seat":"…"` as the answer writes it.
    pub seat: Option<(String, String)>,
}

impl Profile {
    fn compile(e: Option<&config::Exchange>) -> Profile {
        let id = e.map_or(DEFAULT_EXCHANGE, |e| e.id.as_str());
        Profile {
            id: id.to_owned(),
            notice_id: notice::encode(id),
            charge_on: e.map_or(ChargeOn::First, |e| e.charge_on),
            vast_default: e
                .and_then(|e| creatives::VastVersion::from_protocol(e.vast_default_protocol))
                .unwrap_or(creatives::VastVersion::V3_0),
            gzip_responses: e.is_some_and(|e| e.gzip_responses),
            dialect: match e.is_some_and(|e| e.openrtb_2_5) {
                true => crate::respond::Dialect::V2_5,
                false => crate::respond::Dialect::V2_6,
            },
            tmax_default: e
                .and_then(|e| e.tmax_default_ms)
                .map(|ms| std::time::Duration::from_millis(u64::from(ms))),
            reservation_ttl: e
                .and_then(|e| e.reservation_ttl_secs)
                .map(|s| std::time::Duration::from_secs(u64::from(s))),
            // Validated when the config loaded.
            price_keys: e.and_then(|e| e.price_encryption.as_ref()).and_then(|p| {
                pricecrypt::Keys::from_base64(&p.encryption_key, &p.integrity_key).ok()
            }),
            price_iv_timestamps: e
                .and_then(|e| e.price_encryption.as_ref())
                .is_some_and(|p| p.iv_timestamps),
            counters: crate::metrics::ExchangeCounters::new(id),
            report_id: id.into(),
            sync_url: e.and_then(|e| e.sync_url.clone()),
            sync_redirect_hosts: e.map(|e| e.sync_redirect_hosts.clone()).unwrap_or_default(),
            sources: match e {
                Some(e) if !e.allow_from.is_empty() => Sources::Only(e.allow_from.clone()),
                _ => Sources::Anywhere,
            },
            seat: e.and_then(|e| e.seat.clone()).map(|s| {
                let mut member = String::from(",\"seat\":");
                creatives::push_json_str(&mut member, &s);
                (s, member)
            }),
        }
    }
}

/// Where an exchange's bid requests may come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sources {
    Anywhere,
    /// These networks (its profile's `allow_from`).
    Only(Vec<ipnet::IpNet>),
    /// Nowhere: plain `/openrtb2/bid` with no `default` profile while
    /// other profiles name their networks.
    Nowhere,
}

impl Snapshot {
    pub fn compile(
        config: Config,
        loaded_at: Timestamp,
        signer: &crate::notice::Signer,
    ) -> Snapshot {
        let mut items = Vec::new();
        for (a, adv) in config.advertisers.iter().enumerate() {
            let aud_index = |ids: &[String]| -> Vec<usize> {
                ids.iter()
                    .filter_map(|id| adv.audiences.iter().position(|x| &x.id == id))
                    .collect()
            };
            for (o, order) in adv.orders.iter().enumerate() {
                for (l, li) in order.line_items.iter().enumerate() {
                    let mut item = Item {
                        advertiser: a,
                        order: o,
                        line_item: l,
                        id: li.id.clone(),
                        spend_key: ledger::SpendKey::line_item(&li.id),
                        order_key: ledger::SpendKey::order(&order.id),
                        media: li.media,
                        cpm: li.cpm,
                        bidding: li.bidding,
                        shading: li.shading,
                        flight: order.flight,
                        budget: li.budget,
                        order_budget: order.budget,
                        countries: li.targeting.countries.clone(),
                        country_keys: li
                            .targeting
                            .countries
                            .iter()
                            .filter_map(|c| country_key(c))
                            .collect(),
                        devices: li.targeting.devices.clone(),
                        audiences: li
                            .audiences
                            .as_ref()
                            .map(|r| (aud_index(&r.any_of), aud_index(&r.none_of))),
                        behavioural: li
                            .audiences
                            .as_ref()
                            .is_some_and(|r| any_behavioural(adv, &aud_index(&r.any_of))),
                        excludes_behavioural: li
                            .audiences
                            .as_ref()
                            .is_some_and(|r| any_behavioural(adv, &aud_index(&r.none_of))),
                        deals: li.targeting.deals.clone(),
                        placements: li.targeting.placements.clone(),
                        rules: crate::targeting::Rules::compile(&li.targeting),
                        // Compiled below, from the item itself.
                        checks: Box::default(),
                        keywords: li.targeting.keywords.as_ref().map(KeywordRule::compile),
                        frequency: li.frequency_cap,
                        creatives: li
                            .creatives
                            .iter()
                            .filter_map(|id| adv.creatives.iter().position(|c| &c.id == id))
                            .collect(),
                        cid_json: format!("\"cid\":{}", json_str(&li.id)),
                        notice_ids: format!(
                            "&li={}&o={}",
                            notice::encode(&li.id),
                            notice::encode(&order.id)
                        ),
                        report: reports::Dims {
                            advertiser: adv.id.as_str().into(),
                            order: order.id.as_str().into(),
                            line_item: li.id.as_str().into(),
                            ..reports::Dims::default()
                        },
                    };
                    item.checks = crate::checks::compile(&item);
                    items.push(item);
                }
            }
        }
        // Stable: equal CPMs keep config order; ties are broken at random at
        // bid time, not here.
        items.sort_by_key(|i| std::cmp::Reverse(i.cpm));

        let mut index = Index::default();
        // Every size a display line item has a creative of, for flexible
        // formats (`Index::by_ratio`).
        let mut display_sizes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let i = i as u32;
            let slots: Vec<Slot> = match item.media {
                Media::Display => {
                    let adv = &config.advertisers[item.advertiser];
                    let mut sizes: Vec<(u32, u32)> = item
                        .creatives
                        .iter()
                        .filter_map(|&c| creatives::display_size(&adv.creatives[c]))
                        .collect();
                    sizes.sort_unstable();
                    sizes.dedup();
                    display_sizes.extend(&sizes);
                    sizes.into_iter().map(|(w, h)| Slot::Banner(w, h)).collect()
                }
                Media::Video => vec![Slot::Video],
                Media::Audio => vec![Slot::Audio],
                Media::Native => vec![Slot::Native],
            };
            index.display |= item.media == Media::Display;
            // A deal line item only ever bids inside its deals: it is found
            // through the deal ids, never through the open-market lists.
            // Its slots and countries are noted, so that a request it is
            // skipped for gets the reason explain would give it.
            if !item.deals.is_empty() {
                for d in &item.deals {
                    index.by_deal.entry(d.as_str().into()).or_default().push(i);
                }
                for slot in slots {
                    let lists = index.by_slot.entry(slot).or_default();
                    if item.countries.is_empty() {
                        lists.deals_any_country = true;
                    } else {
                        for c in item.countries.iter().filter_map(|c| country_key(c)) {
                            // Sorted and each once: looked up per request.
                            if let Err(at) = lists.deal_countries.binary_search(&c) {
                                lists.deal_countries.insert(at, c);
                            }
                        }
                    }
                }
                continue;
            }
            for slot in slots {
                let lists = index.by_slot.entry(slot).or_default();
                if item.countries.is_empty() {
                    lists.any_country.push(i);
                } else {
                    for c in &item.countries {
                        if let Some(key) = country_key(c) {
                            lists.by_country.entry(key).or_default().push(i);
                        }
                    }
                }
            }
        }
        index.by_ratio = by_ratio(&display_sizes);
        let dsa_json = config.advertisers.iter().map(dsa_json).collect();
        let creative_json = config
            .advertisers
            .iter()
            .map(|adv| {
                adv.creatives
                    .iter()
                    .map(|c| CreativeJson::new(adv, c))
                    .collect()
            })
            .collect();
        let by_id = items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.id.clone(), i))
            .collect();
        let buys_native = items.iter().any(|i| i.media == Media::Native);
        let creatives_by_id = config
            .advertisers
            .iter()
            .enumerate()
            .flat_map(|(a, adv)| {
                adv.creatives
                    .iter()
                    .enumerate()
                    .map(move |(c, cr)| (cr.id.clone(), (a, c)))
            })
            .collect();
        let creative_ids = config
            .advertisers
            .iter()
            .map(|adv| adv.creatives.iter().map(|c| c.id.as_str().into()).collect())
            .collect();
        let audience_labels: Vec<Vec<std::sync::Arc<str>>> = config
            .advertisers
            .iter()
            .map(|adv| {
                adv.audiences
                    .iter()
                    .map(|a| format!("{}:{}", a.kind.as_str(), a.id).into())
                    .collect()
            })
            .collect();
        let audience_tokens = audience_labels
            .iter()
            .map(|labels| {
                labels
                    .iter()
                    .map(|l| crate::notice::audience_token(signer, l))
                    .collect()
            })
            .collect();
        let catalog = reports::attribution::Catalog::from_config(&config);
        let profiles: Map<String, Profile> = config
            .exchanges
            .iter()
            .map(|e| (e.id.clone(), Profile::compile(Some(e))))
            .collect();
        // Once some exchange says where it sends from, the plain endpoint
        // (the built-in defaults, no `allow_from` of its own) would let
        // anyone else bid past that check: closed unless a `default`
        // profile says who may use it.
        let mut default_profile = Profile::compile(None);
        if config.exchanges.iter().any(|e| !e.allow_from.is_empty()) {
            default_profile.sources = Sources::Nowhere;
        }
        Snapshot {
            config,
            items,
            index,
            by_id,
            creative_json,
            dsa_json,
            profiles,
            default_profile,
            buys_native,
            creatives_by_id,
            creative_ids,
            audience_labels,
            audience_tokens,
            catalog,
            loaded_at,
            served: crate::served::Served::default(),
        }
    }

    /// The profile of `/openrtb2/bid/{id}` (`None`: plain `/openrtb2/bid`);
    /// `None` when no exchange has that id.
    /// Whether some line item buys in deal `id`.
    pub(crate) fn buys_in_deal(&self, id: &str) -> bool {
        self.index.by_deal.contains_key(id)
    }

    pub fn profile(&self, id: Option<&str>) -> Option<&Profile> {
        match id {
            Some(id) => self.profiles.get(id),
            None => Some(
                self.profiles
                    .get(DEFAULT_EXCHANGE)
                    .unwrap_or(&self.default_profile),
            ),
        }
    }

    /// The profile a notice names: the exchange the bid was made for, as
    /// configured now.
    pub fn notice_profile(&self, id: &str) -> Option<&Profile> {
        if id == DEFAULT_EXCHANGE {
            return self.profile(None);
        }
        self.profiles.get(id)
    }

    /// A creative by its id (ids are unique across the config).
    pub fn creative(&self, id: &str) -> Option<&config::Creative> {
        let &(a, c) = self.creatives_by_id.get(id)?;
        Some(&self.config.advertisers[a].creatives[c])
    }

    pub fn item(&self, line_item: &str) -> Option<&Item> {
        self.by_id.get(line_item).map(|&i| &self.items[i])
    }

    /// The order `id` of the config, with its advertiser (an index).
    pub(crate) fn order(&self, id: &str) -> Option<(usize, &config::Order)> {
        self.config
            .advertisers
            .iter()
            .enumerate()
            .find_map(|(a, adv)| Some((a, adv.orders.iter().find(|o| o.id == id)?)))
    }

    /// Whether advertiser `adv` (an index) has a creative `creative`.
    fn owns_creative(&self, adv: usize, creative: &str) -> bool {
        self.config
            .advertisers
            .get(adv)
            .is_some_and(|a| a.creatives.iter().any(|c| c.id == creative))
    }

    /// The line item a notice or tracking URL signed (`line_item` in
    /// `order`, showing `creative`), as the config has it now: the line
    /// item by that id while it is still in that order and its advertiser
    /// has that creative. An id given since to a line item of another
    /// order, or both ids to another advertiser's, is not the one that bid
    /// (reviews: charged and reported as the new one, another advertiser
    /// paid for the impressions).
    pub(crate) fn signed_item(
        &self,
        line_item: &str,
        order: &str,
        creative: &str,
    ) -> Option<&Item> {
        self.item(line_item)
            .filter(|i| i.order_key.id() == order && self.owns_creative(i.advertiser, creative))
    }

    /// Which advertiser (an index) the signed ad was for, as far as the
    /// config can still tell: the signed line item's; else the signed
    /// order's owner, if it has the creative; else that of the line item
    /// holding the id now (its order renamed, or it moved), if it has the
    /// creative; else the one advertiser with such a creative; else, no
    /// advertiser having it, the signed order's owner.
    pub(crate) fn signed_advertiser_index(
        &self,
        line_item: &str,
        order: &str,
        creative: &str,
    ) -> Option<usize> {
        if let Some(i) = self.signed_item(line_item, order, creative) {
            return Some(i.advertiser);
        }
        let advertisers = &self.config.advertisers;
        let owns = |a: &usize| self.owns_creative(*a, creative);
        let order_owner = self.order(order).map(|(a, _)| a);
        order_owner
            .filter(owns)
            .or_else(|| self.item(line_item).map(|i| i.advertiser).filter(owns))
            .or_else(|| {
                let mut having = (0..advertisers.len()).filter(owns);
                match (having.next(), having.next()) {
                    (Some(a), None) => Some(a),
                    _ => None,
                }
            })
            // No advertiser has the creative any more (it left the config
            // with its line item): the signed order's owner.
            .or(order_owner)
    }

    /// [`Snapshot::signed_advertiser_index`]'s id, as reports count it;
    /// empty when the config no longer tells.
    pub(crate) fn signed_advertiser(
        &self,
        line_item: &str,
        order: &str,
        creative: &str,
    ) -> std::sync::Arc<str> {
        self.signed_advertiser_index(line_item, order, creative)
            .and_then(|a| self.config.advertisers.get(a))
            .map_or_else(|| "".into(), |a| a.id.as_str().into())
    }

    /// The display sizes creatives of line items here come in whose
    /// sides are in `ratio` (in lowest terms, [`lowest_terms`]), widest
    /// first (see [`crate::select::banner_sizes`]).
    pub(crate) fn sizes_in_ratio(&self, ratio: (u32, u32)) -> &[(u32, u32)] {
        self.index.by_ratio.get(&ratio).map_or(&[], Vec::as_slice)
    }

    /// Candidates for an imp, best CPM first, each once: open-market line
    /// items for the imp's slots (banner sizes, video, audio) that target
    /// the request's country (or no country), and the line items of the
    /// imp's deals. Every rule is still checked per candidate; the index
    /// only keeps the walk short.
    ///
    /// The index answers the first three checks of every line item's list
    /// (`Slot`, `Country`, `Deal`) in bulk; with the candidates comes the
    /// furthest of those that a line item it skipped got, so that the
    /// auction's no-bid reason is the one explain gives.
    pub(crate) fn candidates(
        &self,
        slots: &[Slot],
        banner: bool,
        country: Option<[u8; 3]>,
        deals: &[&str],
        open_market: bool,
    ) -> (Candidates<'_>, Stop) {
        let mut lists = CandidateLists::new();
        fn add<'a>(lists: &mut CandidateLists<'a>, list: &'a [u32]) {
            if !list.is_empty() && !lists.iter().any(|l| std::ptr::eq(*l, list)) {
                lists.push(list);
            }
        }
        // A line item of a medium the imp offers lacks the size (a banner
        // with no usable size among them); otherwise the imp offers none
        // of the media bought.
        let bought = (banner && self.index.display)
            || slots.iter().any(|s| match s {
                Slot::Banner(..) => self.index.display,
                other => self.index.by_slot.contains_key(other),
            });
        let mut skipped = Stop::new(Check::Slot, if bought { NoBid::Size } else { NoBid::Media });
        let mut note = |stop: Stop| {
            if stop.deeper(Some(skipped)) {
                skipped = stop;
            }
        };
        for s in slots {
            let Some(l) = self.index.by_slot.get(s) else {
                continue;
            };
            let here =
                !l.any_country.is_empty() || country.is_some_and(|c| l.by_country.contains_key(&c));
            if here && open_market {
                add(&mut lists, &l.any_country);
                if let Some(list) = country.and_then(|c| l.by_country.get(&c)) {
                    add(&mut lists, list);
                }
            } else if here {
                // Only the listed deals may bid in a private auction.
                note(Stop::new(Check::Deal, NoBid::Deal));
            } else if !l.by_country.is_empty() {
                note(Stop::new(Check::Country, NoBid::Country));
            }
            // Deal line items are found through their deals (below); those
            // not offered stop at `Deal`.
            if l.deals_any_country
                || country.is_some_and(|c| l.deal_countries.binary_search(&c).is_ok())
            {
                note(Stop::new(Check::Deal, NoBid::Deal));
            } else if !l.deal_countries.is_empty() {
                note(Stop::new(Check::Country, NoBid::Country));
            }
        }
        for d in deals {
            if let Some(list) = self.index.by_deal.get(*d) {
                add(&mut lists, list);
            }
        }
        (Candidates { lists }, skipped)
    }
}

/// What an imp offers, as the index keys it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Slot {
    Banner(u32, u32),
    Video,
    Audio,
    Native,
}

/// Posting lists of item indices, ascending (= descending CPM).
#[derive(Default)]
struct Index {
    by_slot: Map<Slot, SlotLists>,
    by_deal: Map<Box<str>, Vec<u32>>,
    /// Some line item buys display.
    display: bool,
    /// The sizes display line items' creatives come in, by their ratio
    /// in lowest terms, each once, widest first: what a flexible format
    /// (`wratio`/`hratio`) can be filled with, found in one lookup
    /// whatever the config holds.
    by_ratio: Map<(u32, u32), Vec<(u32, u32)>>,
}

/// `sizes` grouped by ratio in lowest terms, each once, widest first.
fn by_ratio(sizes: &[(u32, u32)]) -> Map<(u32, u32), Vec<(u32, u32)>> {
    let mut out: Map<(u32, u32), Vec<(u32, u32)>> = Map::default();
    for &(w, h) in sizes {
        if let Some(ratio) = lowest_terms(w, h) {
            out.entry(ratio).or_default().push((w, h));
        }
    }
    for list in out.values_mut() {
        list.sort_unstable_by(|a, b| b.cmp(a));
        list.dedup();
    }
    out
}

/// `w:h` in lowest terms; `None` where either is 0.
pub(crate) fn lowest_terms(w: u32, h: u32) -> Option<(u32, u32)> {
    if w == 0 || h == 0 {
        return None;
    }
    let (mut a, mut b) = (w, h);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    Some((w / a, h / a))
}

#[derive(Default)]
struct SlotLists {
    /// Open-market line items.
    any_country: Vec<u32>,
    by_country: Map<[u8; 3], Vec<u32>>,
    /// Deal line items take the slot: some in any country, and those of
    /// these countries (sorted, each once). For no-bid reasons only.
    deals_any_country: bool,
    deal_countries: Vec<[u8; 3]>,
}

/// ISO-3166-1 alpha-3 as an upper-case fixed key; anything else is no key.
/// A country as the index and the country check compare it: its three
/// bytes, in upper case (OpenRTB's alpha-3; exchanges do not all send it in
/// upper case). `None` for anything not three bytes long, which no
/// configured country is.
pub(crate) fn country_key(c: &str) -> Option<[u8; 3]> {
    let b: [u8; 3] = c.as_bytes().try_into().ok()?;
    Some(b.map(|x| x.to_ascii_uppercase()))
}

/// Whether any of `audiences` (indices within `adv`) is of a behavioural
/// kind: known from what a user did or who they are, which privacy signals
/// switch off.
fn any_behavioural(adv: &config::Advertiser, audiences: &[usize]) -> bool {
    audiences.iter().any(|&i| {
        matches!(
            adv.audiences[i].kind,
            config::AudienceKind::Views { .. }
                | config::AudienceKind::Interests { .. }
                | config::AudienceKind::List { .. }
        )
    })
}

/// A creative's part of a bid, pre-rendered.
#[derive(Debug)]
pub struct CreativeJson {
    /// `"adid":…,"crid":…,"adomain":[…],"cat":[…]`, and `"attr":[…]` when
    /// the creative declares attributes
    pub members: String,
    /// A video or audio creative's `members` for a bid that carries one of
    /// its companions declaring attributes the creative does not: `attr`
    /// then lists both's (the companion shows as part of the ad), by the
    /// companion's index among the advertiser's creatives. Empty for the
    /// rest (nearly every creative).
    pub with_companion: Vec<(usize, String)>,
    /// The creative's language as each OpenRTB version can say it
    /// ([`CreativeJson::language`]): empty without one.
    language: [String; 2],
    /// The creative id percent-encoded for notice URLs.
    pub notice_id: String,
    /// Every URL the creative's markup loads or links to is https: it may
    /// serve on secure pages.
    pub https: bool,
    /// A display creative's image type, from its URL's extension, as the
    /// bit `creatives::mime_mask` reads a slot's `banner.mimes` into.
    pub image_bit: u8,
    /// A video or audio creative's VAST, written once (see
    /// [`creatives::VastTemplate`]).
    pub vast: Option<Box<AvTemplates>>,
    /// A display creative's markup, written once: a bid puts its URLs in.
    pub banner: Option<creatives::BannerTemplate>,
}

/// A video or audio creative's VAST documents, one per version, and its
/// companions' parts: what a bid with VAST copies rather than writes. Each
/// is written the first time a bid needs it: most exchanges' players take
/// one or two of the five versions, and a document is a kilobyte or more,
/// of which a config of thousands of video creatives would otherwise hold
/// five each.
#[derive(Debug, Default)]
pub struct AvTemplates {
    /// In the order of `VastVersion::ALL`.
    by_version: [OnceLock<creatives::VastTemplate>; VERSIONS],
    /// Each companion the creative lists, by its index among the
    /// advertiser's creatives (as the auction names it), with its parts
    /// by version.
    companions: Vec<(usize, [OnceLock<creatives::CompanionTemplate>; VERSIONS])>,
}

const VERSIONS: usize = creatives::VastVersion::ALL.len();

/// The companions creative `c` lists, as indices among `adv`'s creatives:
/// the first creative by each id, ids no creative has left out. One
/// resolution for the auction and the VAST templates, which must name a
/// companion alike.
pub(crate) fn listed_companions<'a>(
    adv: &'a config::Advertiser,
    c: &'a config::Creative,
) -> impl Iterator<Item = usize> + 'a {
    c.companions
        .iter()
        .filter_map(|id| adv.creatives.iter().position(|x| &x.id == id))
}

impl AvTemplates {
    fn new(adv: &config::Advertiser, c: &config::Creative) -> Option<Box<AvTemplates>> {
        if !matches!(
            c.kind,
            config::CreativeKind::Video { .. } | config::CreativeKind::Audio { .. }
        ) {
            return None;
        }
        // As the auction resolves them (`checks::fit_av`).
        let companions = listed_companions(adv, c)
            .map(|i| (i, Default::default()))
            .collect();
        Some(Box::new(AvTemplates {
            by_version: Default::default(),
            companions,
        }))
    }

    /// The document of `creative` (the one these are of, among `adv`'s) at
    /// `version`, and the part of `companion` (an index among `adv`'s
    /// creatives) when there is one: `None` when the creative does not
    /// list that companion.
    pub(crate) fn get<'s>(
        &'s self,
        adv: &config::Advertiser,
        creative: &config::Creative,
        version: creatives::VastVersion,
        companion: Option<usize>,
    ) -> Option<(
        &'s creatives::VastTemplate,
        Option<&'s creatives::CompanionTemplate>,
    )> {
        let at = creatives::VastVersion::ALL
            .iter()
            .position(|&v| v == version)?;
        let main = self.by_version.get(at)?.get_or_init(|| {
            creatives::VastTemplate::new(version, crate::respond::AD_SYSTEM, &creative.id, creative)
        });
        let Some(i) = companion else {
            return Some((main, None));
        };
        let (_, parts) = self.companions.iter().find(|(c, _)| *c == i)?;
        let side = adv.creatives.get(i)?;
        let part = parts.get(at)?.get_or_init(|| {
            creatives::CompanionTemplate::new(version, side, creative.companion_required)
        });
        Some((main, Some(part)))
    }
}

impl CreativeJson {
    fn new(adv: &config::Advertiser, c: &config::Creative) -> CreativeJson {
        let with_companion = match &c.kind {
            config::CreativeKind::Video { .. } | config::CreativeKind::Audio { .. } => {
                listed_companions(adv, c)
                    .filter_map(|i| {
                        let side = adv.creatives.get(i)?;
                        let mut attributes = c.attributes.clone();
                        for a in &side.attributes {
                            if !attributes.contains(a) {
                                attributes.push(*a);
                            }
                        }
                        (attributes.len() > c.attributes.len())
                            .then(|| (i, Self::members(adv, c, &attributes)))
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        CreativeJson {
            members: Self::members(adv, c, &c.attributes),
            with_companion,
            language: Self::languages(c.language.as_deref()),
            notice_id: notice::encode(&c.id),
            https: creative_urls(c).all(is_https),
            image_bit: creatives::display_image_bit(c),
            vast: AvTemplates::new(adv, c),
            banner: creatives::BannerTemplate::new(c),
        }
    }

    /// The members of a bid for `c` (see [`CreativeJson::members`]),
    /// declaring `attributes`.
    fn members(adv: &config::Advertiser, c: &config::Creative, attributes: &[u8]) -> String {
        // The markup is written per bid: it carries the bid's tracking URLs.
        let mut m = String::with_capacity(256);
        let id = json_str(&c.id);
        m.push_str(&format!("\"adid\":{id},\"crid\":{id},\"adomain\":"));
        m.push_str(&serde_json::to_string(&adv.domains).unwrap_or_else(|_| "[]".into()));
        m.push_str(",\"cat\":");
        m.push_str(&serde_json::to_string(&adv.categories).unwrap_or_else(|_| "[]".into()));
        // What the creative declares (`attributes`, AdCOM 5.3): exchanges
        // filter bids on them as we filter creatives on `battr`.
        if !attributes.is_empty() {
            m.push_str(",\"attr\":");
            m.push_str(&serde_json::to_string(attributes).unwrap_or_else(|_| "[]".into()));
        }
        m
    }

    /// The creative's language for 2.5 and for 2.6 answers. `language`
    /// holds ISO-639-1 alone, `langb` (2.6 only: a 2.5 answer with it fails
    /// that version's schema) any BCP 47 tag. To a 2.5 exchange a tag's
    /// language subtag is said when it is two letters (`en` of `en-GB`).
    fn languages(tag: Option<&str>) -> [String; 2] {
        let Some(tag) = tag else {
            return [String::new(), String::new()];
        };
        let member = |name: &str, value: &str| format!(",\"{name}\":{}", json_str(value));
        if tag.len() == 2 {
            let m = member("language", tag);
            return [m.clone(), m];
        }
        let primary = tag.split(['-', '_']).next().unwrap_or("");
        let v25 = match primary.len() == 2 && primary.bytes().all(|b| b.is_ascii_alphabetic()) {
            true => member("language", &primary.to_ascii_lowercase()),
            false => String::new(),
        };
        [v25, member("langb", tag)]
    }

    /// What a bid for this creative says of its language, in `dialect`:
    /// members to follow [`CreativeJson::members_with`] (empty, or each
    /// led by a comma).
    pub fn language(&self, dialect: crate::respond::Dialect) -> &str {
        &self.language[dialect as usize]
    }

    /// The members a bid for this creative writes, with `companion` (an
    /// index among the advertiser's creatives) or none.
    pub fn members_with(&self, companion: Option<usize>) -> &str {
        match companion {
            Some(i) if !self.with_companion.is_empty() => self
                .with_companion
                .iter()
                .find(|(c, _)| *c == i)
                .map_or(&self.members, |(_, m)| m),
            _ => &self.members,
        }
    }
}

/// Every URL a creative's markup carries (its companions are creatives of
/// their own, checked apart).
fn creative_urls(c: &config::Creative) -> impl Iterator<Item = &str> {
    let own: Vec<&str> = match &c.kind {
        config::CreativeKind::Display { image_url, .. } => vec![image_url],
        config::CreativeKind::Video { media, .. } | config::CreativeKind::Audio { media, .. } => {
            media.iter().map(|m| m.url.as_str()).collect()
        }
        config::CreativeKind::Native(n) => [Some(&n.image), n.icon.as_ref()]
            .into_iter()
            .flatten()
            .map(|i| i.url.as_str())
            .collect(),
    };
    own.into_iter().chain([c.click_url.as_str()])
}

pub(crate) fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// See [`Snapshot::dsa_json`].
fn dsa_json(adv: &config::Advertiser) -> String {
    // Characters, not bytes: a name is cut where a character ends.
    let name: String = adv.name.chars().take(100).collect();
    let name = json_str(&name);
    format!(",\"ext\":{{\"dsa\":{{\"behalf\":{name},\"paid\":{name},\"adrender\":0}}}}")
}

/// A JSON string literal, quotes included.
pub(crate) fn json_str(s: &str) -> String {
    // Serialising a str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A lazy k-way merge of ascending posting lists: yields each item index
/// once, in ascending order (= descending CPM). Lazy so that selection can
/// stop as soon as it has its winner.
pub(crate) struct Candidates<'a> {
    lists: CandidateLists<'a>,
}

/// The posting lists a request draws from: one or two per size or medium
/// of the imp, and one per deal; on the stack up to eight, which covers an
/// imp of three sizes and two deals.
type CandidateLists<'a> = smallvec::SmallVec<[&'a [u32]; 8]>;

impl Iterator for Candidates<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let min = self.lists.iter().filter_map(|l| l.first()).min().copied()?;
        for l in self.lists.iter_mut() {
            if l.first() == Some(&min) {
                *l = &l[1..];
            }
        }
        Some(min as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_by_ratio_are_in_lowest_terms_widest_first_each_once() {
        let got = by_ratio(&[(300, 250), (120, 100), (728, 90), (600, 500), (300, 250)]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[&(6, 5)], [(600, 500), (300, 250), (120, 100)]);
        assert_eq!(got[&(364, 45)], [(728, 90)]);
    }

    #[test]
    fn lowest_terms_divide_by_the_greatest_common_divisor() {
        assert_eq!(lowest_terms(12, 10), Some((6, 5)));
        assert_eq!(lowest_terms(7, 7), Some((1, 1)));
        assert_eq!(lowest_terms(1, u32::MAX), Some((1, u32::MAX)));
        // Consecutive Fibonacci numbers: the longest Euclid takes.
        assert_eq!(
            lowest_terms(1_134_903_170, 1_836_311_903),
            Some((1_134_903_170, 1_836_311_903))
        );
        assert_eq!(lowest_terms(2 * 1_134_903_170, 2), Some((1_134_903_170, 1)));
        assert_eq!(lowest_terms(0, 5), None);
        assert_eq!(lowest_terms(5, 0), None);
    }

    /// Every video and audio creative of the example configs has its VAST
    /// templates, for every version and every companion it lists, and each
    /// writes what the writer writes with the values a bid passes
    /// (`respond::Answer::write_av`): the same `AdSystem`, title and
    /// `required` (each creative also as if it had the other `required`:
    /// no example sets it), the companion the auction names by its index,
    /// the renditions picked by index.
    #[test]
    fn av_templates_write_the_bidders_documents() {
        use creatives::{Companion, EventUrls, Vast, VastBid, VastVersion};
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let event = |e: &str, out: &mut String| {
            out.push_str("https://b.example/e?ev=");
            out.push_str(e);
        };
        let mut seen = 0;
        for dir in ["testdata/config/video", "testdata/config/spec-example"] {
            let config = config::load_dir(&root.join(dir)).expect("example config loads");
            for adv in &config.advertisers {
                for configured in &adv.creatives {
                    let mut flipped = configured.clone();
                    flipped.companion_required = !flipped.companion_required;
                    for c in [configured, &flipped] {
                        let media = match &c.kind {
                            config::CreativeKind::Video { media, .. }
                            | config::CreativeKind::Audio { media, .. } => media,
                            _ => {
                                assert!(AvTemplates::new(adv, c).is_none(), "{}", c.id);
                                continue;
                            }
                        };
                        let templates = AvTemplates::new(adv, c).expect("video or audio");
                        let listed: Vec<usize> = listed_companions(adv, c).collect();
                        let companions =
                            std::iter::once(None).chain(listed.iter().map(|&i| Some(i)));
                        for (version, companion) in VastVersion::ALL
                            .into_iter()
                            .flat_map(|v| companions.clone().map(move |c| (v, c)))
                        {
                            let picked = [media.len().saturating_sub(1)];
                            let (main, part) =
                                templates.get(adv, c, version, companion).expect("made");
                            let mut filled = String::new();
                            main.write_json(
                                &VastBid {
                                    ad_id: "b1",
                                    impression_url: "https://b.example/i",
                                    tracking: EventUrls(&event),
                                    click_tracking_url: Some("https://b.example/c"),
                                    renditions: &picked,
                                    companion: part.map(|p| (p, Some("https://b.example/cc"))),
                                    // As the bidder's own URLs are.
                                    plain_urls: true,
                                },
                                &mut filled,
                            );
                            let files: Vec<&config::MediaFile> =
                                picked.iter().filter_map(|&i| media.get(i)).collect();
                            let mut written = String::new();
                            creatives::vast_json(
                                &Vast {
                                    version,
                                    ad_id: "b1",
                                    ad_system: crate::respond::AD_SYSTEM,
                                    ad_title: &c.id,
                                    creative: c,
                                    media: &files,
                                    impression_url: "https://b.example/i",
                                    tracking: EventUrls(&event),
                                    click_tracking_url: Some("https://b.example/c"),
                                    companion: companion.map(|i| Companion {
                                        creative: &adv.creatives[i],
                                        required: c.companion_required,
                                        click_tracking_url: Some("https://b.example/cc"),
                                    }),
                                },
                                &mut written,
                            );
                            assert_eq!(filled, written, "{} {version} {companion:?}", c.id);
                            if companion.is_some()
                                && c.companion_required
                                && version >= VastVersion::V3_0
                            {
                                assert!(filled.contains("required=\\\"all\\\""), "{filled}");
                            }
                            seen += 1;
                        }
                    }
                }
            }
        }
        // The video example (a creative with a companion) and the spec's,
        // each both ways.
        assert!(seen >= 20, "{seen}");
    }

    #[test]
    fn candidates_merge_without_duplicates() {
        let a = [0u32, 2, 5, 9];
        let b = [1u32, 2, 9, 10];
        let c = Candidates {
            lists: smallvec::smallvec![&a[..], &b[..]],
        };
        assert_eq!(c.collect::<Vec<_>>(), vec![0, 1, 2, 5, 9, 10]);
    }
}
