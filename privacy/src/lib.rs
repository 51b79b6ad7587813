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
//!    [`Restriction::UsPrivacyOptOut`]. White space around the string is
//!    not part of it; an empty string says nothing; any other string that is
//!    not version 1 with exactly three `Y`/`N`/`-` flags may be an opt-out,
//!    and is taken as one.
//!
//! Where a 2.6 field and its 2.5 copy in `regs.ext` are both there and
//! disagree, the stricter holds: each of GDPR, GPC, US Privacy and GPP is
//! checked with either copy.
//! 4. **GDPR / TCF v2**: GDPR applies when `regs.gdpr` (2.5: `regs.ext.gdpr`)
//!    is non-zero, when `regs.gpp_sid` lists section 2 (TCF EU v2), or when
//!    there is no `gpp_sid` and the GPP string has a TCF EU v2 section (every
//!    section applies then). Then every TC string the request carries —
//!    `user.consent`, `user.ext.consent` (2.5) and the TCF EU v2 section of
//!    the GPP string; at least one — must decode as a TCF v2 TC string
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
//!    string, a missing purpose or vendor, or two strings of which one
//!    refuses — is [`Restriction::GdprNoConsent`]. The user is named in
//!    measurement (the user key of tracking URLs, see [`Allowed`]) only
//!    when every string also allows purpose 7, by consent or legitimate
//!    interest.
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
//!    opt-out of sale. What may hold an opt-out nobody read is taken as
//!    one: an applicable US section that does not decode (or whose version
//!    the decoder does not know), an applicable id past 23 (24 Maryland to
//!    27 Rhode Island and later ids, which the decoder cannot read), an id
//!    from 6 up listed in `gpp_sid` with no section in the string, and a
//!    GPP string that does not decode while `gpp_sid` lists such an id or
//!    lists none (then every section applies). The TCF sections (1, 2, 5)
//!    and the reserved ids 3 and 4 hold no opt-out.
//! 6. **Global Privacy Control** outside GPP: `regs.gpc` or the IAB's
//!    extension `regs.ext.gpc` non-zero (`1` or `"1"`) →
//!    [`Restriction::GlobalPrivacyControl`]. US state laws take the signal
//!    as opting out of sale and sharing whatever else the request says.
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
use iab_gpp::sections::us_common::{Consent, MspaMode, Notice, OptOut};
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
    /// `device.lmt` or `device.dnt`, or an App Tracking Transparency status
    /// (`device.ext.atts`) other than authorized.
    LimitAdTracking,
    /// The US Privacy string opts out of sale.
    UsPrivacyOptOut,
    /// An applicable US section of the GPP string opts out of sale, sharing
    /// or targeted advertising, or carries a Global Privacy Control signal.
    GppOptOut,
    /// What may hold a GPP opt-out cannot be read: the string, an
    /// applicable US section (or one the decoder has no reader for), or a
    /// section `gpp_sid` lists and the string lacks. Apart from
    /// [`Restriction::GppOptOut`] so that what reading strictly costs shows.
    GppUnreadable,
    /// `regs.gpc` or the IAB's `regs.ext.gpc` is 1: the browser sends
    /// Global Privacy Control, which US state laws (California, Colorado,
    /// ...) take as opting out of sale and sharing, outside a GPP string too.
    GlobalPrivacyControl,
}

impl Restriction {
    pub const ALL: [Restriction; 7] = [
        Restriction::Coppa,
        Restriction::GdprNoConsent,
        Restriction::LimitAdTracking,
        Restriction::UsPrivacyOptOut,
        Restriction::GppOptOut,
        Restriction::GppUnreadable,
        Restriction::GlobalPrivacyControl,
    ];

    /// The snake_case label used in metrics and `/v1/explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Restriction::Coppa => "coppa",
            Restriction::GdprNoConsent => "gdpr_no_consent",
            Restriction::LimitAdTracking => "limit_ad_tracking",
            Restriction::UsPrivacyOptOut => "us_privacy_opt_out",
            Restriction::GppOptOut => "gpp_opt_out",
            Restriction::GppUnreadable => "gpp_unreadable",
            Restriction::GlobalPrivacyControl => "global_privacy_control",
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
    decide(req, settings).map(|_| ())
}

