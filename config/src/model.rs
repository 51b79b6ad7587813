//! The validated configuration the bidder runs on.
//!
//! Only `load_dir`/`load_files` build these after every rule has passed, so
//! the bidder can trust them without re-checking: references resolve, amounts
//! are positive, creative formats fit their line items.

use std::fmt;
use std::path::PathBuf;

use crate::money::Micros;
use crate::time::{Date, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Config {
    pub advertisers: Vec<Advertiser>,
}

impl Config {
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            advertisers: self.advertisers.len(),
            ..Summary::default()
        };
        for a in &self.advertisers {
            s.orders += a.orders.len();
            s.line_items += a.orders.iter().map(|o| o.line_items.len()).sum::<usize>();
            s.creatives += a.creatives.len();
            s.audiences += a.audiences.len();
        }
        s
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    pub advertisers: usize,
    pub orders: usize,
    pub line_items: usize,
    pub creatives: usize,
    pub audiences: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn count(n: usize, one: &str, many: &str) -> String {
            format!("{n} {}", if n == 1 { one } else { many })
        }
        write!(
            f,
            "{}, {}, {}, {}, {}",
            count(self.advertisers, "advertiser", "advertisers"),
            count(self.orders, "order", "orders"),
            count(self.line_items, "line item", "line items"),
            count(self.creatives, "creative", "creatives"),
            count(self.audiences, "audience", "audiences"),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertiser {
    pub id: String,
    pub name: String,
    pub domains: Vec<String>,
    pub categories: Vec<String>,
    pub audiences: Vec<Audience>,
    pub creatives: Vec<Creative>,
    pub orders: Vec<Order>,
    /// The file it was loaded from, as given to the loader.
    pub file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audience {
    pub id: String,
    pub kind: AudienceKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AudienceKind {
    /// Viewed one of the products within `lookback_days` and has not bought it since.
    Views {
        products: Vec<String>,
        lookback_days: u32,
    },
    /// Shopping activity on these topics within `recency_days`.
    Interests {
        interests: Vec<String>,
        recency_days: u32,
    },
    /// Contextual: the page is about one of these products.
    Products { products: Vec<String> },
    /// Contextual: the page is in one of these content categories.
    Categories { categories: Vec<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creative {
    pub id: String,
    pub kind: CreativeKind,
    pub click_url: String,
    /// Ids of display creatives of the same advertiser.
    pub companions: Vec<String>,
    pub companion_required: bool,
}

impl Creative {
    pub fn media(&self) -> Media {
        self.kind.media()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CreativeKind {
    Display {
        w: u32,
        h: u32,
        image_url: String,
    },
    Video {
        duration_s: u32,
        media: Vec<MediaFile>,
    },
    Audio {
        duration_s: u32,
        media: Vec<MediaFile>,
    },
}

impl CreativeKind {
    pub fn media(&self) -> Media {
        match self {
            CreativeKind::Display { .. } => Media::Display,
            CreativeKind::Video { .. } => Media::Video,
            CreativeKind::Audio { .. } => Media::Audio,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFile {
    pub url: String,
    pub mime: String,
    /// Always set for video; never for audio.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bitrate_kbps: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Media {
    Display,
    Video,
    Audio,
}

impl Media {
    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Display => "display",
            Media::Video => "video",
            Media::Audio => "audio",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Media> {
        match s {
            "display" => Some(Media::Display),
            "video" => Some(Media::Video),
            "audio" => Some(Media::Audio),
            _ => None,
        }
    }
}

impl fmt::Display for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    SelfService,
    Managed,
}

/// Inclusive UTC dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flight {
    pub start: Date,
    pub end: Date,
}

impl Flight {
    /// From 00:00:00.000 UTC on `start` through 23:59:59.999 UTC on `end`.
    pub fn contains(&self, now: Timestamp) -> bool {
        let date = now.date();
        self.start <= date && date <= self.end
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub service: Service,
    /// Total budget of the order over its whole flight.
    pub budget: Micros,
    pub flight: Flight,
    pub line_items: Vec<LineItem>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineItem {
    pub id: String,
    pub media: Media,
    /// Maximum bid per thousand impressions.
    pub cpm: Micros,
    pub budget: Budget,
    pub frequency_cap: Option<FrequencyCap>,
    /// `None`: every user is eligible.
    pub audiences: Option<AudienceRule>,
    pub targeting: Targeting,
    /// Ids of creatives of the same advertiser, all of this line item's media.
    pub creatives: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Spent as demand comes each UTC day, not paced.
    Daily(Micros),
    /// For the whole flight, paced evenly through each day.
    Lifetime(Micros),
}

impl Budget {
    pub fn amount(self) -> Micros {
        match self {
            Budget::Daily(m) | Budget::Lifetime(m) => m,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrequencyCap {
    pub impressions: u32,
    pub per_hours: u32,
}

/// A user qualifies when in at least one of `any_of` (or `any_of` is empty)
/// and in none of `none_of`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AudienceRule {
    pub any_of: Vec<String>,
    pub none_of: Vec<String>,
}

/// Empty lists mean "no restriction".
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Targeting {
    /// ISO 3166-1 alpha-3, as OpenRTB `geo.country`.
    pub countries: Vec<String>,
    pub devices: Vec<Device>,
    pub keywords: Option<Keywords>,
    /// Private-marketplace deal ids: when set, bid only inside these deals.
    pub deals: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Keywords {
    pub broad: Vec<String>,
    pub phrase: Vec<String>,
    pub exact: Vec<String>,
    pub negative: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    Desktop,
    Phone,
    Tablet,
    Ctv,
    ConnectedDevice,
    SetTopBox,
    Dooh,
}

impl Device {
    pub const ALL: [Device; 7] = [
        Device::Desktop,
        Device::Phone,
        Device::Tablet,
        Device::Ctv,
        Device::ConnectedDevice,
        Device::SetTopBox,
        Device::Dooh,
    ];

    /// The YAML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Desktop => "desktop",
            Device::Phone => "phone",
            Device::Tablet => "tablet",
            Device::Ctv => "ctv",
            Device::ConnectedDevice => "connected_device",
            Device::SetTopBox => "set_top_box",
            Device::Dooh => "dooh",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Device> {
        Device::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Whether an OpenRTB 2.x `device.devicetype` value is this device.
    ///
    /// Type 1 ("Mobile/Tablet", the pre-2.3 catch-all) could be either a
    /// phone or a tablet, so it matches both.
    pub fn matches_devicetype(self, devicetype: i32) -> bool {
        matches!(
            (self, devicetype),
            (Device::Phone | Device::Tablet, 1)
                | (Device::Desktop, 2)
                | (Device::Ctv, 3)
                | (Device::Phone, 4)
                | (Device::Tablet, 5)
                | (Device::ConnectedDevice, 6)
                | (Device::SetTopBox, 7)
                | (Device::Dooh, 8)
        )
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> Date {
        Date::parse(s).expect("test date")
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).expect("test timestamp")
    }

    #[test]
    fn flight_includes_both_end_days_whole() {
        let flight = Flight {
            start: date("2026-11-01"),
            end: date("2026-12-31"),
        };
        assert!(!flight.contains(ts("2026-10-31T23:59:59.999Z")));
        assert!(flight.contains(ts("2026-11-01T00:00:00Z")));
        assert!(flight.contains(ts("2026-11-20T10:00:00Z")));
        assert!(flight.contains(ts("2026-12-31T23:59:59.999Z")));
        assert!(!flight.contains(ts("2027-01-01T00:00:00Z")));
        // The boundary is UTC, not the bid's local time.
        assert!(!flight.contains(ts("2026-11-01T00:30:00+01:00")));
        assert!(flight.contains(ts("2026-12-31T20:00:00-03:59")));
        assert!(!flight.contains(ts("2026-12-31T21:00:00-03:00")));
    }

    #[test]
    fn one_day_flight() {
        let day = date("2024-02-29");
        let flight = Flight {
            start: day,
            end: day,
        };
        assert!(flight.contains(day.start()));
        assert!(flight.contains(Timestamp(day.start().0 + 86_399_999)));
        assert!(!flight.contains(Timestamp(day.start().0 + 86_400_000)));
        assert!(!flight.contains(Timestamp(day.start().0 - 1)));
    }

    #[test]
    fn devicetype_mapping_follows_openrtb() {
        use Device::*;
        let expect: [(i32, &[Device]); 10] = [
            (0, &[]),
            (1, &[Phone, Tablet]),
            (2, &[Desktop]),
            (3, &[Ctv]),
            (4, &[Phone]),
            (5, &[Tablet]),
            (6, &[ConnectedDevice]),
            (7, &[SetTopBox]),
            (8, &[Dooh]),
            (9, &[]),
        ];
        for (devicetype, matching) in expect {
            for device in Device::ALL {
                assert_eq!(
                    device.matches_devicetype(devicetype),
                    matching.contains(&device),
                    "{device} vs devicetype {devicetype}"
                );
            }
        }
        assert!(!Desktop.matches_devicetype(-2));
    }

    #[test]
    fn device_names_round_trip() {
        for device in Device::ALL {
            assert_eq!(Device::parse(device.as_str()), Some(device));
        }
        assert_eq!(Device::parse("mobile"), None);
        assert_eq!(Device::parse("Desktop"), None);
    }

    #[test]
    fn summary_pluralises() {
        let s = Summary {
            advertisers: 1,
            orders: 0,
            line_items: 2,
            creatives: 1,
            audiences: 3,
        };
        assert_eq!(
            s.to_string(),
            "1 advertiser, 0 orders, 2 line items, 1 creative, 3 audiences"
        );
    }
}
