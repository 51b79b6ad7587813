//! Finding, reading and parsing the YAML files, and turning parser errors
//! into problems an account manager can act on.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde_saphyr::{Error, Localizer, Location, MessageFormatter, SnippetMode};

use crate::model::Config;
use crate::problem::{Problem, Problems};
use crate::raw::{self, RawFile};
use crate::resume::{self, Past};
use crate::validate::{self, Secrets};

/// Loads every `*.yaml` and `*.yml` file under `dir` (the extension in any
/// case), recursively.
///
/// Files are taken in path order so problems and the resulting config are
/// stable. Entries whose names start with `.` are skipped: Kubernetes
/// ConfigMap volumes keep a second copy of every file under `..data/` and a
/// timestamped `..2026_…` directory, which would otherwise load everything
/// twice. Symlinks are followed (ConfigMap files are symlinks), each real
/// directory at most once.
///
/// A directory that cannot be read, or that holds no YAML file, is reported as
/// a problem on the directory itself with line and column 0.
pub fn load_dir(dir: &Path) -> Result<Config, Problems> {
    load_dir_with(dir, Secrets::Read)
}

/// [`load_dir`], or with [`Secrets::Skipped`] for reading a config
/// offline: the secrets it names are neither read nor required, and price
/// encryption is left out.
pub fn load_dir_with(dir: &Path, secrets: Secrets) -> Result<Config, Problems> {
    let mut problems = Vec::new();
    let mut paths = Vec::new();
    let mut seen_dirs = HashSet::new();
    walk(dir, &mut paths, &mut seen_dirs, &mut problems);
    paths.sort();

    if paths.is_empty() && problems.is_empty() {
        problems.push(directory_problem(
            dir,
            "no *.yaml or *.yml files found in this directory".to_owned(),
        ));
    }

    let mut files = Vec::with_capacity(paths.len());
    let mut left = MAX_CONFIG_BYTES;
    for path in paths {
        // Over the total only when the file alone is within its bound.
        let alone_too_large = || fs::metadata(&path).is_ok_and(|m| m.len() > MAX_FILE_BYTES);
        match read_bounded(&path, MAX_FILE_BYTES.min(left)) {
            Ok(None) if left < MAX_FILE_BYTES && !alone_too_large() => problems.push(file_problem(
                &path,
                format!(
                    "with the files before it, the config holds more than the {} MiB it may in all",
                    MAX_CONFIG_BYTES >> 20
                ),
            )),
            Ok(None) => problems.push(file_problem(
                &path,
                format!(
                    "the file holds more than the {} MiB a config file may",
                    MAX_FILE_BYTES >> 20
                ),
            )),
            Ok(Some(bytes)) => match String::from_utf8(bytes) {
                Ok(text) => {
                    left -= text.len() as u64;
                    files.push((path, text));
                }
                Err(e) => problems.push(not_utf8(&path, e)),
            },
            Err(e) => problems.push(file_problem(&path, format!("the file cannot be read: {e}"))),
        }
    }
    check(&files, secrets, problems)
}

/// The most one config file may hold. Real ones are kilobytes (a config
/// of 10,000 line items is 4 MB in all); without a bound an 800 MB file
/// was read whole by every reload that looked at it, and a pod with a
/// 1 GiB limit would be killed for memory instead of told.
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// The most all of a config's files may hold together.
pub const MAX_CONFIG_BYTES: u64 = 128 << 20;

/// The file's bytes, or `None` when it holds more than `limit`: read
/// through the bound, so a file growing while it is read is no larger.
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// What the YAML files [`load_dir`] would read look like now: their paths
/// and the size, modification time and inode of what each points at.
/// Kubernetes updates a ConfigMap volume by swapping the `..data` symlink
/// to a new directory, which changes every file's inode even when sizes
/// and times happen to match; an edit in place changes the time. Polled by
/// the server to reload when it changes; a directory that cannot be read
/// has a fingerprint of its own, so its return is a change too.
pub fn fingerprint(dir: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut paths = Vec::new();
    let mut problems = Vec::new();
    walk(dir, &mut paths, &mut HashSet::new(), &mut problems);
    paths.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    problems.len().hash(&mut h);
    for path in &paths {
        path.hash(&mut h);
        match fs::metadata(path) {
            Ok(m) => (m.len(), m.mtime(), m.mtime_nsec(), m.ino(), m.dev()).hash(&mut h),
            Err(e) => e.kind().to_string().hash(&mut h),
        }
    }
    h.finish()
}

/// The same as [`load_dir`] on in-memory `(display path, text)` pairs, in the
/// order given. An empty slice is an empty, valid config: only `load_dir` knows
/// a directory to blame for holding nothing.
pub fn load_files(files: &[(PathBuf, String)]) -> Result<Config, Problems> {
    check(files, Secrets::Read, Vec::new())
}

fn check(
    files: &[(PathBuf, String)],
    secrets: Secrets,
    mut problems: Vec<Problem>,
) -> Result<Config, Problems> {
    let mut parsed = Vec::with_capacity(files.len());
    for (path, text) in files {
        match parse_all(text) {
            Ok(raw) => parsed.push((path.as_path(), raw)),
            Err(found) => {
                problems.extend(found.into_iter().map(|(line, column, message)| Problem {
                    file: path.clone(),
                    line,
                    column,
                    message,
                }))
            }
        }
    }
    let config = validate::validate(&parsed, secrets, &mut problems);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(Problems::sorted(problems))
    }
}

/// Where a file stops being UTF-8, as file:line:column (the column in
/// characters, as the other problems count it), and the byte found there:
/// a file saved as Latin-1 is one accented letter away from UTF-8, and
/// "somewhere in the file" left the account manager to find it.
fn not_utf8(path: &Path, e: std::string::FromUtf8Error) -> Problem {
    let bytes = e.as_bytes();
    let at = e.utf8_error().valid_up_to();
    let valid = &bytes[..at];
    let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // Valid UTF-8 up to `at`: counted in characters.
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    let line = valid.iter().filter(|&&b| b == b'\n').count() + 1;
    Problem {
        file: path.to_path_buf(),
        line: line as u64,
        column: column as u64,
        message: format!(
            "the file is not UTF-8 text (byte 0x{:02x} here); save it as UTF-8",
            bytes.get(at).copied().unwrap_or(0)
        ),
    }
}

/// A problem of a file as a whole (too large, unreadable), placed at its
/// start: `file:1:1: reason`, the shape editors and CI annotate, as every
/// other problem of a file is.
fn file_problem(path: &Path, message: String) -> Problem {
    Problem {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message,
    }
}

/// A problem of a directory (missing, empty of config files): no line.
fn directory_problem(path: &Path, message: String) -> Problem {
    Problem {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        message,
    }
}

fn walk(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    seen_dirs: &mut HashSet<PathBuf>,
    problems: &mut Vec<Problem>,
) {
    // Canonical paths make a symlink loop visit each directory only once.
    match fs::canonicalize(dir) {
        Ok(real) => {
            if !seen_dirs.insert(real) {
                return;
            }
        }
        Err(e) => {
            problems.push(directory_problem(
                dir,
                format!("the config directory cannot be read: {e}"),
            ));
            return;
        }
    }
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(directory_problem(
                dir,
                format!("the config directory cannot be read: {e}"),
            ));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                problems.push(directory_problem(
                    dir,
                    format!("the config directory cannot be listed: {e}"),
                ));
                continue;
            }
        };
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // fs::metadata follows symlinks, so a dangling one is reported here.
        match fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, files, seen_dirs, problems),
            Ok(meta) if meta.is_file() && is_yaml(&path) => files.push(path),
            Ok(_) => {}
            Err(e) if is_yaml(&path) => {
                problems.push(file_problem(&path, format!("the file cannot be read: {e}")))
            }
            Err(_) => {}
        }
    }
}

