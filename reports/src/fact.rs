//! The dimensions a report cuts by and the counters it sums.

use std::collections::HashMap;
use std::sync::Arc;

use config::Micros;

/// What a fact is about, beside its day. Empty strings where a dimension
/// does not apply (no keyword matched; a line item without audiences; a
/// product only for conversions).
#[derive(
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct Dims {
    pub advertiser: Arc<str>,
    pub order: Arc<str>,
    pub line_item: Arc<str>,
    pub creative: Arc<str>,
    pub exchange: Arc<str>,
    pub keyword: Arc<str>,
    /// The audience that made the line item eligible, as `kind:id`.
    pub audience: Arc<str>,
    pub product: Arc<str>,
}

/// A dimension a report can be cut by (`--by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dim {
    Day,
    Advertiser,
    Order,
    LineItem,
    Creative,
    Exchange,
    Keyword,
    Audience,
    Product,
}

impl Dim {
    pub const ALL: [Dim; 9] = [
        Dim::Day,
        Dim::Advertiser,
        Dim::Order,
        Dim::LineItem,
        Dim::Creative,
        Dim::Exchange,
        Dim::Keyword,
        Dim::Audience,
        Dim::Product,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Day => "day",
            Dim::Advertiser => "advertiser",
            Dim::Order => "order",
            Dim::LineItem => "line_item",
            Dim::Creative => "creative",
            Dim::Exchange => "exchange",
            Dim::Keyword => "keyword",
            Dim::Audience => "audience",
            Dim::Product => "product",
        }
    }

    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Reads `day,advertiser,…`: each known name once.
    pub fn parse_list(s: &str) -> Result<Vec<Dim>, String> {
        let mut out = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let d = Dim::parse(name).ok_or_else(|| {
                format!(
                    "unknown dimension {name:?} (one of: {})",
                    Dim::ALL.map(Dim::as_str).join(", ")
                )
            })?;
            if out.contains(&d) {
                return Err(format!("dimension {name:?} is given twice"));
            }
            out.push(d);
        }
        Ok(out)
    }

    /// The value of this dimension in a fact of `day`.
    pub fn value<'a>(self, day: &'a str, d: &'a Dims) -> &'a str {
        match self {
            Dim::Day => day,
            Dim::Advertiser => &d.advertiser,
            Dim::Order => &d.order,
            Dim::LineItem => &d.line_item,
            Dim::Creative => &d.creative,
            Dim::Exchange => &d.exchange,
            Dim::Keyword => &d.keyword,
            Dim::Audience => &d.audience,
            Dim::Product => &d.product,
        }
    }
}

/// What a report sums. Money in USD micros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub bids: u64,
    /// Charged wins: one per charge record.
    pub wins: u64,
    pub impressions: u64,
    pub clicks: u64,
    /// Billed spend, as the ledger charged it.
    pub spend: Micros,
    /// What wins cost beyond a budget: delivered, not billed.
    pub over_delivery: Micros,
    /// Detail page views attributed to an ad.
    pub views: u64,
    /// Purchases attributed to an ad.
    pub purchases: u64,
    /// What those purchases were worth.
    pub sales: Micros,
}

impl Counters {
    pub fn add(&mut self, o: &Counters) {
        // Saturating: figures read from files are not trusted to be sane.
        self.bids = self.bids.saturating_add(o.bids);
        self.wins = self.wins.saturating_add(o.wins);
        self.impressions = self.impressions.saturating_add(o.impressions);
        self.clicks = self.clicks.saturating_add(o.clicks);
        self.spend = self.spend.saturating_add(o.spend);
        self.over_delivery = self.over_delivery.saturating_add(o.over_delivery);
        self.views = self.views.saturating_add(o.views);
        self.purchases = self.purchases.saturating_add(o.purchases);
        self.sales = self.sales.saturating_add(o.sales);
    }

    pub fn is_empty(&self) -> bool {
        *self == Counters::default()
    }

