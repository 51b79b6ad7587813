//! One auction code path. The rules a line item sets are compiled at config
//! load ([`compile`]) into one ordered list of [`Check`]s; the auction
//! ([`crate::select::select_imp`]) and `/v1/explain` both run that list
//! through [`evaluate`], the only place a line item is judged against an
//! imp. Explain differs only in asking every line item (the auction asks the
//! candidates its index finds) and in what it does with the answer; the
//! checks read the ledger and the audience store, and never spend, hold or
//! count (a frequency window read may roll its hourly buckets forward, as
//! any read at that time would).
//!
//! The list is in the order of [`Check`]'s declaration, which is at once:
//!
//! - the order the checks run: first what the candidate index answers for
//!   all line items at once (the imp's slot, country, deals: a line item it
//!   finds passes them, so re-checking them is cheap), then field compares
//!   and short lists against the request, then the ledger's maps, the
//!   keyword matcher and the audience store, then fitting creatives, then
//!   pricing, which may consult the click model and the shading curve;
//! - the no-bid reason order: when no line item bids, the reason given is
//!   that of the one that got furthest down the list ([`Stop::deeper`]),
//!   over every imp of the request.
//!
//! A check a line item does not need (no country list, no keywords) is left
//! out of its list at load, so the common line item runs few of them.
//! Where the rule's data lives: the [`Item`] (lists, caps, deal ids), its
//! [`crate::targeting::Rules`] (geo beyond country, OS, inventory lists,
//! day-parts), its advertiser (`badv`/`bcat` domains and categories,
//! audiences, creatives) and the creatives crate (what fits a slot).

use config::Micros;
use ortb::Imp;
use rand::Rng;

use crate::context::Context;
use crate::nobid::NoBid;
use crate::select::{AvOffer, Choice, ChoiceKind, Offer, Pricing, Stores, HOUR_MS};
use crate::snapshot::{Item, Snapshot};

/// One check of a line item's list. Declared in the order they run, which
/// is also the order of no-bid reasons: a later check got further.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Check {
    /// The imp itself, once per imp before any line item: a medium the
    /// bidder buys, a floor it can price (`select::imp_floor_or_stop`).
    Imp,
    /// The imp offers the line item's medium and, for display, a size one
    /// of its creatives has. First, with `Country` and `Deal`: the
    /// candidate index ([`crate::snapshot::Snapshot::candidates`]) answers
    /// these three for all line items at once, and tells the auction how
    /// far the line items it skips got.
    Slot,
    /// A short list against `geo.country`.
    Country,
    /// Deals and private auctions; sets the floor and auction type the
    /// rest of the list sees.
    Deal,
    /// The order's flight holds now: one compare.
    Flight,
    /// A short list against `device.devicetype`.
    Device,
    /// Regions, then cities.
    Geo,
    Os,
    /// Site, app and publisher allow and block lists.
    Inventory,
    /// The hours of the week, in the user's time zone.
    Daypart,
    /// The advertiser's domains and categories against `badv`, `bcat` and
    /// `acat`: request lists, walked per candidate.
    Blocked,
    /// The line item's highest bid against the floor.
    Floor,
    /// Budgets and pacing leave room for the least it could bid: a ledger
    /// read, before the costlier checks.
    Room,
    /// The keyword matcher, over the page's keywords.
    Keyword,
    /// Audience store lookups (and privacy, for behavioural audiences).
    Audience,
    /// A ledger read per capped user (and privacy).
    Frequency,
    /// Markup carries our trackers: on a secure slot they need https (a
    /// banner's only where `imp.secure` says so).
    Trackers,
    /// Video and audio placement kinds.
    Placement,
    /// A creative that fits the slot and may serve there. Within it, a
    /// creative that fits but may not serve (`secure`, `attribute`,
    /// `language`) got
    /// further than none fitting (`creative`).
    Creative,
    /// The value (a prediction for value-based line items), shading, and
    /// room at the price. Last: the most expensive, and only for a line item
    /// that would otherwise bid.
    Price,
}

/// Where and why a line item stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stop {
    pub at: Check,
    pub reason: NoBid,
    /// Where the reason is `creative`: what kept the line item's
    /// creatives out of the slot (`/v1/explain`'s `detail`; not a metric
    /// label). For video and audio the furthest any creative got in the
    /// order its fit is checked, or what the slot rules out; for native
    /// the asset kind where the ad that got furthest through the request's
    /// assets stopped; for a banner, its image types.
    pub detail: Option<&'static str>,
}

impl Stop {
    pub(crate) fn new(at: Check, reason: NoBid) -> Stop {
        Stop {
            at,
            reason,
            detail: None,
        }
    }

    /// The deadline passed: the auction ends there, whatever any line item
    /// would have done.
    pub(crate) fn late() -> Stop {
        Stop::new(Check::Price, NoBid::Late)
    }

    /// How far down the list it got.
    fn depth(self) -> (Check, bool) {
        (
            self.at,
            matches!(self.reason, NoBid::Secure | NoBid::Attribute),
        )
    }

    /// Whether this stop got at least as far as `other`: its reason is then
    /// the more telling one. Ties go to the later stop, so a line item the
    /// auction evaluates speaks over what the index said of those it
    /// skipped.
    pub(crate) fn deeper(self, other: Option<Stop>) -> bool {
        other.is_none_or(|o| self.depth() >= o.depth())
    }
}

