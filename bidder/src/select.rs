//! Candidate selection and pricing for one imp.
//!
//! Candidates come from the size index in descending CPM order; each is
//! checked cheapest rule first, and the walk stops once the best price has
//! an eligible line item. Equal CPMs are broken fairly at random.

use config::Micros;
use ortb::Imp;
use rand::Rng;

use crate::checks::{Check, Stop};
use crate::context::Context;
use crate::nobid::NoBid;
use crate::snapshot::{Item, Snapshot};
use ledger::{Cap, Ledger, Limit, Refusal};

/// Whether the request's user or page is in `audience`: the one test the
/// auction and explain both make.
pub(crate) fn in_audience(
    stores: &Stores<'_>,
    audience: &config::Audience,
    ctx: &Context<'_>,
    offer: &Offer<'_>,
) -> bool {
    let store = &stores.audiences;
    // Two calls: a `Page` is invariant in its lifetime, so the two pages
    // have no common type.
    match offer.page.as_deref() {
        Some(page) => store.matches_with(audience, &ctx.visitor, page, &ctx.ids),
        None => store.matches_with(audience, &ctx.visitor, &ctx.page, &ctx.ids),
    }
}

/// A private auction: `private_auction` 1, or any value but 0 (2 is no
/// value OpenRTB has; read as open, it put open-market bids where the
/// exchange may have meant deals only, and a bid not made costs less).
pub(crate) fn is_private(pmp: &ortb::Pmp<'_>) -> bool {
    pmp.private_auction.is_some_and(|v| v != 0)
}

/// Where the imp is sold: for bid shading.
pub(crate) struct Market<'a> {
    pub shader: &'a shading::Shader,
    /// Click and conversion rates, for value-based line items.
    pub model: &'a predict::Model,
    /// The exchange's id, as its curves are kept under.
    pub exchange: &'a str,
    /// `at: 1`: the winner pays its bid, so bids are shaded.
    pub first_price: bool,
    /// Our seat at the exchange (its profile's `seat`): a deal's `wseat`
    /// names the buyers it is for.
    pub seat: Option<&'a str>,
    /// Whether a few bids explore above the shaded price (bidding;
    /// explain shows the shaded bid).
    pub explore: bool,
}

/// The curve a line item's media competes on.
pub(crate) fn slot_kind(media: config::Media) -> shading::SlotKind {
    match media {
        config::Media::Display => shading::SlotKind::Banner,
        config::Media::Video => shading::SlotKind::Video,
        config::Media::Audio => shading::SlotKind::Audio,
        config::Media::Native => shading::SlotKind::Native,
    }
}

/// How a bid's price came about, for explain.
#[derive(Debug, Clone)]
pub(crate) struct Pricing {
    /// What the impression is worth to the line item: its fixed CPM, or
    /// its goal × the predicted rate × 1000, within its ceiling.
    pub value: Micros,
    /// The shading decision, in first-price auctions of line items that
    /// shade.
    pub shading: Option<shading::Shaded>,
    /// The predicted rates a value-based line item's value rests on.
    pub prediction: Option<predict::Prediction>,
    /// What the prediction read (for every bid: the tracking URLs carry
    /// it, so training sees what was scored).
    pub features: Option<predict::Features>,
    /// The auction is first price (the request's `at`, or its deal's).
    pub first_price: bool,
    /// A fixed-price deal's agreed price (`pmp.deals[].at` 3): the bid.
    pub fixed: Option<Micros>,
    /// That price as the deal sent it: micros of its currency (upper-case
    /// ISO 4217). An answer in that currency bids it to the micro, where
    /// the USD price converted back would be off by the rounding of two
    /// conversions (300 JPY came back as 300.000153).
    pub fixed_sent: Option<(Micros, [u8; 3])>,
}

impl Choice {
    /// The price as the answer says it, in `currency`: converted from USD,
    /// rounded up; a fixed-price deal answered in its own currency, its
    /// price as sent. A floor comes to USD and the bid goes on through a
    /// second rate: rounded down, a bid at its floor fell a fraction of a
    /// micro under it (3.33 GBP agreed, answered as 4.00443 EUR, 3.3299997
    /// GBP; a 7.777777 USD floor answered as 7.388888 EUR: exchanges
    /// probe), which an exchange's floor check refuses. What it costs is
    /// still at most the CPM: a charge is capped at the bid's USD price
    /// signed into its notice.
    pub(crate) fn answer_price(&self, currency: crate::context::Currency) -> Micros {
        let fixed = self.pricing.fixed == Some(self.price);
        match self.pricing.fixed_sent {
            Some((sent, code)) if code == currency.code && fixed => sent,
            _ => currency.rate.from_usd_up(self.price),
        }
    }
}

