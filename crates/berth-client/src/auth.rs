//! Registry authentication: HTTP Basic, or the Docker token flow (a
//! `Bearer realm=…,service=…,scope=…` challenge answered by fetching a
//! token from the realm, with the credentials as Basic when there are
//! some). Tokens are cached per scope until shortly before they expire.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{self, HeaderValue};

use crate::error::{chain, ClientError};

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Clone)]
struct Cached {
    value: HeaderValue,
    until: Instant,
}

#[derive(Default)]
struct State {
    /// The registry asked for Basic: send it on every request.
    basic: bool,
    /// Bearer tokens by scope.
    tokens: HashMap<String, Cached>,
}

/// Answers challenges and remembers the answers.
#[derive(Clone)]
pub(crate) struct Authenticator {
    http: reqwest::Client,
    credentials: Option<Credentials>,
    /// The registry's URL: its host may receive the credentials.
    base: reqwest::Url,
    /// A token service elsewhere that may receive them too.
    token_realm: Option<String>,
    state: Arc<Mutex<State>>,
}

/// Most bytes of a token service's answer.
const MAX_TOKEN_ANSWER: usize = 64 << 10;

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub(crate) fn new(
        http: reqwest::Client,
        credentials: Option<Credentials>,
        base: reqwest::Url,
        token_realm: Option<String>,
    ) -> Self {
        Authenticator {
            http,
            credentials,
            base,
            token_realm,
            state: Arc::default(),
        }
    }

    /// Whether a token service at `realm` may receive the credentials:
    /// on the registry's own host, or under the configured token realm.
    fn trusted(&self, realm: &reqwest::Url) -> bool {
        let same_host = realm.host_str().map(str::to_ascii_lowercase)
            == self.base.host_str().map(str::to_ascii_lowercase);
        same_host
            || self
                .token_realm
                .as_deref()
                .is_some_and(|t| realm.as_str().starts_with(t))
    }

    fn basic_value(&self) -> Option<HeaderValue> {
        let c = self.credentials.as_ref()?;
        let encoded = base64_encode(format!("{}:{}", c.username, c.password).as_bytes());
        let mut v = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
        v.set_sensitive(true);
        Some(v)
    }

    /// The Authorization header to send for `scope`, if one is known.
    pub(crate) fn header(&self, scope: &str) -> Option<HeaderValue> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.basic {
            return self.basic_value();
        }
        state
            .tokens
            .get(scope)
            .filter(|t| t.until > Instant::now())
            .map(|t| t.value.clone())
    }

    /// Answer a 401's challenge for `scope`: the header to retry with.
    pub(crate) async fn answer(
        &self,
        challenge: &str,
        scope: &str,
    ) -> Result<HeaderValue, ClientError> {
        let (scheme, params) = parse_challenge(challenge);
        if scheme.eq_ignore_ascii_case("basic") {
            let value = self.basic_value().ok_or_else(|| {
                ClientError::Unauthorized("the registry needs a user name and password".into())
            })?;
            self.state.lock().unwrap_or_else(|p| p.into_inner()).basic = true;
            return Ok(value);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ClientError::Unauthorized(format!(
                "unsupported authentication challenge {challenge:?}"
            )));
        }
        let realm = params
            .get("realm")
            .ok_or_else(|| ClientError::Protocol("a Bearer challenge without realm".into()))?;
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| ClientError::Protocol(format!("token realm {realm}: {e}")))?;
        match url.scheme() {
            "https" => {}
            // Never from an HTTPS registry to a plain-HTTP token service.
            "http" if self.base.scheme() == "http" => {}
            _ => {
                return Err(ClientError::Protocol(format!(
                    "the registry names the token service {realm}: refused, it is not HTTPS"
                )))
            }
        }
        // Credentials go to the registry's own host, or to a token service
        // configured with the remote; another realm gets none.
        let send_credentials = self.trusted(&url);
        if self.credentials.is_some() && !send_credentials {
            return Err(ClientError::Unauthorized(format!(
                "the registry sends token requests to {realm}, which is not on {}: credentials are sent only to the registry's own host or to its configured token realm",
                self.base.host_str().unwrap_or_default()
            )));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = params.get("service") {
                q.append_pair("service", service);
            }
            // The scope the client needs; the challenge's own when none.
            let wanted = if scope.is_empty() {
                params.get("scope").map(String::as_str).unwrap_or("")
            } else {
                scope
            };
            for s in wanted.split(' ').filter(|s| !s.is_empty()) {
                q.append_pair("scope", s);
            }
        }
        let mut req = self.http.get(url);
        if let Some(basic) = self.basic_value().filter(|_| send_credentials) {
            req = req.header(header::AUTHORIZATION, basic);
        }
        let r = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(chain(&e)))?;
        if r.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized(
                "the token service refused the credentials".into(),
            ));
        }
        if !r.status().is_success() {
            return Err(ClientError::Status {
                status: r.status().as_u16(),
                message: "from the token service".into(),
            });
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let t: TokenAnswer = serde_json::from_slice(
            &crate::guard::read_bounded(r, MAX_TOKEN_ANSWER, "a token service's answer").await?,
        )
        .map_err(|e| ClientError::Protocol(format!("token answer: {e}")))?;
        let token = t
            .token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ClientError::Protocol("a token answer without a token".into()))?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ClientError::Protocol("a token that is no header value".into()))?;
        value.set_sensitive(true);
        // Docker's default lifetime is 60 s; renew 10 s early.
        let life = Duration::from_secs(t.expires_in.unwrap_or(60).max(20) - 10);
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .tokens
            .insert(
                scope.to_owned(),
                Cached {
                    value: value.clone(),
                    until: Instant::now() + life,
                },
            );
        Ok(value)
    }
}

/// `Bearer realm="…",service="…"` as its scheme and parameters.
fn parse_challenge(s: &str) -> (String, HashMap<String, String>) {
    let s = s.trim();
    let (scheme, rest) = s.split_once(' ').unwrap_or((s, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_owned());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_owned(), params)
}

fn base64_encode(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        let (scheme, p) = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (scheme, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(scheme, "Basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[tokio::test]
    async fn realms_are_checked_before_anything_is_sent() {
        let auth = |base: &str, realm: Option<&str>| {
            Authenticator::new(
                reqwest::Client::new(),
                Some(Credentials {
                    username: "u".into(),
                    password: "p".into(),
                }),
                reqwest::Url::parse(base).unwrap(),
                realm.map(str::to_owned),
            )
        };
        // Nothing listens on these hosts: an error other than a refusal
        // would mean a request was made.
        let a = auth("https://registry.invalid", None);
        let e = a
            .answer(r#"Bearer realm="http://registry.invalid/token""#, "")
            .await
            .expect_err("downgrade");
        assert!(e.to_string().contains("not HTTPS"), "{e}");
        let e = a
            .answer(r#"Bearer realm="https://elsewhere.invalid/token""#, "")
            .await
            .expect_err("another host");
        assert!(e.to_string().contains("token realm"), "{e}");
        let trusted = auth(
            "https://registry.invalid",
            Some("https://auth.invalid/token"),
        );
        assert!(trusted.trusted(&reqwest::Url::parse("https://auth.invalid/token?x=1").unwrap()));
        assert!(!trusted.trusted(&reqwest::Url::parse("https://auth.invalid.evil/token").unwrap()));
        assert!(trusted.trusted(&reqwest::Url::parse("https://REGISTRY.invalid/t").unwrap()));
    }

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
        }
    }
}
