//! Account-manager configuration for the bidder.
//!
//! Account managers write one YAML file per advertiser (advertiser, audiences,
//! creatives, orders with CPM line items). [`load_dir`] reads every file under
//! a directory and returns either a validated [`Config`] or every
//! [`Problem`] found, each with `file:line:column` and a plain-words reason.
//! A file with a syntax or type error (including an unknown or missing key)
//! is skipped after that one problem; all other files are still checked.
//!
//! [`json_schema`] describes the files for editors (completion and checks as
//! account managers type), generated from the same types the loader reads.
//!
//! Money is [`Micros`] and time is [`Timestamp`]/[`Date`] behind a [`Clock`],
//! shared by the rest of the workspace.

mod countries;
mod load;
pub mod model;
pub mod money;
mod problem;
mod raw;
mod resume;
mod schema;
pub mod time;
mod validate;

pub use countries::country_alpha2;
pub use load::{
    fingerprint, load_dir, load_dir_with, load_files, MAX_CONFIG_BYTES, MAX_FILE_BYTES,
};
pub use model::{
    advertiser_item, canonical_net, interest_topic, looks_iab1, Advertiser, AllowBlock, At,
    Attribution, Audience, AudienceKind, AudienceRule, Bidding, Budget, ChargeOn, Config, Creative,
    CreativeKind, CurrencyRates, DaypartSlot, DaypartZone, Dayparts, Device, EncryptionScheme,
    Exchange, Flight, FrequencyCap, Image, Keywords, LineItem, ListSource, Media, MediaFile,
    NativeCreative, OpenTime, OpenWeek, Order, Os, Placement, PriceEncryption, Service, Summary,
    Targeting,
};
pub use money::{Grouped, Micros, MoneyError, Rate, RateError, MAX_AMOUNT};
pub use problem::{Problem, Problems};
pub use schema::{json_schema, json_schema_of, FileKind};
pub use time::{Clock, Date, ManualClock, SystemClock, TimeError, Timestamp, Weekday};
pub use validate::Secrets;