/// What one imp gets: a line item, its creative and the price to bid.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub item: usize,
    pub creative: usize,
    /// CPM bid in USD: the value, shaded in first-price auctions.
    pub price: Micros,
    pub pricing: Pricing,
    pub deal: Option<String>,
    /// The positive keyword that matched, as the search-term report names
    /// it.
    pub keyword: Option<String>,
    /// The audience that made the line item eligible (the first of its
    /// `any_of` the request is in): its index within the advertiser.
    pub audience: Option<usize>,
    pub kind: ChoiceKind,
}

#[derive(Debug, Clone)]
pub(crate) enum ChoiceKind {
    Banner {
        w: u32,
        h: u32,
        /// The `wratio`/`hratio` of the flexible format the size was
        /// offered through, as the request gave them: the markup scales
        /// and the bid says the ratio. `None` for a fixed size.
        ratio: Option<(u32, u32)>,
    },
    /// A video or audio spot: its renditions, its companion (a creative
    /// index within the advertiser) and the VAST version to write.
    Av {
        fit: creatives::AvFit,
        companion: Option<usize>,
        version: creatives::VastVersion,
    },
    /// A native ad: which of the request's assets it fills.
    Native { fit: Box<creatives::NativeFit> },
}

/// What an imp offers, read once per imp.
#[derive(Debug, Default)]
pub(crate) struct Offer<'r> {
    /// The page as this imp's slot sees it, where the imp names products
    /// of its own (`imp.ext` hints): the request's page and those.
    /// `None`: the request's page ([`Context::page`]).
    pub page: Option<Box<audiences::Page<'r>>>,
    pub sizes: Sizes,
    /// Those of `sizes` offered through a flexible format, each with the
    /// format's `wratio`/`hratio` (empty, and not allocated, for nearly
    /// every imp).
    pub flexible: Vec<Flexible>,
    /// The imp has a banner object, usable sizes or not: without one a
    /// display line item lacks the medium, with one the size.
    pub banner: bool,
    pub video: Option<AvOffer<'r>>,
    pub audio: Option<AvOffer<'r>>,
    /// The native request, read once per imp; `Err` when it cannot be read
    /// (no native line item can bid on it).
    pub native: Option<Result<creatives::NativeRequest, creatives::NativeError>>,
    /// Creative attributes (AdCOM List 5.3) each medium blocks (`battr`).
    pub battr: Battr<'r>,
    /// Only https creatives, media and trackers: `imp.secure` or an https page.
    pub secure: bool,
    /// `imp.secure` itself says so (present and not 0): a banner's
    /// trackers must be https too.
    pub secure_flag: bool,
    /// Banner ad types the slot blocks (`banner.btype`: 2 is the XHTML
    /// banner our display markup is).
    pub banner_btype: &'r [i32],
    /// Image types the banner slot takes (`banner.mimes`, as
    /// `creatives::mime_mask` reads them; `None`: any).
    pub banner_mimes: Option<u8>,
}

#[derive(Debug, Default)]
pub(crate) struct Battr<'r> {
    pub banner: &'r [i32],
    pub video: &'r [i32],
    pub audio: &'r [i32],
    pub native: &'r [i32],
}

impl Battr<'_> {
    pub(crate) fn of(&self, media: config::Media) -> &[i32] {
        match media {
            config::Media::Display => self.banner,
            config::Media::Video => self.video,
            config::Media::Audio => self.audio,
            config::Media::Native => self.native,
        }
    }
}

#[derive(Debug)]
pub(crate) struct AvOffer<'r> {
    pub slot: creatives::AvSlot<'r>,
    /// The highest VAST version the player takes (`None`: none we write).
    pub version: Option<creatives::VastVersion>,
    /// 2.6 `plcmt`, or the 2.5 `placement` mapped onto it.
    pub plcmt: Option<i32>,
    /// Non-linear slots (`linearity: 2`) take overlays; our spots are linear.
    pub linear: bool,
    /// Creative attributes the companion slots block (`companionad[].battr`).
    pub companion_battr: Vec<i32>,
}

