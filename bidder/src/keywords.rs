//! Contextual keyword matching.
//!
//! Publishers send keywords as comma-separated strings (`site.keywords`,
//! `app.keywords`, `content.keywords`, `user.keywords`) or as 2.6 `kwarray`.
//! Each entry is a keyword phrase; matching is case-insensitive:
//! - `exact`: a phrase equals the configured keyword;
//! - `phrase`: the configured words appear in that order inside one phrase;
//! - `broad`: every configured word appears somewhere, in any order;
//! - `negative`: any phrase-style match excludes the impression.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;

use config::Keywords;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The request's keywords. Most line items have no keyword rule, so the
/// words are split and lower-cased only when a rule first asks.
#[derive(Debug, Default)]
pub struct RequestKeywords<'r> {
    /// Comma-separated strings (`site.keywords`, …): a few, kept in
    /// place so that a request allocates nothing for them.
    csv: smallvec::SmallVec<[&'r str; 4]>,
    /// One keyword phrase each (2.6 `kwarray`).
    single: smallvec::SmallVec<[&'r str; 4]>,
    /// Each keyword phrase as its lower-cased words.
    phrases: OnceCell<Vec<Vec<String>>>,
}

impl<'r> RequestKeywords<'r> {
    pub fn add(&mut self, csv: Option<&'r str>, array: &'r [Cow<'r, str>]) {
        // One at a time: see `push_all` in context.rs.
        if let Some(csv) = csv {
            self.csv.push(csv);
        }
        for k in array {
            self.single.push(k);
        }
    }

    fn phrases(&self) -> &[Vec<String>] {
        self.phrases.get_or_init(|| {
            let mut read = 0;
            let mut out = Vec::new();
            for phrase in self
                .csv
                .iter()
                .flat_map(|c| c.split(','))
                .chain(self.single.iter().copied())
            {
                // Read lazily, and no further than the bound: past it,
                // the rest of a megabyte of keywords is not even split.
                if read >= MAX_WORDS {
                    break;
                }
                let w = words_upto(phrase, MAX_WORDS - read);
                read += w.len();
                if !w.is_empty() {
                    out.push(w);
                }
            }
            out
        })
    }

    fn exact(&self, want: &[String]) -> bool {
        self.phrases().iter().any(|p| p.as_slice() == want)
    }

    fn phrase(&self, want: &[String]) -> bool {
        !want.is_empty()
            && self
                .phrases()
                .iter()
                .any(|p| p.windows(want.len()).any(|w| w == want))
    }

    fn broad(&self, want: &[String]) -> bool {
        let phrases = self.phrases();
        !want.is_empty()
            && want
                .iter()
                .all(|w| phrases.iter().any(|p| p.iter().any(|x| x == w)))
    }
}

/// Words of a request's keywords read at most, over all its phrases: a
/// page is described in tens of words, and each keyword line item compares
/// its keywords with every one, on every imp (CPU probe: a megabyte of
/// `a,a,a,…` cost 1.5 s of CPU per request).
const MAX_WORDS: usize = 256;

/// Lower-cased words with accents folded away (`Café` → `cafe`), so that
/// `Crème brûlée` on a page matches `creme brulee` in a line item.
fn words(s: &str) -> Vec<String> {
    words_upto(s, usize::MAX)
}

/// The first `n` of [`words`].
fn words_upto(s: &str, n: usize) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(n)
        .map(fold)
        .collect()
}

fn fold(word: &str) -> String {
    if word.is_ascii() {
        return word.to_ascii_lowercase();
    }
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Keywords of one kind [`KeywordRule::repeated`] compares pair by pair
/// at most: a config may list millions, and a load must not take hours.
const SHADOW_PAIRS: usize = 512;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Broad,
    Phrase,
    Exact,
}

/// A line item's keyword rule, with its words split once at compile time.
#[derive(Debug, Clone)]
pub struct KeywordRule {
    broad: Vec<Vec<String>>,
    phrase: Vec<Vec<String>>,
    exact: Vec<Vec<String>>,
    negative: Vec<Vec<String>>,
    /// The positive keywords as the search-term report names them
    /// (`broad:…`, `phrase:…`, `exact:…`), in the order above.
    names: Vec<String>,
}

impl KeywordRule {
    pub fn compile(k: &Keywords) -> KeywordRule {
        let split = |v: &[String]| v.iter().map(|s| words(s)).collect();
        let named = |kind: &str, v: &[String]| -> Vec<String> {
            v.iter().map(|w| format!("{kind}:{w}")).collect()
        };
        KeywordRule {
            broad: split(&k.broad),
            phrase: split(&k.phrase),
            exact: split(&k.exact),
            negative: split(&k.negative),
            names: [
                named("broad", &k.broad),
                named("phrase", &k.phrase),
                named("exact", &k.exact),
            ]
            .concat(),
        }
    }

    /// The positive keywords (as [`Self::matched`] names them) that no
    /// page can match, because a negative one always excludes it: a
    /// negative's words in order inside a `phrase` or `exact` keyword (a
    /// page matching it holds them), or a one-word negative among a
    /// `broad` keyword's words. What `bidder validate` and every load
    /// warn of (account-manager probe: accepted in silence).
    pub fn never_matching(&self) -> Vec<&str> {
        let inside = |n: &Vec<String>, w: &Vec<String>| {
            !n.is_empty() && w.windows(n.len()).any(|x| x == n.as_slice())
        };
        let broad = self.broad.iter().map(|w| {
            self.negative
                .iter()
                .any(|n| n.len() == 1 && w.contains(&n[0]))
        });
        let ordered = self
            .phrase
            .iter()
            .chain(&self.exact)
            .map(|w| self.negative.iter().any(|n| inside(n, w)));
        broad
            .chain(ordered)
            .zip(&self.names)
            .filter(|(dead, _)| *dead)
            .map(|(_, name)| name.as_str())
            .collect()
    }

    /// Positive keywords never credited in the search-term report, each
    /// with the earlier keyword of its kind that is credited instead:
    /// [`KeywordRule::matched`] credits the first of a kind that matches,
    /// and every page these match, that one matches too. That is the same
    /// words once folded (`Tent` and `tent`); for broad keywords, its words
    /// among these ones' in any order (`tent` before `camping tent`); for
    /// phrases, its words in order inside these ones' (`tent` before `red
    /// tent sale`). Said at every load, not refused. Beyond
    /// [`SHADOW_PAIRS`] keywords of one kind only the same words are
    /// looked for: the others are compared pair by pair.
    pub fn repeated(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        let mut first = 0;
        for (list, kind) in [
            (&self.broad, Kind::Broad),
            (&self.phrase, Kind::Phrase),
            (&self.exact, Kind::Exact),
        ] {
            // Broad keywords as sets (sorted, each word once).
            let keys: Vec<Vec<&str>> = list
                .iter()
                .map(|words| {
                    let mut key: Vec<&str> = words.iter().map(String::as_str).collect();
                    if kind == Kind::Broad {
                        key.sort_unstable();
                        key.dedup();
                    }
                    key
                })
                .collect();
            let pairs = kind != Kind::Exact && keys.len() <= SHADOW_PAIRS;
            let mut seen: HashMap<&[&str], usize> = HashMap::new();
            for (i, key) in keys.iter().enumerate() {
                if key.is_empty() {
                    continue;
                }
                let earlier = match seen.get(key.as_slice()) {
                    Some(&e) => Some(e),
                    None => {
                        seen.insert(key, i);
                        pairs
                            .then(|| {
                                keys[..i].iter().position(|e| {
                                    !e.is_empty()
                                        && match kind {
                                            Kind::Broad => {
                                                e.iter().all(|w| key.binary_search(w).is_ok())
                                            }
                                            _ => key.windows(e.len()).any(|w| w == e.as_slice()),
                                        }
                                })
                            })
                            .flatten()
                    }
                };
                if let Some(e) = earlier {
                    if let (Some(this), Some(that)) =
                        (self.names.get(first + i), self.names.get(first + e))
                    {
                        out.push((this.as_str(), that.as_str()));
                    }
                }
            }
            first += list.len();
        }
        out
    }

    /// `None` when the rule does not match; otherwise the positive keyword
    /// that matched (exact first, then phrase, then broad: the most
    /// specific), or `Some(None)` for a rule of negatives only.
    pub fn matched(&self, kw: &RequestKeywords<'_>) -> Option<Option<&str>> {
        if self.negative.iter().any(|n| kw.phrase(n)) {
            return None;
        }
        if self.names.is_empty() {
            return Some(None);
        }
        let (b, p) = (self.broad.len(), self.phrase.len());
        let found = (self
            .exact
            .iter()
            .position(|w| kw.exact(w))
            .map(|i| b + p + i))
        .or_else(|| self.phrase.iter().position(|w| kw.phrase(w)).map(|i| b + i))
        .or_else(|| self.broad.iter().position(|w| kw.broad(w)))?;
        Some(self.names.get(found).map(String::as_str))
    }

    /// With only negative keywords configured, any page that does not hit
    /// one matches; otherwise at least one positive keyword must match.
    pub fn matches(&self, kw: &RequestKeywords<'_>) -> bool {
        self.matched(kw).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(broad: &[&str], phrase: &[&str], exact: &[&str], negative: &[&str]) -> KeywordRule {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        KeywordRule::compile(&Keywords {
            broad: v(broad),
            phrase: v(phrase),
            exact: v(exact),
            negative: v(negative),
        })
    }

    /// A wanted keyword a negative always excludes is named; one a page
    /// can still match is not (a multi-word negative against a broad
    /// keyword: the broad words may sit in different phrases). Checked
    /// against the matcher itself on pages that would match each.
    #[test]
    fn keywords_a_negative_always_excludes_are_named() {
        let r = rule(
            &["free tents", "tents", "Café tent"],
            &["Free Tents Today", "tents sale"],
            &["free-tents", "red tent"],
            &["free tents", "cafe"],
        );
        assert_eq!(
            r.never_matching(),
            [
                "broad:Café tent",
                "phrase:Free Tents Today",
                "exact:free-tents"
            ]
        );
        // Those named match no page their own words make; the others
        // match one.
        for (page, matches) in [
            ("tents,free shipping", true),
            ("tents", true),
            ("cafe tent", false),
            ("free tents today", false),
            ("tents sale", true),
            ("free tents", false),
            ("red tent", true),
        ] {
            assert_eq!(r.matches(&kw(page)), matches, "{page}");
        }
        assert!(rule(&["tents"], &[], &[], &[]).never_matching().is_empty());
    }

    /// A keyword with the words of an earlier one of its kind is named
    /// with it: folded, and for broad ones in any order and counted once.
    /// Kinds are apart (a broad and an exact keyword of the same words
    /// match different pages), and so are phrases in another order.
    #[test]
    fn keywords_an_earlier_one_already_matches_are_named() {
        let r = rule(
            &[
                "mystery novel",
                "Novel  MYSTERY",
                "novel mystery novel",
                "novel",
                "cosy mystery novel",
            ],
            &[
                "new release",
                "release new",
                "New-Release",
                "big new release sale",
                "release",
            ],
            &["new release", "!!!", "...", "new release today"],
            &[],
        );
        assert_eq!(
            r.repeated(),
            [
                ("broad:Novel  MYSTERY", "broad:mystery novel"),
                ("broad:novel mystery novel", "broad:mystery novel"),
                ("broad:cosy mystery novel", "broad:mystery novel"),
                ("phrase:New-Release", "phrase:new release"),
                ("phrase:big new release sale", "phrase:new release"),
            ]
        );
        // Where one named matches, the one named with it matched first
        // and is credited.
        for page in [
            "a mystery novel",
            "novel,mystery",
            "cosy mystery novel",
            "new release",
            "big new release sale",
        ] {
            let first = r.matched(&kw(page));
            assert!(first.is_some(), "{page}");
            assert!(
                !r.repeated()
                    .iter()
                    .any(|(again, _)| first == Some(Some(*again))),
                "{page}: {first:?}"
            );
        }
    }

    /// Past `SHADOW_PAIRS` keywords of a kind only the same words are
    /// named: a list of a million broad keywords loads in linear time.
    #[test]
    fn long_keyword_lists_are_checked_for_repeats_alone() {
        let mut broad: Vec<String> = (0..SHADOW_PAIRS).map(|i| format!("word{i} tent")).collect();
        broad.insert(0, "tent".into());
        broad.push("Tent".into());
        let refs: Vec<&str> = broad.iter().map(String::as_str).collect();
        let r = rule(&refs, &[], &[], &[]);
        assert_eq!(r.repeated(), [("broad:Tent", "broad:tent")]);
        let short = rule(&refs[..3], &[], &[], &[]);
        assert_eq!(
            short.repeated(),
            [
                ("broad:word0 tent", "broad:tent"),
                ("broad:word1 tent", "broad:tent")
            ]
        );
    }

    /// A request's keywords are read up to `MAX_WORDS` words, whatever it
    /// sends: each keyword line item compares its keywords with all of
    /// them, on every imp.
    #[test]
    fn keywords_are_read_up_to_a_bound() {
        let many = "a,".repeat(100_000) + "camping tent";
        let k = kw(&many);
        assert_eq!(k.phrases().iter().map(Vec::len).sum::<usize>(), MAX_WORDS);
        assert!(!rule(&["camping tent"], &[], &[], &[]).matches(&k));
        let first = format!("camping tent,{many}");
        assert!(rule(&["camping tent"], &[], &[], &[]).matches(&kw(&first)));
        // One phrase of many words is cut at the bound too.
        let long = "word ".repeat(100_000);
        assert_eq!(kw(&long).phrases()[0].len(), MAX_WORDS);
    }

    fn kw(csv: &str) -> RequestKeywords<'_> {
        let mut k = RequestKeywords::default();
        k.add(Some(csv), &[]);
        k
    }

    #[test]
    fn case_and_accents_do_not_matter() {
        let r = rule(&[], &["crème brûlée"], &["Café"], &[]);
        assert!(r.matches(&kw("recipes,CREME BRULEE easy")));
        assert!(r.matches(&kw("cafe")));
        assert!(r.matches(&kw("CAFÉ")));
        assert!(!r.matches(&kw("caf")));
        let broad = rule(&["Ärger Öl"], &[], &[], &[]);
        assert!(broad.matches(&kw("ol,arger")));
    }

    #[test]
    fn kwarray_entries_are_whole_phrases() {
        let r = rule(&[], &[], &["thriller books"], &[]);
        let array = [Cow::Borrowed("Thriller Books"), Cow::Borrowed("x")];
        let mut k = RequestKeywords::default();
        k.add(None, &array);
        assert!(r.matches(&k));
    }

    #[test]
    fn broad_needs_all_words_in_any_order() {
        let r = rule(&["mystery novel"], &[], &[], &[]);
        assert!(r.matches(&kw("Novel,best MYSTERY")));
        assert!(r.matches(&kw("a novel of mystery")));
        assert!(!r.matches(&kw("mystery,thriller")));
    }

    #[test]
    fn phrase_needs_the_words_in_order() {
        let r = rule(&[], &["new release"], &[], &[]);
        assert!(r.matches(&kw("books, New Release fiction")));
        assert!(!r.matches(&kw("release new")));
        assert!(!r.matches(&kw("new, release")));
    }

    #[test]
    fn exact_needs_the_whole_keyword() {
        let r = rule(&[], &[], &["thriller books"], &[]);
        assert!(r.matches(&kw("sports,Thriller Books")));
        assert!(!r.matches(&kw("best thriller books")));
    }

    #[test]
    fn negative_excludes_and_alone_allows_the_rest() {
        let r = rule(&["mystery"], &[], &[], &["free ebook"]);
        assert!(!r.matches(&kw("mystery, free ebook download")));
        assert!(r.matches(&kw("mystery, ebook")));
        let only_negative = rule(&[], &[], &[], &["free ebook"]);
        assert!(only_negative.matches(&kw("")));
        assert!(!only_negative.matches(&kw("Free eBook")));
    }

    #[test]
    fn no_keywords_on_the_page_match_no_positive_rule() {
        let r = rule(&["mystery"], &[], &[], &[]);
        assert!(!r.matches(&RequestKeywords::default()));
    }

    #[test]
    fn the_most_specific_matching_keyword_is_named() {
        let r = rule(
            &["mystery novel"],
            &["mystery novel"],
            &["mystery novel"],
            &[],
        );
        assert_eq!(
            r.matched(&kw("mystery novel")),
            Some(Some("exact:mystery novel"))
        );
        assert_eq!(
            r.matched(&kw("a mystery novel")),
            Some(Some("phrase:mystery novel"))
        );
        assert_eq!(
            r.matched(&kw("novel of mystery")),
            Some(Some("broad:mystery novel"))
        );
        assert_eq!(r.matched(&kw("cookbook")), None);
        assert_eq!(rule(&[], &[], &[], &["x"]).matched(&kw("y")), Some(None));
    }
}
