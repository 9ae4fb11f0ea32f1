//! The management API against its own OpenAPI document, fuzzed by
//! schemathesis (from PyPI; scripts/test-env.sh installs it in a virtual
//! environment): every check, bounded in examples and time, with the
//! exceptions (and their reasons) in scripts/schemathesis.toml. A server
//! error, an undocumented status or content type, a response that does
//! not match its schema, a valid request refused or an invalid one
//! accepted all fail the test.

use std::path::PathBuf;

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn schemathesis() -> PathBuf {
    let dir = std::env::var("BERTH_TEST_DIR").unwrap_or_else(|_| "/tmp/berth-test-env".into());
    let bin = PathBuf::from(dir).join("st-venv/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: run the suite with scripts/test.sh, which installs schemathesis",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_agrees_with_its_openapi_document() {
    let bin = schemathesis();
    // No job worker: webhooks the fuzzer creates must post nowhere.
    // The probes of ignored_auth send invalid credentials to every
    // operation: all from one client, which the login throttle would
    // otherwise answer 429 (per client, per name, per both).
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.jobs.concurrency = 0;
        c.auth.login_failures_per_client = 1_000_000;
        c.auth.login_failures_per_name_and_client = 1_000_000;
        c.auth.login_failures_per_name = 1_000_000;
    })
    .await;
    // A namespace and an image, so that lookups find something, and an
    // API token: Basic credentials would be throttled by the fuzzer's
    // deliberately wrong logins.
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": "team-a"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    t.push_image("team-a/web/frontend", "1.2", b"fuzz layer")
        .await;
    let (s, v) = t
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "fuzz"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let secret = v["secret"].as_str().expect("secret").to_owned();
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/schemathesis.toml");
    let out = tokio::process::Command::new(&bin)
        .arg("--config-file")
        .arg(&config)
        .args(["--no-color", "run"])
        .arg(t.url("/api/v1/openapi.json"))
        .args([
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "10",
            "--max-time",
            "90",
            // One worker: with two, schemathesis (under CPython 3.11) can
            // crash compiling in two threads at once ("AST constructor
            // recursion depth mismatch"), which is no finding about Berth.
            "--workers",
            "1",
            // Testing a remote registry's connection would send requests to
            // whatever address the fuzzer made up: only loopback here.
            "--exclude-path",
            "/api/v1/remotes/{name}/test",
            // A fixed seed by default, so that a failure reproduces; set
            // BERTH_FUZZ_SEED to explore other inputs.
            "--seed",
            &std::env::var("BERTH_FUZZ_SEED").unwrap_or_else(|_| "20261203".into()),
            "-H",
        ])
        .arg(format!("Authorization: Bearer {secret}"))
        .output()
        .await
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = stdout.lines().rev().take(25).collect();
    eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    assert!(
        out.status.success(),
        "schemathesis found disagreements:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