impl<'r> Offer<'r> {
    /// `snap` gives the sizes a flexible format can be filled with.
    pub(crate) fn of(imp: &'r Imp<'r>, ctx: &Context<'r>, snap: &Snapshot) -> Offer<'r> {
        // Each companion slot's sizes, with the image types its `mimes`
        // take.
        let companions = |c: &[ortb::Banner<'_>]| -> Vec<(u32, u32, u8)> {
            c.iter()
                .flat_map(|b| {
                    let takes = creatives::mime_mask(&b.mimes).unwrap_or(u8::MAX);
                    b.format
                        .iter()
                        .map(|f| (f.w, f.h))
                        .chain([(b.w, b.h)])
                        .map(move |(w, h)| (w, h, takes))
                })
                .filter_map(|(w, h, takes)| {
                    Some((u32::try_from(w?).ok()?, u32::try_from(h?).ok()?, takes))
                })
                .take(MAX_SIZES)
                .collect()
        };
        let u = |v: Option<i32>| v.and_then(|x| u32::try_from(x).ok());
        let video = imp.video.as_deref().map(|v| AvOffer {
            slot: creatives::AvSlot {
                mimes: v.mimes.iter().map(|m| &**m).collect(),
                min_duration: u(v.minduration),
                max_duration: u(v.maxduration),
                required_durations: v
                    .rqddurs
                    .iter()
                    .filter_map(|d| u32::try_from(*d).ok())
                    .collect(),
                min_bitrate: u(v.minbitrate),
                max_bitrate: u(v.maxbitrate),
                w: u(v.w),
                h: u(v.h),
                companion_sizes: companions(&v.companionad),
                companion_types: v.companiontype.to_vec(),
                pod_duration: u(v.poddur),
                no_progressive: no_progressive(&v.delivery),
                cannot_require_companion: false,
            },
            version: creatives::VastVersion::from_protocols(
                &protocols(&v.protocols, v.protocol),
                ctx.vast_default,
            ),
            plcmt: v.plcmt.or(v.placement.map(|p| match p {
                // 2.5 placement: 1 in-stream; 2 in-banner, 3 in-article,
                // 4 in-feed (accompanying content); 5 interstitial.
                1 => 1,
                5 => 3,
                _ => 2,
            })),
            linear: v.linearity != Some(2),
            companion_battr: companion_battr(&v.companionad),
        });
        let audio = imp.audio.as_deref().map(|a| AvOffer {
            slot: creatives::AvSlot {
                mimes: a.mimes.iter().map(|m| &**m).collect(),
                min_duration: u(a.minduration),
                max_duration: u(a.maxduration),
                required_durations: a
                    .rqddurs
                    .iter()
                    .filter_map(|d| u32::try_from(*d).ok())
                    .collect(),
                min_bitrate: u(a.minbitrate),
                max_bitrate: u(a.maxbitrate),
                w: None,
                h: None,
                companion_sizes: companions(&a.companionad),
                companion_types: a.companiontype.to_vec(),
                pod_duration: u(a.poddur),
                no_progressive: no_progressive(&a.delivery),
                cannot_require_companion: false,
            },
            version: creatives::VastVersion::from_protocols(&a.protocols, ctx.vast_default),
            // Audio spots play between songs or episodes: in-stream.
            plcmt: Some(1),
            linear: true,
            companion_battr: companion_battr(&a.companionad),
        });
        // VAST 2.0 has no way to say a companion is required.
        let marked = |mut o: AvOffer<'r>| {
            o.slot.cannot_require_companion = o.version == Some(creatives::VastVersion::V2_0);
            o
        };
        let (video, audio) = (video.map(marked), audio.map(marked));
        // A native imp without a request cannot be filled: `null` reads as
        // no request object.
        let native = imp
            .native
            .as_ref()
            .filter(|_| ctx.buys_native)
            .map(|n| creatives::parse_native_request(n.request.map_or("null", |r| r.get())));
        // Almost no imp has hints: the page is copied only for one that does.
        let page = imp.ext.and_then(|ext| {
            let mut products = audiences::PageList::new();
            crate::context::product_hints(ext.get(), &mut products);
            (!products.is_empty()).then(|| {
                let mut page = ctx.page.clone();
                page.products.extend(products);
                Box::new(page)
            })
        });
        let (sizes, flexible) = banner_sizes(imp, |ratio| snap.sizes_in_ratio(ratio));
        Offer {
            page,
            sizes,
            flexible,
            banner: imp.banner.is_some(),
            video,
            audio,
            native,
            battr: Battr {
                banner: imp.banner.as_deref().map_or(&[], |b| &b.battr),
                video: imp.video.as_deref().map_or(&[], |v| &v.battr),
                audio: imp.audio.as_deref().map_or(&[], |a| &a.battr),
                native: imp.native.as_ref().map_or(&[], |n| &n.battr),
            },
            secure: imp.secure.is_some_and(|s| s != 0) || ctx.secure_page,
            secure_flag: imp.secure.is_some_and(|s| s != 0),
            banner_btype: imp.banner.as_deref().map_or(&[], |b| &b.btype),
            banner_mimes: imp
                .banner
                .as_deref()
                .and_then(|b| creatives::mime_mask(&b.mimes)),
        }
    }