/// What behavioural targeting may do beyond choosing the ad.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The user may be named in what measures the ad (the user key that
    /// attributes a sale to the ad's impression or click): outside GDPR
    /// always; under it, only with consent for TCF purpose 7 (measure
    /// advertising performance) as well.
    pub measurement: bool,
}

const ALL_ALLOWED: Allowed = Allowed { measurement: true };

/// [`behavioural`], and when it allows, whether the user may also be
/// named in measurement ([`Allowed`]).
pub fn decide(req: &BidRequest<'_>, settings: &PrivacySettings) -> Result<Allowed, Restriction> {
    decide_seeing(req, settings, |_| {})
}

/// [`decide`], showing `seen` the signals of `regs` once read (read for
/// it alone where the decision needs none of them): the caller keeps what
/// else `regs.ext` says (the bidder: its DSA signal) without a second
/// read of it on every bid.
pub fn decide_seeing<'a>(
    req: &BidRequest<'a>,
    settings: &PrivacySettings,
    seen: impl FnOnce(&ortb::RegsSignals<'a>),
) -> Result<Allowed, Restriction> {
    let regs = req.regs.as_ref();
    let early = if regs.is_some_and(|r| r.is_coppa()) {
        Some(Restriction::Coppa)
    } else if req.device.as_ref().is_some_and(|d| {
        // App Tracking Transparency: only "authorized" (3) lets an iOS
        // app's user be tracked; not determined, restricted and denied do
        // not.
        is_set(d.lmt) || is_set(d.dnt) || d.atts().is_some_and(|a| a != ATT_AUTHORIZED)
    }) {
        Some(Restriction::LimitAdTracking)
    } else {
        None
    };
    let Some(regs) = regs else {
        if let Some(r) = early {
            return Err(r);
        }
        // No one said whether GDPR applies: a TC string given still holds
        // where it refuses (`allow`).
        let Some(consents) = req.user.as_ref().map(undeclared_consents) else {
            return Ok(ALL_ALLOWED);
        };
        return allow(
            &Signals {
                consents: [consents.given.as_deref(), consents.in_ext.as_deref()],
                consent_unreadable: consents.ext_unreadable,
                ..Signals::default()
            },
            settings,
        );
    };
    let s = regs.signals();
    seen(&s);
    if let Some(r) = early {
        return Err(r);
    }
    // `regs.ext` that cannot be read may hold any opt-out: as no consent.
    if s.unreadable {
        return Err(Restriction::GdprNoConsent);
    }
    // A 2.6 field and its 2.5 copy in `regs.ext` that disagree: the one
    // that restricts more holds (`gdpr: 0` above `ext.gdpr: 1` applies GDPR).
    let shadowed = s.shadowed.as_deref();
    let gdpr = match shadowed {
        Some(sh) if is_set(sh.gdpr) => sh.gdpr,
        _ => s.gdpr,
    };
    let gpp_sid = s.gpp_sid;
    // Checked after the strings: a GPP section saying the same is reported
    // as the GPP opt-out it is.
    let gpc = is_set(s.gpc) || shadowed.is_some_and(|sh| is_set(sh.gpc));
    // The consent strings are read (from `user.ext` in 2.5, past whatever
    // else is there) only where GDPR may apply: `gdpr`, a `gpp_sid` with
    // the TCF section, or a GPP string with no `gpp_sid` (every section
    // applies then, a TCF one too).
    let may_apply = |gdpr: Option<i32>, gpp: Option<&str>, sid: &[i32]| {
        is_set(gdpr) || sid.contains(&TCF_EU_V2) || (sid.is_empty() && gpp.is_some())
    };
    let gdpr_may_apply = may_apply(gdpr, s.gpp.as_deref(), &gpp_sid)
        || shadowed.is_some_and(|sh| {
            let sid = if sh.gpp_sid.is_empty() {
                &gpp_sid
            } else {
                &sh.gpp_sid
            };
            may_apply(sh.gdpr, sh.gpp.as_deref().or(s.gpp.as_deref()), sid)
        });
    // Where no one said whether GDPR applies, a TC string given is read
    // too (`allow`): most such requests (US traffic) have none, and their
    // `user.ext` (eids) is read only where it names one.
    let consents = match (&req.user, gdpr_may_apply) {
        (Some(u), true) => u.consents(),
        (Some(u), false) if gdpr.is_none() => undeclared_consents(u),
        _ => Default::default(),
    };
    let (usp, gpp) = (s.us_privacy, s.gpp);
    let signals = Signals {
        gdpr,
        consents: [consents.given.as_deref(), consents.in_ext.as_deref()],
        consent_unreadable: consents.ext_unreadable,
        us_privacy: usp.as_deref(),
        gpp: gpp.as_deref(),
        gpp_sid: &gpp_sid,
    };
    let mut allowed = allow(&signals, settings)?;
    // The strings of `regs.ext` that differ must allow it too.
    if let Some(sh) = shadowed.filter(|sh| sh.has_strings()) {
        let m = allow(
            &Signals {
                us_privacy: sh.us_privacy.as_deref().or(signals.us_privacy),
                gpp: sh.gpp.as_deref().or(signals.gpp),
                gpp_sid: if sh.gpp_sid.is_empty() {
                    &gpp_sid
                } else {
                    &sh.gpp_sid
                },
                ..signals
            },
            settings,
        )?;
        allowed.measurement &= m.measurement;
    }
    if gpc {
        return Err(Restriction::GlobalPrivacyControl);
    }
    Ok(allowed)
}

