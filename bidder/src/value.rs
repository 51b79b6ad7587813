//! What an impression is worth to a value-based line item: its goal (max
//! CPC or target CPA) × the predicted click or conversion rate × 1000,
//! within its `max_cpm` ceiling; and the features the prediction reads,
//! which also go into the tracking URLs so that training later sees
//! exactly what was scored.

use std::io::Write as _;

use config::{Bidding, Micros};
use predict::{field, FeatureHasher, Features, Model, Prediction, DEFAULT_CROSSES};

use crate::context::Context;
use crate::select::ChoiceKind;
use crate::snapshot::Item;

/// A small number as text without allocating.
struct Num {
    buf: [u8; 24],
    len: usize,
}

impl Num {
    fn of(args: std::fmt::Arguments<'_>) -> Num {
        let mut buf = [0u8; 24];
        let len = {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            let _ = cursor.write_fmt(args);
            cursor.position() as usize
        };
        Num { buf, len }
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
    let size = match kind {
        ChoiceKind::Banner { w, h } => Num::of(format_args!("{w}x{h}")),
        ChoiceKind::Av { .. } => Num::of(format_args!("{}", item.media.as_str())),
        ChoiceKind::Native { .. } => Num::of(format_args!("native")),
    };
    let device = Num::of(format_args!("{}", ctx.devicetype.unwrap_or(0)));
    let hour = Num::of(format_args!(
        "{}",
        ctx.now.as_millis().div_euclid(3_600_000).rem_euclid(24)
    ));
    let fields = [
        (field::LINE_ITEM, item.id.as_str()),
        (field::CREATIVE, creative),
        (field::SIZE, size.as_str()),
        (field::SITE, ctx.site_domain.unwrap_or_default()),
        (field::APP, ctx.app_bundle.unwrap_or_default()),
        (field::DEVICE, device.as_str()),
        (field::OS, ctx.os.unwrap_or_default()),
        (field::COUNTRY, ctx.country.unwrap_or_default()),
        (field::HOUR, hour.as_str()),
        (field::KEYWORD, keyword.unwrap_or_default()),
        (field::AUDIENCE_KIND, audience_kind.unwrap_or_default()),
        (field::EXCHANGE, exchange),
    ];
    hasher.features(&fields, DEFAULT_CROSSES).ok()
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
