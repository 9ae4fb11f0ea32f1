//! Every operation of the management API (read from the served OpenAPI
//! document) and every /v2 endpoint (`Endpoint::KINDS`), tried by seven
//! kinds of caller — anonymous, a stranger account, a registry user
//! without grants, a guest, a developer, a namespace administrator and a
//! platform administrator — on their own tenant's namespace and on
//! another tenant's. The expected outcome is derived from the access each
//! operation declares (`x-berth-access` in the document, `Endpoint::access`
//! on /v2): a caller who may not is refused (401 without credentials, 403
//! or 404 with them) and nothing changes; a caller who may is let in.
//!
//! Phase 1 sends every refused request and every allowed read; then the
//! world must be as it was. Phase 2 sends every allowed write once, by the
//! least privileged caller allowed.

use std::collections::BTreeSet;

use crate::common::*;
use berth_registry::{Access, Action, Endpoint};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

backend_tests!(every_operation_refuses_whoever_it_does_not_declare);

const PASSWORD: &str = "a-long-password";

/// A kind of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Anonymous,
    Stranger,
    RegistryUser,
    Guest,
    Developer,
    NsAdmin,
    PlatformAdmin,
}

/// From the least privileged up (the order phase 2 picks callers in).
const KINDS: [Kind; 7] = [
    Kind::Anonymous,
    Kind::RegistryUser,
    Kind::Stranger,
    Kind::Guest,
    Kind::Developer,
    Kind::NsAdmin,
    Kind::PlatformAdmin,
];

/// Whose namespace (or group, registry user, webhook) a request is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The tenant the guest, developer and namespace administrator are of.
    Own,
    /// Another tenant's.
    Other,
}

fn client(kind: Kind) -> reqwest::Client {
    match kind {
        Kind::Anonymous => anonymous_client(),
        Kind::Stranger => client_as("stranger", PASSWORD),
        Kind::RegistryUser => client_as("robot", PASSWORD),
        Kind::Guest => client_as("guest", PASSWORD),
        Kind::Developer => client_as("developer", PASSWORD),
        Kind::NsAdmin => client_as("nsadmin", PASSWORD),
        Kind::PlatformAdmin => client_as("admin", ADMIN_PASSWORD),
    }
}

/// Whether `kind` may call an operation that declares `needs`, on `scope`.
fn api_allows(needs: &str, kind: Kind, scope: Scope) -> bool {
    use Kind::*;
    let own = scope == Scope::Own;
    let account = !matches!(kind, Anonymous | RegistryUser);
    if kind == PlatformAdmin {
        return true;
    }
    match needs {
        "anyone" => kind != RegistryUser,
        "account" => account,
        "owner" | "platform-admin" | "group-admin" => false,
        "namespace-pull" | "namespace-member" => own && matches!(kind, Guest | Developer | NsAdmin),
        "namespace-delete" => own && matches!(kind, Developer | NsAdmin),
        "namespace-admin" | "image-manage" | "webhook-scope" | "registry-user-owner" => {
            own && kind == NsAdmin
        }
        "group-member" => own && matches!(kind, Guest | Developer),
        "each-item" => account,
        other => panic!("an access this test does not know: {other}"),
    }
}

/// For a batch delete, whether `kind` may delete any of its items (then it
/// is a write, for phase 2).
fn deletes_any(path: &str, kind: Kind, scope: Scope) -> bool {
    match path {
        // Items `own` and `theirs`: namespace administrators.
        "/api/v1/namespaces/batch-delete" => matches!(kind, Kind::NsAdmin | Kind::PlatformAdmin),
        // Items `own/app` and `theirs/app`.
        "/api/v1/repositories/batch-delete" => v2_allows(Action::Delete, kind, Scope::Own),
        _ => v2_allows(Action::Delete, kind, scope),
    }
}

/// Whether `kind` may take `action` on a repository of `scope`.
fn v2_allows(action: Action, kind: Kind, scope: Scope) -> bool {
    use Kind::*;
    if kind == PlatformAdmin {
        return true;
    }
    scope == Scope::Own
        && match action {
            Action::Pull => matches!(kind, Guest | Developer | NsAdmin),
            Action::Push | Action::Delete => matches!(kind, Developer | NsAdmin),
        }
}

