//! End-to-end tests with real clients: the docker engine, podman, buildah,
//! skopeo and containerd's `ctr`, logging in to and pushing to and pulling
//! from a real Berth server. scripts/test.sh installs the tools and starts
//! dockerd.

use std::path::Path;

use crate::common::cli::*;
use crate::common::*;
use berth_core::access::{Principal, Role};
use berth_core::{NamespaceSpec, RegistryUserSpec};
use reqwest::StatusCode;

/// A tar archive holding one file.
/// Each client runs against the embedded default (SQLite and the local
/// filesystem) and against PostgreSQL with S3 blob storage (Garage).
macro_rules! client_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::PostgresS3).await;
                }
            )*
        }
    };
}

/// A server as configured by default: on S3, blob downloads redirect to
/// the bucket, so every client here pulls its layers from Garage itself.
async fn server(b: Backend) -> TestServer {
    TestServer::start_with(b, |c| {
        c.storage.s3.redirect = berth::config::S3Section::default().redirect
    })
    .await
}

client_tests!(
    docker_build_push_remove_pull_by_tag_and_digest,
    docker_login_with_every_kind_of_credential,
    podman_login_and_multi_arch_manifest_list,
    skopeo_copy_oci_layout_in_and_out_then_delete,
    containerd_ctr_pull_with_user_and_anonymously,
    buildah_build_push_and_pull,
    a_tenant_first_push_creates_its_namespace,
);

fn tar_with(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, content).expect("tar entry");
    b.into_inner().expect("tar")
}

/// A valid single-layer linux/amd64 OCI image (uncompressed tar layer):
/// returns (config bytes, layer bytes, manifest bytes).
fn valid_image(file: &str, content: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let layer = tar_with(file, content);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}
    }))
    .expect("config");
    let manifest = image_manifest(
        &sha256(&config),
        config.len(),
        &[(sha256(&layer), layer.len())],
        None,
    );
    (config, layer, manifest)
}

/// Write an OCI image layout holding one image tagged `tag`.
fn write_oci_layout(dir: &Path, tag: &str, blobs: &[&[u8]], manifest: &[u8]) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    for b in blobs.iter().chain(std::iter::once(&manifest)) {
        let d = sha256(b);
        std::fs::write(
            dir.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
            b,
        )
        .expect("blob");
    }
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}]
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index");
}

async fn docker_build_push_remove_pull_by_tag_and_digest(b: Backend) {
    let t = server(b).await;
    let ctx = tempfile::tempdir().expect("ctx");
    let image = format!("{}/e2e/docker-img", host(&t));
    let tagged = format!("{image}:v1");
    // 8 MiB of random hex: about 4 MiB once gzipped, a layer large enough to
    // be written past the page cache in 1 MiB blocks, pushed the way docker
    // does (one streamed PATCH) and checked by docker's pull.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let big: String = (0..8 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"0123456789abcdef"[(state >> 60) as usize])
        })
        .collect();
    docker_build(
        ctx.path(),
        &tagged,
        &[
            ("a.txt", "first layer\n"),
            ("b.txt", "second layer\n"),
            ("c.txt", "third layer\n"),
            ("big.txt", &big),
        ],
    )
    .await;
    docker_login(&t, "admin", ADMIN_PASSWORD).await;
    let pushed = stdout(&run("docker", &["push", &tagged]).await);
    let digest = pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in push output: {pushed}"))
        .to_owned();
    // The registry has it: four layers, tag listed.
    let r = t
        .client
        .get(t.url("/v2/e2e/docker-img/manifests/v1"))
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), digest);
    let m: serde_json::Value = r.json().await.expect("json");
    assert_eq!(m["layers"].as_array().map(Vec::len), Some(4), "{m}");
    let largest = m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["size"].as_u64())
        .max();
    assert!(largest > Some(3 << 20), "{m}");
    run("docker", &["rmi", &tagged]).await;
    run("docker", &["pull", &tagged]).await;
    let by_digest = format!("{image}@{digest}");
    run("docker", &["pull", &by_digest]).await;
    assert_eq!(docker_layers(&by_digest).await, 4);
    run("docker", &["rmi", "-f", &tagged, &by_digest]).await;
    run("docker", &["logout", &host(&t)]).await;
}

