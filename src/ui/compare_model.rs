//! Pure helpers of the Compare panel (tested natively): prefix maps typed by the user, the
//! transplant operation that copies selected B keys into A under A's names, which selected rows
//! a transplant would refuse (and why), and a map to suggest when nothing matched.
//!
//! Contract: maps are `A_PREFIX=B_PREFIX` pairs separated by commas or new lines. A B key is
//! mapped back by the worker ([`crate::edit::transplant::map_back`]): the first rule whose
//! (non-empty) B prefix it starts with, else the first rule with an empty B prefix, else kept as
//! is; one `transplant` operation selects exactly the chosen keys (anchored, escaped pattern).

use crate::worker::protocol::OpSpec;

/// Parse `a=b, c=` into prefix rules.
pub fn parse_maps(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|r| {
            r.split_once('=')
                .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
                .ok_or_else(|| format!("map {r:?}: use A_PREFIX=B_PREFIX"))
        })
        .collect()
}

/// The one transplant operation that copies B keys `keys` into A, each under its A name
/// (mapped back through `maps`, see [`crate::edit::transplant::map_back`]); the pattern is
/// anchored and escaped so it selects exactly the chosen keys. `None` for no keys.
pub fn transplant_op(keys: &[String], maps: &[(String, String)]) -> Option<OpSpec> {
    if keys.is_empty() {
        return None;
    }
    let alts: Vec<String> = keys.iter().map(|k| regex_lite::escape(k)).collect();
    Some(OpSpec::Transplant {
        pattern: format!("^({})$", alts.join("|")),
        replacement: None,
        maps: maps.to_vec(),
    })
}

/// Split selected B keys into those a transplant can take and those it would refuse, with the
/// reason: `mismatched` holds `(B key, A's dtype[shape], B's dtype[shape])` of the diff's rows
/// whose shape or dtype differ (a transplant never replaces a tensor by one of another shape).
pub fn split_selected(
    keys: &[String],
    mismatched: &[(String, String, String)],
) -> (Vec<String>, Vec<String>) {
    let mut ok = vec![];
    let mut refused = vec![];
    for k in keys {
        match mismatched.iter().find(|(b, _, _)| b == k) {
            Some((_, a, b)) => refused.push(format!("{k}: A is {a}, B is {b}")),
            None => ok.push(k.clone()),
        }
    }
    (ok, refused)
}

/// A prefix map that would align A's and B's names when a comparison matched nothing: the
/// most common prefix one side's keys have on top of the other's (`=module.` when B's keys are
/// A's with `module.` in front, `model.=` for the reverse), as text for the map field.
pub fn suggest_map(only_a: &[String], only_b: &[String]) -> Option<String> {
    use crate::format::fastmap::{KeyMap, KeySet};
    let a: KeySet<&str> = only_a.iter().map(|s| s.as_str()).collect();
    let b: KeySet<&str> = only_b.iter().map(|s| s.as_str()).collect();
    let mut votes: KeyMap<String, usize> = KeyMap::new();
    // a key's prefixes end at a '.': try each split point
    let mut vote = |long: &KeySet<&str>, short: &KeySet<&str>, b_side: bool| {
        for k in long {
            for (i, _) in k.match_indices('.') {
                let (pre, rest) = k.split_at(i + 1);
                if short.contains(rest) {
                    let m = if b_side {
                        format!("={pre}")
                    } else {
                        format!("{pre}=")
                    };
                    *votes.entry(m).or_default() += 1;
                }
            }
        }
    };
    vote(&b, &a, true);
    vote(&a, &b, false);
    votes
        .into_iter()
        .max_by(|x, y| x.1.cmp(&y.1).then_with(|| y.0.cmp(&x.0)))
        .map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_parse_and_refuse_garbage() {
        assert_eq!(
            parse_maps(" module.=, backbone.=encoder.\n").unwrap(),
            vec![
                ("module.".to_string(), String::new()),
                ("backbone.".to_string(), "encoder.".to_string())
            ]
        );
        assert!(parse_maps("").unwrap().is_empty());
        assert!(parse_maps("nonsense")
            .unwrap_err()
            .contains("A_PREFIX=B_PREFIX"));
    }

    #[test]
    fn selected_b_keys_map_back_to_a_names() {
        use crate::edit::transplant::map_back;
        let maps = parse_maps("module.=, backbone.=encoder.").unwrap();
        assert_eq!(map_back("encoder.0.weight", &maps), "backbone.0.weight");
        assert_eq!(map_back("fc.bias", &maps), "module.fc.bias");
        assert_eq!(map_back("fc.bias", &[]), "fc.bias");
        let keys = vec!["encoder.0.weight".to_string(), "fc.weight".to_string()];
        let Some(OpSpec::Transplant {
            pattern,
            replacement,
            maps: m,
        }) = transplant_op(&keys, &maps)
        else {
            panic!()
        };
        assert_eq!(replacement, None);
        assert_eq!(m, maps);
        let r = regex_lite::Regex::new(&pattern).unwrap();
        assert!(r.is_match("encoder.0.weight") && r.is_match("fc.weight"));
        assert!(!r.is_match("encoder.0.weightx") && !r.is_match("xfc.weight"));
        assert!(!r.is_match("fcXweight"));
        assert!(transplant_op(&[], &maps).is_none());
    }

    #[test]
    fn mismatched_rows_are_refused_with_the_reason() {
        let mm = vec![(
            "fc.weight".to_string(),
            "float32[10, 4]".to_string(),
            "float32[3, 4]".to_string(),
        )];
        let keys = vec!["fc.weight".to_string(), "fc.bias".to_string()];
        let (ok, refused) = split_selected(&keys, &mm);
        assert_eq!(ok, vec!["fc.bias".to_string()]);
        assert_eq!(
            refused,
            vec!["fc.weight: A is float32[10, 4], B is float32[3, 4]".to_string()]
        );
    }

    #[test]
    fn a_comparison_without_matches_suggests_a_map() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let a = s(&["fc.weight", "fc.bias", "conv.weight"]);
        let b = s(&["module.fc.weight", "module.fc.bias", "module.conv.weight"]);
        assert_eq!(suggest_map(&a, &b).as_deref(), Some("=module."));
        assert_eq!(suggest_map(&b, &a).as_deref(), Some("module.="));
        assert_eq!(suggest_map(&s(&["x"]), &s(&["y"])), None);
    }
}
