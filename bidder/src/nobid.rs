//! Why the bidder did not bid. One enum feeds metrics labels, logs and (with
//! the audiences issue) `/v1/explain`, so the three always agree.

/// Declared in the order of [`NoBid::ALL`]: `reason as usize` indexes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoBid {
    /// No valid config is loaded yet.
    NotReady,
    /// The request allows only currencies we have no rate for, or a floor
    /// is in one.
    Currency,
    /// No imp carries a medium the bidder buys.
    Media,
    /// No line item is in flight.
    Flight,
    /// Budget (line item or order) is spent.
    Budget,
    /// A lifetime budget is ahead of its even plan for now.
    Pacing,
    /// The shared state (Redis) cannot be reached, or the ledger's table of
    /// bids in flight is full (`--max-bids-in-flight`): budgets fail closed.
    Unavailable,
    /// No creative of a line item fits the slot's sizes.
    Size,
    /// The video or audio slot's placement kind is not one the line item buys.
    Placement,
    /// No video or audio creative fits the slot (mimes, durations, bitrate,
    /// required companion, VAST version, linearity).
    Creative,
    Country,
    Device,
    /// Region or city.
    Geo,
    Os,
    /// Site domain, app bundle or publisher (allow and block lists).
    Inventory,
    Daypart,
    /// The line item buys a behavioural audience and privacy signals
    /// (COPPA, GDPR without consent, LMT, opt-out of sale) forbid it.
    Privacy,
    Audience,
    Keyword,
    Deal,
    Floor,
    /// The advertiser's domain is in `badv` or its category in `bcat`.
    Blocked,
    Frequency,
    /// Work would pass the exchange's deadline: a late answer is a no-bid.
    Late,
    /// The slot is secure (`imp.secure`, an https page) and a creative that
    /// fits, or our trackers, would load over plain http.
    Secure,
    /// A creative that fits has an attribute the slot blocks (`battr`).
    Attribute,
}

impl NoBid {
    pub const ALL: [NoBid; 26] = [
        NoBid::NotReady,
        NoBid::Currency,
        NoBid::Media,
        NoBid::Flight,
        NoBid::Budget,
        NoBid::Pacing,
        NoBid::Unavailable,
        NoBid::Size,
        NoBid::Placement,
        NoBid::Creative,
        NoBid::Country,
        NoBid::Device,
        NoBid::Geo,
        NoBid::Os,
        NoBid::Inventory,
        NoBid::Daypart,
        NoBid::Privacy,
        NoBid::Audience,
        NoBid::Keyword,
        NoBid::Deal,
        NoBid::Floor,
        NoBid::Blocked,
        NoBid::Frequency,
        NoBid::Late,
        NoBid::Secure,
        NoBid::Attribute,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoBid::NotReady => "not_ready",
            NoBid::Currency => "currency",
            NoBid::Media => "media",
            NoBid::Flight => "flight",
            NoBid::Budget => "budget",
            NoBid::Pacing => "pacing",
            NoBid::Unavailable => "state_unavailable",
            NoBid::Size => "size",
            NoBid::Placement => "placement",
            NoBid::Creative => "creative",
            NoBid::Country => "country",
            NoBid::Device => "device",
            NoBid::Geo => "geo",
            NoBid::Os => "os",
            NoBid::Inventory => "inventory",
            NoBid::Daypart => "daypart",
            NoBid::Privacy => "privacy",
            NoBid::Audience => "audience",
            NoBid::Keyword => "keyword",
            NoBid::Deal => "deal",
            NoBid::Floor => "floor",
            NoBid::Blocked => "blocked",
            NoBid::Frequency => "frequency",
            NoBid::Late => "late",
            NoBid::Secure => "secure",
            NoBid::Attribute => "attribute",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_declaration_order() {
        for (i, r) in NoBid::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "{r:?}");
        }
    }
}
