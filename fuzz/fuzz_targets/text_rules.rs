//! Text rules and the messages they judge: a rule file (the bytes before the first NUL)
//! parses or is refused, and judging any text (the bytes after) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (rules, text) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let (Ok(rules), Ok(text)) = (std::str::from_utf8(rules), std::str::from_utf8(text)) else {
        return;
    };
    if let Ok(rules) = custodia_service::TextRules::parse(rules) {
        let _ = rules.evaluate(text);
    }
});