/// The TC strings of a user where no one said whether GDPR applies:
/// `user.consent`, and `user.ext.consent` only where the ext's text may
/// name a consent at all (reading the ext costs every such request, and
/// almost none has one). An ext with any escape is read whole: its key may
/// be spelled `"c\u006fnsent"`, which the text test would miss (a probe
/// bought behaviourally past a refusing string that way).
fn undeclared_consents<'a>(u: &ortb::User<'a>) -> ortb::Consents<'a> {
    let named = u.ext.is_some_and(|e| {
        let text = e.get();
        text.contains("\"consent\"") || text.contains('\\')
    });
    match named {
        true => u.consents(),
        false => ortb::Consents {
            given: u.consent.clone().filter(|c| !c.is_empty()),
            ..Default::default()
        },
    }
}

/// `device.ext.atts`: the user authorized tracking.
const ATT_AUTHORIZED: i32 = 3;

/// The consent and opt-out signals of a request, or of a user-sync URL
/// (`gdpr`, `gdpr_consent`, `us_privacy`, `gpp`, `gpp_sid`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Signals<'a> {
    pub gdpr: Option<i32>,
    /// The TC strings given: a request's `user.consent` and its 2.5 copy
    /// in `user.ext.consent` (a sync URL's `gdpr_consent` alone). Where
    /// GDPR applies every one there must grant, as must the GPP string's
    /// TCF section.
    pub consents: [Option<&'a str>; 2],
    /// `user.ext` was there but could not be read: a TC string it may
    /// hold grants nothing, so under GDPR there is no consent.
    pub consent_unreadable: bool,
    pub us_privacy: Option<&'a str>,
    pub gpp: Option<&'a str>,
    pub gpp_sid: &'a [i32],
}

/// `Ok(())` when these signals allow keeping and using data about the user
/// (the GDPR, US Privacy and GPP parts of [`behavioural`]).
pub fn signals_allow(s: &Signals<'_>, settings: &PrivacySettings) -> Result<(), Restriction> {
    allow(s, settings).map(|_| ())
}

