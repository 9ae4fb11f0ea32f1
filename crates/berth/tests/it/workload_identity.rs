//! Workload identity against a real OpenID provider (npm's
//! `oidc-provider`): a CI job's JWT, minted by the provider with the
//! job's repository and ref as claims, logs in as the registry user a
//! trust rule names, with that user's grants and nothing more. Refused:
//! tokens of other jobs, tampered or unsigned tokens, unknown issuers;
//! the issuer's key rotation is followed; an outage refuses only what
//! needs the issuer; every exchange is audited with the claims that
//! matched. The trust rules are managed by the tenant that owns the
//! registry user.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::cli::{docker_login, host, run, stderr};
use crate::common::oidc::{ci_client, OidcProvider};
use crate::common::{anonymous_client, client_as, create_account, Backend, TestServer};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

async fn provider() -> OidcProvider {
    OidcProvider::start(
        json!([
            ci_client("ci-main", "team/app", "refs/heads/main"),
            ci_client("ci-feature", "team/app", "refs/heads/feature"),
            ci_client("ci-elsewhere", "other/app", "refs/heads/main"),
        ]),
        json!({}),
    )
    .await
}

/// A tenant (`owner`) with a namespace `team`, a registry user `ci-bot`
/// that may push there, and a trust rule for the provider's main-branch
/// jobs of `team/app`.
async fn tenant(t: &TestServer, issuer: &str) -> reqwest::Client {
    let owner = create_account(t, "owner").await;
    for (method, path, body) in [
        (Method::POST, "/api/v1/namespaces", json!({"name": "team"})),
        (
            Method::POST,
            "/api/v1/registry-users",
            json!({"name": "ci-bot", "password": "a-long-password-for-ci"}),
        ),
        (
            Method::PUT,
            "/api/v1/namespaces/team/grants/ci-bot",
            json!({"pull": true, "push": true}),
        ),
        (
            Method::POST,
            "/api/v1/registry-users/ci-bot/trust-rules",
            json!({"name": "team-app-main", "issuer": issuer, "audience": "berth",
                   "subject": "ci-*",
                   "claims": {"repository": "team/app", "ref": "refs/heads/main"}}),
        ),
    ] {
        let (s, v) = t.api_as(&owner, method, path, Some(body)).await;
        assert!(s.is_success(), "{path}: {s} {v}");
    }
    owner
}