/// `.yaml` or `.yml` in any case: a file saved as `shop.YAML` was left out
/// without a word, and a reload stopped that advertiser.
fn is_yaml(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// At most this many problems are read from one file that does not parse:
/// each costs a parse of the whole file.
const MAX_FILE_PROBLEMS: usize = 20;

/// Parses one file; on failure, its problems (the 1-based position and a
/// plain message of each), in the file's order: a value of the wrong type
/// or an unknown key does not hide the ones after it (see `resume`).
pub(crate) fn parse_all(text: &str) -> Result<RawFile, Vec<(u64, u64, String)>> {
    let (first, mut past) = match parse_one(text) {
        Ok(raw) => return Ok(raw),
        Err(found) => found,
    };
    let mut found = vec![first];
    let mut text = text.to_owned();
    while found.len() < MAX_FILE_PROBLEMS {
        let (line, column, _) = found[found.len() - 1];
        let Some(taken) = resume::step_over(&mut text, line, column, past) else {
            break;
        };
        match parse_one(&text) {
            // Only a problem of a kind read past is taken: a syntax error
            // after an edit may be the edit's (a list at its key's
            // indentation left behind), and ends the search unsaid.
            Err(((line, column, message), next))
                if next == Past::Missing || (next != Past::Nothing && (line, column) > taken) =>
            {
                found.push((line, column, message));
                past = next;
            }
            _ => break,
        }
    }
    Err(found)
}

/// Parses one file; on failure, the 1-based position and a plain message
/// of its first problem.
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Result<RawFile, (u64, u64, String)> {
    parse_one(text).map_err(|(found, _)| found)
}

/// [`parse`], with what can be taken out of the text to read past the
/// problem found.
fn parse_one(text: &str) -> Result<RawFile, ((u64, u64, String), Past)> {
    if let Some(found) = odd_indentation(text) {
        return Err((found, Past::Nothing));
    }
    // The parser's default budget (250,000 nodes) refused alias-free files
    // of some 12,500 line items, 2.2 MB, where a file may be 32 MiB
    // (account-manager probe): room for that, every other limit (aliases
    // among them) as it was.
    let mut budget = serde_saphyr::budget::Budget::default();
    budget.max_nodes = 8_000_000;
    budget.max_events = 32_000_000;
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: Some(budget),
    };
    serde_saphyr::from_str_with_options::<RawFile>(text, options).map_err(|err| {
        // The parser reads a key indented between two levels as part of
        // the value above it, and says a key is missing lines before.
        if matches!(err, Error::SerdeMissingField { .. }) {
            if let Some(found) = key_between_levels(text) {
                return (found, Past::Nothing);
            }
        }
        let (line, column) = err
            .location()
            .map_or((1, 1), |l: Location| (l.line(), l.column()));
        // Zero would mean "no position" in a Problem; a parse error is always in the text.
        let (line, column) = (line.max(1), column.max(1));
        if let Error::SerdeMissingField { field, .. } = &err {
            if let Some(found) = missing_key(text, line, column, field) {
                return (found, Past::Missing);
            }
        }
        let past = match err {
            Error::SerdeMissingField { .. } => Past::Missing,
            Error::SerdeUnknownField { .. } | Error::DuplicateMappingKey { .. } => Past::Key,
            Error::InvalidScalar { .. }
            | Error::Unexpected { .. }
            | Error::NullIntoString { .. } => Past::Value,
            _ => Past::Nothing,
        };
        let rendered = err.render_with_options(serde_saphyr::render_options! {
            formatter: &Wording,
            snippets: SnippetMode::Off,
        });
        // The scanner's words, for account managers: where it met a tab it
        // names the line before the tab's (a scalar it was reading).
        if rendered.contains("found a tab") {
            if let Some(found) = tab_indentation(text) {
                return (found, Past::Nothing);
            }
        }
        if let Some(found) = unclosed_flow(text, line) {
            return (found, Past::Nothing);
        }
        // Only where the parser's problem is a quoted value's: a valid
        // value quoted over lines does not take the blame for a problem
        // further down (review).
        if rendered.contains("quoted scalar") {
            if let Some(found) = unclosed_quote(text, line) {
                return (found, Past::Nothing);
            }
        }
        if let Some(hint) = quoting_hint(&rendered) {
            return ((line, column, format!("{rendered}: {hint}")), past);
        }
        if rendered.contains("did not find expected '-' indicator") {
            return (
                (
                    line,
                    column,
                    "this line is not a list item (no `- `) but is indented as one of the list \
                     above: start it with `- `, or indent it under a key"
                        .to_string(),
                ),
                Past::Nothing,
            );
        }
        ((line, column, rendered), past)
    })
}

/// What to do about a value YAML reads as something other than text
/// because of its first character, in the words of someone who only meant
/// text (account-manager probe: `name: *NEW* tents` was "reference to
/// unknown value", and `@`, `` ` `` and `%` an "unexpected character").
fn quoting_hint(rendered: &str) -> Option<&'static str> {
    if rendered.contains("reference to unknown value") {
        return Some(
            "a value starting with `*` is read as a reference to an anchor (`&name`); if it \
             is text, put it in quotes, like \"*NEW* tents\"",
        );
    }
    if [
        "unexpected character: `@'",
        "unexpected character: ``'",
        "unexpected character: `%'",
    ]
    .iter()
    .any(|m| rendered.contains(m))
    {
        return Some(
            "YAML reserves `@`, `` ` `` and `%` at the start of a value: put the value in quotes",
        );
    }
    if rendered.contains("cannot deserialize tagged scalar") {
        return Some("a `!!` tag (like `!!float`) is not needed here: write the value alone");
    }
    None
}

/// The first tab in a line's indentation: YAML indents with spaces only.
fn tab_indentation(text: &str) -> Option<(u64, u64, String)> {
    text.lines().enumerate().find_map(|(n, line)| {
        let col = line.find(|c: char| c != ' ')?;
        line[col..].starts_with('\t').then(|| {
            (
                n as u64 + 1,
                col as u64 + 1,
                "a tab in the indentation; YAML indents with spaces only: replace it with spaces"
                    .to_string(),
            )
        })
    })
}

/// A required key left out of a block mapping, said at the mapping's first
/// line and naming it by its id: the parser places it at the mapping's last
/// key (`creatives:` for a line item without a budget), which sends the
/// reader to the wrong line. The mapping's other keys tell which mapping it
/// is where several require the key (orders and line items both need a
/// budget). `None` where the place does not read as a block mapping's key
/// (a flow mapping, `{ daily: 30 }`): the parser's own place and words stand.
fn missing_key(text: &str, line: u64, column: u64, field: &str) -> Option<(u64, u64, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let at = usize::try_from(line - 1).ok()?;
    let col = usize::try_from(column - 1).ok()?;
    // Where a line's key starts, whether it opens a list item (`- id: x`),
    // and its indentation; `None` for blank and comment lines.
    let key_of = |l: &str| -> Option<(usize, bool, usize)> {
        let indent = crate::resume::indent(l);
        let rest = &l[indent..];
        if rest.is_empty() || rest.starts_with('#') {
            return None;
        }
        match rest.strip_prefix('-') {
            Some(item) if item.starts_with(' ') => {
                let gap = crate::resume::indent(item);
                Some((indent + 1 + gap, true, indent))
            }
            _ => Some((indent, false, indent)),
        }
    };
    if key_of(lines.get(at)?)?.0 != col {
        return None;
    }
    let mut start = at;
    for i in (0..at).rev() {
        let Some((key, item, indent)) = key_of(lines[i]) else {
            continue;
        };
        if key == col {
            start = i;
            if item {
                break;
            }
        } else if indent < col {
            break;
        }
    }
    let mut keys: Vec<&str> = Vec::new();
    let mut id = None;
    for (i, l) in lines.iter().enumerate().skip(start) {
        let Some((key, item, indent)) = key_of(l) else {
            continue;
        };
        if i > start && (indent < col || (item && key == col)) {
            break;
        }
        if key != col {
            continue;
        }
        let Some((name, value)) = l[key..].split_once(':') else {
            continue;
        };
        let name = name.trim();
        keys.push(name);
        if name == "id" {
            let value = value.split(" #").next().unwrap_or("").trim();
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            if !value.is_empty() {
                id = Some(value.to_string());
            }
        }
    }
    let owner = raw::missing_key_owner(field, &keys).unwrap_or("mapping");
    let message = match id {
        Some(id) => format!("missing required key \"{field}\" in {owner} \"{id}\""),
        None => format!("missing required key \"{field}\" in this {owner}"),
    };
    Some((start as u64 + 1, column, message))
}

