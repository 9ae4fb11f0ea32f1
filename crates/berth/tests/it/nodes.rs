//! Several stateless nodes: three `berth serve` processes on one PostgreSQL
//! database and one S3 bucket (Garage), behind nginx (round-robin), driven
//! by real clients. Nothing here talks to one node's memory: whatever one
//! node did, the others must see.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::cli::*;
use crate::common::*;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use std::process::{Child, Command};

/// One `berth serve` process.
struct Node {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// Three nodes and nginx in front of them.
struct Cluster {
    nodes: Vec<Node>,
    nginx: Option<Child>,
    lb_port: u16,
    database_url: String,
    prefix: String,
    dir: tempfile::TempDir,
    settings: Vec<(String, String)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with scripts/test.sh, which starts Garage")
    })
}

impl Cluster {
    async fn start(nodes: usize) -> Cluster {
        Self::start_with(nodes, &[]).await
    }

    /// Start with extra `BERTH_*` settings for every node.
    async fn start_with(nodes: usize, settings: &[(&str, &str)]) -> Cluster {
        let database_url = fresh_postgres_database().await;
        let prefix = format!("nodes-{}", free_port());
        let dir = tempfile::tempdir().expect("tempdir");
        let lb_port = free_port();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            nginx: None,
            lb_port,
            database_url,
            prefix,
            dir,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        // All at once, as an orchestrator starts them: migrations and the
        // first-start bootstrap must cope with racing nodes.
        for _ in 0..nodes {
            let node = cluster.spawn_node(free_port());
            cluster.nodes.push(node);
        }
        for i in 0..nodes {
            cluster.wait_ready(i).await;
        }
        cluster.nginx = Some(cluster.start_nginx().await);
        cluster
    }

