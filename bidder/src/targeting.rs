//! The inventory and time rules of a line item beyond country and device:
//! regions and cities, operating systems, sites, apps and publishers (allow
//! and block lists), and day-parts. Compiled once per config load.

use config::{AllowBlock, Dayparts, OpenTime, OpenWeek, Os, Targeting};

use crate::context::Context;

/// The rules a line item sets, or `None` in `Item` when it sets none (most
/// do not): the common case costs one branch.
#[derive(Debug)]
pub struct Rules {
    /// `(alpha-2 country, subdivision)`, upper case: `US-CO` → `("US", "CO")`.
    regions: Vec<(String, String)>,
    /// Lower case.
    cities: Vec<String>,
    os: Vec<Os>,
    sites: AllowBlock,
    apps: AllowBlock,
    publishers: AllowBlock,
    dayparts: Option<Dayparts>,
    /// The day-parts' open minutes, for the pacing plan.
    open: Option<OpenWeek>,
}

impl Rules {
    pub fn compile(t: &Targeting) -> Option<Box<Rules>> {
        let none = t.regions.is_empty()
            && t.cities.is_empty()
            && t.os.is_empty()
            && t.sites.is_empty()
            && t.apps.is_empty()
            && t.publishers.is_empty()
            && t.dayparts.is_none();
        if none {
            return None;
        }
        Some(Box::new(Rules {
            regions: t
                .regions
                .iter()
                .filter_map(|r| r.split_once('-'))
                .map(|(c, s)| (c.to_ascii_uppercase(), s.to_ascii_uppercase()))
                .collect(),
            cities: t.cities.iter().map(|c| c.to_lowercase()).collect(),
            os: t.os.clone(),
            sites: t.sites.clone(),
            apps: t.apps.clone(),
            publishers: t.publishers.clone(),
            dayparts: t.dayparts.clone(),
            open: t.dayparts.as_ref().map(Dayparts::open_week),
        }))
    }

    // Each rule is its own check of the line item's list (`crate::checks`),
    // which runs only those the line item sets.

    pub fn has_geo(&self) -> bool {
        !self.regions.is_empty() || !self.cities.is_empty()
    }

    /// Regions, then cities.
    pub fn geo(&self, ctx: &Context<'_>) -> bool {
        (self.regions.is_empty() || self.region_ok(ctx))
            && (self.cities.is_empty()
                || ctx.city.is_some_and(|c| {
                    let c = c.to_lowercase();
                    self.cities.contains(&c)
                }))
    }

    pub fn has_os(&self) -> bool {
        !self.os.is_empty()
    }

    pub fn os(&self, ctx: &Context<'_>) -> bool {
        self.os.is_empty()
            || ctx
                .os
                .is_some_and(|os| self.os.iter().any(|o| o.matches(os)))
    }

    pub fn has_inventory(&self) -> bool {
        !self.sites.is_empty() || !self.apps.is_empty() || !self.publishers.is_empty()
    }

    /// Site domain, app bundle and publisher, each against its lists.
    pub fn inventory(&self, ctx: &Context<'_>) -> bool {
        allowed(&self.sites, ctx.site_domain, domain_within)
            && allowed(&self.apps, ctx.app_bundle, |a, b| a.eq_ignore_ascii_case(b))
            && allowed(&self.publishers, ctx.publisher, |a, b| a == b)
    }

    pub fn has_daypart(&self) -> bool {
        self.dayparts.is_some()
    }

    /// A day-parted line item's open time at `now` for a user
    /// `utcoffset` minutes east of UTC ([`OpenWeek::open_time`]); `None`
    /// without day-parts.
    pub fn open_time(
        &self,
        now: config::Timestamp,
        utcoffset: Option<i32>,
        flight_end: config::Date,
    ) -> Option<OpenTime> {
        self.open
            .as_ref()
            .map(|w| w.open_time(now, utcoffset, flight_end))
    }

    pub fn daypart(&self, ctx: &Context<'_>) -> bool {
        self.dayparts
            .as_ref()
            .is_none_or(|d| d.contains(ctx.now, ctx.utcoffset))
    }