/// A line item's list, at config load. Every line item runs `Slot`,
/// `Deal`, `Flight`, `Floor`, `Room`, `Creative` and `Price`; the others
/// only where it sets the rule they check.
pub(crate) fn compile(item: &Item) -> Box<[Check]> {
    let rules = item.rules.as_deref();
    let av = matches!(item.media, config::Media::Video | config::Media::Audio);
    let wanted = [
        (Check::Slot, true),
        (Check::Country, !item.countries.is_empty()),
        (Check::Deal, true),
        (Check::Flight, true),
        (Check::Device, !item.devices.is_empty()),
        (Check::Geo, rules.is_some_and(|r| r.has_geo())),
        (Check::Os, rules.is_some_and(|r| r.has_os())),
        (Check::Inventory, rules.is_some_and(|r| r.has_inventory())),
        (Check::Daypart, rules.is_some_and(|r| r.has_daypart())),
        // Always: an `acat` keeps out an advertiser without categories too.
        (Check::Blocked, true),
        (Check::Floor, true),
        (Check::Room, true),
        (Check::Keyword, item.keywords.is_some()),
        (Check::Audience, item.audiences.is_some()),
        (Check::Frequency, item.frequency.is_some()),
        (Check::Trackers, true),
        (Check::Placement, av && !item.placements.is_empty()),
        (Check::Creative, true),
        (Check::Price, true),
    ];
    let list: Box<[Check]> = wanted
        .into_iter()
        .filter(|&(_, on)| on)
        .map(|(c, _)| c)
        .collect();
    // The run order must be the declaration order, which is the reason
    // order: `wanted` above repeats it by hand.
    debug_assert!(list.is_sorted(), "{list:?}");
    list
}

/// What the checks so far decided, for those after them.
struct Walk<'r> {
    floor: Option<Micros>,
    /// A deal's own auction type (`pmp.deals[].at`) overrides the request's.
    first_price: bool,
    /// A fixed-price deal's agreed price: what is bid.
    fixed: Option<Micros>,
    deal: Option<&'r ortb::Deal<'r>>,
    keyword: Option<&'r str>,
    /// Index within the advertiser.
    audience: Option<usize>,
    choice: Option<Choice>,
    /// What the chosen spot's duration must clear ([`spot_floor`]),
    /// worked out where the spot was chosen.
    spot_floor: Micros,
    /// Why no creative fit, where none did ([`Stop::detail`]).
    misfit: Option<&'static str>,
}

/// Runs line item `index`'s list against one imp: the bid it would make, or
/// where and why it stops. Reads the ledger and the audience store, never
/// writes; the caller reserves.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate(
    snap: &Snapshot,
    ctx: &Context<'_>,
    imp: &Imp<'_>,
    offer: &Offer<'_>,
    floor: Option<Micros>,
    index: usize,
    item: &Item,
    stores: &Stores<'_>,
) -> Result<Choice, Stop> {
    let adv = &snap.config.advertisers[item.advertiser];
    let mut walk = Walk {
        floor,
        first_price: stores.market.first_price,
        fixed: None,
        deal: None,
        keyword: None,
        audience: None,
        choice: None,
        spot_floor: Micros::ZERO,
        misfit: None,
    };
    for &at in item.checks.iter() {
        let stop = |reason| Stop::new(at, reason);
        let yes = |pass: bool, reason| if pass { Ok(()) } else { Err(reason) };
        let result = match at {
            // Answered per imp, before the line items (`select`).
            Check::Imp => Ok(()),
            Check::Slot => slot(adv, item, offer),
            Check::Country => yes(
                ctx.country_key
                    .is_some_and(|c| item.country_keys.contains(&c)),
                NoBid::Country,
            ),
            Check::Deal => deal(ctx, imp, adv, item, stores.market.seat, &mut walk),
            Check::Flight => yes(item.flight.contains(ctx.now), NoBid::Flight),
            Check::Device => yes(
                ctx.devicetype
                    .is_some_and(|t| item.devices.iter().any(|d| d.matches_devicetype(t))),
                NoBid::Device,
            ),
            Check::Geo => yes(item.rules.as_ref().is_none_or(|r| r.geo(ctx)), NoBid::Geo),
            Check::Os => yes(item.rules.as_ref().is_none_or(|r| r.os(ctx)), NoBid::Os),
            Check::Inventory => yes(
                item.rules.as_ref().is_none_or(|r| r.inventory(ctx)),
                NoBid::Inventory,
            ),
            Check::Daypart => yes(
                item.rules.as_ref().is_none_or(|r| r.daypart(ctx)),
                NoBid::Daypart,
            ),
            Check::Blocked => yes(
                !blocked_once(adv, item.advertiser, ctx, stores),
                NoBid::Blocked,
            ),
            Check::Floor => clears_floor(ctx, item, walk.floor),
            // Read only, at the least it could bid; the reservation checks
            // again, atomically, at its price.
            Check::Room => match walk.floor {
                Some(f) => room(stores, ctx, item, f.max(Micros(1))),
                None => Err(NoBid::Currency),
            },
            Check::Keyword => match item.keywords.as_ref().map(|k| k.matched(&ctx.keywords)) {
                Some(Some(k)) => {
                    walk.keyword = k;
                    Ok(())
                }
                _ => Err(NoBid::Keyword),
            },
            Check::Audience => audience(stores, adv, item, ctx, offer).map(|a| walk.audience = a),
            Check::Frequency => frequency(stores, item, ctx),
            // VAST and native ads carry our trackers on any secure slot.
            // A banner's click link and pixel on an http public URL serve
            // where the slot does not itself say `secure: 1` (an https page
            // alone: the quick start's), and nowhere it does: OpenRTB asks
            // https of all its markup there, and exchanges audit for it.
            Check::Trackers => yes(
                ctx.https_trackers
                    || !match item.media {
                        config::Media::Display => offer.secure_flag,
                        _ => offer.secure,
                    },
                NoBid::Secure,
            ),
            Check::Placement => yes(
                av_offer(item.media, offer).is_some_and(|av| {
                    av.plcmt
                        .is_some_and(|p| item.placements.iter().any(|x| x.matches_plcmt(p)))
                }),
                NoBid::Placement,
            ),
            Check::Creative => {
                creative(snap, ctx, imp, adv, item, offer, &mut walk).map(|(creative, kind)| {
                    walk.choice = Some(Choice {
                        item: index,
                        creative,
                        price: item.cpm,
                        pricing: Pricing {
                            value: item.cpm,
                            shading: None,
                            prediction: None,
                            features: None,
                            first_price: walk.first_price,
                            fixed: walk.fixed,
                            fixed_sent: walk.fixed.and(walk.deal).and_then(price_as_sent),
                        },
                        deal: walk.deal.map(|d| d.id.to_string()),
                        keyword: walk.keyword.map(str::to_owned),
                        audience: walk.audience,
                        kind,
                    });
                })
            }
            Check::Price => {
                return match (walk.choice.take(), walk.floor) {
                    (Some(choice), Some(floor)) => {
                        let floor = walk.spot_floor.max(floor);
                        price(snap, ctx, item, floor, stores, choice).map_err(stop)
                    }
                    // `compile` puts `Floor` and `Creative` before `Price`
                    // in every list; without them, no bid.
                    (None, _) => Err(stop(NoBid::Creative)),
                    (_, None) => Err(stop(NoBid::Currency)),
                };
            }
        };
        result.map_err(|reason| match (at, reason) {
            // Spots priced out by their duration's floors are passed over
            // where the spot is chosen; the stop is the price's, as deep
            // as a floor the price does not clear, so that the reason the
            // auction counts across line items stays where it was.
            (Check::Creative, NoBid::Floor) => Stop::new(Check::Price, reason),
            (Check::Creative, NoBid::Creative) => Stop {
                detail: walk.misfit,
                ..stop(reason)
            },
            _ => stop(reason),
        })?;
    }
    // Every list `compile` makes ends with `Price`, which returns; a list
    // without it bids nothing.
    Err(Stop::new(Check::Price, NoBid::Creative))
}

