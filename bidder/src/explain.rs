//! `/v1/explain`: for a bid request, every line item's verdict — would it
//! bid, and if not, the first rule that stopped it. Each line item runs its
//! own list of checks through `checks::evaluate`, the auction's one code
//! path, without counting or spending anything.

use ortb::BidRequest;
use serde::Serialize;

use crate::checks::{self, Stop};
use crate::context::Context;
use crate::nobid::NoBid;
use crate::select::{self, Stores};
use crate::snapshot::Snapshot;

#[derive(Debug, Serialize)]
pub(crate) struct Verdict<'a> {
    pub line_item: &'a str,
    pub order: &'a str,
    pub advertiser: &'a str,
    pub bids: bool,
    /// The imp it would bid on (the best-priced one when several fit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creative: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deal: Option<String>,
    /// The audience it would bid for (the first of its `any_of` the user
    /// or the page is in), and its kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<Matched<'a>>,
    /// How the price came about: the strategy, the impression's value,
    /// and in a first-price auction the shading decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bidding: Option<Bidding>,
    /// Why not, when it would not bid: the reason of the imp where it got
    /// furthest through the checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Where the reason is `creative`, what kept its creatives out of the
    /// imp the reason is from ([`crate::checks::Stop::detail`]):
    /// `duration`, `delivery`, `mime`, `bitrate` or `companion` (video and
    /// audio, the furthest any spot got), `protocol` or `linearity` (the
    /// slot), `image_type` (a banner's `mimes`), `native_request`, or the
    /// asset kind where the native ad that got furthest stopped
    /// (`title_asset`, `image_asset`, ..., `no_asset`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Bidding {
    pub strategy: &'static str,
    /// In the answer's currency, like `price`.
    pub value: f64,
    /// `shaded`, `not_enough_data`, `explore`, `at_floor`, `no_gain`,
    /// `value_below_floor`; absent in second-price auctions and for line
    /// items with `shading: false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shading: Option<&'static str>,
    /// The learned chance that the price wins, where there is a curve.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_win: Option<f64>,
    /// The predicted click and conversion rates of a value-based line item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_click: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_conversion: Option<f64>,
    /// Why the price is what it is, in words.
    pub why: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Matched<'a> {
    pub id: &'a str,
    pub kind: &'static str,
}

