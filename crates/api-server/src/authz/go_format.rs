//! Go's formatting of strings, string lists and error lists, as Kubernetes' authorization messages use
//! them (`%q` of a string and of a `[]string`, `utilerrors.NewAggregate(...).Error()`), so navarch's
//! messages are byte-for-byte Kubernetes' ones.

use std::fmt::Write;

/// Go's `strconv.Quote` (`%q`): double quotes, `\"` and `\\`, Go's short escapes for control
/// characters, `\xNN` for other ASCII controls, `\uNNNN` / `\UNNNNNNNN` for non-printable runes; printable
/// Unicode stays as is. Printability approximates Go's `unicode.IsPrint` (controls, non-ASCII spaces,
/// format characters, private use and non-characters are escaped).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

/// Appends `quote(s)` to `out`.
pub fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_printable(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// Go's `%q` of a `[]string`: `["a" "b"]`; `[]` when empty.
pub fn quote_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_quoted(&mut out, item.as_ref());
    }
    out.push(']');
    out
}

/// `utilerrors.NewAggregate(errs).Error()`: the message itself when there is one, otherwise the
/// distinct messages in order, comma-separated, in brackets; empty for none.
pub fn aggregate<S: AsRef<str>>(messages: &[S]) -> String {
    match messages {
        [] => String::new(),
        [only] => only.as_ref().to_string(),
        _ => {
            let mut seen: Vec<&str> = Vec::with_capacity(messages.len());
            for m in messages {
                if !seen.contains(&m.as_ref()) {
                    seen.push(m.as_ref());
                }
            }
            if let [only] = seen.as_slice() {
                return (*only).to_string();
            }
            format!("[{}]", seen.join(", "))
        }
    }
}

fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_or_private = matches!(u,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e
        | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff
        | 0xf0000..=0x10ffff | 0xe0001 | 0xe0020..=0xe007f);
    let non_character = (u & 0xfffe) == 0xfffe || (0xfdd0..=0xfdef).contains(&u);
    !format_or_private && !non_character
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("alice"), r#""alice""#);
        assert_eq!(quote(""), r#""""#);
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("tab\there\nnl"), r#""tab\there\nnl""#);
        assert_eq!(quote("\u{0}\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
        assert_eq!(quote("\u{7}\u{8}\u{b}\u{c}\r"), r#""\a\b\v\f\r""#);
        assert_eq!(quote("héllo 世界 🚀"), "\"héllo 世界 🚀\"");
        assert_eq!(quote("\u{200b}\u{a0}\u{feff}"), r#""\u200b\u00a0\ufeff""#);
        assert_eq!(quote("\u{f0000}"), r#""\U000f0000""#);
        assert_eq!(quote("<script>&"), r#""<script>&""#);
    }

    #[test]
    fn lists_like_go() {
        assert_eq!(quote_list::<&str>(&[]), "[]");
        assert_eq!(quote_list(&["g1", "system:authenticated"]), r#"["g1" "system:authenticated"]"#);
        assert_eq!(quote_list(&[String::from("a b")]), r#"["a b"]"#);
    }

    #[test]
    fn aggregates_like_go() {
        assert_eq!(aggregate::<&str>(&[]), "");
        assert_eq!(aggregate(&["one"]), "one");
        assert_eq!(aggregate(&["one", "two"]), "[one, two]");
        assert_eq!(aggregate(&["one", "one"]), "one", "duplicates collapse");
        assert_eq!(aggregate(&["a", "b", "a", "c"]), "[a, b, c]");
    }
}