    /// The index keys to look candidates up under.
    pub(crate) fn slots(&self) -> smallvec::SmallVec<[crate::snapshot::Slot; 4]> {
        use crate::snapshot::Slot;
        let mut slots: smallvec::SmallVec<[Slot; 4]> = self
            .sizes
            .iter()
            .map(|&(w, h)| Slot::Banner(w, h))
            .collect();
        if self.video.is_some() {
            slots.push(Slot::Video);
        }
        if self.audio.is_some() {
            slots.push(Slot::Audio);
        }
        if self.native.is_some() {
            slots.push(Slot::Native);
        }
        slots
    }
}

/// Every attribute any companion slot blocks: a companion goes in one of
/// them, and which one is the player's to choose.
fn companion_battr(slots: &[ortb::Banner<'_>]) -> Vec<i32> {
    let mut all: Vec<i32> = slots
        .iter()
        .take(MAX_SIZES)
        .flat_map(|b| b.battr.iter().copied().take(32))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// 2.5 players may send the single `protocol` instead of `protocols`.
fn protocols(list: &[i32], single: Option<i32>) -> Vec<i32> {
    let mut p = list.to_vec();
    p.extend(single);
    p
}

pub(crate) struct Stores<'a> {
    pub audiences: &'a audiences::Store,
    pub ledger: &'a dyn Ledger,
    pub market: Market<'a>,
    /// The key the imp's bid will have, until the ledger was asked to
    /// fetch its place ([`Ledger::prefetch`]): by the first line item to
    /// pass the room check, the point from which most go on to bid, so
    /// that requests no line item wants do not pay for the fetch, and
    /// those that bid have it in cache by the time they reserve. `None`
    /// where nothing reserves (explain, test requests).
    pub warm: std::cell::Cell<Option<ledger::BidKey>>,
    /// Frequency caps counted across replicas before answering (explain,
    /// which may wait on Redis), where the bid path counts this replica's
    /// and confirms a capped bid across them after: `Some`, with what was
    /// counted per line item so far (the same for every imp, so a request
    /// of many imps asks once per line item).
    pub count_everywhere:
        Option<std::cell::RefCell<std::collections::HashMap<ledger::SpendKey, bool>>>,
    /// The block lists' answer for each advertiser asked so far, by its
    /// index (0 not asked, 1 allowed, 2 blocked): it depends on the
    /// advertiser and the request alone, and was worked out again for
    /// every line item on every imp (bounds probe: 64 imps and 2,040
    /// `badv` entries held a core for half a second). `Some` only where
    /// the lists are long ([`blocked_memo`]): a few entries cost less to
    /// compare than to look up.
    pub blocked: Option<std::cell::RefCell<Vec<u8>>>,
}

pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Block-list entries (`badv`, `bcat`, `acat` together) past which a
/// request keeps each advertiser's answer ([`Stores::blocked`]).
const MEMO_BLOCK_ENTRIES: usize = 16;

/// [`Stores::blocked`] for `req`.
pub(crate) fn blocked_memo(req: &ortb::BidRequest<'_>) -> Option<std::cell::RefCell<Vec<u8>>> {
    (req.badv.len() + req.bcat.len() + req.acat.len() > MEMO_BLOCK_ENTRIES).then(Default::default)
}

/// Banner (and companion) sizes read per imp at most.
pub(crate) const MAX_SIZES: usize = 64;

/// A size offered through a flexible format, and that format's
/// `wratio`/`hratio` as the request gave them.
pub(crate) type Flexible = ((u32, u32), (u32, u32));

/// A banner imp's sizes: on the stack up to four (a slot offers one or
/// two nearly always), where a vector was an allocation per imp.
pub(crate) type Sizes = smallvec::SmallVec<[(u32, u32); 4]>;

/// Candidates checked between two looks at the deadline.
const CANDIDATE_BATCH: usize = 64;

/// The budgets a line item's spend counts against: its own and its
/// order's total. `ctx`: the request a bid is made for, whose time (and
/// user's time zone) a day-parted line item's pacing plan is read at; none
/// where only the caps matter (billing a win).
pub(crate) fn limits<'i>(item: &'i Item, ctx: Option<&Context<'_>>) -> [Limit<'i>; 2] {
    let mut cap = Cap::line_item(item.budget, item.flight);
    // A paced budget's plan spreads over a day-parted line item's open
    // minutes, read at the request's time and its user's time zone. Most
    // line items have no rules: the test costs them a branch.
    if let (Cap::Paced { plan, .. }, Some(ctx), Some(rules)) =
        (&mut cap, ctx, item.rules.as_deref())
    {
        if let Some(open) = rules.open_time(ctx.now, ctx.utcoffset, item.flight.end) {
            *plan = ledger::Plan::Open(open);
        }
    }
    [
        Limit {
            key: &item.spend_key,
            cap,
        },
        Limit {
            key: &item.order_key,
            cap: Cap::order(item.order_budget),
        },
    ]
}

