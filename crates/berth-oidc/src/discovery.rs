//! Provider metadata (`/.well-known/openid-configuration`).

use serde::Deserialize;

use crate::jwt::TokenError;

/// What Berth reads of a provider's metadata. A Kubernetes service-account
/// issuer publishes only `issuer` and `jwks_uri`; the endpoints of the
/// browser flow are then absent.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// The issuer; must equal the configured one exactly.
    pub issuer: String,
    /// Where the browser is sent to sign in.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Where a code is exchanged for tokens.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// The signing keys.
    pub jwks_uri: String,
    /// RP-initiated logout, when offered.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// Algorithms ID tokens are signed with (the spec's default: RS256).
    #[serde(default = "default_algorithms")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// PKCE methods, when announced.
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}

/// Parse metadata and check it is the configured issuer's (OpenID Connect
/// Discovery §4.3: the `issuer` value must be identical).
pub fn parse_metadata(bytes: &[u8], expected_issuer: &str) -> Result<ProviderMetadata, TokenError> {
    let m: ProviderMetadata = serde_json::from_slice(bytes)
        .map_err(|e| TokenError::Metadata(format!("not provider metadata: {e}")))?;
    if m.issuer != expected_issuer {
        return Err(TokenError::Metadata(format!(
            "the metadata names issuer {:?}, not the configured {:?}",
            m.issuer, expected_issuer
        )));
    }
    if let Some(methods) = &m.code_challenge_methods_supported {
        if m.authorization_endpoint.is_some() && !methods.iter().any(|x| x == "S256") {
            return Err(TokenError::Metadata(
                "the provider does not offer PKCE with S256".into(),
            ));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_of_a_browser_provider_and_of_a_kubernetes_issuer() {
        let m = parse_metadata(
            br#"{"issuer":"https://idp","authorization_endpoint":"https://idp/auth",
                "token_endpoint":"https://idp/token","jwks_uri":"https://idp/jwks",
                "id_token_signing_alg_values_supported":["ES256","RS256"],
                "code_challenge_methods_supported":["S256"]}"#,
            "https://idp",
        )
        .unwrap();
        assert_eq!(m.id_token_signing_alg_values_supported, ["ES256", "RS256"]);
        let k = parse_metadata(
            br#"{"issuer":"https://kubernetes.default.svc","jwks_uri":"https://k/openid/v1/jwks"}"#,
            "https://kubernetes.default.svc",
        )
        .unwrap();
        assert_eq!(k.authorization_endpoint, None);
        assert_eq!(k.id_token_signing_alg_values_supported, ["RS256"]);
    }

    #[test]
    fn another_issuer_or_no_s256_is_refused() {
        let e = parse_metadata(
            br#"{"issuer":"https://evil","jwks_uri":"x"}"#,
            "https://idp",
        );
        assert!(e.unwrap_err().to_string().contains("evil"));
        let e = parse_metadata(
            br#"{"issuer":"https://idp","authorization_endpoint":"a","jwks_uri":"x",
                "code_challenge_methods_supported":["plain"]}"#,
            "https://idp",
        );
        assert!(e.unwrap_err().to_string().contains("S256"));
        assert!(parse_metadata(b"[]", "https://idp").is_err());
    }
}
