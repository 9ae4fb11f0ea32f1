//! Credentials and sessions: a password change (console or registry),
//! disabling, or "sign out everywhere" revokes refresh tokens and console
//! sessions at once (on every node), personal API tokens are revoked all
//! at once, a password change made with a session or a token asks for the
//! current password; login throttling sees clients as /v2 does (behind
//! trusted proxies, IPv6 by /64) with a real per-name rate limit; and a
//! flood of password checks leaves room for an honest login.

use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

backend_tests!(
    a_password_change_revokes_refresh_tokens_and_other_sessions,
    disabling_and_signing_out_everywhere_revoke_everything,
    api_tokens_are_revoked_all_at_once,
    registry_user_password_changes_revoke_its_refresh_tokens,
    login_throttling_sees_clients_behind_trusted_proxies,
    an_honest_login_succeeds_during_a_flood,
);

/// A refresh token for `user` (what `docker login` keeps).
async fn refresh_token(t: &TestServer, user: &str, password: &str) -> String {
    let r = client_as(user, password)
        .get(t.url("/auth/token?service=berth&offline_token=true&client_id=test"))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    v["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned()
}

/// Exchange a refresh token for an access token: the status.
async fn refresh(t: &TestServer, token: &str) -> StatusCode {
    anonymous_client()
        .post(t.url("/auth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("service", "berth"),
            ("client_id", "test"),
            ("scope", "repository:x/y:pull"),
        ])
        .send()
        .await
        .expect("refresh")
        .status()
}

/// A console session: (cookie, CSRF token).
async fn session(t: &TestServer, user: &str, password: &str) -> (String, String) {
    let r = anonymous_client()
        .post(t.url("/api/v1/session"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = header(&r, "set-cookie")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let v: Value = r.json().await.expect("json");
    (cookie, v["csrf_token"].as_str().expect("csrf").to_owned())
}

async fn session_alive(t: &TestServer, cookie: &str) -> bool {
    let r = anonymous_client()
        .get(t.url("/api/v1/accounts/me"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("me");
    r.status() == StatusCode::OK
}

/// PATCH /api/v1/accounts/me with a session.
async fn update_me_with_session(
    t: &TestServer,
    (cookie, csrf): &(String, String),
    body: Value,
) -> (StatusCode, Value) {
    let r = anonymous_client()
        .patch(t.url("/api/v1/accounts/me"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .expect("patch");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn a_password_change_revokes_refresh_tokens_and_other_sessions(b: Backend) {
    let t = TestServer::start(b).await;
    create_account(&t, "dev").await;
    let before = refresh_token(&t, "dev", "a-long-password").await;
    assert_eq!(refresh(&t, &before).await, StatusCode::OK);
    let mine = session(&t, "dev", "a-long-password").await;
    let other = session(&t, "dev", "a-long-password").await;
    // Another node sees the same refresh token (PostgreSQL: one database).
    let node = match b {
        Backend::Sqlite => None,
        _ => Some(t.join(|_| {}).await),
    };
    if let Some(n) = &node {
        assert_eq!(refresh(n, &before).await, StatusCode::OK);
    }

    // With a session, the current password is asked for, and checked.
    let (s, v) =
        update_me_with_session(&t, &mine, json!({"console_password": "second-password"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or("")
            .contains("current_password"),
        "{v}"
    );
    let (s, v) = update_me_with_session(
        &t,
        &mine,
        json!({"console_password": "second-password", "current_password": "not-it-at-all"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        refresh(&t, &before).await,
        StatusCode::OK,
        "nothing changed yet"
    );
    let (s, v) = update_me_with_session(
        &t,
        &mine,
        json!({"console_password": "second-password", "current_password": "a-long-password"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // The refresh token issued before is refused, on every node at once;
    // the other session has ended; the one that asked goes on.
    assert_eq!(refresh(&t, &before).await, StatusCode::UNAUTHORIZED);
    if let Some(n) = &node {
        assert_eq!(refresh(n, &before).await, StatusCode::UNAUTHORIZED);
    }
    assert!(
        !session_alive(&t, &other.0).await,
        "the other session ended"
    );
    assert!(
        session_alive(&t, &mine.0).await,
        "the session that asked goes on"
    );
    // A token issued after the change works.
    let after = refresh_token(&t, "dev", "second-password").await;
    assert_eq!(refresh(&t, &after).await, StatusCode::OK);

    // The registry password too (here with HTTP Basic, which has just
    // given the password: no current_password needed).
    let basic = client_as("dev", "second-password");
    let (s, v) = t
        .api_as(
            &basic,
            Method::PATCH,
            "/api/v1/accounts/me",
            Some(json!({"registry_password": "registry-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(refresh(&t, &after).await, StatusCode::UNAUTHORIZED);
    assert!(!session_alive(&t, &mine.0).await, "Basic keeps no session");
    // An API token changing a password needs the current one too.
    let (s, v) = t
        .api_as(
            &basic,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pat = v["secret"].as_str().expect("secret").to_owned();
    let r = anonymous_client()
        .patch(t.url("/api/v1/accounts/me"))
        .bearer_auth(&pat)
        .json(&json!({"clear_registry_password": true}))
        .send()
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The console's form asks for it as well.
    let (cookie, csrf) = session(&t, "dev", "second-password").await;
    let console = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let post = |form: Vec<(&'static str, String)>| {
        console
            .post(t.url("/account/password"))
            .header("cookie", &cookie)
            .form(&form)
            .send()
    };
    let r = post(vec![
        ("_csrf", csrf.clone()),
        ("current_password", "wrong-one-here".into()),
        ("password", "third-password".into()),
    ])
    .await
    .expect("post");
    assert!(header(&r, "location").contains("error="), "refused");
    assert!(client_as("dev", "second-password")
        .get(t.url("/api/v1/accounts/me"))
        .send()
        .await
        .expect("me")
        .status()
        .is_success());
    let r = post(vec![
        ("_csrf", csrf),
        ("current_password", "second-password".into()),
        ("password", "third-password".into()),
    ])
    .await
    .expect("post");
    assert!(header(&r, "location").contains("notice="), "changed");
    assert!(session_alive(&t, &cookie).await);
}

async fn disabling_and_signing_out_everywhere_revoke_everything(b: Backend) {
    let t = TestServer::start(b).await;
    create_account(&t, "dev").await;
    let token = refresh_token(&t, "dev", "a-long-password").await;
    let one = session(&t, "dev", "a-long-password").await;
    let two = session(&t, "dev", "a-long-password").await;
    // Sign out everywhere, from one session: all end, this one too.
    let r = anonymous_client()
        .post(t.url("/api/v1/session/sign-out-everywhere"))
        .header("cookie", &one.0)
        .header("x-csrf-token", &one.1)
        .send()
        .await
        .expect("sign out");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(header(&r, "set-cookie").contains("Max-Age=0"));
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["sessions_ended"], 2, "{v}");
    assert!(!session_alive(&t, &one.0).await && !session_alive(&t, &two.0).await);
    assert_eq!(refresh(&t, &token).await, StatusCode::UNAUTHORIZED);
    // Logging in again works, and the password still does.
    let token = refresh_token(&t, "dev", "a-long-password").await;
    let three = session(&t, "dev", "a-long-password").await;

    // Disabling ends it all; enabling again revives nothing.
    let (s, v) = t
        .api(
            Method::PATCH,
            "/api/v1/accounts/dev",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!session_alive(&t, &three.0).await);
    assert_eq!(refresh(&t, &token).await, StatusCode::UNAUTHORIZED);
    let (s, _) = t
        .api(
            Method::PATCH,
            "/api/v1/accounts/dev",
            Some(json!({"disabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(!session_alive(&t, &three.0).await);
    assert_eq!(refresh(&t, &token).await, StatusCode::UNAUTHORIZED);
    assert!(audit_actions(&t)
        .await
        .contains(&"account.sign_out_everywhere".to_owned()));
}

async fn api_tokens_are_revoked_all_at_once(b: Backend) {
    let t = TestServer::start(b).await;
    let dev = create_account(&t, "dev").await;
    let mut secrets = Vec::new();
    for name in ["one", "two", "three"] {
        let (s, v) = t
            .api_as(
                &dev,
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        secrets.push(v["secret"].as_str().expect("secret").to_owned());
    }
    // Another account's token is not touched.
    let other = create_account(&t, "other").await;
    let (_, v) = t
        .api_as(
            &other,
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "keep"})),
        )
        .await;
    let kept = v["secret"].as_str().expect("secret").to_owned();
    let (s, v) = t.api_as(&dev, Method::DELETE, "/api/v1/tokens", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["revoked"], 3);
    for secret in &secrets {
        let r = anonymous_client()
            .get(t.url("/api/v1/accounts/me"))
            .bearer_auth(secret)
            .send()
            .await
            .expect("me");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = anonymous_client()
        .get(t.url("/api/v1/accounts/me"))
        .bearer_auth(&kept)
        .send()
        .await
        .expect("me");
    assert_eq!(r.status(), StatusCode::OK);
    let (_, v) = t.api_as(&dev, Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(v, json!([]));
}

async fn registry_user_password_changes_revoke_its_refresh_tokens(b: Backend) {
    let t = TestServer::start(b).await;
    let dev = create_account(&t, "dev").await;
    let (s, v) = t
        .api_as(
            &dev,
            Method::POST,
            "/api/v1/registry-users",
            Some(json!({"name": "dev-ci", "password": "robot-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let token = refresh_token(&t, "dev-ci", "robot-password").await;
    assert_eq!(refresh(&t, &token).await, StatusCode::OK);
    let (s, _) = t
        .api_as(
            &dev,
            Method::PATCH,
            "/api/v1/registry-users/dev-ci",
            Some(json!({"password": "another-robot-password"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(refresh(&t, &token).await, StatusCode::UNAUTHORIZED);
    let token = refresh_token(&t, "dev-ci", "another-robot-password").await;
    let (s, _) = t
        .api_as(
            &dev,
            Method::PATCH,
            "/api/v1/registry-users/dev-ci",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .api_as(
            &dev,
            Method::PATCH,
            "/api/v1/registry-users/dev-ci",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(refresh(&t, &token).await, StatusCode::UNAUTHORIZED);
}

/// A login as `user` through the API, forwarded for `client` by the proxy.
async fn api_login(t: &TestServer, client: &str, user: &str, password: &str) -> reqwest::Response {
    anonymous_client()
        .post(t.url("/api/v1/session"))
        .header("x-forwarded-for", client)
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .expect("login")
}

async fn login_throttling_sees_clients_behind_trusted_proxies(b: Backend) {
    // Berth behind a load balancer on loopback, as docs/deploy.md has it.
    let t = TestServer::start_with(b, |c| {
        c.network.trusted_proxies = vec!["127.0.0.1/32".into(), "::1/128".into()];
    })
    .await;
    // Six wrong passwords for admin from one client lock that client out
    // of admin, not everyone.
    for _ in 0..6 {
        let r = api_login(&t, "203.0.113.7", "admin", "wrong-password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = api_login(&t, "203.0.113.7", "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let r = api_login(&t, "198.51.100.9", "admin", ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK, "another client logs in");
    let r = anonymous_client()
        .post(t.url("/login"))
        .header("x-forwarded-for", "198.51.100.9")
        .form(&[("username", "admin"), ("password", ADMIN_PASSWORD)])
        .send()
        .await
        .expect("console login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "the console too");

    // 51 failures on any names from one client block that client only.
    // (Accounts not logged in just before: a verified login is kept for
    // a few seconds, and needs no check.)
    create_account(&t, "first").await;
    create_account(&t, "second").await;
    for i in 0..51 {
        api_login(&t, "203.0.113.8", &format!("nobody{i}"), "wrong-password").await;
    }
    let r = api_login(&t, "203.0.113.8", "first", "a-long-password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let r = api_login(&t, "198.51.100.10", "first", "a-long-password").await;
    assert_eq!(r.status(), StatusCode::OK);

    // IPv6 clients are one client per /64.
    for i in 0..6 {
        let r = api_login(
            &t,
            &format!("2001:db8:5:6::{i:x}"),
            "second",
            "wrong-password",
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let r = api_login(&t, "2001:db8:5:6:ffff::1", "second", "a-long-password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "same /64");
    let r = api_login(&t, "2001:db8:5:7::1", "second", "a-long-password").await;
    assert_eq!(r.status(), StatusCode::OK, "another /64");

    // One name guessed from many addresses: a real rate limit, answered
    // at once (not a sleep), short enough that the owner gets in.
    create_account(&t, "target").await;
    for i in 0..14 {
        let r = api_login(&t, &format!("192.0.2.{i}"), "target", "wrong-password").await;
        assert!(
            r.status() == StatusCode::UNAUTHORIZED || r.status() == StatusCode::TOO_MANY_REQUESTS,
            "{}",
            r.status()
        );
    }
    let started = Instant::now();
    let r = api_login(&t, "192.0.2.200", "target", "wrong-password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once"
    );
    let wait: u64 = header(&r, "retry-after").parse().expect("seconds");
    assert!((1..=2).contains(&wait), "{wait}");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let r = api_login(&t, "198.51.100.11", "target", "a-long-password").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Send `count` logins with unknown names, `at_once` at a time, from
/// `client(i)`; returns how many were answered 429 with a Retry-After.
async fn flood(base: String, count: usize, at_once: usize, client: fn(usize) -> String) -> usize {
    let http = reqwest::Client::new();
    let mut busy = 0;
    let mut tasks = Vec::new();
    for i in 0..count {
        let (http, base) = (http.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let path = if i % 2 == 0 {
                "/v2/"
            } else {
                "/auth/token?service=berth"
            };
            http.get(format!("{base}{path}"))
                .basic_auth(format!("ghost{i}"), Some("nope-nope"))
                .header("x-forwarded-for", client(i))
                .send()
                .await
                .map(|r| {
                    r.status() == StatusCode::TOO_MANY_REQUESTS
                        && r.headers().contains_key("retry-after")
                })
        }));
        if tasks.len() >= at_once {
            for t in tasks.drain(..) {
                busy += usize::from(matches!(t.await, Ok(Ok(true))));
            }
        }
    }
    for t in tasks {
        busy += usize::from(matches!(t.await, Ok(Ok(true))));
    }
    busy
}

async fn an_honest_login_succeeds_during_a_flood(b: Backend) {
    let t = TestServer::start_with(b, |c| {
        c.network.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    for name in ["dev1", "dev2", "dev3"] {
        create_account(&t, name).await;
    }
    // 800 logins with unknown names from as many addresses, 200 at a time,
    // against /v2 (Basic) and the token endpoint.
    let spread = tokio::spawn(flood(t.base.clone(), 800, 200, |i| {
        format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)
    }));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Meanwhile honest docker logins (the token endpoint with Basic, three
    // accounts so none comes from the cache of verified logins) from
    // another address succeed, promptly.
    for name in ["dev1", "dev2", "dev3"] {
        let started = Instant::now();
        let r = client_as(name, "a-long-password")
            .get(t.url("/auth/token?service=berth&offline_token=true"))
            .header("x-forwarded-for", "198.51.100.20")
            .send()
            .await
            .expect("token");
        assert_eq!(r.status(), StatusCode::OK, "{name}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{name} answered in {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    spread.await.expect("flood");
    // One address that floods meets 429 with Retry-After at once, and
    // leaves the rest alone.
    let busy = flood(t.base.clone(), 200, 50, |_| "203.0.113.66".into()).await;
    assert!(busy > 0, "the flood met 429 with Retry-After");
    let r = client_as("dev1", "a-long-password")
        .get(t.url("/v2/"))
        .header("x-forwarded-for", "198.51.100.21")
        .send()
        .await
        .expect("v2");
    assert_eq!(r.status(), StatusCode::OK);
}