/// What may not bid on an imp: advertisers already in its ad pod, and line
/// items that already bid on as many imps of the request as they may.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Exclude<'a> {
    pub advertisers: &'a [usize],
    pub items: &'a [usize],
}

/// `delivery` lists methods, and progressive (2) is not one of them.
fn no_progressive(delivery: &[i32]) -> bool {
    /// OpenRTB's delivery methods: 1 streaming, 2 progressive, 3 download.
    const PROGRESSIVE: i32 = 2;
    !delivery.is_empty() && !delivery.contains(&PROGRESSIVE)
}

/// The sizes a banner offers, in the exchange's order: `format[]`, then
/// `w`/`h`; and which of them came through a flexible format, with its
/// ratio.
///
/// A flexible format (`wratio` and `hratio`, without both a positive `w`
/// and `h`: the page makes the slot as wide as it will, at least `wmin`,
/// in that ratio) offers each size creatives here come in that is in its
/// ratio and at least `wmin` wide (our reading, which OpenRTB leaves open:
/// such an image is not enlarged in the smallest slot the page may make),
/// the widest first, and its markup scales to the slot.
/// `in_ratio` gives those sizes, widest first, for a ratio in lowest terms
/// (12:10 is 6:5); a fractional ratio reads as none.
///
/// Bounded as before flexible formats were read: the first [`MAX_SIZES`]
/// formats, and the banner's `w`/`h`. The fixed sizes among them are all
/// kept; flexible formats fill what room they leave.
pub(crate) fn banner_sizes<'s>(
    imp: &Imp<'_>,
    in_ratio: impl Fn((u32, u32)) -> &'s [(u32, u32)],
) -> (Sizes, Vec<Flexible>) {
    let mut sizes = Sizes::new();
    let mut flexible = Vec::new();
    let Some(b) = imp.banner.as_ref() else {
        return (sizes, flexible);
    };
    let positive = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok()).filter(|&v| v > 0);
    let fixed = |f: &ortb::Format<'_>| Some((positive(f.w)?, positive(f.h)?));
    // No slot offers more formats than this, and each size is compared
    // with those kept (and later looked up in the index).
    let listed = || b.format.iter().take(MAX_SIZES);
    // Counted at the first flexible format: nearly no banner has one.
    let mut room = None;
    // How far down each ratio's list (by its lowest terms) the flexible
    // formats before walked: each takes what it takes from the widest
    // on, so one of the same ratio goes on from there, and a list is
    // walked once per imp however many formats repeat its ratio.
    let mut walked: smallvec::SmallVec<[((u32, u32), usize); 2]> = smallvec::SmallVec::new();
    for f in listed() {
        if let Some(size) = fixed(f) {
            add_fixed(&mut sizes, &mut flexible, size);
            continue;
        }
        let (Some(wr), Some(hr)) = (positive(f.wratio), positive(f.hratio)) else {
            continue;
        };
        let Some(ratio) = crate::snapshot::lowest_terms(wr, hr) else {
            continue;
        };
        let wmin = positive(f.wmin).unwrap_or(0);
        let room =
            room.get_or_insert_with(|| MAX_SIZES - listed().filter(|f| fixed(f).is_some()).count());
        let at = match walked.iter().position(|(r, _)| *r == ratio) {
            Some(at) => at,
            None => {
                walked.push((ratio, 0));
                walked.len() - 1
            }
        };
        let list = in_ratio(ratio);
        let mut next = walked[at].1;
        while let Some(&size) = list.get(next) {
            if *room == 0 || size.0 < wmin {
                break;
            }
            if !sizes.contains(&size) {
                sizes.push(size);
                flexible.push((size, (wr, hr)));
                *room -= 1;
            }
            next += 1;
        }
        walked[at].1 = next;
    }
    if let (Some(w), Some(h)) = (positive(b.w), positive(b.h)) {
        add_fixed(&mut sizes, &mut flexible, (w, h));
    }
    (sizes, flexible)
}