/// A `key: value` line indented less than the `key: value` line before it
/// but not as far back as any key above it: between two levels, as when one
/// space too few goes before a line item's `cpm`. Only a file the parser
/// refused is looked at, and only that shape, which valid YAML never has:
/// a key less indented than the line before must line up with a key (or a
/// `- ` item's key) above it.
fn key_between_levels(text: &str) -> Option<(u64, u64, String)> {
    // (indentation, column of its key, whether it is `key: value` on one
    // line) of a line with content; `None` for blank and comment lines.
    let shape = |l: &str| -> Option<(usize, usize, bool)> {
        let l = l.strip_suffix('\r').unwrap_or(l);
        let indent = crate::resume::indent(l);
        let rest = l[indent..].trim_end();
        if rest.is_empty() || rest.starts_with('#') {
            return None;
        }
        let key = crate::resume::key_column(l.trim_end());
        let body = l[key..].trim_end();
        let scalar = body.split_once(": ").is_some_and(|(k, v)| {
            let v = v.split(" #").next().unwrap_or("").trim();
            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.is_empty()
                && !v.is_empty()
                && !v.starts_with(['|', '>', '[', '{', '&', '*', '!', '"', '\''])
        });
        Some((indent, key, scalar))
    };
    // Only lines of the block structure: not inside brackets or quotes
    // begun above, nor a block scalar's text.
    let info = crate::resume::lines(text);
    // The lines above that a later line may line up with, as (indentation,
    // key column): each pops those indented further, so the top is the
    // nearest line above at an indentation or less. One pass.
    let mut levels: Vec<(usize, usize)> = Vec::new();
    let mut previous: Option<(usize, usize, bool)> = None;
    for (n, l) in text.split('\n').enumerate() {
        if !info.get(n).is_some_and(|i| i.plain) {
            continue;
        }
        let Some(this) = shape(l) else {
            continue;
        };
        let (indent, key, scalar) = this;
        while levels.last().is_some_and(|&(i, _)| i > indent) {
            levels.pop();
        }
        let level = levels.last().copied();
        if let Some((before, before_key, before_scalar)) = previous {
            // Less indented than the key: value line before it, or, after
            // a `- key: value` line, between its mark and its key.
            let dedent = indent < before && before_scalar;
            let inside_item = before < indent && indent < before_key && before_scalar;
            if scalar && indent == key && (dedent || inside_item) {
                // At the `- ` of a list item above: a key of the mapping
                // that holds the list only where that mapping's keys are at
                // this column too (`line_items:` over `- id:` at one
                // column, or `- line_items:` whose item's keys are here).
                // Otherwise the key fell back to the dash, out of
                // its item (`cpm` one level short), which the parser reads
                // as the item ending and names a key missing from it.
                let at_dash = level.is_some_and(|(i, k)| i == indent && k > indent)
                    && !levels.iter().any(|&(_, k)| k == indent);
                let fits = !inside_item
                    && !at_dash
                    && level.is_some_and(|(i, k)| i == indent || k == indent);
                if !fits {
                    let want = if inside_item {
                        Some(before_key)
                    } else {
                        level.map(|(_, k)| k).filter(|&k| k > indent)
                    };
                    let hint = match want {
                        Some(k) if at_dash => format!("as the keys of that item ({k} spaces)"),
                        Some(k) => format!("as the keys of the mapping above ({k} spaces)"),
                        None => format!("as the line above ({before} spaces)"),
                    };
                    let place = if at_dash {
                        "as the `- ` of the list item above, out of that item"
                    } else {
                        "between two levels of the mapping above"
                    };
                    return Some((
                        n as u64 + 1,
                        indent as u64 + 1,
                        format!(
                            "this key is indented by {indent} spaces, {place}: indent it {hint}"
                        ),
                    ));
                }
            }
        }
        levels.push((indent, key));
        previous = Some(this);
    }
    None
}

/// A `[` or `{` left open at the end of its line, where the next line is a
/// block key (`name:` no further in than the line that opened it): the
/// `]` was forgotten, or a ` #` made the rest of the line a comment. The
/// parser reads on into the next line and stops at its `:`, a line late
/// and in its own words ("illegal placement of ':'"), or takes the key
/// into a value ("expected a whole number"). Said at the bracket, for a
/// problem the parser found on its line or after. A list
/// really written over several lines has its items there, not keys.
fn unclosed_flow(text: &str, problem_line: u64) -> Option<(u64, u64, String)> {
    let (lines, info) = read_lines(text);
    for n in open_before(&info, problem_line) {
        let (l, here) = (lines[n], info[n]);
        // Open because of a quote, not a bracket: the parser's own words
        // ("unclosed quote") are the right ones.
        let Some(open) = here.bracket else {
            continue;
        };
        let comment = here.comment;
        let indent = crate::resume::indent(l);
        // The next line that is no continuation of the collection: the
        // first not indented further, past items written on lines of
        // their own (`[ctv, desktop,` then `phone, tablet`, no `]`:
        // account-manager probe), every one still open.
        let next = lines.iter().enumerate().skip(n + 1).find(|(k, x)| {
            let t = x.trim();
            !t.is_empty()
                && !t.starts_with('#')
                && (crate::resume::indent(x) <= indent || !info.get(*k).is_some_and(|i| i.open))
        });
        let (m, next) = next?;
        // Closed on the key's line, it was a collection over two lines
        // (`colour: {` then `cpm: 9 }`), whatever else is wrong.
        if !info.get(m).is_some_and(|i| i.open) {
            continue;
        }
        // The parser stops on the bracket's line (a value read on into the
        // next) or the key's; a problem further down is one of its own, and
        // a collection over more lines may hold key-like text.
        if problem_line > m as u64 + 1 {
            continue;
        }
        let next_indent = crate::resume::indent(next);
        let key = reads_as_key(&next[next_indent..]);
        if !key || next_indent > indent {
            continue;
        }
        let (bracket, close) = if l.as_bytes()[open] == b'[' {
            ("list", ']')
        } else {
            ("mapping", '}')
        };
        let why = if comment {
            format!(
                ": a ` #` starts a comment, which hides the rest of the line; quote the value \
                 holding `#`, or end the {bracket} with `{close}` before the comment"
            )
        } else {
            format!(": end it with `{close}`")
        };
        let column = l[..open].chars().count() as u64 + 1;
        return Some((
            n as u64 + 1,
            column,
            format!("this {bracket} is not closed on its line, and the next line is a key{why}"),
        ));
    }
    None
}

/// The lines of `text` (split on `\n`, a `\r` ending cut) and each one's
/// [`crate::resume::Line`]: what [`unclosed_flow`] and [`unclosed_quote`]
/// read.
fn read_lines(text: &str) -> (Vec<&str>, Vec<crate::resume::Line>) {
    let lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    (lines, crate::resume::lines(text))
}