/// What a video or audio spot of `secs` seconds must clear beside its
/// floor (OpenRTB 2.6 `mincpmpersec` times its seconds, and the
/// `durfloors` whose range holds them, in USD), as its floor goes: a
/// deal's own when it gives them, none past a deal's own floor, else the
/// imp's; a fixed price is what is bid, floors or not. One that cannot be
/// converted bids nothing.
fn spot_floor(
    ctx: &Context<'_>,
    imp: &Imp<'_>,
    media: config::Media,
    walk: &Walk<'_>,
    secs: u32,
) -> Result<Micros, NoBid> {
    match walk.deal {
        Some(_) if walk.fixed.is_some() => Ok(Micros::ZERO),
        Some(d)
            if d.mincpmpersec.is_some_and(|v| v > 0)
                || d.durfloors
                    .iter()
                    .any(|f| f.bidfloor.is_some_and(|b| b > 0)) =>
        {
            floor_of_duration(ctx, secs, d.mincpmpersec, &d.durfloors, &d.bidfloorcur)
        }
        Some(d) if d.bidfloor > 0 => Ok(Micros::ZERO),
        _ => {
            let (per_sec, durfloors) = match media {
                config::Media::Video => match &imp.video {
                    Some(v) => (v.mincpmpersec, &v.durfloors),
                    None => return Ok(Micros::ZERO),
                },
                config::Media::Audio => match &imp.audio {
                    Some(a) => (a.mincpmpersec, &a.durfloors),
                    None => return Ok(Micros::ZERO),
                },
                _ => return Ok(Micros::ZERO),
            };
            floor_of_duration(ctx, secs, per_sec, durfloors, &imp.bidfloorcur)
        }
    }
}

/// A fixed-price deal's price as it sent it, in micros of its currency
/// (upper-cased): [`crate::select::Pricing::fixed_sent`].
fn price_as_sent(d: &ortb::Deal<'_>) -> Option<(Micros, [u8; 3])> {
    let code = crate::context::Currency::code_of(&d.bidfloorcur)?;
    Some((Micros(d.bidfloor), code))
}

/// `per_sec` times `secs`, and the highest of the `durfloors` whose range
/// holds `secs`, in USD from `currency`.
fn floor_of_duration(
    ctx: &Context<'_>,
    secs: u32,
    per_sec: Option<i64>,
    durfloors: &[ortb::DurFloor],
    currency: &str,
) -> Result<Micros, NoBid> {
    let by_secs = per_sec.map_or(0, |p| p.saturating_mul(i64::from(secs)));
    let by_range = durfloors
        .iter()
        .filter(|d| d.covers(secs))
        .filter_map(|d| d.bidfloor)
        .max()
        .unwrap_or(0);
    crate::context::floor_usd(by_secs.max(by_range), currency, ctx.rates).ok_or(NoBid::Currency)
}

/// The floor against the line item's highest bid: none that can be priced
/// (`currency`), one above it, or a bid worth less than a micro of the
/// answer's currency.
fn clears_floor(ctx: &Context<'_>, item: &Item, floor: Option<Micros>) -> Result<(), NoBid> {
    let Some(floor) = floor else {
        return Err(NoBid::Currency);
    };
    if item.cpm < floor {
        return Err(NoBid::Floor);
    }
    if ctx.currency.rate.from_usd(item.cpm) <= Micros::ZERO {
        return Err(NoBid::Currency);
    }
    Ok(())
}