/// A size the banner offers fixed, once. One a flexible format offered
/// before keeps its place but bids fixed: a box of exactly that size is
/// the narrower promise, and a fixed bid is right for either offer.
fn add_fixed(sizes: &mut Sizes, flexible: &mut Vec<Flexible>, size: (u32, u32)) {
    if !sizes.contains(&size) {
        sizes.push(size);
    } else if !flexible.is_empty() {
        flexible.retain(|(s, _)| *s != size);
    }
}

/// What stops an imp before any line item is asked ([`Check::Imp`]): no
/// medium the bidder buys, a win billed as other than one impression, or a
/// floor in a currency without a rate and no deal that could carry a floor
/// of its own. Otherwise its floor, `None` when only its deals' floors can
/// price it. The auction and explain both start here.
pub(crate) fn imp_floor_or_stop(ctx: &Context<'_>, imp: &Imp<'_>) -> Result<Option<Micros>, Stop> {
    if imp.banner.is_none() && imp.video.is_none() && imp.audio.is_none() && imp.native.is_none() {
        return Err(Stop::new(Check::Imp, NoBid::Media));
    }
    // The budget is charged a win's price once; an exchange billing the
    // win as `multiplier` impressions would take that many times more.
    if imp.qty.as_ref().is_some_and(|q| q.multiplier != Some(1.0)) {
        return Err(Stop::new(Check::Imp, NoBid::Quantity));
    }
    let floor = imp_floor(ctx, imp);
    if floor.is_err() && imp.pmp.as_ref().is_none_or(|p| p.deals.is_empty()) {
        return Err(Stop::new(Check::Imp, NoBid::Currency));
    }
    Ok(floor.ok())
}

/// The best eligible line item for one imp, but none of `exclude`; or
/// where the line item that got furthest stopped.
pub(crate) fn select_imp<'r>(
    snap: &Snapshot,
    ctx: &Context<'r>,
    imp: &'r Imp<'r>,
    stores: &Stores<'_>,
    exclude: Exclude<'_>,
    deadline: Option<std::time::Instant>,
) -> Result<Choice, Stop> {
    let floor = imp_floor_or_stop(ctx, imp)?;
    let offer = Offer::of(imp, ctx, snap);
    let slots = offer.slots();

    let pmp = imp.pmp.as_ref();
    let deal_ids: Vec<&str> = pmp
        .map(|p| p.deals.iter().map(|d| d.id.as_ref()).collect())
        .unwrap_or_default();
    // Only the listed deals may bid in a private auction.
    let open_market = pmp.is_none_or(|p| !is_private(p));

    let (candidates, skipped) = snap.candidates(
        &slots,
        offer.banner,
        ctx.country_key,
        &deal_ids,
        open_market,
    );
    // The furthest any line item got down its list tells the most useful
    // no-bid reason: the index says how far those it skipped got.
    let mut furthest = skipped;
    // The best so far, and how many candidates tied at its value: each tie
    // replaces it with chance 1/ties (reservoir sampling), so every one of
    // them wins equally often, with no list of them per imp.
    let mut winner: Option<Choice> = None;
    let mut ties: u32 = 0;
    let mut under_floor = false;
    for (n, i) in candidates.enumerate() {
        // The clock is read once per batch: cheap, and a walk over a large
        // index still stops soon after the deadline.
        if n % CANDIDATE_BATCH == CANDIDATE_BATCH - 1
            && deadline.is_some_and(|d| std::time::Instant::now() >= d)
        {
            return Err(Stop::late());
        }
        let item = &snap.items[i];
        if exclude.advertisers.contains(&item.advertiser) || exclude.items.contains(&i) {
            continue;
        }
        // Sorted by the highest each may bid: once that is under the best
        // value found, no later one can do better.
        if let Some(best) = &winner {
            if item.cpm < best.pricing.value {
                break;
            }
        }
        // Sorted by CPM: once one open-market item is under the imp's
        // floor, all later ones are too; deal items have floors of their own.
        if under_floor && item.deals.is_empty() {
            continue;
        }
        match crate::checks::evaluate(snap, ctx, imp, &offer, floor, i, item, stores) {
            // The line item that values the impression most wins; equal
            // values are broken at random as they come (see `ties`).
            Ok(choice) => match winner.as_ref().map(|w| w.pricing.value) {
                Some(best) if choice.pricing.value < best => {}
                Some(best) if choice.pricing.value == best => {
                    ties += 1;
                    if rand::rng().random_range(0..ties) == 0 {
                        winner = Some(choice);
                    }
                }
                _ => {
                    winner = Some(choice);
                    ties = 1;
                }
            },
            Err(stop) => {
                if stop.deeper(Some(furthest)) {
                    furthest = stop;
                }
                let reason = stop.reason;
                // Only a ceiling under the floor says so of the later ones: a
                // value-based item under it by its prediction says nothing
                // of a fixed CPM after it.
                if reason == NoBid::Floor
                    && item.deals.is_empty()
                    && floor.is_some_and(|f| item.cpm < f)
                {
                    if deal_ids.is_empty() {
                        break;
                    }
                    under_floor = true;
                }
            }
        }
    }
    winner.ok_or(furthest)
}

