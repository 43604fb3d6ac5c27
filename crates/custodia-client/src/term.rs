//! Untrusted text on a terminal. Message bodies, usernames, group titles, reporters' texts
//! and comments, justifications and server messages are written by other people: printed
//! raw, an escape sequence could recolour, move the cursor or retitle the terminal, a
//! newline could forge a line (a fake "[verified …]" under a real one), and a bidi
//! override could reorder what is shown. Every command prints such text only through
//! [`clean`] or [`quoted`], one record per line, so the line structure and every mark the
//! program prints are the program's own.

use std::fmt::Write;

/// `s` with every character that could affect the terminal or the line structure shown
/// visibly: `\n`, `\r`, `\t`, `\\`, and `\u{…}` for the other control characters (C0,
/// DEL, C1), bidi controls and invisible format characters.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_escaped(&mut out, c, false);
    }
    out
}

/// `s` in double quotes, escaped as by [`clean`] and with `"` as `\"`, so where the text
/// ends is unambiguous whatever it contains.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, true);
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char, in_quotes: bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\\' => out.push_str("\\\\"),
        '"' if in_quotes => out.push_str("\\\""),
        c if hidden(c) => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// Control characters, bidi controls, and characters that render as nothing (zero-width
/// joiners and spaces, the byte-order mark, line and paragraph separators).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether `line` could change the terminal or the line structure.
    pub(crate) fn unsafe_on_a_terminal(line: &str) -> bool {
        line.chars().any(hidden)
    }

    /// Whether `out` is exactly one line with nothing a terminal would act on.
    pub(crate) fn one_safe_line(out: &str) -> bool {
        !out.contains('\n')
            && !out.contains('\r')
            && !out.contains('\x1b')
            && !unsafe_on_a_terminal(out)
    }

    #[test]
    fn escapes_are_visible_and_quotes_cannot_be_closed_early() {
        assert_eq!(
            clean("a\nb\x1b[31mc\u{202e}d\\"),
            "a\\nb\\u{1b}[31mc\\u{202e}d\\\\"
        );
        assert_eq!(quoted("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(clean("plain ünïcödé 😀"), "plain ünïcödé 😀");
    }

    /// Text with every kind of character a hostile sender would use.
    pub(crate) fn nasty() -> impl Strategy<Value = String> {
        let pieces = prop::collection::vec(
            prop_oneof![
                any::<char>().prop_map(String::from),
                (0u8..0x20).prop_map(|b| char::from(b).to_string()),
                Just("\u{7f}".to_owned()),
                Just("\u{9b}".to_owned()),
                Just("\x1b[2J\x1b]0;owned\x07".to_owned()),
                Just("\u{202e}\u{2066}\u{200f}".to_owned()),
                Just("\r\n  #2 [verified: sent by alice]".to_owned()),
                Just("\"\\".to_owned()),
            ],
            0..40,
        );
        pieces.prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn any_text_stays_on_one_line_with_no_escape_byte(s in nasty()) {
            for out in [clean(&s), quoted(&s)] {
                prop_assert!(!out.contains('\n') && !out.contains('\r'));
                prop_assert!(!out.contains('\x1b'));
                prop_assert!(!unsafe_on_a_terminal(&out), "{out:?}");
            }
            let q = quoted(&s);
            // The only unescaped quotes are the two around the text.
            let inner = &q[1..q.len() - 1];
            let mut escaped = false;
            for c in inner.chars() {
                prop_assert!(escaped || c != '"', "{q:?}");
                escaped = !escaped && c == '\\';
            }
        }
    }
}
