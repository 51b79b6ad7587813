//! Stepping over one parse problem to find the next in the same file.
//!
//! The parser stops at the first value of the wrong type or unknown key,
//! and an account manager who fixed it would meet the next only on the next
//! try. So the file is parsed again with what was found taken out: a value
//! becomes `~` (null), an unknown key's line and what is indented under it
//! become blank, and the place of every other character stays as it was.
//! Only what is sure to be a single node on its own line(s) is taken out;
//! anything else (a block value under the line, a multi-line scalar, a
//! key inside `{ }`) ends the search, since the text around it would no
//! longer read as the account manager wrote it. A problem found again is
//! kept only if it lies after what was taken out: an earlier place means
//! the null itself was refused (a required value) or a mapping around it,
//! which is the same problem said again.

/// What can be taken out of the text to read past a problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Past {
    /// The value that starts at the problem's place.
    Value,
    /// The key that starts at the problem's place, with its value.
    Key,
    /// Nothing: the search ends at this problem.
    Nothing,
    /// A required key left out. No edit above makes one (a null is a value
    /// given, a key taken out was unknown), so it is said wherever the
    /// parser places it, even before what was taken out; and the search
    /// ends there, nothing after it being read.
    Missing,
}

/// Takes out what `past` names at 1-based `line`, `column` (in characters)
/// of `text`. Returns the last place taken out, as (line, column), or
/// `None` if nothing could be taken out safely.
pub(crate) fn step_over(
    text: &mut String,
    line: u64,
    column: u64,
    past: Past,
) -> Option<(u64, u64)> {
    let index = usize::try_from(line.checked_sub(1)?).ok()?;
    let col = usize::try_from(column.checked_sub(1)?).ok()?;
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |i: usize, text: &str| -> (usize, usize) {
        let start = starts[i];
        let end = text[start..].find('\n').map_or(text.len(), |e| start + e);
        (start, end)
    };
    if index >= starts.len() {
        return None;
    }
    // Only what starts a line of the block structure is taken out: a line
    // inside a flow collection or quoted scalar begun above (or the text of
    // a block scalar) reads otherwise once its neighbours change.
    let info = lines(text);
    if !info.get(index)?.plain {
        return None;
    }
    let (start, end) = line_of(index, text);
    let l = &text[start..end];
    let at = l.char_indices().nth(col).map(|(b, _)| b)?;
    match past {
        Past::Nothing | Past::Missing => None,
        Past::Value => {
            let prefix = &l[..at];
            // The value starts on the line of its key, item mark or flow
            // collection: one that starts on a line of its own is a block.
            if !prefix.trim_end().ends_with([':', '-', ',', '[', '{']) {
                return None;
            }
            let flow = unclosed(prefix)?;
            let stop = extent(l, at, flow)?;
            if !flow && info[index].open {
                return None;
            }
            if !flow {
                let rest = l[stop..].trim();
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return None;
                }
                // A plain or quoted scalar may go on over the lines indented
                // under its key: taking out its first line would leave the rest.
                if next_indent(text, &starts, index).is_some_and(|n| n > key_column(l)) {
                    return None;
                }
            }
            let chars = l[at..stop].chars().count();
            let blank = format!("~{}", " ".repeat(chars - 1));
            text.replace_range(start + at..start + stop, &blank);
            Some((line, column + chars as u64 - 1))
        }
        Past::Key => {
            // A value that goes on past its line in brackets or quotes would
            // leave its rest behind.
            if !l[..at].bytes().all(|b| b == b' ') || info[index].open {
                return None;
            }
            // A block value may be a list at the key's own indentation.
            let value = l[at..].split(" #").next().unwrap_or("").trim_end();
            let own_list = value.ends_with(':');
            // The key's line, and every line after it indented further
            // (its value), with blank and comment lines among them.
            let mut last = index;
            for i in index + 1..starts.len() {
                let (s, e) = line_of(i, text);
                let next = text[s..e].trim_end_matches('\r');
                let content = next.trim_start_matches(' ');
                if content.is_empty() || content.starts_with('#') {
                    continue;
                }
                let indent = next.len() - content.len();
                let item = indent == at && (content == "-" || content.starts_with("- "));
                if indent < at || (indent == at && !(own_list && item)) {
                    break;
                }
                last = i;
            }
            // What follows (past blank lines) must read as it did.
            let next = (last + 1..starts.len()).find(|&i| {
                let (s, e) = line_of(i, text);
                !text[s..e].trim().is_empty()
            });
            if info[last].open || next.is_some_and(|n| !info[n].plain) {
                return None;
            }
            for i in (index..=last).rev() {
                let (s, e) = line_of(i, text);
                let keep_cr = text[s..e].ends_with('\r');
                text.replace_range(s..e, if keep_cr { "\r" } else { "" });
            }
            Some((last as u64 + 1, u64::MAX))
        }
    }
}