/// An imp's floor in USD, rounded up from its currency; a floor in a
/// currency without a rate cannot be compared: `Err(Currency)`, and only
/// deals with floors of their own may bid (never on a guess).
pub(crate) fn imp_floor(ctx: &Context<'_>, imp: &Imp<'_>) -> Result<Micros, NoBid> {
    crate::context::floor_usd(imp.bidfloor, &imp.bidfloorcur, ctx.rates).ok_or(NoBid::Currency)
}

/// The features a candidate is (or would be) priced with, with the kind of
/// `audience` (the choice's, or none for its tracking URLs).
pub(crate) fn candidate_features(
    snap: &Snapshot,
    ctx: &Context<'_>,
    market: &Market<'_>,
    item: &Item,
    choice: &Choice,
    audience: Option<usize>,
) -> Option<predict::Features> {
    let adv = &snap.config.advertisers[item.advertiser];
    let audience_kind = audience.map(|a| adv.audiences[a].kind.as_str());
    crate::value::features(
        market.model.hasher(),
        ctx,
        market.exchange,
        item,
        &adv.creatives[choice.creative].id,
        &choice.kind,
        choice.keyword.as_deref(),
        audience_kind,
    )
}

/// The native parts of a creative, as the creatives crate takes them.
pub(crate) fn native_ad(c: &config::Creative) -> Option<creatives::NativeAd<'_>> {
    let config::CreativeKind::Native(n) = &c.kind else {
        return None;
    };
    fn image(i: &config::Image) -> creatives::NativeImage<'_> {
        creatives::NativeImage {
            url: i.url.as_str(),
            w: i.w,
            h: i.h,
        }
    }
    Some(creatives::NativeAd {
        title: &n.title,
        description: &n.description,
        sponsored_by: &n.sponsored_by,
        image: image(&n.image),
        icon: n.icon.as_ref().map(image),
        cta: n.cta.as_deref(),
        price: n.price.as_deref(),
        click_url: &c.click_url,
    })
}