async fn token_as(t: &TestServer, user: &str, secret: &str, scope: &str) -> (StatusCode, Value) {
    let r = client_as(user, secret)
        .get(t.url(&format!(
            "/auth/token?service=berth&offline_token=true&scope={scope}"
        )))
        .send()
        .await
        .expect("token");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn message(v: &Value) -> String {
    v["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A JWT with its payload changed (the signature no longer fits).
fn tampered(jwt: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let parts: Vec<&str> = jwt.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["ref"] = json!("refs/heads/main");
    claims["repository"] = json!("team/app");
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{body}.{}", parts[0], parts[2])
}

/// The same claims, unsigned (`alg: none`).
fn unsigned(jwt: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let parts: Vec<&str> = jwt.split('.').collect();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    format!("{header}.{}.", parts[1])
}

async fn a_ci_job_pushes_with_its_jwt_and_nothing_else_gets_in(backend: Backend) {
    let mut idp = provider().await;
    let t = TestServer::start_with(backend, |c| c.identity.key_refresh_secs = 0).await;
    let owner = tenant(&t, &idp.issuer).await;

    // The main-branch job: a registry token with the user's grants, no
    // refresh token (it must end when the JWT does).
    let jwt = idp.client_token("ci-main", "ci-main-secret").await;
    let (s, v) = token_as(&t, "ci-bot", &jwt, "repository:team/app:push,pull").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["scope"], "repository:team/app:pull,push");
    assert!(v.get("refresh_token").is_none(), "{v}");
    let ci = client_as("ci-bot", &jwt);
    t.push_image_as(&ci, "team/app", "v1", b"built by CI").await;
    // Only what the registry user may: nothing outside its grants.
    let (s, v) = token_as(&t, "ci-bot", &jwt, "repository:elsewhere/app:push,pull").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["scope"], "repository:elsewhere/app:", "no actions: {v}");

    // Other jobs, and forged tokens, are refused with the reason.
    for (client, why) in [
        ("ci-feature", "matches no trust rule"),
        ("ci-elsewhere", "matches no trust rule"),
    ] {
        let other = idp.client_token(client, &format!("{client}-secret")).await;
        let (s, v) = token_as(&t, "ci-bot", &other, "repository:team/app:pull").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{client}: {v}");
        assert!(message(&v).contains(why), "{client}: {v}");
        if client == "ci-feature" {
            let (s, v) =
                token_as(&t, "ci-bot", &tampered(&other), "repository:team/app:pull").await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
            assert!(message(&v).contains("signature does not verify"), "{v}");
        }
    }
    let (s, v) = token_as(&t, "ci-bot", &unsigned(&jwt), "repository:team/app:pull").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(message(&v).contains("algorithm \"none\""), "{v}");
    // The JWT is not a password of any other user.
    let (s, _) = token_as(&t, "owner", &jwt, "repository:team/app:pull").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The administrators' dry run names the rule, or why none; the owner
    // (no platform administrator) may not use it.
    let feature = idp.client_token("ci-feature", "ci-feature-secret").await;
    for (token, matches, needle) in [
        (&jwt, true, "ref=refs/heads/main repository=team/app"),
        (&feature, false, "matches no trust rule"),
        (&tampered(&feature), false, "signature does not verify"),
        (&"not-a-jwt".to_owned(), false, "malformed token"),
    ] {
        let (s, v) = t
            .api(
                Method::POST,
                "/api/v1/trust-rules/test",
                Some(json!({"token": token})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["matches"], matches, "{v}");
        assert!(
            v["detail"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
        if matches {
            assert_eq!(
                (&v["rule"], &v["registry_user"]),
                (&json!("team-app-main"), &json!("ci-bot"))
            );
        }
    }
    let (s, _) = t
        .api_as(
            &owner,
            Method::POST,
            "/api/v1/trust-rules/test",
            Some(json!({"token": jwt})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // RFC 8693 token exchange, no user named: the rule decides.
    let r = anonymous_client()
        .post(t.url("/auth/token"))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", &jwt),
            ("subject_token_type", JWT_TYPE),
            ("service", "berth"),
            ("scope", "repository:team/app:pull"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "repository:team/app:pull");
    let pulled = reqwest::Client::new()
        .get(t.url("/v2/team/app/manifests/v1"))
        .bearer_auth(v["access_token"].as_str().unwrap())
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), StatusCode::OK);
    let r = anonymous_client()
        .post(t.url("/auth/token"))
        .form(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", "not-a-jwt"),
            ("subject_token_type", JWT_TYPE),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Key rotation: tokens signed with the provider's new key verify.
    idp.restart().await;
    let rotated = idp.client_token("ci-main", "ci-main-secret").await;
    assert_ne!(
        rotated.split('.').next(),
        jwt.split('.').next(),
        "a new key id"
    );
    let (s, v) = token_as(&t, "ci-bot", &rotated, "repository:team/app:pull").await;
    assert_eq!(s, StatusCode::OK, "after rotation: {v}");

    // Outage: a token whose key is cached still works; one that needs the
    // issuer is answered 503 with the reason; accounts are unaffected.
    idp.stop().await;
    let (s, v) = token_as(&t, "ci-bot", &rotated, "repository:team/app:pull").await;
    assert_eq!(s, StatusCode::OK, "cached keys: {v}");
    let (s, v) = token_as(&t, "ci-bot", &jwt, "repository:team/app:pull").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(message(&v).contains("cannot be reached"), "{v}");
    let (s, _) = token_as(&t, "owner", "a-long-password", "repository:team/app:pull").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t.get("/readyz").await.status(), StatusCode::OK);

    // Every exchange is in the audit log with what matched.
    let (s, v) = t
        .api(Method::GET, "/api/v1/audit-log?per_page=200", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let entries = v["items"].as_array().expect("items").clone();
    let has = |action: &str, needle: &str| {
        entries.iter().any(|e| {
            e["action"] == action && e["detail"].as_str().unwrap_or_default().contains(needle)
        })
    };
    assert!(
        has("auth.workload", "rule=team-app-main")
            && has("auth.workload", "ref=refs/heads/main repository=team/app"),
        "{entries:#?}"
    );
    assert!(
        has("auth.failure", "workload identity token refused"),
        "{entries:#?}"
    );
    assert!(has("trust_rule.create", "user=ci-bot"), "{entries:#?}");

    // A disabled registry user, or a deleted rule, stops the exchange.
    let (s, v) = t
        .api_as(
            &owner,
            Method::PATCH,
            "/api/v1/registry-users/ci-bot",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = token_as(&t, "ci-bot", &rotated, "repository:team/app:pull").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(message(&v).contains("disabled"), "{v}");
    let (s, _) = t
        .api_as(
            &owner,
            Method::DELETE,
            "/api/v1/registry-users/ci-bot/trust-rules/team-app-main",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            "/api/v1/registry-users/ci-bot/trust-rules",
            None,
        )
        .await;
    assert_eq!((s, v), (StatusCode::OK, json!([])));
}

async fn trust_rules_belong_to_the_registry_users_owner(backend: Backend) {
    let idp = provider().await;
    let t = TestServer::start(backend).await;
    let owner = tenant(&t, &idp.issuer).await;
    let stranger = create_account(&t, "stranger").await;
    let rule = json!({"name": "sneaky", "issuer": idp.issuer, "audience": "berth", "subject": "*"});
    let (s, _) = t
        .api_as(
            &stranger,
            Method::POST,
            "/api/v1/registry-users/ci-bot/trust-rules",
            Some(rule.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .api_as(
            &stranger,
            Method::GET,
            "/api/v1/registry-users/ci-bot/trust-rules/team-app-main",
            None,
        )
        .await;
    assert!(
        s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
        "{s}"
    );
    let (s, _) = t
        .api_as(&stranger, Method::GET, "/api/v1/trust-rules", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Bad rules are refused as problems, with the reason.
    for (body, why) in [
        (
            json!({"name": "x1", "issuer": "http://idp.example.com", "audience": "berth", "subject": "*"}),
            "https",
        ),
        (
            json!({"name": "x2", "issuer": idp.issuer, "audience": "", "subject": "*"}),
            "audience",
        ),
        (
            json!({"name": "Bad Name", "issuer": idp.issuer, "audience": "berth", "subject": "*"}),
            "name",
        ),
        (
            json!({"name": "team-app-main", "issuer": idp.issuer, "audience": "berth", "subject": "*"}),
            "already exists",
        ),
    ] {
        let (s, v) = t
            .api_as(
                &owner,
                Method::POST,
                "/api/v1/registry-users/ci-bot/trust-rules",
                Some(body),
            )
            .await;
        assert!(
            s == StatusCode::BAD_REQUEST || s == StatusCode::CONFLICT,
            "{s} {v}"
        );
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(why),
            "{why}: {v}"
        );
    }
    let (s, v) = t.api(Method::GET, "/api/v1/trust-rules", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v[0]["name"], "team-app-main");
    assert_eq!(v[0]["claims"]["ref"], "refs/heads/main");

    // The console: the owner sees, adds and deletes rules; a stranger
    // cannot add one for someone else's registry user.
    let console = crate::common::oidc::Browser::default();
    console
        .submit(
            &t.url("/login"),
            &[("username", "owner"), ("password", "a-long-password")],
        )
        .await;
    let (_, _, page) = console.open(&t.url("/registry-users")).await;
    assert!(
        page.contains("team-app-main") && page.contains("refs/heads/main"),
        "{page}"
    );
    let token = crate::common::oidc::csrf(&page);
    let add = [
        ("_csrf", token.as_str()),
        ("registry_user", "ci-bot"),
        ("name", "tags"),
        ("issuer", idp.issuer.as_str()),
        ("audience", "berth"),
        ("subject", "ci-*"),
        ("claims", "ref=refs/tags/*\nrepository=team/app"),
    ];
    let (_, _, page) = console
        .submit(&t.url("/registry-users/trust-rules"), &add)
        .await;
    assert!(page.contains("Trust rule tags added"), "{page}");
    let (_, v) = t.api(Method::GET, "/api/v1/trust-rules", None).await;
    assert_eq!(v[0]["claims"]["ref"], "refs/tags/*", "by name: {v}");
    let (_, _, page) = console
        .submit(
            &t.url("/registry-users/ci-bot/trust-rules/tags/delete"),
            &[("_csrf", &token)],
        )
        .await;
    assert!(page.contains("Trust rule tags deleted"), "{page}");
    let intruder = crate::common::oidc::Browser::default();
    intruder
        .submit(
            &t.url("/login"),
            &[("username", "stranger"), ("password", "a-long-password")],
        )
        .await;
    let (_, _, page) = intruder.open(&t.url("/registry-users")).await;
    assert!(
        !page.contains("team-app-main"),
        "another tenant's rules are not shown"
    );
    let token = crate::common::oidc::csrf(&page);
    let mut add = add;
    add[0].1 = &token;
    let (_, _, page) = intruder
        .submit(&t.url("/registry-users/trust-rules"), &add)
        .await;
    assert!(page.contains("is not yours"), "{page}");
}

async fn rules_of_the_configuration_file_apply_and_stay_read_only(backend: Backend) {
    let idp = provider().await;
    let issuer = idp.issuer.clone();
    let t = TestServer::start_with(backend, |c| {
        c.identity.trust_rules = vec![berth::config::TrustRuleSection {
            name: "from-file".into(),
            issuer: issuer.clone(),
            audience: "berth".into(),
            subject: "ci-elsewhere".into(),
            claims: [("repository".to_owned(), "other/*".to_owned())].into(),
            registry_user: "ci-bot".into(),
        }];
    })
    .await;
    let owner = tenant(&t, &idp.issuer).await;
    let jwt = idp
        .client_token("ci-elsewhere", "ci-elsewhere-secret")
        .await;
    let (s, v) = token_as(&t, "ci-bot", &jwt, "repository:team/app:pull").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["scope"], "repository:team/app:pull");
    let (s, v) = t
        .api_as(
            &owner,
            Method::GET,
            "/api/v1/registry-users/ci-bot/trust-rules",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v[0]["name"].as_str(), v[0]["read_only"].as_bool()),
        (Some("from-file"), Some(true)),
        "{v}"
    );
    assert_eq!(v[1]["read_only"], false);
    let (s, v) = t
        .api_as(
            &owner,
            Method::DELETE,
            "/api/v1/registry-users/ci-bot/trust-rules/from-file",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("configuration file"),
        "{v}"
    );
    let (s, _) = t
        .api_as(
            &owner,
            Method::POST,
            "/api/v1/registry-users/ci-bot/trust-rules",
            Some(json!({"name": "from-file", "issuer": idp.issuer, "audience": "berth", "subject": "*"})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

backend_tests!(
    rules_of_the_configuration_file_apply_and_stay_read_only,
    a_ci_job_pushes_with_its_jwt_and_nothing_else_gets_in,
    trust_rules_belong_to_the_registry_users_owner
);

/// `docker login -u <registry user> -p <the job's JWT>` and a push, as a
/// CI job does it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_logs_in_with_a_jwt_and_pushes() {
    let idp = provider().await;
    let t = TestServer::start(Backend::Sqlite).await;
    tenant(&t, &idp.issuer).await;
    let jwt = idp.client_token("ci-main", "ci-main-secret").await;
    docker_login(&t, "ci-bot", &jwt).await;
    let image = format!("{}/team/app:from-ci", host(&t));
    let ctx = tempfile::tempdir().unwrap();
    crate::common::cli::docker_build(ctx.path(), &image, &[("built.txt", "by CI")]).await;
    let out = run("docker", &["push", &image]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run("docker", &["logout", &host(&t)]).await;
    assert!(out.status.success());
    let r = t.get("/v2/team/app/tags/list").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["tags"].as_array().unwrap().iter().any(|x| x == "from-ci"),
        "{v}"
    );
}
