//! Key search by regular expression, for the page's tree: the page sends the text of its tree's
//! paths and the pattern; the worker answers where each path first matches. The pattern is
//! compiled by [`super::ops::parse_regex`], so a search selects exactly the keys a Delete / Keep
//! / Replace with the same pattern would (one engine, one syntax), and the page's wasm carries no
//! regex engine.
//!
//! Contract: `paths[i]` is a byte range of `text`; a range outside `text` or not on character
//! boundaries matches nothing. The answer lists `(i, start, end)` for every path that matches,
//! in order, with the byte range of its first (leftmost) match within the path. Work is linear
//! in `text.len() + paths.len()` times the pattern's size (the engine never backtracks).
//!
//! Most patterns typed into the tree are dotted names (`layers.4`, `^model.`): ASCII literals
//! and `.` wildcards, perhaps anchored. Every match of such a pattern has its length, so the
//! leftmost one is found by comparing bytes ([`Fixed`]), which gives the engine's answer
//! (tested against it on random patterns) at a fraction of its cost on ASCII paths.

use super::ops::parse_regex;

/// Where each path of `text` first matches `pattern`, or the pattern's error as one line.
pub fn find_all(
    pattern: &str,
    text: &str,
    paths: &[(u32, u32)],
) -> Result<Vec<(u32, u32, u32)>, String> {
    let re = parse_regex(pattern).map_err(|e| e.to_string())?;
    // the byte comparison needs ASCII paths: a `.` is then one byte
    let fixed = Fixed::parse(pattern).filter(|_| text.is_ascii());
    Ok(paths
        .iter()
        .enumerate()
        .filter_map(|(i, &(a, b))| {
            let path = text.get(a as usize..b as usize)?;
            let (start, end) = match &fixed {
                Some(f) => f.find(path)?,
                None => re.find(path).map(|m| (m.start(), m.end()))?,
            };
            Some((i as u32, start as u32, end as u32))
        })
        .collect())
}

/// A pattern of ASCII literal characters (escaped punctuation included) and `.` wildcards
/// (any byte but `\n`, as the engine's `.` is on ASCII text), with an optional leading `^` and
/// trailing `$`.
struct Fixed {
    /// One entry per matched byte: `Some(b)` a literal, `None` a wildcard.
    pat: Vec<Option<u8>>,
    start: bool,
    end: bool,
    /// The longest run of literals: its offset in `pat` and its bytes (a match's candidates are
    /// where it occurs).
    run: (usize, String),
}

impl Fixed {
    /// The fixed form of `pattern` (which the engine compiled), if it has one.
    fn parse(pattern: &str) -> Option<Fixed> {
        let mut b = pattern.as_bytes();
        if !pattern.is_ascii() {
            return None;
        }
        let start = b.first() == Some(&b'^');
        if start {
            b = &b[1..];
        }
        let (mut pat, mut end, mut i) = (Vec::with_capacity(b.len()), false, 0);
        while i < b.len() {
            match b[i] {
                // `\<` and `\>` are word boundaries; letters and digits start classes and escapes
                b'\\' => match b.get(i + 1) {
                    Some(&c) if c.is_ascii_punctuation() && c != b'<' && c != b'>' => {
                        pat.push(Some(c));
                        i += 2;
                    }
                    _ => return None,
                },
                b'.' => {
                    pat.push(None);
                    i += 1;
                }
                b'$' if i + 1 == b.len() => {
                    end = true;
                    i += 1;
                }
                b'+' | b'*' | b'?' | b'(' | b')' | b'|' | b'[' | b']' | b'{' | b'}' | b'^'
                | b'$' => return None,
                c => {
                    pat.push(Some(c));
                    i += 1;
                }
            }
        }
        let mut run = (0, String::new());
        let mut at = 0;
        while at < pat.len() {
            let lit: String = pat[at..].iter().map_while(|c| c.map(char::from)).collect();
            let next = at + lit.len().max(1);
            if lit.len() > run.1.len() {
                run = (at, lit);
            }
            at = next;
        }
        Some(Fixed {
            pat,
            start,
            end,
            run,
        })
    }

    /// Whether the pattern matches `h` at `p` (`p + pat.len() <= h.len()`).
    fn matches_at(&self, h: &[u8], p: usize) -> bool {
        let window = &h[p..p + self.pat.len()];
        self.pat.iter().zip(window).all(|(q, &c)| match q {
            Some(q) => *q == c,
            None => c != b'\n',
        })
    }

