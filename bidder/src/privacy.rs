//! May this request's user be targeted on behavioural data? Behavioural
//! audience kinds (`views`, `interests`) and event recording need the user's
//! data; contextual kinds (`products`, `categories`, keywords) never ask.
//!
//! [`behavioural`] reads the request's privacy signals and answers `Ok(())`
//! or the first [`Restriction`] found. The signals honoured, in the order
//! they are checked (cheapest first, so the TC string is decoded only when
//! nothing simpler already forbids):
//!
//! 1. **COPPA**: `regs.coppa` non-zero → [`Restriction::Coppa`].
//! 2. **Limit Ad Tracking / Do Not Track**: `device.lmt` or `device.dnt`
//!    non-zero → [`Restriction::LimitAdTracking`].
//! 3. **US Privacy (CCPA) string**: `regs.us_privacy` (2.5:
//!    `regs.ext.us_privacy`), `"1YYN"` = version, notice, opt-out of sale,
//!    LSPA. A third character `Y` (either case) →
//!    [`Restriction::UsPrivacyOptOut`]. A string that is not version 1 with
//!    exactly three `Y`/`N`/`-` flags is ignored.
//! 4. **GDPR / TCF v2**: GDPR applies when `regs.gdpr` (2.5: `regs.ext.gdpr`)
//!    is non-zero, or when `regs.gpp_sid` lists section 2 (TCF EU v2). Then
//!    the consent string — `user.consent` (2.5: `user.ext.consent`), else the
//!    TCF EU v2 section of the GPP string — must decode as a TCF v2 TC string
//!    whose core segment grants
//!    - **consent** for purposes 1 (store/access information on a device),
//!      3 (create a personalised ads profile) **and** 4 (select personalised
//!      ads): all three, because a behavioural audience both builds and uses
//!      a profile. Legitimate interest does not count: TCF policy does not
//!      allow it for purposes 1, 3 and 4;
//!    - **vendor consent** for [`PrivacySettings::vendor_id`] (legitimate
//!      interest for the vendor does not count either).
//!
//!    Anything else — no string, a string that does not decode, a TCF v1
//!    string, a missing purpose or vendor — is [`Restriction::GdprNoConsent`].
//!    Only the core segment is read (disclosed/allowed vendors and publisher
//!    TC segments play no part in this decision). Two limits on top of the
//!    decoder, both answering "no consent": a string whose vendor ranges are
//!    out of bounds (see [`MAX_VENDOR_ID`]) and, for now, a string that
//!    carries publisher restrictions, which the decoder misreads (see
//!    `tcf_grants`).
//! 5. **GPP**: `regs.gpp` with `regs.gpp_sid` (2.5: `regs.ext.gpp`,
//!    `regs.ext.gpp_sid`). Each applicable section — those listed in
//!    `gpp_sid`, or every section in the string when `gpp_sid` is empty —
//!    that is US National (7) or a US state (8–23) and records an opt-out of
//!    sale, of sharing (California, National) or of targeted advertising, or
//!    a Global Privacy Control signal (`Gpc` sub-section), →
//!    [`Restriction::GppOptOut`]; so does a US Privacy section (6) with
//!    opt-out of sale. A GPP string or section that does not decode is
//!    ignored, like a malformed US Privacy string; unknown section ids are
//!    skipped.
//!
//! Decoding: TC strings and GPP sections are decoded with the `iab_gpp`
//! crate. Its GPP header reader misnumbers the sections of a header with
//! several single-id entries (it adds each offset to the previous *offset*
//! rather than to the previous id) and rejects a whole string for one
//! section id it does not know, so the GPP header — a dozen bits and a
//! Fibonacci range — is read here and sections are handed to the crate one
//! by one.

use std::fmt;
use std::str::FromStr;

use iab_gpp::sections::tcfeuv2::TcfEuV2;
use iab_gpp::sections::us_common::OptOut;
use iab_gpp::sections::uspv1::{Flag, UspV1};
use iab_gpp::sections::{
    usca, usco, usct, usde, usfl, usia, usmn, usmt, usnat, usne, usnh, usnj, usor, ustn, ustx,
    usut, usva,
};
use ortb::BidRequest;

/// Why behavioural data may not be used for this request.
///
/// Declared in the order of [`Restriction::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Restriction {
    /// `regs.coppa`: the audience may be children.
    Coppa,
    /// GDPR applies and no TCF v2 consent covers purposes 1, 3, 4 and our vendor id.
    GdprNoConsent,
    /// `device.lmt` or `device.dnt`.
    LimitAdTracking,
    /// The US Privacy string opts out of sale.
    UsPrivacyOptOut,
    /// An applicable US section of the GPP string opts out of sale, sharing
    /// or targeted advertising, or carries a Global Privacy Control signal.
    GppOptOut,
}

impl Restriction {
    pub const ALL: [Restriction; 5] = [
        Restriction::Coppa,
        Restriction::GdprNoConsent,
        Restriction::LimitAdTracking,
        Restriction::UsPrivacyOptOut,
        Restriction::GppOptOut,
    ];

    /// The snake_case label used in metrics and `/v1/explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::Coppa => "coppa",
            Restriction::GdprNoConsent => "gdpr_no_consent",
            Restriction::LimitAdTracking => "limit_ad_tracking",
            Restriction::UsPrivacyOptOut => "us_privacy_opt_out",
            Restriction::GppOptOut => "gpp_opt_out",
        }
    }
}

impl fmt::Display for Restriction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The default [`PrivacySettings::vendor_id`]. IAB Europe's Global Vendor
/// List never assigns id 0, so with this placeholder no TC string grants
/// consent: GDPR traffic stays contextual until the real id is configured.
pub const UNSET_VENDOR_ID: u16 = 0;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivacySettings {
    /// Our vendor id on IAB Europe's Global Vendor List (TCF v2), looked up
    /// in the TC string's vendor consents. Default: [`UNSET_VENDOR_ID`].
    pub vendor_id: u16,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        PrivacySettings {
            vendor_id: UNSET_VENDOR_ID,
        }
    }
}

