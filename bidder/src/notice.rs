//! Win, billing and loss notice URLs: what the bidder writes into `nurl`,
//! `burl` and `lurl`, and reading them back when the exchange calls.
//!
//! A notice carries everything needed to settle its bid (bid id, imp, line
//! item, order, creative, the bid price in micros, when it was made, the
//! test flag), so settling needs no lookup of bid-time state. A signature
//! (`s=`) covers the notice kind and every one of those parameters exactly
//! as written, in a fixed order: the only thing an exchange fills in is the
//! value of `price`, which comes last and is capped at the signed bid price.
//! Anything else — a parameter added, repeated, reordered or changed, a win
//! URL called as a loss — fails the signature.
//!
//! How URLs are signed ([`UrlSignatures`]). A bid writes a dozen signed URLs
//! or more (three notices, impression and click trackers, a VAST event
//! each), all over the same text but for a short tail and their purpose.
//!
//! - `per-url`, as every version before this one: each URL carries the
//!   first 128 bits of HMAC-SHA256(secret, text ‖ tail ‖ `\n` ‖ purpose).
//! - `per-bid`: the bid is keyed once, with SipHash-2-4 (128-bit output)
//!   of `b=`bid under the bid-key secret. The bid-key secret is the last
//!   128 bits of HMAC-SHA256(secret, `\n` ‖ `bid-key`), made at start-up
//!   under a purpose nothing is ever published under, so no HMAC the
//!   bidder publishes is made with the key that makes bid keys; and the
//!   last half of an HMAC is never published under any purpose (URLs
//!   carry the first), so even a signature made by mistake over that
//!   text would not give the secret away. Each URL's
//!   signature is SipHash-2-4 with 128-bit output of text ‖ tail ‖ `\n` ‖
//!   purpose under the bid's key (the message the per-URL HMAC signs). No
//!   SHA-256 per bid: one SipHash for the key and one per URL (builds
//!   before this made each bid's key with an HMAC, whose two SHA-256
//!   blocks cost more than all of a bid's URLs; `per-bid` URLs they wrote
//!   no longer verify). The bid id is the first signed
//!   parameter of every URL, so the reader derives the same key from the
//!   URL it reads; everything else the URL carries is under the SipHash.
//!   This rests on SipHash-2-4 being a PRF, as it was designed to be (its
//!   128-bit output mode is less studied than HMAC): bid keys are its
//!   outputs under a secret key, and no bid key is ever published, only
//!   tags made with it. A bid's key never leaves the bidder and is worth
//!   one bid's URLs: whoever found it could forge that bid's notices (at
//!   any price and terms), events and features, no other bid's. Many
//!   bids' tags searched together lower the work to find some key to
//!   about 2^(128 − log2 bids): 2^88 over 2^40 bids.
//!
//! Both are always accepted; which one is written is `--url-signatures`.
//! A build before a2c5756 refuses today's `per-bid` signatures (the
//! format changed until ed5af25, and user keys until a2c5756), and a
//! refused win notice is a win never charged. So the default, `auto`,
//! writes `per-url` until every reader has read both for a soak
//! (`--url-signatures-soak-secs`, an hour): alone, this process's uptime
//! (after a restart the only reader is the build restarted into);
//! sharing Redis, every replica there said so at each heartbeat for that
//! long (one that says nothing is taken for an earlier version, and the
//! count starts again). A rollback within the soak finds no `per-bid` URL;
//! one after it, to such a build, refuses the `per-bid` URLs still out
//! (see the README).

use config::{ChargeOn, Micros, Rate};
use hmac::{KeyInit, Mac};

pub const AUCTION_PRICE_MACRO: &str = "${AUCTION_PRICE}";

