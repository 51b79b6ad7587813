//! The two file kinds beside advertisers: exchange profiles and currency
//! rates.

use serde_saphyr::Spanned;

use super::FileChecker;
use crate::model::{ChargeOn, CurrencyRates, EncryptionScheme, Exchange, PriceEncryption};
use crate::money::Rate;
use crate::raw::{RawCurrencyRates, RawExchange, RawPriceEncryption, Text};
use crate::time::Date;

/// VAST versions a player may get by default, and their InLine protocol
/// codes (AdCOM "Creative Subtypes - Audio/Video").
pub(crate) const VAST_VERSIONS: [(&str, i32); 5] =
    [("2.0", 2), ("3.0", 3), ("4.0", 7), ("4.1", 11), ("4.2", 13)];

/// The currency of every budget, and so of the rates file's `base`.
pub(crate) const BASE_CURRENCY: &str = "USD";

/// An exchange that sends no `tmax` gets this range at most: below 10 ms no
/// answer makes it back, above 10 s no exchange waits.
const TMAX_RANGE: std::ops::RangeInclusive<i64> = 10..=10_000;

impl FileChecker<'_> {
    pub(super) fn exchange(&mut self, raw: &Spanned<RawExchange>) -> Option<Exchange> {
        let e = &raw.value;
        let subject = format!("exchange \"{}\"", e.id.value);
        self.id(&subject, &e.id);
        // The id is a path segment of the bid endpoint and a metrics label.
        // An empty id or one with spaces was reported by `id` already.
        if !e.id.value.trim().is_empty()
            && !e
                .id
                .value
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
            && !e
                .id
                .value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            self.report(
                e.id.referenced,
                format!(
                    "{subject}: an exchange id is part of its bid URL: use letters, digits, \
                     '-', '_' and '.', like google-adx"
                ),
            );
        }
        if !e.id.value.is_empty() && e.id.value.bytes().all(|b| b == b'.') {
            self.report(
                e.id.referenced,
                format!("{subject}: an exchange id is part of its bid URL: it cannot be only dots"),
            );
        }
        if e.id.value.len() > 64 {
            self.report(
                e.id.referenced,
                format!("{subject}: the id is longer than 64 characters"),
            );
        }
        if e.name.value.trim().is_empty() {
            self.report(e.name.referenced, format!("{subject}: name is empty"));
        }
        // Each value is `None` once reported; none stops the others' checks.
        let price_encryption = e
            .price_encryption
            .as_ref()
            .map(|p| self.price_encryption(&subject, &p.value));
        let charge_on = match &e.charge_on {
            None => Some(ChargeOn::default()),
            Some(t) => match ChargeOn::parse(&t.value) {
                Some(c) => Some(c),
                None => {
                    let other = &t.value;
                    self.report(
                        t.referenced,
                        format!(
                            "{subject}: unknown charge_on \"{other}\"; expected win (the win \
                             notice charges), billing (the billing notice charges) or first \
                             (whichever comes first)"
                        ),
                    );
                    None
                }
            },
        };
        let vast_default_protocol = match &e.vast_default {
            None => Some(3),
            Some(t) => match VAST_VERSIONS.iter().find(|(v, _)| *v == t.value) {
                Some((_, code)) => Some(*code),
                None => {
                    self.report(
                        t.referenced,
                        format!(
                            "{subject}: vast_default \"{}\" is not a VAST version we write; \
                             expected one of: 2.0, 3.0, 4.0, 4.1, 4.2 (quoted, like \"3.0\")",
                            t.value
                        ),
                    );
                    None
                }
            },
        };
        let openrtb_2_5 = match &e.openrtb_version {
            None => Some(false),
            Some(t) if t.value == "2.5" => Some(true),
            Some(t) if t.value == "2.6" => Some(false),
            Some(t) => {
                self.report(
                    t.referenced,
                    format!(
                        "{subject}: openrtb_version \"{}\" is not a version we answer in; \
                         expected \"2.5\" or \"2.6\" (quoted)",
                        t.value
                    ),
                );
                None
            }
        };
        let tmax_default_ms = e
            .tmax_default_ms
            .as_ref()
            .map(|t| self.whole(&subject, "tmax_default_ms", t, TMAX_RANGE));
        let reservation_ttl_secs = e
            .reservation_ttl_secs
            .as_ref()
            .map(|t| self.whole(&subject, "reservation_ttl_secs", t, 1..=3600));
        let sync_url = match &e.sync_url {
            None => Some(None),
            Some(u) => self.sync_url(&subject, u).then(|| Some(u.value.clone())),
        };
        let mut sync_redirect_hosts = Vec::new();
        for h in e.sync_redirect_hosts.iter().flat_map(|l| &l.value.0) {
            let host = h.value.trim().to_ascii_lowercase();
            let ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                && !host.starts_with(['.', '-'])
                && !host.ends_with(['.', '-']);
            if ok {
                sync_redirect_hosts.push(host);
            } else {
                self.report(
                    h.referenced,
                    format!(
                        "{subject}: sync_redirect_hosts: \"{}\" is not a host name (like \
                         sync.exchange.example: no scheme, port or path)",
                        h.value
                    ),
                );
            }
        }
        let mut allow_from = Vec::new();
        for n in e.allow_from.iter().flat_map(|l| &l.value.0) {
            let text = n.value.trim();
            let net = text
                .parse::<ipnet::IpNet>()
                .ok()
                .or_else(|| {
                    text.parse::<std::net::IpAddr>()
                        .ok()
                        .map(ipnet::IpNet::from)
                })
                .map(crate::canonical_net);
            match net {
                // A network written from one of its hosts is more likely a
                // typo in the length (203.0.113.7/2) than meant.
                Some(net) if net != net.trunc() => self.report(
                    n.referenced,
                    format!(
                        "{subject}: allow_from: \"{}\" has bits set past its length; write the \
                         network ({}) or the address alone",
                        n.value,
                        net.trunc()
                    ),
                ),
                Some(net) if net.prefix_len() == 0 => self.report(
                    n.referenced,
                    format!(
                        "{subject}: allow_from: \"{}\" is every address; leave allow_from out \
                         to take requests from anywhere",
                        n.value
                    ),
                ),
                Some(net) => allow_from.push(net),
                None => self.report(
                    n.referenced,
                    format!(
                        "{subject}: allow_from: \"{}\" is not a network or an address (like \
                         203.0.113.0/24, 198.51.100.7 or 2001:db8::/32)",
                        n.value
                    ),
                ),
            }
        }
        if let Some(list) = &e.allow_from {
            if list.value.0.is_empty() {
                // An empty list reads as "from anywhere"; written out, it
                // more likely meant "from nowhere yet".
                self.report(
                    list.referenced,
                    format!(
                        "{subject}: allow_from is empty; leave it out to take requests from \
                         anywhere"
                    ),
                );
            }
        }
        let seat = match &e.seat {
            None => Some(None),
            Some(s) => {
                let ok = !s.value.is_empty()
                    && s.value.len() <= 64
                    && s.value.chars().all(|c| c.is_ascii_graphic());
                if !ok {
                    self.report(
                        s.referenced,
                        format!(
                            "{subject}: seat \"{}\" is not a seat id (1 to 64 printable ASCII \
                             characters, no spaces), as the exchange gave it",
                            s.value
                        ),
                    );
                }
                ok.then(|| Some(s.value.clone()))
            }
        };
        Some(Exchange {
            id: e.id.value.clone(),
            name: e.name.value.clone(),
            price_encryption: price_encryption.map_or(Some(None), |p| p.map(Some))?,
            charge_on: charge_on?,
            vast_default_protocol: vast_default_protocol?,
            gzip_responses: e.gzip_responses.as_ref().is_some_and(|g| g.value),
            openrtb_2_5: openrtb_2_5?,
            tmax_default_ms: tmax_default_ms.map_or(Some(None), |t| t.map(Some))?,
            reservation_ttl_secs: reservation_ttl_secs.map_or(Some(None), |t| t.map(Some))?,
            sync_url: sync_url?,
            sync_redirect_hosts,
            allow_from,
            seat: seat?,
            file: self.file.to_path_buf(),
        })
    }

    /// A sync URL must be https (the cookie it follows is `Secure`) and
    /// carry the user id macro, or the exchange would store nothing.
    fn sync_url(&mut self, subject: &str, u: &crate::raw::Text) -> bool {
        if !self.url(subject, "sync_url", u) {
            return false;
        }
        let v = &u.value;
        let problem = if !v.to_ascii_lowercase().starts_with("https://") {
            Some("must be https")
        } else if !v.contains("${UID}") && !v.contains("$UID") {
            Some("has no ${UID} (or $UID) macro for the user id")
        } else {
            None
        };
        if let Some(p) = problem {
            self.report(u.referenced, format!("{subject}: sync_url \"{v}\" {p}"));
        }
        problem.is_none()
    }

    /// Keys are read from the environment here, when the config loads: a
    /// missing or malformed key is refused with the file's position, and
    /// the running config keeps its keys.
    fn price_encryption(
        &mut self,
        subject: &str,
        p: &RawPriceEncryption,
    ) -> Option<PriceEncryption> {
        let scheme = match EncryptionScheme::parse(&p.scheme.value) {
            Some(s) => s,
            None => {
                let other = &p.scheme.value;
                self.report(
                    p.scheme.referenced,
                    format!(
                        "{subject}: unknown price_encryption scheme \"{other}\"; expected google"
                    ),
                );
                return None;
            }
        };
        if self.secrets == super::Secrets::Skipped {
            return None;
        }
        let encryption_key =
            self.key_from_env(subject, "encryption_key_env", &p.encryption_key_env);
        let integrity_key = self.key_from_env(subject, "integrity_key_env", &p.integrity_key_env);
        let (encryption_key, integrity_key) = (encryption_key?, integrity_key?);
        if let Err(e) = pricecrypt::Keys::from_base64(&encryption_key, &integrity_key) {
            // Point at the variable whose key is bad.
            let (var, name) = match e {
                pricecrypt::KeyError::Empty(pricecrypt::KeyName::Integrity)
                | pricecrypt::KeyError::Encoding(pricecrypt::KeyName::Integrity)
                | pricecrypt::KeyError::Length {
                    name: pricecrypt::KeyName::Integrity,
                    ..
                } => ("integrity_key_env", &p.integrity_key_env),
                _ => ("encryption_key_env", &p.encryption_key_env),
            };
            self.report(
                name.referenced,
                format!(
                    "{subject}: the key in ${} ({var}) is not usable: {e}",
                    name.value
                ),
            );
            return None;
        }
        Some(PriceEncryption {
            scheme,
            encryption_key,
            integrity_key,
            iv_timestamps: p.iv_timestamps.as_ref().is_none_or(|b| b.value),
        })
    }

    fn key_from_env(&mut self, subject: &str, key: &str, name: &Text) -> Option<String> {
        let n = name.value.as_str();
        // Upper case, digits and `_`, as environment variables are named: a
        // web-safe base64 key pasted here by mistake (it has lower case)
        // is refused without being repeated in logs.
        let well_formed = !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && !n.as_bytes()[0].is_ascii_digit();
        if !well_formed {
            self.report(
                name.referenced,
                format!(
                    "{subject}: {key} names an environment variable in capitals, like \
                     ADX_ENCRYPTION_KEY; this value is not one (and is not repeated here, in case \
                     it is a key: keys never go in the YAML itself)"
                ),
            );
            return None;
        }
        match std::env::var(n) {
            Ok(v) if !v.trim().is_empty() => Some(v.trim().to_owned()),
            _ => {
                self.report(
                    name.referenced,
                    format!("{subject}: the environment variable {n} ({key}) is not set"),
                );
                None
            }
        }
    }

    pub(super) fn currency_rates(
        &mut self,
        raw: &Spanned<RawCurrencyRates>,
    ) -> Option<CurrencyRates> {
        let r = &raw.value;
        let subject = "currency_rates";
        let mut ok = true;
        if r.base.value != BASE_CURRENCY {
            self.report(
                r.base.referenced,
                format!(
                    "{subject}: base must be USD, the currency of every budget (it is \"{}\")",
                    r.base.value
                ),
            );
            ok = false;
        }
        let as_of = match Date::parse(&r.as_of.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.report(r.as_of.referenced, format!("{subject}: as_of {e}"));
                None
            }
        };
        if r.rates.value.0.is_empty() {
            self.report(
                r.rates.referenced,
                format!("{subject}: rates is empty; list units per USD, like EUR: 0.95"),
            );
        }
        let mut rates: Vec<(String, Rate)> = Vec::with_capacity(r.rates.value.0.len());
        for (code, rate) in &r.rates.value.0 {
            let c = code.value.as_str();
            if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                self.report(
                    code.referenced,
                    format!(
                        "{subject}: \"{c}\" is not a currency code; use ISO 4217's three \
                         capital letters, like EUR"
                    ),
                );
                ok = false;
                continue;
            }
            // A typo (EUO) would price requests and purchases in a currency
            // nobody trades in; an exchange or a shop never names it.
            if !is_iso_4217(c) {
                self.report(
                    code.referenced,
                    format!(
                        "{subject}: \"{c}\" is not an ISO 4217 currency code (like EUR, GBP, JPY)"
                    ),
                );
                ok = false;
                continue;
            }
            if rates.iter().any(|(x, _)| x == c) {
                self.report(code.referenced, format!("{subject}: {c} is listed twice"));
                ok = false;
                continue;
            }
            match Rate::parse_decimal(&rate.value.0) {
                Ok(v) if c == "USD" && v != Rate::ONE => {
                    self.report(
                        rate.referenced,
                        format!("{subject}: USD is the base; its rate can only be 1"),
                    );
                    ok = false;
                }
                Ok(_) if c == "USD" => {}
                Ok(v) => rates.push((c.to_owned(), v)),
                Err(e) => {
                    self.report(rate.referenced, format!("{subject}: {c} {e}"));
                    ok = false;
                }
            }
        }
        let max_age_days = match &r.max_age_days {
            None => Some(None),
            Some(d) => self.whole(subject, "max_age_days", d, 1..=3650).map(Some),
        };
        rates.sort_by(|a, b| a.0.cmp(&b.0));
        (ok && !r.rates.value.0.is_empty()).then_some(())?;
        Some(CurrencyRates {
            as_of: as_of?,
            max_age_days: max_age_days?,
            rates,
            file: self.file.to_path_buf(),
        })
    }
}