/// `Ok(())` when behavioural targeting is allowed; otherwise the first
/// restriction found (see the module docs for the signals and their order).
pub fn behavioural(req: &BidRequest<'_>, settings: &PrivacySettings) -> Result<(), Restriction> {
    let regs = req.regs.as_ref();
    if regs.is_some_and(|r| r.is_coppa()) {
        return Err(Restriction::Coppa);
    }
    if req
        .device
        .as_deref()
        .is_some_and(|d| is_set(d.lmt) || is_set(d.dnt))
    {
        return Err(Restriction::LimitAdTracking);
    }
    let Some(regs) = regs else {
        return Ok(());
    };
    if regs.us_privacy().is_some_and(|s| usp_opts_out(&s)) {
        return Err(Restriction::UsPrivacyOptOut);
    }

    let gpp_text = regs.gpp();
    // Longer strings than any honest one are not decoded (work per request
    // stays bounded); an undecoded string grants nothing.
    let gpp = gpp_text
        .as_deref()
        .filter(|t| t.len() <= MAX_SIGNAL_BYTES)
        .and_then(Gpp::parse);
    let gpp_sid = regs.gpp_sid();

    if is_set(regs.gdpr()) || gpp_sid.contains(&TCF_EU_V2) {
        let consent = req
            .user
            .as_deref()
            .and_then(|u| u.consent())
            .filter(|c| !c.is_empty() && c.len() <= MAX_SIGNAL_BYTES);
        let granted = match (consent.as_deref(), &gpp) {
            (Some(tc), _) => tcf_grants(tc, settings.vendor_id),
            (None, Some(gpp)) => gpp
                .section(TCF_EU_V2)
                .is_some_and(|tc| tcf_grants(tc, settings.vendor_id)),
            (None, None) => false,
        };
        if !granted {
            return Err(Restriction::GdprNoConsent);
        }
    }

    if gpp.is_some_and(|gpp| gpp.opts_out(&gpp_sid)) {
        return Err(Restriction::GppOptOut);
    }
    Ok(())
}

/// Consent and GPP strings longer than this are not decoded: a TC string
/// naming every vendor of today's Global Vendor List is a few KB.
pub const MAX_SIGNAL_BYTES: usize = 16 * 1024;

/// OpenRTB flags are 0/1; the model coerces `true` to 1. Anything non-zero
/// is read as set, the safe side.
fn is_set(flag: Option<i32>) -> bool {
    flag.is_some_and(|v| v != 0)
}

/// US Privacy string v1: `1` + notice + opt-out of sale + LSPA, each `Y`,
/// `N` or `-`. Malformed strings say nothing.
fn usp_opts_out(usp: &str) -> bool {
    let &[b'1', notice, sale, lspa] = usp.as_bytes() else {
        return false;
    };
    let flags = [notice, sale, lspa].map(|c| c.to_ascii_uppercase());
    flags.iter().all(|c| matches!(c, b'Y' | b'N' | b'-')) && flags[1] == b'Y'
}

// ---------------------------------------------------------------- TCF v2

/// TCF purposes whose consent behavioural targeting needs: 1 store and/or
/// access information on a device, 3 create a personalised ads profile,
/// 4 select personalised ads.
const REQUIRED_PURPOSES: [u16; 3] = [1, 3, 4];

/// The highest vendor id a TC string may name (`MaxVendorId` and every
/// range end). The Global Vendor List's ids are in the low thousands today.
/// The decoder expands every range entry into a list before deduplicating,
/// so without a bound a few hundred bytes of crafted consent string (ranges
/// 1–65535, again and again) cost seconds of CPU per request.
pub const MAX_VENDOR_ID: u32 = 10_000;

/// Fixed-width fields of the TC string core segment before `MaxVendorId`
/// (version through `PublisherCC`).
const TC_CORE_FIXED_BITS: usize = 213;

/// Does this TCF v2 TC string grant purposes 1, 3 and 4 and vendor consent
/// for `vendor_id`?
///
/// Only the core segment (before the first `.`) is decoded. A string with
/// publisher restrictions counts as no consent for now: `iab_gpp` 0.1.2
/// reads restriction entries with a vendor-section layout (16-bit
/// `MaxVendorId` + encoding bit) where the TCF core has only `NumEntries`
/// and range entries, so such strings fail to decode or decode wrongly.
/// Failing closed keeps a restriction on purposes 1/3/4 for our vendor from
/// ever being missed; honour restrictions here once the decoder reads them.
fn tcf_grants(consent: &str, vendor_id: u16) -> bool {
    if vendor_id == UNSET_VENDOR_ID {
        return false;
    }
    let core = consent.split('.').next().unwrap_or_default();
    if vet_tc_core(core).is_none() {
        return false;
    }
    TcfEuV2::from_str(core).is_ok_and(|tc| {
        REQUIRED_PURPOSES
            .iter()
            .all(|p| tc.core.purpose_consents.contains(p))
            && tc.core.vendor_consents.contains(&vendor_id)
    })
}

/// Walks the core segment's variable part before the decoder sees it:
/// version 2; both vendor sections with `MaxVendorId` ≤ [`MAX_VENDOR_ID`]
/// and, when range-encoded, every entry within 1..=`MaxVendorId` and all
/// entries together covering at most `MaxVendorId` ids (as any honest
/// encoder writes them: disjoint runs); no publisher restrictions. `None`
/// when the string fails any of these.
fn vet_tc_core(core: &str) -> Option<()> {
    let mut bits = Bits::new(core);
    if bits.read(6)? != 2 {
        return None;
    }
    bits.skip(TC_CORE_FIXED_BITS - 6)?;
    // Vendor consents, then vendor legitimate interests.
    for _ in 0..2 {
        let max = bits.read(16)?;
        if max > MAX_VENDOR_ID {
            return None;
        }
        if bits.read(1)? == 0 {
            bits.skip(max as usize)?;
            continue;
        }
        let mut covered = 0;
        for _ in 0..bits.read(12)? {
            let (first, last) = if bits.read(1)? == 1 {
                (bits.read(16)?, bits.read(16)?)
            } else {
                let id = bits.read(16)?;
                (id, id)
            };
            if first == 0 || first > last || last > max {
                return None;
            }
            covered += last - first + 1;
            if covered > max {
                return None;
            }
        }
    }
    // NumPubRestrictions.
    (bits.read(12)? == 0).then_some(())
}