/// The no-bid reason of a refused reservation.
pub(crate) fn refused(r: Refusal) -> NoBid {
    match r {
        Refusal::Budget => NoBid::Budget,
        Refusal::Pacing => NoBid::Pacing,
        Refusal::Frequency => NoBid::Frequency,
        Refusal::Unavailable => NoBid::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(banner: serde_json::Value) -> ortb::BidRequest<'static> {
        let body = serde_json::json!({ "id": "r", "imp": [{ "id": "1", "banner": banner }] });
        let body: &'static [u8] = Box::leak(body.to_string().into_bytes().into_boxed_slice());
        ortb::parse_request(body).unwrap()
    }

    /// The sizes as read before flexible formats were: the first
    /// MAX_SIZES formats' `w`/`h`, then the banner's, each once.
    fn fixed_sizes_as_before(imp: &Imp<'_>) -> Sizes {
        let mut sizes = Sizes::new();
        let Some(b) = imp.banner.as_ref() else {
            return sizes;
        };
        let listed = b
            .format
            .iter()
            .take(MAX_SIZES)
            .map(|f| (f.w, f.h))
            .chain([(b.w, b.h)]);
        for (w, h) in listed {
            let (Some(w), Some(h)) = (w, h) else { continue };
            if let (Ok(w), Ok(h)) = (u32::try_from(w), u32::try_from(h)) {
                if w > 0 && h > 0 && !sizes.contains(&(w, h)) {
                    sizes.push((w, h));
                }
            }
        }
        sizes
    }

    const SQUARES: [(u32, u32); 3] = [(500, 500), (300, 300), (100, 100)];

    fn squares(ratio: (u32, u32)) -> &'static [(u32, u32)] {
        match ratio {
            (1, 1) => &SQUARES,
            _ => &[],
        }
    }

    #[test]
    fn fixed_sizes_read_as_before() {
        let many: Vec<_> = (1..=70)
            .map(|i| serde_json::json!({ "w": 100 + i, "h": 90 }))
            .collect();
        let mut repeated = many.clone();
        repeated.extend_from_slice(&many[..10]);
        for banner in [
            serde_json::json!({ "w": 300, "h": 250 }),
            serde_json::json!({ "format": [{ "w": 300, "h": 250 }, { "w": 300, "h": 250 }], "w": 728, "h": 90 }),
            serde_json::json!({ "format": [{ "w": 0, "h": 250 }, { "w": -3, "h": 5 }, { "w": 320 }], "w": 0 }),
            serde_json::json!({ "format": many, "w": 1, "h": 1 }),
            serde_json::json!({ "format": repeated }),
        ] {
            let req = imp(banner.clone());
            let (sizes, flexible) = banner_sizes(&req.imp[0], squares);
            assert_eq!(sizes, fixed_sizes_as_before(&req.imp[0]), "{banner}");
            assert!(flexible.is_empty(), "{banner}");
        }
        // The 65th format on is not read, flexible or not.
        let mut formats = many[..64].to_vec();
        formats.push(serde_json::json!({ "wratio": 1, "hratio": 1 }));
        let req = imp(serde_json::json!({ "format": formats }));
        let (sizes, flexible) = banner_sizes(&req.imp[0], squares);
        assert_eq!(sizes.len(), MAX_SIZES);
        assert!(flexible.is_empty());
    }

    #[test]
    fn a_flexible_format_offers_its_ratio_widest_first_down_to_wmin() {
        let req = imp(serde_json::json!({
            "format": [{ "w": 320, "h": 50 }, { "wratio": 2, "hratio": 2, "wmin": 200 }]
        }));
        let (sizes, flexible) = banner_sizes(&req.imp[0], squares);
        // In the exchange's order; 100x100 is under the wmin.
        assert_eq!(sizes.as_slice(), &[(320, 50), (500, 500), (300, 300)]);
        assert_eq!(flexible, [((500, 500), (2, 2)), ((300, 300), (2, 2))]);
    }

    /// A size offered fixed too, after the flexible format or as the
    /// banner's own `w`/`h`, keeps its place and bids fixed.
    #[test]
    fn a_size_also_offered_fixed_is_fixed() {
        let req = imp(serde_json::json!({
            "format": [{ "wratio": 1, "hratio": 1 }, { "w": 300, "h": 300 }],
            "w": 100,
            "h": 100
        }));
        let (sizes, flexible) = banner_sizes(&req.imp[0], squares);
        assert_eq!(sizes.as_slice(), &[(500, 500), (300, 300), (100, 100)]);
        assert_eq!(flexible, [((500, 500), (1, 1))]);
    }

    /// A second format of the same ratio goes on down the list where the
    /// first stopped (its `wmin`), giving its own ratio to what it adds.
    #[test]
    fn formats_of_one_ratio_share_its_list() {
        let req = imp(serde_json::json!({
            "format": [
                { "wratio": 1, "hratio": 1, "wmin": 400 },
                { "wratio": 3, "hratio": 3, "wmin": 400 },
                { "wratio": 2, "hratio": 2 }
            ]
        }));
        let (sizes, flexible) = banner_sizes(&req.imp[0], squares);
        assert_eq!(sizes.as_slice(), &[(500, 500), (300, 300), (100, 100)]);
        assert_eq!(
            flexible,
            [
                ((500, 500), (1, 1)),
                ((300, 300), (2, 2)),
                ((100, 100), (2, 2))
            ]
        );
    }

    /// Flexible formats fill the room fixed ones leave: however many
    /// sizes they match, no fixed size is dropped and no more are offered
    /// than before.
    #[test]
    fn flexible_formats_never_push_out_fixed_sizes() {
        let mut formats = vec![serde_json::json!({ "wratio": 1, "hratio": 1 })];
        formats.extend((0..62).map(|i| serde_json::json!({ "w": 1000 + i, "h": 7 })));
        formats.push(serde_json::json!({ "w": 300, "h": 250 }));
        let req = imp(serde_json::json!({ "format": formats, "w": 728, "h": 90 }));
        let (sizes, flexible) = banner_sizes(&req.imp[0], squares);
        assert_eq!(sizes.len(), MAX_SIZES + 1);
        assert_eq!(flexible, [((500, 500), (1, 1))]);
        assert!(sizes.contains(&(300, 250)) && sizes.contains(&(728, 90)));
    }
}