/// Whether `prefix` of a line leaves a flow collection (`[`, `{`) open:
/// `Some(true)`; `None` where a quote is left open.
fn unclosed(prefix: &str) -> Option<bool> {
    let mut depth = 0i32;
    let mut chars = prefix.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            '"' => loop {
                match chars.next()? {
                    '\\' => {
                        chars.next()?;
                    }
                    '"' => break,
                    _ => {}
                }
            },
            '\'' => loop {
                if chars.next()? == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        break;
                    }
                }
            },
            '#' => return Some(depth > 0),
            _ => {}
        }
    }
    Some(depth > 0)
}

/// Where the node starting at byte `at` of line `l` ends (a byte index),
/// if it ends on this line and is one that can be replaced by `~`.
fn extent(l: &str, at: usize, flow: bool) -> Option<usize> {
    let rest = &l[at..];
    let mut chars = rest.char_indices().peekable();
    let (_, first) = *chars.peek()?;
    match first {
        '"' => {
            chars.next();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next()?;
                    }
                    '"' => return Some(at + i + 1),
                    _ => {}
                }
            }
            None
        }
        '\'' => {
            chars.next();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                        chars.next();
                    } else {
                        return Some(at + i + 1);
                    }
                }
            }
            None
        }
        '[' | '{' => {
            let mut depth = 0;
            let mut quote = None;
            while let Some((i, c)) = chars.next() {
                match (quote, c) {
                    (Some('"'), '\\') => {
                        chars.next()?;
                    }
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '"' | '\'') => quote = Some(c),
                    (None, '[' | '{') => depth += 1,
                    (None, ']' | '}') => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + i + 1);
                        }
                    }
                    (None, '#') if rest[..i].ends_with(' ') => return None,
                    _ => {}
                }
            }
            None
        }
        // Block scalars, anchors, aliases, tags and reserved indicators:
        // not a plain value on its own.
        '|' | '>' | '&' | '*' | '!' | '%' | '@' | '`' | '#' | ']' | '}' | ',' => None,
        _ => {
            let mut stop = rest.len();
            let mut prev = ' ';
            for (i, c) in rest.char_indices() {
                let ends = (c == '#' && prev == ' ') || (flow && matches!(c, ',' | ']' | '}'));
                if ends {
                    stop = i;
                    break;
                }
                prev = c;
            }
            let stop = at + rest[..stop].trim_end().len();
            (stop > at).then_some(stop)
        }
    }
}

/// The column (a byte index) where the key or item that owns line `l`'s
/// value starts: past its indentation and any `- ` item marks.
pub(crate) fn key_column(l: &str) -> usize {
    let mut rest = l.trim_start_matches(' ');
    while let Some(item) = rest.strip_prefix('-') {
        if !item.starts_with(' ') {
            break;
        }
        rest = item.trim_start_matches(' ');
    }
    l.len() - rest.len()
}

/// The indentation of the first line after line `index` that holds more
/// than white space or a comment.
fn next_indent(text: &str, starts: &[usize], index: usize) -> Option<usize> {
    starts[index + 1..].iter().find_map(|&s| {
        let l = text[s..].split('\n').next().unwrap_or("");
        let content = l.trim_start_matches(' ');
        let content_trimmed = content.trim_end();
        (!content_trimmed.is_empty() && !content_trimmed.starts_with('#'))
            .then(|| l.len() - content.len())
    })
}

/// How many spaces `l` starts with: its indentation, as YAML's block
/// structure counts it (tabs are not indentation).
pub(crate) fn indent(l: &str) -> usize {
    l.len() - l.trim_start_matches(' ').len()
}

/// What a line of a file is, read as YAML's block structure reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Line {
    /// It starts outside any flow collection (`[`, `{`), quoted scalar and
    /// block scalar's text: its indentation is the block structure's.
    pub(crate) plain: bool,
    /// A flow collection or quoted scalar is still open at its end: the
    /// next line goes on with it.
    pub(crate) open: bool,
    /// The byte index of the last `[` or `{` opened on this line and still
    /// open at its end, outside quotes and comments; `None` where none is,
    /// or where the line ends inside a quoted scalar.
    pub(crate) bracket: Option<usize>,
    /// A comment ends the line.
    pub(crate) comment: bool,
}

