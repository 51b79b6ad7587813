//! ISO 3166-1 country codes, embedded so validation needs no network or data files.
//!
//! OpenRTB `geo.country` carries alpha-3; account managers often type the
//! alpha-2 they know from domains, so the pairs are kept to suggest a fix.

/// The 249 officially assigned codes as (alpha-3, alpha-2), sorted by alpha-3.
#[rustfmt::skip]
const CODES: [(&str, &str); 249] = [
    ("ABW", "AW"), ("AFG", "AF"), ("AGO", "AO"), ("AIA", "AI"), ("ALA", "AX"), ("ALB", "AL"),
    ("AND", "AD"), ("ARE", "AE"), ("ARG", "AR"), ("ARM", "AM"), ("ASM", "AS"), ("ATA", "AQ"),
    ("ATF", "TF"), ("ATG", "AG"), ("AUS", "AU"), ("AUT", "AT"), ("AZE", "AZ"), ("BDI", "BI"),
    ("BEL", "BE"), ("BEN", "BJ"), ("BES", "BQ"), ("BFA", "BF"), ("BGD", "BD"), ("BGR", "BG"),
    ("BHR", "BH"), ("BHS", "BS"), ("BIH", "BA"), ("BLM", "BL"), ("BLR", "BY"), ("BLZ", "BZ"),
    ("BMU", "BM"), ("BOL", "BO"), ("BRA", "BR"), ("BRB", "BB"), ("BRN", "BN"), ("BTN", "BT"),
    ("BVT", "BV"), ("BWA", "BW"), ("CAF", "CF"), ("CAN", "CA"), ("CCK", "CC"), ("CHE", "CH"),
    ("CHL", "CL"), ("CHN", "CN"), ("CIV", "CI"), ("CMR", "CM"), ("COD", "CD"), ("COG", "CG"),
    ("COK", "CK"), ("COL", "CO"), ("COM", "KM"), ("CPV", "CV"), ("CRI", "CR"), ("CUB", "CU"),
    ("CUW", "CW"), ("CXR", "CX"), ("CYM", "KY"), ("CYP", "CY"), ("CZE", "CZ"), ("DEU", "DE"),
    ("DJI", "DJ"), ("DMA", "DM"), ("DNK", "DK"), ("DOM", "DO"), ("DZA", "DZ"), ("ECU", "EC"),
    ("EGY", "EG"), ("ERI", "ER"), ("ESH", "EH"), ("ESP", "ES"), ("EST", "EE"), ("ETH", "ET"),
    ("FIN", "FI"), ("FJI", "FJ"), ("FLK", "FK"), ("FRA", "FR"), ("FRO", "FO"), ("FSM", "FM"),
    ("GAB", "GA"), ("GBR", "GB"), ("GEO", "GE"), ("GGY", "GG"), ("GHA", "GH"), ("GIB", "GI"),
    ("GIN", "GN"), ("GLP", "GP"), ("GMB", "GM"), ("GNB", "GW"), ("GNQ", "GQ"), ("GRC", "GR"),
    ("GRD", "GD"), ("GRL", "GL"), ("GTM", "GT"), ("GUF", "GF"), ("GUM", "GU"), ("GUY", "GY"),
    ("HKG", "HK"), ("HMD", "HM"), ("HND", "HN"), ("HRV", "HR"), ("HTI", "HT"), ("HUN", "HU"),
    ("IDN", "ID"), ("IMN", "IM"), ("IND", "IN"), ("IOT", "IO"), ("IRL", "IE"), ("IRN", "IR"),
    ("IRQ", "IQ"), ("ISL", "IS"), ("ISR", "IL"), ("ITA", "IT"), ("JAM", "JM"), ("JEY", "JE"),
    ("JOR", "JO"), ("JPN", "JP"), ("KAZ", "KZ"), ("KEN", "KE"), ("KGZ", "KG"), ("KHM", "KH"),
    ("KIR", "KI"), ("KNA", "KN"), ("KOR", "KR"), ("KWT", "KW"), ("LAO", "LA"), ("LBN", "LB"),
    ("LBR", "LR"), ("LBY", "LY"), ("LCA", "LC"), ("LIE", "LI"), ("LKA", "LK"), ("LSO", "LS"),
    ("LTU", "LT"), ("LUX", "LU"), ("LVA", "LV"), ("MAC", "MO"), ("MAF", "MF"), ("MAR", "MA"),
    ("MCO", "MC"), ("MDA", "MD"), ("MDG", "MG"), ("MDV", "MV"), ("MEX", "MX"), ("MHL", "MH"),
    ("MKD", "MK"), ("MLI", "ML"), ("MLT", "MT"), ("MMR", "MM"), ("MNE", "ME"), ("MNG", "MN"),
    ("MNP", "MP"), ("MOZ", "MZ"), ("MRT", "MR"), ("MSR", "MS"), ("MTQ", "MQ"), ("MUS", "MU"),
    ("MWI", "MW"), ("MYS", "MY"), ("MYT", "YT"), ("NAM", "NA"), ("NCL", "NC"), ("NER", "NE"),
    ("NFK", "NF"), ("NGA", "NG"), ("NIC", "NI"), ("NIU", "NU"), ("NLD", "NL"), ("NOR", "NO"),
    ("NPL", "NP"), ("NRU", "NR"), ("NZL", "NZ"), ("OMN", "OM"), ("PAK", "PK"), ("PAN", "PA"),
    ("PCN", "PN"), ("PER", "PE"), ("PHL", "PH"), ("PLW", "PW"), ("PNG", "PG"), ("POL", "PL"),
    ("PRI", "PR"), ("PRK", "KP"), ("PRT", "PT"), ("PRY", "PY"), ("PSE", "PS"), ("PYF", "PF"),
    ("QAT", "QA"), ("REU", "RE"), ("ROU", "RO"), ("RUS", "RU"), ("RWA", "RW"), ("SAU", "SA"),
    ("SDN", "SD"), ("SEN", "SN"), ("SGP", "SG"), ("SGS", "GS"), ("SHN", "SH"), ("SJM", "SJ"),
    ("SLB", "SB"), ("SLE", "SL"), ("SLV", "SV"), ("SMR", "SM"), ("SOM", "SO"), ("SPM", "PM"),
    ("SRB", "RS"), ("SSD", "SS"), ("STP", "ST"), ("SUR", "SR"), ("SVK", "SK"), ("SVN", "SI"),
    ("SWE", "SE"), ("SWZ", "SZ"), ("SXM", "SX"), ("SYC", "SC"), ("SYR", "SY"), ("TCA", "TC"),
    ("TCD", "TD"), ("TGO", "TG"), ("THA", "TH"), ("TJK", "TJ"), ("TKL", "TK"), ("TKM", "TM"),
    ("TLS", "TL"), ("TON", "TO"), ("TTO", "TT"), ("TUN", "TN"), ("TUR", "TR"), ("TUV", "TV"),
    ("TWN", "TW"), ("TZA", "TZ"), ("UGA", "UG"), ("UKR", "UA"), ("UMI", "UM"), ("URY", "UY"),
    ("USA", "US"), ("UZB", "UZ"), ("VAT", "VA"), ("VCT", "VC"), ("VEN", "VE"), ("VGB", "VG"),
    ("VIR", "VI"), ("VNM", "VN"), ("VUT", "VU"), ("WLF", "WF"), ("WSM", "WS"), ("YEM", "YE"),
    ("ZAF", "ZA"), ("ZMB", "ZM"), ("ZWE", "ZW"),
];

