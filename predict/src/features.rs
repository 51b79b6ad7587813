//! Hashed features of a candidate impression.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rapidhash::v3::{rapidhash_v3_seeded, RapidSecrets};
use std::fmt;

/// Most hashed ids one [`Features`] holds, fields and crosses together (the
/// bias is implicit and not counted).
pub const MAX_FEATURES: usize = 32;

/// The hash seed of [`Params::default`](crate::Params) and of
/// [`Model::priors_only`](crate::Model::priors_only).
pub const DEFAULT_SEED: u64 = 0x7072_6564_6963_7431;

/// The field names the bidder should use, so that the features it builds at
/// bid time are the ones a model was trained on. Values are the bidder's
/// canonical spelling (ids as configured, country as ISO 3166-1 alpha-3 as
/// OpenRTB has it, `hour` as `0`..`23`); whatever the spelling, it must be
/// the same at training and at serving.
pub mod field {
    /// Line item id.
    pub const LINE_ITEM: &str = "li";
    /// Creative id.
    pub const CREATIVE: &str = "creative";
    /// Slot size, `300x250`.
    pub const SIZE: &str = "size";
    /// Placement: tag id or position on the page.
    pub const PLACEMENT: &str = "placement";
    /// Site domain (for site requests).
    pub const SITE: &str = "site";
    /// App bundle (for app requests).
    pub const APP: &str = "app";
    /// Device type.
    pub const DEVICE: &str = "device";
    /// Operating system.
    pub const OS: &str = "os";
    /// Country.
    pub const COUNTRY: &str = "country";
    /// Hour of day of the request, `0`..`23`.
    pub const HOUR: &str = "hour";
    /// The keyword the line item matched.
    pub const KEYWORD: &str = "keyword";
    /// Kind of audience that matched (view, interest, product, ...).
    pub const AUDIENCE_KIND: &str = "audience_kind";
    /// Exchange the request came from.
    pub const EXCHANGE: &str = "exchange";
}

/// Crosses worth having from the start: a line item does differently on
/// different sites and apps (the main thing a global site weight cannot
/// say), and a creative differently in different slot sizes and on
/// different devices (what renders well on a desktop may not on a phone).
/// A request has a site or an app, so three of these are present: 12
/// fields and these crosses make 15 ids, 84 characters in compact form.
pub const DEFAULT_CROSSES: &[(&str, &str)] = &[
    (field::LINE_ITEM, field::SITE),
    (field::LINE_ITEM, field::APP),
    (field::CREATIVE, field::SIZE),
    (field::CREATIVE, field::DEVICE),
];

/// The fields the bidder builds every candidate's features from, in the
/// order it gives them: with [`DEFAULT_CROSSES`], what
/// [`FeatureHasher::bid_features`] hashes.
pub const BID_FIELDS: [&str; 12] = [
    field::LINE_ITEM,
    field::CREATIVE,
    field::SIZE,
    field::SITE,
    field::APP,
    field::DEVICE,
    field::OS,
    field::COUNTRY,
    field::HOUR,
    field::KEYWORD,
    field::AUDIENCE_KIND,
    field::EXCHANGE,
];

/// Whether two names are one (`==` is not `const` for `str`).
const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// [`DEFAULT_CROSSES`] as positions in [`BID_FIELDS`], found when this
/// compiles (a cross of a field not in the list fails the build).
const BID_CROSSES: [(usize, usize); DEFAULT_CROSSES.len()] = {
    const fn position(name: &str) -> usize {
        let mut i = 0;
        while i < BID_FIELDS.len() {
            if same(BID_FIELDS[i], name) {
                return i;
            }
            i += 1;
        }
        panic!("a default cross names a field the bidder does not give");
    }
    // Distinct names, so that a name's first value is its only one, as
    // `features` crosses it.
    let mut i = 0;
    while i < BID_FIELDS.len() {
        let mut j = 0;
        while j < i {
            assert!(!same(BID_FIELDS[i], BID_FIELDS[j]), "a bid field twice");
            j += 1;
        }
        i += 1;
    }
    // Every field and cross fits: `bid_features` has no error to return.
    assert!(BID_FIELDS.len() + DEFAULT_CROSSES.len() <= MAX_FEATURES);
    let mut out = [(0, 0); DEFAULT_CROSSES.len()];
    let mut c = 0;
    while c < out.len() {
        out[c] = (
            position(DEFAULT_CROSSES[c].0),
            position(DEFAULT_CROSSES[c].1),
        );
        c += 1;
    }
    out
};