/// The medium is offered and, for display, a size a creative has: what
/// the candidate index looks up.
fn slot(adv: &config::Advertiser, item: &Item, offer: &Offer<'_>) -> Result<(), NoBid> {
    let offered = match item.media {
        // A banner of no usable size (`{}`, 0 by 0) falls to the size
        // check below: the slot is there, no creative fits it.
        config::Media::Display => offer.banner,
        config::Media::Native => offer.native.is_some(),
        config::Media::Video | config::Media::Audio => av_offer(item.media, offer).is_some(),
    };
    if !offered {
        return Err(NoBid::Media);
    }
    if item.media == config::Media::Display
        && !item
            .creatives
            .iter()
            .any(|&c| creatives::fits_sizes(&adv.creatives[c], &offer.sizes))
    {
        return Err(NoBid::Size);
    }
    Ok(())
}

fn av_offer<'o, 'r>(media: config::Media, offer: &'o Offer<'r>) -> Option<&'o AvOffer<'r>> {
    match media {
        config::Media::Video => offer.video.as_ref(),
        config::Media::Audio => offer.audio.as_ref(),
        config::Media::Display | config::Media::Native => None,
    }
}

/// [`blocked`] for advertiser `index`, worked out once per request where
/// the lists are long (`Stores::blocked`): the work of a request is
/// then its advertisers times its entries, not its imps times its line
/// items times its entries. Nearly every request has short lists, and
/// pays one branch.
#[inline(always)]
fn blocked_once(
    adv: &config::Advertiser,
    index: usize,
    ctx: &Context<'_>,
    stores: &Stores<'_>,
) -> bool {
    match &stores.blocked {
        None => blocked(adv, ctx),
        Some(memo) => blocked_remembered(adv, index, ctx, memo),
    }
}

/// [`blocked_once`] for long lists: out of line, so that the common path
/// stays as it was before the memo.
#[inline(never)]
fn blocked_remembered(
    adv: &config::Advertiser,
    index: usize,
    ctx: &Context<'_>,
    memo: &std::cell::RefCell<Vec<u8>>,
) -> bool {
    if let Some(&known @ 1..) = memo.borrow().get(index) {
        return known == 2;
    }
    let answer = blocked(adv, ctx);
    let mut memo = memo.borrow_mut();
    if memo.len() <= index {
        // Up to the advertisers of the config, at most: bounded by it.
        memo.resize(index + 1, 0);
    }
    memo[index] = 1 + u8::from(answer);
    answer
}

/// The advertiser's domain is in `badv` or its category in `bcat`. A
/// `bcat` in another taxonomy (`cattax` other than 1: Content Taxonomy 2.x,
/// the Ad Product Taxonomy) blocks every advertiser with categories: ours
/// are IAB 1.0, no mapping between the two is exact, and a category shown
/// where the publisher blocked it costs more than a bid not made.
///
/// An `acat` (2.6: the only categories allowed) lets in an advertiser
/// whose every category is within one of it, and keeps out one without
/// categories: nothing shows it is allowed. In another taxonomy it keeps
/// out every advertiser, as a foreign `bcat` does those with categories.
#[inline]
fn blocked(adv: &config::Advertiser, ctx: &Context<'_>) -> bool {
    if ctx.block_entries() > crate::context::MAX_BLOCK_ENTRIES {
        return true;
    }
    if !ctx.acat.is_empty()
        && (ctx.bcat_foreign
            || adv.categories.is_empty()
            || !adv
                .categories
                .iter()
                .all(|c| ctx.acat.iter().any(|a| category_blocked(c, a))))
    {
        return true;
    }
    if ctx.bcat_foreign && !adv.categories.is_empty() {
        return true;
    }
    adv.domains.iter().any(|d| {
        ctx.badv.iter().any(|b| {
            let b = if ctx.badv_loose { listed_domain(b) } else { b };
            domain_blocked(d, b)
        })
    }) || adv
        .categories
        .iter()
        .any(|c| ctx.bcat.iter().any(|b| category_blocked(c, b)))
}