    /// Clicks per impression; `None` without impressions.
    pub fn ctr(&self) -> Option<f64> {
        ratio(self.clicks as f64, self.impressions as f64)
    }

    /// Spend per thousand impressions, in micros (rounded down).
    pub fn ecpm(&self) -> Option<Micros> {
        (self.impressions > 0).then(|| {
            let ecpm = i128::from(self.spend.as_i64()) * 1000 / i128::from(self.impressions);
            // Past what micros hold only with spend near its saturation:
            // stays there rather than wrapping negative.
            Micros(i64::try_from(ecpm).unwrap_or(i64::MAX))
        })
    }

    /// Spend per click, in micros (rounded down).
    pub fn cpc(&self) -> Option<Micros> {
        (self.clicks > 0).then(|| Micros(self.spend.as_i64() / self.clicks as i64))
    }

    /// Spend ÷ sales; `None` without sales, and without spend: a row that
    /// holds none (a product's: spend is not split by product; a day's
    /// after the spend's) did not get its sales free, and 0% said so.
    pub fn acos(&self) -> Option<f64> {
        (self.spend > Micros::ZERO)
            .then(|| ratio(self.spend.as_i64() as f64, self.sales.as_i64() as f64))
            .flatten()
    }

    /// Sales ÷ spend; `None` without spend.
    pub fn roas(&self) -> Option<f64> {
        ratio(self.sales.as_i64() as f64, self.spend.as_i64() as f64)
    }
}

/// A ratio for display, computed once from exact integer sums (never
/// accumulated): `None` for a zero denominator, shown empty.
fn ratio(num: f64, den: f64) -> Option<f64> {
    (den > 0.0).then(|| num / den)
}

/// Facts summed by day (days since the epoch) and dimensions.
pub type Cube = HashMap<(i64, Dims), Counters>;

/// No-bid answers by day, exchange and reason.
pub type NoBids = HashMap<(i64, Arc<str>, Arc<str>), u64>;

/// Interns the strings of facts read back, so a cube of millions of facts
/// holds each id once.
#[derive(Default)]
pub struct Interner(std::collections::HashSet<Arc<str>>);

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = s.into();
        self.0.insert(a.clone());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_denominators_are_empty_not_infinite() {
        let c = Counters::default();
        assert_eq!(
            (c.ctr(), c.ecpm(), c.cpc(), c.acos(), c.roas()),
            (None, None, None, None, None)
        );
        let c = Counters {
            impressions: 3,
            clicks: 1,
            spend: Micros(10_000),
            sales: Micros(40_000),
            ..Counters::default()
        };
        assert_eq!(c.ecpm(), Some(Micros(3_333_333)));
        assert_eq!(c.cpc(), Some(Micros(10_000)));
        assert_eq!(c.acos(), Some(0.25));
        assert_eq!(c.roas(), Some(4.0));
        // Sales in a row without spend (a product's): neither ratio, not
        // an ACOS of 0% that reads as sales for free.
        let product_row = Counters {
            sales: Micros(40_000),
            ..Counters::default()
        };
        assert_eq!((product_row.acos(), product_row.roas()), (None, None));
        // Spend saturated (it adds up saturating): the eCPM stays at the
        // most micros hold, not wrapped below zero.
        let c = Counters {
            impressions: 3,
            spend: Micros(i64::MAX),
            ..Counters::default()
        };
        assert_eq!(c.ecpm(), Some(Micros(i64::MAX)));
    }

    #[test]
    fn dimensions_parse_strictly() {
        assert_eq!(
            Dim::parse_list("day, keyword"),
            Ok(vec![Dim::Day, Dim::Keyword])
        );
        assert_eq!(
            Dim::parse_list("audience,line_item"),
            Ok(vec![Dim::Audience, Dim::LineItem])
        );
        assert!(Dim::parse_list("day,day").is_err());
        assert!(Dim::parse_list("campaign")
            .unwrap_err()
            .contains("line_item"));
    }
}