/// Builds [`Features`] for one hash seed. Cheap to copy; a model hands out
/// its own ([`Model::hasher`](crate::Model::hasher)) so that features built
/// at serving time match those it was trained on.
#[derive(Clone, Copy)]
pub struct FeatureHasher {
    seed: u64,
    secrets: RapidSecrets,
    tag: u16,
    /// The hashes of [`BID_FIELDS`]' names, made once: each bid hashed
    /// them again, about a tenth of its features' cost.
    bid_names: [u64; BID_FIELDS.len()],
}

impl fmt::Debug for FeatureHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeatureHasher")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// Why features could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    #[error("{count} features (fields and crosses); at most {MAX_FEATURES} fit")]
    TooMany { count: usize },
}

/// Why a compact text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    #[error("compact features are {len} characters long; at most {MAX_COMPACT_LEN} are read")]
    TooLong { len: usize },
    #[error("compact features are not web-safe base64")]
    Encoding,
    #[error("compact features decode to {len} bytes, not 3 plus a multiple of 4")]
    Length { len: usize },
    #[error("compact features of format version {0}; this build reads version {COMPACT_VERSION}")]
    Version(u8),
}

const COMPACT_VERSION: u8 = 1;
const COMPACT_HEADER: usize = 3;
const COMPACT_MAX_BYTES: usize = COMPACT_HEADER + 4 * MAX_FEATURES;
/// Longest compact text: [`MAX_FEATURES`] ids, unpadded base64.
pub const MAX_COMPACT_LEN: usize = (COMPACT_MAX_BYTES * 4).div_ceil(3);