    fn spawn_node(&self, port: u16) -> Node {
        let dir = tempfile::tempdir().expect("node dir");
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BERTH_LISTEN", format!("127.0.0.1:{port}"))
            .env("BERTH_DATA_DIR", dir.path())
            .env("BERTH_DATABASE_URL", &self.database_url)
            .env("BERTH_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("BERTH_LOG", "warn")
            .env("BERTH_PULL_FLUSH_SECS", "1")
            .env("BERTH_TRUSTED_PROXIES", "127.0.0.1/32")
            .env("BERTH_STORAGE_KIND", "s3")
            .env("BERTH_S3_ENDPOINT", var("BERTH_TEST_S3_ENDPOINT"))
            .env("BERTH_S3_BUCKET", var("BERTH_TEST_S3_BUCKET"))
            .env("BERTH_S3_REGION", var("BERTH_TEST_S3_REGION"))
            .env("BERTH_S3_ACCESS_KEY_ID", var("BERTH_TEST_S3_ACCESS_KEY_ID"))
            .env(
                "BERTH_S3_SECRET_ACCESS_KEY",
                var("BERTH_TEST_S3_SECRET_ACCESS_KEY"),
            )
            .env("BERTH_S3_PREFIX", &self.prefix)
            .env("BERTH_S3_PART_SIZE_MIB", "5")
            // The tests read blobs through the nodes; the docker test turns
            // the default redirect to the bucket back on.
            .env("BERTH_S3_REDIRECT", "false")
            .envs(self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start berth");
        Node {
            child,
            port,
            _dir: dir,
        }
    }

    async fn wait_ready(&self, i: usize) {
        let url = format!("{}/readyz", self.node_url(i));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = anonymous_client().get(&url).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "node {i} did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // The child is returned to the cluster, whose `Drop` kills and waits for it.
    #[allow(clippy::zombie_processes)]
    async fn start_nginx(&self) -> Child {
        let d = self.dir.path().display();
        let servers: String = self
            .nodes
            .iter()
            .map(|n| format!("server 127.0.0.1:{} max_fails=1 fail_timeout=5s;\n", n.port))
            .collect();
        let conf = format!(
            "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream berth {{
        {servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        location / {{
            proxy_pass http://berth;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
",
            port = self.lb_port
        );
        let path = self.dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let mut child = Command::new("nginx")
            .args(["-c", path.to_str().expect("utf8"), "-e", "stderr"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx (scripts/test.sh installs it)");
        let url = format!("{}/v2/", self.lb_url());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = anonymous_client().get(&url).send().await {
                if r.status() == StatusCode::UNAUTHORIZED {
                    return child;
                }
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("nginx did not answer");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn node_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].port)
    }

    fn lb_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.lb_port)
    }

    fn lb_host(&self) -> String {
        format!("127.0.0.1:{}", self.lb_port)
    }

    /// SIGKILL node `i`.
    fn kill(&mut self, i: usize) {
        let child = &mut self.nodes[i].child;
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self
            .nodes
            .iter_mut()
            .map(|n| &mut n.child)
            .chain(self.nginx.as_mut())
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const INDEX_TYPES: &str =
    "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// GET `repo:reference`'s manifest from node `i` as the administrator.
async fn manifest_on(
    c: &Cluster,
    i: usize,
    repo: &str,
    reference: &str,
    accept: &str,
) -> reqwest::Response {
    admin()
        .get(format!("{}/v2/{repo}/manifests/{reference}", c.node_url(i)))
        .header("accept", accept)
        .send()
        .await
        .expect("manifest")
}

fn admin() -> reqwest::Client {
    client_as("admin", ADMIN_PASSWORD)
}

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", sha2_digest::sha256_hex(data))
}

fn location(r: &reqwest::Response, base: &str) -> String {
    let loc = r
        .headers()
        .get("location")
        .expect("location")
        .to_str()
        .expect("ascii")
        .to_owned();
    if loc.starts_with("http") {
        // Absolute: keep the path, aim at the chosen node.
        let path = loc.splitn(4, '/').nth(3).unwrap_or_default();
        format!("{base}/{path}")
    } else {
        format!("{base}{loc}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_push_and_pull_through_the_load_balancer() {
    // Pulls follow the nodes' redirects to the bucket, as by default.
    let c = Cluster::start_with(3, &[("BERTH_S3_REDIRECT", "true")]).await;
    let ctx = tempfile::tempdir().expect("ctx");
    let image = format!("{}/nodes/app", c.lb_host());
    let tagged = format!("{image}:v1");
    let big: String = content(12 << 20, 7)
        .iter()
        .map(|b| char::from(b"0123456789abcdef"[usize::from(b & 15)]))
        .collect();
    docker_build(
        ctx.path(),
        &tagged,
        &[
            ("a.txt", "first\n"),
            ("b.txt", "second\n"),
            ("big.txt", &big),
        ],
    )
    .await;
    let login = try_run(
        "docker",
        &["login", &c.lb_host(), "-u", "admin", "--password-stdin"],
        &[],
        Some(ADMIN_PASSWORD),
    )
    .await;
    assert!(login.status.success(), "docker login: {}", stderr(&login));
    run("docker", &["push", &tagged]).await;
    run("docker", &["rmi", &tagged]).await;
    run("docker", &["pull", &tagged]).await;
    assert_eq!(docker_layers(&tagged).await, 3);
    // Every node serves the manifest.
    for i in 0..3 {
        let r = manifest_on(&c, i, "nodes/app", "v1", DOCKER_MANIFEST).await;
        assert_eq!(r.status(), StatusCode::OK, "node {i}");
    }
    run("docker", &["rmi", "-f", &tagged]).await;
    run("docker", &["logout", &c.lb_host()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_pushes_a_multi_arch_index_through_the_load_balancer() {
    let c = Cluster::start(3).await;
    let work = tempfile::tempdir().expect("dir");
    let pm = Podman::new(work.path());
    let authfile = pm.authfile.clone();
    let podman = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let pm = &pm;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            pm.run(&refs).await
        }
    };
    let login = pm.login(&c.lb_host(), ADMIN_PASSWORD).await;
    assert!(login.status.success(), "podman login: {}", stderr(&login));
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    let ctx_s = ctx.display().to_string();
    for arch in ["amd64", "arm64"] {
        std::fs::write(ctx.join("arch.txt"), arch).expect("write");
        std::fs::write(
            ctx.join("Containerfile"),
            "FROM scratch\nCOPY arch.txt /arch.txt\n",
        )
        .expect("write");
        podman(&[
            "build",
            "-q",
            "--arch",
            arch,
            "-t",
            &format!("localhost/multi:{arch}"),
            &ctx_s,
        ])
        .await;
    }
    podman(&["manifest", "create", "localhost/multi:list"]).await;
    for arch in ["amd64", "arm64"] {
        podman(&[
            "manifest",
            "add",
            "localhost/multi:list",
            &format!("containers-storage:localhost/multi:{arch}"),
        ])
        .await;
    }
    let dest = format!("docker://{}/nodes/multi:latest", c.lb_host());
    podman(&[
        "manifest",
        "push",
        "--all",
        "--tls-verify=false",
        "--authfile",
        &authfile,
        "localhost/multi:list",
        &dest,
    ])
    .await;
    for i in 0..3 {
        let r = manifest_on(&c, i, "nodes/multi", "latest", INDEX_TYPES).await;
        assert_eq!(r.status(), StatusCode::OK, "node {i}");
        let index: serde_json::Value = r.json().await.expect("json");
        assert_eq!(
            index["manifests"].as_array().map(Vec::len),
            Some(2),
            "{index}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_moves_from_node_to_node() {
    let c = Cluster::start(3).await;
    let data = content(13 << 20, 1);
    let digest = digest_of(&data);
    let client = admin();
    let r = client
        .post(format!("{}/v2/nodes/chunked/blobs/uploads/", c.node_url(0)))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut loc = location(&r, &c.node_url(1));
    // 6 MiB on node 1, 4 MiB on node 2, the status from node 0, 1 MiB on
    // node 0, the rest with the digest on node 1.
    let pieces = [
        (0usize, 6usize << 20, 1usize),
        (6 << 20, 10 << 20, 2),
        (10 << 20, 11 << 20, 0),
    ];
    for (start, end, next) in pieces {
        let r = send_chunk(&client, &loc, start, &data[start..end])
            .await
            .expect("patch");
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        assert_eq!(r.headers()["range"], format!("0-{}", end - 1).as_str());
        loc = location(&r, &c.node_url(next));
        if next == 0 {
            let status = client.get(&loc).send().await.expect("status");
            assert_eq!(status.status(), StatusCode::NO_CONTENT);
            assert_eq!(status.headers()["range"], format!("0-{}", end - 1).as_str());
        }
    }
    let r = finish_upload(
        &client,
        &location_on(&loc, &c.node_url(1)),
        &digest,
        &data[11 << 20..],
    )
    .await
    .expect("put");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    for base in [c.lb_url(), c.node_url(2)] {
        let body = client
            .get(format!("{base}/v2/nodes/chunked/blobs/{digest}"))
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        assert!(
            body[..] == data[..],
            "the blob reads back whole from {base}"
        );
    }
}

/// `loc` (on some node) aimed at `base`.
fn location_on(loc: &str, base: &str) -> String {
    let path = loc.splitn(4, '/').nth(3).unwrap_or_default();
    format!("{base}/{path}")
}

/// PATCH `bytes` to the upload at `loc`, as the chunk starting at `start`.
async fn send_chunk(
    client: &reqwest::Client,
    loc: &str,
    start: usize,
    bytes: &[u8],
) -> reqwest::Result<reqwest::Response> {
    client
        .patch(loc)
        .header("content-type", "application/octet-stream")
        .header(
            "content-range",
            format!("{start}-{}", start + bytes.len() - 1),
        )
        .body(bytes.to_vec())
        .send()
        .await
}

/// PUT the last `bytes` of the upload at `loc` with its `digest`.
async fn finish_upload(
    client: &reqwest::Client,
    loc: &str,
    digest: &str,
    bytes: &[u8],
) -> reqwest::Result<reqwest::Response> {
    let sep = if loc.contains('?') { '&' } else { '?' };
    client
        .put(format!("{loc}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
}

/// Wait until `node` refuses `client`'s credentials; fail after 5 s.
async fn refused_within_5s(client: &reqwest::Client, node: &str, what: &str) {
    let changed = Instant::now();
    loop {
        let r = client.get(format!("{node}/v2/")).send().await.expect("v2");
        if r.status() == StatusCode::UNAUTHORIZED {
            return;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "{node} still accepts {what} {:?} after the change",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_changed_on_one_node_stops_working_on_the_others() {
    let c = Cluster::start(3).await;
    let r = admin()
        .post(format!("{}/api/v1/accounts", c.node_url(0)))
        .json(&serde_json::json!({"name": "mover", "password": "first-password"}))
        .send()
        .await
        .expect("create");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let old = client_as("mover", "first-password");
    // Node 1 verifies (and caches) the login.
    let r = old
        .get(format!("{}/v2/", c.node_url(1)))
        .send()
        .await
        .expect("v2");
    assert_eq!(r.status(), StatusCode::OK);
    // The password changes on node 2.
    let r = old
        .patch(format!("{}/api/v1/accounts/me", c.node_url(2)))
        .json(&serde_json::json!({"console_password": "second-password"}))
        .send()
        .await
        .expect("change");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );
    refused_within_5s(&old, &c.node_url(1), "the old password").await;
    let new = client_as("mover", "second-password");
    let r = new
        .get(format!("{}/v2/", c.node_url(1)))
        .send()
        .await
        .expect("v2");
    assert_eq!(r.status(), StatusCode::OK);
    // Disabled on node 0: refused on node 1 within seconds too.
    let r = admin()
        .patch(format!("{}/api/v1/accounts/mover", c.node_url(0)))
        .json(&serde_json::json!({"disabled": true}))
        .send()
        .await
        .expect("disable");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );
    refused_within_5s(&new, &c.node_url(1), "a disabled account").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_spread_over_nodes_meet_one_limit() {
    let c = Cluster::start(3).await;
    let r = admin()
        .post(format!("{}/api/v1/accounts", c.node_url(0)))
        .json(&serde_json::json!({"name": "target", "password": "the-right-one"}))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), StatusCode::CREATED);
    let guesser = client_as("target", "a-wrong-guess");
    // Five free failures, spread over the three nodes, then a block that
    // every node enforces.
    for i in 0..6 {
        let r = guesser
            .get(format!("{}/v2/", c.node_url(i % 3)))
            .send()
            .await
            .expect("v2");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    for i in 0..3 {
        let r = guesser
            .get(format!("{}/v2/", c.node_url(i)))
            .send()
            .await
            .expect("v2");
        assert_eq!(
            r.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "node {i} enforces the block"
        );
        // Even the right password waits out the block from this client.
        let r = client_as("target", "the-right-one")
            .get(format!("{}/v2/", c.node_url(i)))
            .send()
            .await
            .expect("v2");
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }
}

/// Upload one blob through the load balancer, retrying from the start on
/// any failure; returns once the registry acknowledged it.
async fn push_blob_with_retries(lb: &str, repo: &str, data: &[u8]) -> u32 {
    let client = admin();
    let digest = digest_of(data);
    let mut attempts = 0;
    loop {
        attempts += 1;
        assert!(attempts < 50, "no success after 50 attempts");
        let started = client
            .post(format!("{lb}/v2/{repo}/blobs/uploads/"))
            .send()
            .await;
        let Ok(r) = started else { continue };
        if r.status() != StatusCode::ACCEPTED {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let loc = location(&r, lb);
        let half = data.len() / 2;
        let patched = send_chunk(&client, &loc, 0, &data[..half]).await;
        let loc = match patched {
            Ok(r) if r.status() == StatusCode::ACCEPTED => location(&r, lb),
            _ => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let put = finish_upload(&client, &loc, &digest, &data[half..]).await;
        match put {
            Ok(r) if r.status() == StatusCode::CREATED => return attempts,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_pushes_loses_nothing_acknowledged() {
    let mut c = Cluster::start(3).await;
    let lb = c.lb_url();
    let mut workers = Vec::new();
    for w in 0..3u64 {
        let lb = lb.clone();
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            for i in 0..8u64 {
                let data = content((1 << 20) + (i as usize * 700_000), w * 100 + i);
                push_blob_with_retries(&lb, "nodes/killed", &data).await;
                done.push(data);
            }
            done
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.kill(1);
    let mut acknowledged = Vec::new();
    for w in workers {
        acknowledged.extend(w.await.expect("worker"));
    }
    assert_eq!(acknowledged.len(), 24);
    // Every acknowledged blob reads back whole, from every surviving node.
    for data in &acknowledged {
        let digest = digest_of(data);
        for i in [0, 2] {
            let body = admin()
                .get(format!("{}/v2/nodes/killed/blobs/{digest}", c.node_url(i)))
                .send()
                .await
                .expect("get")
                .bytes()
                .await
                .expect("body");
            assert_eq!(digest_of(&body), digest, "node {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_on_one_node_while_others_push() {
    // No grace: a layer is garbage the moment nothing refers to it, so the
    // collector races every push (the claim protocol must keep them apart).
    let c = Cluster::start_with(3, &[("BERTH_GC_GRACE_SECS", "0")]).await;
    let client = admin();
    let pushers: Vec<_> = (0..2usize)
        .map(|p| {
            let base = c.node_url(p + 1);
            tokio::spawn(async move {
                let mut pushed = Vec::new();
                for i in 0..6u64 {
                    let layer = content(300_000, (p as u64) * 1000 + i);
                    let config = format!("{{\"p\":{p},\"i\":{i}}}").into_bytes();
                    let manifest = serde_json::json!({
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                   "digest": digest_of(&config), "size": config.len()},
                        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                    "digest": digest_of(&layer), "size": layer.len()}]
                    });
                    let tag = format!("p{p}-{i}");
                    // With no grace, a collection between the uploads and the
                    // manifest may take the layer: the manifest is then
                    // refused (MANIFEST_BLOB_UNKNOWN), never stored broken,
                    // and the client uploads again, as docker does.
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        assert!(attempts <= 20, "{tag}: no push landed in 20 attempts");
                        push_blob_with_retries(&base, "nodes/gc", &layer).await;
                        push_blob_with_retries(&base, "nodes/gc", &config).await;
                        let r = admin()
                            .put(format!("{base}/v2/nodes/gc/manifests/{tag}"))
                            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                            .body(serde_json::to_vec(&manifest).expect("json"))
                            .send()
                            .await
                            .expect("put manifest");
                        if r.status() == StatusCode::CREATED {
                            break;
                        }
                        let text = r.text().await.unwrap_or_default();
                        assert!(text.contains("MANIFEST_BLOB_UNKNOWN"), "{tag}: {text}");
                    }
                    pushed.push((tag, digest_of(&layer), digest_of(&config)));
                }
                pushed
            })
        })
        .collect();
    let gc = tokio::spawn({
        let base = c.node_url(0);
        async move {
            for _ in 0..8 {
                let r = admin()
                    .post(format!("{base}/api/v1/gc/runs"))
                    .json(&serde_json::json!({"dry_run": false}))
                    .send()
                    .await
                    .expect("gc");
                assert!(
                    r.status() == StatusCode::ACCEPTED || r.status() == StatusCode::CONFLICT,
                    "{}",
                    r.status()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    let mut pushed = Vec::new();
    for p in pushers {
        pushed.extend(p.await.expect("pusher"));
    }
    gc.await.expect("gc");
    assert_eq!(pushed.len(), 12, "every push lands");
    // One more collection after the dust settles; then every tagged image
    // is whole on every node.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (tag, layer, config) in &pushed {
        for i in 0..3 {
            let base = c.node_url(i);
            let r = client
                .get(format!("{base}/v2/nodes/gc/manifests/{tag}"))
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .expect("manifest");
            assert_eq!(r.status(), StatusCode::OK, "{tag} on node {i}");
            for d in [layer, config] {
                let r = client
                    .request(Method::HEAD, format!("{base}/v2/nodes/gc/blobs/{d}"))
                    .send()
                    .await
                    .expect("blob");
                assert_eq!(r.status(), StatusCode::OK, "{tag}: {d} on node {i}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_resumes_on_another_node_after_its_node_dies_mid_request() {
    let mut c = Cluster::start(3).await;
    let data = content(12 << 20, 9);
    let digest = digest_of(&data);
    let client = admin();
    let r = client
        .post(format!("{}/v2/nodes/resume/blobs/uploads/", c.node_url(0)))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let loc = location(&r, &c.node_url(1));
    let r = send_chunk(&client, &loc, 0, &data[..6 << 20])
        .await
        .expect("patch");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // The next chunk goes to node 1 too, which dies with 3 MiB of it read.
    let (hold, held) = tokio::sync::oneshot::channel::<()>();
    let first = bytes::Bytes::copy_from_slice(&data[6 << 20..9 << 20]);
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(
        futures_util::stream::once(async move {
            let _ = held.await;
            Ok::<_, std::io::Error>(bytes::Bytes::new())
        }),
    );
    let cut = tokio::spawn({
        let (client, loc) = (client.clone(), loc.clone());
        async move {
            client
                .patch(&loc)
                .header("content-type", "application/octet-stream")
                .body(reqwest::Body::wrap_stream(body))
                .send()
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.kill(1);
    assert!(
        !matches!(cut.await.expect("task"), Ok(r) if r.status().is_success()),
        "the cut request cannot have succeeded"
    );
    drop(hold);
    // Node 2 reports what was acknowledged; the client resumes there and
    // finishes on node 0.
    let status = client
        .get(location_on(&loc, &c.node_url(2)))
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status.headers()["range"],
        format!("0-{}", (6 << 20) - 1).as_str()
    );
    let r = send_chunk(
        &client,
        &location_on(&loc, &c.node_url(2)),
        6 << 20,
        &data[6 << 20..11 << 20],
    )
    .await
    .expect("patch");
    assert_eq!(
        r.status(),
        StatusCode::ACCEPTED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let loc = location(&r, &c.node_url(0));
    let r = finish_upload(&client, &loc, &digest, &data[11 << 20..])
        .await
        .expect("put");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let body = client
        .get(format!("{}/v2/nodes/resume/blobs/{digest}", c.node_url(2)))
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert_eq!(digest_of(&body), digest);
}

// ---- the read cache across nodes ---------------------------------------------

/// A counter or gauge of node `i`'s `/metrics`.
async fn metric(c: &Cluster, i: usize, name: &str) -> u64 {
    let text = anonymous_client()
        .get(format!("{}/metrics", c.node_url(i)))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from the metrics"))
}

/// GET `url` with `client` until `check` accepts the answer (status and
/// the `docker-content-digest` header), for at most one second after the
/// change; returns how long it took.
async fn seen_within_1s(
    client: &reqwest::Client,
    url: &str,
    what: &str,
    check: impl Fn(StatusCode, &str) -> bool,
) -> Duration {
    let changed = Instant::now();
    loop {
        let r = client.get(url).send().await.expect("get");
        let status = r.status();
        let digest = digest_header(&r);
        if check(status, &digest) {
            return changed.elapsed();
        }
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "{what}: {url} still answers {status} {digest} {:?} after the change",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GET `url` twice; the second answer must come from memory.
async fn read_twice_cached(c: &Cluster, i: usize, client: &reqwest::Client, url: &str) -> String {
    let hits = metric(c, i, "berth_read_cache_hits_total").await;
    let mut digest = String::new();
    for _ in 0..2 {
        let r = client.get(url).send().await.expect("get");
        assert_eq!(r.status(), StatusCode::OK, "{url}");
        digest = digest_header(&r);
    }
    assert!(
        metric(c, i, "berth_read_cache_hits_total").await > hits,
        "{url} was not answered from memory"
    );
    digest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_reads_follow_changes_made_on_another_node() {
    let c = Cluster::start(2).await;
    let (writer, reader) = (c.node_url(0), c.node_url(1));
    let r = admin()
        .post(format!("{writer}/api/v1/namespaces"))
        .json(&serde_json::json!({"name": "hot", "public": true}))
        .send()
        .await
        .expect("namespace");
    assert_eq!(r.status(), StatusCode::CREATED);
    let push = reference::client_of(&writer, Some(("admin", ADMIN_PASSWORD)));
    let first = reference::push_remote(&push, "hot/app", "t", b"first").await;
    let anon = anonymous_client();
    let by_tag = format!("{reader}/v2/hot/app/manifests/t");
    assert_eq!(read_twice_cached(&c, 1, &anon, &by_tag).await, first);
    assert_eq!(metric(&c, 1, "berth_read_cache_enabled").await, 1);

    // A blob read from memory on node 1 is deleted on node 0: it is gone
    // there too within the feed's delay.
    let layer = crate::common::sha256(b"first");
    let blob = format!("{reader}/v2/hot/app/blobs/{layer}");
    let misses = metric(&c, 1, "berth_read_cache_misses_total").await;
    read_twice_cached(&c, 1, &anon, &blob).await;
    let r = anon.head(&blob).send().await.expect("head");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        metric(&c, 1, "berth_read_cache_misses_total").await - misses,
        1,
        "the blob's link is read from the database once"
    );
    let r = admin()
        .delete(format!("{writer}/v2/hot/app/blobs/{layer}"))
        .send()
        .await
        .expect("delete blob");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    seen_within_1s(&anon, &blob, "a deleted blob", |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;

    // A tag moved on node 0.
    let second = reference::push_remote(&push, "hot/app", "t", b"second").await;
    let took = seen_within_1s(&anon, &by_tag, "a moved tag", |s, d| {
        s == StatusCode::OK && d == second
    })
    .await;
    eprintln!("tag move seen after {took:?}");

    // A new tag shows in the cached tag list; a deleted tag goes.
    let tags = format!("{reader}/v2/hot/app/tags/list");
    read_twice_cached(&c, 1, &anon, &tags).await;
    reference::push_remote(&push, "hot/app", "u", b"third").await;
    let listed = |tag: &'static str| {
        let anon = anon.clone();
        let tags = tags.clone();
        async move {
            let v: serde_json::Value = anon
                .get(&tags)
                .send()
                .await
                .expect("tags")
                .json()
                .await
                .expect("json");
            v["tags"]
                .as_array()
                .is_some_and(|a| a.iter().any(|t| t == tag))
        }
    };
    let changed = Instant::now();
    while !listed("u").await {
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "new tag not listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let by_u = format!("{reader}/v2/hot/app/manifests/u");
    read_twice_cached(&c, 1, &anon, &by_u).await;
    let r = admin()
        .delete(format!("{writer}/v2/hot/app/manifests/u"))
        .send()
        .await
        .expect("delete tag");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    seen_within_1s(&anon, &by_u, "a deleted tag", |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;
    assert!(!listed("u").await, "a deleted tag is still listed");

    // A manifest deleted by digest on node 0.
    let by_digest = format!("{reader}/v2/hot/app/manifests/{second}");
    read_twice_cached(&c, 1, &anon, &by_digest).await;
    let r = admin()
        .delete(format!("{writer}/v2/hot/app/manifests/{second}"))
        .send()
        .await
        .expect("delete manifest");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    seen_within_1s(&anon, &by_digest, "a deleted manifest", |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;
    seen_within_1s(&anon, &by_tag, "the tag of a deleted manifest", |s, _| {
        s == StatusCode::NOT_FOUND
    })
    .await;

    // The namespace turned private on node 0: anonymous pulls stop.
    reference::push_remote(&push, "hot/app", "t", b"fourth").await;
    read_twice_cached(&c, 1, &anon, &by_tag).await;
    let r = admin()
        .patch(format!("{writer}/api/v1/namespaces/hot"))
        .json(&serde_json::json!({"public": false}))
        .send()
        .await
        .expect("private");
    assert_eq!(r.status(), StatusCode::OK);
    seen_within_1s(&anon, &by_tag, "a namespace turned private", |s, _| {
        s == StatusCode::UNAUTHORIZED
    })
    .await;

    // A member's role removed on node 0: their Basic pulls stop.
    let r = admin()
        .post(format!("{writer}/api/v1/accounts"))
        .json(&serde_json::json!({"name": "puller", "password": "puller-password"}))
        .send()
        .await
        .expect("account");
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = admin()
        .put(format!("{writer}/api/v1/namespaces/hot/members/puller"))
        .json(&serde_json::json!({"role": "guest"}))
        .send()
        .await
        .expect("member");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let puller = client_as("puller", "puller-password");
    seen_within_1s(&puller, &by_tag, "a new member", |s, _| s == StatusCode::OK).await;
    read_twice_cached(&c, 1, &puller, &by_tag).await;
    let r = admin()
        .delete(format!("{writer}/api/v1/namespaces/hot/members/puller"))
        .send()
        .await
        .expect("remove member");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    seen_within_1s(&puller, &by_tag, "a removed member", |s, _| {
        s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_change_feed_drops_the_cache_until_it_is_back() {
    let c = Cluster::start(2).await;
    let (writer, reader) = (c.node_url(0), c.node_url(1));
    let r = admin()
        .post(format!("{writer}/api/v1/namespaces"))
        .json(&serde_json::json!({"name": "feed", "public": true}))
        .send()
        .await
        .expect("namespace");
    assert_eq!(r.status(), StatusCode::CREATED);
    let push = reference::client_of(&writer, Some(("admin", ADMIN_PASSWORD)));
    reference::push_remote(&push, "feed/app", "t", b"first").await;
    let anon = anonymous_client();
    let by_tag = format!("{reader}/v2/feed/app/manifests/t");
    read_twice_cached(&c, 1, &anon, &by_tag).await;

    // Every node's notification connection is cut, and the tag moves while
    // they are away: whatever was announced meanwhile is lost.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&c.database_url)
        .await
        .expect("connect");
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND query LIKE '%berth_changes%'",
    )
    .fetch_all(&pool)
    .await
    .expect("terminate");
    assert!(cut.len() >= 2, "listeners found: {}", cut.len());
    let second = reference::push_remote(&push, "feed/app", "t", b"second").await;
    seen_within_1s(
        &anon,
        &by_tag,
        "a tag moved while the feed was cut",
        |s, d| s == StatusCode::OK && d == second,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&c, 1, "berth_read_cache_feed_losses_total").await == 0 {
        assert!(Instant::now() < deadline, "the lost feed was not noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It reconnects by itself, and the cache works again.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&c, 1, "berth_read_cache_enabled").await == 0 {
        assert!(Instant::now() < deadline, "the feed did not come back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read_twice_cached(&c, 1, &anon, &by_tag).await, second);
    let third = reference::push_remote(&push, "feed/app", "t", b"third").await;
    seen_within_1s(
        &anon,
        &by_tag,
        "a tag moved after the feed came back",
        |s, d| s == StatusCode::OK && d == third,
    )
    .await;
}

/// A directory user, behind the load balancer: logged in on every node
/// (each caches the login) and with a console session; disabled in the
/// directory, refused by every node within a few cache periods — the
/// registry login and the session alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_disabled_in_the_directory_is_refused_on_every_node() {
    use crate::common::ldap::{Slapd, BASE, SERVICE_DN, SERVICE_PASSWORD};
    let slapd = Slapd::start().await;
    let config = slapd.dir.path().join("berth.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[identity.ldap]]
name = "corp"
url = "ldaps://127.0.0.1:{port}"
ca_cert = "{ca}"
bind_dn = "{SERVICE_DN}"
bind_password = "{SERVICE_PASSWORD}"
user_base = "ou=people,{BASE}"
user_filter = "(&(uid={{username}})(!(description=disabled)))"
member_of_attribute = "memberOf"
cache_secs = 1
"#,
            port = slapd.ldaps_port,
            ca = slapd.ca_file().display(),
        ),
    )
    .expect("config");
    let c = Cluster::start_with(2, &[("BERTH_CONFIG", config.to_str().unwrap())]).await;
    let alice = client_as("alice", "alice-directory-password");
    for node in [c.node_url(0), c.node_url(1), c.lb_url()] {
        let r = alice.get(format!("{node}/v2/")).send().await.expect("v2");
        assert_eq!(r.status(), StatusCode::OK, "{node}");
    }
    // A console session made through the load balancer, used on each node.
    let browser = crate::common::oidc::Browser::default();
    let (_, status, _) = browser
        .submit(
            &format!("{}/login", c.lb_url()),
            &[
                ("username", "alice"),
                ("password", "alice-directory-password"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let cookie = browser
        .cookie(&c.lb_url(), "berth_session")
        .expect("session");
    let session = |node: String| {
        let cookie = cookie.clone();
        async move {
            anonymous_client()
                .get(format!("{node}/api/v1/accounts/me"))
                .header("cookie", format!("berth_session={cookie}"))
                .send()
                .await
                .expect("me")
                .status()
        }
    };
    assert_eq!(session(c.node_url(1)).await, StatusCode::OK);

    slapd
        .modify(
            "modify",
            &format!("dn: uid=alice,ou=people,{BASE}\nchangetype: modify\nadd: description\ndescription: disabled\n"),
        )
        .await;
    // The login cache holds a login 30 s; the directory's sweep disables
    // the account within a cache period, and every node drops what it
    // cached of it through the credential change feed.
    for node in [c.node_url(0), c.node_url(1)] {
        refused_within_5s(&alice, &node, "a disabled directory user").await;
        assert_eq!(
            session(node.clone()).await,
            StatusCode::UNAUTHORIZED,
            "{node}"
        );
    }
}

/// Push `data` as a blob of `repo` on `node` in one request.
async fn blob_on(node: &str, repo: &str, data: &[u8]) -> String {
    let digest = digest_of(data);
    let r = admin()
        .post(format!("{node}/v2/{repo}/blobs/uploads/?digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .expect("blob");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    digest
}

/// Push a manifest of `config` and `layer` (with `layer_type`) to `node`.
async fn manifest_to(
    node: &str,
    repo: &str,
    reference: &str,
    layer: &[u8],
    layer_type: &str,
    annotations: serde_json::Value,
) -> String {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = blob_on(node, repo, config).await;
    let layer_digest = blob_on(node, repo, layer).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len(),
                    "annotations": annotations}],
    }))
    .unwrap();
    let r = admin()
        .put(format!("{node}/v2/{repo}/manifests/{reference}"))
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .await
        .expect("manifest");
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap_or_default()
    );
    digest_of(&manifest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_node_blocks_pulls_on_the_others_within_seconds() {
    use crate::common::signing::{payload, Signer, SIMPLE_SIGNING};
    let c = Cluster::start(2).await;
    let (n0, n1) = (c.node_url(0), c.node_url(1));
    let r = admin()
        .post(format!("{n0}/api/v1/namespaces"))
        .json(&serde_json::json!({"name": "signed"}))
        .send()
        .await
        .expect("namespace");
    assert!(r.status().is_success());
    let release = Signer::ecdsa();
    let other = Signer::ed25519();
    let digest = manifest_to(
        &n0,
        "signed/app",
        "v1",
        b"layer",
        OCI_LAYER,
        serde_json::json!({}),
    )
    .await;
    let p = payload("signed/app", &digest);
    manifest_to(
        &n0,
        "signed/app",
        &format!("{}.sig", digest.replace(':', "-")),
        &p,
        SIMPLE_SIGNING,
        serde_json::json!({"dev.cosignproject.cosign/signature": release.sign(&p)}),
    )
    .await;
    let set = |signer: &Signer| {
        let body = serde_json::json!({"mode": "enforce",
            "keys": [{"name": "release", "public_key": signer.pem}]});
        let url = format!("{n0}/api/v1/namespaces/signed/signature-policy");
        async move {
            let r = admin().put(url).json(&body).send().await.expect("policy");
            assert_eq!(
                r.status(),
                StatusCode::OK,
                "{}",
                r.text().await.unwrap_or_default()
            );
        }
    };
    set(&release).await;
    // Node 1 verifies and keeps the verdict.
    for _ in 0..3 {
        let r = manifest_on(&c, 1, "signed/app", "v1", OCI_MANIFEST).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{}",
            r.text().await.unwrap_or_default()
        );
    }
    // The key is revoked on node 0: node 1 refuses within seconds.
    set(&other).await;
    let changed = Instant::now();
    loop {
        let r = manifest_on(&c, 1, "signed/app", "v1", OCI_MANIFEST).await;
        if r.status() == StatusCode::FORBIDDEN {
            assert!(r.text().await.unwrap().contains("DENIED"));
            break;
        }
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "{n1} still serves an image signed by a revoked key after {:?}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