/// Which notice: each kind is signed apart, so one cannot stand in for
/// another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Win,
    Billing,
    Loss,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Win, Kind::Billing, Kind::Loss];

    pub fn path(self) -> &'static str {
        match self {
            Kind::Win => "/notice/win",
            Kind::Billing => "/notice/billing",
            Kind::Loss => "/notice/loss",
        }
    }

    pub fn of_path(path: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.path() == path)
    }

    /// The OpenRTB member the URL goes in.
    pub fn member(self) -> &'static str {
        match self {
            Kind::Win => "nurl",
            Kind::Billing => "burl",
            Kind::Loss => "lurl",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Win => "win",
            Kind::Billing => "billing",
            Kind::Loss => "loss",
        }
    }

    /// What its URL is signed for: `\n` and [`Self::as_str`].
    pub(crate) fn purpose(self) -> Purpose {
        const WIN: Purpose = Purpose::new("\nwin");
        const BILLING: Purpose = Purpose::new("\nbilling");
        const LOSS: Purpose = Purpose::new("\nloss");
        match self {
            Kind::Win => WIN,
            Kind::Billing => BILLING,
            Kind::Loss => LOSS,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoticeError {
    /// Not a notice we wrote, or one changed since: charges nothing.
    #[error("notice signature is missing or does not match")]
    Signature,
    #[error("notice has expired")]
    Expired,
    /// The charge could not be made durable; the exchange should retry.
    #[error("the charge could not be recorded; retry")]
    Storage,
    /// Another notice of the same bid is still being recorded.
    #[error("another notice for this bid is being recorded; retry")]
    Busy,
    /// The shared state (Redis) cannot be reached: whether the bid was
    /// charged on another replica is unknown.
    #[error("the shared state cannot be reached; retry")]
    Unavailable,
}

/// How a bid's URLs are signed (see the module's documentation); also the
/// values of `--url-signatures`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum UrlSignatures {
    /// One HMAC-SHA256 per URL, as earlier versions wrote them.
    PerUrl,
    /// One SipHash of the bid id per bid keys a SipHash per URL.
    PerBid,
    /// `per-url`, then `per-bid` once every reader has read both for the
    /// soak (`--url-signatures-soak-secs`; [`Signer::follow`]).
    #[default]
    Auto,
}

/// Signs and verifies notice URLs with the notice secret.
#[derive(Clone)]
pub struct Signer {
    /// Keyed once: each signature clones the keyed state instead of hashing
    /// the key again.
    mac: hmac::Hmac<sha2::Sha256>,
    /// Keyed with the bid-key secret (see the module's documentation):
    /// makes `per-bid` keys and nothing else.
    bid_keys: siphasher::sip128::SipHasher24,
    /// Keyed with the audience-key secret (made as the bid-key secret is,
    /// under its own purpose): makes bids' audience tokens
    /// ([`bid_audience_token`]) and nothing else.
    audience_keys: siphasher::sip128::SipHasher24,
    /// Keyed with the user-key secret (made as the bid-key secret is,
    /// under its own purpose): makes `per-bid` user keys
    /// ([`Signer::user_key`]) and nothing else.
    user_keys: siphasher::sip::SipHasher24,
    /// Keyed with the user-mask secret (made as the bid-key secret is,
    /// under its own purpose): masks the user key in each bid's tracking
    /// URLs ([`Signer::user_mask`]) and nothing else.
    user_masks: siphasher::sip::SipHasher13,
    /// What `--url-signatures` asked for.
    mode: UrlSignatures,
    /// Whether URLs are written `per-bid` now (else `per-url`); both kinds
    /// are read. Fixed unless `mode` is `auto` ([`Signer::follow`]).
    per_bid: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

/// 128 bits of signature: forging one is out of reach, and the URLs stay
/// short.
const SIG_BYTES: usize = 16;

/// What signed URLs carry for an audience (`kind:id`): 64 bits of our
/// keyed hash of it, which only the config can turn back into a name.
pub(crate) fn audience_token(signer: &Signer, audience: &str) -> String {
    let mut t = signer.sign_text("audience-token", audience);
    t.truncate(16);
    t
}

/// The audience token one bid's URLs carry: the audience's own
/// ([`audience_token`]) mixed with the bid's id under a secret of its own.
/// No two bids carry the same one: with the audience's own token, whoever
/// sees many bids' URLs (an exchange, a page) could tell the tokens that
/// come only with some users (a retargeting list) from those that come
/// with everyone on a product page, and so learn who is on the list.
pub(crate) fn bid_audience_token(signer: &Signer, bid_id: &str, token: &str) -> [u8; 8] {
    use siphasher::sip128::Hasher128 as _;
    use std::hash::Hasher as _;
    let mut h = signer.audience_keys;
    h.write(bid_id.as_bytes());
    h.write(b"\n");
    h.write(token.as_bytes());
    let mut out = [0u8; 8];
    out.copy_from_slice(&h.finish128().as_bytes()[..8]);
    out
}

/// Whether `written` is the audience token of `token` in the URLs of bid
/// `bid_id`: this bid's own ([`bid_audience_token`]), or the audience's
/// own, which versions before wrote.
pub(crate) fn is_audience_token(signer: &Signer, bid_id: &str, token: &str, written: &str) -> bool {
    written == token
        || hex::Buffer::<8>::new().format(&bid_audience_token(signer, bid_id, token)) == written
}

impl Signer {
    /// A signer that writes [`UrlSignatures::PerUrl`].
    pub fn new(secret: &[u8]) -> Signer {
        Signer::writing(secret, UrlSignatures::PerUrl)
    }

    /// A signer that writes as `mode` says; `auto` writes `per-url` until
    /// a flag it follows ([`Signer::follow`]) says every reader has read
    /// `per-bid` long enough.
    pub fn writing(secret: &[u8], mode: UrlSignatures) -> Signer {
        // HMAC takes keys of any length; this cannot fail.
        let mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        Signer {
            bid_keys: siphasher::sip128::SipHasher24::new_with_key(&derived(&mac, BID_KEY)),
            user_keys: siphasher::sip::SipHasher24::new_with_key(&derived(&mac, USER_KEY)),
            user_masks: siphasher::sip::SipHasher13::new_with_key(&derived(&mac, USER_MASK)),
            audience_keys: siphasher::sip128::SipHasher24::new_with_key(&derived(
                &mac,
                AUDIENCE_KEY,
            )),
            mac,
            mode,
            per_bid: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
                mode == UrlSignatures::PerBid,
            )),
        }
    }

    /// Under `auto`, writes `per-bid` from now on exactly while `per_bid`
    /// holds (set once the soak is over: alone, by the process's uptime;
    /// sharing Redis, by heartbeats); a fixed `--url-signatures` ignores
    /// it. Clones made before this call keep the flag they had.
    pub fn follow(&mut self, per_bid: std::sync::Arc<std::sync::atomic::AtomicBool>) {
        if self.mode == UrlSignatures::Auto {
            self.per_bid = per_bid;
        }
    }

    /// How this signer writes now: `per-url` or `per-bid`, never `auto`.
    pub fn writes(&self) -> UrlSignatures {
        match self.writes_per_bid() {
            false => UrlSignatures::PerUrl,
            true => UrlSignatures::PerBid,
        }
    }

    fn writes_per_bid(&self) -> bool {
        // Relaxed: a URL written either way verifies on every replica
        // that reads both; which way, not when, is what matters.
        self.per_bid.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Who a tracking URL's ad was for, as the URL and the event journal
    /// carry it: a pseudonym only the bidder can make (and compare a
    /// shopper's sales with), never turned back into the id. Made the way
    /// this signer writes URLs: `per-url`, as earlier versions made it, the
    /// first 64 bits of HMAC-SHA256(secret, user ‖ `\n` ‖ `user`) (two
    /// SHA-256 blocks); `per-bid`, SipHash-2-4 (64-bit output) of the id
    /// under the user-key secret (a few hundred instructions). The switch
    /// that makes a fleet write URLs earlier versions cannot read is the
    /// one that makes keys they cannot look up.
    pub(crate) fn user_key(&self, user: &str) -> u64 {
        match self.writes_per_bid() {
            false => self.hmac_user_key(user),
            true => self.sip_user_key(user),
        }
    }

    /// [`Signer::user_key`], then the key of the way this signer does not
    /// write: touches recorded by replicas (or builds) that write it are
    /// under it, and attribution looks a shopper up under both. One read
    /// of the way it writes, so that a switch between two calls cannot
    /// give the same key twice and leave the other out.
    pub(crate) fn user_keys(&self, user: &str) -> (u64, u64) {
        let (hmac, sip) = (self.hmac_user_key(user), self.sip_user_key(user));
        match self.writes_per_bid() {
            false => (hmac, sip),
            true => (sip, hmac),
        }
    }

    /// What the user key in the tracking URLs of bid `bid_id` is masked
    /// with (XOR). The key is one per shopper, for attribution; written as
    /// it is, every page and exchange that saw our URLs could follow that
    /// shopper from site to site by it. Masked, no two bids carry the same
    /// value.
    ///
    /// SipHash-1-3 of the id's first 16 hex digits (its 64 random bits, as
    /// [`ledger::BidKey`] reads them) under the user-mask secret: a
    /// pseudorandom mask, not a MAC (the URL's signature covers it), at
    /// about half the instructions of SipHash-2-4 over the whole id, which
    /// took a video bid past its 60,000.
    pub(crate) fn user_mask(&self, bid_id: &str) -> u64 {
        use std::hash::Hasher as _;
        let mut h = self.user_masks;
        h.write(bid_id.as_bytes().get(..16).unwrap_or(bid_id.as_bytes()));
        h.finish()
    }

    fn sip_user_key(&self, user: &str) -> u64 {
        use std::hash::Hasher as _;
        let mut h = self.user_keys;
        h.write(user.as_bytes());
        h.finish()
    }

    fn hmac_user_key(&self, user: &str) -> u64 {
        let mut mac = self.over(user);
        mac.update(b"user");
        let tag = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&tag[..8]);
        u64::from_be_bytes(first)
    }

    /// The MAC state after the signed text: the kind comes last, so the
    /// three URLs of one bid hash that text once and finish apart.
    fn over(&self, signed: &str) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = self.mac.clone();
        mac.update(signed.as_bytes());
        mac.update(b"\n");
        mac
    }

    /// Finishes `mac` (from [`Signer::over`]) for a purpose `name`: notice
    /// kinds and tracking events each sign under their own name, so one
    /// URL can never stand in for another.
    pub(crate) fn sign_named(mac: &hmac::Hmac<sha2::Sha256>, name: &str, out: &mut String) {
        let mut mac = mac.clone();
        mac.update(name.as_bytes());
        let mut tag = [0u8; SIG_BYTES];
        tag.copy_from_slice(&mac.finalize().into_bytes()[..SIG_BYTES]);
        push_hex(&tag, out);
    }

    /// The MAC state after the start of a signed text, before its end
    /// (the `\n` that [`Signer::over`] adds): callers append the rest, then
    /// `\n`, then finish with [`Signer::sign_named`].
    pub(crate) fn state(&self, start: &str) -> hmac::Hmac<sha2::Sha256> {
        let mut mac = self.mac.clone();
        mac.update(start.as_bytes());
        mac
    }

    /// The signature of `text` for purpose `name`, as
    /// [`Signer::verify_named`] checks it.
    pub(crate) fn sign_text(&self, name: &str, text: &str) -> String {
        let mut out = String::with_capacity(2 * SIG_BYTES);
        Signer::sign_named(&self.over(text), name, &mut out);
        out
    }

    /// What the URLs of the bid whose signed text is `common` are written
    /// with, as this signer writes them: made once per bid, for its
    /// notices and its tracking URLs (see [`UrlKey::after`]).
    pub(crate) fn bid_key(&self, common: &str) -> BidKey {
        match self.writes_per_bid() {
            false => UrlKey::PerUrl(self.mac.clone()),
            true => self.per_bid_key(common),
        }
    }

    /// What a bid's URLs over `common` are written with, for one text
    /// only (a bid with two texts makes its [`BidKey`] once).
    pub(crate) fn url_key(&self, common: &str) -> UrlKey {
        self.bid_key(common).after(common)
    }

    /// The `per-bid` key of the bid whose signed text is `common`: the
    /// SipHash of its first parameter (`b=`, the bid id) under the bid-key
    /// secret.
    fn per_bid_key(&self, common: &str) -> BidKey {
        use siphasher::sip128::Hasher128 as _;
        use std::hash::Hasher as _;
        // memchr: `split_once`'s searcher cost some 170 instructions a bid
        // to find the `&` after the id.
        let bid = &common[..memchr::memchr(b'&', common.as_bytes()).unwrap_or(common.len())];
        let mut h = self.bid_keys;
        h.write(bid.as_bytes());
        let key = h.finish128().as_bytes();
        UrlKey::PerBid(siphasher::sip128::SipHasher24::new_with_key(&key))
    }

    /// A URL's signature over `common` and `tail` for purpose `name`,
    /// written either way: a fleet changing `--url-signatures`, or rolling
    /// a version forward, holds URLs of both.
    ///
    /// The way this signer writes is tried first: most URLs a replica reads
    /// were written that way, and each try costs an HMAC.
    pub(crate) fn verify_url(
        &self,
        purpose: Purpose,
        common: &str,
        tail: &str,
        sig_hex: &str,
    ) -> bool {
        // No MAC for what cannot be a signature: each try costs a pass
        // over the whole URL.
        let Some(sig) = signature(sig_hex) else {
            return false;
        };
        let per_url = || UrlKey::PerUrl(self.state(common)).matches(purpose, &[tail], &sig);
        let per_bid = || {
            self.per_bid_key(common)
                .after(common)
                .matches(purpose, &[tail], &sig)
        };
        match self.writes_per_bid() {
            false => per_url() || per_bid(),
            true => per_bid() || per_url(),
        }
    }

    fn verify(&self, kind: Kind, signed: &str, sig_hex: &str) -> bool {
        self.verify_url(kind.purpose(), signed, "", sig_hex)
    }

    pub(crate) fn verify_named(&self, name: &str, signed: &str, sig_hex: &str) -> bool {
        let Some(sig) = signature(sig_hex) else {
            return false;
        };
        let mut mac = self.over(signed);
        mac.update(name.as_bytes());
        // Constant time: the comparison must not tell a forger how close a
        // guess came.
        mac.verify_truncated_left(&sig).is_ok()
    }
}

