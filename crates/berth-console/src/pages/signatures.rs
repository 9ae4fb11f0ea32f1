//! The namespace "Signatures" tab: the platform's signature policy (read
//! only here), the namespace's own (its administrators set it), and a dry
//! run listing the current tags the policies would refuse; and the
//! platform administrators' page for the platform's policy.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use berth_core::pull_policy::{
    IdentitySetting, KeySetting, KeylessSetting, NotationSetting, SignaturePolicy,
    SignatureSettings,
};
use berth_core::DirectoryError;
use berth_signature::Mode;
use berth_web::WebState;

use crate::extract::Posted;
use crate::respond::{back, html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

/// A policy as the page shows it.
pub struct PolicyLine {
    pub mode: String,
    /// (name, kind, fingerprint).
    pub keys: Vec<(String, String, String)>,
    /// (name, identities, certificates, log key fingerprints).
    pub keyless: Vec<(String, String, usize, String)>,
    /// (name, trusted identities, certificates, registry scopes).
    pub notation: Vec<(String, String, usize, String)>,
    pub tags: String,
    pub by: String,
}

fn line(p: &SignaturePolicy) -> PolicyLine {
    PolicyLine {
        mode: p.mode.as_str().to_owned(),
        keys: p
            .trust
            .keys
            .iter()
            .map(|k| {
                (
                    k.name.clone(),
                    k.key.kind().as_str().to_owned(),
                    k.key.fingerprint().to_owned(),
                )
            })
            .collect(),
        keyless: p
            .trust
            .authorities
            .iter()
            .zip(&p.settings.keyless)
            .map(|(a, k)| {
                (
                    a.name.clone(),
                    k.identities
                        .iter()
                        .map(identity_line)
                        .collect::<Vec<_>>()
                        .join("; "),
                    a.certificates.len(),
                    a.log_keys
                        .iter()
                        .map(|k| k.fingerprint().to_owned())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
            .collect(),
        notation: p
            .trust
            .stores
            .iter()
            .zip(&p.settings.notation)
            .map(|(st, n)| {
                (
                    st.name.clone(),
                    n.trusted_identities.join("; "),
                    st.certificates.len(),
                    n.registry_scopes.join(", "),
                )
            })
            .collect(),
        tags: if p.settings.tags.is_empty() {
            "every image".into()
        } else {
            p.settings.tags.join(", ")
        },
        by: format!("{} by {}", when(p.updated_at), p.updated_by),
    }
}

/// A dry-run row: (image, tag, digest, reason).
pub type Row = (String, String, String, String);

#[derive(Template)]
#[template(path = "signatures.html")]
pub struct SignaturesPage {
    pub l: Layout,
    pub ns: String,
    pub platform: Option<PolicyLine>,
    pub own: Option<PolicyLine>,
    pub mode: String,
    pub keys_text: String,
    pub keyless_text: String,
    pub notation_text: String,
    pub tags_text: String,
    pub form_action: String,
    /// Dry run: (checked, refused, audited), when asked for.
    pub dry_run: Option<(usize, Vec<Row>, Vec<Row>)>,
}

#[derive(Template)]
#[template(path = "platform_signatures.html")]
pub struct PlatformSignaturesPage {
    pub l: Layout,
    pub own: Option<PolicyLine>,
    pub mode: String,
    pub keys_text: String,
    pub keyless_text: String,
    pub notation_text: String,
    pub tags_text: String,
    pub form_action: String,
}

/// Keys as typed: a name on its own line, then its PEM block; repeated.
pub fn parse_keys(text: &str) -> Result<Vec<KeySetting>, String> {
    let mut keys = Vec::new();
    let mut name: Option<String> = None;
    let mut block: Option<Vec<&str>> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(b) = block.as_mut() {
            b.push(trimmed);
            if trimmed.starts_with("-----END ") {
                let pem = b.join("\n");
                let n = name
                    .take()
                    .ok_or("each key needs a name on the line before its PEM block")?;
                keys.push(KeySetting {
                    name: n,
                    public_key: pem,
                });
                block = None;
            }
        } else if trimmed.starts_with("-----BEGIN ") {
            block = Some(vec![trimmed]);
        } else if !trimmed.is_empty() {
            if let Some(n) = &name {
                return Err(format!("key {n:?} has no PEM block after its name"));
            }
            name = Some(trimmed.to_owned());
        }
    }
    if block.is_some() {
        return Err("a PEM block has no -----END line".into());
    }
    if let Some(n) = name {
        return Err(format!("key {n:?} has no PEM block after its name"));
    }
    Ok(keys)
}

fn identity_line(i: &IdentitySetting) -> String {
    let pick = |e: &Option<String>, p: &Option<String>| {
        e.clone().or_else(|| p.clone()).unwrap_or_default()
    };
    format!(
        "{} {}",
        pick(&i.issuer, &i.issuer_pattern),
        pick(&i.subject, &i.subject_pattern)
    )
}

/// Keyless authorities as typed: `authority NAME`, then `identity ISSUER
/// SUBJECT` lines (a `*` or `?` makes either a pattern), then the
/// authority's CERTIFICATE blocks and its log's PUBLIC KEY blocks; repeated.
pub fn parse_keyless(text: &str) -> Result<Vec<KeylessSetting>, String> {
    let mut out: Vec<KeylessSetting> = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(b) = block.as_mut() {
            b.push(t);
            if t.starts_with("-----END ") {
                let pem = b.join("\n");
                block = None;
                let a = out
                    .last_mut()
                    .ok_or("a PEM block before any `authority NAME` line")?;
                if pem.starts_with("-----BEGIN CERTIFICATE-----") {
                    a.certificates.push_str(&pem);
                    a.certificates.push('\n');
                } else {
                    a.log_keys.push(pem);
                }
            }
        } else if t.starts_with("-----BEGIN ") {
            block = Some(vec![t]);
        } else if let Some(name) = t.strip_prefix("authority ") {
            out.push(KeylessSetting {
                name: name.trim().to_owned(),
                certificates: String::new(),
                log_keys: Vec::new(),
                identities: Vec::new(),
            });
        } else if let Some(rest) = t.strip_prefix("identity ") {
            let a = out
                .last_mut()
                .ok_or("an identity before any `authority NAME` line")?;
            let (issuer, subject) = rest
                .trim()
                .split_once(char::is_whitespace)
                .ok_or("write an identity as `identity ISSUER SUBJECT`")?;
            let wild = |v: &str| v.contains(['*', '?']);
            let (issuer, subject) = (issuer.trim().to_owned(), subject.trim().to_owned());
            a.identities.push(IdentitySetting {
                issuer: (!wild(&issuer)).then(|| issuer.clone()),
                issuer_pattern: wild(&issuer).then_some(issuer),
                subject: (!wild(&subject)).then(|| subject.clone()),
                subject_pattern: wild(&subject).then_some(subject),
            });
        } else if !t.is_empty() {
            return Err(format!(
                "{t:?}: expected `authority NAME`, `identity ISSUER SUBJECT` or a PEM block"
            ));
        }
    }
    if block.is_some() {
        return Err("a PEM block has no -----END line".into());
    }
    Ok(out)
}

/// Notation trust stores as typed: `store NAME`, `identity x509.subject: …`
/// (or `identity *`) and `scope PATTERN` lines, then the store's
/// CERTIFICATE blocks; repeated.
pub fn parse_notation(text: &str) -> Result<Vec<NotationSetting>, String> {
    let mut out: Vec<NotationSetting> = Vec::new();
    let mut block: Option<Vec<&str>> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(b) = block.as_mut() {
            b.push(t);
            if t.starts_with("-----END ") {
                let pem = b.join("\n");
                block = None;
                let s = out
                    .last_mut()
                    .ok_or("a PEM block before any `store NAME` line")?;
                s.certificates.push_str(&pem);
                s.certificates.push('\n');
            }
        } else if t.starts_with("-----BEGIN ") {
            block = Some(vec![t]);
        } else if let Some(name) = t.strip_prefix("store ") {
            out.push(NotationSetting {
                name: name.trim().to_owned(),
                certificates: String::new(),
                trusted_identities: Vec::new(),
                registry_scopes: Vec::new(),
            });
        } else if let Some(rest) = t.strip_prefix("identity ") {
            let s = out
                .last_mut()
                .ok_or("an identity before any `store NAME` line")?;
            s.trusted_identities.push(rest.trim().to_owned());
        } else if let Some(rest) = t.strip_prefix("scope ") {
            let s = out
                .last_mut()
                .ok_or("a scope before any `store NAME` line")?;
            s.registry_scopes.push(rest.trim().to_owned());
        } else if !t.is_empty() {
            return Err(format!(
                "{t:?}: expected `store NAME`, `identity …`, `scope PATTERN` or a PEM block"
            ));
        }
    }
    if block.is_some() {
        return Err("a PEM block has no -----END line".into());
    }
    Ok(out)
}

fn notation_text(p: &SignaturePolicy) -> String {
    p.settings
        .notation
        .iter()
        .map(|n| {
            let mut lines = vec![format!("store {}", n.name)];
            lines.extend(n.trusted_identities.iter().map(|i| format!("identity {i}")));
            lines.extend(n.registry_scopes.iter().map(|s| format!("scope {s}")));
            lines.push(n.certificates.trim().to_owned());
            lines.join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn keyless_text(p: &SignaturePolicy) -> String {
    p.settings
        .keyless
        .iter()
        .map(|k| {
            let mut lines = vec![format!("authority {}", k.name)];
            lines.extend(
                k.identities
                    .iter()
                    .map(|i| format!("identity {}", identity_line(i))),
            );
            lines.push(k.certificates.trim().to_owned());
            lines.extend(k.log_keys.iter().map(|l| l.trim().to_owned()));
            lines.join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn keys_text(p: &SignaturePolicy) -> String {
    p.settings
        .keys
        .iter()
        .map(|k| format!("{}\n{}", k.name, k.public_key.trim()))
        .collect::<Vec<_>>()
        .join("\n\n")
}

pub async fn page(
    State(state): State<WebState>,
    viewer: Viewer,
    Path(ns): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let policies = state.management.pull_policies();
    let own = policies
        .get(&viewer.principal, Some(&ns))
        .await
        .map_err(err)?;
    let platform = policies.get(&viewer.principal, None).await.map_err(err)?;
    let dry_run = if q.contains_key("dry_run") {
        let d = policies
            .dry_run(&viewer.principal, &ns)
            .await
            .map_err(err)?;
        let rows = |v: Vec<berth_core::pull_policy::DryRunRow>| {
            v.into_iter()
                .map(|r| (r.repository, r.tag, r.digest, r.reason))
                .collect()
        };
        Some((d.checked, rows(d.refused), rows(d.audited)))
    } else {
        None
    };
    Ok(html(
        SignaturesPage {
            l: Layout::new(&viewer, "namespaces").messages(&q),
            mode: own.as_ref().map_or("off", |p| p.mode.as_str()).to_owned(),
            keys_text: own.as_ref().map(keys_text).unwrap_or_default(),
            keyless_text: own.as_ref().map(keyless_text).unwrap_or_default(),
            notation_text: own.as_ref().map(notation_text).unwrap_or_default(),
            tags_text: own
                .as_ref()
                .map(|p| p.settings.tags.join(", "))
                .unwrap_or_default(),
            platform: platform.as_ref().map(line),
            own: own.as_ref().map(line),
            dry_run,
            form_action: format!("/namespaces/{ns}/signatures"),
            ns,
        }
        .render(),
    ))
}

/// The platform's policy, for platform administrators.
pub async fn platform_page(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    if !viewer.principal.is_platform_admin() {
        return Err(err(DirectoryError::Forbidden(
            "the platform's signature policy is for platform administrators".into(),
        )));
    }
    let own = state
        .management
        .pull_policies()
        .get(&viewer.principal, None)
        .await
        .map_err(err)?;
    Ok(html(
        PlatformSignaturesPage {
            l: Layout::new(&viewer, "signatures").messages(&q),
            mode: own.as_ref().map_or("off", |p| p.mode.as_str()).to_owned(),
            keys_text: own.as_ref().map(keys_text).unwrap_or_default(),
            keyless_text: own.as_ref().map(keyless_text).unwrap_or_default(),
            notation_text: own.as_ref().map(notation_text).unwrap_or_default(),
            tags_text: own
                .as_ref()
                .map(|p| p.settings.tags.join(", "))
                .unwrap_or_default(),
            own: own.as_ref().map(line),
            form_action: "/signatures".into(),
        }
        .render(),
    ))
}

pub async fn save_platform(State(state): State<WebState>, form: Posted) -> Response {
    store(&state, None, "/signatures", form).await
}

pub async fn save(State(state): State<WebState>, Path(ns): Path<String>, form: Posted) -> Response {
    let to = format!("/namespaces/{ns}/signatures");
    store(&state, Some(&ns), &to, form).await
}

/// Read the form and set the platform's (`namespace` `None`) or a
/// namespace's policy; back to `to` with the outcome.
async fn store(state: &WebState, namespace: Option<&str>, to: &str, form: Posted) -> Response {
    let Some(mode) = Mode::parse(form.get("mode")) else {
        return back(to, "error", "choose off, audit or enforce");
    };
    let keys = match parse_keys(form.get("keys")) {
        Ok(k) => k,
        Err(e) => return back(to, "error", &e),
    };
    let keyless = match parse_keyless(form.get("keyless")) {
        Ok(k) => k,
        Err(e) => return back(to, "error", &format!("keyless authorities: {e}")),
    };
    let notation = match parse_notation(form.get("notation")) {
        Ok(n) => n,
        Err(e) => return back(to, "error", &format!("Notation trust stores: {e}")),
    };
    let tags = form
        .get("tags")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    match state
        .management
        .pull_policies()
        .set(
            &form.viewer.principal,
            namespace,
            mode,
            &SignatureSettings {
                keys,
                keyless,
                notation,
                tags,
            },
        )
        .await
    {
        Ok(p) => back(
            to,
            "notice",
            &format!("Signature policy saved: {}.", p.mode.as_str()),
        ),
        Err(e) if e.is_internal() => PageError::from(e).into_response(),
        Err(e) => back(to, "error", &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notation_stores_are_read_as_typed() {
        let text = "store acme\nidentity x509.subject: C=US, ST=WA, O=acme\nidentity *\nscope team/*\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let s = parse_notation(text).unwrap();
        assert_eq!(s[0].name, "acme");
        assert_eq!(
            s[0].trusted_identities,
            ["x509.subject: C=US, ST=WA, O=acme", "*"]
        );
        assert_eq!(s[0].registry_scopes, ["team/*"]);
        assert!(s[0].certificates.contains("AAAA"));
        assert!(parse_notation("scope x")
            .unwrap_err()
            .contains("before any"));
        assert!(parse_notation("what").unwrap_err().contains("expected"));
    }

    #[test]
    fn keyless_authorities_are_read_and_written_back() {
        let text = "authority ci\nidentity https://token.actions.githubusercontent.com https://github.com/acme/*\nidentity https://issuer.example dev@acme.example\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n";
        let a = parse_keyless(text).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].name, "ci");
        assert_eq!(
            a[0].identities[0].subject_pattern.as_deref(),
            Some("https://github.com/acme/*")
        );
        assert_eq!(
            a[0].identities[0].issuer.as_deref(),
            Some("https://token.actions.githubusercontent.com")
        );
        assert_eq!(
            a[0].identities[1].subject.as_deref(),
            Some("dev@acme.example")
        );
        assert!(a[0].certificates.contains("AAAA"));
        assert_eq!(a[0].log_keys.len(), 1);
        assert!(parse_keyless("identity a b")
            .unwrap_err()
            .contains("before any"));
        assert!(parse_keyless("authority x\nidentity onlyone")
            .unwrap_err()
            .contains("ISSUER SUBJECT"));
        assert!(parse_keyless("hello").unwrap_err().contains("expected"));
        assert!(parse_keyless("").unwrap().is_empty());
    }

    #[test]
    fn keys_are_read_as_name_then_pem_block() {
        let text = "release\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n\n  ci  \n-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n";
        let keys = parse_keys(text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].name, "ci");
        assert_eq!(
            keys[0].public_key,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
        );
        assert!(parse_keys("").unwrap().is_empty());
        assert!(
            parse_keys("-----BEGIN PUBLIC KEY-----\nA\n-----END PUBLIC KEY-----")
                .unwrap_err()
                .contains("needs a name")
        );
        assert!(parse_keys("a\nb").unwrap_err().contains("no PEM block"));
        assert!(parse_keys("a\n-----BEGIN PUBLIC KEY-----\nA")
            .unwrap_err()
            .contains("no -----END"));
    }
}
