//! The config compiled for the hot path: line items flattened with what each
//! check needs precomputed, sorted by CPM, and indexed by slot size.
//!
//! A snapshot is immutable; a reload builds a new one and swaps the pointer,
//! so a request sees one config from start to end.

use std::collections::HashMap;

use config::{Budget, Config, Device, Flight, FrequencyCap, Media, Micros, Timestamp};

use crate::keywords::KeywordRule;

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
}

pub struct Snapshot {
    pub config: Config,
    /// Sorted by CPM, highest first: walking the index in item order walks
    /// candidates from the best price down, so selection stops early.
    pub items: Vec<Item>,
    /// Display: creative size → indices of items with a creative that size.
    by_size: HashMap<(u32, u32), Vec<u32>>,
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
        Snapshot {
            config,
            items,
            by_size,
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
