//! The event store and the four audience kinds.
//!
//! Product and interest ids are interned once, so a user's history is a few
//! small vectors of `(u32, Timestamp)` pairs rather than one heap string per
//! event. This first version keeps every event; the audiences issue grows it
//! into the compact, appendable store with a lookup cache.

use std::collections::HashMap;
use std::path::Path;

use config::{Audience, AudienceKind, Timestamp};

use crate::event::{parse_jsonl, DataError, Event, EventKind};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Who the impression is for.
#[derive(Clone, Copy, Debug)]
pub struct Visitor<'a> {
    /// The bidder's user key (`buyeruid`, then `user.id`, then `device.ifa`).
    pub user: Option<&'a str>,
    /// False when privacy signals forbid behavioural targeting: then `views`
    /// and `interests` never match, whatever the history says.
    pub behavioural: bool,
    pub now: Timestamp,
}

/// What the page (or app content) is about.
#[derive(Clone, Debug, Default)]
pub struct Page<'a> {
    pub products: Vec<&'a str>,
    pub categories: Vec<&'a str>,
}

#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.ids.len() as u32;
        self.ids.insert(s.into(), id);
        id
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }
}

#[derive(Default)]
struct History {
    views: Vec<(u32, Timestamp)>,
    purchases: Vec<(u32, Timestamp)>,
    interests: Vec<(u32, Timestamp)>,
}

#[derive(Default)]
pub struct Store {
    products: Interner,
    interests: Interner,
    users: HashMap<Box<str>, History>,
    events: usize,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Loads every `*.jsonl` file under `dir` (sorted, so errors are stable).
    /// Any bad line refuses the whole load: a half-loaded audience would
    /// silently change who is targeted.
    pub fn load_dir(dir: &Path) -> Result<Store, DataError> {
        let io_err = |reason: String| DataError {
            source_name: dir.display().to_string(),
            line: 0,
            reason,
        };
        let mut files = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            let entries =
                std::fs::read_dir(&d).map_err(|e| io_err(format!("cannot read directory: {e}")))?;
            for entry in entries {
                let path = entry
                    .map_err(|e| io_err(format!("cannot read directory: {e}")))?
                    .path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|x| x == "jsonl") {
                    files.push(path);
                }
            }
        }
        files.sort();
        let mut store = Store::new();
        for file in files {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file).map_err(|e| DataError {
                source_name: name.clone(),
                line: 0,
                reason: format!("cannot read file: {e}"),
            })?;
            store.insert(parse_jsonl(&name, &text)?);
        }
        Ok(store)
    }

    pub fn insert(&mut self, events: impl IntoIterator<Item = Event>) {
        for e in events {
            let history = match self.users.get_mut(e.user.as_str()) {
                Some(h) => h,
                None => self.users.entry(e.user.into_boxed_str()).or_default(),
            };
            match e.kind {
                EventKind::View => history.views.push((self.products.intern(&e.item), e.at)),
                EventKind::Purchase => history
                    .purchases
                    .push((self.products.intern(&e.item), e.at)),
                EventKind::Interest => history
                    .interests
                    .push((self.interests.intern(&e.item), e.at)),
            }
            self.events += 1;
        }
    }

    pub fn users(&self) -> usize {
        self.users.len()
    }

    pub fn events(&self) -> usize {
        self.events
    }

    /// Whether the audience matches this visitor on this page.
    pub fn matches(&self, audience: &Audience, visitor: &Visitor<'_>, page: &Page<'_>) -> bool {
        match &audience.kind {
            AudienceKind::Views {
                products,
                lookback_days,
            } => self.viewed_not_bought(products, *lookback_days, visitor),
            AudienceKind::Interests {
                interests,
                recency_days,
            } => self.interested(interests, *recency_days, visitor),
            AudienceKind::Products { products } => page
                .products
                .iter()
                .any(|p| products.iter().any(|want| want == p)),
            AudienceKind::Categories { categories } => page
                .categories
                .iter()
                .any(|c| categories.iter().any(|want| category_within(c, want))),
        }
    }

    fn history(&self, visitor: &Visitor<'_>) -> Option<&History> {
        if !visitor.behavioural {
            return None;
        }
        self.users.get(visitor.user?)
    }

    fn viewed_not_bought(&self, products: &[String], lookback_days: u32, v: &Visitor<'_>) -> bool {
        let Some(h) = self.history(v) else {
            return false;
        };
        let since = v.now.as_millis() - i64::from(lookback_days) * DAY_MS;
        products
            .iter()
            .filter_map(|p| self.products.get(p))
            .any(|p| {
                h.views.iter().any(|&(vp, at)| {
                    vp == p
                        && within(at, since, v.now)
                        && !h
                            .purchases
                            .iter()
                            .any(|&(bp, bought)| bp == p && bought >= at && bought <= v.now)
                })
            })
    }

    fn interested(&self, topics: &[String], recency_days: u32, v: &Visitor<'_>) -> bool {
        let Some(h) = self.history(v) else {
            return false;
        };
        let since = v.now.as_millis() - i64::from(recency_days) * DAY_MS;
        topics
            .iter()
            .filter_map(|t| self.interests.get(t))
            .any(|t| {
                h.interests
                    .iter()
                    .any(|&(it, at)| it == t && within(at, since, v.now))
            })
    }
}

