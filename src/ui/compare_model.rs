//! Pure helpers of the Compare panel (tested natively): prefix maps typed by the user, and the
//! transplant operations that copy selected B keys into A under A's names.
//!
//! Contract: maps are `A_PREFIX=B_PREFIX` pairs separated by commas or new lines. A B key is
//! mapped back through the first rule whose (non-empty) B prefix it starts with, else the first
//! rule with an empty B prefix, else kept as is; one `transplant` operation is made per rule,
//! its pattern anchored and escaped so it selects exactly the chosen keys.

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

fn rule_of(k: &str, maps: &[(String, String)]) -> Option<usize> {
    maps.iter()
        .position(|(_, b)| !b.is_empty() && k.starts_with(b.as_str()))
        .or_else(|| maps.iter().position(|(_, b)| b.is_empty()))
}

/// The transplant operations that copy B keys `keys` into A under A's names (one per rule).
pub fn transplant_ops(keys: &[String], maps: &[(String, String)]) -> Vec<OpSpec> {
    let mut groups: Vec<(Option<usize>, Vec<String>)> = vec![];
    for k in keys {
        let rule = rule_of(k, maps);
        let rest = match rule {
            Some(i) => k[maps[i].1.len()..].to_string(),
            None => k.clone(),
        };
        match groups.iter_mut().find(|(r, _)| *r == rule) {
            Some((_, v)) => v.push(rest),
            None => groups.push((rule, vec![rest])),
        }
    }
    groups
        .into_iter()
        .map(|(rule, rests)| {
            let (a, b) = rule.map(|i| maps[i].clone()).unwrap_or_default();
            let alts: Vec<String> = rests.iter().map(|r| regex_lite::escape(r)).collect();
            OpSpec::Transplant {
                pattern: format!("^{}({})$", regex_lite::escape(&b), alts.join("|")),
                replacement: Some(format!("{}${{1}}", a.replace('$', "$$"))),
            }
        })
        .collect()
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
        let maps = parse_maps("module.=, backbone.=encoder.").unwrap();
        let keys = vec![
            "encoder.0.weight".to_string(),
            "fc.weight".to_string(),
            "fc.bias".to_string(),
        ];
        let ops = transplant_ops(&keys, &maps);
        assert_eq!(ops.len(), 2);
        let re = |op: &OpSpec| match op {
            OpSpec::Transplant {
                pattern,
                replacement,
            } => (
                regex_lite::Regex::new(pattern).unwrap(),
                replacement.clone().unwrap(),
            ),
            _ => panic!(),
        };
        let (r, rep) = re(&ops[0]);
        assert_eq!(
            r.replace("encoder.0.weight", rep.as_str()),
            "backbone.0.weight"
        );
        assert!(!r.is_match("encoder.0.weightx") && !r.is_match("xencoder.0.weight"));
        let (r, rep) = re(&ops[1]);
        assert_eq!(r.replace("fc.bias", rep.as_str()), "module.fc.bias");
        assert!(r.is_match("fc.weight") && !r.is_match("fc.running_mean"));
        // no maps: names kept
        let ops = transplant_ops(&["a.b".to_string()], &[]);
        let (r, rep) = re(&ops[0]);
        assert_eq!(r.replace("a.b", rep.as_str()), "a.b");
        assert!(!r.is_match("aXb"));
    }
}