// ---------------------------------------------------------------- GPP

/// GPP section ids (IAB GPP section registry).
const TCF_EU_V2: i32 = 2;
const USP_V1: i32 = 6;
const US_NAT: i32 = 7;

/// Most section ids one GPP header may list; there are two dozen sections.
const MAX_GPP_SECTIONS: usize = 64;

/// A GPP string split into its sections, each tagged with its id from the
/// header. Sections are decoded on demand.
struct Gpp<'s> {
    sections: Vec<(i32, &'s str)>,
}

impl<'s> Gpp<'s> {
    /// `None` for anything that is not a GPP v1 string whose header lists as
    /// many sections as follow it.
    fn parse(text: &'s str) -> Option<Gpp<'s>> {
        let mut parts = text.split('~');
        let ids = gpp_header_ids(parts.next()?)?;
        let sections: Vec<&str> = parts.collect();
        (ids.len() == sections.len()).then(|| Gpp {
            sections: ids.into_iter().zip(sections).collect(),
        })
    }

    fn section(&self, id: i32) -> Option<&'s str> {
        self.sections
            .iter()
            .find(|(i, _)| *i == id)
            .map(|&(_, s)| s)
    }

    /// Does an applicable US section opt out? Applicable: listed in
    /// `gpp_sid`, or any section when the exchange sent no `gpp_sid`.
    fn opts_out(&self, gpp_sid: &[i32]) -> bool {
        self.sections
            .iter()
            .filter(|(id, _)| gpp_sid.is_empty() || gpp_sid.contains(id))
            .any(|&(id, section)| us_section_opts_out(id, section))
    }
}

/// The section ids of a GPP header: type 3, version 1, then a Fibonacci
/// range whose entries are offsets from the previous id (the previous
/// range's end for a range).
fn gpp_header_ids(header: &str) -> Option<Vec<i32>> {
    let mut bits = Bits::new(header);
    if bits.read(6)? != 3 || bits.read(6)? != 1 {
        return None;
    }
    let mut ids = Vec::new();
    let mut last = 0i32;
    for _ in 0..bits.read(12)? {
        if bits.read(1)? == 1 {
            let first = last.checked_add(bits.fibonacci()?)?;
            last = first.checked_add(bits.fibonacci()?)?;
            if (last - first) as usize >= MAX_GPP_SECTIONS {
                return None;
            }
            ids.extend(first..=last);
        } else {
            last = last.checked_add(bits.fibonacci()?)?;
            ids.push(last);
        }
        if ids.len() > MAX_GPP_SECTIONS {
            return None;
        }
    }
    Some(ids)
}

fn opted_out(o: &OptOut) -> bool {
    *o == OptOut::OptedOut
}

/// A US state section: opt-out of sale or of targeted advertising, and the
/// GPC sub-section where the state's section has one.
macro_rules! state_opts_out {
    ($section:expr, $ty:ty) => {
        <$ty>::from_str($section).is_ok_and(|s| {
            opted_out(&s.core.sale_opt_out) || opted_out(&s.core.targeted_advertising_opt_out)
        })
    };
    ($section:expr, $ty:ty, gpc) => {
        <$ty>::from_str($section).is_ok_and(|s| {
            opted_out(&s.core.sale_opt_out)
                || opted_out(&s.core.targeted_advertising_opt_out)
                || s.gpc == Some(true)
        })
    };
}

/// Does this section record an opt-out that rules out behavioural
/// targeting? Non-US sections, unknown ids and sections that do not decode
/// say nothing.
fn us_section_opts_out(id: i32, section: &str) -> bool {
    match id {
        USP_V1 => UspV1::from_str(section).is_ok_and(|u| u.opt_out_sale == Flag::Yes),
        US_NAT => usnat::UsNat::from_str(section).is_ok_and(|s| {
            let (sale, sharing, targeted) = match &s.core {
                usnat::Core::V1(c) => (
                    &c.sale_opt_out,
                    &c.sharing_opt_out,
                    &c.targeted_advertising_opt_out,
                ),
                usnat::Core::V2(c) => (
                    &c.sale_opt_out,
                    &c.sharing_opt_out,
                    &c.targeted_advertising_opt_out,
                ),
                _ => return false,
            };
            opted_out(sale) || opted_out(sharing) || opted_out(targeted) || s.gpc == Some(true)
        }),
        // California has no targeted-advertising opt-out: sharing is its
        // cross-context behavioural advertising opt-out.
        8 => usca::UsCa::from_str(section).is_ok_and(|s| {
            opted_out(&s.core.sale_opt_out)
                || opted_out(&s.core.sharing_opt_out)
                || s.gpc == Some(true)
        }),
        9 => state_opts_out!(section, usva::UsVa),
        10 => state_opts_out!(section, usco::UsCo, gpc),
        11 => state_opts_out!(section, usut::UsUt),
        12 => state_opts_out!(section, usct::UsCt, gpc),
        13 => state_opts_out!(section, usfl::UsFl),
        14 => state_opts_out!(section, usmt::UsMt, gpc),
        15 => state_opts_out!(section, usor::UsOr, gpc),
        16 => state_opts_out!(section, ustx::UsTx, gpc),
        17 => state_opts_out!(section, usde::UsDe, gpc),
        18 => state_opts_out!(section, usia::UsIa, gpc),
        19 => state_opts_out!(section, usne::UsNe, gpc),
        20 => state_opts_out!(section, usnh::UsNh, gpc),
        21 => state_opts_out!(section, usnj::UsNj, gpc),
        22 => state_opts_out!(section, ustn::UsTn, gpc),
        23 => state_opts_out!(section, usmn::UsMn, gpc),
        _ => false,
    }
}

// ---------------------------------------------------------------- bits