/// `docker login` with a console password, an independent registry password
/// and a registry user; anonymous pulls of public and private images; a
/// wrong password refused.
async fn docker_login_with_every_kind_of_credential(b: Backend) {
    let t = server(b).await;
    let d = t.directory();
    let sys = Principal::System;
    d.create_account(&sys, "alice", "", "alice-console-pw", false)
        .await
        .expect("alice");
    d.set_registry_password(&sys, "alice", Some("alice-registry-pw"), None)
        .await
        .expect("registry password");
    d.create_group(&sys, "team", "", Some("alice"))
        .await
        .expect("group");
    for (ns, public) in [("team-private", false), ("team-public", true)] {
        let spec = NamespaceSpec {
            name: ns.into(),
            group: Some("team".into()),
            public,
            ..Default::default()
        };
        d.create_namespace(&sys, &spec).await.expect("namespace");
    }
    let bot = RegistryUserSpec {
        name: "ci-bot".into(),
        password: Some("ci-bot-secret".into()),
        owner: Some("alice".into()),
        ..Default::default()
    };
    d.create_registry_user(&sys, &bot).await.expect("bot");
    d.set_grant(&sys, "ci-bot", "team-private", false, true)
        .await
        .expect("grant");
    d.create_account(&sys, "mallory", "", "mallory-password", false)
        .await
        .expect("mallory");
    d.set_group_member(&sys, "team", "mallory", Role::Guest)
        .await
        .expect("guest");

    let ctx = tempfile::tempdir().expect("ctx");
    let host = host(&t);
    for (i, (user, password)) in [
        ("alice", "alice-console-pw"),
        ("alice", "alice-registry-pw"),
        ("ci-bot", "ci-bot-secret"),
    ]
    .into_iter()
    .enumerate()
    {
        let reference = format!("{host}/team-private/app:cred{i}");
        docker_build(
            ctx.path(),
            &reference,
            &[("who.txt", &format!("{user} {i}\n"))],
        )
        .await;
        docker_login(&t, user, password).await;
        run("docker", &["push", &reference]).await;
        run("docker", &["rmi", &reference]).await;
        run("docker", &["pull", &reference]).await;
        run("docker", &["rmi", &reference]).await;
    }
    // A guest may pull but not push.
    docker_login(&t, "mallory", "mallory-password").await;
    run(
        "docker",
        &["pull", &format!("{host}/team-private/app:cred0")],
    )
    .await;
    let denied = format!("{host}/team-private/app:mallory");
    run(
        "docker",
        &["tag", &format!("{host}/team-private/app:cred0"), &denied],
    )
    .await;
    let out = try_run("docker", &["push", &denied], &[], None).await;
    assert!(!out.status.success(), "a guest pushed");
    assert!(stderr(&out).contains("denied"), "{}", stderr(&out));
    // Wrong password: refused at login.
    let out = try_run(
        "docker",
        &["login", &host, "-u", "alice", "--password-stdin"],
        &[],
        Some("not-her-password"),
    )
    .await;
    assert!(!out.status.success(), "wrong password accepted");
    // Anonymous: public pulls work, private pulls do not.
    run("docker", &["logout", &host]).await;
    let public = format!("{host}/team-public/app:v1");
    docker_login(&t, "alice", "alice-console-pw").await;
    run(
        "docker",
        &["tag", &format!("{host}/team-private/app:cred0"), &public],
    )
    .await;
    run("docker", &["push", &public]).await;
    run("docker", &["logout", &host]).await;
    run(
        "docker",
        &[
            "rmi",
            &public,
            &denied,
            &format!("{host}/team-private/app:cred0"),
        ],
    )
    .await;
    run("docker", &["pull", &public]).await;
    let out = try_run(
        "docker",
        &["pull", &format!("{host}/team-private/app:cred0")],
        &[],
        None,
    )
    .await;
    assert!(!out.status.success(), "anonymous pulled a private image");
    run("docker", &["rmi", &public]).await;
}