/// Each line of `text` (split on `\n`) as [`Line`] says. One pass: the
/// quotes, brackets and comments of every line, and the block scalars
/// (`|`, `>`, after a tag or anchor too) whose text is the lines indented
/// under their key.
pub(crate) fn lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let (mut depth, mut dq, mut sq) = (0usize, false, false);
    let mut block: Option<usize> = None;
    for l in text.split('\n') {
        let l = l.strip_suffix('\r').unwrap_or(l);
        let indent = indent(l);
        if let Some(owner) = block {
            if l.trim().is_empty() || indent > owner {
                out.push(Line::default());
                continue;
            }
            block = None;
        }
        let plain = depth == 0 && !dq && !sq;
        // Whether a value may start here (a quote or bracket opens only
        // there: `Sale - 'til Sunday` is one plain scalar): at a line's
        // start, after `- `, `? `, `: `, an anchor or tag, and in brackets
        // after `[`, `{` and `,`.
        let mut expect = true;
        // Inside an anchor's or tag's name, up to the next space.
        let mut property = false;
        let mut raw: Option<char> = None;
        // Where the brackets opened on this line are, innermost last.
        let mut opened: Vec<usize> = Vec::new();
        let mut comment = false;
        let mut chars = l.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let after_space = raw.is_none_or(|r| r == ' ' || r == '\t');
            raw = Some(c);
            if dq {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => dq = false,
                    _ => {}
                }
                continue;
            }
            if sq {
                if c == '\'' {
                    if chars.peek().is_some_and(|&(_, n)| n == '\'') {
                        chars.next();
                    } else {
                        sq = false;
                    }
                }
                continue;
            }
            let spaced =
                |next: Option<&(usize, char)>| next.is_none_or(|&(_, n)| n == ' ' || n == '\t');
            if c == ' ' || c == '\t' {
                property = false;
                continue;
            }
            if c == '#' && after_space {
                comment = true;
                break;
            }
            if property {
                continue;
            }
            if expect {
                match c {
                    '"' => dq = true,
                    '\'' => sq = true,
                    '[' | '{' => {
                        depth += 1;
                        opened.push(i);
                        continue;
                    }
                    '-' | '?' if spaced(chars.peek()) => continue,
                    '&' | '!' => {
                        property = true;
                        continue;
                    }
                    ']' | '}' if depth > 0 => {
                        depth -= 1;
                        opened.pop();
                    }
                    _ => {}
                }
                expect = false;
                continue;
            }
            match c {
                ':' if spaced(chars.peek())
                    || (depth > 0
                        && chars
                            .peek()
                            .is_some_and(|&(_, n)| matches!(n, ',' | ']' | '}'))) =>
                {
                    expect = true;
                }
                ',' | '[' | '{' if depth > 0 => {
                    if c != ',' {
                        depth += 1;
                        opened.push(i);
                    }
                    expect = true;
                }
                ']' | '}' if depth > 0 => {
                    depth -= 1;
                    opened.pop();
                }
                _ => {}
            }
        }
        let open = depth > 0 || dq || sq;
        if plain && !open && opens_block(l) {
            // `- |`: its text is indented under the item, past its mark.
            let item_text = l.trim_start().starts_with("- ") && !l.contains(": ");
            block = Some(if item_text { indent } else { key_column(l) });
        }
        out.push(Line {
            plain,
            open,
            bracket: opened.last().copied().filter(|_| !dq && !sq),
            comment,
        });
    }
    out
}

/// Whether a line's value is a block scalar's indicator (`|`, `>`, with
/// chomping and indentation signs, after a tag or anchor), its text on the
/// lines under it.
fn opens_block(l: &str) -> bool {
    let l = l.replace('\t', " ");
    let body = l.split(" #").next().unwrap_or("").trim_end();
    let value = match body.rsplit_once(": ") {
        Some((_, v)) => v,
        None => body
            .trim_start()
            .trim_start_matches("- ")
            .strip_suffix(':')
            .map_or(body.trim_start().trim_start_matches("- "), |_| ""),
    };
    let value = value
        .split(' ')
        .filter(|w| !w.is_empty() && !w.starts_with(['!', '&']))
        .collect::<Vec<_>>();
    matches!(value.as_slice(), [v] if v.starts_with(['|', '>'])
        && v[1..].chars().all(|c| c == '-' || c == '+' || c.is_ascii_digit()))
}