impl FeatureHasher {
    pub const fn new(seed: u64) -> FeatureHasher {
        let secrets = RapidSecrets::seed(seed);
        // Travels with every Features and in every compact text: features
        // hashed with another seed are noise to a model, and this is how a
        // model or a trainer tells (16 bits: a guard against mix-ups, one
        // in 65,536 pairs of seeds share one).
        let tag = (rapidhash_v3_seeded(b"predict feature tag", &secrets) >> 48) as u16;
        let mut bid_names = [0; BID_FIELDS.len()];
        let mut i = 0;
        while i < BID_FIELDS.len() {
            bid_names[i] = rapidhash_v3_seeded(BID_FIELDS[i].as_bytes(), &secrets);
            i += 1;
        }
        FeatureHasher {
            seed,
            secrets,
            tag,
            bid_names,
        }
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub(crate) fn tag(&self) -> u16 {
        self.tag
    }

    /// Hashes `(field, value)` pairs and the crosses of pairs of fields.
    ///
    /// - A pair with an empty value is left out: a missing field (`app` on a
    ///   site request) can be passed as `""`.
    /// - A field may be given more than once (several keywords); a cross
    ///   uses its first non-empty value.
    /// - A cross naming a field that is absent is left out, so one list of
    ///   crosses ([`DEFAULT_CROSSES`]) serves site and app requests.
    /// - `(a, b)` and `(b, a)` are different crosses.
    ///
    /// Does not allocate.
    pub fn features(
        &self,
        fields: &[(&str, &str)],
        crosses: &[(&str, &str)],
    ) -> Result<Features, FeatureError> {
        let mut out = Features {
            ids: [0; MAX_FEATURES],
            len: 0,
            tag: self.tag,
        };
        // Field and value hashes of each kept pair, for the crosses.
        let mut keys: [(&str, u64, u64); MAX_FEATURES] = [("", 0, 0); MAX_FEATURES];
        let mut kept = 0;
        let mut count = 0;
        for &(name, value) in fields {
            if value.is_empty() {
                continue;
            }
            count += 1;
            if kept == MAX_FEATURES {
                continue;
            }
            // Name and value hashed apart, then their hashes together: no
            // separator byte a value could contain, and crosses reuse them.
            let n = self.hash(name.as_bytes());
            let v = self.hash(value.as_bytes());
            keys[kept] = (name, n, v);
            kept += 1;
            out.push(self.combine(&words([n, v, 0, 0]), 16));
        }
        for &(a, b) in crosses {
            let find = |name: &str| keys[..kept].iter().find(|k| k.0 == name);
            let (Some(&(_, na, va)), Some(&(_, nb, vb))) = (find(a), find(b)) else {
                continue;
            };
            count += 1;
            if (out.len as usize) < MAX_FEATURES {
                out.push(self.combine(&words([na, va, nb, vb]), 32));
            }
        }
        if count > MAX_FEATURES {
            return Err(FeatureError::TooMany { count });
        }
        Ok(out)
    }

    /// What [`FeatureHasher::features`] makes of `values` given as the
    /// values of [`BID_FIELDS`], in its order, with [`DEFAULT_CROSSES`]:
    /// the same ids, with the names' hashes made once ([`FeatureHasher::new`])
    /// and the crosses found by position instead of by name. Twelve fields
    /// and four crosses always fit.
    pub fn bid_features(&self, values: &[&str; BID_FIELDS.len()]) -> Features {
        let mut out = Features {
            ids: [0; MAX_FEATURES],
            len: 0,
            tag: self.tag,
        };
        // A value's hash, or none for an empty value (left out, as its
        // crosses are).
        let mut hashed = [None; BID_FIELDS.len()];
        for (i, value) in values.iter().enumerate() {
            if value.is_empty() {
                continue;
            }
            let (n, v) = (self.bid_names[i], self.hash(value.as_bytes()));
            hashed[i] = Some(v);
            out.push(self.combine(&words([n, v, 0, 0]), 16));
        }
        for (a, b) in BID_CROSSES {
            if let (Some(va), Some(vb)) = (hashed[a], hashed[b]) {
                let (na, nb) = (self.bid_names[a], self.bid_names[b]);
                out.push(self.combine(&words([na, va, nb, vb]), 32));
            }
        }
        out
    }

    /// The id [`FeatureHasher::bid_features`] gives the audience kind
    /// `kind` (a field of no cross): what a bid's tracking URLs leave out
    /// of their features and the bidder puts back when it reads them
    /// ([`Features::without`], [`Features::with`]).
    pub fn audience_kind_id(&self, kind: &str) -> u32 {
        const AT: usize = {
            let mut i = 0;
            while !same(BID_FIELDS[i], field::AUDIENCE_KIND) {
                i += 1;
            }
            // One id to leave out and put back: no cross of it.
            let mut c = 0;
            while c < DEFAULT_CROSSES.len() {
                assert!(!same(DEFAULT_CROSSES[c].0, field::AUDIENCE_KIND));
                assert!(!same(DEFAULT_CROSSES[c].1, field::AUDIENCE_KIND));
                c += 1;
            }
            i
        };
        let (n, v) = (self.bid_names[AT], self.hash(kind.as_bytes()));
        self.combine(&words([n, v, 0, 0]), 16)
    }

    /// Whether `features` were hashed under this hasher's seed.
    pub fn hashed(&self, features: &Features) -> bool {
        features.tag == self.tag
    }

    fn hash(&self, bytes: &[u8]) -> u64 {
        rapidhash_v3_seeded(bytes, &self.secrets)
    }

    /// The top 32 bits of the hash of `len` bytes of `buf`: a model masks
    /// off its low `bits`, so ids do not depend on the table size.
    fn combine(&self, buf: &[u8; 32], len: usize) -> u32 {
        (self.hash(&buf[..len]) >> 32) as u32
    }
}

fn words(w: [u64; 4]) -> [u8; 32] {
    let mut buf = [0u8; 32];
    for (chunk, w) in buf.chunks_exact_mut(8).zip(w) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    buf
}

/// The hashed ids of one candidate impression: what a model scores and a
/// trainer learns from. Fixed size, no heap.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Features {
    ids: [u32; MAX_FEATURES],
    len: u8,
    /// Which seed hashed them (see [`FeatureHasher::new`]).
    tag: u16,
}