/// Whether `code` is an officially assigned alpha-3 code (upper case only).
pub(crate) fn is_alpha3(code: &str) -> bool {
    CODES.binary_search_by(|(a3, _)| (*a3).cmp(code)).is_ok()
}

/// The alpha-3 code for an officially assigned alpha-2 code (upper case only).
pub(crate) fn alpha3_for_alpha2(code: &str) -> Option<&'static str> {
    CODES.iter().find(|(_, a2)| *a2 == code).map(|(a3, _)| *a3)
}

/// The ISO 3166-1 alpha-2 code of an officially assigned alpha-3 code (upper
/// case only), e.g. `"USA"` → `"US"`: OpenRTB `geo.country` is alpha-3 while
/// ISO 3166-2 region codes start with the alpha-2.
pub fn country_alpha2(alpha3: &str) -> Option<&'static str> {
    CODES
        .binary_search_by(|(a3, _)| (*a3).cmp(alpha3))
        .ok()
        .map(|i| CODES[i].1)
}

/// The code that was probably meant: the upper-case form of a lower-case
/// code, or the alpha-3 of an alpha-2 code.
pub(crate) fn suggest(code: &str) -> Option<&'static str> {
    let upper = code.trim().to_ascii_uppercase();
    // "UK" is only exceptionally reserved, but it is what people type for GBR.
    if upper == "UK" {
        return Some("GBR");
    }
    if let Ok(i) = CODES.binary_search_by(|(a3, _)| (*a3).cmp(upper.as_str())) {
        return Some(CODES[i].0);
    }
    alpha3_for_alpha2(&upper)
}