/// The lines, up to `problem_line` (1-based), that start in the block
/// structure and end with a flow collection or a quoted value still open:
/// where a problem the parser reported on that line or later may begin.
fn open_before(
    info: &[crate::resume::Line],
    problem_line: u64,
) -> impl Iterator<Item = usize> + '_ {
    let upto = usize::try_from(problem_line).unwrap_or(usize::MAX);
    info.iter()
        .take(upto)
        .enumerate()
        .filter(|(_, i)| i.plain && i.open)
        .map(|(n, _)| n)
}

/// Whether `text` (a line past its indentation) starts as a block key of
/// ours: a name of letters, digits and `_`, then `:` and a space or the
/// line's end.
fn reads_as_key(text: &str) -> bool {
    text.split_once(':').is_some_and(|(k, v)| {
        !k.is_empty()
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && (v.is_empty() || v.starts_with(' '))
    })
}

/// A quote left open at the end of its line, where the next line is a
/// block key (`name:` no further in): the closing quote was forgotten.
/// A quoted value may go on over lines, so the parser reads on to the next
/// quote, which may be an apostrophe in a comment far below, and says its
/// problem there (account-manager probe: `name: 'ACME Outdoor Gear` was
/// "invalid trailing content after single-quoted scalar" 67 lines later).
/// Said at the quote, for a problem the parser found on its line or after.
fn unclosed_quote(text: &str, problem_line: u64) -> Option<(u64, u64, String)> {
    let (lines, info) = read_lines(text);
    for n in open_before(&info, problem_line) {
        let l = lines[n];
        // Open at its end with no bracket open: a quote is.
        if info[n].bracket.is_some() {
            continue;
        }
        let indent = crate::resume::indent(l);
        // A list item's first key (`- id: 'b1`) sits past its `- `: its
        // sibling keys are indented to it.
        let key_at = crate::resume::key_column(l);
        let (m, next) = lines.iter().enumerate().skip(n + 1).find(|(_, x)| {
            let t = x.trim();
            !t.is_empty() && !t.starts_with('#')
        })?;
        let next_indent = crate::resume::indent(next);
        let key = reads_as_key(next[next_indent..].trim_start_matches("- "));
        // The parser stopped past the key's line: it read the key into
        // the quoted value. A key further in may be text of a value that
        // really goes on over lines.
        if !key || next_indent > key_at || problem_line < m as u64 + 1 {
            continue;
        }
        // The quote that opened: the first at a value's start, after the
        // key's `: ` or a list's `- `.
        let start = l
            .find(": ")
            .map(|c| c + 2)
            .or_else(|| l.trim_start().starts_with("- ").then_some(indent + 2))
            .unwrap_or(indent);
        let rest = &l[start..];
        let at = start + rest.find(['\'', '"'])?;
        let quote = &l[at..=at];
        let column = l[..at].chars().count() as u64 + 1;
        return Some((
            n as u64 + 1,
            column,
            format!(
                "this quoted value is not closed on its line, and the next line is a key: end \
                 it with {quote}"
            ),
        ));
    }
    None
}

/// A space other than the plain one in a line's indentation, where a paste
/// from a word processor or a wiki puts a no-break space (U+00A0): the
/// parser reads it as text, and its error is about a key missing lines
/// further on, not about the character. Said where it is instead.
fn odd_indentation(text: &str) -> Option<(u64, u64, String)> {
    for (n, line) in text.lines().enumerate() {
        for (col, c) in line.chars().enumerate() {
            if c == ' ' || c == '\t' {
                continue;
            }
            if c.is_whitespace() {
                let name = match c {
                    '\u{a0}' => "a no-break space",
                    '\u{3000}' => "an ideographic space",
                    _ => "a space that is not a plain one",
                };
                return Some((
                    n as u64 + 1,
                    col as u64 + 1,
                    format!(
                        "{name} (U+{:04X}) in the indentation; YAML indents with plain spaces: \
                         retype it as one",
                        c as u32
                    ),
                ));
            }
            break;
        }
    }
    None
}

/// Rewords the parser's errors for account managers and leaves the position
/// out of the text, since every problem already starts with `file:line:col`.
struct Wording;

impl Localizer for Wording {
    fn attach_location<'a>(&self, base: Cow<'a, str>, _loc: Location) -> Cow<'a, str> {
        base
    }

    fn alias_used_at(&self, _used: Location) -> String {
        String::new()
    }
}

impl MessageFormatter for Wording {
    fn localizer(&self) -> &dyn Localizer {
        self
    }