    /// OpenRTB sends `geo.region` as the subdivision part (`CO`) or, from
    /// some exchanges, whole (`US-CO`); the country part comes from
    /// `geo.country` in alpha-3.
    fn region_ok(&self, ctx: &Context<'_>) -> bool {
        let Some(region) = ctx.region else {
            return false;
        };
        // In upper case, as the country check reads it: a request saying
        // `usa` is in the United States for both.
        let country2 = ctx.country_upper().and_then(config::country_alpha2);
        self.regions
            .iter()
            .any(|(c, sub)| match region.split_once('-') {
                Some((rc, rs)) => rc.eq_ignore_ascii_case(c) && rs.eq_ignore_ascii_case(sub),
                None => region.eq_ignore_ascii_case(sub) && country2.is_some_and(|x| x == c),
            })
    }
}

/// An empty allow list allows anything; a value on the block list is out
/// whatever the allow list says. A request without the value (an app
/// request has no site domain) passes only when there is no allow list.
fn allowed(list: &AllowBlock, value: Option<&str>, same: impl Fn(&str, &str) -> bool) -> bool {
    match value {
        Some(v) => {
            !list.block.iter().any(|b| same(v, b))
                && (list.allow.is_empty() || list.allow.iter().any(|a| same(v, a)))
        }
        None => list.allow.is_empty(),
    }
}

/// `news.example.com` is within `example.com`. Compared as bytes: a domain
/// from a request may hold any UTF-8, and must not be sliced mid-character.
pub(crate) fn domain_within(domain: &str, listed: &str) -> bool {
    let d = without_www(domain.as_bytes());
    let l = without_www(listed.as_bytes());
    !l.is_empty()
        && (d.eq_ignore_ascii_case(l)
            || (d.len() > l.len()
                && d[d.len() - l.len()..].eq_ignore_ascii_case(l)
                && d[d.len() - l.len() - 1] == b'.'))
}

/// As `trim_start_matches("www.")` in any case (host names are), without
/// the substring searcher that builds on every call: this runs for each
/// blocked or allowed site of each candidate, on every request.
fn without_www(mut d: &[u8]) -> &[u8] {
    while d.len() >= 4 && d[..4].eq_ignore_ascii_case(b"www.") {
        d = &d[4..];
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn www_goes_as_trim_start_matches_takes_it_in_any_case() {
        for d in [
            "",
            "www.",
            "www.www.a.com",
            "wwwa.com",
            "WWW.a.com",
            "Www.wWw.a.com",
            "a.www.com",
            "www",
        ] {
            let lower = d.to_ascii_lowercase();
            let kept = lower.trim_start_matches("www.").len();
            assert_eq!(
                without_www(d.as_bytes()),
                &d.as_bytes()[d.len() - kept..],
                "{d}"
            );
        }
    }

    #[test]
    fn domains_and_subdomains() {
        assert!(domain_within("news.example.com", "example.com"));
        assert!(domain_within("www.example.com", "example.com"));
        assert!(domain_within("example.com", "www.EXAMPLE.com"));
        assert!(!domain_within("badexample.com", "example.com"));
        assert!(!domain_within("example.com", "news.example.com"));
        assert!(!domain_within("example.com", ""));
        assert!(
            !domain_within("ééé.com", "é.com"),
            "no panic on multi-byte input"
        );
    }

    #[test]
    fn allow_and_block_lists() {
        let list = AllowBlock {
            allow: vec!["a.example".into()],
            block: vec!["bad.a.example".into()],
        };
        assert!(allowed(&list, Some("a.example"), domain_within));
        assert!(allowed(&list, Some("x.a.example"), domain_within));
        assert!(!allowed(&list, Some("bad.a.example"), domain_within));
        assert!(!allowed(&list, Some("b.example"), domain_within));
        assert!(!allowed(&list, None, domain_within));
        let block_only = AllowBlock {
            allow: vec![],
            block: vec!["b.example".into()],
        };
        assert!(allowed(&block_only, None, domain_within));
        assert!(!allowed(&block_only, Some("b.example"), domain_within));
    }
}
