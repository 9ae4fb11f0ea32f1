//! A real OpenID provider for the tests: npm's `oidc-provider`, which
//! `scripts/test-env.sh` installs (`BERTH_TEST_OIDC_MODULES`), run by
//! `support/oidc-provider.mjs` on a loopback port of its own. Restarting
//! it rotates its signing keys; stopping it is an outage.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running provider.
pub struct OidcProvider {
    pub port: u16,
    pub issuer: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    generation: u32,
    clients: Value,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn modules() -> String {
    std::env::var("BERTH_TEST_OIDC_MODULES").expect(
        "BERTH_TEST_OIDC_MODULES is not set: run the suite with scripts/test.sh, which installs oidc-provider",
    )
}

impl OidcProvider {
    /// Start with these clients (oidc-provider's client metadata) and
    /// users (`{"alice": {"groups": [...], "roles": [...]}}`).
    pub async fn start(clients: Value, users: Value) -> OidcProvider {
        let port = free_port();
        let mut p = OidcProvider {
            port,
            issuer: format!("http://127.0.0.1:{port}"),
            dir: tempfile::tempdir().expect("tempdir"),
            child: None,
            generation: 0,
            clients,
        };
        p.set_users(&users);
        p.boot().await;
        p
    }

    fn users_file(&self) -> PathBuf {
        self.dir.path().join("users.json")
    }

    /// Replace the users (read at each sign-in).
    pub fn set_users(&self, users: &Value) {
        std::fs::write(self.users_file(), users.to_string()).expect("write users");
    }

    async fn boot(&mut self) {
        self.generation += 1;
        let config = self.dir.path().join("config.json");
        let body = json!({
            "port": self.port,
            "generation": self.generation,
            "modules": modules(),
            "users_file": self.users_file(),
            "clients": self.clients,
        });
        std::fs::write(&config, body.to_string()).expect("write config");
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/oidc-provider.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start node (oidc-provider)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim() == "ready" {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "oidc-provider did not start");
        self.child = Some(child);
    }

    /// Stop (an outage).
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Start again on the same port with new signing keys (rotation).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    /// A JWT access token of a client-credentials client (what a CI job
    /// gets from its platform's issuer).
    pub async fn client_token(&self, client_id: &str, secret: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "push")])
            .send()
            .await
            .expect("token request");
        let status = r.status();
        let v: Value = r.json().await.expect("token json");
        assert!(status.is_success(), "client_credentials: {v}");
        v["access_token"].as_str().expect("access_token").to_owned()
    }
}

/// A CI client: client-credentials grant, its tokens carry `repository`
/// and `ref` claims.
pub fn ci_client(id: &str, repository: &str, git_ref: &str) -> Value {
    json!({
        "client_id": id,
        "client_secret": format!("{id}-secret"),
        "grant_types": ["client_credentials"],
        "response_types": [],
        "redirect_uris": [],
        "repository": repository,
        "ref": git_ref,
    })
}