    fn format_message<'a>(&self, err: &'a Error) -> Cow<'a, str> {
        match err {
            Error::SerdeUnknownField {
                field, expected, ..
            } => {
                let place = raw::mapping_name(expected)
                    .map(|name| format!(" in {name}"))
                    .unwrap_or_default();
                Cow::Owned(format!(
                    "unknown key \"{field}\"{place}; expected one of: {}",
                    expected.join(", ")
                ))
            }
            Error::SerdeMissingField { field, .. } => {
                let owner = raw::required_key_owner(field).unwrap_or("mapping");
                Cow::Owned(format!("missing required key \"{field}\" in this {owner}"))
            }
            // Written twice, or (as often) a list item that lost its `- `
            // and so runs on in the item before it.
            Error::DuplicateMappingKey { key: Some(k), .. } => Cow::Owned(format!(
                "key \"{k}\" appears twice in the same mapping (written twice, or a list item \
                 lost its `- ` and runs on in the one before)"
            )),
            Error::DuplicateMappingKey { key: None, .. } => {
                Cow::Borrowed("the same key appears twice in one mapping")
            }
            Error::InvalidScalar { ty, .. } if ty.starts_with(['i', 'u']) => {
                Cow::Borrowed("expected a whole number here")
            }
            Error::InvalidScalar { ty: "boolean", .. } => {
                Cow::Borrowed("expected true or false here")
            }
            Error::Unexpected { expected, .. } => Cow::Borrowed(match *expected {
                "sequence start" => "expected a list here, like [a, b]",
                "mapping start" => "expected keys with values here, like `key: value`",
                "string scalar" | "scalar" => "expected a single value here, not a list or mapping",
                other => return Cow::Owned(format!("expected {other} here")),
            }),
            // The YAML scanner's own words, for the slips account managers
            // make most: a key without its colon, a line indented off.
            Error::ExternalMessage { msg, .. } => match msg.as_str() {
                "simple key expected ':'" => Cow::Borrowed(
                    "expected `key: value` here (a colon and a space after the key)",
                ),
                "mapping values are not allowed in this context" => Cow::Borrowed(
                    "a `key: value` cannot start here: is this line indented deeper than the \
                     keys around it, on the line of another value, or does a value hold `: ` \
                     and need quotes?",
                ),
                "recursion limit exceeded" => Cow::Borrowed(
                    "the YAML cannot be read as a config: it nests lists and mappings deeper \
                     than a config may",
                ),
                _ => serde_saphyr::UserMessageFormatter.format_message(err),
            },
            Error::NullIntoString { .. } => Cow::Borrowed("a value is missing here"),
            Error::MultipleDocuments { .. } => Cow::Borrowed(
                "a config file holds a single YAML document; remove the `---` line or split the file",
            ),
            Error::Eof { .. } => {
                Cow::Borrowed("the file ended unexpectedly (an empty file has no advertiser)")
            }
            // The parser's own words were its limit's Rust debug text
            // (`limits breached: ScalarBytes { total_scalar_bytes: … }`).
            Error::Budget { breach, .. } => {
                use serde_saphyr::budget::BudgetBreach as B;
                let what = match breach {
                    B::Aliases { .. } | B::AliasAnchorRatio { .. } | B::MergeKeys { .. } => {
                        "it repeats anchored parts (`*alias`, `<<`) more than a config may; \
                         write them out"
                    }
                    B::Depth { .. } => "it nests lists and mappings deeper than a config may",
                    B::ScalarBytes { .. } | B::Nodes { .. } | B::Events { .. } => {
                        "it holds more values than a config file may (aliases count each \
                         time they repeat what they name); split it into several files, or \
                         write the repeats out"
                    }
                    _ => "it is larger or more complex than a config may be",
                };
                Cow::Owned(format!("the YAML cannot be read as a config: {what}"))
            }
            _ => serde_saphyr::UserMessageFormatter.format_message(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (u64, u64, String) {
        match parse(text) {
            Ok(_) => panic!("expected a parse error for {text:?}"),
            Err(e) => e,
        }
    }

    const MINIMAL: &str = "advertiser:\n  id: a\n  name: A\n  domains: [a.example]\n";

    /// Every problem `parse_all` reads from `text`, as (line, column, the
    /// message's start).
    fn all(text: &str) -> Vec<(u64, u64, String)> {
        match parse_all(text) {
            Ok(_) => panic!("expected parse errors for {text:?}"),
            Err(found) => found
                .into_iter()
                .map(|(l, c, m)| (l, c, m.chars().take(24).collect()))
                .collect(),
        }
    }

    const VIDEO: &str = "creatives:
  - id: v
    format: video
    duration_s: 15
    media:
      - url: https://cdn.example/v.mp4
        mime: video/mp4
        width: wide          # a word for a number
        height: [1080]
        bitrate_kbps: 4500
        colour: blue
      - { url: https://cdn.example/w.mp4, mime: video/mp4, width: x, height: \"y\" }
    click_url: https://shop.example/
";

    /// An account manager sees every wrong value and unknown key of a file
    /// at once, each where it is, not one per try.
    #[test]
    fn wrong_values_and_unknown_keys_do_not_hide_the_ones_after_them() {
        let text = format!("{MINIMAL}{VIDEO}");
        let found = all(&text);
        let places: Vec<(u64, u64)> = found.iter().map(|&(l, c, _)| (l, c)).collect();
        assert_eq!(
            places,
            [(12, 16), (13, 17), (15, 9), (16, 67), (16, 78)],
            "{found:?}"
        );
        assert!(
            found[0].2.starts_with("expected a whole number"),
            "{found:?}"
        );
        assert!(
            found[2].2.starts_with("unknown key \"colour\""),
            "{found:?}"
        );
        // The first problem is the one `parse` gives.
        let Err(first) = parse(&text) else {
            panic!("a problem")
        };
        assert_eq!((first.0, first.1), (12, 16));
    }

    /// An unknown key's value indented under it goes with it: its own keys
    /// are not reported again as unknown, and the problems after it are.
    #[test]
    fn an_unknown_keys_block_is_passed_over_whole() {
        let text = "advertiser:\n  id: a\n  name: A\n  domainz:\n    - a.example\n\n    # all of them\n    - b.example\n  domains: [a.example]\n  produkts: x\n";
        let found = all(text);
        let places: Vec<(u64, u64)> = found.iter().map(|&(l, c, _)| (l, c)).collect();
        assert_eq!(places, [(4, 3), (10, 3)], "{found:?}");
    }

    /// A key one space short of its mapping's (between two levels) is said
    /// where it is: the parser took it as part of the value above and said
    /// a key was missing lines before. Valid files never have the shape.
    #[test]
    fn a_key_between_two_levels_is_said_where_it_is() {
        let item = "advertiser:\n  id: a\n  name: A\n  domains: [a.example]\ncreatives:\n  - id: c\n    format: display\n   size: 300x250\n    image_url: https://a.example/i.png\n    click_url: https://a.example/\n";
        let (line, column, message) = err(item);
        assert_eq!((line, column), (8, 4), "{message}");
        assert!(message.contains("(4 spaces)"), "{message}");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut seen = 0;
        for dir in ["examples/config", "testdata"] {
            let mut stack = vec![root.join(dir)];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
                        let text = std::fs::read_to_string(&p).unwrap_or_default();
                        assert_eq!(key_between_levels(&text), None, "{}", p.display());
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen >= 4, "{seen} files");
    }

    /// A key fallen back to its list item's `- ` is said where it is, not
    /// as a key missing from the item; a list written at its key's own
    /// column (`line_items:` over `- id:`) still reads, keys after it
    /// included.
    #[test]
    fn a_key_at_its_items_dash_is_said_where_it_is() {
        let shop = |line_item: &str| {
            format!(
                "advertiser:\n  id: a\n  name: A\n  domains: [a.example]\ncreatives:\n  - id: c\n    \
                 format: display\n    size: 300x250\n    image_url: https://a.example/i.png\n    \
                 click_url: https://a.example/\norders:\n  - id: o\n    service: self_service\n    \
                 budget: 100.00\n    flight: {{ start: 2026-01-01, end: 2030-01-01 }}\n    \
                 line_items:\n{line_item}"
            )
        };
        let fallen = shop(
            "      - id: li\n        media: display\n      cpm: 1.00\n        budget: { daily: 5.00 }\n        creatives: [c]\n",
        );
        let (line, column, message) = err(&fallen);
        assert_eq!((line, column), (19, 7), "{message}");
        assert!(
            message.contains("as the `- ` of the list item above")
                && message.contains("as the keys of that item (8 spaces)"),
            "{message}"
        );
        let compact = shop(
            "    - id: li\n      media: display\n      cpm: 1.00\n      budget: { daily: 5.00 }\n      creatives: [c]\n",
        );
        assert!(parse(&compact).is_ok(), "{:?}", parse(&compact).err());
        let compact_then_key = compact.replace(
            "    service: self_service\n    budget: 100.00\n    flight: { start: 2026-01-01, end: 2030-01-01 }\n    line_items:\n    - id: li\n      media: display\n      cpm: 1.00\n      budget: { daily: 5.00 }\n      creatives: [c]\n",
            "    line_items:\n    - id: li\n      media: display\n      cpm: 1.00\n      budget: { daily: 5.00 }\n      creatives: [c]\n    service: self_service\n    budget: 100.00\n    flight: { start: 2026-01-01, end: 2030-01-01 }\n",
        );
        assert_ne!(compact_then_key, compact);
        assert!(
            parse(&compact_then_key).is_ok(),
            "{:?}",
            parse(&compact_then_key).err()
        );
    }

    /// A flow list or mapping left open on its line, before a key, is said
    /// at its bracket (the parser stopped at the next line's `:`), naming
    /// the comment where a ` #` cut it; one written over several lines
    /// still reads.
    #[test]
    fn a_flow_collection_left_open_is_said_at_its_bracket() {
        let file = |domains: &str| {
            format!("advertiser:\n  id: a\n  name: A\n  domains: {domains}\n  products: [p1]\n")
        };
        let (line, column, message) = err(&file("[a.example, b.example"));
        assert_eq!((line, column), (4, 12), "{message}");
        assert!(
            message.contains("this list is not closed") && message.ends_with("end it with `]`"),
            "{message}"
        );
        let (line, column, message) = err(&file("[a.example, #b.example]"));
        assert_eq!((line, column), (4, 12), "{message}");
        assert!(message.contains("a ` #` starts a comment"), "{message}");
        let (_, _, message) = err(
            "advertiser:\n  id: a\n  name: A\n  domains: [a.example]\n  attribution: { click_days: 14\n  products: [p1]\n",
        );
        assert!(
            message.contains("this mapping is not closed") && message.ends_with("`}`"),
            "{message}"
        );
        let spread = file("[\n    a.example,\n    b.example\n  ]");
        assert!(parse(&spread).is_ok(), "{:?}", parse(&spread).err());
        // Its items go on over a line of their own, and the `]` is still
        // missing at the next key: said at the bracket too.
        let (line, column, message) = err(&file("[a.example,\n    b.example"));
        assert_eq!((line, column), (4, 12), "{message}");
        assert!(message.ends_with("end it with `]`"), "{message}");
    }

    /// Review findings: a flow collection written over several lines
    /// does not take the blame for a problem further down; a bracket in a
    /// quoted value or a comment is not the one left open; a line open
    /// only because of a quote gets the parser's words; a list item's
    /// keys under `- line_items:` are keys of the order.
    #[test]
    fn open_brackets_and_dashes_take_no_blame_for_other_problems() {
        let head = "advertiser:\n  id: a\n  name: A\n  domains: [a.example]\ncreatives:\n  - id: c\n    format: display\n    size: 300x250\n    image_url: https://a.example/i.png\n    click_url: https://a.example/\norders:\n";
        let spread = format!(
            "{head}  - id: o\n    service: self_service\n    budget: 100.00\n    flight: {{\n    start: 2026-01-01,\n    end: 2030-01-01\n    }}\n    line_items:\n      - id: li\n        media: display\n        cpmm: 1.00\n        budget: {{ daily: 5.00 }}\n        creatives: [c]\n"
        );
        let (line, _, message) = err(&spread);
        assert!(!message.contains("not closed"), "{line}: {message}");
        assert!(message.contains("cpmm"), "{line}: {message}");
        let dashed = format!(
            "{head}  - line_items:\n    - id: li\n      media: display\n      cpm: 1.00\n      budget: {{ daily: 5.00 }}\n      creatives: [c]\n    id: o\n    service: self_service\n    budget: 100.00\n    flight: {{ start: 2026-01-01, end: 2030-01-01 }}\n"
        );
        assert!(parse(&dashed).is_ok(), "{:?}", parse(&dashed).err());
        let no_click = dashed.replace("    click_url: https://a.example/\n", "");
        let (_, _, message) = err(&no_click);
        assert!(message.contains("click_url"), "{message}");

        let file = |name: &str, domains: &str| {
            format!(
                "advertiser:\n  id: a\n  name: {name}\n  domains: {domains}\n  products: [p1]\n"
            )
        };
        let (_, _, message) = err(&file("\"Summer [Sale] 2026", "[a.example]"));
        assert!(!message.contains("not closed on its line"), "{message}");
        let (line, column, message) = err(&file("A", "[a.example, # see [TICKET-1]"));
        assert_eq!((line, column), (4, 12), "{message}");
        assert!(message.contains("a ` #` starts a comment"), "{message}");
        let (line, column, message) = err(&file("A", "[\"c #sharp\", b.example"));
        assert_eq!((line, column), (4, 12), "{message}");
        assert!(
            message.ends_with("end it with `]`") && !message.contains("comment"),
            "{message}"
        );
    }

    /// What an edit leaves behind is never reported: a list at its
    /// unknown key's own indentation, the other keys of a mapping nulled
    /// on its `- ` line, text of a block scalar that looks mis-indented
    /// (review findings: each gave a false second problem, or hid the
    /// real one).
    #[test]
    fn what_an_edit_leaves_behind_is_not_reported() {
        let cases = [
            (
                "advertiser:\n  id: a\n  name: A\n  domainz:\n  - a.example\n  - b.example\n  domains: [a.example]\n",
                vec![(4, 3)],
            ),
            (
                "advertiser:\n  id: a\n  name: A\n  domains:\n    - a: 1\n      b: 2\n",
                vec![(5, 7)],
            ),
            (
                "advertiser:\n  id: a\n  name: |\n    first line: ok\n      indented: yes\n     between: x\n  domains: [a.example]\n  colour: red\n",
                vec![(8, 3)],
            ),
        ];
        for (text, want) in cases {
            let found = all(text);
            let places: Vec<(u64, u64)> = found.iter().map(|&(l, c, _)| (l, c)).collect();
            assert_eq!(places, want, "{text}: {found:?}");
        }
    }

    /// Values in brackets or quotes that go on over lines, and lists at an
    /// unknown key's own indentation when it is the first key, are never
    /// left half taken out; text that only looks mis-indented inside them
    /// is not a problem (config probe: each gave a false problem, or hid
    /// the real one).
    #[test]
    fn values_over_several_lines_give_no_false_problem() {
        let head = "advertiser:\n  id: a\n  name: A\n  domains: [a.example]\n";
        let item = "orders:\n  - id: o1\n    service: self_service\n    flight: { start: 2026-11-15, end: 2030-12-15 }\n    line_items:\n      - id: li1\n        media: display\n        cpm: 1.80\n        budget: { daily: 30.00 }\n";
        let cases: Vec<(String, Vec<(u64, u64)>)> = vec![
            // An unknown key starting a line inside a flow mapping.
            (
                format!("{head}{item}        frequency_cap: {{\n          impresions: 5, per_hours: 24 }}\n        colour: red\n"),
                vec![(15, 11)],
            ),
            // A valid flow mapping over lines: the missing budget is said.
            (
                format!("{head}{item}        frequency_cap: {{\n            impressions: 5,\n          per_hours: 24 }}\n"),
                vec![(6, 5)],
            ),
            // An unknown first key with its list at its own indentation.
            (
                "advertiser:\n  notes:\n  - red\n  id: a\n  name: A\n  domains: [a.example]\n".to_string(),
                vec![(2, 3)],
            ),
            // An unknown key whose flow value goes on at its indentation.
            (
                format!("{head}{item}        colour: {{\n        cpm: 9 }}\n"),
                vec![(14, 9)],
            ),
            // A quoted value over lines.
            (
                format!("{head}{item}        colour: \"long text\n        media: video\"\n"),
                vec![(14, 9)],
            ),
        ];
        for (text, want) in cases {
            let found = all(&text);
            let places: Vec<(u64, u64)> = found.iter().map(|&(l, c, _)| (l, c)).collect();
            assert_eq!(places, want, "{text}: {found:?}");
        }
    }

    /// Quotes inside plain scalars, anchors and tags before a value, `- |`
    /// text and blank lines after a block scalar read as YAML reads them
    /// (final review: each made the search stop early, hid the
    /// between-levels message, or gave a false one).
    #[test]
    fn plain_quotes_anchors_and_item_text_read_as_yaml_reads_them() {
        let head = "advertiser:\n  id: a\n  name: Sale - 'til Sunday, 'nuff said\n  domains: [a.example]\n";
        let item = "orders:\n  - id: o1\n    service: self_service\n    flight: { start: 2026-11-15, end: 2030-12-15 }\n    line_items:\n      - id: li1\n        media: display\n";
        let cases: Vec<(String, Vec<(u64, u64)>)> = vec![
            // A key one space short after a name with quotes in it.
            (
                format!("{head}{item}       cpm: 1.80\n        budget: {{ daily: 30.00 }}\n"),
                vec![(12, 8)],
            ),
            // Two unknown keys after it: both said.
            (
                format!("{head}colour: red\nshade: blue\n"),
                vec![(5, 1), (6, 1)],
            ),
            // An anchored flow mapping over lines: the missing budget.
            (
                format!("{head}{item}        cpm: 1.80\n        budget: {{ daily: 30.00 }}\n        frequency_cap: &cap {{\n            impressions: 5,\n          per_hours: 24 }}\n"),
                vec![(6, 5)],
            ),
            // A block scalar, a blank line, then another unknown key.
            (
                format!("{head}colour: |\n  red\n\nshade: blue\n"),
                vec![(5, 1), (8, 1)],
            ),
        ];
        for (text, want) in cases {
            let found = all(&text);
            let places: Vec<(u64, u64)> = found.iter().map(|&(l, c, _)| (l, c)).collect();
            assert_eq!(places, want, "{text}: {found:?}");
        }
        // `- |` text under its item is not read as keys.
        let text = "advertiser:\n  id: a\n  name: A\n  domains:\n    - |\n      x:\n          a: 1\n        b: 2\n";
        assert_eq!(key_between_levels(text), None);
    }

    /// A large file without aliases is read: 40,000 creatives (some 280,000
    /// values) were past the parser's default budget.
    #[test]
    fn a_large_file_without_aliases_is_read() {
        let mut text = MINIMAL.to_owned();
        text.push_str("creatives:\n");
        for i in 0..40_000 {
            text.push_str(&format!(
                "  - {{ id: c{i}, format: display, size: 300x250, image_url: https://a.example/i.png, click_url: https://a.example/ }}\n"
            ));
        }
        assert!(parse(&text).is_ok());
    }

    /// A key given twice is passed over like an unknown one; a required key
    /// left out is said (at its mapping's first line, before what was
    /// taken out) and ends the search.
    #[test]
    fn a_repeated_key_is_passed_over_and_a_missing_one_said_last() {
        let text = "advertiser:\n  id: a\n  name: A\n  name: B\n  domains: [a.example]\n  colour: red\ncreatives:\n  - id: v\n    format: video\n    duration_s: x\n    media: []\n";
        let found = all(text);
        let places: Vec<(u64, u64)> = found.iter().map(|&(l, c, _)| (l, c)).collect();
        assert_eq!(places, [(4, 3), (6, 3), (10, 17), (8, 5)], "{found:?}");
        assert!(found[3].2.starts_with("missing required key"), "{found:?}");
    }

    /// What cannot be taken out whole ends the search at the problem it
    /// is: a value going on over the next line, a block value, a key in
    /// braces, a null where a value is required (the same problem twice).
    #[test]
    fn what_cannot_be_passed_over_ends_the_search() {
        let after = "  bad: key\n";
        for text in [
            // A plain scalar over two lines.
            format!("{MINIMAL}creatives:\n  - id: v\n    format: video\n    duration_s: fif\n      teen\n{after}"),
            // A block list where one value goes.
            format!("{MINIMAL}creatives:\n  - id: v\n    format: video\n    duration_s:\n      - 15\n{after}"),
            // A key in braces.
            format!("advertiser: {{ id: a, nmae: A, domains: [a.example] }}\n{after}"),
            // A required value of the wrong type: null is refused there too.
            format!("advertiser:\n  id: [a]\n  name: A\n  domains: [a.example]\n{after}"),
        ] {
            let found = all(&text);
            assert_eq!(found.len(), 1, "{text}: {found:?}");
            assert_eq!(parse(&text).err().map(|(l, c, _)| (l, c)), Some((found[0].0, found[0].1)));
        }
    }

    /// Past the cap, the rest of the file waits for the next try: each
    /// problem costs a parse of the whole file.
    #[test]
    fn problems_of_one_file_are_capped() {
        let mut text = MINIMAL.to_owned();
        text.push_str("creatives:\n");
        for i in 0..40 {
            text.push_str(&format!(
                "  - id: c{i}\n    format: display\n    colour: blue\n    size: 1x1\n    image_url: https://x.example/i.png\n    click_url: https://x.example/\n"
            ));
        }
        assert_eq!(all(&text).len(), MAX_FILE_PROBLEMS, "{:?}", all(&text));
    }

    #[test]
    fn minimal_file_parses() {
        assert!(parse(MINIMAL).is_ok());
    }

    #[test]
    fn unknown_key_names_the_mapping_and_the_choices() {
        let text = "advertiser:\n  id: a\n  name: A\n  domain: [a.example]\n";
        assert_eq!(
            err(text),
            (
                4,
                3,
                "unknown key \"domain\" in advertiser; expected one of: id, name, domains, categories, products, attribution"
                    .to_owned()
            )
        );
    }

    /// Every mapping gets its own name; a struct whose keys changed without
    /// `raw::mapping_name` following would fail here.
    #[test]
    fn every_mapping_is_named_in_unknown_key_messages() {
        let head = "advertiser: {id: a, name: A, domains: [a.example]}\n";
        let creative = "creatives:\n  - {id: c, format: display, size: 1x1, image_url: http://x, click_url: http://x";
        let order = "orders:\n  - {id: o, service: managed, budget: 1, flight: {start: 2026-01-01, end: 2026-01-02}";
        let item =
            ", line_items: [{id: l, media: display, cpm: 1, budget: {daily: 1}, creatives: [c]";
        let cases: [(String, &str); 22] = [
            (
                "exchange: {id: x, name: X, typo: 1}\n".to_owned(),
                "exchange",
            ),
            (
                "exchange: {id: x, name: X, price_encryption: {scheme: google, key: k}}\n"
                    .to_owned(),
                "price_encryption",
            ),
            (
                "currency_rates: {base: USD, as_of: 2026-11-30, rates: {EUR: 0.95}, typo: 1}\n"
                    .to_owned(),
                "currency_rates",
            ),
            (
                format!("{head}creatives:\n  - {{id: n, format: native, click_url: http://x, image: {{url: http://x, w: 1, h: 1, size: 1}}}}\n"),
                "image or icon",
            ),
            (format!("{head}typo: 1\n"), "the top level of the file"),
            (
                "advertiser: {id: a, name: A, typo: 1}\n".to_owned(),
                "advertiser",
            ),
            (
                format!("{head}audiences:\n  - {{id: x, kind: views, typo: 1}}\n"),
                "audience",
            ),
            (format!("{head}{creative}, typo: 1}}\n"), "creative"),
            (
                format!("{head}{creative}, media: [{{url: http://x, mime: a/b, typo: 1}}]}}\n"),
                "media file",
            ),
            (format!("{head}{order}, typo: 1}}\n"), "order"),
            (
                format!("{head}orders:\n  - {{id: o, flight: {{start: 2026-01-01, typo: 1}}}}\n"),
                "flight",
            ),
            (format!("{head}{order}{item}, typo: 1}}]}}\n"), "line item"),
            (
                format!("{head}{order}, line_items: [{{budget: {{weekly: 1}}}}]}}\n"),
                "line item budget",
            ),
            (
                format!("{head}{order}, line_items: [{{frequency_cap: {{per_day: 1}}}}]}}\n"),
                "frequency_cap",
            ),
            (
                format!("{head}{order}, line_items: [{{audiences: {{all_of: [x]}}}}]}}\n"),
                "line item audiences",
            ),
            (
                format!("{head}{order}, line_items: [{{targeting: {{countrys: [USA]}}}}]}}\n"),
                "targeting",
            ),
            (
                format!(
                    "{head}{order}, line_items: [{{targeting: {{keywords: {{fuzzy: [x]}}}}}}]}}\n"
                ),
                "keywords",
            ),
            (
                format!("{head}{order}, line_items: [{{targeting: {{sites: {{deny: [x]}}}}}}]}}\n"),
                "sites, apps or publishers",
            ),
            (
                format!("{head}{order}, line_items: [{{targeting: {{apps: {{alow: [x]}}}}}}]}}\n"),
                "sites, apps or publishers",
            ),
            (
                format!(
                    "{head}{order}, line_items: [{{targeting: {{publishers: {{allowed: [x]}}}}}}]}}\n"
                ),
                "sites, apps or publishers",
            ),
            (
                format!(
                    "{head}{order}, line_items: [{{targeting: {{dayparts: {{zone: utc}}}}}}]}}\n"
                ),
                "dayparts",
            ),
            (
                format!(
                    "{head}{order}, line_items: [{{targeting: {{dayparts: {{slots: [{{day: [mon]}}]}}}}}}]}}\n"
                ),
                "daypart slot",
            ),
        ];
        for (text, name) in cases {
            let (_, _, message) = err(&text);
            assert!(
                message.starts_with("unknown key") && message.contains(&format!(" in {name};")),
                "{name}: {message}\n{text}"
            );
        }
    }

    #[test]
    fn messages_carry_no_position_of_their_own() {
        for text in [
            "advertiser: [\n",
            "advertiser:\n  id: a\n  id: b\n",
            "advertiser:\n  name: A\n",
            "advertiser:\n  id: a\n  name: A\n---\nadvertiser: {}\n",
        ] {
            let (line, column, message) = err(text);
            assert!(line >= 1 && column >= 1);
            assert!(!message.contains("at line"), "{message}");
            assert!(!message.contains("column"), "{message}");
        }
    }

    #[test]
    fn parser_messages_are_reworded() {
        assert_eq!(
            err("advertiser:\n  id: a\n  id: b\n  name: A\n").2,
            "key \"id\" appears twice in the same mapping (written twice, or a list item lost \
             its `- ` and runs on in the one before)"
        );
        assert_eq!(
            err("advertiser:\n  id: a\n  cpm 3.50\n  name: A\n"),
            (
                3,
                3,
                "expected `key: value` here (a colon and a space after the key)".into()
            )
        );
        let (line, column, message) = err("advertiser:\n  id: a\n  name: A\n    cpm: 3.50\n");
        assert_eq!((line, column), (4, 8));
        assert!(
            message.starts_with("a `key: value` cannot start here"),
            "{message}"
        );
        let deep = format!(
            "advertiser:\n  id: a\n  name: A\n  domains: {}\n",
            "[".repeat(100_000)
        );
        assert_eq!(
            err(&deep).2,
            "the YAML cannot be read as a config: it nests lists and mappings deeper than a \
             config may"
        );
        assert_eq!(
            err("advertiser:\n  name: A\n").2,
            "missing required key \"id\" in this mapping"
        );
        assert_eq!(
            err("advertiser: {id: a, name: A, domains: [a.example]}\ncreatives:\n  - {id: c, format: display}\n").2,
            "missing required key \"click_url\" in this creative"
        );
        let (line, column, message) = err(&format!(
            "{MINIMAL}audiences:\n  - {{id: x, kind: views, lookback_days: 3.5}}\n"
        ));
        assert_eq!((line, column), (6, 41));
        assert_eq!(message, "expected a whole number here");
        assert_eq!(
            err("advertiser:\n  id: [a]\n  name: A\n").2,
            "expected a single value here, not a list or mapping"
        );
        let slot = "advertiser: {id: a, name: A, domains: [a.example]}\norders:\n  - {id: o, line_items: [{targeting: {dayparts: {slots: [{days: [mon], from: \"07:00\"}]}}}]}\n";
        assert_eq!(
            err(slot).2,
            "missing required key \"to\" in this daypart slot"
        );
        assert_eq!(
            err("advertiser: acme\n").2,
            "expected keys with values here, like `key: value`"
        );
        // The scanner's words, said plainly; a tab where it is (the
        // scanner names the line before it).
        let tab = "advertiser:\n  id: a\n  name: A\n\tdomains: [a.example]\n";
        assert_eq!(
            err(tab),
            (
                4,
                1,
                "a tab in the indentation; YAML indents with spaces only: replace it with spaces"
                    .to_string()
            )
        );
        let stray = format!(
            "{MINIMAL}audiences:\n  - id: x\n    kind: products\n    products: [P]\n  bogus: 1\n"
        );
        let (line, column, said) = err(&stray);
        assert_eq!((line, column), (9, 3));
        assert!(said.starts_with("this line is not a list item"), "{said}");
        // An empty file parses; the validator says what it lacks.
        for empty in ["", "# only a comment\n"] {
            let problems = load_files(&[(PathBuf::from("a.yaml"), empty.to_owned())]).unwrap_err();
            assert_eq!(problems.0.len(), 1);
            assert_eq!((problems.0[0].line, problems.0[0].column), (1, 1));
            assert!(
                problems.0[0].message.contains("empty")
                    && problems.0[0]
                        .message
                        .contains("advertiser, exchange or currency_rates"),
                "{}",
                problems.0[0].message
            );
        }
    }

    #[test]
    fn syntax_error_has_a_position() {
        assert_eq!(
            err("advertiser:\n  id: a\n  name: \"A\n"),
            (3, 9, "unclosed quote".to_owned())
        );
        let (line, column, message) = err("advertiser:\n\tid: a\n");
        assert_eq!((line, column), (2, 2));
        assert!(message.contains("tabs"), "{message}");
        assert_eq!(
            err("advertiser:\n  id: a\n  name: A\n  domains: [a.example]\ncreatives:\n  - {id: c, companion_required: maybe}\n"),
            (6, 33, "expected true or false here".to_owned())
        );
    }

    /// A quote forgotten at a line's end is said at the quote, not where the
    /// parser met the next quote (an apostrophe in a comment far below).
    #[test]
    fn a_quote_left_open_is_said_where_it_opens() {
        let text = "advertiser:\n  id: a\n  name: 'ACME Outdoor Gear\n  domains: [a.example]\n  categories: [IAB1]\n# the shop's own\n";
        assert_eq!(
            err(text),
            (
                3,
                9,
                "this quoted value is not closed on its line, and the next line is a key: end it \
                 with '"
                    .to_owned()
            )
        );
        // Over lines on purpose, it is a value, not a problem; nor does
        // it take the blame for one further down, even where its next line
        // reads like a key (review).
        let text = "advertiser:\n  id: a\n  name: 'ACME\n    Outdoor Gear'\n  domains: [a.example]\n  categories: [IAB1]\n";
        assert!(parse(text).is_ok());
        let text = "advertiser:\n  id: a\n  name: 'ACME\n  Note: x'\n  domains: [a.example]\n  categories: [IAB1]\n  bogus: 1\n";
        let (line, _, message) = err(text);
        assert_eq!(line, 7, "{message}");
        assert!(message.contains("bogus"), "{message}");
        // A list item's first key, its siblings indented past its `- `.
        let text = "advertiser:\n  id: a\n  name: A\n  domains: [a.example]\ncreatives:\n  - id: 'b1\n    format: display\n# the shop's own\n";
        let (line, column, message) = err(text);
        assert_eq!((line, column), (6, 9), "{message}");
        assert!(
            message.starts_with("this quoted value is not closed"),
            "{message}"
        );
    }

    /// A value that YAML reads as an alias, a reserved character or a tag
    /// says to quote it (or drop the tag), where it is.
    #[test]
    fn values_yaml_does_not_read_as_text_say_to_quote_them() {
        for (value, says) in [
            ("*NEW* ACME", "put it in quotes, like \"*NEW* tents\""),
            ("@acme", "put the value in quotes"),
            ("`acme`", "put the value in quotes"),
            ("%acme", "put the value in quotes"),
            ("!!float 6.00", "write the value alone"),
        ] {
            let text = format!("advertiser:\n  id: a\n  name: {value}\n");
            let (line, column, message) = err(&text);
            assert_eq!(line, 3, "{value}: {message}");
            assert!(column >= 9, "{value}: {column}");
            assert!(message.ends_with(says), "{value}: {message}");
        }
    }

    #[test]
    fn a_no_break_space_in_the_indentation_is_named_where_it_is() {
        let text = "advertiser:\n  id: a\n\u{a0} name: A\n";
        let (line, column, message) = odd_indentation(text).expect("found");
        assert_eq!((line, column), (3, 1));
        assert!(
            message.starts_with("a no-break space (U+00A0) in the indentation"),
            "{message}"
        );
        // Elsewhere than the indentation it is text, the parser's business.
        assert!(odd_indentation("advertiser:\n  name: A\u{a0}B\n").is_none());
        assert!(
            odd_indentation("a:\n\t b: 1\n").is_none(),
            "tabs are the parser's"
        );
    }

    #[test]
    fn is_yaml_by_extension() {
        assert!(is_yaml(Path::new("a/b.yaml")));
        assert!(is_yaml(Path::new("b.yml")));
        assert!(is_yaml(Path::new("b.YAML")));
        assert!(is_yaml(Path::new("b.Yml")));
        assert!(!is_yaml(Path::new("b.yaml.bak")));
        assert!(!is_yaml(Path::new("b.json")));
        assert!(!is_yaml(Path::new("yaml")));
    }
}