    /// The leftmost match in the ASCII text `text`.
    fn find(&self, text: &str) -> Option<(usize, usize)> {
        let h = text.as_bytes();
        let m = self.pat.len();
        let last = h.len().checked_sub(m)?;
        let p = match (self.start, self.end) {
            (true, true) => Some(0).filter(|_| last == 0),
            (true, false) => Some(0),
            (false, true) => Some(last),
            (false, false) if self.run.1.is_empty() => {
                return (0..=last)
                    .find(|&p| self.matches_at(h, p))
                    .map(|p| (p, p + m));
            }
            (false, false) => {
                // candidates where the longest literal run occurs, left to right
                let (off, lit) = (self.run.0, self.run.1.as_str());
                let mut from = off;
                loop {
                    // every index is a character boundary: the text is ASCII
                    let i = from + text.get(from..)?.find(lit)?;
                    let p = i - off;
                    if p > last {
                        return None;
                    }
                    if self.matches_at(h, p) {
                        return Some((p, p + m));
                    }
                    from = i + 1;
                }
            }
        }?;
        self.matches_at(h, p).then_some((p, p + m))
    }
}

#[cfg(test)]
mod tests {
    use super::{find_all, Fixed};
    use crate::edit::ops::parse_regex;

    #[test]
    fn each_path_answers_its_first_match_and_bad_ranges_match_nothing() {
        let text = "state_dict/layers.0.weightstate_dict/layers.10.biasé";
        let paths = [(0, 26), (26, 51), (0, 10), (51, 53), (52, 53), (40, 99)];
        assert_eq!(
            find_all(r"layers\.\d+\.", text, &paths).unwrap(),
            vec![(0, 11, 20), (1, 11, 21)]
        );
        assert_eq!(find_all("é$", text, &paths).unwrap(), vec![(3, 0, 2)]);
        assert_eq!(find_all("^state", text, &paths).unwrap().len(), 3);
        let e = find_all("(", text, &paths).unwrap_err();
        assert!(
            e.starts_with("bad pattern \"(\"") && !e.contains('\n'),
            "{e}"
        );
    }

    #[test]
    fn fixed_forms_are_found_and_the_rest_go_to_the_engine() {
        for p in [
            "layers.4", "^model.", "weight$", "^a.b$", r"a\.b\$", "", "^", "$", "..",
        ] {
            assert!(Fixed::parse(p).is_some(), "{p}");
        }
        for p in [
            r"a\d", "a+", "a|b", "(a)", "[ab]", "a{2}", r"\<a", "a^", "a$b", "é", r"\ ",
        ] {
            assert!(Fixed::parse(p).is_none(), "{p}");
        }
        // a non-ASCII path sends every path of the search to the engine (`.` is a character)
        let text = "aé.bxa.cb";
        let paths = [(0, 6), (6, 10)];
        assert_eq!(
            find_all("a..b", text, &paths).unwrap(),
            vec![(0, 0, 5), (1, 0, 4)]
        );
    }

    /// The fixed form answers what the engine answers, on random patterns and paths over an
    /// alphabet where literals, wildcards, escapes, anchors and newlines meet.
    #[test]
    fn fixed_form_agrees_with_the_engine() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let atoms = ["a", "b", ".", r"\.", r"\$", r"\^", "\n", "ab", "..", r"\\"];
        let bytes = ["a", "b", ".", "$", "^", "\n", "\\", "ab"];
        let mut fixed = 0;
        for _ in 0..20_000 {
            let mut p = String::new();
            if next(3) == 0 {
                p.push('^');
            }
            for _ in 0..next(5) {
                p.push_str(atoms[next(atoms.len())]);
            }
            if next(3) == 0 {
                p.push('$');
            }
            let h: String = (0..next(12)).map(|_| bytes[next(bytes.len())]).collect();
            let re = parse_regex(&p).unwrap();
            let want = re.find(&h).map(|m| (m.start(), m.end()));
            let f = Fixed::parse(&p).expect(&p);
            assert_eq!(f.find(&h), want, "pattern {p:?} on {h:?}");
            fixed += want.is_some() as usize;
        }
        assert!(fixed > 2_000, "too few matches to compare: {fixed}");
    }
}