/// Reads base64url text (6 bits a character, most significant first), the
/// encoding of TC strings and GPP strings alike.
struct Bits<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(text: &'a str) -> Bits<'a> {
        Bits {
            text: text.as_bytes(),
            at: 0,
        }
    }

    /// The next `n` (≤ 32) bits as an unsigned integer.
    fn read(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut value = 0u32;
        for _ in 0..n {
            let sextet = base64url(*self.text.get(self.at / 6)?)?;
            let bit = (sextet >> (5 - self.at % 6)) & 1;
            value = (value << 1) | u32::from(bit);
            self.at += 1;
        }
        Some(value)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let at = self.at.checked_add(n)?;
        (at <= self.text.len() * 6).then(|| self.at = at)
    }

    /// A Fibonacci-coded integer (bits for 1, 2, 3, 5, 8, … ended by `11`).
    /// Gives up after twenty digits (values past 10,000), far above any GPP
    /// section id or offset.
    fn fibonacci(&mut self) -> Option<i32> {
        let (mut fib, mut next) = (1i32, 2i32);
        let mut value = 0;
        let mut previous = false;
        for _ in 0..=20 {
            let bit = self.read(1)? == 1;
            if bit && previous {
                return Some(value);
            }
            if bit {
                value += fib;
            }
            (fib, next) = (next, fib + next);
            previous = bit;
        }
        None
    }
}