/// Verdicts in config order (advertiser, order, line item). `stopped`: the
/// endpoint would answer no bid for this reason before asking any line
/// item (no time left to answer, no journal to record a win in), and every
/// line item stops there.
pub(crate) fn explain<'s, 'r>(
    snap: &'s Snapshot,
    req: &'r BidRequest<'r>,
    ctx: &Context<'r>,
    stores: &Stores<'_>,
    priced: bool,
    stopped: Option<NoBid>,
) -> Vec<Verdict<'s>> {
    let mut out: Vec<((usize, usize, usize), Verdict<'s>)> = Vec::with_capacity(snap.items.len());
    // Read once per imp, not once per imp and line item; the imps the
    // auction would look at, no more. An unpriced imp floor (`None`)
    // leaves only deals with floors of their own.
    // An imp stopped before any line item is asked stops every one there.
    type Read<'r> = (
        &'r ortb::Imp<'r>,
        select::Offer<'r>,
        Result<Option<config::Micros>, Stop>,
    );
    let imps: Vec<Read<'_>> = req
        .imp
        .iter()
        .take(crate::app::MAX_IMPS)
        .map(|imp| {
            let floor = select::imp_floor_or_stop(ctx, imp);
            (imp, select::Offer::of(imp, ctx, snap), floor)
        })
        .collect();
    for (i, item) in snap.items.iter().enumerate() {
        let adv = &snap.config.advertisers[item.advertiser];
        let mut verdict = Verdict {
            line_item: &item.id,
            order: &adv.orders[item.order].id,
            advertiser: &adv.id,
            bids: false,
            imp: None,
            price: None,
            creative: None,
            deal: None,
            audience: None,
            bidding: None,
            reason: None,
            detail: None,
        };
        let mut furthest: Option<Stop> = None;
        if priced && stopped.is_none() {
            for &(imp, ref offer, floor) in &imps {
                let r = floor.and_then(|floor| {
                    checks::evaluate(snap, ctx, imp, offer, floor, i, item, stores)
                });
                match r {
                    Ok(choice) => {
                        verdict.bids = true;
                        verdict.imp = Some(imp.id.to_string());
                        // In the answer's currency, as the bid would say.
                        verdict.price =
                            Some(choice.answer_price(ctx.currency).as_i64() as f64 / 1e6);
                        verdict.creative = Some(&adv.creatives[choice.creative].id);
                        let shaded = choice.pricing.shading.as_ref();
                        verdict.bidding = Some(Bidding {
                            strategy: item.bidding.as_str(),
                            // Rounded as the price is: never a micro under it.
                            value: ctx.currency.rate.from_usd_up(choice.pricing.value).as_i64()
                                as f64
                                / 1e6,
                            shading: shaded.map(|s| s.reason.as_str()),
                            p_win: shaded.and_then(|s| s.p_win),
                            p_click: choice.pricing.prediction.map(|p| p.click),
                            p_conversion: choice.pricing.prediction.map(|p| p.conversion),
                            why: why(item, &choice, choice.pricing.first_price),
                        });
                        verdict.deal = choice.deal;
                        verdict.audience = choice.audience.map(|a| Matched {
                            id: &adv.audiences[a].id,
                            kind: adv.audiences[a].kind.as_str(),
                        });
                        break;
                    }
                    Err(stop) => {
                        if stop.deeper(furthest) {
                            furthest = Some(stop);
                        }
                    }
                }
            }
        }
        if !verdict.bids {
            // An unpriced request (no currency we have a rate for) runs no
            // checks; no imp at all stops at the medium.
            let reason = match (stopped, priced, furthest) {
                (Some(reason), _, _) => reason,
                (None, false, _) => NoBid::Currency,
                (None, true, Some(stop)) => {
                    verdict.detail = stop.detail;
                    stop.reason
                }
                (None, true, None) => NoBid::Media,
            };
            verdict.reason = Some(reason.as_str());
        }
        out.push(((item.advertiser, item.order, item.line_item), verdict));
    }
    out.sort_by_key(|(k, _)| *k);
    out.into_iter().map(|(_, v)| v).collect()
}

/// The price's story: the value's source, then what shading did.
fn why(item: &crate::snapshot::Item, choice: &select::Choice, first_price: bool) -> String {
    let value = match (item.bidding, choice.pricing.prediction) {
        (config::Bidding::MaxCpc { max_cpc }, Some(p)) => format!(
            "value = max_cpc {max_cpc} × predicted click rate {:.6} × 1000{}",
            p.click,
            if choice.pricing.value == item.cpm {
                ", at the max_cpm ceiling"
            } else {
                ""
            }
        ),
        (config::Bidding::TargetCpa { target_cpa }, Some(p)) => format!(
            "value = target_cpa {target_cpa} × predicted conversion rate {:.6} × 1000{}",
            p.conversion,
            if choice.pricing.value == item.cpm {
                ", at the max_cpm ceiling"
            } else {
                ""
            }
        ),
        _ => "value = the line item's cpm".to_owned(),
    };
    let shading = match &choice.pricing.shading {
        None if choice.pricing.fixed.is_some() => {
            format!("; fixed-price deal: bids the agreed price {}", choice.price)
        }
        None if !first_price => "; second-price auction: not shaded".to_owned(),
        None => "; shading: false: bids its value".to_owned(),
        Some(s) => match s.reason {
            shading::Reason::Shaded => format!(
                "; first price: lowered to maximise (value − bid) × P(win), P(win) {:.3}",
                s.p_win.unwrap_or_default()
            ),
            shading::Reason::NotEnoughData => {
                "; first price: too few outcomes on this exchange yet to shade".to_owned()
            }
            shading::Reason::Explore => {
                "; first price: an exploring bid, to keep learning the curve".to_owned()
            }
            other => format!("; first price: {}", other.as_str()),
        },
    };
    value + &shading
}