async fn podman_login_and_multi_arch_manifest_list(b: Backend) {
    let t = server(b).await;
    let work = tempfile::tempdir().expect("dir");
    let pm = Podman::new(work.path());
    let authfile = pm.authfile.clone();
    let podman = |args: Vec<String>| {
        let pm = &pm;
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            pm.run(&refs).await
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let registry = host(&t);
    let login = |password: &'static str| pm.login(&registry, password);
    let out = login(ADMIN_PASSWORD).await;
    assert!(out.status.success(), "podman login: {}", stderr(&out));
    let bad = login("wrong-password").await;
    assert!(
        !bad.status.success(),
        "podman login with a wrong password succeeded"
    );
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
        podman(s(&[
            "build",
            "-q",
            "--arch",
            arch,
            "-t",
            &format!("localhost/multi:{arch}"),
            &ctx_s,
        ]))
        .await;
    }
    podman(s(&["manifest", "create", "localhost/multi:list"])).await;
    for arch in ["amd64", "arm64"] {
        podman(s(&[
            "manifest",
            "add",
            "localhost/multi:list",
            &format!("containers-storage:localhost/multi:{arch}"),
        ]))
        .await;
    }
    let dest = format!("docker://{}/e2e/multi:latest", host(&t));
    podman(s(&[
        "manifest",
        "push",
        "--all",
        "--tls-verify=false",
        "--authfile",
        &authfile,
        "localhost/multi:list",
        &dest,
    ]))
    .await;
    let r = t.get("/v2/e2e/multi/manifests/latest").await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: serde_json::Value = r.json().await.expect("json");
    let arches: Vec<String> = list["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| {
            m["platform"]["architecture"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        arches.contains(&"amd64".to_owned()) && arches.contains(&"arm64".to_owned()),
        "{list}"
    );
    // Pull one platform back.
    let src = format!("{}/e2e/multi:latest", host(&t));
    podman(s(&["rmi", "-a", "-f"])).await;
    podman(s(&[
        "pull",
        "-q",
        "--tls-verify=false",
        "--authfile",
        &authfile,
        "--arch",
        "arm64",
        &src,
    ]))
    .await;
    let arch = stdout(
        &podman(s(&[
            "image",
            "inspect",
            "--format",
            "{{.Architecture}}",
            &src,
        ]))
        .await,
    );
    assert_eq!(arch.trim(), "arm64");
}

async fn skopeo_copy_oci_layout_in_and_out_then_delete(b: Backend) {
    let t = server(b).await;
    let work = tempfile::tempdir().expect("dir");
    let (config, layer, manifest) = valid_image("hello.txt", b"hello from skopeo\n");
    let src = work.path().join("src");
    write_oci_layout(&src, "v1", &[&config, &layer], &manifest);
    let dest = format!("docker://{}/e2e/skopeo:v1", host(&t));
    let src_ref = format!("oci:{}:v1", src.display());
    run(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            "--dest-creds",
            ADMIN_CREDS,
            &src_ref,
            &dest,
        ],
    )
    .await;
    let r = t.get("/v2/e2e/skopeo/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.bytes().await.expect("b").to_vec(),
        manifest,
        "skopeo pushed the manifest bytes unchanged"
    );
    let inspect = stdout(
        &run(
            "skopeo",
            &[
                "inspect",
                "--tls-verify=false",
                "--creds",
                ADMIN_CREDS,
                &dest,
            ],
        )
        .await,
    );
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
    assert_eq!(v["Digest"], sha256(&manifest));
    // Without credentials the private image is not readable.
    let out = try_run(
        "skopeo",
        &["inspect", "--tls-verify=false", "--no-creds", &dest],
        &[],
        None,
    )
    .await;
    assert!(
        !out.status.success(),
        "anonymous inspect of a private image succeeded"
    );
    let out_dir = work.path().join("out");
    let out_ref = format!("oci:{}:v1", out_dir.display());
    run(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--src-creds",
            ADMIN_CREDS,
            &dest,
            &out_ref,
        ],
    )
    .await;
    let copied_layer = std::fs::read(
        out_dir
            .join("blobs/sha256")
            .join(sha256(&layer).trim_start_matches("sha256:")),
    )
    .expect("layer copied out");
    assert_eq!(copied_layer, layer);
    run(
        "skopeo",
        &[
            "delete",
            "--tls-verify=false",
            "--creds",
            ADMIN_CREDS,
            &dest,
        ],
    )
    .await;
    assert_eq!(
        t.head("/v2/e2e/skopeo/manifests/v1").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.head(&format!("/v2/e2e/skopeo/manifests/{}", sha256(&manifest)))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

async fn containerd_ctr_pull_with_user_and_anonymously(b: Backend) {
    let t = server(b).await;
    let address = std::env::var("BERTH_TEST_CTR_ADDRESS")
        .expect("BERTH_TEST_CTR_ADDRESS is not set: run the suite with scripts/test.sh, which starts containerd");
    let (config, layer, manifest) = valid_image("etc/berth.txt", b"pulled by containerd\n");
    t.push_blob("e2e/ctr", &config).await;
    t.push_blob("e2e/ctr", &layer).await;
    assert_eq!(
        t.put_manifest("e2e/ctr", "v1", OCI_MANIFEST, &manifest)
            .await
            .status(),
        StatusCode::CREATED
    );
    let reference = format!("{}/e2e/ctr:v1", host(&t));
    let ns = format!(
        "berth-e2e-{}",
        t.server.as_ref().expect("server").addr().port()
    );
    let ctr = |extra: &[&str]| {
        let mut args = vec!["--address", address.as_str(), "-n", ns.as_str()];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<String>>()
    };
    let refs = |v: &[String]| v.to_vec();
    // The namespace is private: anonymous pulls fail, --user pulls work.
    let anon = refs(&ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--platform",
        "linux/amd64",
        &reference,
    ]));
    let out = try_run(
        "ctr",
        &anon.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
        None,
    )
    .await;
    assert!(
        !out.status.success(),
        "anonymous ctr pull of a private image succeeded"
    );
    let pull = ctr(&[
        "images",
        "pull",
        "--plain-http",
        "--user",
        ADMIN_CREDS,
        "--platform",
        "linux/amd64",
        &reference,
    ]);
    run("ctr", &pull.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let listed = stdout(
        &run(
            "ctr",
            &ctr(&["images", "ls", "-q"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await,
    );
    assert!(listed.lines().any(|l| l == reference), "{listed}");
    let content = stdout(
        &run(
            "ctr",
            &ctr(&["content", "ls", "-q"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
        .await,
    );
    assert!(
        content.contains(&sha256(&layer)),
        "layer fetched: {content}"
    );
    run(
        "ctr",
        &ctr(&["images", "rm", &reference])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
    // Once public, anonymous pulls work.
    t.directory()
        .set_namespace_public(&Principal::System, "e2e", true)
        .await
        .expect("public");
    run("ctr", &anon.iter().map(String::as_str).collect::<Vec<_>>()).await;
    run(
        "ctr",
        &ctr(&["images", "rm", &reference])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .await;
}

async fn buildah_build_push_and_pull(b: Backend) {
    let t = server(b).await;
    let work = tempfile::tempdir().expect("dir");
    let storage = [
        "--root".to_owned(),
        work.path().join("root").display().to_string(),
        "--runroot".to_owned(),
        work.path().join("run").display().to_string(),
        "--storage-driver".to_owned(),
        "vfs".to_owned(),
    ];
    let buildah = |args: &[&str]| {
        let mut all: Vec<String> = storage.to_vec();
        all.extend(args.iter().map(|s| s.to_string()));
        async move {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            run("buildah", &refs).await
        }
    };
    let file = work.path().join("greeting.txt");
    std::fs::write(&file, "built by buildah\n").expect("write");
    let container = stdout(&buildah(&["from", "scratch"]).await)
        .trim()
        .to_owned();
    buildah(&[
        "copy",
        &container,
        file.to_str().expect("utf8"),
        "/greeting.txt",
    ])
    .await;
    let reference = format!("{}/e2e/buildah:v1", host(&t));
    buildah(&["commit", "-q", &container, &reference]).await;
    buildah(&[
        "push",
        "--tls-verify=false",
        "--creds",
        ADMIN_CREDS,
        &reference,
    ])
    .await;
    assert_eq!(
        t.head("/v2/e2e/buildah/manifests/v1").await.status(),
        StatusCode::OK
    );
    buildah(&["rmi", "-a", "-f"]).await;
    buildah(&[
        "pull",
        "-q",
        "--tls-verify=false",
        "--creds",
        ADMIN_CREDS,
        &reference,
    ])
    .await;
    let images = stdout(&buildah(&["images", "--format", "{{.Name}}:{{.Tag}}"]).await);
    assert!(images.lines().any(|l| l.trim() == reference), "{images}");
}

/// A docker engine of its own (socket, data, exec root, containerd
/// namespace) whose `registry-mirrors` points at Berth; stopped when dropped.
struct MirroredDocker {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl MirroredDocker {
    async fn start(mirror: &str) -> MirroredDocker {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        let host = mirror.trim_start_matches("http://");
        let child = std::process::Command::new("dockerd")
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--bridge=none",
                "--containerd-namespace=berth-mirror",
                "--containerd-plugins-namespace=berth-mirror-plugins",
            ])
            .arg(format!("--data-root={}", d.join("data").display()))
            .arg(format!("--exec-root={}", d.join("x").display()))
            .arg(format!("--pidfile={}", d.join("docker.pid").display()))
            .arg(format!("--host=unix://{}", d.join("docker.sock").display()))
            .arg(format!("--registry-mirror={mirror}"))
            .arg(format!("--insecure-registry={host}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(d.join("dockerd.log")).expect("log"))
            .spawn()
            .expect("dockerd (installed by scripts/test-env.sh)");
        let m = MirroredDocker { dir, child };
        for _ in 0..300 {
            if try_run("docker", &["-H", &m.host(), "info"], &[], None)
                .await
                .status
                .success()
            {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(m.dir.path().join("dockerd.log")).unwrap_or_default();
        panic!("the mirrored dockerd did not start: {log}");
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }
}

impl Drop for MirroredDocker {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// `docker pull alpine`-style names through Berth as the daemon's registry
/// mirror reach the default proxy namespace, which fetches from its
/// upstream (the reference registry) and keeps a copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_registry_mirrors_reach_the_default_proxy_namespace() {
    use crate::common::reference::{client_of, push_remote_image, Reference};
    let up = Reference::start(None).await;
    let (config, layer, _) = valid_image("hello.txt", b"mirrored through Berth\n");
    let digest = push_remote_image(
        &client_of(&up.url(), None),
        "library/mirrored",
        "1",
        &config,
        &layer,
    )
    .await;
    let up_url = up.url();
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.remotes = vec![berth::config::RemoteSection {
            name: "hub".into(),
            url: up_url.clone(),
            ..Default::default()
        }];
        c.proxy_namespaces = vec![berth::config::ProxyNamespaceSection {
            namespace: "hub".into(),
            remote: "hub".into(),
            default: true,
            public: true,
            ..Default::default()
        }];
    })
    .await;
    let docker = MirroredDocker::start(&t.base).await;
    let out = run("docker", &["-H", &docker.host(), "pull", "mirrored:1"]).await;
    assert!(
        stdout(&out).contains(&digest),
        "pulled through the mirror: {}",
        stdout(&out)
    );
    run(
        "docker",
        &["-H", &docker.host(), "image", "inspect", "mirrored:1"],
    )
    .await;
    // A pull that names the proxy namespace itself works too.
    let (config2, layer2, _) = valid_image("other.txt", b"pulled by its cache name\n");
    let digest2 = push_remote_image(
        &client_of(&up.url(), None),
        "library/named",
        "2",
        &config2,
        &layer2,
    )
    .await;
    let named = format!("{}/hub/library/named:2", host(&t));
    let out = run("docker", &["-H", &docker.host(), "pull", &named]).await;
    assert!(stdout(&out).contains(&digest2), "{}", stdout(&out));
    // Berth kept it in the proxy namespace.
    let r = t
        .client
        .get(t.url("/v2/hub/library/mirrored/manifests/1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), digest);
}

/// A normal account (not an administrator) pushes into namespaces that do
/// not exist yet, first time, with docker, podman and skopeo: each push
/// creates a private namespace in the account's own project group.
async fn a_tenant_first_push_creates_its_namespace(b: Backend) {
    let t = server(b).await;
    create_account(&t, "tenant").await;
    let password = "a-long-password";
    let host = host(&t);
    let work = tempfile::tempdir().expect("dir");

    // docker: login, build, push (blob checks, then uploads).
    let ctx = work.path().join("docker");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    let docker_ref = format!("{host}/tenant-docker/app:v1");
    docker_build(&ctx, &docker_ref, &[("a.txt", "a tenant's first push\n")]).await;
    docker_login(&t, "tenant", password).await;
    run("docker", &["push", &docker_ref]).await;
    run("docker", &["rmi", &docker_ref]).await;
    run("docker", &["pull", &docker_ref]).await;
    run("docker", &["rmi", &docker_ref]).await;
    run("docker", &["logout", &host]).await;

    // podman: its own login and storage.
    let pm = Podman::new(&work.path().join("podman"));
    let out = pm.login_as(&host, "tenant", password).await;
    assert!(out.status.success(), "podman login: {}", stderr(&out));
    let pctx = work.path().join("pctx");
    std::fs::create_dir_all(&pctx).expect("mkdir");
    std::fs::write(pctx.join("p.txt"), "from podman").expect("write");
    std::fs::write(
        pctx.join("Containerfile"),
        "FROM scratch\nCOPY p.txt /p.txt\n",
    )
    .expect("write");
    let pctx_s = pctx.display().to_string();
    pm.run(&["build", "-q", "-t", "localhost/tenant-app:v1", &pctx_s])
        .await;
    let podman_dest = format!("docker://{host}/tenant-podman/app:v1");
    pm.run(&[
        "push",
        "--tls-verify=false",
        "--authfile",
        &pm.authfile,
        "localhost/tenant-app:v1",
        &podman_dest,
    ])
    .await;

    // skopeo: its first request is a read.
    let (config, layer, manifest) = valid_image("s.txt", b"from skopeo\n");
    let src = work.path().join("oci");
    write_oci_layout(&src, "v1", &[&config, &layer], &manifest);
    let creds = format!("tenant:{password}");
    run(
        "skopeo",
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:v1", src.display()),
            &format!("docker://{host}/tenant-skopeo/app:v1"),
        ],
    )
    .await;

    let group = t.directory().group("tenant").await.expect("group");
    for ns in ["tenant-docker", "tenant-podman", "tenant-skopeo"] {
        let n = t.directory().namespace(ns).await.expect("created");
        assert!(!n.public, "{ns} is private");
        assert_eq!(n.group_id, group.id, "{ns} is the tenant's");
        let r = client_as("tenant", password)
            .get(t.url(&format!("/v2/{ns}/app/manifests/v1")))
            .header("accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), StatusCode::OK, "{ns}");
    }
}
