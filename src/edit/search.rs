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

use super::ops::parse_regex;

/// Where each path of `text` first matches `pattern`, or the pattern's error as one line.
pub fn find_all(
    pattern: &str,
    text: &str,
    paths: &[(u32, u32)],
) -> Result<Vec<(u32, u32, u32)>, String> {
    let re = parse_regex(pattern).map_err(|e| e.to_string())?;
    Ok(paths
        .iter()
        .enumerate()
        .filter_map(|(i, &(a, b))| {
            let m = re.find(text.get(a as usize..b as usize)?)?;
            Some((i as u32, m.start() as u32, m.end() as u32))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::find_all;

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
}