impl Features {
    /// The hashed ids, fields first, then crosses.
    pub fn ids(&self) -> &[u32] {
        &self.ids[..usize::from(self.len)]
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn tag(&self) -> u16 {
        self.tag
    }

    fn push(&mut self, id: u32) {
        self.ids[usize::from(self.len)] = id;
        self.len += 1;
    }

    /// These features without `id` (if they have it), the others in order.
    pub fn without(&self, id: u32) -> Features {
        let mut out = Features {
            ids: [0; MAX_FEATURES],
            len: 0,
            tag: self.tag,
        };
        for &i in self.ids() {
            if i != id {
                out.push(i);
            }
        }
        out
    }

    /// These features with `id` after them, unless they have it already
    /// (or are full).
    pub fn with(&self, id: u32) -> Features {
        let mut out = *self;
        if !self.ids().contains(&id) && self.len() < MAX_FEATURES {
            out.push(id);
        }
        out
    }

    /// The ids and the seed tag as unpadded web-safe base64, safe in a URL
    /// query without escaping: ⌈(3 + 4·ids)·4/3⌉ characters, 84 for 15 ids.
    /// [`Features::from_compact`] gives back exactly these features, so a
    /// trainer learns from what was scored at bid time even if field
    /// values or the list of crosses change in between.
    ///
    /// Does not allocate.
    pub fn to_compact(&self) -> Compact {
        let (bytes, used) = self.compact_bytes();
        let mut text = [0u8; MAX_COMPACT_LEN];
        let len = URL_SAFE_NO_PAD
            .encode_slice(&bytes[..used], &mut text)
            .unwrap_or_else(|_| {
                unreachable!("MAX_COMPACT_LEN holds the encoding of MAX_FEATURES ids")
            });
        Compact {
            text,
            len: len as u8,
        }
    }

    /// [`Features::to_compact`]'s text appended to `out`: a tracking URL
    /// takes it so, without a copy on the stack whose text is checked for
    /// UTF-8 again (some 250 instructions a bid).
    pub fn push_compact(&self, out: &mut String) {
        let (bytes, used) = self.compact_bytes();
        URL_SAFE_NO_PAD.encode_string(&bytes[..used], out);
    }

    /// The bytes the compact form encodes, and how many of them there are.
    fn compact_bytes(&self) -> ([u8; COMPACT_MAX_BYTES], usize) {
        let mut bytes = [0u8; COMPACT_MAX_BYTES];
        bytes[0] = COMPACT_VERSION;
        bytes[1..COMPACT_HEADER].copy_from_slice(&self.tag.to_le_bytes());
        for (chunk, id) in bytes[COMPACT_HEADER..].chunks_exact_mut(4).zip(self.ids()) {
            chunk.copy_from_slice(&id.to_le_bytes());
        }
        (bytes, COMPACT_HEADER + 4 * self.len())
    }

    /// Reads [`Features::to_compact`]'s text back. The seed tag comes with
    /// it: a model answers its priors for features of another seed, and a
    /// trainer refuses them.
    pub fn from_compact(text: &str) -> Result<Features, CompactError> {
        if text.len() > MAX_COMPACT_LEN {
            return Err(CompactError::TooLong { len: text.len() });
        }
        // Room for what the decoder estimates, which rounds up to whole
        // 4-character groups.
        let mut bytes = [0u8; MAX_COMPACT_LEN.div_ceil(4) * 3];
        let len = URL_SAFE_NO_PAD
            .decode_slice(text, &mut bytes)
            .map_err(|_| CompactError::Encoding)?;
        let bytes = &bytes[..len];
        if len < COMPACT_HEADER
            || !(len - COMPACT_HEADER).is_multiple_of(4)
            || len > COMPACT_MAX_BYTES
        {
            return Err(CompactError::Length { len });
        }
        if bytes[0] != COMPACT_VERSION {
            return Err(CompactError::Version(bytes[0]));
        }
        let mut out = Features {
            ids: [0; MAX_FEATURES],
            len: 0,
            tag: u16::from_le_bytes([bytes[1], bytes[2]]),
        };
        for chunk in bytes[COMPACT_HEADER..].chunks_exact(4) {
            out.push(u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]));
        }
        Ok(out)
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Features")
            .field("ids", &self.ids())
            .field("tag", &self.tag)
            .finish()
    }
}

/// [`Features`] in compact text form, on the stack.
#[derive(Clone, Copy)]
pub struct Compact {
    text: [u8; MAX_COMPACT_LEN],
    len: u8,
}