/// ISO 3166-2 subdivision codes (the part after the country's `-`) of the
/// countries whose regions line items target most, sorted by country. A
/// region of one of these outside its list is a typo that would never
/// match; the regions of other countries are taken as written, since no
/// full ISO 3166-2 list ships with the bidder.
#[rustfmt::skip]
const SUBDIVISIONS: [(&str, &[&str]); 6] = [
    ("AU", &["ACT", "NSW", "NT", "QLD", "SA", "TAS", "VIC", "WA"]),
    ("BR", &[
        "AC", "AL", "AM", "AP", "BA", "CE", "DF", "ES", "GO", "MA", "MG", "MS", "MT", "PA",
        "PB", "PE", "PI", "PR", "RJ", "RN", "RO", "RR", "RS", "SC", "SE", "SP", "TO",
    ]),
    ("CA", &["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]),
    ("DE", &[
        "BB", "BE", "BW", "BY", "HB", "HE", "HH", "MV", "NI", "NW", "RP", "SH", "SL", "SN",
        "ST", "TH",
    ]),
    ("MX", &[
        "AGU", "BCN", "BCS", "CAM", "CHH", "CHP", "CMX", "COA", "COL", "DUR", "GRO", "GUA",
        "HID", "JAL", "MEX", "MIC", "MOR", "NAY", "NLE", "OAX", "PUE", "QUE", "ROO", "SIN",
        "SLP", "SON", "TAB", "TAM", "TLA", "VER", "YUC", "ZAC",
    ]),
    // The 50 states, the district and the outlying areas.
    ("US", &[
        "AK", "AL", "AR", "AS", "AZ", "CA", "CO", "CT", "DC", "DE", "FL", "GA", "GU", "HI",
        "IA", "ID", "IL", "IN", "KS", "KY", "LA", "MA", "MD", "ME", "MI", "MN", "MO", "MP",
        "MS", "MT", "NC", "ND", "NE", "NH", "NJ", "NM", "NV", "NY", "OH", "OK", "OR", "PA",
        "PR", "RI", "SC", "SD", "TN", "TX", "UM", "UT", "VA", "VI", "VT", "WA", "WI", "WV",
        "WY",
    ]),
];

/// The subdivision codes of an alpha-2 country when the bidder knows them
/// (see `SUBDIVISIONS`), sorted.
pub(crate) fn subdivisions(alpha2: &str) -> Option<&'static [&'static str]> {
    SUBDIVISIONS
        .binary_search_by(|(c, _)| (*c).cmp(alpha2))
        .ok()
        .map(|i| SUBDIVISIONS[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        assert!(CODES.windows(2).all(|w| w[0].0 < w[1].0));
        let mut a2: Vec<&str> = CODES.iter().map(|c| c.1).collect();
        a2.sort_unstable();
        a2.dedup();
        assert_eq!(a2.len(), 249);
        for (a3, a2) in CODES {
            assert!(a3.len() == 3 && a3.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(a2.len() == 2 && a2.bytes().all(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn looks_up_codes() {
        for code in [
            "USA", "CAN", "DEU", "GBR", "ZWE", "ABW", "ALA", "SSD", "BES", "CUW",
        ] {
            assert!(is_alpha3(code), "{code}");
        }
        // Lower case, alpha-2, withdrawn (ANT, SCG) and user-assigned (XKX) are not.
        for code in ["usa", "US", "ANT", "SCG", "XKX", "UK", "EU", ""] {
            assert!(!is_alpha3(code), "{code}");
        }
        assert_eq!(alpha3_for_alpha2("US"), Some("USA"));
        assert_eq!(alpha3_for_alpha2("GB"), Some("GBR"));
        assert_eq!(alpha3_for_alpha2("DE"), Some("DEU"));
        assert_eq!(alpha3_for_alpha2("UK"), None);
        assert_eq!(country_alpha2("USA"), Some("US"));
        assert_eq!(country_alpha2("GBR"), Some("GB"));
        assert_eq!(country_alpha2("ABW"), Some("AW"));
        assert_eq!(country_alpha2("ZWE"), Some("ZW"));
        assert_eq!(country_alpha2("usa"), None);
        assert_eq!(country_alpha2("US"), None);
        assert_eq!(country_alpha2(""), None);
        for (a3, a2) in CODES {
            assert_eq!(country_alpha2(a3), Some(a2));
            assert_eq!(alpha3_for_alpha2(a2), Some(a3));
        }
        assert_eq!(suggest("US"), Some("USA"));
        assert_eq!(suggest("us"), Some("USA"));
        assert_eq!(suggest("usa"), Some("USA"));
        assert_eq!(suggest("UK"), Some("GBR"));
        assert_eq!(suggest("XX"), None);
        assert_eq!(suggest("XYZ"), None);
    }

    #[test]
    fn subdivision_lists_are_sorted_unique_and_of_assigned_countries() {
        assert!(SUBDIVISIONS.windows(2).all(|w| w[0].0 < w[1].0));
        for (country, codes) in SUBDIVISIONS {
            assert!(alpha3_for_alpha2(country).is_some(), "{country}");
            assert!(codes.windows(2).all(|w| w[0] < w[1]), "{country}");
            assert!(codes
                .iter()
                .all(|c| (1..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_uppercase())));
        }
        assert_eq!(subdivisions("US").map(<[_]>::len), Some(57));
        assert!(subdivisions("US").is_some_and(|s| s.contains(&"CO") && !s.contains(&"XX")));
        assert_eq!(subdivisions("CA").map(<[_]>::len), Some(13));
        assert_eq!(subdivisions("FR"), None);
    }
}
