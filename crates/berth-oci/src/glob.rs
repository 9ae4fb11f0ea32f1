//! Name patterns of namespace policies: `*` matches any run of characters
//! (slashes included), `?` exactly one; everything else matches itself.
//! `v*` matches `v1` and `v1.2.3`; `release-?` matches `release-1`.

/// Longest pattern accepted.
pub const MAX_PATTERN_LEN: usize = 128;

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty or too long.
    #[error("pattern {0:?} must be 1 to 128 characters")]
    Length(String),
    /// A character no tag or repository name can contain.
    #[error("pattern {0:?} may only contain letters, digits, '.', '_', '-', '/', '*' and '?'")]
    Character(String),
}

/// Check a pattern's length and alphabet.
pub fn validate_pattern(pattern: &str) -> Result<(), PatternError> {
    if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
        return Err(PatternError::Length(pattern.to_owned()));
    }
    let ok = pattern
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'*' | b'?'));
    if ok {
        Ok(())
    } else {
        Err(PatternError::Character(pattern.to_owned()))
    }
}

/// Whether `text` matches `pattern` (linear time: the classic two-pointer
/// algorithm that backtracks only to the last `*`).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// The first of `patterns` that `text` matches.
pub fn first_match<'a>(patterns: &'a [String], text: &str) -> Option<&'a str> {
    patterns
        .iter()
        .find(|p| glob_match(p, text))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_a_shell_glob() {
        let cases = [
            ("*", "", true),
            ("*", "anything/at/all", true),
            ("v*", "v1.2.3", true),
            ("v*", "latest", false),
            ("release-?", "release-1", true),
            ("release-?", "release-10", false),
            ("*-rc*", "1.0-rc2", true),
            ("*-rc*", "1.0", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("web/*", "web/frontend", true),
            ("web/*", "api/web", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("**", "x", true),
            ("?", "", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_match(pattern, text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn validates_patterns() {
        assert!(validate_pattern("v*").is_ok());
        assert!(validate_pattern("web/*-rc?").is_ok());
        assert!(validate_pattern("").is_err());
        assert!(validate_pattern(&"a".repeat(129)).is_err());
        assert!(validate_pattern("v[0-9]").is_err());
        assert!(validate_pattern("a b").is_err());
        let names = vec!["x".to_owned(), "v*".to_owned()];
        assert_eq!(first_match(&names, "v2"), Some("v*"));
        assert_eq!(first_match(&names, "y"), None);
    }
}