/// The purpose the bid-key secret is derived under (see the module's
/// documentation).
const BID_KEY: &str = "bid-key";

/// The purpose the user-key secret is derived under ([`Signer::user_key`]);
/// nothing is published under it either.
const USER_KEY: &str = "user-key";

/// The purpose the user-mask secret is derived under
/// ([`Signer::user_mask`]).
const USER_MASK: &str = "user-mask";

/// The purpose the audience-key secret is derived under
/// ([`bid_audience_token`]).
const AUDIENCE_KEY: &str = "audience-key";

/// A secret of its own for `purpose`: the last 128 bits of
/// HMAC-SHA256(secret, `\n` ‖ purpose). The last half: published
/// signatures are first halves.
fn derived(mac: &hmac::Hmac<sha2::Sha256>, purpose: &str) -> [u8; 16] {
    let mut m = mac.clone();
    m.update(b"\n");
    m.update(purpose.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&m.finalize().into_bytes()[16..]);
    key
}

/// One bid, keyed, before any of its signed texts: what
/// [`Signer::bid_key`] makes once per bid; [`UrlKey::after`] each of its
/// texts gives the key of the URLs over that text.
pub(crate) type BidKey = UrlKey;

/// One bid's URLs over one text, keyed: [`UrlSignatures::PerBid`]'s
/// SipHash-2-4 state (a few hundred instructions a URL), or
/// [`UrlSignatures::PerUrl`]'s HMAC state (two SHA-256 blocks or more a
/// URL).
#[derive(Clone)]
pub(crate) enum UrlKey {
    PerUrl(hmac::Hmac<sha2::Sha256>),
    PerBid(siphasher::sip128::SipHasher24),
}

impl std::fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlKey(..)")
    }
}

impl UrlKey {
    /// This state after `text`. From a [`BidKey`], `text` is a signed text
    /// of its bid (its first parameter the one the key was made from): each
    /// URL over it hashes only its own tail and purpose.
    pub(crate) fn after(&self, text: &str) -> UrlKey {
        match self {
            UrlKey::PerUrl(mac) => {
                let mut mac = mac.clone();
                mac.update(text.as_bytes());
                UrlKey::PerUrl(mac)
            }
            UrlKey::PerBid(sip) => {
                use std::hash::Hasher as _;
                let mut h = *sip;
                h.write(text.as_bytes());
                UrlKey::PerBid(h)
            }
        }
    }

    /// Either way the message is the text, the tail, then the purpose
    /// (`\n` and a fixed name without a newline, so the last newline tells
    /// where the purpose starts), as earlier versions signed per URL.
    fn tag(&self, purpose: Purpose, tail: &[&str]) -> [u8; SIG_BYTES] {
        match self {
            UrlKey::PerBid(sip) => {
                use siphasher::sip128::Hasher128 as _;
                use std::hash::Hasher as _;
                let mut h = *sip;
                for t in tail {
                    h.write(t.as_bytes());
                }
                h.write(purpose.0.as_bytes());
                h.finish128().as_bytes()
            }
            UrlKey::PerUrl(mac) => {
                let mut mac = mac.clone();
                for t in tail {
                    mac.update(t.as_bytes());
                }
                mac.update(purpose.0.as_bytes());
                let mut tag = [0u8; SIG_BYTES];
                tag.copy_from_slice(&mac.finalize().into_bytes()[..SIG_BYTES]);
                tag
            }
        }
    }

    /// Writes the signature of the URL for `purpose` whose text past the
    /// bid's common part is `tail`, as 32 lowercase hex digits.
    pub(crate) fn sign(&self, purpose: Purpose, tail: &[&str], out: &mut String) {
        push_hex(&self.tag(purpose, tail), out);
    }

    /// What `verify_url` does for one way of signing (the tests' view).
    #[cfg(test)]
    fn verify(&self, purpose: Purpose, tail: &[&str], sig_hex: &str) -> bool {
        signature(sig_hex).is_some_and(|sig| self.matches(purpose, tail, &sig))
    }

    fn matches(&self, purpose: Purpose, tail: &[&str], sig: &[u8; SIG_BYTES]) -> bool {
        // Constant time, as for the HMAC.
        bool::from(subtle::ConstantTimeEq::ct_eq(
            &self.tag(purpose, tail)[..],
            &sig[..],
        ))
    }
}

/// What a URL's signature is made for, as its signed message ends: `\n`
/// and the purpose's name, in one piece, so that a signature hashes it in
/// one write (two cost a per-bid signature some 70 instructions more).
/// A fixed tail of the URL may come first, in the same piece (a VAST
/// event's `&ev=start`, `track::event_ending`). Made only here and in
/// `track.rs`, from constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Purpose(&'static str);

impl Purpose {
    /// `text`: a tail without a newline (often none), `\n`, then a name
    /// without one.
    pub(crate) const fn new(text: &'static str) -> Purpose {
        let b = text.as_bytes();
        let mut newlines = 0;
        let mut last = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'\n' {
                newlines += 1;
                last = i;
            }
            i += 1;
        }
        assert!(newlines == 1 && last + 1 < b.len());
        Purpose(text)
    }

    /// The name, after the newline.
    #[cfg(test)]
    pub(crate) fn name(self) -> &'static str {
        match self.0.split_once('\n') {
            Some((_, name)) => name,
            None => unreachable!("a purpose has its newline"),
        }
    }
}

/// Lowercase hex straight into the URL: no string of its own per
/// signature.
fn push_hex(bytes: &[u8; SIG_BYTES], out: &mut String) {
    // Into a buffer, then one append: a `push` per digit checked the
    // string's room 32 times, some 300 instructions a signature. The
    // buffer's digits are text as written, where a slice of our own was
    // checked for UTF-8 again.
    out.push_str(hex::Buffer::<SIG_BYTES>::new().format(bytes));
}

/// A signature as written: exactly [`SIG_BYTES`] in lowercase hex.
fn signature(s: &str) -> Option<[u8; SIG_BYTES]> {
    // Lowercase only, as written: another spelling of the same bytes is
    // still a changed notice.
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut sig = [0u8; SIG_BYTES];
    hex::decode_to_slice(s, &mut sig).ok()?;
    Some(sig)
}

/// The signed parameters, in the order they are written and checked: the
/// bid, its imp, line item, order and creative, its price in USD micros,
/// when it was made, the test flag, then the exchange's terms — which
/// exchange (whose keys decrypt the price), the currency the bid was in and
/// its rate in nanos per USD, which notice charges (`w`, `b` or `f`), and
/// whether the exchange encrypts its prices (`e`: 1 or 0). The terms are
/// those of the bid: a reload between bid and notice changes none of them.
const SIGNED: [&str; 13] = [
    "b", "i", "li", "o", "c", "bp", "ts", "t", "x", "cur", "r", "ch", "e",
];

/// The values of the next `names.len()` pairs of `pairs`, each of which
/// must be `name=value` with exactly that name in that place: the layout of
/// what we sign is fixed, and any other is not one we wrote.
pub(crate) fn signed_values<'q, const N: usize>(
    pairs: &mut std::str::Split<'q, char>,
    names: [&str; N],
) -> Option<[&'q str; N]> {
    let mut values = [""; N];
    for (slot, want) in values.iter_mut().zip(names) {
        let (k, v) = pairs.next()?.split_once('=')?;
        if k != want {
            return None;
        }
        *slot = v;
    }
    Some(values)
}

/// What a bid's notices say. Ids are given percent-encoded where the
/// snapshot encoded them once per config load (`line_item_and_order` is
/// `&li=…&o=…`).
pub struct NoticeUrl<'a> {
    pub bid_id: &'a str,
    pub imp_id: &'a str,
    pub line_item_and_order: &'a str,
    pub creative: &'a str,
    pub bid_price: Micros,
    pub at_ms: i64,
    pub test: bool,
    /// The exchange id, percent-encoded.
    pub exchange: &'a str,
    /// Upper-case ISO 4217.
    pub currency: &'a str,
    pub rate: Rate,
    pub charge_on: ChargeOn,
    /// The exchange sends `${AUCTION_PRICE}` encrypted.
    pub encrypted: bool,
    /// The keyword that matched, for the search-term report's spend
    /// (signed after the rest, and only when there is one).
    pub keyword: Option<&'a str>,
    /// The audience that made the line item eligible (`kind:id`), for
    /// spend by audience (signed after the keyword, and only when there is
    /// one).
    pub audience: Option<&'a str>,
    /// `line_item_and_order`, `creative` and `exchange` are [`encode`]'s
    /// output (`&li=`, `&o=` aside), as the snapshot writes them once per
    /// load: a banner's markup then needs to escape nothing in the
    /// tracking URLs' text but the separators' `&`s
    /// (`track::Urls::signed_in_attr`).
    pub ids_encoded: bool,
}