/// A deal line item bids only in one of its deals the imp offers, at the
/// deal's floor and auction type; an open-market one not in a private
/// auction. A deal that names the seats (`wseat`) or advertiser domains
/// (`wadomain`) it is for is not one to bid in for anybody else: the
/// exchange throws the bid away, with the budget it held. Without a seat
/// in the exchange's profile, ours is unknown and `wseat` is not read, as
/// the request's is not.
fn deal<'r>(
    ctx: &Context<'_>,
    imp: &'r Imp<'r>,
    adv: &config::Advertiser,
    item: &Item,
    seat: Option<&str>,
    walk: &mut Walk<'r>,
) -> Result<(), NoBid> {
    let pmp = imp.pmp.as_ref();
    if item.deals.is_empty() {
        // Only the listed deals may bid in a private auction.
        return match pmp.is_some_and(|p| crate::select::is_private(p)) {
            true => Err(NoBid::Deal),
            false => Ok(()),
        };
    }
    let offered = pmp.map(|p| p.deals.as_slice()).unwrap_or(&[]);
    let for_us = |d: &ortb::Deal<'_>| {
        let seat_ok = d.wseat.is_empty() || seat.is_none_or(|s| d.wseat.iter().any(|w| w == s));
        // Every domain the bid names (its `adomain`) must be allowed, as
        // every category must be under `acat`.
        let domain_ok = d.wadomain.is_empty()
            || (!adv.domains.is_empty()
                && adv.domains.iter().all(|ours| {
                    d.wadomain
                        .iter()
                        .any(|w| crate::targeting::domain_within(ours, listed_domain(w)))
                }));
        seat_ok && domain_ok
    };
    // Of our deals the imp offers, the first this line item clears the
    // floor of; else the first, whose floor (or currency) is then the
    // reason. An exchange may list a deal we cannot clear before one we
    // can: taking the first alone made no bid where one was open.
    // A deal's own floor in USD (`Ok(None)`: it has none, the imp's
    // applies), worked out once per deal looked at.
    let priced = |d: &ortb::Deal<'_>| match d.bidfloor {
        0 => Ok(None),
        floor => crate::context::floor_usd(floor, &d.bidfloorcur, ctx.rates)
            .map(Some)
            .ok_or(NoBid::Currency),
    };
    // A fixed-price deal (`at` 3) without a price cannot be bid in.
    let fixed = |d: &ortb::Deal<'_>| d.at == Some(FIXED_PRICE);
    let clears = |d: &ortb::Deal<'_>, floor: &Result<Option<Micros>, NoBid>| match floor {
        Ok(None) => !fixed(d) && walk.floor.is_some_and(|f| item.cpm >= f),
        Ok(Some(f)) => item.cpm >= *f,
        Err(_) => false,
    };
    // Only the first entry of a deal id listed twice: the exchange looks
    // a bid's deal up by its id and finds that one, whose terms hold
    // (wire probe: a later entry's were bid on, under a first that left
    // our seat out). Ids already met are ours only, so this stays
    // linear in the deals offered.
    let mut met: smallvec::SmallVec<[&str; 4]> = smallvec::SmallVec::new();
    let mut ours = offered
        .iter()
        .filter(|d| {
            let id = d.id.as_ref();
            if !item.deals.iter().any(|want| want == id) || met.contains(&id) {
                return false;
            }
            met.push(id);
            for_us(d)
        })
        .map(|d| (d, priced(d)));
    let first = ours.next().ok_or(NoBid::Deal)?;
    let (d, floor) = if clears(first.0, &first.1) {
        first
    } else {
        ours.find(|(d, floor)| clears(d, floor)).unwrap_or(first)
    };
    let floor = floor?;
    if fixed(d) {
        // Its floor is the agreed price: the bid, neither more nor less.
        walk.fixed = Some(floor.ok_or(NoBid::Deal)?);
    }
    if let Some(floor) = floor {
        walk.floor = Some(floor);
    }
    walk.deal = Some(d);
    if let Some(at) = d.at {
        walk.first_price = at == 1;
    }
    Ok(())
}

/// `pmp.deals[].at`: "the value passed in bidfloor is the agreed upon
/// deal price" (OpenRTB 2.6, 3.2.12).
pub(crate) const FIXED_PRICE: i32 = 3;

/// The first of `any_of` the request is in (index within the advertiser),
/// when it is in none of `none_of`.
fn audience(
    stores: &Stores<'_>,
    adv: &config::Advertiser,
    item: &Item,
    ctx: &Context<'_>,
    offer: &Offer<'_>,
) -> Result<Option<usize>, NoBid> {
    let Some((any_of, none_of)) = &item.audiences else {
        return Ok(None);
    };
    // An exclusion that cannot be checked: bidding would reach the users
    // it leaves out (audiences probe: a customer list in `none_of` was
    // ignored for every user who opted out).
    if item.excludes_behavioural && ctx.restriction.is_some() {
        return Err(NoBid::Privacy);
    }
    let is = |a: &usize| crate::select::in_audience(stores, &adv.audiences[*a], ctx, offer);
    let excluded = none_of.iter().any(is);
    let matched = if excluded {
        None
    } else {
        any_of.iter().copied().find(|a| is(a))
    };
    if excluded || (!any_of.is_empty() && matched.is_none()) {
        if item.behavioural && ctx.restriction.is_some() {
            return Err(NoBid::Privacy);
        }
        return Err(NoBid::Audience);
    }
    Ok(matched)
}

fn frequency(stores: &Stores<'_>, item: &Item, ctx: &Context<'_>) -> Result<(), NoBid> {
    let Some(cap) = &item.frequency else {
        return Ok(());
    };
    // Counting a user's impressions is keeping data about them: not where
    // privacy signals forbid behavioural use.
    if ctx.restriction.is_some() {
        return Err(NoBid::Privacy);
    }
    // A capped line item needs to know who it is counting.
    let Some(user) = ctx.visitor.user else {
        return Err(NoBid::Frequency);
    };
    let window = i64::from(cap.per_hours) * HOUR_MS;
    let (ledger, key) = (stores.ledger, &item.spend_key);
    let allows = match &stores.count_everywhere {
        Some(counted) => {
            let known = counted.borrow().get(key).copied();
            known.unwrap_or_else(|| {
                let n =
                    ledger.frequency_allows_everywhere(user, key, cap.impressions, window, ctx.now);
                counted.borrow_mut().insert(key.clone(), n);
                n
            })
        }
        None => ledger.frequency_allows(user, key, cap.impressions, window, ctx.now),
    };
    match allows {
        true => Ok(()),
        false => Err(NoBid::Frequency),
    }
}

/// AdCOM's banner ad type of our display markup (a link around an image).
const XHTML_BANNER: i32 = 2;