impl Compact {
    pub fn as_str(&self) -> &str {
        // Base64 output is ASCII.
        std::str::from_utf8(&self.text[..usize::from(self.len)])
            .unwrap_or_else(|_| unreachable!("base64 is ASCII"))
    }
}

impl fmt::Display for Compact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Compact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl AsRef<str> for Compact {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: FeatureHasher = FeatureHasher::new(DEFAULT_SEED);

    /// A realistic candidate: the 12 fields of a site request.
    fn candidate() -> [(&'static str, &'static str); 13] {
        [
            (field::LINE_ITEM, "li-1042"),
            (field::CREATIVE, "cr-88231"),
            (field::SIZE, "300x250"),
            (field::PLACEMENT, "above-the-fold"),
            (field::SITE, "news.example.com"),
            (field::APP, ""),
            (field::DEVICE, "mobile"),
            (field::OS, "ios"),
            (field::COUNTRY, "USA"),
            (field::HOUR, "14"),
            (field::KEYWORD, "tents"),
            (field::AUDIENCE_KIND, "interest"),
            (field::EXCHANGE, "openx"),
        ]
    }

    #[test]
    fn ids_are_pinned() {
        // A model file outlives the build that wrote it: if this changes,
        // every saved model and every journaled compact text is silently
        // scored with the wrong weights. Change FORMAT_VERSION with it.
        let f = H
            .features(&[(field::SITE, "news.example.com")], &[])
            .unwrap();
        assert_eq!(f.ids(), &[PINNED_SITE_ID]);
        let f = H
            .features(&[("li", "li-1"), ("site", "s")], &[("li", "site")])
            .unwrap();
        assert_eq!(f.ids()[2], PINNED_CROSS_ID);
        assert_eq!(H.tag(), PINNED_TAG);
    }
    const PINNED_SITE_ID: u32 = 3683589154;
    const PINNED_TAG: u16 = 38697;
    const PINNED_CROSS_ID: u32 = 369422915;

