//! The config compiled for the hot path: line items flattened with what each
//! check needs precomputed, sorted by CPM, and indexed by slot size.
//!
//! A snapshot is immutable; a reload builds a new one and swaps the pointer,
//! so a request sees one config from start to end.

use std::collections::HashMap;

use config::{Budget, Config, Device, Flight, FrequencyCap, Media, Micros, Timestamp};

use crate::keywords::KeywordRule;
use crate::notice;

/// One line item, ready to be checked against an imp.
#[derive(Debug)]
pub struct Item {
    pub advertiser: usize,
    pub order: usize,
    pub line_item: usize,
    pub id: String,
    /// Keys under which spend is counted: the line item and its order.
    pub spend_key: String,
    pub order_key: String,
    pub media: Media,
    pub cpm: Micros,
    pub flight: Flight,
    pub budget: Budget,
    pub order_budget: Micros,
    /// ISO-3166-1 alpha-3; empty means anywhere.
    pub countries: Vec<String>,
    /// Empty means any device.
    pub devices: Vec<Device>,
    /// Audience indices within the advertiser: `(any_of, none_of)`.
    pub audiences: Option<(Vec<usize>, Vec<usize>)>,
    pub deals: Vec<String>,
    pub keywords: Option<KeywordRule>,
    pub frequency: Option<FrequencyCap>,
    /// Creative indices within the advertiser.
    pub creatives: Vec<usize>,
    /// `"cid":"<line item>"`, escaped once here rather than per bid.
    pub cid_json: String,
    /// `&li=<line item>&o=<order>` for notice URLs, percent-encoded once.
    pub notice_ids: String,
}

pub struct Snapshot {
    pub config: Config,
    /// Sorted by CPM, highest first: walking the index in item order walks
    /// candidates from the best price down, so selection stops early.
    pub items: Vec<Item>,
    /// Display: creative size → indices of items with a creative that size.
    by_size: HashMap<(u32, u32), Vec<u32>>,
    /// `[advertiser][creative]`: what a bid says about its creative, as
    /// ready-made JSON members — the markup is static, so it is escaped once
    /// per config load instead of once per bid.
    pub creative_json: Vec<Vec<CreativeJson>>,
    pub loaded_at: Timestamp,
}

impl Snapshot {
    pub fn compile(config: Config, loaded_at: Timestamp) -> Snapshot {
        let mut items = Vec::new();
        for (a, adv) in config.advertisers.iter().enumerate() {
            let aud_index = |ids: &[String]| -> Vec<usize> {
                ids.iter()
                    .filter_map(|id| adv.audiences.iter().position(|x| &x.id == id))
                    .collect()
            };
            for (o, order) in adv.orders.iter().enumerate() {
                for (l, li) in order.line_items.iter().enumerate() {
                    items.push(Item {
                        advertiser: a,
                        order: o,
                        line_item: l,
                        id: li.id.clone(),
                        spend_key: format!("li:{}", li.id),
                        order_key: format!("order:{}", order.id),
                        media: li.media,
                        cpm: li.cpm,
                        flight: order.flight,
                        budget: li.budget,
                        order_budget: order.budget,
                        countries: li.targeting.countries.clone(),
                        devices: li.targeting.devices.clone(),
                        audiences: li
                            .audiences
                            .as_ref()
                            .map(|r| (aud_index(&r.any_of), aud_index(&r.none_of))),
                        deals: li.targeting.deals.clone(),
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
                    });
                }
            }
        }
        // Stable: equal CPMs keep config order; ties are broken at random at
        // bid time, not here.
        items.sort_by_key(|i| std::cmp::Reverse(i.cpm));

        let mut by_size: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            if item.media != Media::Display {
                continue;
            }
            let adv = &config.advertisers[item.advertiser];
            let mut sizes: Vec<(u32, u32)> = item
                .creatives
                .iter()
                .filter_map(|&c| creatives::display_size(&adv.creatives[c]))
                .collect();
            sizes.sort_unstable();
            sizes.dedup();
            for s in sizes {
                by_size.entry(s).or_default().push(i as u32);
            }
        }
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
        Snapshot {
            config,
            items,
            by_size,
            creative_json,
            loaded_at,
        }
    }

    /// Display candidates for the offered sizes, best CPM first, each once.
    pub fn display_candidates(&self, sizes: &[(u32, u32)]) -> Candidates<'_> {
        let mut lists: Vec<&[u32]> = Vec::with_capacity(sizes.len());
        for s in sizes {
            if let Some(list) = self.by_size.get(s) {
                if !lists.iter().any(|l| std::ptr::eq(*l, list.as_slice())) {
                    lists.push(list);
                }
            }
        }
        Candidates { lists }
    }
}

/// A creative's part of a bid, pre-rendered.
#[derive(Debug)]
pub struct CreativeJson {
    /// `"adm":…,"adid":…,"crid":…,"adomain":[…],"cat":[…]`
    pub members: String,
    /// The creative id percent-encoded for notice URLs.
    pub notice_id: String,
}

impl CreativeJson {
    fn new(adv: &config::Advertiser, c: &config::Creative) -> CreativeJson {
        let mut m = String::with_capacity(256);
        if let Some(adm) = creatives::banner_html(c) {
            m.push_str("\"adm\":");
            m.push_str(&json_str(&adm));
            m.push(',');
        }
        let id = json_str(&c.id);
        m.push_str(&format!("\"adid\":{id},\"crid\":{id},\"adomain\":"));
        m.push_str(&serde_json::to_string(&adv.domains).unwrap_or_else(|_| "[]".into()));
        m.push_str(",\"cat\":");
        m.push_str(&serde_json::to_string(&adv.categories).unwrap_or_else(|_| "[]".into()));
        CreativeJson {
            members: m,
            notice_id: notice::encode(&c.id),
        }
    }
}

/// A JSON string literal, quotes included.
pub fn json_str(s: &str) -> String {
    // Serialising a str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// A lazy k-way merge of ascending posting lists: yields each item index
/// once, in ascending order (= descending CPM). Lazy so that selection can
/// stop as soon as it has its winner.
pub struct Candidates<'a> {
    lists: Vec<&'a [u32]>,
}

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
    fn candidates_merge_without_duplicates() {
        let a = [0u32, 2, 5, 9];
        let b = [1u32, 2, 9, 10];
        let c = Candidates {
            lists: vec![&a, &b],
        };
        assert_eq!(c.collect::<Vec<_>>(), vec![0, 1, 2, 5, 9, 10]);
    }
}