/// The ids of what the world holds, by scope where it has one.
struct World {
    t: TestServer,
    hook: [i64; 2],
    delivery: [i64; 2],
    rule: [i64; 2],
    gc_run: i64,
    integrity_run: i64,
    replication_rule: i64,
    replication_run: i64,
    token: i64,
    mapping: i64,
    layer: String,
    manifest: Vec<u8>,
    upload: [String; 2],
}

fn at(scope: Scope) -> usize {
    match scope {
        Scope::Own => 0,
        Scope::Other => 1,
    }
}

async fn ok(t: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let (s, v) = t.api(method.clone(), path, body).await;
    assert!(s.is_success(), "{method} {path}: {s} {v}");
    v
}

/// Two tenants: group `ours` (owner; guest and developer by group role,
/// nsadmin by a namespace role on `own`) with namespaces `own` and
/// `own-mirror`; group `theirs` (rival) with `theirs` and `theirs-mirror`.
/// Each has an image with two tags, a webhook with a delivery, a
/// synchronization rule and an upload session; `robot` (nsadmin's) has no
/// grant; the platform has a webhook, a remote, a replication rule and
/// run, a collection run and a token of admin's.
async fn world(b: Backend) -> World {
    let t = TestServer::start_with(b, |c| {
        c.jobs.concurrency = 0;
        // A provider (never contacted) for group mappings to name.
        c.identity.oidc = vec![berth::config::OidcProviderSection {
            name: "corp".into(),
            issuer: "https://idp.example.com".into(),
            client_id: "berth".into(),
            ..Default::default()
        }];
    })
    .await;
    for name in [
        "stranger",
        "guest",
        "developer",
        "nsadmin",
        "owner",
        "rival",
    ] {
        create_account(&t, name).await;
    }
    for (group, admin) in [("ours", "owner"), ("theirs", "rival")] {
        ok(
            &t,
            Method::POST,
            "/api/v1/project-groups",
            Some(json!({"name": group, "admin": admin})),
        )
        .await;
        for ns in [
            group.replace("ours", "own"),
            format!("{}-mirror", group.replace("ours", "own")),
        ] {
            ok(
                &t,
                Method::POST,
                "/api/v1/namespaces",
                Some(json!({"name": ns, "project_group": group})),
            )
            .await;
        }
    }
    for (account, role) in [("guest", "guest"), ("developer", "developer")] {
        ok(
            &t,
            Method::PUT,
            &format!("/api/v1/project-groups/ours/members/{account}"),
            Some(json!({"role": role})),
        )
        .await;
    }
    ok(
        &t,
        Method::PUT,
        "/api/v1/namespaces/own/members/nsadmin",
        Some(json!({"role": "admin"})),
    )
    .await;
    // (It synchronizes own's images to own-mirror, where it may push.)
    ok(
        &t,
        Method::PUT,
        "/api/v1/namespaces/own-mirror/members/nsadmin",
        Some(json!({"role": "developer"})),
    )
    .await;
    for (user, owner) in [("robot", "nsadmin"), ("their-robot", "rival")] {
        ok(
            &t,
            Method::POST,
            "/api/v1/registry-users",
            Some(json!({"name": user, "password": PASSWORD, "owner": owner})),
        )
        .await;
        ok(
            &t,
            Method::POST,
            &format!("/api/v1/registry-users/{user}/trust-rules"),
            Some(
                json!({"name": format!("{user}-rule"), "issuer": "https://ci.example.com",
                        "audience": "berth", "subject": "*"}),
            ),
        )
        .await;
    }
    let layer = b"a layer both tenants have".to_vec();
    let mut manifest = Vec::new();
    let mut hook = [0; 2];
    let mut delivery = [0; 2];
    let mut rule = [0; 2];
    let mut upload = [String::new(), String::new()];
    for (i, ns) in ["own", "theirs"].into_iter().enumerate() {
        let repo = format!("{ns}/app");
        let (_, m) = t.push_image(&repo, "v1", &layer).await;
        manifest = m.clone();
        let r = t.put_manifest(&repo, "v2", OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v = ok(&t, Method::POST, &format!("/api/v1/namespaces/{ns}/webhooks"),
            Some(json!({"name": "hook", "url": "https://hooks.example.com/berth", "events": ["image.push"]}))).await;
        hook[i] = v["id"].as_i64().expect("id");
        ok(
            &t,
            Method::POST,
            &format!("/api/v1/webhooks/{}/ping", hook[i]),
            None,
        )
        .await;
        let v = ok(
            &t,
            Method::GET,
            &format!("/api/v1/webhooks/{}/deliveries", hook[i]),
            None,
        )
        .await;
        delivery[i] = v["items"][0]["id"]
            .as_i64()
            .or_else(|| v[0]["id"].as_i64())
            .expect("delivery");
        let v = ok(
            &t,
            Method::POST,
            &format!("/api/v1/namespaces/{ns}/repositories/app/sync-rules"),
            Some(json!({"target_namespace": format!("{ns}-mirror"), "target_region": "default"})),
        )
        .await;
        rule[i] = v["id"].as_i64().expect("rule");
        let loc = t.start_upload(&repo).await;
        upload[i] = loc
            .rsplit('/')
            .next()
            .expect("id")
            .split('?')
            .next()
            .expect("id")
            .to_owned();
    }
    let v = ok(&t, Method::POST, "/api/v1/webhooks",
        Some(json!({"name": "phook", "url": "https://hooks.example.com/platform", "events": ["gc.run"]}))).await;
    assert!(v["id"].is_i64(), "{v}");
    ok(
        &t,
        Method::POST,
        "/api/v1/remotes",
        Some(json!({"name": "dr", "url": "http://127.0.0.1:9"})),
    )
    .await;
    let v = ok(
        &t,
        Method::POST,
        "/api/v1/replication/rules",
        Some(replication_rule("to-dr")),
    )
    .await;
    let replication_rule = v["id"].as_i64().expect("id");
    let v = ok(
        &t,
        Method::POST,
        &format!("/api/v1/replication/rules/{replication_rule}/run"),
        None,
    )
    .await;
    let replication_run = v["run"].as_i64().expect("run");
    let v = ok(
        &t,
        Method::POST,
        "/api/v1/gc/runs",
        Some(json!({"dry_run": true})),
    )
    .await;
    let gc_run = v["id"].as_i64().expect("gc run");
    let v = ok(&t, Method::POST, "/api/v1/integrity/runs", Some(json!({}))).await;
    let integrity_run = v["id"].as_i64().expect("integrity run");
    // An advisory, for the questions asked about one.
    let v = ok(
        &t,
        Method::POST,
        "/api/v1/advisories",
        Some(json!({"advisories": [{"id": "OSV-1", "modified": "2026-01-01T00:00:00Z"}]})),
    )
    .await;
    assert_eq!(v["imported"], 1, "{v}");
    let v = ok(
        &t,
        Method::POST,
        "/api/v1/tokens",
        Some(json!({"name": "admin-token"})),
    )
    .await;
    let token = v["token"]["id"]
        .as_i64()
        .or_else(|| v["id"].as_i64())
        .expect("token");
    let v = ok(
        &t,
        Method::POST,
        "/api/v1/group-mappings",
        Some(json!({"origin": "oidc:corp", "group": "admins", "platform_admin": true})),
    )
    .await;
    let mapping = v["id"].as_i64().expect("mapping");
    World {
        t,
        mapping,
        hook,
        delivery,
        rule,
        gc_run,
        integrity_run,
        replication_rule,
        replication_run,
        token,
        layer: sha256(&layer),
        manifest,
        upload,
    }
}

fn replication_rule(name: &str) -> Value {
    json!({"name": name, "direction": "push", "remote": "dr", "trigger": "manual",
           "filters": {"repositories": {"include": ["own/*"]}}, "destination": "backup"})
}

/// The path of an operation with its parameters filled for `scope`.
fn fill(w: &World, path: &str, scope: Scope) -> String {
    let i = at(scope);
    let (ns, group, user) = match scope {
        Scope::Own => ("own", "ours", "robot"),
        Scope::Other => ("theirs", "theirs", "their-robot"),
    };
    let id = if path.starts_with("/api/v1/advisories/") {
        return path.replace("{id}", "OSV-1");
    } else if path.starts_with("/api/v1/gc/") {
        w.gc_run
    } else if path.starts_with("/api/v1/integrity/") {
        w.integrity_run
    } else if path.starts_with("/api/v1/replication/rules/") {
        w.replication_rule
    } else if path.starts_with("/api/v1/replication/runs/") {
        w.replication_run
    } else if path.starts_with("/api/v1/tokens/") {
        w.token
    } else if path.starts_with("/api/v1/group-mappings/") {
        w.mapping
    } else if path.starts_with("/api/v1/webhooks/") {
        w.hook[i]
    } else {
        w.rule[i]
    };
    let name = if path.starts_with("/api/v1/remotes/") {
        "dr"
    } else {
        user
    };
    path.replace("{ns}", ns)
        .replace("{group}", group)
        .replace("{user}", user)
        .replace("{name}", name)
        .replace("{repo}", "app")
        .replace("{tag}", "v2")
        .replace("{digest}", &sha256(&w.manifest))
        .replace("{rule}", &format!("{user}-rule"))
        .replace("{account}", "stranger")
        .replace("{delivery}", &w.delivery[i].to_string())
        .replace("{id}", &id.to_string())
}

/// Whether an operation's path names something of a tenant.
fn scoped(path: &str) -> bool {
    [
        "{ns}",
        "{group}",
        "{user}",
        "/registry-users/{name}",
        "/webhooks/{id}",
        "/sync-records",
    ]
    .iter()
    .any(|p| path.contains(p))
}

/// A valid body for an operation (so refusals are about access, not form).
fn body(method: &str, path: &str, scope: Scope) -> Option<Value> {
    let ns = if scope == Scope::Own { "own" } else { "theirs" };
    Some(match (method, path) {
        ("post", "/api/v1/accounts") => json!({"name": "newcomer", "password": PASSWORD}),
        ("patch", "/api/v1/accounts/me") => json!({}),
        ("patch", "/api/v1/accounts/{account}") => json!({"disabled": false}),
        ("post", "/api/v1/gc/runs") => json!({"dry_run": true}),
        ("post", "/api/v1/group-mappings") => {
            json!({"origin": "oidc:corp", "group": "devs", "project_group": "ours", "role": "guest"})
        }
        ("post", "/api/v1/group-mappings/preview") => {
            json!({"origin": "oidc:corp", "groups": ["devs"]})
        }
        ("post", "/api/v1/trust-rules/test") => json!({"token": "a.b.c"}),
        ("put", "/api/v1/namespaces/{ns}/signature-policy")
        | ("put", "/api/v1/platform/signature-policy") => json!({"mode": "off"}),
        ("put", "/api/v1/namespaces/{ns}/vulnerability-policy")
        | ("put", "/api/v1/platform/vulnerability-policy") => {
            json!({"mode": "off", "severity": "critical"})
        }
        ("post", "/api/v1/namespaces") => json!({"name": "made-here"}),
        ("post", "/api/v1/namespaces/batch-delete") => json!({"names": ["own", "theirs"]}),
        ("patch", "/api/v1/namespaces/{ns}") => json!({"description": "changed"}),
        ("put", "/api/v1/namespaces/{ns}/grants/{user}") => json!({"pull": true, "push": false}),
        ("put", "/api/v1/namespaces/{ns}/members/{account}") => json!({"role": "guest"}),
        ("put", "/api/v1/namespaces/{ns}/permissions/{repo}/{account}") => {
            json!({"permission": "read"})
        }
        ("put", "/api/v1/namespaces/{ns}/policies") => json!({"immutable_tags": ["keep-*"]}),
        ("put", "/api/v1/namespaces/{ns}/region-copies") => json!({"regions": null}),
        ("put", "/api/v1/namespaces/{ns}/replication") => json!({"regions": null}),
        ("post", "/api/v1/namespaces/{ns}/repositories/batch-delete") => json!({"names": ["app"]}),
        ("post", "/api/v1/namespaces/{ns}/repositories/{repo}/sync") => json!({"tags": ["v1"]}),
        ("post", "/api/v1/namespaces/{ns}/repositories/{repo}/sync-rules") => {
            json!({"target_namespace": format!("{ns}-mirror"), "target_region": "default", "overwrite": true})
        }
        ("post", "/api/v1/namespaces/{ns}/repositories/{repo}/tags/batch-delete") => {
            json!({"names": ["v2"]})
        }
        ("post", "/api/v1/namespaces/{ns}/retention/run") => json!({"dry_run": true}),
        ("post", "/api/v1/namespaces/{ns}/webhooks") | ("post", "/api/v1/webhooks") => {
            json!({"name": "another", "url": "https://hooks.example.com/other", "events": ["image.push"]})
        }
        ("post", "/api/v1/project-groups") => json!({"name": "newgroup"}),
        ("patch", "/api/v1/project-groups/{group}") => json!({"namespace_limit": 20}),
        ("put", "/api/v1/project-groups/{group}/members/{account}") => json!({"role": "guest"}),
        ("post", "/api/v1/registry-users") => json!({"name": "newbot", "password": PASSWORD}),
        ("patch", "/api/v1/registry-users/{name}") => json!({"enabled": true}),
        ("post", "/api/v1/registry-users/{name}/trust-rules") => {
            json!({"name": format!("{ns}-another-rule"), "issuer": "https://ci.example.com",
                   "audience": "berth", "subject": "*"})
        }
        ("post", "/api/v1/remotes") => json!({"name": "dr2", "url": "http://127.0.0.1:9"}),
        ("patch", "/api/v1/remotes/{name}") => json!({"insecure_skip_verify": false}),
        ("post", "/api/v1/replication/rules") => replication_rule("another"),
        ("put", "/api/v1/replication/rules/{id}") => replication_rule("to-dr"),
        ("post", "/api/v1/repositories/batch-delete") => {
            json!({"names": ["own/app", "theirs/app"]})
        }
        ("post", "/api/v1/session") => json!({"username": "stranger", "password": PASSWORD}),
        ("post", "/api/v1/tokens") => json!({"name": "another"}),
        ("patch", "/api/v1/webhooks/{id}") => json!({"enabled": true}),
        _ => return None,
    })
}

/// Query parameters an operation needs to mean what the test means.
fn query(path: &str, scope: Scope) -> &'static str {
    match (path, scope) {
        ("/api/v1/sync-records", Scope::Own) => "?namespace=own",
        ("/api/v1/sync-records", Scope::Other) => "?namespace=theirs",
        ("/api/v1/images/by-package", _) => "?name=openssl",
        _ => "",
    }
}

