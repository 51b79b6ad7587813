//! What an impression is worth to a value-based line item: its goal (max
//! CPC or target CPA) × the predicted click or conversion rate × 1000,
//! within its `max_cpm` ceiling; and the features the prediction reads,
//! which also go into the tracking URLs so that training later sees
//! exactly what was scored.

use config::{Bidding, Micros};
use predict::{FeatureHasher, Features, Model, Prediction};

use crate::context::Context;
use crate::select::ChoiceKind;
use crate::snapshot::Item;

/// A banner size (`300x250`) as text without allocating or going through
/// `fmt` (about a thousand instructions a bid for this and the two numbers
/// below).
struct Size {
    buf: [u8; 21],
    len: usize,
}

impl Size {
    fn of(w: u32, h: u32) -> Size {
        let mut out = Size {
            buf: [0; 21],
            len: 0,
        };
        // Ten digits, `x`, ten digits: always room.
        for part in [
            itoa::Buffer::new().format(w),
            "x",
            itoa::Buffer::new().format(h),
        ] {
            out.buf[out.len..out.len + part.len()].copy_from_slice(part.as_bytes());
            out.len += part.len();
        }
        out
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The features of one candidate: the request's and the line item's.
#[allow(clippy::too_many_arguments)]
pub(crate) fn features(
    hasher: &FeatureHasher,
    ctx: &Context<'_>,
    exchange: &str,
    item: &Item,
    creative: &str,
    kind: &ChoiceKind,
    keyword: Option<&str>,
    audience_kind: Option<&str>,
) -> Option<Features> {
    let banner;
    let size = match kind {
        ChoiceKind::Banner { w, h, .. } => {
            banner = Size::of(*w, *h);
            banner.as_str()
        }
        ChoiceKind::Av { .. } => item.media.as_str(),
        ChoiceKind::Native { .. } => "native",
    };
    let mut device = itoa::Buffer::new();
    let device = device.format(ctx.devicetype.unwrap_or(0));
    // In upper case, as targeting reads it: to the model too, `usa` is
    // the `USA` it was trained on. A country that is no alpha-3 code as
    // it came.
    let country = ctx.country_upper().or(ctx.country);
    let mut hour = itoa::Buffer::new();
    let hour = hour.format(ctx.now.as_millis().div_euclid(3_600_000).rem_euclid(24));
    // In `predict::BID_FIELDS`' order: tests/value.rs holds each value
    // to its field's name.
    Some(hasher.bid_features(&[
        item.id.as_str(),
        creative,
        size,
        ctx.site_domain.unwrap_or_default(),
        ctx.app_bundle.unwrap_or_default(),
        device,
        ctx.os.unwrap_or_default(),
        country.unwrap_or_default(),
        hour,
        keyword.unwrap_or_default(),
        audience_kind.unwrap_or_default(),
        exchange,
    ]))
}

/// The impression's value to the line item and the rates it rests on:
/// a fixed CPM is its own value; otherwise goal × rate × 1000, rounded
/// down to the micro, never above the ceiling (`item.cpm`).
pub(crate) fn value(
    item: &Item,
    model: &Model,
    features: Option<&Features>,
) -> (Micros, Option<Prediction>) {
    let (goal, click) = match item.bidding {
        Bidding::FixedCpm => return (item.cpm, None),
        Bidding::MaxCpc { max_cpc } => (max_cpc, true),
        Bidding::TargetCpa { target_cpa } => (target_cpa, false),
    };
    let p = match features {
        Some(f) => model.predict(f, &item.id),
        // Features that could not be built: the priors.
        None => model.priors(),
    };
    let rate = if click { p.click } else { p.conversion };
    (of_rate(goal, rate, item.cpm), Some(p))
}

/// goal × rate × 1000 in micros, rounded down, within `0..=ceiling`.
pub(crate) fn of_rate(goal: Micros, rate: f64, ceiling: Micros) -> Micros {
    if !rate.is_finite() || rate <= 0.0 {
        return Micros::ZERO;
    }
    let v = (goal.as_i64() as f64 * rate.min(1.0) * 1000.0).floor();
    Micros((v as i64).clamp(0, ceiling.as_i64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size feature is the text it was when `format!` wrote it: a
    /// model trained on one spelling scores the other as unseen.
    #[test]
    fn banner_sizes_read_as_before() {
        for (w, h) in [(300, 250), (0, 0), (7, 1_000_000), (u32::MAX, u32::MAX)] {
            assert_eq!(Size::of(w, h).as_str(), format!("{w}x{h}"));
        }
    }

    #[test]
    fn value_is_goal_times_rate_times_a_thousand_within_the_ceiling() {
        let cpc = Micros::parse_decimal("1.20").unwrap();
        let ceiling = Micros::from_units(8);
        // 1.20 × 0.002 × 1000 = 2.40 CPM.
        assert_eq!(
            of_rate(cpc, 0.002, ceiling),
            Micros::parse_decimal("2.40").unwrap()
        );
        // 1.20 × 0.01 × 1000 = 12.00, over the 8.00 ceiling.
        assert_eq!(of_rate(cpc, 0.01, ceiling), ceiling);
        // Rounded down to the micro: never over-valued.
        assert_eq!(of_rate(Micros(1), 0.0015, ceiling), Micros(1));
        assert_eq!(of_rate(Micros(3), 0.0001, ceiling), Micros::ZERO);
        for bad in [f64::NAN, f64::INFINITY, -0.5, 0.0] {
            assert_eq!(of_rate(cpc, bad, ceiling), Micros::ZERO, "{bad}");
        }
        // 25.00 target CPA × 0.0001 × 1000 = 2.50.
        assert_eq!(
            of_rate(Micros::from_units(25), 0.0001, Micros::from_units(25_000)),
            Micros::parse_decimal("2.50").unwrap()
        );
    }
}