/// The creative to show and how it fills the slot.
#[allow(clippy::too_many_arguments)]
fn creative(
    snap: &Snapshot,
    ctx: &Context<'_>,
    imp: &Imp<'_>,
    adv: &config::Advertiser,
    item: &Item,
    offer: &Offer<'_>,
    walk: &mut Walk<'_>,
) -> Result<(usize, ChoiceKind), NoBid> {
    let usable = Usable {
        snap,
        ctx,
        advertiser: item.advertiser,
        battr: offer.battr.of(item.media),
        secure: offer.secure,
    };
    match item.media {
        config::Media::Display => {
            // Our display markup is an XHTML banner (`btype` 2): a slot
            // blocking that type takes none of our banners, nor one
            // blocking a type nobody can read.
            if offer.banner_btype.contains(&XHTML_BANNER)
                || offer.banner_btype.contains(&ortb::UNREADABLE_CODE)
            {
                return Err(NoBid::Attribute);
            }
            // The first offered size (the exchange's preference) that a
            // usable creative has, of an image type the slot takes.
            let mut blocked = None;
            for &(w, h) in &offer.sizes {
                for &c in &item.creatives {
                    if !creatives::fits_sizes(&adv.creatives[c], &[(w, h)]) {
                        continue;
                    }
                    let bit = snap.creative_json[item.advertiser][c].image_bit;
                    if offer.banner_mimes.is_some_and(|takes| takes & bit == 0) {
                        blocked.get_or_insert(NoBid::Creative);
                        walk.misfit = Some("image_type");
                        continue;
                    }
                    match usable.check(c) {
                        Ok(()) => {
                            let ratio = offer
                                .flexible
                                .iter()
                                .find(|(size, _)| *size == (w, h))
                                .map(|&(_, ratio)| ratio);
                            return Ok((c, ChoiceKind::Banner { w, h, ratio }));
                        }
                        Err(r) => blocked = Some(r),
                    }
                }
            }
            // `Slot` found a creative of an offered size.
            Err(blocked.unwrap_or(NoBid::Creative))
        }
        config::Media::Native => {
            let request = match offer.native.as_ref() {
                Some(Ok(request)) => request,
                // Read, and asking for nothing: no ad fits it, as an ad
                // fits no asset of a request it does not fill (exchange
                // probe: it was said to be unreadable).
                Some(Err(creatives::NativeError::NoAssets)) => {
                    walk.misfit = Some("no_asset");
                    return Err(NoBid::Creative);
                }
                _ => {
                    walk.misfit = Some("native_request");
                    return Err(NoBid::Creative);
                }
            };
            let mut blocked = None;
            // How far the ad whose misfit is noted got through the
            // request's assets: the furthest, the first such ad on a tie.
            let mut furthest: Option<usize> = None;
            for &c in &item.creatives {
                let Some(ad) = crate::select::native_ad(&adv.creatives[c]) else {
                    continue;
                };
                let fit = match creatives::fit_native(&ad, request) {
                    Ok(fit) => fit,
                    Err(misfit) => {
                        let reached = misfit.reached(request);
                        if furthest.is_none_or(|r| reached > r) {
                            furthest = Some(reached);
                            walk.misfit = Some(misfit.kind());
                        }
                        continue;
                    }
                };
                match usable.check(c) {
                    Ok(()) => return Ok((c, ChoiceKind::Native { fit: Box::new(fit) })),
                    Err(r) => blocked = Some(r),
                }
            }
            Err(blocked.unwrap_or(NoBid::Creative))
        }
        config::Media::Video | config::Media::Audio => {
            let av = av_offer(item.media, offer).ok_or(NoBid::Media)?;
            // A spot whose duration's floors the line item cannot pay is
            // passed over for one whose it can (a 30 s spot where the slot
            // prices 15 s ones above the CPM): `Price` applies them.
            let affordable = |secs: u32| match spot_floor(ctx, imp, item.media, walk, secs) {
                Ok(f) if f <= item.cpm => Ok(f),
                Ok(_) => Err(NoBid::Floor),
                Err(r) => Err(r),
            };
            let mut misfit = None;
            let fitted = fit_av(adv, item, av, &usable, &affordable, &mut misfit);
            walk.misfit = misfit;
            let (c, kind, floor) = fitted?;
            walk.spot_floor = floor;
            Ok((c, kind))
        }
    }
}

/// The bid for a chosen creative: the line item's value, shaded in a
/// first-price auction, never under the floor.
fn price(
    snap: &Snapshot,
    ctx: &Context<'_>,
    item: &Item,
    floor: Micros,
    stores: &Stores<'_>,
    mut choice: Choice,
) -> Result<Choice, NoBid> {
    let market = &stores.market;
    // A fixed CPM needs no prediction: its features (for the tracking URLs)
    // are built for the winner only, after the walk.
    let features = match item.bidding {
        config::Bidding::FixedCpm => None,
        _ => crate::select::candidate_features(snap, ctx, market, item, &choice, choice.audience),
    };
    let (value, prediction) = crate::value::value(item, market.model, features.as_ref());
    choice.pricing.value = value;
    choice.pricing.prediction = prediction;
    choice.pricing.features = features;
    if value < floor || value <= Micros::ZERO {
        return Err(NoBid::Floor);
    }
    if let Some(agreed) = choice.pricing.fixed {
        // A fixed-price deal: the agreed price is the bid and the charge,
        // whatever the impression is worth above it.
        choice.price = agreed.max(floor);
    } else if item.shading && choice.pricing.first_price {
        let key = shading::CurveKey::new(market.exchange, crate::select::slot_kind(item.media));
        let draw = if market.explore {
            rand::rng().random::<f64>()
        } else {
            1.0
        };
        let shaded = market
            .shader
            .shade_with(&key, value.as_i64(), floor.as_i64(), draw);
        // The crate never goes above the value or under the floor; this
        // holds whatever it answers.
        choice.price = Micros(shaded.bid_micros.clamp(floor.as_i64(), value.as_i64()));
        choice.pricing.shading = Some(shaded);
    } else {
        choice.price = value;
    }
    // A price worth less than a micro of the answer's currency bids nothing.
    if ctx.currency.rate.from_usd(choice.price) <= Micros::ZERO {
        return Err(NoBid::Currency);
    }
    room(stores, ctx, item, choice.price)?;
    Ok(choice)
}