/// An event counts when it happened inside the window and not after `now`:
/// events stamped in the future (clock skew at the source) wait their turn.
fn within(at: Timestamp, since_ms: i64, now: Timestamp) -> bool {
    at.as_millis() >= since_ms && at <= now
}

/// `IAB20-3` is within `IAB20`; `IAB201` is not.
fn category_within(page: &str, wanted: &str) -> bool {
    page == wanted
        || (page.len() > wanted.len()
            && page.starts_with(wanted)
            && page.as_bytes()[wanted.len()] == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn aud(kind: AudienceKind) -> Audience {
        Audience {
            id: "a".into(),
            kind,
        }
    }

    fn example_store() -> Store {
        let text = include_str!("../../examples/data/audience-events.jsonl");
        let mut s = Store::new();
        s.insert(parse_jsonl("example", text).unwrap());
        s
    }

    fn visitor(user: &str, now: &str) -> Visitor<'static> {
        Visitor {
            user: Some(Box::leak(user.to_string().into_boxed_str())),
            behavioural: true,
            now: ts(now),
        }
    }

    #[test]
    fn example_data_memberships_at_2026_11_24() {
        let s = example_store();
        let page = Page::default();
        let now = "2026-11-24T12:00:00Z";
        let tent_viewers = aud(AudienceKind::Views {
            products: vec!["B0TENT0001".into(), "B0TENT0002".into()],
            lookback_days: 30,
        });
        let hikers = aud(AudienceKind::Interests {
            interests: vec!["hiking".into(), "camping".into()],
            recency_days: 90,
        });
        let mystery = aud(AudienceKind::Interests {
            interests: vec!["mystery-fiction".into()],
            recency_days: 90,
        });
        assert!(s.matches(&tent_viewers, &visitor("u-1001", now), &page));
        assert!(
            !s.matches(&tent_viewers, &visitor("u-1002", now), &page),
            "bought it"
        );
        assert!(
            !s.matches(&tent_viewers, &visitor("u-1003", now), &page),
            "too old"
        );
        assert!(s.matches(&hikers, &visitor("u-1004", now), &page));
        assert!(!s.matches(&hikers, &visitor("u-1001", now), &page));
        assert!(s.matches(&mystery, &visitor("u-1005", now), &page));
        assert!(!s.matches(&mystery, &visitor("nobody", now), &page));
    }

    #[test]
    fn views_age_out_with_the_clock_and_ignore_future_events() {
        let s = example_store();
        let tent_viewers = aud(AudienceKind::Views {
            products: vec!["B0TENT0001".into()],
            lookback_days: 30,
        });
        let page = Page::default();
        // u-1001 viewed on 2026-11-20T10:00Z: in at +30 days, out just after.
        assert!(s.matches(
            &tent_viewers,
            &visitor("u-1001", "2026-12-20T10:00:00Z"),
            &page
        ));
        assert!(!s.matches(
            &tent_viewers,
            &visitor("u-1001", "2026-12-20T10:00:01Z"),
            &page
        ));
        assert!(!s.matches(
            &tent_viewers,
            &visitor("u-1001", "2026-11-20T09:59:59Z"),
            &page
        ));
    }

    #[test]
    fn a_purchase_before_the_view_does_not_cancel_it() {
        let mut s = Store::new();
        s.insert(
            parse_jsonl(
                "t",
                r#"{"user":"u","event":"purchase","product":"P","at":"2026-11-01T00:00:00Z"}
{"user":"u","event":"view","product":"P","at":"2026-11-10T00:00:00Z"}"#,
            )
            .unwrap(),
        );
        let a = aud(AudienceKind::Views {
            products: vec!["P".into()],
            lookback_days: 30,
        });
        assert!(s.matches(&a, &visitor("u", "2026-11-11T00:00:00Z"), &Page::default()));
    }

    #[test]
    fn no_behavioural_match_when_privacy_forbids_it() {
        let s = example_store();
        let hikers = aud(AudienceKind::Interests {
            interests: vec!["hiking".into()],
            recency_days: 90,
        });
        let mut v = visitor("u-1004", "2026-11-24T00:00:00Z");
        v.behavioural = false;
        assert!(!s.matches(&hikers, &v, &Page::default()));
        v.behavioural = true;
        v.user = None;
        assert!(!s.matches(&hikers, &v, &Page::default()));
    }

    #[test]
    fn contextual_products_and_categories() {
        let s = Store::new();
        let v = Visitor {
            user: None,
            behavioural: false,
            now: ts("2026-11-24T00:00:00Z"),
        };
        let products = aud(AudienceKind::Products {
            products: vec!["B0TENT0001".into()],
        });
        let cats = aud(AudienceKind::Categories {
            categories: vec!["IAB17".into(), "IAB20-3".into()],
        });
        let page = Page {
            products: vec!["B0TENT0001"],
            categories: vec!["IAB17-18"],
        };
        assert!(s.matches(&products, &v, &page));
        assert!(s.matches(&cats, &v, &page));
        let other = Page {
            products: vec!["B0OTHER"],
            categories: vec!["IAB170", "IAB20", "IAB1-1"],
        };
        assert!(!s.matches(&products, &v, &other));
        assert!(
            !s.matches(&cats, &v, &other),
            "IAB20 is broader than IAB20-3"
        );
    }
}