async fn send(
    w: &World,
    kind: Kind,
    method: &str,
    path: &str,
    scope: Scope,
) -> (StatusCode, String) {
    let url =
        w.t.url(&format!("{}{}", fill(w, path, scope), query(path, scope)));
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    let mut req = client(kind).request(method.clone(), url);
    if let Some(b) = body(&method.as_str().to_ascii_lowercase(), path, scope) {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let s = r.status();
    (s, r.text().await.unwrap_or_default())
}

/// What a refused request must look like. Reads anonymous callers may
/// make of public namespaces answer a private one as not found.
fn assert_refused(kind: Kind, needs: &str, what: &str, status: StatusCode, body: &str) {
    if kind == Kind::Anonymous && needs == "namespace-pull" {
        assert_eq!(status, StatusCode::NOT_FOUND, "{what}: {body}");
    } else if kind == Kind::Anonymous {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    } else {
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
            "{what} must be refused: {status} {body}"
        );
    }
}

/// What the world holds, as the platform administrator sees it.
async fn snapshot(w: &World) -> Vec<String> {
    let t = &w.t;
    let mut out = Vec::new();
    for path in [
        "/api/v1/namespaces?per_page=100",
        "/api/v1/namespaces/own/repositories/app/tags",
        "/api/v1/namespaces/theirs/repositories/app/tags",
        "/api/v1/namespaces/own/members",
        "/api/v1/namespaces/theirs/members",
        "/api/v1/namespaces/own/grants",
        "/api/v1/namespaces/own/permissions",
        "/api/v1/namespaces/own/policies",
        "/api/v1/namespaces/theirs/policies",
        "/api/v1/namespaces/own/webhooks",
        "/api/v1/namespaces/theirs/webhooks",
        "/api/v1/namespaces/own/repositories/app/sync-rules",
        "/api/v1/namespaces/theirs/repositories/app/sync-rules",
        "/api/v1/project-groups/ours",
        "/api/v1/project-groups/theirs",
        "/api/v1/registry-users",
        "/api/v1/remotes",
        "/api/v1/trust-rules",
        "/api/v1/group-mappings",
        "/api/v1/replication/rules",
        "/api/v1/webhooks",
        "/api/v1/accounts",
        "/api/v1/tokens",
    ] {
        let (s, v) = t.api(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        // Times and counters that reads move are not what is compared.
        let mut v = v;
        strip(&mut v);
        out.push(format!("{path} {v}"));
    }
    out
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in [
                "last_used",
                "last_pulled",
                "pulls",
                "pull_count",
                "updated",
                "updated_at",
                "used_bytes",
            ] {
                m.remove(k);
            }
            m.values_mut().for_each(strip);
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

/// The /v2 requests of every endpoint on `scope`'s repository.
fn v2_requests(w: &World, scope: Scope) -> Vec<(Method, String, Option<Vec<u8>>)> {
    let repo = if scope == Scope::Own {
        "own/app"
    } else {
        "theirs/app"
    };
    let other = if scope == Scope::Own {
        "theirs/app"
    } else {
        "own/app"
    };
    let id = &w.upload[at(scope)];
    let m = sha256(&w.manifest);
    let layer = &w.layer;
    vec![
        (Method::GET, "/v2/".into(), None),
        (Method::GET, "/v2/_catalog".into(), None),
        (Method::GET, format!("/v2/{repo}/tags/list"), None),
        (Method::GET, format!("/v2/{repo}/manifests/v1"), None),
        (Method::HEAD, format!("/v2/{repo}/manifests/{m}"), None),
        (
            Method::PUT,
            format!("/v2/{repo}/manifests/v3"),
            Some(w.manifest.clone()),
        ),
        (Method::DELETE, format!("/v2/{repo}/manifests/v2"), None),
        (Method::GET, format!("/v2/{repo}/blobs/{layer}"), None),
        (Method::HEAD, format!("/v2/{repo}/blobs/{layer}"), None),
        (Method::DELETE, format!("/v2/{repo}/blobs/{layer}"), None),
        (Method::POST, format!("/v2/{repo}/blobs/uploads/"), None),
        (
            Method::POST,
            format!("/v2/{repo}/blobs/uploads/?mount={layer}&from={other}"),
            None,
        ),
        (Method::GET, format!("/v2/{repo}/blobs/uploads/{id}"), None),
        (
            Method::PATCH,
            format!("/v2/{repo}/blobs/uploads/{id}"),
            Some(b"more".to_vec()),
        ),
        (
            Method::PUT,
            format!("/v2/{repo}/blobs/uploads/{id}?digest={}", sha256(b"more")),
            None,
        ),
        (
            Method::DELETE,
            format!("/v2/{repo}/blobs/uploads/{id}"),
            None,
        ),
        (Method::GET, format!("/v2/{repo}/referrers/{m}"), None),
    ]
}

/// Whether `kind` may make a /v2 request, from what it declares.
fn v2_expected(endpoint: &Endpoint, kind: Kind, scope: Scope) -> bool {
    match endpoint.access() {
        Access::Base | Access::Catalog => kind != Kind::Anonymous,
        Access::Repository(needed) => needed.iter().all(|(_, a)| v2_allows(*a, kind, scope)),
    }
}

fn parse_v2(method: &Method, url: &str) -> Endpoint {
    let (path, query) = url
        .split_once('?')
        .map_or((url, None), |(p, q)| (p, Some(q)));
    Endpoint::parse(method, path, query).expect("a /v2 endpoint")
}

async fn send_v2(
    w: &World,
    kind: Kind,
    method: &Method,
    url: &str,
    body: &Option<Vec<u8>>,
) -> (StatusCode, String) {
    let mut req = client(kind).request(method.clone(), w.t.url(url));
    if let Some(b) = body {
        req = req.body(b.clone());
        if url.contains("/manifests/") {
            req = req.header("content-type", OCI_MANIFEST);
        }
    }
    let r = req.send().await.expect("request");
    let s = r.status();
    (s, r.text().await.unwrap_or_default())
}

async fn every_operation_refuses_whoever_it_does_not_declare(b: Backend) {
    let w = Box::pin(world(b)).await;
    let (s, doc) = w.t.api(Method::GET, "/api/v1/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let needs = op["x-berth-access"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} declares no access"));
            operations.push((method.clone(), path.clone(), needs.to_owned()));
        }
    }
    assert!(operations.len() >= 90, "{} operations", operations.len());
    let before = snapshot(&w).await;

    // Phase 1: every refused request, and every allowed read.
    let mut tried = 0;
    let mut writes = Vec::new();
    for (method, path, needs) in &operations {
        let scopes: &[Scope] = if scoped(path) {
            &[Scope::Own, Scope::Other]
        } else {
            &[Scope::Own]
        };
        for &scope in scopes {
            for kind in KINDS {
                let allowed = api_allows(needs, kind, scope);
                let what = format!(
                    "{kind:?} {} {} ({needs}, {scope:?})",
                    method.to_uppercase(),
                    fill(&w, path, scope)
                );
                let batch = needs == "each-item";
                if allowed && method != "get" && (!batch || deletes_any(path, kind, scope)) {
                    writes.push((method.clone(), path.clone(), scope, kind));
                    continue;
                }
                let (status, body) = send(&w, kind, method, path, scope).await;
                tried += 1;
                assert!(status.as_u16() < 500, "{what}: {status} {body}");
                if needs == "anyone" && kind == Kind::RegistryUser {
                    // What anonymous callers may do, a registry user's
                    // credentials may or may not be accepted for: either
                    // way it gets no more.
                    continue;
                }
                if allowed && batch {
                    // Every item refused (or the whole, for a namespace
                    // the caller does not see).
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    assert!(
                        (status.is_success() && v["deleted"] == json!([]))
                            || status == StatusCode::FORBIDDEN
                            || status == StatusCode::NOT_FOUND,
                        "{what}: every item must be refused: {status} {body}"
                    );
                } else if allowed {
                    assert!(
                        status.is_success(),
                        "{what} must be let in: {status} {body}"
                    );
                } else {
                    assert_refused(kind, needs, &what, status, &body);
                }
            }
        }
    }
    let mut v2_writes = Vec::new();
    let mut kinds_seen = BTreeSet::new();
    for scope in [Scope::Own, Scope::Other] {
        for (method, url, body) in v2_requests(&w, scope) {
            let endpoint = parse_v2(&method, &url);
            kinds_seen.insert(endpoint.kind());
            for kind in KINDS {
                let allowed = v2_expected(&endpoint, kind, scope);
                let what = format!("{kind:?} {method} {url} ({scope:?})");
                let read = method == Method::GET || method == Method::HEAD;
                if allowed && !read {
                    v2_writes.push((method.clone(), url.clone(), body.clone(), kind));
                    continue;
                }
                let (status, text) = send_v2(&w, kind, &method, &url, &body).await;
                tried += 1;
                assert!(status.as_u16() < 500, "{what}: {status} {text}");
                if allowed {
                    assert!(
                        status.is_success() || status == StatusCode::NOT_MODIFIED,
                        "{what} must be let in: {status} {text}"
                    );
                } else {
                    assert_refused(kind, "v2", &what, status, &text);
                }
            }
        }
    }
    let all: BTreeSet<&str> = Endpoint::KINDS.iter().copied().collect();
    assert_eq!(kinds_seen, all, "every /v2 endpoint is tried");
    // What the stranger's catalog lists: neither tenant's repositories.
    let (_, catalog) = send_v2(&w, Kind::Stranger, &Method::GET, "/v2/_catalog", &None).await;
    assert!(
        !catalog.contains("own/app") && !catalog.contains("theirs/app"),
        "{catalog}"
    );
    assert_eq!(
        snapshot(&w).await,
        before,
        "refused requests changed nothing"
    );
    eprintln!("phase 1: {tried} requests");

    // Phase 2: every allowed write, once, by the least privileged caller
    // allowed; deletions last, namespaces' last of all.
    let mut once = BTreeSet::new();
    writes.retain(|(m, p, s, _)| once.insert((m.clone(), p.clone(), at(*s))));
    writes.sort_by_key(|(m, p, _, _)| {
        (
            m == "delete",
            p == "/api/v1/namespaces/{ns}" || p.ends_with("batch-delete"),
        )
    });
    for (method, path, scope, kind) in writes {
        let what = format!(
            "{kind:?} {} {}",
            method.to_uppercase(),
            fill(&w, &path, scope)
        );
        let (status, body) = send(&w, kind, &method, &path, scope).await;
        assert!(status.as_u16() < 500, "{what}: {status} {body}");
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{what} must be let in: {status} {body}"
        );
    }
    let mut once = BTreeSet::new();
    v2_writes.retain(|(m, u, _, _)| once.insert((m.clone(), u.clone())));
    for (method, url, body, kind) in v2_writes {
        let what = format!("{kind:?} {method} {url}");
        let (status, text) = send_v2(&w, kind, &method, &url, &body).await;
        assert!(status.as_u16() < 500, "{what}: {status} {text}");
        assert!(
            status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            "{what} must be let in: {status} {text}"
        );
    }
}