/// Whether the line item's budgets and pacing plan leave room for an
/// impression bought at `cpm`.
fn room(stores: &Stores<'_>, ctx: &Context<'_>, item: &Item, cpm: Micros) -> Result<(), NoBid> {
    let cost = ledger::impression_cost(cpm);
    stores
        .ledger
        .room(
            &crate::select::limits(item, Some(ctx)),
            cost,
            ctx.today,
            ctx.now,
        )
        .map_err(crate::select::refused)?;
    if let Some(bid) = stores.warm.take() {
        stores.ledger.prefetch(bid);
    }
    Ok(())
}

/// Whether a creative may serve in this slot: none of its attributes
/// blocked, and only https URLs where the slot is secure.
struct Usable<'a, 'r> {
    snap: &'a Snapshot,
    ctx: &'a Context<'r>,
    advertiser: usize,
    battr: &'a [i32],
    secure: bool,
}

impl Usable<'_, '_> {
    fn check(&self, creative: usize) -> Result<(), NoBid> {
        let adv = &self.snap.config.advertisers[self.advertiser];
        if self.secure && !self.snap.creative_json[self.advertiser][creative].https {
            return Err(NoBid::Secure);
        }
        if adv.creatives[creative]
            .attributes
            .iter()
            .any(|a| blocks(self.battr, i32::from(*a)))
        {
            return Err(NoBid::Attribute);
        }
        self.language(&adv.creatives[creative])
    }

    /// A creative that says its language, where the request lists those it
    /// allows (`wlang`, `wlangb`). Inline: it is asked of every creative
    /// that fits, and nearly every request lists no languages.
    #[inline]
    fn language(&self, creative: &config::Creative) -> Result<(), NoBid> {
        if self.ctx.languages.is_none() {
            return Ok(());
        }
        match creative.language.as_deref() {
            Some(tag) if !self.ctx.allows_language(tag) => Err(NoBid::Language),
            _ => Ok(()),
        }
    }

    /// A companion shows on the same page: https where the slot is, and
    /// none of its attributes blocked by the companion slots, nor by the
    /// video or audio slot it comes with: it is part of that impression,
    /// and its attributes are in the bid's `attr`, which exchanges hold
    /// to that slot's `battr` (exchanges probe: a companion declaring an
    /// attribute the video blocked was sent).
    fn companion(&self, creative: usize, battr: &[i32]) -> Result<(), NoBid> {
        let adv = &self.snap.config.advertisers[self.advertiser];
        if self.secure && !self.snap.creative_json[self.advertiser][creative].https {
            return Err(NoBid::Secure);
        }
        let attributes = &adv.creatives[creative].attributes;
        let blocked = |a: i32| blocks(battr, a) || blocks(self.battr, a);
        match attributes.iter().any(|a| blocked(i32::from(*a))) {
            true => Err(NoBid::Attribute),
            false => self.language(&adv.creatives[creative]),
        }
    }
}

/// Whether a slot's `battr` blocks attribute `a`: listed, or behind an
/// entry nobody can read ([`ortb::UNREADABLE_CODE`]), which may be any
/// attribute (a creative that declares none is blocked by none).
fn blocks(battr: &[i32], a: i32) -> bool {
    // One pass: the list may run to thousands of entries, and is asked
    // of every attribute of every creative that fits.
    battr.iter().any(|&b| b == a || b == ortb::UNREADABLE_CODE)
}

/// The first creative of a video or audio line item that the slot takes.
/// The placement kind is the `Placement` check's, before this.
fn fit_av(
    adv: &config::Advertiser,
    item: &Item,
    av: &AvOffer<'_>,
    usable: &Usable<'_, '_>,
    affordable: &dyn Fn(u32) -> Result<Micros, NoBid>,
    misfit: &mut Option<&'static str>,
) -> Result<(usize, ChoiceKind, Micros), NoBid> {
    let Some(version) = av.version else {
        *misfit = Some("protocol");
        return Err(NoBid::Creative);
    };
    if !av.linear {
        *misfit = Some("linearity");
        return Err(NoBid::Creative);
    }
    // The furthest any creative's fit got, in the order it is checked.
    let mut furthest: Option<creatives::Misfit> = None;
    let mut blocked = None;
    for &c in &item.creatives {
        let creative = &adv.creatives[c];
        // On the stack: a creative lists a companion or two, and these were
        // two allocations per video creative tried.
        let mut ruled_out = None;
        let companions: smallvec::SmallVec<[usize; 4]> =
            crate::snapshot::listed_companions(adv, creative)
                .filter(|&i| match usable.companion(i, &av.companion_battr) {
                    Ok(()) => true,
                    Err(r) => {
                        ruled_out.get_or_insert(r);
                        false
                    }
                })
                .collect();
        let companion_refs: smallvec::SmallVec<[&config::Creative; 4]> =
            companions.iter().map(|&i| &adv.creatives[i]).collect();
        let fit = match creatives::fit_av(creative, &av.slot, &companion_refs) {
            Ok(fit) => fit,
            Err(m) => {
                furthest = furthest.max(Some(m));
                *misfit = furthest.map(creatives::Misfit::as_str);
                // A spot that needs a companion the slot rules out: why.
                if m == creatives::Misfit::Companion {
                    blocked = ruled_out.or(blocked);
                }
                continue;
            }
        };
        let floor = match usable.check(c).and_then(|()| affordable(fit.duration_s)) {
            Ok(floor) => floor,
            Err(r) => {
                blocked = Some(r);
                continue;
            }
        };
        let companion = fit.companion.map(|k| companions[k]);
        return Ok((
            c,
            ChoiceKind::Av {
                fit,
                companion,
                version,
            },
            floor,
        ));
    }
    Err(blocked.unwrap_or(NoBid::Creative))
}

/// `badv` lists domains: blocking `example.com` blocks `shop.example.com`.
fn domain_blocked(ours: &str, blocked: &str) -> bool {
    crate::targeting::domain_within(ours, blocked.trim())
}