impl NoticeUrl<'_> {
    /// The signed part of the query, the same for the three kinds.
    pub fn signed(&self) -> String {
        let mut s = String::with_capacity(160);
        s.push_str("b=");
        encode_into(self.bid_id, &mut s);
        s.push_str("&i=");
        encode_into(self.imp_id, &mut s);
        s.push_str(self.line_item_and_order);
        s.push_str("&c=");
        s.push_str(self.creative);
        s.push_str("&bp=");
        push_int(&mut s, self.bid_price.as_i64());
        s.push_str("&ts=");
        push_int(&mut s, self.at_ms);
        s.push_str("&t=");
        push_int(&mut s, u8::from(self.test));
        s.push_str("&x=");
        s.push_str(self.exchange);
        s.push_str("&cur=");
        s.push_str(self.currency);
        s.push_str("&r=");
        push_int(&mut s, self.rate.nanos());
        s.push_str("&ch=");
        s.push(charge_letter(self.charge_on));
        s.push_str("&e=");
        push_int(&mut s, u8::from(self.encrypted));
        if let Some(k) = self.keyword {
            s.push_str("&k=");
            encode_into(k, &mut s);
        }
        if let Some(a) = self.audience {
            s.push_str("&a=");
            encode_into(a, &mut s);
        }
        s
    }

    /// One notice URL of a bid (see [`Prepared`] for all three).
    pub fn write(base: &str, kind: Kind, signed: &str, signer: &Signer, out: &mut String) {
        Prepared::new(base, signed, signer).write(kind, out);
    }
}

fn charge_letter(c: ChargeOn) -> char {
    match c {
        ChargeOn::Win => 'w',
        ChargeOn::Billing => 'b',
        ChargeOn::First => 'f',
    }
}

/// A bid's signed text, keyed once, ready to write its three URLs.
pub struct Prepared<'a> {
    base: &'a str,
    signed: &'a str,
    bid_key: BidKey,
    key: UrlKey,
}

impl<'a> Prepared<'a> {
    pub fn new(base: &'a str, signed: &'a str, signer: &Signer) -> Prepared<'a> {
        let bid_key = signer.bid_key(signed);
        Prepared {
            base: without_trailing_slashes(base),
            signed,
            key: bid_key.after(signed),
            bid_key,
        }
    }

    /// The bid's key, for its tracking URLs (`track::Urls::new`).
    pub(crate) fn bid_key(&self) -> &BidKey {
        &self.bid_key
    }

    /// `base` + the kind's path + `?` + the signed text + its signature +
    /// the price macro.
    pub fn write(&self, kind: Kind, out: &mut String) {
        out.push_str(self.base);
        out.push_str(kind.path());
        out.push('?');
        out.push_str(self.signed);
        out.push_str("&s=");
        self.key.sign(kind.purpose(), &[], out);
        out.push_str("&price=");
        out.push_str(AUCTION_PRICE_MACRO);
    }
}

/// `base` without the `/`s it ends in. A loop over its last bytes:
/// `trim_end_matches`'s pattern searcher cost some 130 instructions a call,
/// and each bid makes two calls.
pub(crate) fn without_trailing_slashes(base: &str) -> &str {
    let slashes = base.bytes().rev().take_while(|&b| b == b'/').count();
    &base[..base.len() - slashes]
}

/// The clearing price as the exchange sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Price {
    /// A plain decimal CPM.
    Cpm(Micros),
    /// Anything else: the macro left as is, an encrypted or otherwise
    /// encoded price, garbage, or no `price` at all. The exchange still
    /// bills the win, so it is charged at the bid price.
    Unreadable,
}

/// A notice as read back from its query string.
#[derive(Debug, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    pub bid_id: String,
    pub imp_id: String,
    pub line_item: String,
    pub order: String,
    pub creative: String,
    pub bid_price: Micros,
    /// The clearing price in `currency`: read as a plain decimal, or
    /// `Unreadable` until decrypted when the exchange encrypts.
    pub price: Price,
    /// The `price` value as sent (percent-decoded), for exchanges that
    /// encrypt it.
    pub price_text: Option<String>,
    pub test: bool,
    /// When the bid was made (milliseconds since the epoch).
    pub at_ms: i64,
    pub exchange: String,
    pub currency: String,
    pub rate: Rate,
    pub charge_on: ChargeOn,
    /// The exchange encrypted its prices when the bid was made: only a
    /// price that decrypts is read.
    pub encrypted: bool,
    /// The keyword that matched, when one did.
    pub keyword: Option<String>,
    /// The audience that made the line item eligible, when one did.
    pub audience: Option<String>,
}

impl Notice {
    /// What the exchange bills for the impression's CPM, in USD micros: its
    /// clearing price converted back rounding up (spend is never
    /// under-counted), never above the bid; the bid when the price is
    /// unreadable.
    pub fn cpm(&self) -> Micros {
        match self.price {
            Price::Cpm(p) => self.rate.to_usd_up(p).min(self.bid_price),
            Price::Unreadable => self.bid_price,
        }
    }
}

/// Reads a notice of `kind`, checking its signature and that it is no
/// older than `ttl_ms` at `now_ms`.
pub fn verify(
    kind: Kind,
    query: &str,
    signer: &Signer,
    now_ms: i64,
    ttl_ms: i64,
) -> Result<Notice, NoticeError> {
    // The layout is fixed: the signed parameters in order (then the
    // keyword, when one matched, and the audience, when one did), `s`, then
    // `price` if the exchange kept it. No other shape is one we wrote.
    let mut pairs = query.split('&');
    let values = signed_values(&mut pairs, SIGNED).ok_or(NoticeError::Signature)?;
    let mut next = pairs.next();
    let mut optional = |name: &str| -> Result<Option<String>, NoticeError> {
        match next.and_then(|p| p.strip_prefix(name)) {
            Some(v) => {
                next = pairs.next();
                decode(v).map(Some).ok_or(NoticeError::Signature)
            }
            None => Ok(None),
        }
    };
    let keyword = optional("k=")?;
    let audience = optional("a=")?;
    let sig = next
        .and_then(|p| p.strip_prefix("s="))
        .ok_or(NoticeError::Signature)?;
    let price = match pairs.next() {
        None => None,
        Some(p) => Some(p.strip_prefix("price=").ok_or(NoticeError::Signature)?),
    };
    if pairs.next().is_some() {
        return Err(NoticeError::Signature);
    }
    let signed_len = query.find("&s=").ok_or(NoticeError::Signature)?;
    if !signer.verify(kind, &query[..signed_len], sig) {
        return Err(NoticeError::Signature);
    }
    // Signed by us: these read back as written. Anything that does not is
    // refused all the same rather than trusted.
    let text = |i: usize| decode(values[i]).ok_or(NoticeError::Signature);
    let number = |i: usize| values[i].parse::<i64>().map_err(|_| NoticeError::Signature);
    let price_text = price.and_then(decode);
    let n = Notice {
        kind,
        bid_id: text(0)?,
        imp_id: text(1)?,
        line_item: text(2)?,
        order: text(3)?,
        creative: text(4)?,
        bid_price: Micros(number(5)?),
        at_ms: number(6)?,
        test: values[7] == "1",
        // An encrypting exchange sends nothing in the clear: a clear price
        // on its notice is someone's guess at a cheaper charge.
        price: if values[12] == "1" {
            Price::Unreadable
        } else {
            read_plain(price_text.as_deref())
        },
        price_text,
        exchange: text(8)?,
        currency: text(9)?,
        rate: values[10]
            .parse::<u64>()
            .ok()
            .and_then(Rate::from_nanos)
            .ok_or(NoticeError::Signature)?,
        charge_on: match values[11] {
            "w" => ChargeOn::Win,
            "b" => ChargeOn::Billing,
            "f" => ChargeOn::First,
            _ => return Err(NoticeError::Signature),
        },
        encrypted: match values[12] {
            "1" => true,
            "0" => false,
            _ => return Err(NoticeError::Signature),
        },
        keyword,
        audience,
    };
    // Only age is checked: a notice dated ahead of this clock is still one
    // we signed (another replica's clock, or ours stepped back), and
    // refusing it would leave a billed win uncharged.
    if now_ms.saturating_sub(n.at_ms) > ttl_ms {
        return Err(NoticeError::Expired);
    }
    Ok(n)
}

