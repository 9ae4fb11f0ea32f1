//! The platform administrators' "Sign-in" page: identity providers and
//! directories (each with a test), the group mappings (add, delete; the
//! configuration file's read-only) and every trust rule of workload
//! identity.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use berth_core::identity::{GroupMapping, MappedGrant, MappingRow, TrustRuleView, TrustTest};
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;
use crate::respond::{html, PageError, PageResult};
use crate::viewer::Viewer;
use crate::views::*;

pub struct ProviderRow {
    pub name: String,
    pub display_name: String,
    pub issuer: String,
    pub client_id: String,
    pub groups_claim: String,
}

pub struct DirectoryRow {
    pub name: String,
    pub url: String,
    pub user_base: String,
    pub groups: String,
}

pub struct MappingLine {
    pub id: Option<i64>,
    pub origin: String,
    pub group: String,
    pub grant: String,
    pub by: String,
}

#[derive(Template)]
#[template(path = "sign_in_admin.html")]
pub struct SignInAdminPage {
    pub l: Layout,
    pub providers: Vec<ProviderRow>,
    pub directories: Vec<DirectoryRow>,
    pub mappings: Vec<MappingLine>,
    pub origins: Vec<String>,
    pub rules: Vec<TrustRuleView>,
}

fn line(r: MappingRow) -> MappingLine {
    let grant = r.mapping.grant.describe();
    MappingLine {
        id: r.id,
        origin: r.mapping.origin,
        group: r.mapping.group,
        grant,
        by: if r.id.is_none() {
            "configuration file".into()
        } else {
            format!("{} by {}", when(r.created_at), r.created_by)
        },
    }
}

pub async fn page(
    State(state): State<WebState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let err = |e: DirectoryError| PageError::from(e).for_viewer(&viewer);
    let rows = state
        .sign_in
        .mappings()
        .rows(&viewer.principal)
        .await
        .map_err(err)?;
    let rules = state.workload.list(&viewer.principal).await.map_err(err)?;
    let providers: Vec<ProviderRow> = state
        .sign_in
        .providers()
        .iter()
        .map(|p| ProviderRow {
            name: p.name.clone(),
            display_name: p.display_name.clone(),
            issuer: p.issuer.clone(),
            client_id: p.client_id.clone(),
            groups_claim: p.groups_claim.clone().unwrap_or_else(|| "—".into()),
        })
        .collect();
    let directories: Vec<DirectoryRow> = state
        .ldap
        .directories()
        .iter()
        .map(|d| DirectoryRow {
            name: d.name.clone(),
            url: d.url.clone(),
            user_base: d.user_base.clone(),
            groups: match (&d.member_of_attribute, &d.group_base) {
                (Some(a), Some(_)) => format!("{a} and a group search"),
                (Some(a), None) => a.clone(),
                (None, Some(b)) => format!(
                    "search under {b}{}",
                    if d.nested_groups { ", nested" } else { "" }
                ),
                (None, None) => "—".into(),
            },
        })
        .collect();
    let origins = providers
        .iter()
        .map(|p| format!("oidc:{}", p.name))
        .chain(directories.iter().map(|d| format!("ldap:{}", d.name)))
        .collect();
    Ok(html(
        SignInAdminPage {
            l: Layout::new(&viewer, "sign-in").messages(&q),
            providers,
            directories,
            mappings: rows.into_iter().map(line).collect(),
            origins,
            rules,
        }
        .render(),
    ))
}

/// Add a group mapping.
pub async fn add_mapping(State(state): State<WebState>, form: Posted) -> Response {
    let target = Some(form.get("target"));
    let grant = match form.get("grant") {
        "platform_admin" => MappedGrant::from_fields(true, None, None, None),
        "project_group" => MappedGrant::from_fields(false, target, None, Some(form.get("role"))),
        "namespace" => MappedGrant::from_fields(false, None, target, Some(form.get("role"))),
        other => Err(format!("unknown grant {other:?}")),
    }
    .map_err(DirectoryError::Invalid);
    let result = match grant {
        Ok(grant) => state
            .sign_in
            .mappings()
            .create(
                &form.viewer.principal,
                &GroupMapping {
                    origin: form.get("origin").to_owned(),
                    group: form.get("group").trim().to_owned(),
                    grant,
                },
            )
            .await
            .map(|r| {
                let l = line(r);
                format!("Members of {} now get: {}.", l.group, l.grant)
            }),
        Err(e) => Err(e),
    };
    outcome("/sign-in", result)
}

/// Delete a group mapping.
pub async fn delete_mapping(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    form: Posted,
) -> Response {
    let result = state
        .sign_in
        .mappings()
        .delete(&form.viewer.principal, id)
        .await
        .map(|()| "Group mapping deleted; its roles go at each member's next sign-in.".to_owned());
    outcome("/sign-in", result)
}

/// Test a provider (`kind` = `providers`) or a directory (`directories`,
/// looking up the user name given).
pub async fn test(
    State(state): State<WebState>,
    Path((kind, name)): Path<(String, String)>,
    form: Posted,
) -> Response {
    if !form.viewer.principal.is_platform_admin() {
        return outcome(
            "/sign-in",
            Err(DirectoryError::Forbidden(
                "platform administrators only".into(),
            )),
        );
    }
    let result = match kind.as_str() {
        "providers" => state
            .sign_in
            .test(&name)
            .await
            .map_err(|e| DirectoryError::Invalid(e.to_string())),
        "directories" => {
            let user = form.get("username").trim().to_owned();
            match state.ldap.test(&name, &user).await {
                Ok(Some(u)) => Ok(format!(
                    "{name}: connected and searched; {user} is {} with {} group(s){}",
                    u.dn,
                    u.groups.len(),
                    if u.groups.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", u.groups.join("; "))
                    }
                )),
                Ok(None) => Ok(format!(
                    "{name}: connected and searched; no active user {user:?}"
                )),
                Err(e) => Err(DirectoryError::Invalid(e.to_string())),
            }
        }
        other => Err(DirectoryError::Invalid(format!("nothing to test: {other}"))),
    };
    outcome("/sign-in", result)
}

/// What the groups typed in would give an account of the origin chosen.
pub async fn preview_mapping(State(state): State<WebState>, form: Posted) -> Response {
    let origin = form.get("origin").to_owned();
    let groups: Vec<String> = form
        .get("groups")
        .lines()
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    let result = state
        .sign_in
        .mappings()
        .preview(&form.viewer.principal, &origin, &groups)
        .await
        .map(|grants| {
            if grants.is_empty() {
                format!("An account of {origin} in those groups gets nothing from the mappings.")
            } else {
                format!(
                    "An account of {origin} in those groups gets: {}.",
                    grants.join("; ")
                )
            }
        });
    outcome("/sign-in", result)
}

/// Which trust rule a pasted token would log in by.
pub async fn test_token(State(state): State<WebState>, form: Posted) -> Response {
    let result = state
        .workload
        .test(&form.viewer.principal, form.get("token"))
        .await
        .and_then(|t| match t {
            TrustTest::Matches {
                rule,
                registry_user,
                detail,
            } => Ok(format!(
                "The token logs in as registry user {registry_user} by trust rule {rule} ({detail})."
            )),
            TrustTest::Refused(reason) => Err(DirectoryError::Invalid(format!(
                "The token would be refused: {reason}"
            ))),
        });
    outcome("/sign-in", result)
}
