//! The OpenAPI document of the management API: utoipa's, generated from
//! the handlers, completed with what holds for every operation, and served
//! at `/api/v1/openapi.json`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{
    access, gc, group_mappings, images, integrity, namespaces, people, policies,
    remote_replication, remotes, sboms, signature_policies, sync, trust_rules, vulnerabilities,
    vulnerability_policies, webhooks,
};

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                berth_web::SESSION_COOKIE,
                "Console session; changing requests also send X-CSRF-Token",
            ))),
        );
    }
}

/// The OpenAPI document of the management API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Berth management API",
        description = "Namespaces, images, tags, access, registry users, tokens and the audit log of a Berth registry. Image names with slashes are one path segment with %2F.",
        version = "1",
        license(name = "Apache-2.0")
    ),
    paths(
        namespaces::list, namespaces::shared, namespaces::create, namespaces::get_one,
        namespaces::update, namespaces::delete, namespaces::batch_delete,
        namespaces::members, namespaces::set_member, namespaces::remove_member,
        namespaces::grants, namespaces::set_grant, namespaces::remove_grant,
        namespaces::permissions, namespaces::set_permission, namespaces::remove_permission,
        images::list, images::list_all, images::batch_delete_any, images::platform, images::get_one, images::delete, images::batch_delete,
        images::tags, images::delete_tag, images::batch_delete_tags,
        people::groups, people::create_group, people::group, people::update_group,
        people::set_group_member, people::remove_group_member,
        people::accounts, people::create_account, people::update_account, people::me,
        people::update_me, people::registry_users, people::registry_user_grants,
        people::create_registry_user, people::update_registry_user, people::delete_registry_user,
        people::tokens, people::create_token, people::revoke_token, people::revoke_all_tokens,
        people::login, people::session, people::logout, people::sign_out_everywhere, people::audit,
        gc::start, gc::runs, gc::run, integrity::start, integrity::runs, integrity::run,
        policies::get, policies::put, policies::run_retention,
        signature_policies::platform_get, signature_policies::platform_put, signature_policies::platform_delete,
        signature_policies::get, signature_policies::put, signature_policies::delete,
        signature_policies::dry_run, signature_policies::signatures,
        vulnerabilities::image, vulnerabilities::import, vulnerabilities::affected,
        vulnerabilities::by_package, sboms::sbom,
        vulnerability_policies::platform_get, vulnerability_policies::platform_put,
        vulnerability_policies::platform_delete, vulnerability_policies::get,
        vulnerability_policies::put, vulnerability_policies::delete,
        sync::rules, sync::add_rule, sync::delete_rule, sync::start, sync::records,
        sync::regions, sync::copy_regions, sync::set_copy_regions, sync::replication, sync::set_replication,
        webhooks::platform_list, webhooks::platform_create, webhooks::namespace_list,
        webhooks::namespace_create, webhooks::get_one, webhooks::update, webhooks::delete,
        webhooks::ping, webhooks::deliveries, webhooks::delivery, webhooks::redeliver,
        remotes::list, remotes::create, remotes::get_one, remotes::update, remotes::delete,
        remotes::test, remotes::proxy_namespaces,
        remote_replication::rules, remote_replication::create, remote_replication::get_one, remote_replication::update,
        remote_replication::delete, remote_replication::run, remote_replication::runs, remote_replication::run_one,
        remote_replication::tasks,
        group_mappings::list, group_mappings::create, group_mappings::delete, group_mappings::preview,
        trust_rules::all, trust_rules::test, trust_rules::list, trust_rules::create, trust_rules::get_one, trust_rules::delete,
    ),
    modifiers(&SecuritySchemes),
    security(("basic" = []), ("api_token" = []), ("session" = [])),
    tags(
        (name = "namespaces", description = "Namespaces and their statistics"),
        (name = "images", description = "Images (repositories) and tags"),
        (name = "access", description = "Namespace members, per-image permissions and registry-user grants"),
        (name = "project groups", description = "Project groups, their members and namespace limits"),
        (name = "accounts", description = "Console accounts and personal API tokens"),
        (name = "registry users", description = "Users for docker login with pull/push grants"),
        (name = "session", description = "Console login"),
        (name = "audit", description = "The audit log"),
        (name = "garbage collection", description = "Reclaiming storage (platform administrators)"),
        (name = "integrity", description = "Checking stored data (platform administrators)"),
        (name = "synchronization", description = "Regions, image synchronization rules and their records"),
        (name = "remote registries", description = "Registries Berth does not run, for replication and caching (platform administrators)"),
        (name = "webhooks", description = "Webhooks of namespaces and of the platform, and their deliveries"),
        (name = "signatures", description = "Signature policies enforced at pull, dry runs, and the signatures of images"),
        (name = "vulnerabilities", description = "What images hold (package inventories) and which advisories (OSV) affect them"),
        (name = "replication", description = "Replication rules with remote registries, their runs and tasks (platform administrators)"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON: utoipa's, with what holds for every
/// operation added once here rather than on each handler, so that the
/// document and the server cannot drift apart: errors are
/// `application/problem+json`; any operation with parameters or a body may
/// answer 400 (a missing JSON content type, an id that overflows, a value
/// out of range); authenticated ones 401, and 429 while logins are
/// throttled; and any may answer 500, 503 (database unavailable) or 507
/// (storage full), described by `default`. Public lists and the login are
/// marked as needing no credentials.
pub fn openapi_json() -> String {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    complete_document(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn problem(description: &str) -> serde_json::Value {
    serde_json::json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn complete_document(doc: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let needs = access::declared(method, path);
            // Anonymous callers may call these (reads of public namespaces).
            let public = matches!(
                needs,
                Some(access::Needs::Anyone | access::Needs::NamespacePull)
            );
            if let Some(needs) = needs {
                op["x-berth-access"] = json!(needs.as_str());
            }
            let takes_input = op.get("parameters").is_some() || op.get("requestBody").is_some();
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for response in responses.values_mut() {
                let content = response.get_mut("content").and_then(Value::as_object_mut);
                if let Some(content) = content {
                    let is_problem = content
                        .get("application/json")
                        .and_then(|c| c.pointer("/schema/$ref"))
                        .and_then(Value::as_str)
                        == Some("#/components/schemas/Problem");
                    if is_problem {
                        if let Some(c) = content.remove("application/json") {
                            content.insert("application/problem+json".into(), c);
                        }
                    }
                }
            }
            if takes_input {
                responses
                    .entry("400")
                    .or_insert_with(|| problem("Invalid input (`invalid`)"));
            }
            // Invalid credentials are refused whatever the operation.
            responses
                .entry("401")
                .or_insert_with(|| problem("No or invalid credentials (`unauthorized`)"));
            responses.entry("429").or_insert_with(|| {
                problem("Too many failed logins from this client (`too_many_requests`)")
            });
            responses.entry("default").or_insert_with(|| {
                problem(
                    "A failure of the server: 500 `internal`, 503 `unavailable` (the database; \
                     retry), 507 `storage_full`",
                )
            });
            if public {
                op["security"] = json!([{}, {"basic": []}, {"api_token": []}, {"session": []}]);
            }
        }
    }
    // A new password and `generate_password: true` exclude each other.
    if let Some(schema) = doc.pointer_mut("/components/schemas/UpdateRegistryUser") {
        schema["not"] = json!({
            "required": ["password", "generate_password"],
            "properties": {"password": {"type": "string"}, "generate_password": {"const": true}}
        });
    }
    // Setting and clearing the registry password exclude each other.
    if let Some(schema) = doc.pointer_mut("/components/schemas/UpdateMe") {
        schema["not"] = json!({
            "required": ["registry_password", "clear_registry_password"],
            "properties": {"registry_password": {"type": "string"}, "clear_registry_password": {"const": true}}
        });
    }
    // A retention rule keeps by count or by age: exactly one of the two.
    if let Some(schema) = doc.pointer_mut("/components/schemas/RetentionRuleJson") {
        schema["oneOf"] = json!([
            {"required": ["keep_last"], "properties": {"keep_last": {"type": "integer"}},
             "not": {"required": ["keep_days"], "properties": {"keep_days": {"type": "integer"}}}},
            {"required": ["keep_days"], "properties": {"keep_days": {"type": "integer"}},
             "not": {"required": ["keep_last"], "properties": {"keep_last": {"type": "integer"}}}}
        ]);
    }
    // Labels: keys and values as berth-core checks them.
    for name in ["CreateNamespace", "UpdateNamespace"] {
        if let Some(labels) =
            doc.pointer_mut(&format!("/components/schemas/{name}/properties/labels"))
        {
            labels["maxProperties"] = json!(20);
            labels["propertyNames"] = json!({"pattern": "^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$"});
            labels["additionalProperties"] = json!({
                "type": "string", "maxLength": 128, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f\"\\\\]*$"
            });
        }
    }
    // Sort keys per list, and the grammar of names in paths.
    let sorts: [(&str, Vec<&str>); 6] = [
        ("/api/v1/namespaces", keys(namespaces::NAMESPACE_SORT)),
        (
            "/api/v1/shared/namespaces",
            keys(namespaces::NAMESPACE_SORT),
        ),
        (
            "/api/v1/namespaces/{ns}/repositories",
            keys(images::IMAGE_SORT),
        ),
        ("/api/v1/platform/repositories", keys(images::IMAGE_SORT)),
        ("/api/v1/repositories", keys(images::IMAGE_SORT)),
        (
            "/api/v1/namespaces/{ns}/repositories/{repo}/tags",
            keys(images::TAG_SORT),
        ),
    ];
    let component = "[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*";
    let names = [
        ("ns", format!("^{component}$")),
        ("repo", format!("^{component}(?:/{component})*$")),
        ("account", "^[a-z0-9][a-z0-9._-]{1,63}$".to_owned()),
        ("user", "^[a-z0-9][a-z0-9._-]{1,63}$".to_owned()),
        ("tag", "^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$".to_owned()),
    ];
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let sort = sorts.iter().find(|(p, _)| p == path).map(|(_, k)| k);
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                continue;
            };
            for param in params {
                let name = param["name"].as_str().unwrap_or_default().to_owned();
                let place = param["in"].as_str().unwrap_or_default().to_owned();
                if let (Some(keys), "sort", "query") = (sort, name.as_str(), place.as_str()) {
                    param["schema"]["pattern"] = json!(format!("^(-?({}))?$", keys.join("|")));
                }
                if place == "path" {
                    if let Some((_, pattern)) = names.iter().find(|(n, _)| *n == name) {
                        param["schema"]["pattern"] = json!(pattern);
                        if name == "ns" || name == "repo" {
                            param["schema"]["maxLength"] = json!(berth_oci::MAX_NAME_LEN);
                        }
                    }
                }
            }
        }
    }
}

fn keys<T>(list: &[(&'static str, T)]) -> Vec<&'static str> {
    list.iter().map(|(k, _)| *k).collect()
}

pub(crate) async fn serve(State(doc): State<Arc<String>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.as_str().to_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The published contract: a change to the API shows up here for review.
    #[test]
    fn openapi_document_snapshot() {
        insta::assert_snapshot!("openapi", openapi_json());
    }

    /// Every operation declares who may call it, and every declaration is
    /// of an operation.
    #[test]
    fn every_operation_declares_its_access() {
        let doc: serde_json::Value = serde_json::from_str(&openapi_json()).unwrap();
        let mut operations = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    op["x-berth-access"].is_string(),
                    "{method} {path} declares no access in access::DECLARED"
                );
                operations.push((method.clone(), path.clone()));
            }
        }
        for (method, path, _) in access::DECLARED {
            assert!(
                operations.iter().any(|(m, p)| m == method && p == path),
                "{method} {path} is declared but is no operation"
            );
        }
        assert_eq!(operations.len(), access::DECLARED.len());
    }
}
