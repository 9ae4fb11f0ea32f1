//! Docker registry token authentication: scopes, and the JSON Web Tokens
//! Berth issues and verifies (HS256 with a key generated on first start and
//! kept in the database, so every node of a cluster shares it).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::access::{Actions, Principal};

/// One resource of a scope: `repository:team/app:pull,push` or `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceScope {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Repository name, or `catalog`.
    pub name: String,
    /// Actions: `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

impl ResourceScope {
    /// Parse one scope item. The type may carry a class (`repository(plugin)`),
    /// which is dropped; names may contain ':' only before the last one.
    pub fn parse(s: &str) -> Option<ResourceScope> {
        let (kind, rest) = s.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        let kind = kind.split('(').next().unwrap_or(kind);
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        let actions: Vec<String> = actions
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        Some(ResourceScope {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }

    /// Parse any number of `scope` values, each possibly holding several
    /// space-separated items (the OAuth2 form). Malformed items are ignored:
    /// a token grants less, never an error.
    pub fn parse_all<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<ResourceScope> {
        let mut out: Vec<ResourceScope> = Vec::new();
        for item in values.into_iter().flat_map(str::split_whitespace) {
            if let Some(s) = ResourceScope::parse(item) {
                match out
                    .iter_mut()
                    .find(|o| o.kind == s.kind && o.name == s.name)
                {
                    Some(existing) => {
                        for a in s.actions {
                            if !existing.actions.contains(&a) {
                                existing.actions.push(a);
                            }
                        }
                    }
                    None => out.push(s),
                }
            }
        }
        out
    }

    /// Keep only the actions in `allowed`.
    pub fn intersect(&self, allowed: Actions) -> ResourceScope {
        let wants_all = self.actions.iter().any(|a| a == "*");
        let mut actions = Vec::new();
        for (name, ok) in [
            ("pull", allowed.pull),
            ("push", allowed.push),
            ("delete", allowed.delete),
        ] {
            if ok && (wants_all || self.actions.iter().any(|a| a == name)) {
                actions.push(name.to_owned());
            }
        }
        ResourceScope {
            kind: self.kind.clone(),
            name: self.name.clone(),
            actions,
        }
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// Who a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// No credentials.
    Anonymous,
    /// A console account.
    Account,
    /// A registry user.
    RegistryUser,
}

/// Access tokens carry what was granted; refresh tokens only who.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    /// Presented on /v2 requests.
    Access,
    /// Exchanged for access tokens (`grant_type=refresh_token`).
    Refresh,
}

/// The claims of a Berth token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user name (empty for anonymous).
    pub sub: String,
    /// Audience: the registry service name.
    pub aud: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Unique id.
    pub jti: String,
    /// Granted access (access tokens).
    #[serde(default)]
    pub access: Vec<ResourceScope>,
    /// What kind of subject.
    pub kind: SubjectKind,
    /// The subject's id (0 for anonymous).
    pub uid: i64,
    /// Whether the subject is a platform administrator.
    #[serde(default)]
    pub admin: bool,
    /// Access or refresh.
    #[serde(rename = "use")]
    pub token_use: TokenUse,
    /// Refresh tokens: the subject's token generation when issued; one
    /// that has moved on since (a password change, disabling, "sign out
    /// everywhere") refuses the token.
    #[serde(default, rename = "gen")]
    pub generation: i64,
}

impl Claims {
    /// The principal the token was issued to.
    pub fn principal(&self) -> Principal {
        match self.kind {
            SubjectKind::Anonymous => Principal::Anonymous,
            SubjectKind::Account => Principal::Account {
                id: self.uid,
                name: self.sub.clone(),
                is_admin: self.admin,
            },
            SubjectKind::RegistryUser => Principal::RegistryUser {
                id: self.uid,
                name: self.sub.clone(),
            },
        }
    }

