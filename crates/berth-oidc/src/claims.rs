//! Claims by path: `groups`, `realm_access.roles` (Keycloak),
//! `https://example.com/groups` (a claim whose name holds dots).

use serde_json::{Map, Value};

/// The strings a claim path leads to: a string claim gives itself, an
/// array its string (and number) members, a number or boolean its text;
/// nothing when the path leads nowhere. At each step a key equal to the
/// whole rest of the path wins over splitting at the next dot.
pub fn claim_strings(claims: &Map<String, Value>, path: &str) -> Vec<String> {
    match lookup(claims, path) {
        Some(Value::Array(items)) => items.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A single-valued claim as text (`sub`, `preferred_username`): `None`
/// when missing, empty, or an array/object.
pub fn claim_text(claims: &Map<String, Value>, path: &str) -> Option<String> {
    lookup(claims, path)
        .and_then(scalar)
        .filter(|s| !s.is_empty())
}

fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut at = 0;
    while let Some(i) = path[at..].find('.') {
        let (head, rest) = (&path[..at + i], &path[at + i + 1..]);
        if let Some(Value::Object(inner)) = claims.get(head) {
            if let Some(v) = lookup(inner, rest) {
                return Some(v);
            }
        }
        at += i + 1;
    }
    None
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn paths_of_the_common_providers() {
        let c = claims(json!({
            "sub": "abc",
            "groups": ["devs", "ops"],
            "realm_access": {"roles": ["berth-admin", "offline_access"]},
            "https://example.com/groups": ["x"],
            "project_path": "team/app",
            "wid": 7,
            "obj": {"a": {"b": "deep"}},
        }));
        assert_eq!(claim_strings(&c, "groups"), ["devs", "ops"]);
        assert_eq!(
            claim_strings(&c, "realm_access.roles"),
            ["berth-admin", "offline_access"]
        );
        assert_eq!(claim_strings(&c, "https://example.com/groups"), ["x"]);
        assert_eq!(claim_strings(&c, "project_path"), ["team/app"]);
        assert_eq!(claim_strings(&c, "wid"), ["7"]);
        assert_eq!(claim_strings(&c, "obj.a.b"), ["deep"]);
        assert!(claim_strings(&c, "missing").is_empty());
        assert!(claim_strings(&c, "realm_access.missing").is_empty());
        assert_eq!(claim_text(&c, "sub").as_deref(), Some("abc"));
        assert_eq!(claim_text(&c, "groups"), None);
    }
}