/// Whether `code` is one of ISO 4217's active currency codes (funds and
/// metals, X.., included: an exchange may price in them), one withdrawn
/// since 1999 (the euro's predecessors, HRK, VEF...), one of the local
/// issues FX feeds quote beside ISO's (GGP, IMP, JEP, FOK, KID, TVD), bitcoin
/// as they quote it (BTC, XBT), ISO's test and no-currency codes, or CNH, the offshore yuan FX feeds quote under its own
/// code. A rates file loaded by an earlier version (which took any three
/// capitals) may still list a withdrawn code (HRK until 2023): refusing it
/// would stop an upgraded bidder from starting on a config that served.
fn is_iso_4217(code: &str) -> bool {
    const ALSO: &str = "ADP AFA AON AOR ATS AZM BEF BGL BYB BYR CNH CSD CYP DEM ECS ECV EEK ESP \
        FIM FOK FRF GGP GHC GRD GWP HRK IEP IMP ITL JEP KID LTL LUF LVL MGF MRO MTL MZM NLG PTE \
        ROL SDD SIT SKK SRG STD TJR TMM TPE TRL TVD VEB VEF XEU XFO XFU YUM ZMK ZWD ZWN ZWR \
        BTC XBT XTS XXX";
    if code.len() == 3 && ALSO.split_ascii_whitespace().any(|c| c == code) {
        return true;
    }
    const CODES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
        BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK \
        DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR \
        ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD \
        MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB \
        PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP \
        STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES \
        VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG \
        ZWL";
    code.len() == 3 && CODES.split_ascii_whitespace().any(|c| c == code)
}