/// The domain a `badv` entry names when it is written as more than one:
/// `https://www.brand.example/shop`, `brand.example:443` or `brand.example.`
/// (the DNS root's dot) all block `brand.example`. Exchanges pass on what
/// publishers typed, and an entry not read as the publisher meant is an
/// advertiser shown where it was blocked.
fn listed_domain(listed: &str) -> &str {
    let mut d = listed.trim();
    if let Some((scheme, rest)) = d.split_once("//") {
        // `https://host`, `android-app://host` (RFC 3986: a letter, then
        // letters, digits, `+`, `-`, `.`), or a scheme-relative `//host`.
        let name = scheme.strip_suffix(':').unwrap_or("\u{0}");
        let is_scheme = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
        if scheme.is_empty() || is_scheme {
            d = rest;
        }
    }
    d = d.split(['/', '?', '#']).next().unwrap_or("");
    d = d.rsplit('@').next().unwrap_or("");
    d = d.split(':').next().unwrap_or("");
    // `*.brand.example` and `.brand.example`: the domain and every one
    // below it, as a bare entry blocks anyway.
    d.trim_start_matches("*.")
        .trim_start_matches('.')
        .trim_end_matches('.')
}

/// `bcat` lists categories: blocking `IAB17` blocks `IAB17-18` (and `acat`
/// allowing `IAB17` allows it). Bytes, not string slices: `bcat` comes from
/// the request and may hold any UTF-8. White space around an entry goes,
/// as around a `badv` entry: `" IAB17"` is what the publisher typed.
fn category_blocked(ours: &str, blocked: &str) -> bool {
    let b = blocked.as_bytes();
    // Looked at before trimming: `trim` on every entry for every candidate
    // cost a bid some 370 instructions, and entries rarely need it.
    // At or below a space (every ASCII white space `trim` removes, the
    // vertical tab too), or past ASCII (Unicode's, such as U+00A0).
    let spaced = |c: Option<&u8>| c.is_some_and(|&c| c <= b' ' || c >= 0x80);
    let b = if spaced(b.first()) || spaced(b.last()) {
        blocked.trim().as_bytes()
    } else {
        b
    };
    let o = ours.as_bytes();
    o.eq_ignore_ascii_case(b)
        || (o.len() > b.len() && o[..b.len()].eq_ignore_ascii_case(b) && o[b.len()] == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badv_entries_written_as_urls_block_their_domain() {
        for listed in [
            "brand.example",
            "https://brand.example/",
            "HTTP://www.brand.example/shop?x=1",
            "//brand.example",
            "brand.example:443",
            "https://user@brand.example:8443/#top",
            "brand.example.",
            " brand.example. ",
            "brand.example.\t",
            "ads@brand.example",
            "brand.example?x=1",
            "android-app://brand.example/x",
            "WWW.brand.example",
            "*.brand.example",
            ".brand.example",
        ] {
            let host = listed_domain(listed);
            assert!(
                domain_blocked("brand.example", host),
                "{listed:?} read as {host:?}"
            );
            assert!(domain_blocked("shop.brand.example", host), "{listed:?}");
            assert!(!domain_blocked("other.example", host), "{listed:?}");
        }
        // Nothing usable blocks nothing, rather than everything.
        for listed in ["", "https://", "/", ":443", ".", "https:///path"] {
            assert!(
                !domain_blocked("brand.example", listed_domain(listed)),
                "{listed:?}"
            );
        }
    }

    #[test]
    fn blocked_domains_include_subdomains() {
        assert!(domain_blocked(
            "acme-outdoor.example",
            "acme-outdoor.example"
        ));
        assert!(domain_blocked(
            "shop.acme-outdoor.example",
            "acme-outdoor.example"
        ));
        assert!(domain_blocked(
            "acme-outdoor.example",
            "www.ACME-outdoor.example"
        ));
        assert!(!domain_blocked(
            "notacme-outdoor.example",
            "acme-outdoor.example"
        ));
        assert!(!domain_blocked("acme-outdoor.example", ""));
    }

    #[test]
    fn blocked_categories_include_subcategories() {
        assert!(category_blocked("IAB17-18", "IAB17"));
        assert!(category_blocked("IAB17-18", "IAB17-18"));
        assert!(!category_blocked("IAB17-18", "IAB17-1"));
        assert!(!category_blocked("IAB17", "IAB17-18"));
        assert!(!category_blocked("IAB170", "IAB17"));
        assert!(category_blocked("IAB17-18", " IAB17"));
        assert!(category_blocked("IAB17-18", "IAB17-18 \t"));
        assert!(category_blocked("IAB17-18", "IAB17\u{b}"));
        assert!(category_blocked("IAB17-18", "\u{a0}IAB17"));
        assert!(!category_blocked("IAB17-18", " "));
        assert!(
            !category_blocked("IAB17-é", "IAB17-a"),
            "no panic on multi-byte input"
        );
    }

    #[test]
    fn a_creative_that_fits_but_may_not_serve_got_further() {
        let fits_not = Stop::new(Check::Creative, NoBid::Secure);
        let none_fit = Stop::new(Check::Creative, NoBid::Creative);
        assert!(fits_not.deeper(Some(none_fit)));
        assert!(!none_fit.deeper(Some(fits_not)));
        assert!(none_fit.deeper(Some(Stop::new(Check::Placement, NoBid::Placement))));
        let currency = Stop::new(Check::Deal, NoBid::Currency);
        assert!(
            currency.deeper(Some(Stop::new(Check::Deal, NoBid::Deal))),
            "ties go to the later"
        );
        assert!(none_fit.deeper(None));
    }
}
