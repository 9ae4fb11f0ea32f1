//! Trust rules of registry users (keyless CI), on the registry users page:
//! add one for a registry user the viewer owns, delete one.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use berth_core::identity::TrustRuleSpec;
use berth_core::DirectoryError;
use berth_web::WebState;

use crate::extract::Posted;
use crate::forms::*;

/// `path=glob` lines.
fn claims(text: &str) -> Result<BTreeMap<String, String>, DirectoryError> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| {
                    DirectoryError::Invalid(format!("{l:?}: write claim conditions as path=glob"))
                })
        })
        .collect()
}

pub async fn create(State(state): State<WebState>, form: Posted) -> Response {
    let result = match claims(form.get("claims")) {
        Ok(claims) => state
            .workload
            .create(
                &form.viewer.principal,
                &TrustRuleSpec {
                    name: form.get("name").trim().to_owned(),
                    issuer: form.get("issuer").trim().to_owned(),
                    audience: form.get("audience").trim().to_owned(),
                    subject: form.get("subject").trim().to_owned(),
                    claims,
                    registry_user: form.get("registry_user").to_owned(),
                },
            )
            .await
            .map(|r| {
                format!(
                    "Trust rule {} added: matching tokens log in as {}.",
                    r.name, r.registry_user
                )
            }),
        Err(e) => Err(e),
    };
    outcome("/registry-users", result)
}

pub async fn delete(
    State(state): State<WebState>,
    Path((user, rule)): Path<(String, String)>,
    form: Posted,
) -> Response {
    let result = state
        .workload
        .delete(&form.viewer.principal, &user, &rule)
        .await
        .map(|()| format!("Trust rule {rule} deleted."));
    outcome("/registry-users", result)
}