fn allow(s: &Signals<'_>, settings: &PrivacySettings) -> Result<Allowed, Restriction> {
    if s.us_privacy.is_some_and(usp_opts_out) {
        return Err(Restriction::UsPrivacyOptOut);
    }
    // Longer strings than any honest one are not decoded (work per request
    // stays bounded). A GPP string carries opt-outs: one we will not read
    // may hold one, and not read is never "no opt-out".
    if s.gpp.is_some_and(|t| t.len() > MAX_SIGNAL_BYTES) {
        return Err(Restriction::GppUnreadable);
    }
    let gpp = s.gpp.and_then(Gpp::parse);
    // A string the exchange says carries a US section (`gpp_sid`) that
    // cannot be read may hold an opt-out, as one too long may.
    // (No `gpp_sid` makes every section of the string apply, US ones too.)
    let unreadable_gpp = gpp.is_none() && s.gpp.is_some_and(|t| !t.trim().is_empty());
    if unreadable_gpp && (s.gpp_sid.is_empty() || s.gpp_sid.iter().any(|&id| may_opt_out(id))) {
        return Err(Restriction::GppUnreadable);
    }
    // With no `gpp_sid` every section of the string applies, its TCF
    // section too: that applies GDPR as `regs.gdpr` does.
    let tcf_section = gpp.as_ref().and_then(|g| g.section(TCF_EU_V2));
    let mut allowed = ALL_ALLOWED;
    if is_set(s.gdpr)
        || s.gpp_sid.contains(&TCF_EU_V2)
        || (s.gpp_sid.is_empty() && tcf_section.is_some())
    {
        // Every TC string the request carries must grant: where two of
        // them disagree, the stricter holds. One that cannot be read (an
        // unreadable `user.ext`, a GPP string whose TCF section applies
        // but does not decode) grants nothing.
        if s.consent_unreadable || (unreadable_gpp && s.gpp_sid.contains(&TCF_EU_V2)) {
            return Err(Restriction::GdprNoConsent);
        }
        let mut any = false;
        let [given, in_ext] = s.consents.map(|c| c.filter(|c| !c.is_empty()));
        // The same string twice is decoded once.
        let in_ext = in_ext.filter(|e| given != Some(*e));
        for tc in [given, in_ext, tcf_section].into_iter().flatten() {
            let granted = tcf_grants(tc, settings.vendor_id).ok_or(Restriction::GdprNoConsent)?;
            allowed.measurement &= granted.measurement;
            any = true;
        }
        if !any {
            return Err(Restriction::GdprNoConsent);
        }
    } else if s.gdpr.is_none() {
        // No one said whether GDPR applies (`gdpr` absent, null or empty),
        // yet a TC string came: it was made for someone GDPR covers, and
        // one that refuses us holds (privacy probe: a string refusing our
        // vendor, beside `"gdpr": ""`, let behavioural audiences and the
        // user key through). One that cannot be read grants nothing, as
        // under GDPR, and as a user sync with `gdpr=` empty and a string
        // beside it is refused: the two paths must not disagree on the
        // same user, and a string we cannot read may be a refusal.
        if s.consent_unreadable {
            return Err(Restriction::GdprNoConsent);
        }
        let [given, in_ext] = s.consents.map(|c| c.filter(|c| !c.trim().is_empty()));
        for tc in [given, in_ext].into_iter().flatten() {
            match tcf_decision(tc, settings.vendor_id) {
                Some(Some(granted)) => allowed.measurement &= granted.measurement,
                Some(None) | None => return Err(Restriction::GdprNoConsent),
            }
        }
    }
    // A US Privacy string that says something stands in for a missing
    // section 6 (it is the same signal, and was read above). Looked at
    // only where sections are listed or read: most requests have neither.
    let us_privacy_given = || s.us_privacy.is_some_and(|u| !u.trim().is_empty());
    match gpp {
        Some(gpp) => gpp.allows(s.gpp_sid, us_privacy_given())?,
        // `gpp_sid` lists sections that may opt out and no string came
        // with it: lost, as a listed section missing from a string is.
        None if !unreadable_gpp && !s.gpp_sid.is_empty() => {
            let given = us_privacy_given();
            if s.gpp_sid
                .iter()
                .any(|&id| may_opt_out(id) && !(id == USP_V1 && given))
            {
                return Err(Restriction::GppUnreadable);
            }
        }
        None => {}
    }
    Ok(allowed)
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
/// `N` or `-`, white space around it aside. An empty string says nothing
/// (exchanges send it for "no signal"); any other that cannot be read may
/// be an opt-out, and is taken as one, as every unreadable signal is.
fn usp_opts_out(usp: &str) -> bool {
    usp_read(usp).unwrap_or(true)
}

/// A US Privacy string's opt-out of sale: `Some(false)` for an empty one,
/// `None` for one that cannot be read.
fn usp_read(usp: &str) -> Option<bool> {
    let usp = usp.trim();
    if usp.is_empty() {
        return Some(false);
    }
    let &[b'1', notice, sale, lspa] = usp.as_bytes() else {
        return None;
    };
    let flags = [notice, sale, lspa].map(|c| c.to_ascii_uppercase());
    flags
        .iter()
        .all(|c| matches!(c, b'Y' | b'N' | b'-'))
        .then_some(flags[1] == b'Y')
}

// ---------------------------------------------------------------- TCF v2

/// TCF purposes whose consent behavioural targeting needs: 1 store and/or
/// access information on a device, 3 create a personalised ads profile,
/// 4 select personalised ads.
const REQUIRED_PURPOSES: [u16; 3] = [1, 3, 4];

/// TCF purpose 7, measure advertising performance: naming the user in the
/// ad's tracking URLs, which attribute sales to the ad, needs it.
const MEASUREMENT_PURPOSE: u16 = 7;

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
/// for `vendor_id`? `None` when it does not; else whether it also allows
/// purpose 7 (measure advertising performance), by consent or legitimate
/// interest, which TCF policy allows for it.
///
/// Only the core segment (before the first `.`) is decoded. A string with
/// publisher restrictions counts as no consent for now: `iab_gpp` 0.1.2
/// reads restriction entries with a vendor-section layout (16-bit
/// `MaxVendorId` + encoding bit) where the TCF core has only `NumEntries`
/// and range entries, so such strings fail to decode or decode wrongly.
/// Failing closed keeps a restriction on purposes 1/3/4 for our vendor from
/// ever being missed; honour restrictions here once the decoder reads them.
fn tcf_grants(consent: &str, vendor_id: u16) -> Option<Allowed> {
    if vendor_id == UNSET_VENDOR_ID {
        return None;
    }
    tcf_decision(consent, vendor_id).flatten()
}

/// What a TC string decides for `vendor_id`: `None` when it cannot be read
/// (as [`tcf_grants`] reads), else what it grants (`Some(None)`: nothing).
fn tcf_decision(consent: &str, vendor_id: u16) -> Option<Option<Allowed>> {
    if consent.len() > MAX_SIGNAL_BYTES {
        return None;
    }
    let core = consent.split('.').next().unwrap_or_default();
    vet_tc_core(core)?;
    let tc = TcfEuV2::from_str(core).ok()?;
    let core = &tc.core;
    Some(
        (REQUIRED_PURPOSES
            .iter()
            .all(|p| core.purpose_consents.contains(p))
            && core.vendor_consents.contains(&vendor_id))
        .then(|| Allowed {
            // Consent (our vendor's consent was checked above), or legitimate
            // interest for the purpose and for our vendor: a vendor's LI bit
            // of 0 is the user's objection to it.
            measurement: core.purpose_consents.contains(&MEASUREMENT_PURPOSE)
                || (core
                    .purpose_legitimate_interests
                    .contains(&MEASUREMENT_PURPOSE)
                    && core.vendor_legitimate_interests.contains(&vendor_id)),
        }),
    )
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
/// Can an applicable section with this id carry an opt-out? Every id from
/// 6 on: US Privacy, US National and the states (7 to 23, which the
/// decoder reads, and 24 to 27, which it does not), and ids the registry
/// adds later (they have been US states, and one this crate cannot read is
/// taken at its strictest). Not the TCF sections (EU v1 and v2, Canada:
/// consent, not opt-outs) nor the two ids the header and signal integrity
/// reserve.
fn may_opt_out(id: i32) -> bool {
    id >= USP_V1
}

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

    /// Do the applicable sections allow behavioural use? Applicable:
    /// listed in `gpp_sid`, or any section when the exchange sent no
    /// `gpp_sid`. An opt-out read is [`Restriction::GppOptOut`]; an
    /// applicable section that may hold one and cannot be read, or that a
    /// listed id names and the string lacks (one it may have lost), is
    /// [`Restriction::GppUnreadable`]. A missing US Privacy section (6)
    /// is no loss where the request has its `us_privacy` string, which
    /// says the same and was read.
    fn allows(&self, gpp_sid: &[i32], us_privacy_given: bool) -> Result<(), Restriction> {
        let mut unreadable = gpp_sid.iter().any(|&id| {
            may_opt_out(id) && self.section(id).is_none() && !(id == USP_V1 && us_privacy_given)
        });
        for &(id, section) in &self.sections {
            if !gpp_sid.is_empty() && !gpp_sid.contains(&id) {
                continue;
            }
            match us_section_opts_out(id, section) {
                Some(true) => return Err(Restriction::GppOptOut),
                Some(false) => {}
                None => unreadable = true,
            }
        }
        match unreadable {
            true => Err(Restriction::GppUnreadable),
            false => Ok(()),
        }
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

/// The MSPA's rules beyond the opt-outs, as Prebid's MSPA controls read
/// them by default: in service-provider mode the data is processed for the
/// publisher alone, never for our ads; and where the notice of an opt-out
/// was not given, the user could not use it (no consent to what one was
/// not told of).
fn mspa_denies(service_provider_mode: &MspaMode, notices: &[&Notice]) -> bool {
    *service_provider_mode == MspaMode::Yes || notices.iter().any(|n| **n == Notice::NotProvided)
}

/// A US state section: opt-out of sale or of targeted advertising, the
/// GPC sub-section where the state's section has one (`gpc`), its one
/// known-child field where it has one (`; child`: [`known_child`]), and
/// [`mspa_denies`]; `None` when it does not decode.
// The markers (`gpc`, `child`) only switch their part on: `stringify!`
// ties each optional part to its marker, as a repetition needs.
macro_rules! state_opts_out {
    ($section:expr, $ty:ty $(, $gpc:ident)? $(; $child:ident)?) => {
        <$ty>::from_str($section).ok().map(|s| {
            opted_out(&s.core.sale_opt_out)
                || opted_out(&s.core.targeted_advertising_opt_out)
                $(|| { let _ = stringify!($gpc); s.gpc == Some(true) })?
                $(|| { let _ = stringify!($child); known_child(&s.core.known_child_sensitive_data_consents) })?
                || mspa_denies(
                    &s.core.mspa_service_provider_mode,
                    &[
                        &s.core.sale_opt_out_notice,
                        &s.core.targeted_advertising_opt_out_notice,
                    ],
                )
        })
    };
}

/// A state section's one known-child field (the states that have one,
/// rather than fields by age): anything but "not applicable" says the
/// user is a known child, whose data no consent here lets us target with,
/// as Prebid reads it.
fn known_child(c: &Consent) -> bool {
    *c != Consent::NotApplicable
}

/// What US National's versions share, from a core `$c` whose known-child
/// fields for under 13 and 13 to 16 are named as given: its three
/// opt-outs, their notices, the service-provider mode, and whether a known
/// child is there (under 13 no one may consent for targeting, any value but
/// "not applicable"; 13 to 16 needs the consent the section says was not
/// given). The versions are types of their own, with the same fields.
macro_rules! usnat_fields {
    ($c:expr, $under_13:ident, $from_13_to_16:ident) => {{
        let c = $c;
        let k = &c.known_child_sensitive_data_consents;
        (
            [
                &c.sale_opt_out,
                &c.sharing_opt_out,
                &c.targeted_advertising_opt_out,
            ],
            [
                &c.sale_opt_out_notice,
                &c.sharing_opt_out_notice,
                &c.targeted_advertising_opt_out_notice,
            ],
            &c.mspa_service_provider_mode,
            k.$under_13 != Consent::NotApplicable || k.$from_13_to_16 == Consent::NoConsent,
        )
    }};
}

/// Does this section record an opt-out that rules out behavioural
/// targeting? The TCF sections say nothing here (they are consent). `None`
/// for what may hold an opt-out nobody read: a US section that does not
/// decode (or whose version the decoder does not know), and an id past
/// those this crate decodes.
fn us_section_opts_out(id: i32, section: &str) -> Option<bool> {
    match id {
        ..USP_V1 => Some(false),
        // Read as `regs.us_privacy` is (either case: `1yyn` is an opt-out
        // there, and was unreadable here).
        USP_V1 => usp_read(section),
        US_NAT => usnat::UsNat::from_str(section).ok().and_then(|s| {
            let (opt_outs, notices, mspa, child) = match &s.core {
                usnat::Core::V1(c) => usnat_fields!(c, under_13, from_13_to_16),
                // The 16-17 field is not read, as Prebid does not: CMPs'
                // defaults fill it.
                usnat::Core::V2(c) => usnat_fields!(
                    c,
                    process_sensitive_data_under_13,
                    process_sensitive_data_from_13_to_16
                ),
                // A version this decoder does not know.
                _ => return None,
            };
            Some(
                opt_outs.into_iter().any(opted_out)
                    || s.gpc == Some(true)
                    || mspa_denies(mspa, &notices)
                    || child,
            )
        }),
        // California has no targeted-advertising opt-out: sharing is its
        // cross-context behavioural advertising opt-out.
        8 => usca::UsCa::from_str(section).ok().map(|s| {
            opted_out(&s.core.sale_opt_out)
                || opted_out(&s.core.sharing_opt_out)
                || s.gpc == Some(true)
                || mspa_denies(
                    &s.core.mspa_service_provider_mode,
                    &[&s.core.sale_opt_out_notice, &s.core.sharing_opt_out_notice],
                )
        }),
        9 => state_opts_out!(section, usva::UsVa; child),
        10 => state_opts_out!(section, usco::UsCo, gpc; child),
        11 => state_opts_out!(section, usut::UsUt; child),
        12 => state_opts_out!(section, usct::UsCt, gpc),
        13 => state_opts_out!(section, usfl::UsFl),
        14 => state_opts_out!(section, usmt::UsMt, gpc),
        15 => state_opts_out!(section, usor::UsOr, gpc),
        16 => state_opts_out!(section, ustx::UsTx, gpc; child),
        17 => state_opts_out!(section, usde::UsDe, gpc),
        18 => state_opts_out!(section, usia::UsIa, gpc; child),
        19 => state_opts_out!(section, usne::UsNe, gpc; child),
        20 => state_opts_out!(section, usnh::UsNh, gpc),
        21 => state_opts_out!(section, usnj::UsNj, gpc),
        22 => state_opts_out!(section, ustn::UsTn, gpc; child),
        23 => state_opts_out!(section, usmn::UsMn, gpc; child),
        // Past the last state this crate decodes (23 Minnesota): 24
        // Maryland, 25 Indiana, 26 Kentucky, 27 Rhode Island and later
        // ids, which it cannot read.
        _ => None,
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

/// Encoders of TC and GPP strings, for tests (here and in crates that
/// depend on this one, with the `test-encoders` feature).
#[cfg(any(test, feature = "test-encoders"))]
pub mod encode;

#[cfg(test)]
mod tests;
