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

/// A loopback port for a provider to start on later (its issuer URL is
/// needed in Berth's configuration before the provider knows Berth's
/// callback URL).
pub fn reserve_port() -> u16 {
    free_port()
}

impl OidcProvider {
    /// Start on `port` (see [`reserve_port`]).
    pub async fn start_at(port: u16, clients: Value, users: Value) -> OidcProvider {
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

    /// Start with these clients (oidc-provider's client metadata) and
    /// users (`{"alice": {"groups": [...], "roles": [...]}}`).
    pub async fn start(clients: Value, users: Value) -> OidcProvider {
        Self::start_at(free_port(), clients, users).await
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

/// The console's client at the provider, for a Berth at `berth`
/// (provider name `corp`).
pub fn console_client(berth: &str) -> Value {
    json!({
        "client_id": "berth-console",
        "client_secret": "console-secret",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "redirect_uris": [format!("{berth}/login/oidc/corp/callback"), format!("{berth}/login/oidc/kc/callback")],
        "post_logout_redirect_uris": [format!("{berth}/login")],
        "token_endpoint_auth_method": "client_secret_basic",
    })
}

/// A browser enough for sign-in flows: cookies per host and port,
/// redirects followed by hand, forms posted.
pub struct Browser {
    /// The console's CSRF token, sent by [`Browser::json`] (as the
    /// console's script does).
    pub csrf: std::sync::Mutex<Option<String>>,
    http: reqwest::Client,
    jar: std::sync::Mutex<
        std::collections::HashMap<String, std::collections::BTreeMap<String, String>>,
    >,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: Default::default(),
            csrf: Default::default(),
        }
    }
}

fn authority(url: &reqwest::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

impl Browser {
    fn cookies(&self, url: &reqwest::Url) -> Option<String> {
        let jar = self.jar.lock().unwrap();
        let c = jar.get(&authority(url))?;
        (!c.is_empty()).then(|| {
            c.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep(&self, url: &reqwest::Url, headers: &reqwest::header::HeaderMap) {
        let mut jar = self.jar.lock().unwrap();
        let c = jar.entry(authority(url)).or_default();
        for v in headers.get_all(reqwest::header::SET_COOKIE) {
            let v = v.to_str().unwrap_or_default();
            let first = v.split(';').next().unwrap_or_default();
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            let expired = v.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
            if expired {
                c.remove(name.trim());
            } else {
                c.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    /// A cookie this browser holds for `base`.
    pub fn cookie(&self, base: &str, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(base).unwrap();
        self.jar
            .lock()
            .unwrap()
            .get(&authority(&url))?
            .get(name)
            .cloned()
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
    ) -> reqwest::Response {
        let parsed = reqwest::Url::parse(url).expect("url");
        let mut req = self.http.request(method, parsed.clone());
        if let Some(c) = self.cookies(&parsed) {
            req = req.header(reqwest::header::COOKIE, c);
        }
        if let Some(f) = form {
            // As a browser says where a form comes from.
            req = req.header("sec-fetch-site", "same-origin").form(f);
        }
        let resp = req.send().await.expect("request");
        self.keep(&parsed, resp.headers());
        resp
    }

    async fn follow(
        &self,
        mut url: String,
        mut resp: reqwest::Response,
    ) -> (String, reqwest::StatusCode, String) {
        for _ in 0..20 {
            if !resp.status().is_redirection() {
                let status = resp.status();
                return (url, status, resp.text().await.unwrap_or_default());
            }
            let location = resp.headers()[reqwest::header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned();
            url = reqwest::Url::parse(&url)
                .unwrap()
                .join(&location)
                .unwrap()
                .to_string();
            resp = self.send(reqwest::Method::GET, &url, None).await;
        }
        panic!("too many redirects at {url}");
    }

    /// GET `url`, following redirects: (final URL, status, body).
    pub async fn open(&self, url: &str) -> (String, reqwest::StatusCode, String) {
        let resp = self.send(reqwest::Method::GET, url, None).await;
        self.follow(url.to_owned(), resp).await
    }

    /// POST a form, following redirects.
    pub async fn submit(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> (String, reqwest::StatusCode, String) {
        let resp = self.send(reqwest::Method::POST, url, Some(form)).await;
        self.follow(url.to_owned(), resp).await
    }

    /// A JSON request with this browser's cookies (a page's script).
    pub async fn json(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let parsed = reqwest::Url::parse(url).expect("url");
        let mut req = self
            .http
            .request(method, parsed.clone())
            .header("sec-fetch-site", "same-origin");
        if let Some(t) = self.csrf.lock().unwrap().clone() {
            req = req.header("x-csrf-token", t);
        }
        if let Some(c) = self.cookies(&parsed) {
            req = req.header(reqwest::header::COOKIE, c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Sign in to Berth at `berth` through provider `provider` as
    /// `login`: (final URL, status, page).
    pub async fn sign_in_with(
        &self,
        berth: &str,
        provider: &str,
        login: &str,
    ) -> (String, reqwest::StatusCode, String) {
        let (url, status, page) = self
            .open(&format!("{berth}/login/oidc/{provider}?next=/account"))
            .await;
        if !url.contains("/interaction/") {
            return (url, status, page);
        }
        assert!(
            page.contains("name=\"login\""),
            "the provider's login form: {page}"
        );
        self.submit(
            &url,
            &[("prompt", "login"), ("login", login), ("password", "any")],
        )
        .await
    }

    /// Sign in through provider `corp`.
    pub async fn sign_in(&self, berth: &str, login: &str) -> (String, reqwest::StatusCode, String) {
        self.sign_in_with(berth, "corp", login).await
    }
}

/// The console's CSRF token on a page (as the page holds it, unescaped).
pub fn csrf(page: &str) -> String {
    let at = page
        .find("name=\"_csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 20;
    // As the page holds it, HTML-escaped.
    page[at..]
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&#x2b;", "+")
        .replace("&#x3d;", "=")
        .replace("&#43;", "+")
        .replace("&#61;", "=")
}