/// A price sent in the clear.
pub fn read_plain(text: Option<&str>) -> Price {
    // No auction clears at zero: a zero price is an exchange that did not
    // know it yet (or someone racing it), not a free impression.
    // Under a micro, but not zero (`0.0000004`), reads as a micro, the
    // least that can be charged, rather than the whole bid.
    match text.and_then(parse_price) {
        Some(p) if p > Micros::ZERO => Price::Cpm(p),
        _ => Price::Unreadable,
    }
}

/// `${AUCTION_PRICE}` as an exact decimal: `digits[.digits]` and nothing
/// else (no sign, exponent, separator, space or currency). Digits past the
/// sixth decimal round up to the next micro, as one impression's cost
/// does: spend is never under what the exchange bills (they were dropped,
/// and `1.0000009` was charged as `1`; a float printed as
/// `0.35000000000000003` was a micro short; exchanges probe). The cap at
/// the bid still holds above this.
pub fn parse_price(s: &str) -> Option<Micros> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros: i64 = 0;
    for (i, b) in frac.bytes().take(6).enumerate() {
        micros += i64::from(b - b'0') * 10i64.pow(5 - i as u32);
    }
    let past_a_micro = frac.bytes().skip(6).any(|b| b != b'0');
    units
        .checked_mul(1_000_000)?
        .checked_add(micros)?
        .checked_add(i64::from(past_a_micro))
        .map(Micros)
}

/// What stays as it is in a query value: RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes an id for a query string.
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// An integer's decimal text onto `out`, without `core::fmt`: a bid writes
/// a dozen of them into its URLs and its answer.
pub(crate) fn push_int(out: &mut String, n: impl itoa::Integer) {
    out.push_str(itoa::Buffer::new().format(n));
}

pub(crate) fn encode_into(s: &str, out: &mut String) {
    // Ids (the bid's, the imp's) are nearly always unreserved characters
    // only: a table says so and they are copied whole, where the encoder's
    // iterator cost a banner bid some 800 instructions.
    if s.bytes().all(|b| UNRESERVED[usize::from(b)]) {
        out.push_str(s);
        return;
    }
    out.extend(percent_encoding::utf8_percent_encode(s, QUERY_VALUE));
}

/// The bytes [`QUERY_VALUE`] leaves as they are (a test holds the two to
/// the same set).
const UNRESERVED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    t
};