    /// The actions granted on one repository.
    pub fn repository_actions(&self, repo: &str) -> Actions {
        let mut a = Actions::default();
        for s in self
            .access
            .iter()
            .filter(|s| s.kind == "repository" && s.name == repo)
        {
            for action in &s.actions {
                match action.as_str() {
                    "pull" => a.pull = true,
                    "push" => a.push = true,
                    "delete" => a.delete = true,
                    "*" => a = Actions::ALL,
                    _ => {}
                }
            }
        }
        a
    }

    /// Whether the catalog was granted.
    pub fn catalog(&self) -> bool {
        self.access
            .iter()
            .any(|s| s.kind == "registry" && s.name == "catalog" && !s.actions.is_empty())
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this registry issued, or tampered with.
    #[error("the token is malformed or its signature is invalid")]
    Invalid,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Issued for another service or use.
    #[error("the token is not valid here")]
    WrongAudience,
}

/// Issues and verifies tokens.
#[derive(Clone)]
pub struct TokenIssuer {
    key: Vec<u8>,
    issuer: String,
    service: String,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenIssuer({}, key redacted)", self.service)
    }
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

impl TokenIssuer {
    /// An issuer with a signing key of at least 32 bytes.
    pub fn new(key: Vec<u8>, issuer: impl Into<String>, service: impl Into<String>) -> Self {
        TokenIssuer {
            key,
            issuer: issuer.into(),
            service: service.into(),
        }
    }

    /// The service name (the token's audience).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// A fresh random signing key, base64-encoded for storage.
    pub fn generate_key() -> String {
        use argon2::password_hash::rand_core::{OsRng, RngCore};
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        URL_SAFE_NO_PAD.encode(key)
    }

    /// Decode a stored key.
    pub fn decode_key(stored: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD
            .decode(stored)
            .ok()
            .filter(|k| k.len() >= 32)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }

    /// Sign claims for `principal`, valid for `lifetime_secs` from `now_secs`.
    pub fn issue(
        &self,
        principal: &Principal,
        access: Vec<ResourceScope>,
        token_use: TokenUse,
        now_secs: i64,
        lifetime_secs: i64,
    ) -> String {
        self.issue_at_generation(principal, access, token_use, now_secs, lifetime_secs, 0)
    }