    proptest::proptest! {
        /// The bidder's fixed fields give the ids the general path gives
        /// for the same pairs: a model trained on either scores both.
        #[test]
        fn bid_features_are_the_general_paths(
            seed in proptest::prelude::any::<u64>(),
            values in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(String::new()),
                    "[a-z0-9.x-]{1,12}",
                    ".{0,40}",
                ],
                BID_FIELDS.len(),
            ),
        ) {
            let h = FeatureHasher::new(seed);
            let values: [&str; BID_FIELDS.len()] =
                std::array::from_fn(|i| values[i].as_str());
            let pairs: Vec<(&str, &str)> = BID_FIELDS.iter().copied().zip(values).collect();
            proptest::prop_assert_eq!(
                h.bid_features(&values),
                h.features(&pairs, DEFAULT_CROSSES).unwrap()
            );
        }
    }

    #[test]
    fn the_audience_kind_comes_out_and_goes_back_as_one_id() {
        let mut values = [
            "li-1",
            "cr-1",
            "300x250",
            "a.example",
            "",
            "2",
            "ios",
            "USA",
            "13",
            "tent",
            "views",
            "x",
        ];
        let with_kind = H.bid_features(&values);
        values[10] = "";
        let without_kind = H.bid_features(&values);
        let id = H.audience_kind_id("views");
        assert_ne!(id, H.audience_kind_id("products"));
        assert_eq!(with_kind.without(id), without_kind);
        assert_eq!(without_kind.without(id), without_kind);
        let back = without_kind.with(id);
        let mut a = back.ids().to_vec();
        let mut b = with_kind.ids().to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b, "the same ids, the kind's last");
        assert_eq!(back.with(id), back, "never twice");
        assert!(H.hashed(&back));
        assert!(!FeatureHasher::new(DEFAULT_SEED + 1).hashed(&back));
    }

    #[test]
    fn twelve_fields_and_default_crosses_make_fifteen_ids() {
        let f = H.features(&candidate(), DEFAULT_CROSSES).unwrap();
        // The empty app is left out, and so is the li × app cross.
        assert_eq!(f.len(), 15);
        let compact = f.to_compact();
        assert_eq!(compact.as_str().len(), 84);
        // Appended to a URL, the same text after what was there.
        let mut url = String::from("&f=");
        f.push_compact(&mut url);
        assert_eq!(url, format!("&f={}", compact.as_str()));
        assert_eq!(Features::from_compact(compact.as_str()), Ok(f));
    }

    #[test]
    fn the_same_pairs_give_the_same_ids_and_others_differ() {
        let a = H.features(&candidate(), DEFAULT_CROSSES).unwrap();
        assert_eq!(a, H.features(&candidate(), DEFAULT_CROSSES).unwrap());
        let ids = |pairs: &[(&str, &str)], crosses: &[(&str, &str)]| {
            H.features(pairs, crosses).unwrap().ids().to_vec()
        };
        // The field name is part of the feature.
        assert_ne!(ids(&[("site", "x")], &[]), ids(&[("app", "x")], &[]));
        // No ambiguity between where the name ends and the value starts.
        assert_ne!(ids(&[("ab", "c")], &[]), ids(&[("a", "bc")], &[]));
        // Crosses are ordered.
        let ab = ids(&[("a", "1"), ("b", "2")], &[("a", "b")]);
        let ba = ids(&[("a", "1"), ("b", "2")], &[("b", "a")]);
        assert_eq!(ab[..2], ba[..2]);
        assert_ne!(ab[2], ba[2]);
        // Another seed hashes elsewhere and is told apart.
        let other = FeatureHasher::new(DEFAULT_SEED + 1);
        let b = other.features(&candidate(), DEFAULT_CROSSES).unwrap();
        assert_ne!(a.ids(), b.ids());
        assert_ne!(a.tag(), b.tag());
    }

    #[test]
    fn crosses_of_absent_fields_are_left_out_and_repeats_cross_their_first_value() {
        let f = H
            .features(
                &[("li", "1"), ("keyword", "a"), ("keyword", "b")],
                &[("li", "site"), ("li", "keyword")],
            )
            .unwrap();
        assert_eq!(f.len(), 4);
        let g = H
            .features(&[("li", "1"), ("keyword", "a")], &[("li", "keyword")])
            .unwrap();
        assert_eq!(f.ids()[3], g.ids()[2]);
    }

    #[test]
    fn more_than_the_capacity_is_an_error() {
        let values: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("keyword", v.as_str())).collect();
        assert!(H.features(&pairs[..32], &[]).is_ok());
        assert_eq!(
            H.features(&pairs[..33], &[]),
            Err(FeatureError::TooMany { count: 33 })
        );
        assert_eq!(
            H.features(&pairs[..32], &[("keyword", "keyword")]),
            Err(FeatureError::TooMany { count: 33 })
        );
        let full = H.features(&pairs[..32], &[]).unwrap();
        let compact = full.to_compact();
        assert_eq!(compact.as_str().len(), MAX_COMPACT_LEN);
        assert_eq!(Features::from_compact(compact.as_str()), Ok(full));
    }

    #[test]
    fn no_features_round_trip_too() {
        let f = H.features(&[("app", "")], DEFAULT_CROSSES).unwrap();
        assert!(f.is_empty());
        assert_eq!(Features::from_compact(f.to_compact().as_str()), Ok(f));
    }

    #[test]
    fn bad_compact_texts_are_errors() {
        let good = H.features(&candidate(), &[]).unwrap().to_compact();
        let good = good.as_str();
        assert_eq!(
            Features::from_compact(&"A".repeat(MAX_COMPACT_LEN + 1)),
            Err(CompactError::TooLong {
                len: MAX_COMPACT_LEN + 1
            })
        );
        assert_eq!(
            Features::from_compact(&good.replace(&good[5..6], "+")),
            Err(CompactError::Encoding)
        );
        assert_eq!(
            Features::from_compact(""),
            Err(CompactError::Length { len: 0 })
        );
        // One byte short of whole ids.
        let short = URL_SAFE_NO_PAD.encode([1u8, 0, 0, 9, 9, 9]);
        assert_eq!(
            Features::from_compact(&short),
            Err(CompactError::Length { len: 6 })
        );
        let v2 = URL_SAFE_NO_PAD.encode([2u8, 0, 0]);
        assert_eq!(Features::from_compact(&v2), Err(CompactError::Version(2)));
    }
}
