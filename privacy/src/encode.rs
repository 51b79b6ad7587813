//! Writers of TCF v2 and GPP strings, as the IAB reference encoders write
//! them: tests build exactly the signals they mean.

// ------------------------------------------------------------ encoders

/// Bits written most significant first, base64url-encoded without
/// padding after filling the last byte, as the IAB reference encoders do.
#[derive(Default)]
pub struct Writer(pub Vec<bool>);

impl Writer {
    pub fn int(&mut self, value: u64, width: u32) -> &mut Self {
        for i in (0..width).rev() {
            self.0.push((value >> i) & 1 == 1);
        }
        self
    }
    /// A fixed bitfield: bit `i` (1-based) set when `i` is in `ids`.
    pub fn bitfield(&mut self, ids: &[u16], width: u16) -> &mut Self {
        for i in 1..=width {
            self.0.push(ids.contains(&i));
        }
        self
    }
    pub fn letters(&mut self, s: &str) -> &mut Self {
        for b in s.bytes() {
            self.int(u64::from(b - b'A'), 6);
        }
        self
    }
    pub fn fibonacci(&mut self, value: u32) -> &mut Self {
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
    pub fn base64url(&self) -> String {
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
pub fn runs(ids: &[u16]) -> Vec<(u16, u16)> {
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

pub fn range_entries(w: &mut Writer, entries: &[(u16, u16)]) {
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
pub type PubRestriction = (u8, u8, Vec<(u16, u16)>);

/// A TCF v2 core segment, field by field as the TCF v2.2 "TC string
/// format" lays it out.
pub struct Tc {
    pub version: u64,
    /// Deciseconds since the epoch.
    pub created: u64,
    pub cmp: (u64, u64, u64),
    pub language: &'static str,
    pub vendor_list_version: u64,
    pub policy_version: u64,
    pub service_specific: bool,
    pub purposes: Vec<u16>,
    pub li_purposes: Vec<u16>,
    pub publisher_cc: &'static str,
    pub vendors: Vec<u16>,
    pub li_vendors: Vec<u16>,
    /// Range encoding for the vendor sections instead of bitfields.
    pub ranges: bool,
    pub restrictions: Vec<PubRestriction>,
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
    pub fn granting(vendors: &[u16]) -> Tc {
        Tc {
            purposes: (1..=11).collect(),
            vendors: vendors.to_vec(),
            ..Tc::default()
        }
    }

    pub fn vendor_section(&self, w: &mut Writer, ids: &[u16]) {
        let max = ids.iter().copied().max().unwrap_or(0);
        w.int(max.into(), 16);
        if self.ranges {
            w.int(1, 1);
            range_entries(w, &runs(ids));
        } else {
            w.int(0, 1).bitfield(ids, max);
        }
    }

    pub fn writer(&self) -> Writer {
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

    pub fn encode(&self) -> String {
        self.writer().base64url()
    }
}

/// A GPP string: header (type 3, version 1, Fibonacci range of ids as
/// the IAB reference encoder writes it) and the sections, `~`-joined.
pub fn gpp(sections: &[(u32, &str)]) -> String {
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
pub fn usnat_v1(sale: u64, sharing: u64, targeted: u64) -> String {
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