fn base64url(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const VENDOR: u16 = 755;

    fn settings() -> PrivacySettings {
        PrivacySettings { vendor_id: VENDOR }
    }

    /// A minimal valid request with `extra` merged in at the top level, as
    /// JSON text through `ortb::parse_request`.
    fn check_with(extra: Value, settings: &PrivacySettings) -> Result<(), Restriction> {
        let mut req = json!({
            "id": "r1",
            "imp": [{ "id": "1", "banner": { "w": 300, "h": 250 } }],
            "site": { "page": "https://news.example/" },
            "device": { "devicetype": 2 },
            "user": { "buyeruid": "u-1" }
        });
        for (k, v) in extra.as_object().expect("an object") {
            req[k] = v.clone();
        }
        let body = req.to_string();
        let parsed = ortb::parse_request(body.as_bytes()).expect("request parses");
        behavioural(&parsed, settings)
    }

    fn check(extra: Value) -> Result<(), Restriction> {
        check_with(extra, &settings())
    }

    // ------------------------------------------------------------ encoders

    /// Bits written most significant first, base64url-encoded without
    /// padding after filling the last byte, as the IAB reference encoders do.
    #[derive(Default)]
    struct Writer(Vec<bool>);

    impl Writer {
        fn int(&mut self, value: u64, width: u32) -> &mut Self {
            for i in (0..width).rev() {
                self.0.push((value >> i) & 1 == 1);
            }
            self
        }
        /// A fixed bitfield: bit `i` (1-based) set when `i` is in `ids`.
        fn bitfield(&mut self, ids: &[u16], width: u16) -> &mut Self {
            for i in 1..=width {
                self.0.push(ids.contains(&i));
            }
            self
        }
        fn letters(&mut self, s: &str) -> &mut Self {
            for b in s.bytes() {
                self.int(u64::from(b - b'A'), 6);
            }
            self
        }
        fn fibonacci(&mut self, value: u32) -> &mut Self {
            let mut fibs = vec![1u32, 2];
            while fibs[fibs.len() - 1] <= value {
                fibs.push(fibs[fibs.len() - 1] + fibs[fibs.len() - 2]);
            }
            let mut digits = vec![false; fibs.len()];
            let mut rest = value;
            for i in (0..fibs.len()).rev() {
                if fibs[i] <= rest {
                    digits[i] = true;
                    rest -= fibs[i];
                }
            }
            while digits.last() == Some(&false) {
                digits.pop();
            }
            self.0.extend(digits);
            self.0.push(true);
            self
        }
        fn base64url(&self) -> String {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut bits = self.0.clone();
            while !bits.len().is_multiple_of(8) {
                bits.push(false);
            }
            bits.chunks(6)
                .map(|c| {
                    let v = c
                        .iter()
                        .enumerate()
                        .fold(0, |v, (i, &b)| v | (usize::from(b) << (5 - i)));
                    char::from(ALPHABET[v])
                })
                .collect()
        }
    }

    /// Sorted ids as (first, last) runs.
    fn runs(ids: &[u16]) -> Vec<(u16, u16)> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        let mut out: Vec<(u16, u16)> = Vec::new();
        for id in sorted {
            match out.last_mut() {
                Some(r) if r.1 + 1 == id => r.1 = id,
                _ => out.push((id, id)),
            }
        }
        out
    }

    fn range_entries(w: &mut Writer, entries: &[(u16, u16)]) {
        w.int(entries.len() as u64, 12);
        for &(first, last) in entries {
            if first == last {
                w.int(0, 1).int(first.into(), 16);
            } else {
                w.int(1, 1).int(first.into(), 16).int(last.into(), 16);
            }
        }
    }

    /// (purpose, restriction type, vendor runs)
    type PubRestriction = (u8, u8, Vec<(u16, u16)>);

    /// A TCF v2 core segment, field by field as the TCF v2.2 "TC string
    /// format" lays it out.
    struct Tc {
        version: u64,
        /// Deciseconds since the epoch.
        created: u64,
        cmp: (u64, u64, u64),
        language: &'static str,
        vendor_list_version: u64,
        policy_version: u64,
        service_specific: bool,
        purposes: Vec<u16>,
        li_purposes: Vec<u16>,
        publisher_cc: &'static str,
        vendors: Vec<u16>,
        li_vendors: Vec<u16>,
        /// Range encoding for the vendor sections instead of bitfields.
        ranges: bool,
        restrictions: Vec<PubRestriction>,
    }

    impl Default for Tc {
        fn default() -> Self {
            Tc {
                version: 2,
                created: 17_040_672_000, // 2024-01-01
                cmp: (7, 1, 1),
                language: "EN",
                vendor_list_version: 100,
                policy_version: 4, // TCF v2.2
                service_specific: true,
                purposes: vec![],
                li_purposes: vec![],
                publisher_cc: "DE",
                vendors: vec![],
                li_vendors: vec![],
                ranges: false,
                restrictions: vec![],
            }
        }
    }

    impl Tc {
        /// Consent for purposes 1–11 and for `vendors`.
        fn granting(vendors: &[u16]) -> Tc {
            Tc {
                purposes: (1..=11).collect(),
                vendors: vendors.to_vec(),
                ..Tc::default()
            }
        }

        fn vendor_section(&self, w: &mut Writer, ids: &[u16]) {
            let max = ids.iter().copied().max().unwrap_or(0);
            w.int(max.into(), 16);
            if self.ranges {
                w.int(1, 1);
                range_entries(w, &runs(ids));
            } else {
                w.int(0, 1).bitfield(ids, max);
            }
        }

        fn writer(&self) -> Writer {
            let mut w = Writer::default();
            w.int(self.version, 6)
                .int(self.created, 36)
                .int(self.created, 36)
                .int(self.cmp.0, 12)
                .int(self.cmp.1, 12)
                .int(self.cmp.2, 6)
                .letters(self.language)
                .int(self.vendor_list_version, 12)
                .int(self.policy_version, 6)
                .int(self.service_specific.into(), 1)
                .int(0, 1) // UseNonStandardTexts
                .bitfield(&[], 12) // SpecialFeatureOptIns
                .bitfield(&self.purposes, 24)
                .bitfield(&self.li_purposes, 24)
                .int(0, 1) // PurposeOneTreatment
                .letters(self.publisher_cc);
            self.vendor_section(&mut w, &self.vendors);
            self.vendor_section(&mut w, &self.li_vendors);
            w.int(self.restrictions.len() as u64, 12);
            for (purpose, kind, vendors) in &self.restrictions {
                w.int((*purpose).into(), 6).int((*kind).into(), 2);
                range_entries(&mut w, vendors);
            }
            w
        }

        fn encode(&self) -> String {
            self.writer().base64url()
        }
    }

    /// A GPP string: header (type 3, version 1, Fibonacci range of ids as
    /// the IAB reference encoder writes it) and the sections, `~`-joined.
    fn gpp(sections: &[(u32, &str)]) -> String {
        let mut runs: Vec<(u32, u32)> = Vec::new();
        for &(id, _) in sections {
            match runs.last_mut() {
                Some(r) if r.1 + 1 == id => r.1 = id,
                _ => runs.push((id, id)),
            }
        }
        let mut w = Writer::default();
        w.int(3, 6).int(1, 6).int(runs.len() as u64, 12);
        let mut last = 0;
        for (first, end) in runs {
            if first == end {
                w.int(0, 1).fibonacci(first - last);
            } else {
                w.int(1, 1).fibonacci(first - last).fibonacci(end - first);
            }
            last = end;
        }
        let mut out = w.base64url();
        for (_, s) in sections {
            out.push('~');
            out.push_str(s);
        }
        out
    }

    /// A US National v1 core segment; opt-outs are 1 opted out, 2 did not,
    /// 0 not applicable.
    fn usnat_v1(sale: u64, sharing: u64, targeted: u64) -> String {
        let mut w = Writer::default();
        w.int(1, 6); // version
        for _ in 0..6 {
            w.int(1, 2); // notices: provided
        }
        w.int(sale, 2).int(sharing, 2).int(targeted, 2);
        w.int(0, 24) // sensitive data processing (12 × 2 bits)
            .int(0, 4) // known child sensitive data (2 × 2 bits)
            .int(0, 2) // personal data consent
            .int(1, 2) // MSPA covered transaction: yes
            .int(0, 2) // MSPA opt-out option mode
            .int(0, 2); // MSPA service provider mode
        w.base64url()
    }

    // Public example strings. The IAB TCF v2 example used by many decoders
    // (purposes 1–3, vendors 2, 6, 8 — no purpose 4):
    const IAB_EXAMPLE: &str = "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA";
    // iab_gpp's documentation example (purpose 3 and vendor 755 only):
    const PURPOSE_3_ONLY: &str = "CPXuQIAPXuQIAAfKABENB-CgACAAAAAAAAYgF5wAQF5gAAAA.YAAAAAAAAAAA";
    // A TCF v1 consent string.
    const TCF_V1: &str = "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA";
    // GPP sections from iab_gpp's decode tests (tests/data).
    const USNAT_OPTED_OUT: &str = "BVVVVVVVVWA";
    const USNAT_NOT_APPLICABLE: &str = "BAAAAAAAAQA";
    const USNAT_V2_NOT_APPLICABLE: &str = "CAAAAAAAAAWA.Q";
    const USCA_OPTED_OUT: &str = "BVVVVVVY";
    const USCA_NOT_APPLICABLE: &str = "BAAAAACA";
    const USCA_DID_NOT_OPT_OUT_WITH_GPC: &str = "BVqqqqpY.YA";
    const USVA_OPTED_OUT: &str = "BVVVVWY";
    const USVA_NOT_APPLICABLE: &str = "BAAAABA";
    const USCO_OPTED_OUT: &str = "BVVVVVg";

    #[test]
    fn the_test_encoder_writes_the_iab_example_byte_for_byte() {
        let tc = Tc {
            created: 15_822_430_593,
            cmp: (27, 0, 0),
            vendor_list_version: 15,
            policy_version: 2,
            service_specific: false,
            purposes: vec![1, 2, 3],
            publisher_cc: "AA",
            vendors: vec![2, 6, 8],
            li_vendors: vec![2, 6, 8],
            ..Tc::default()
        };
        assert_eq!(tc.encode(), IAB_EXAMPLE);
    }

    // ------------------------------------------------------------ labels

    #[test]
    fn labels_are_distinct_snake_case() {
        let labels: Vec<&str> = Restriction::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "coppa",
                "gdpr_no_consent",
                "limit_ad_tracking",
                "us_privacy_opt_out",
                "gpp_opt_out"
            ]
        );
        assert_eq!(Restriction::GppOptOut.to_string(), "gpp_opt_out");
        assert_eq!(PrivacySettings::default().vendor_id, UNSET_VENDOR_ID);
    }

    // ------------------------------------------------------------ plain signals

    #[test]
    fn no_signal_allows() {
        assert_eq!(check(json!({})), Ok(()));
        assert_eq!(check(json!({ "regs": {} })), Ok(()));
        assert_eq!(
            check(json!({ "regs": { "coppa": 0, "gdpr": 0 }, "device": { "lmt": 0, "dnt": 0 } })),
            Ok(())
        );
    }

    #[test]
    fn coppa() {
        assert_eq!(
            check(json!({ "regs": { "coppa": 1 } })),
            Err(Restriction::Coppa)
        );
        // First found: COPPA before everything else.
        assert_eq!(
            check(
                json!({ "regs": { "coppa": 1, "gdpr": 1, "us_privacy": "1YYN" },
                          "device": { "lmt": 1 } })
            ),
            Err(Restriction::Coppa)
        );
    }

    #[test]
    fn limit_ad_tracking_and_do_not_track() {
        assert_eq!(
            check(json!({ "device": { "lmt": 1 } })),
            Err(Restriction::LimitAdTracking)
        );
        assert_eq!(
            check(json!({ "device": { "dnt": 1 } })),
            Err(Restriction::LimitAdTracking)
        );
        assert_eq!(
            check(json!({ "device": { "lmt": true } })),
            Err(Restriction::LimitAdTracking),
            "a boolean flag is coerced"
        );
        assert_eq!(
            check(json!({ "device": { "lmt": 1 }, "regs": { "gdpr": 1 } })),
            Err(Restriction::LimitAdTracking),
            "checked before the TC string is decoded"
        );
    }

    #[test]
    fn us_privacy_string() {
        let usp = |s: &str| check(json!({ "regs": { "us_privacy": s } }));
        assert_eq!(usp("1YYN"), Err(Restriction::UsPrivacyOptOut));
        assert_eq!(usp("1NYY"), Err(Restriction::UsPrivacyOptOut));
        assert_eq!(usp("1yyn"), Err(Restriction::UsPrivacyOptOut));
        assert_eq!(usp("1YNN"), Ok(()));
        assert_eq!(usp("1---"), Ok(()));
        // Malformed: ignored.
        for s in ["", "1YY", "1YYNN", "2YYN", "YYN1", "1XYN", "1Y?N"] {
            assert_eq!(usp(s), Ok(()), "{s:?}");
        }
        // 2.5 location.
        assert_eq!(
            check(json!({ "regs": { "ext": { "us_privacy": "1YYN" } } })),
            Err(Restriction::UsPrivacyOptOut)
        );
    }

    // ------------------------------------------------------------ GDPR

    fn gdpr_with(consent: &str) -> Result<(), Restriction> {
        check(json!({ "regs": { "gdpr": 1 }, "user": { "consent": consent } }))
    }

    #[test]
    fn gdpr_consent_for_purposes_1_3_4_and_our_vendor_allows() {
        assert_eq!(gdpr_with(&Tc::granting(&[VENDOR]).encode()), Ok(()));
        // Just the three purposes, among other vendors.
        let tc = Tc {
            purposes: vec![1, 3, 4],
            vendors: vec![1, 2, 3, VENDOR, 900],
            ..Tc::default()
        };
        assert_eq!(gdpr_with(&tc.encode()), Ok(()));
        // Range-encoded vendor consents.
        let tc = Tc {
            ranges: true,
            vendors: (1..=1200).filter(|v| v % 7 != 0).collect(),
            ..Tc::granting(&[])
        };
        assert!(tc.vendors.contains(&VENDOR));
        assert_eq!(gdpr_with(&tc.encode()), Ok(()));
        // Other segments (here iab_gpp's disclosed-vendors example) are not read.
        let with_segment = format!(
            "{}.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw",
            Tc::granting(&[VENDOR]).encode()
        );
        assert_eq!(gdpr_with(&with_segment), Ok(()));
    }

    #[test]
    fn gdpr_missing_purpose_refuses() {
        for missing in REQUIRED_PURPOSES {
            let tc = Tc {
                purposes: (1..=11).filter(|&p| p != missing).collect(),
                ..Tc::granting(&[VENDOR])
            };
            assert_eq!(
                gdpr_with(&tc.encode()),
                Err(Restriction::GdprNoConsent),
                "purpose {missing} missing"
            );
        }
        // Public strings: the IAB example lacks purpose 4 (vendor 8 has
        // consent); iab_gpp's example grants purpose 3 to vendor 755 only.
        let vendor_8 = PrivacySettings { vendor_id: 8 };
        let gdpr = |tc: &str| json!({ "regs": { "gdpr": 1 }, "user": { "consent": tc } });
        assert_eq!(
            check_with(gdpr(IAB_EXAMPLE), &vendor_8),
            Err(Restriction::GdprNoConsent)
        );
        assert_eq!(check(gdpr(PURPOSE_3_ONLY)), Err(Restriction::GdprNoConsent));
    }

    #[test]
    fn gdpr_legitimate_interest_is_not_consent() {
        let tc = Tc {
            li_purposes: (1..=11).collect(),
            li_vendors: vec![VENDOR],
            ..Tc::granting(&[1, 2])
        };
        assert_eq!(gdpr_with(&tc.encode()), Err(Restriction::GdprNoConsent));
        let tc = Tc {
            li_purposes: vec![1, 3, 4],
            ..Tc::granting(&[VENDOR])
        };
        let purposes_by_li_only = Tc {
            purposes: vec![2],
            ..tc
        };
        assert_eq!(
            gdpr_with(&purposes_by_li_only.encode()),
            Err(Restriction::GdprNoConsent)
        );
    }

    #[test]
    fn gdpr_vendor_without_consent_refuses() {
        assert_eq!(
            gdpr_with(&Tc::granting(&[1, 2, VENDOR - 1, VENDOR + 1]).encode()),
            Err(Restriction::GdprNoConsent)
        );
        let ranged = Tc {
            ranges: true,
            ..Tc::granting(&[(1..VENDOR).collect::<Vec<_>>(), vec![VENDOR + 1]].concat())
        };
        assert_eq!(gdpr_with(&ranged.encode()), Err(Restriction::GdprNoConsent));
        // The default settings name no vendor: nothing grants consent.
        assert_eq!(
            check_with(
                json!({ "regs": { "gdpr": 1 }, "user": { "consent": Tc::granting(&[VENDOR]).encode() } }),
                &PrivacySettings::default()
            ),
            Err(Restriction::GdprNoConsent)
        );
    }

    #[test]
    fn gdpr_without_a_decodable_string_refuses() {
        assert_eq!(
            check(json!({ "regs": { "gdpr": 1 } })),
            Err(Restriction::GdprNoConsent)
        );
        let granting = Tc::granting(&[VENDOR]).encode();
        let truncated = &granting[..granting.len() / 2];
        let v1 = Tc {
            version: 1,
            ..Tc::granting(&[VENDOR])
        }
        .encode();
        for s in [
            "",
            "garbage",
            "not base64!",
            "CPXuQIAPXuQIAAfKABENB-Cg",
            truncated,
            TCF_V1,
            &v1,
        ] {
            assert_eq!(gdpr_with(s), Err(Restriction::GdprNoConsent), "{s:?}");
        }
    }

    #[test]
    fn gdpr_not_applying_needs_no_string() {
        assert_eq!(check(json!({ "regs": { "gdpr": 0 } })), Ok(()));
        assert_eq!(
            check(json!({ "regs": { "gdpr": 0 }, "user": { "consent": "garbage" } })),
            Ok(())
        );
        assert_eq!(check(json!({ "regs": { "ext": { "gdpr": 0 } } })), Ok(()));
    }

    #[test]
    fn gdpr_openrtb_2_5_locations() {
        let granting = Tc::granting(&[VENDOR]).encode();
        let refusing = Tc::granting(&[1]).encode();
        for gdpr in [json!(1), json!("1")] {
            assert_eq!(
                check(json!({ "regs": { "ext": { "gdpr": gdpr } },
                              "user": { "ext": { "consent": granting } } })),
                Ok(())
            );
            assert_eq!(
                check(json!({ "regs": { "ext": { "gdpr": gdpr } },
                              "user": { "ext": { "consent": refusing } } })),
                Err(Restriction::GdprNoConsent)
            );
            assert_eq!(
                check(json!({ "regs": { "ext": { "gdpr": gdpr } } })),
                Err(Restriction::GdprNoConsent)
            );
        }
        // 2.6 and 2.5 mixed.
        assert_eq!(
            check(json!({ "regs": { "gdpr": 1 }, "user": { "ext": { "consent": granting } } })),
            Ok(())
        );
    }

    #[test]
    fn gdpr_crafted_ranges_are_refused_without_expanding_them() {
        // 400 entries each claiming vendors 1–65535: the decoder alone
        // spends seconds on this 2 KB string.
        let mut w = Tc::granting(&[]).writer();
        w.0.truncate(TC_CORE_FIXED_BITS);
        w.int(65_535, 16).int(1, 1).int(400, 12);
        for _ in 0..400 {
            w.int(1, 1).int(1, 16).int(65_535, 16);
        }
        w.int(0, 16).int(0, 1).int(0, 12);
        let start = std::time::Instant::now();
        assert_eq!(gdpr_with(&w.base64url()), Err(Restriction::GdprNoConsent));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));

        // Overlapping ranges within a small MaxVendorId are refused too.
        let mut w = Tc::granting(&[]).writer();
        w.0.truncate(TC_CORE_FIXED_BITS);
        w.int(VENDOR.into(), 16).int(1, 1);
        range_entries(&mut w, &[(1, VENDOR), (1, VENDOR)]);
        w.int(0, 16).int(0, 1).int(0, 12);
        assert_eq!(gdpr_with(&w.base64url()), Err(Restriction::GdprNoConsent));
        // …while the same string with one range is consent.
        let mut w = Tc::granting(&[]).writer();
        w.0.truncate(TC_CORE_FIXED_BITS);
        w.int(VENDOR.into(), 16).int(1, 1);
        range_entries(&mut w, &[(1, VENDOR)]);
        w.int(0, 16).int(0, 1).int(0, 12);
        assert_eq!(gdpr_with(&w.base64url()), Ok(()));
    }

    #[test]
    fn gdpr_publisher_restrictions_are_refused_until_the_decoder_reads_them() {
        let tc = Tc {
            restrictions: vec![(2, 1, vec![(1, 50)])],
            ..Tc::granting(&[VENDOR])
        };
        assert_eq!(gdpr_with(&tc.encode()), Err(Restriction::GdprNoConsent));
    }

    // ------------------------------------------------------------ GPP

    fn with_gpp(gpp: &str, sid: &[i32]) -> Result<(), Restriction> {
        check(json!({ "regs": { "gpp": gpp, "gpp_sid": sid } }))
    }

    #[test]
    fn gpp_header_ids_match_known_strings() {
        for (header, ids) in [
            ("DBABM", vec![2]),
            ("DBACNY", vec![2, 6]),
            ("DBABTA", vec![6]),
            ("DBABLA", vec![7]),
            ("DBABBg", vec![8]),
        ] {
            assert_eq!(gpp_header_ids(header), Some(ids), "{header}");
        }
        // Several single ids: offsets from the previous id, not the previous offset.
        for ids in [
            vec![2, 6, 8],
            vec![2, 7, 9, 21],
            vec![6, 7, 8, 10],
            vec![7, 23],
        ] {
            let sections: Vec<(u32, &str)> = ids.iter().map(|&id| (id, "x")).collect();
            let header = gpp(&sections);
            let header = header.split('~').next().unwrap();
            let ids: Vec<i32> = ids.iter().map(|&id| id as i32).collect();
            assert_eq!(gpp_header_ids(header), Some(ids), "{header}");
        }
        assert_eq!(gpp_header_ids("CPXuQIAP"), None, "not a GPP header");
        assert_eq!(gpp_header_ids(""), None);
    }

    #[test]
    fn gpp_us_national_opt_outs() {
        assert_eq!(
            with_gpp(&gpp(&[(7, USNAT_OPTED_OUT)]), &[7]),
            Err(Restriction::GppOptOut)
        );
        assert_eq!(with_gpp(&gpp(&[(7, USNAT_NOT_APPLICABLE)]), &[7]), Ok(()));
        assert_eq!(
            with_gpp(&gpp(&[(7, USNAT_V2_NOT_APPLICABLE)]), &[7]),
            Ok(())
        );
        assert_eq!(with_gpp(&gpp(&[(7, &usnat_v1(2, 2, 2))]), &[7]), Ok(()));
        for (sale, sharing, targeted) in [(1, 2, 2), (2, 1, 2), (2, 2, 1)] {
            assert_eq!(
                with_gpp(&gpp(&[(7, &usnat_v1(sale, sharing, targeted))]), &[7]),
                Err(Restriction::GppOptOut),
                "{sale} {sharing} {targeted}"
            );
        }
        // Global Privacy Control sub-section.
        let gpc = format!("{}.YA", usnat_v1(2, 2, 2));
        assert_eq!(
            with_gpp(&gpp(&[(7, &gpc)]), &[7]),
            Err(Restriction::GppOptOut)
        );
    }

    #[test]
    fn gpp_us_state_opt_outs() {
        for (id, section) in [
            (8, USCA_OPTED_OUT),
            (8, USCA_DID_NOT_OPT_OUT_WITH_GPC),
            (9, USVA_OPTED_OUT),
            (10, USCO_OPTED_OUT),
        ] {
            assert_eq!(
                with_gpp(&gpp(&[(id, section)]), &[id as i32]),
                Err(Restriction::GppOptOut),
                "{id} {section}"
            );
        }
        for (id, section) in [(8, USCA_NOT_APPLICABLE), (9, USVA_NOT_APPLICABLE)] {
            assert_eq!(with_gpp(&gpp(&[(id, section)]), &[id as i32]), Ok(()));
        }
    }

    #[test]
    fn gpp_only_applicable_sections_count() {
        let s = gpp(&[(7, USNAT_OPTED_OUT), (8, USCA_NOT_APPLICABLE)]);
        assert_eq!(with_gpp(&s, &[8]), Ok(()), "section 7 is not applicable");
        assert_eq!(with_gpp(&s, &[7]), Err(Restriction::GppOptOut));
        assert_eq!(with_gpp(&s, &[7, 8]), Err(Restriction::GppOptOut));
        // No gpp_sid: every section in the string applies.
        assert_eq!(
            check(json!({ "regs": { "gpp": s } })),
            Err(Restriction::GppOptOut)
        );
        // An applicable id with no section in the string says nothing.
        assert_eq!(with_gpp(&gpp(&[(8, USCA_NOT_APPLICABLE)]), &[7]), Ok(()));
    }

    #[test]
    fn gpp_us_privacy_section() {
        assert_eq!(
            with_gpp(&gpp(&[(6, "1YYN")]), &[6]),
            Err(Restriction::GppOptOut)
        );
        assert_eq!(with_gpp(&gpp(&[(6, "1YNN")]), &[6]), Ok(()));
        assert_eq!(with_gpp("DBABTA~1YYN", &[6]), Err(Restriction::GppOptOut));
    }

    #[test]
    fn gpp_with_several_single_sections() {
        // Ids 2, 6, 8 are three single entries in the header: the section
        // after the second must still be read as California.
        let s = gpp(&[
            (2, &Tc::granting(&[VENDOR]).encode()),
            (6, "1NNN"),
            (8, USCA_OPTED_OUT),
        ]);
        assert_eq!(
            check(json!({ "regs": { "gdpr": 1, "gpp": s, "gpp_sid": [2, 6, 8] } })),
            Err(Restriction::GppOptOut)
        );
        assert_eq!(
            check(json!({ "regs": { "gdpr": 1, "gpp": s, "gpp_sid": [2, 6] } })),
            Ok(())
        );
    }

    #[test]
    fn gpp_unknown_or_malformed_is_ignored() {
        for s in [
            "garbage",
            "DBABLA",                  // header says one section, none follows
            "DBABLA~BVVVVVVVVWA~1YYN", // two sections for one id
            "DBABLA~!!!",              // undecodable section
            "DBABLA~BVVVVV",           // truncated section
        ] {
            assert_eq!(with_gpp(s, &[7]), Ok(()), "{s:?}");
        }
        // An id this crate version does not know is skipped, not fatal.
        let s = gpp(&[(7, USNAT_OPTED_OUT), (30, "whatever")]);
        assert_eq!(with_gpp(&s, &[7, 30]), Err(Restriction::GppOptOut));
        assert_eq!(with_gpp(&s, &[30]), Ok(()));
    }

    #[test]
    fn gpp_openrtb_2_5_locations() {
        let s = gpp(&[(7, USNAT_OPTED_OUT)]);
        assert_eq!(
            check(json!({ "regs": { "ext": { "gpp": s, "gpp_sid": [7] } } })),
            Err(Restriction::GppOptOut)
        );
        assert_eq!(
            check(json!({ "regs": { "ext": { "gpp": s, "gpp_sid": [8] } } })),
            Ok(())
        );
    }

    #[test]
    fn gpp_tcf_section_is_the_consent_string_when_user_consent_is_absent() {
        let granting = gpp(&[(2, &Tc::granting(&[VENDOR]).encode())]);
        let refusing = gpp(&[(2, &Tc::granting(&[1]).encode())]);
        let regs = |gpp: &str| json!({ "gdpr": 1, "gpp": gpp, "gpp_sid": [2] });
        assert_eq!(check(json!({ "regs": regs(&granting) })), Ok(()));
        assert_eq!(
            check(json!({ "regs": regs(&refusing) })),
            Err(Restriction::GdprNoConsent)
        );
        // user.consent, when present, is the one read.
        assert_eq!(
            check(json!({ "regs": regs(&granting),
                          "user": { "consent": Tc::granting(&[1]).encode() } })),
            Err(Restriction::GdprNoConsent)
        );
        assert_eq!(
            check(json!({ "regs": regs(&refusing),
                          "user": { "consent": Tc::granting(&[VENDOR]).encode() } })),
            Ok(())
        );
        // gpp_sid [2] means GDPR applies even without regs.gdpr.
        assert_eq!(
            check(json!({ "regs": { "gpp": refusing, "gpp_sid": [2] } })),
            Err(Restriction::GdprNoConsent)
        );
        assert_eq!(
            check(json!({ "regs": { "gpp": granting, "gpp_sid": [2] } })),
            Ok(())
        );
        assert_eq!(
            check(json!({ "regs": { "gpp": gpp(&[(7, USNAT_NOT_APPLICABLE)]), "gpp_sid": [2] } })),
            Err(Restriction::GdprNoConsent),
            "no TCF section and no user.consent"
        );
        // The TCF section is not read when GDPR does not apply.
        assert_eq!(
            check(json!({ "regs": { "gdpr": 0, "gpp": refusing, "gpp_sid": [7] } })),
            Ok(())
        );
    }
}
