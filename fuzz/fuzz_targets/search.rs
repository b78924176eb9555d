//! The tree search answers what the regex engine answers: for a pattern the engine compiles and
//! a text made of the characters that matter to it (literals, `.`, escapes, anchors, newlines,
//! a non-ASCII letter), `edit::search::find_all` over the text as one path gives the engine's
//! leftmost match — through the fixed-form byte comparison when the pattern has that form,
//! through the engine otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weightscope::edit::ops::parse_regex;
use weightscope::edit::search::find_all;

/// Pattern pieces: the fixed form's (literals, `.`, escaped punctuation, anchors) and a few that
/// send a pattern to the engine.
const ATOMS: [&str; 16] = [
    "a", "b", ".", r"\.", r"\$", r"\^", "^", "$", "\n", "é", r"\\", "[ab]", "+", "*", "?", r"\<",
];
/// Text characters.
const CHARS: [&str; 9] = ["a", "b", ".", "$", "^", "\n", "\\", "é", "x"];

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (p, t) = rest.split_at((n as usize % 24).min(rest.len()));
    let pattern: String = p.iter().map(|&b| ATOMS[b as usize % ATOMS.len()]).collect();
    let text: String = t.iter().map(|&b| CHARS[b as usize % CHARS.len()]).collect();
    let Ok(re) = parse_regex(&pattern) else {
        assert!(find_all(&pattern, &text, &[]).is_err(), "{pattern:?}");
        return;
    };
    let want = re
        .find(&text)
        .map(|m| (0u32, m.start() as u32, m.end() as u32));
    let got = find_all(&pattern, &text, &[(0, text.len() as u32)]).expect("compiles");
    assert_eq!(got.first().copied(), want, "pattern {pattern:?} on {text:?}");
});