/// A query value as text; `None` when it does not decode to UTF-8.
pub(crate) fn decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_764_000_000_000;
    const DAY: i64 = 86_400_000;
    const BASE: &str = "http://bidder.example:8080/";

    #[test]
    fn plain_ids_are_copied_as_the_encoder_writes_them() {
        for b in 0..=255u8 {
            let one = String::from_utf8_lossy(&[b]).into_owned();
            for s in [one.clone(), format!("id-{one}~x"), format!("{one}{one}")] {
                let mut fast = String::new();
                encode_into(&s, &mut fast);
                let slow = percent_encoding::utf8_percent_encode(&s, QUERY_VALUE).to_string();
                assert_eq!(fast, slow, "{s:?}");
            }
            let plain = percent_encoding::utf8_percent_encode(&one, QUERY_VALUE).to_string() == one;
            assert_eq!(UNRESERVED[usize::from(b)], plain && b < 0x80, "{b}");
        }
    }

    #[test]
    fn a_bids_audience_token_is_its_own_and_the_audiences_own_still_reads() {
        let s = signer();
        let token = audience_token(&s, "views:tent-viewers");
        let mut buf = hex::Buffer::<8>::new();
        let a = buf
            .format(&bid_audience_token(
                &s,
                "0123456789abcdef0123456789abcdef",
                &token,
            ))
            .to_owned();
        let b = hex::Buffer::<8>::new()
            .format(&bid_audience_token(
                &s,
                "fedcba9876543210fedcba9876543210",
                &token,
            ))
            .to_owned();
        assert_ne!(a, b);
        assert_ne!(a, token);
        assert!(is_audience_token(
            &s,
            "0123456789abcdef0123456789abcdef",
            &token,
            &a
        ));
        assert!(!is_audience_token(
            &s,
            "fedcba9876543210fedcba9876543210",
            &token,
            &a
        ));
        // What versions before wrote: the audience's own token.
        assert!(is_audience_token(
            &s,
            "fedcba9876543210fedcba9876543210",
            &token,
            &token
        ));
        // Another secret makes other tokens.
        let other = Signer::new(b"another secret of at least thirty-two bytes");
        assert!(!is_audience_token(
            &other,
            "0123456789abcdef0123456789abcdef",
            &token,
            &a
        ));
    }

    fn signer() -> Signer {
        Signer::new(b"test secret")
    }

    fn url(kind: Kind) -> String {
        url_with(kind, None)
    }

    fn url_with(kind: Kind, keyword: Option<&str>) -> String {
        url_for(kind, keyword, None)
    }

    fn url_for(kind: Kind, keyword: Option<&str>, audience: Option<&str>) -> String {
        url_signed_by(kind, keyword, audience, &signer())
    }

    fn url_signed_by(
        kind: Kind,
        keyword: Option<&str>,
        audience: Option<&str>,
        signer: &Signer,
    ) -> String {
        let ids = format!(
            "&li={}&o={}",
            encode("tent remarketing&x"),
            encode("acme-q4")
        );
        let signed = NoticeUrl {
            bid_id: "0123456789abcdef0123456789abcdef",
            imp_id: "1",
            line_item_and_order: &ids,
            creative: &encode("c-1"),
            bid_price: Micros(6_000_000),
            at_ms: NOW,
            test: false,
            exchange: "adx",
            currency: "USD",
            rate: Rate::ONE,
            charge_on: ChargeOn::First,
            encrypted: false,
            keyword,
            audience,
            ids_encoded: true,
        }
        .signed();
        let mut s = String::new();
        NoticeUrl::write(BASE, kind, &signed, signer, &mut s);
        s
    }

    /// The bytes of the three notice URLs, both ways of signing, as
    /// earlier versions (c89443e) wrote them for the same bid: the URLs
    /// of bids in flight across a rollout must still count their wins and
    /// charges. Writing and checking agree with each other in the other
    /// tests, which a change made to both would pass.
    #[test]
    fn notices_keep_the_bytes_earlier_versions_wrote() {
        let at = |kind: &str, sig: &str| {
            format!(
                "http://bidder.example:8080/notice/{kind}?b=0123456789abcdef0123456789abcdef&i=1\
                 &li=tent%20remarketing%26x&o=acme-q4&c=c-1&bp=6000000&ts=1764000000000&t=0&x=adx\
                 &cur=USD&r=1000000000&ch=f&e=0&k=phrase%3Atent%20%26%20stove&a=products%3Abooks\
                 &s={sig}&price=${{AUCTION_PRICE}}"
            )
        };
        let written = |how| {
            let signer = Signer::writing(b"test secret", how);
            Kind::ALL.map(|kind| {
                url_signed_by(
                    kind,
                    Some("phrase:tent & stove"),
                    Some("products:books"),
                    &signer,
                )
            })
        };
        assert_eq!(
            written(UrlSignatures::PerUrl),
            [
                at("win", "17717abeb3382751e5f759edc1ba2eda"),
                at("billing", "9241cdaf0318285663f74bdc3e3cb13f"),
                at("loss", "8a8a0351c4701d4830c347dc5e1199a1"),
            ]
        );
        assert_eq!(
            written(UrlSignatures::PerBid),
            [
                at("win", "9a5a9547b6e11a3783bad514b3ef6c68"),
                at("billing", "ea10b09de6f72c8098279a19c1d4a82a"),
                at("loss", "3a13a563de68b22aef3f1ad9eb293782"),
            ]
        );
    }

    #[test]
    fn the_matched_keyword_is_signed_when_there_is_one() {
        let u = url_with(Kind::Win, Some("phrase:tent & stove"));
        let q = u.split_once('?').unwrap().1;
        assert!(q.contains("&e=0&k=phrase%3Atent%20%26%20stove&s="), "{q}");
        let n = check(Kind::Win, q).unwrap();
        assert_eq!(n.keyword.as_deref(), Some("phrase:tent & stove"));
        assert_eq!(check(Kind::Win, &query(Kind::Win)).unwrap().keyword, None);
        for forged in [
            q.replace("&k=phrase%3Atent%20%26%20stove", "&k=exact%3Atent"),
            q.replace("&k=phrase%3Atent%20%26%20stove", ""),
            query(Kind::Win).replace("&s=", "&k=exact%3Atent&s="),
        ] {
            assert_eq!(
                check(Kind::Win, &forged).unwrap_err(),
                NoticeError::Signature
            );
        }
    }

    #[test]
    fn the_audience_is_signed_after_the_keyword_when_there_is_one() {
        let u = url_for(
            Kind::Billing,
            Some("phrase:tent"),
            Some("products:tent pages"),
        );
        let q = u.split_once('?').unwrap().1;
        assert!(
            q.contains("&e=0&k=phrase%3Atent&a=products%3Atent%20pages&s="),
            "{q}"
        );
        let n = check(Kind::Billing, q).unwrap();
        assert_eq!(n.keyword.as_deref(), Some("phrase:tent"));
        assert_eq!(n.audience.as_deref(), Some("products:tent pages"));
        // An audience without a keyword.
        let u = url_for(Kind::Win, None, Some("views:tent-viewers"));
        let alone = u.split_once('?').unwrap().1;
        assert!(alone.contains("&e=0&a=views%3Atent-viewers&s="), "{alone}");
        let n = check(Kind::Win, alone).unwrap();
        assert_eq!(
            (n.keyword, n.audience.as_deref()),
            (None, Some("views:tent-viewers"))
        );
        // A notice written before audiences were signed still reads.
        assert_eq!(check(Kind::Win, &query(Kind::Win)).unwrap().audience, None);
        for (kind, forged) in [
            (
                Kind::Billing,
                q.replace("&a=products%3Atent%20pages", "&a=views%3Atent-viewers"),
            ),
            (Kind::Billing, q.replace("&a=products%3Atent%20pages", "")),
            (
                Kind::Billing,
                q.replace(
                    "&k=phrase%3Atent&a=products%3Atent%20pages",
                    "&a=products%3Atent%20pages&k=phrase%3Atent",
                ),
            ),
            (
                Kind::Win,
                alone.replace("&a=views%3Atent-viewers", "&k=views%3Atent-viewers"),
            ),
            (
                Kind::Win,
                query(Kind::Win).replace("&s=", "&a=views%3Atent-viewers&s="),
            ),
        ] {
            assert_eq!(
                check(kind, &forged).unwrap_err(),
                NoticeError::Signature,
                "{forged}"
            );
        }
    }

    fn query(kind: Kind) -> String {
        url(kind).split_once('?').unwrap().1.to_string()
    }

    fn check(kind: Kind, q: &str) -> Result<Notice, NoticeError> {
        verify(kind, q, &signer(), NOW, DAY)
    }

    /// [`url_for`]'s query, written by a signer of the same secret that
    /// writes `how`.
    fn query_written(kind: Kind, how: UrlSignatures) -> String {
        let u = url_for(kind, Some("phrase:tent"), Some("products:tent pages"));
        let q = u.split_once('?').unwrap().1;
        let (signed, rest) = q.split_once("&s=").unwrap();
        let price = rest.split_once('&').map_or("", |(_, p)| p);
        let mut out = format!("{signed}&s=");
        Signer::writing(b"test secret", how)
            .url_key(signed)
            .sign(kind.purpose(), &[], &mut out);
        out.push('&');
        out.push_str(price);
        out
    }

    /// A fleet mid-deploy or mid-switch holds URLs written both ways, and
    /// any replica settles either.
    #[test]
    fn notices_written_either_way_verify_with_either_writer() {
        for kind in Kind::ALL {
            let per_url = query_written(kind, UrlSignatures::PerUrl);
            let per_bid = query_written(kind, UrlSignatures::PerBid);
            assert_ne!(per_url, per_bid, "a different signature");
            assert_eq!(
                per_url,
                {
                    let u = url_for(kind, Some("phrase:tent"), Some("products:tent pages"));
                    u.split_once('?').unwrap().1.to_owned()
                },
                "Signer::new writes per URL"
            );
            for writer in [UrlSignatures::PerUrl, UrlSignatures::PerBid] {
                let signer = Signer::writing(b"test secret", writer);
                let read = |q: &str| verify(kind, q, &signer, NOW, DAY);
                assert_eq!(read(&per_url).unwrap(), read(&per_bid).unwrap());
                // Either way, one kind still cannot stand in for another,
                // and a changed bid price is refused.
                for other in Kind::ALL.into_iter().filter(|k| *k != kind) {
                    for q in [&per_url, &per_bid] {
                        assert_eq!(
                            verify(other, q, &signer, NOW, DAY).unwrap_err(),
                            NoticeError::Signature
                        );
                    }
                }
                for q in [&per_url, &per_bid] {
                    let forged = q.replace("&bp=6000000", "&bp=9000000");
                    assert_eq!(read(&forged).unwrap_err(), NoticeError::Signature);
                }
            }
        }
    }

    /// What `per-url` writes is what earlier versions checked (one HMAC
    /// over the whole text and the kind): they settle it in a rolling
    /// deploy or after a rollback.
    #[test]
    fn per_url_writes_what_earlier_versions_read() {
        for kind in Kind::ALL {
            let u = url_for(kind, Some("phrase:tent"), Some("products:tent pages"));
            let q = u.split_once('?').unwrap().1;
            let (signed, rest) = q.split_once("&s=").unwrap();
            let sig = rest.split_once('&').map_or(rest, |(s, _)| s);
            assert!(
                signer().verify_named(kind.as_str(), signed, sig),
                "{kind:?}"
            );
            let per_bid = query_written(kind, UrlSignatures::PerBid);
            let (signed, rest) = per_bid.split_once("&s=").unwrap();
            let sig = rest.split_once('&').map_or(rest, |(s, _)| s);
            assert!(!signer().verify_named(kind.as_str(), signed, sig));
        }
    }

    /// `auto` writes `per-url` until the flag it follows says `per-bid`, and
    /// as it says from the next URL on: notices and user keys alike. A
    /// fixed mode ignores the flag.
    #[test]
    fn auto_writes_as_the_fleet_reads() {
        use std::sync::{
            atomic::{AtomicBool, Ordering},
            Arc,
        };
        let written = |s: &Signer| {
            let mut out = String::new();
            s.url_key("b=00aa11bb&i=1&li=li-1")
                .sign(Kind::Win.purpose(), &[], &mut out);
            out
        };
        let per_url = Signer::writing(b"test secret", UrlSignatures::PerUrl);
        let per_bid = Signer::writing(b"test secret", UrlSignatures::PerBid);
        let mut auto = Signer::writing(b"test secret", UrlSignatures::Auto);
        assert_eq!(UrlSignatures::default(), UrlSignatures::Auto);
        assert_eq!(auto.writes(), UrlSignatures::PerUrl, "until told");
        assert_eq!(written(&auto), written(&per_url));

        let fleet = Arc::new(AtomicBool::new(false));
        auto.follow(fleet.clone());
        let clone = auto.clone();
        for (all_read, like) in [(false, &per_url), (true, &per_bid), (false, &per_url)] {
            fleet.store(all_read, Ordering::Relaxed);
            for s in [&auto, &clone] {
                assert_eq!(s.writes(), like.writes());
                assert_eq!(written(s), written(like));
                assert_eq!(s.user_key("u-1001"), like.user_key("u-1001"));
                assert_eq!(s.user_keys("u-1001"), like.user_keys("u-1001"));
            }
        }

        for fixed in [UrlSignatures::PerUrl, UrlSignatures::PerBid] {
            let mut s = Signer::writing(b"test secret", fixed);
            let flag = Arc::new(AtomicBool::new(fixed == UrlSignatures::PerUrl));
            s.follow(flag);
            assert_eq!(s.writes(), fixed);
        }
    }

    /// A notice's purpose is its kind's name, the one its URLs were
    /// signed under before purposes were constants.
    #[test]
    fn notice_purposes_are_their_kinds_names() {
        for kind in Kind::ALL {
            assert_eq!(kind.purpose().name(), kind.as_str());
        }
    }

    /// The per-bid key's purpose is published under nowhere: no signature
    /// that leaves the bidder is a per-bid key.
    #[test]
    fn the_bid_key_purpose_is_no_published_name() {
        let published = [
            "win",
            "billing",
            "loss",
            "track-impression",
            "track-click",
            "track-event",
            "user",
            "audience-token",
            crate::sync::COOKIE_SIGNATURE,
        ];
        assert!(!published.contains(&BID_KEY));
        // Advertiser ids hold no newline (config validation), so these
        // names are whole names after the last newline, never `bid-key`.
        assert!(crate::sync::advertiser_signature("bid-key").starts_with("advertiser-uid:"));
        // Every signed text ends `\n` + name: a name without a newline
        // cannot be the tail of another.
        assert!(!BID_KEY.contains('\n'));
    }

    /// A bid's key, computed here from the documented construction: the
    /// bid-key secret is the last 128 bits of the HMAC of `\n` `bid-key`,
    /// the key that secret's SipHash of `b=` and the bid id.
    #[test]
    fn the_bid_key_is_the_documented_one() {
        use siphasher::sip128::Hasher128 as _;
        use std::hash::Hasher as _;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test secret").unwrap();
        m.update(b"\nbid-key");
        let bid_secret: [u8; 16] = m.finalize().into_bytes()[16..].try_into().unwrap();
        let mut bid = siphasher::sip128::SipHasher24::new_with_key(&bid_secret);
        bid.write(b"b=0123");
        let key = bid.finish128().as_bytes();
        let mut expected = siphasher::sip128::SipHasher24::new_with_key(&key);
        expected.write(b"b=0123&li=x&f=1\nwin");
        let signer = Signer::writing(b"test secret", UrlSignatures::PerBid);
        let mut sig = String::new();
        signer
            .url_key("b=0123&li=x")
            .sign(Kind::Win.purpose(), &["&f=1"], &mut sig);
        assert_eq!(sig, hex::encode(expected.finish128().as_bytes()));
    }

    /// Both user keys, computed here from their documented constructions:
    /// `per-url` (the default, and what earlier versions wrote and their
    /// journals hold) the first 64 bits of the HMAC of the id, `\n`,
    /// `user`; `per-bid` SipHash-2-4 (64-bit) of the id under the last 128
    /// bits of the HMAC of `\n` `user-key`. Each signer's other key is the
    /// other one.
    #[test]
    fn user_keys_are_the_documented_ones() {
        use std::hash::Hasher as _;
        let mac = || hmac::Hmac::<sha2::Sha256>::new_from_slice(b"test secret").unwrap();
        let mut m = mac();
        m.update(b"u-1001\nuser");
        let hmac_key = u64::from_be_bytes(m.finalize().into_bytes()[..8].try_into().unwrap());
        let mut m = mac();
        m.update(b"\nuser-key");
        let secret: [u8; 16] = m.finalize().into_bytes()[16..].try_into().unwrap();
        let mut sip = siphasher::sip::SipHasher24::new_with_key(&secret);
        sip.write(b"u-1001");
        let sip_key = sip.finish();
        let per_url = Signer::writing(b"test secret", UrlSignatures::PerUrl);
        let per_bid = Signer::writing(b"test secret", UrlSignatures::PerBid);
        assert_eq!(per_url.user_key("u-1001"), hmac_key);
        assert_eq!(per_url.user_keys("u-1001"), (hmac_key, sip_key));
        assert_eq!(per_bid.user_key("u-1001"), sip_key);
        assert_eq!(per_bid.user_keys("u-1001"), (sip_key, hmac_key));
        assert_ne!(hmac_key, sip_key);
        let other = Signer::writing(b"another secret", UrlSignatures::PerBid);
        assert_ne!(other.user_key("u-1001"), sip_key);
        assert_ne!(per_bid.user_key("u-1002"), sip_key);
    }

    /// A per-bid tag is SipHash's of the whole message, however its tail
    /// is cut into pieces and however long they are.
    #[test]
    fn per_bid_tags_of_long_pieces_are_the_whole_messages_hash() {
        use siphasher::sip128::Hasher128 as _;
        use std::hash::Hasher as _;
        let signer = Signer::writing(b"test secret", UrlSignatures::PerBid);
        let key = signer.url_key("b=0123&li=x");
        let UrlKey::PerBid(sip) = key else {
            panic!("per-bid signing keys per bid")
        };
        let long: String = ('a'..='z').cycle().take(300).collect();
        for lengths in [
            vec![],
            vec![0, 0],
            vec![127],
            vec![126, 1],
            vec![100, 40, 3],
            vec![5, 300, 5],
        ] {
            let pieces: Vec<&str> = lengths.iter().map(|&n| &long[..n]).collect();
            let mut whole = sip;
            whole.write(format!("{}\ntrack-click", pieces.concat()).as_bytes());
            let mut sig = String::new();
            key.sign(Purpose::new("\ntrack-click"), &pieces, &mut sig);
            assert_eq!(
                sig,
                hex::encode(whole.finish128().as_bytes()),
                "pieces of {lengths:?}"
            );
        }
    }

    #[test]
    fn a_url_key_signs_its_purpose_and_tail() {
        let per_bid = |secret: &[u8]| Signer::writing(secret, UrlSignatures::PerBid);
        let key = per_bid(b"test secret").url_key("b=1&li=x");
        let mut sig = String::new();
        key.sign(Purpose::new("\ntrack-click"), &["&f=ab", "&d=1"], &mut sig);
        assert_eq!(sig.len(), 32);
        assert!(
            key.verify(Purpose::new("\ntrack-click"), &["&f=ab&d=1"], &sig),
            "pieces or whole"
        );
        assert!(!key.verify(Purpose::new("\ntrack-click"), &["&f=ab&d=0"], &sig));
        assert!(!key.verify(Purpose::new("\ntrack-impression"), &["&f=ab&d=1"], &sig));
        assert!(!per_bid(b"test secret").url_key("b=2&li=x").verify(
            Purpose::new("\ntrack-click"),
            &["&f=ab&d=1"],
            &sig
        ));
        // The key comes from the bid id alone; the rest of the text is
        // under the SipHash.
        assert!(!per_bid(b"test secret").url_key("b=1&li=y").verify(
            Purpose::new("\ntrack-click"),
            &["&f=ab&d=1"],
            &sig
        ));
        assert!(!per_bid(b"another").url_key("b=1&li=x").verify(
            Purpose::new("\ntrack-click"),
            &["&f=ab&d=1"],
            &sig
        ));
        assert!(!key.verify(
            Purpose::new("\ntrack-click"),
            &["&f=ab&d=1"],
            &sig.to_uppercase()
        ));
        assert!(!key.verify(Purpose::new("\ntrack-click"), &["&f=ab&d=1"], &sig[..30]));
        // Nor with a `0x` before it (the hex decoder would skip one).
        for prefixed in [format!("0x{sig}"), format!("0x{}", &sig[2..])] {
            assert!(!key.verify(Purpose::new("\ntrack-click"), &["&f=ab&d=1"], &prefixed));
        }
    }

    #[test]
    fn round_trips_and_keeps_the_macro() {
        let u = url(Kind::Win);
        assert!(u.starts_with("http://bidder.example:8080/notice/win?b=0123"));
        assert!(u.ends_with("&price=${AUCTION_PRICE}"));
        let n = check(Kind::Win, &query(Kind::Win)).unwrap();
        assert_eq!(n.line_item, "tent remarketing&x");
        assert_eq!(n.bid_price, Micros(6_000_000));
        assert_eq!(n.price, Price::Unreadable, "the macro left as is");
        assert_eq!(n.cpm(), Micros(6_000_000), "charges the bid price");
        let priced = query(Kind::Win).replace("${AUCTION_PRICE}", "4.25");
        assert_eq!(check(Kind::Win, &priced).unwrap().cpm(), Micros(4_250_000));
        let above = query(Kind::Win).replace("${AUCTION_PRICE}", "60.00");
        assert_eq!(check(Kind::Win, &above).unwrap().cpm(), Micros(6_000_000));
    }

    #[test]
    fn the_exchanges_terms_are_signed() {
        let q = query(Kind::Win);
        assert!(q.contains("&x=adx&cur=USD&r=1000000000&ch=f&e=0&s="), "{q}");
        for forged in [
            q.replace("&x=adx", "&x=other"),
            q.replace("&cur=USD", "&cur=JPY"),
            q.replace("&r=1000000000", "&r=1"),
            q.replace("&ch=f", "&ch=w"),
            q.replace("&e=0", "&e=1"),
        ] {
            assert_eq!(
                check(Kind::Win, &forged).unwrap_err(),
                NoticeError::Signature
            );
        }
    }

    #[test]
    fn a_price_in_another_currency_is_charged_in_usd_rounding_up() {
        let n = |price: &str| Notice {
            kind: Kind::Win,
            bid_id: String::new(),
            imp_id: String::new(),
            line_item: String::new(),
            order: String::new(),
            creative: String::new(),
            bid_price: Micros(4_000_000),
            price: read_plain(Some(price)),
            price_text: Some(price.to_owned()),
            test: false,
            at_ms: 0,
            exchange: "x".into(),
            currency: "EUR".into(),
            rate: Rate::parse_decimal("0.95").unwrap(),
            charge_on: ChargeOn::First,
            encrypted: false,
            keyword: None,
            audience: None,
        };
        // EUR 1.00 = USD 1.0526315…: charged 1.052632.
        assert_eq!(n("1.00").cpm(), Micros(1_052_632));
        // The whole bid (EUR 3.80) is USD 4.00 exactly.
        assert_eq!(n("3.80").cpm(), Micros(4_000_000));
        // Above the bid once converted: the bid.
        assert_eq!(n("3.81").cpm(), Micros(4_000_000));
        assert_eq!(n("abc").cpm(), Micros(4_000_000));
    }

    #[test]
    fn every_kind_is_signed_apart() {
        for kind in Kind::ALL {
            for other in Kind::ALL {
                let r = check(other, &query(kind));
                assert_eq!(r.is_ok(), kind == other, "{kind:?} as {other:?}");
            }
        }
    }

    #[test]
    fn appended_duplicated_reordered_or_changed_parameters_are_refused() {
        let q = query(Kind::Win);
        let signed_end = q.find("&s=").unwrap();
        let swapped = {
            let (signed, rest) = q.split_at(signed_end);
            let mut pairs: Vec<&str> = signed.split('&').collect();
            pairs.swap(2, 3);
            format!("{}{rest}", pairs.join("&"))
        };
        for forged in [
            format!("{q}&b=ffffffffffffffffffffffffffffffff"),
            format!("{q}&bp=999000000000&price=999000"),
            format!("{q}&li=other&o=other"),
            format!("{q}&ts={NOW}"),
            format!("{q}&x=1"),
            q.replace("&price=", "&price=1&price="),
            q.replace("bp=6000000", "bp=60000000"),
            q.replace("&t=0", "&t=1"),
            q.replace("&s=", "&s=00"),
            q.replace("&s=", "&x=1&s="),
            q[..signed_end].to_string(),
            format!("x=1&{q}"),
            swapped,
            String::new(),
        ] {
            assert_eq!(
                check(Kind::Win, &forged).unwrap_err(),
                NoticeError::Signature,
                "{forged}"
            );
        }
    }

    #[test]
    fn expiry_cannot_be_revived() {
        let q = query(Kind::Win);
        assert_eq!(
            verify(Kind::Win, &q, &signer(), NOW + DAY + 1, DAY).unwrap_err(),
            NoticeError::Expired
        );
        assert!(
            verify(Kind::Win, &q, &signer(), NOW - 120_000, DAY).is_ok(),
            "a clock behind the bid's is no reason to refuse a signed notice"
        );
        let revived = q.replace(&format!("ts={NOW}"), &format!("ts={}", NOW + DAY));
        assert_eq!(
            verify(Kind::Win, &revived, &signer(), NOW + DAY + 1, DAY).unwrap_err(),
            NoticeError::Signature
        );
        assert_eq!(
            verify(Kind::Win, &q, &Signer::new(b"another"), NOW, DAY).unwrap_err(),
            NoticeError::Signature
        );
    }

    #[test]
    fn unreadable_prices_charge_the_bid() {
        for price in [
            "NaN",
            "-1",
            "1e3",
            "1%2C50",
            "4.00%20USD",
            "4.00+USD",
            "WEp8wQAgBkwA7SDkACHwkTnv3WJW-gL7-ZJ8ag",
            "${AUCTION_PRICE:B64}",
            "",
            "%zz",
            "99999999999999999999",
            "0",
            "0.000000",
        ] {
            let q = query(Kind::Win).replace("${AUCTION_PRICE}", price);
            let n = check(Kind::Win, &q).unwrap_or_else(|e| panic!("{price}: {e}"));
            assert_eq!(n.price, Price::Unreadable, "{price}");
            assert_eq!(n.cpm(), Micros(6_000_000));
        }
        let q = query(Kind::Win);
        let without = &q[..q.find("&price=").unwrap()];
        assert_eq!(check(Kind::Win, without).unwrap().price, Price::Unreadable);
    }

    #[test]
    fn a_price_under_a_micro_charges_a_micro_and_zero_charges_the_bid() {
        assert_eq!(read_plain(Some("0.0000004")), Price::Cpm(Micros(1)));
        assert_eq!(read_plain(Some("0.0000015")), Price::Cpm(Micros(2)));
        for zero in ["0", "0.0000000", ".0", "000"] {
            assert_eq!(read_plain(Some(zero)), Price::Unreadable, "{zero}");
        }
    }

    #[test]
    fn prices_are_exact_and_round_up_past_a_micro() {
        assert_eq!(parse_price("1.5"), Some(Micros(1_500_000)));
        assert_eq!(parse_price("0.000001"), Some(Micros(1)));
        assert_eq!(parse_price("2.0000019"), Some(Micros(2_000_002)));
        assert_eq!(parse_price("2.0000010000"), Some(Micros(2_000_001)));
        assert_eq!(parse_price("1.0000001"), Some(Micros(1_000_001)));
        assert_eq!(parse_price("0.35000000000000003"), Some(Micros(350_001)));
        assert_eq!(parse_price("0.0000004"), Some(Micros(1)));
        assert_eq!(parse_price("7"), Some(Micros(7_000_000)));
        assert_eq!(parse_price(".5"), Some(Micros(500_000)));
        assert_eq!(parse_price("5."), Some(Micros(5_000_000)));
        for bad in ["-1", "1e3", "", ".", " 1", "1 ", "+1", "1.2.3", "１"] {
            assert_eq!(parse_price(bad), None, "{bad:?}");
        }
    }

    fn any_kind() -> impl Strategy<Value = Kind> {
        prop_oneof![Just(Kind::Win), Just(Kind::Billing), Just(Kind::Loss)]
    }

    proptest! {
        #[test]
        fn any_change_to_a_signed_notice_is_refused(
            kind in any_kind(),
            at in 0usize..400,
            byte in any::<u8>(),
            insert in any::<bool>(),
        ) {
            let q = query(kind);
            // Everything before `&price=` is ours; only the price's value
            // may change.
            let ours = q.find("&price=").unwrap() + "&price=".len();
            let at = at % ours;
            let mut bytes = q.clone().into_bytes();
            if insert {
                bytes.insert(at, byte);
            } else {
                prop_assume!(bytes[at] != byte);
                bytes[at] = byte;
            }
            if let Ok(tampered) = String::from_utf8(bytes) {
                // Inserting `=` just before the one of `price=` is the
                // same text as inserting it into the price's value.
                prop_assume!(!tampered.starts_with(&q[..ours]));
                prop_assert!(check(kind, &tampered).is_err(), "{}", tampered);
            }
        }

        #[test]
        fn any_appended_text_is_refused_and_any_price_is_safe(
            kind in any_kind(),
            tail in "[&=a-z0-9%.${}_:-]{0,40}",
        ) {
            let q = query(kind);
            let appended = format!("{q}&{tail}");
            prop_assert!(check(kind, &appended).is_err());
            let priced = q.replace("${AUCTION_PRICE}", &tail);
            match check(kind, &priced) {
                Ok(n) => prop_assert!(n.cpm() <= n.bid_price && n.cpm() >= Micros::ZERO),
                // `&` in the tail adds parameters: refused.
                Err(e) => prop_assert!(tail.contains('&') && e == NoticeError::Signature),
            }
        }

        #[test]
        fn notices_round_trip(
            bid in "[0-9a-f]{32}",
            imp in "\\PC{1,20}",
            li in "\\PC{1,30}",
            price in 1i64..1_000_000_000,
            at_off in 0i64..DAY,
            test in any::<bool>(),
        ) {
            let ids = format!("&li={}&o={}", encode(&li), encode("o"));
            let signed = NoticeUrl {
                bid_id: &bid,
                imp_id: &imp,
                line_item_and_order: &ids,
                creative: "c",
                bid_price: Micros(price),
                at_ms: NOW - at_off,
                test,
                exchange: "adx",
                currency: "EUR",
                rate: Rate::from_nanos(950_000_000).unwrap(),
                charge_on: ChargeOn::Billing,
                encrypted: true,
                keyword: None,
                audience: None,
                ids_encoded: true,
            }
            .signed();
            let mut u = String::new();
            NoticeUrl::write(BASE, Kind::Billing, &signed, &signer(), &mut u);
            let q = u.split_once('?').unwrap().1;
            let n = check(Kind::Billing, q).unwrap();
            prop_assert_eq!(n.bid_id, bid);
            prop_assert_eq!(n.imp_id, imp);
            prop_assert_eq!(n.line_item, li);
            prop_assert_eq!(n.bid_price, Micros(price));
            prop_assert_eq!(n.test, test);
            prop_assert_eq!(n.exchange, "adx");
            prop_assert_eq!(n.currency, "EUR");
            prop_assert_eq!(n.charge_on, ChargeOn::Billing);
            prop_assert!(n.encrypted);
            prop_assert_eq!(n.price, Price::Unreadable);
        }

        #[test]
        fn price_parsing_is_exact_or_refused(s in "\\PC{0,24}") {
            if let Some(m) = parse_price(&s) {
                prop_assert!(m >= Micros::ZERO);
                prop_assert!(s.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            }
        }

        #[test]
        fn decimal_prices_read_exactly(units in 0i64..10_000_000, micros in 0i64..1_000_000) {
            let text = format!("{units}.{micros:06}");
            prop_assert_eq!(parse_price(&text), Some(Micros(units * 1_000_000 + micros)));
        }
    }
}
