//! Reading `application/x-www-form-urlencoded` text: query strings of the
//! sync, pixel and report endpoints, and the `/ui` login form.

/// A value as form encoding writes it (`+` a space, `%XX` a byte);
/// `None` when the bytes are not UTF-8.
pub(crate) fn decode(v: &str) -> Option<String> {
    percent_encoding::percent_decode_str(&v.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The decoded value of the first `name=` pair of `text`.
pub(crate) fn field(text: &str, name: &str) -> Option<String> {
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| decode(v)).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_as_forms_write_them() {
        assert_eq!(decode("a%2Bb+c").as_deref(), Some("a+b c"));
        assert_eq!(decode("%FF"), None);
        assert_eq!(field("x=1&p=tent%201&p=2", "p").as_deref(), Some("tent 1"));
        assert_eq!(field("px=1", "p"), None);
    }
}