    /// [`TokenIssuer::issue`], recording the subject's token generation.
    pub fn issue_at_generation(
        &self,
        principal: &Principal,
        access: Vec<ResourceScope>,
        token_use: TokenUse,
        now_secs: i64,
        lifetime_secs: i64,
        generation: i64,
    ) -> String {
        let (kind, uid, admin) = match principal {
            Principal::Anonymous | Principal::System => (SubjectKind::Anonymous, 0, false),
            Principal::Account { id, is_admin, .. } => (SubjectKind::Account, *id, *is_admin),
            Principal::RegistryUser { id, .. } => (SubjectKind::RegistryUser, *id, false),
        };
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: match principal {
                Principal::Anonymous | Principal::System => String::new(),
                p => p.name().to_owned(),
            },
            aud: self.service.clone(),
            exp: now_secs + lifetime_secs,
            nbf: now_secs - 1,
            iat: now_secs,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            access,
            kind,
            uid,
            admin,
            token_use,
            generation,
        };
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(HEADER),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    /// Verify signature, audience, use and time; return the claims.
    pub fn verify(
        &self,
        token: &str,
        token_use: TokenUse,
        now_secs: i64,
    ) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(h.as_bytes());
        mac.update(b".");
        mac.update(p.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
        let header = URL_SAFE_NO_PAD.decode(h).map_err(|_| TokenError::Invalid)?;
        let header: serde_json::Value =
            serde_json::from_slice(&header).map_err(|_| TokenError::Invalid)?;
        if header["alg"] != "HS256" {
            return Err(TokenError::Invalid);
        }
        let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| TokenError::Invalid)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
        if claims.aud != self.service || claims.iss != self.issuer || claims.token_use != token_use
        {
            return Err(TokenError::WrongAudience);
        }
        if now_secs >= claims.exp || now_secs < claims.nbf {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Unix seconds of an RFC 3339 timestamp (`2026-11-22T11:48:03Z`, with
/// optional fraction and offset); `None` when it does not parse.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

/// RFC 3339 UTC time of Unix seconds (for `issued_at`).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new(vec![7u8; 32], "berth", "registry.test")
    }

    fn alice() -> Principal {
        Principal::Account {
            id: 3,
            name: "alice".into(),
            is_admin: false,
        }
    }

    #[test]
    fn scopes_parse_and_merge() {
        let s = ResourceScope::parse_all([
            "repository:team/app:pull,push",
            "repository(plugin):team/app:delete registry:catalog:*",
            "garbage",
            "repository:host:5000/x:pull",
        ]);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].actions, vec!["pull", "push", "delete"]);
        assert_eq!(s[1].to_string(), "registry:catalog:*");
        assert_eq!(s[2].name, "host:5000/x");
        let narrowed = s[0].intersect(Actions {
            pull: true,
            push: false,
            delete: true,
        });
        assert_eq!(narrowed.actions, vec!["pull", "delete"]);
        let star = ResourceScope::parse("repository:a:*")
            .expect("scope")
            .intersect(Actions::ALL);
        assert_eq!(star.actions, vec!["pull", "push", "delete"]);
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let i = issuer();
        let scope = ResourceScope::parse("repository:team/app:pull").expect("scope");
        let t = i.issue(&alice(), vec![scope], TokenUse::Access, 1_000, 300);
        let c = i.verify(&t, TokenUse::Access, 1_100).expect("valid");
        assert_eq!(c.principal(), alice());
        assert!(c.repository_actions("team/app").pull);
        assert!(!c.repository_actions("team/app").push);
        assert!(!c.repository_actions("team/other").pull);
        assert_eq!(
            i.verify(&t, TokenUse::Access, 1_300),
            Err(TokenError::Expired)
        );
        assert_eq!(
            i.verify(&t, TokenUse::Refresh, 1_100),
            Err(TokenError::WrongAudience)
        );
        let other_key = TokenIssuer::new(vec![8u8; 32], "berth", "registry.test");
        assert_eq!(
            other_key.verify(&t, TokenUse::Access, 1_100),
            Err(TokenError::Invalid)
        );
        let other_service = TokenIssuer::new(vec![7u8; 32], "berth", "elsewhere");
        assert_eq!(
            other_service.verify(&t, TokenUse::Access, 1_100),
            Err(TokenError::WrongAudience)
        );
        // Changing the payload breaks the signature.
        let parts: Vec<&str> = t.split('.').collect();
        let forged_claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).expect("b64"))
            .expect("utf8")
            .replace("\"pull\"", "\"push\"");
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(forged_claims),
            parts[2]
        );
        assert_eq!(
            i.verify(&forged, TokenUse::Access, 1_100),
            Err(TokenError::Invalid)
        );
        for junk in ["", "a.b", "a.b.c", "a.b.c.d", &format!("{t}x")] {
            assert!(i.verify(junk, TokenUse::Access, 1_100).is_err(), "{junk}");
        }
    }

    #[test]
    fn keys_and_times() {
        let k = TokenIssuer::generate_key();
        assert_eq!(TokenIssuer::decode_key(&k).map(|k| k.len()), Some(32));
        assert_ne!(k, TokenIssuer::generate_key());
        assert_eq!(TokenIssuer::decode_key("short"), None);
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        for t in [0, 1_795_348_083, 951_782_400, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2026-11-22T12:48:03+01:00"),
            Some(1_795_348_083)
        );
        assert_eq!(
            parse_rfc3339("2026-11-22T11:48:03.250Z"),
            Some(1_795_348_083)
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-11-22T11:48:03",
            "2026-11-22T11:48:03+1",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(rfc3339(1_795_348_083), "2026-11-22T11:48:03Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
