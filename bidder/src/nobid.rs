//! Why the bidder did not bid. One enum feeds metrics labels, logs and (with
//! the audiences issue) `/v1/explain`, so the three always agree.

/// The enum, [`NoBid::ALL`] and the labels from one list: the metrics
/// keep one counter per entry of `ALL` (`reason as usize` indexes it), so
/// a reason left out of `ALL` would have been counted under the counter
/// after the last, another series' (a review found it at stop 53).
macro_rules! reasons {
    ($($(#[$doc:meta])* $variant:ident => $label:literal,)*) => {
        /// Declared in the order of [`NoBid::ALL`]: `reason as usize`
        /// indexes it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum NoBid {
            $($(#[$doc])* $variant,)*
        }

        impl NoBid {
            /// Every reason, in declaration order.
            pub const ALL: [NoBid; [$($label),*].len()] = [$(NoBid::$variant),*];

            /// The reason's label in metrics, logs and `/v1/explain`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(NoBid::$variant => $label,)*
                }
            }
        }
    };
}

reasons! {
    /// No valid config is loaded yet.
    NotReady => "not_ready",
    /// The request allows only currencies we have no rate for, or a floor
    /// is in one.
    Currency => "currency",
    /// No imp carries a medium the bidder buys.
    Media => "media",
    /// A win of the imp bills more (or fewer) impressions than one
    /// (`imp.qty.multiplier`, digital out-of-home), or says so unreadably:
    /// its spend would be booked at a fraction of what the exchange bills.
    Quantity => "quantity",
    /// No line item is in flight.
    Flight => "flight",
    /// Budget (line item or order) is spent.
    Budget => "budget",
    /// A lifetime budget is ahead of its even plan for now.
    Pacing => "pacing",
    /// The shared state (Redis) cannot be reached, or the ledger's table of
    /// bids in flight is full (`--max-bids-in-flight`): budgets fail closed.
    Unavailable => "state_unavailable",
    /// No creative of a line item fits the slot's sizes.
    Size => "size",
    /// The video or audio slot's placement kind is not one the line item buys.
    Placement => "placement",
    /// No video or audio creative fits the slot (mimes, durations, bitrate,
    /// required companion, VAST version, linearity).
    Creative => "creative",
    Country => "country",
    Device => "device",
    /// Region or city.
    Geo => "geo",
    Os => "os",
    /// Site domain, app bundle or publisher (allow and block lists).
    Inventory => "inventory",
    Daypart => "daypart",
    /// The line item buys a behavioural audience and privacy signals
    /// (COPPA, GDPR without consent, LMT, opt-out of sale) forbid it.
    Privacy => "privacy",
    Audience => "audience",
    Keyword => "keyword",
    Deal => "deal",
    Floor => "floor",
    /// The advertiser's domain is in `badv` or its category in `bcat`.
    Blocked => "blocked",
    Frequency => "frequency",
    /// Work would pass the exchange's deadline: a late answer is a no-bid.
    Late => "late",
    /// The slot is secure (`imp.secure`, an https page) and a creative that
    /// fits, or our trackers, would load over plain http.
    Secure => "secure",
    /// A creative that fits has an attribute the slot blocks (`battr`).
    Attribute => "attribute",
    /// A creative that fits is in a language the request does not allow
    /// (`wlang`, `wlangb`).
    Language => "language",
    /// The request's `wseat` leaves out our seat at the exchange (its
    /// profile's `seat`), or its `bseat` lists it.
    Seat => "seat",
    /// The request requires the Digital Services Act's transparency
    /// information (`regs.ext.dsa.dsarequired` 2 or 3) and its publisher
    /// cannot show it (`pubrender` 0): the ad would have to, and ours do
    /// not render it.
    Dsa => "dsa",
    /// The bid bodies being read held all the memory they may share
    /// (`--max-body-memory`): this one was not read. Many connections
    /// each trickling a large body, not the exchange's doing.
    Busy => "busy",
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
