//! End-to-end tests with real clients: the docker engine, podman, skopeo and
//! containerd's `ctr`, pushing to and pulling from a real Berth server.
//! scripts/test.sh installs the tools and starts dockerd.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use reqwest::StatusCode;
use tokio::process::Command;

async fn run(program: &str, args: &[&str]) -> Output {
    run_env(program, args, &[]).await
}

async fn run_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program} (scripts/test.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn host(t: &TestServer) -> String {
    t.base.trim_start_matches("http://").to_owned()
}

/// A tar archive holding one file.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_build_push_remove_pull_by_tag_and_digest() {
    let t = TestServer::start(Backend::Sqlite).await;
    let ctx = tempfile::tempdir().expect("ctx");
    for (name, content) in [
        ("a.txt", "first layer\n"),
        ("b.txt", "second layer\n"),
        ("c.txt", "third layer\n"),
    ] {
        std::fs::write(ctx.path().join(name), content).expect("write");
    }
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\nCOPY c.txt /c.txt\n",
    )
    .expect("dockerfile");
    let image = format!("{}/e2e/docker-img", host(&t));
    let tagged = format!("{image}:v1");
    let ctx_path = ctx.path().to_str().expect("utf8");
    run_env(
        "docker",
        &["build", "-q", "-t", &tagged, ctx_path],
        &[("DOCKER_BUILDKIT", "0")],
    )
    .await;
    let pushed = stdout(&run("docker", &["push", &tagged]).await);
    let digest = pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in push output: {pushed}"))
        .to_owned();
    // The registry has it: three layers, tag listed.
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
    assert_eq!(m["layers"].as_array().map(Vec::len), Some(3), "{m}");
    run("docker", &["rmi", &tagged]).await;
    run("docker", &["pull", &tagged]).await;
    let by_digest = format!("{image}@{digest}");
    run("docker", &["pull", &by_digest]).await;
    let inspect = stdout(
        &run(
            "docker",
            &[
                "image",
                "inspect",
                "--format",
                "{{len .RootFS.Layers}}",
                &by_digest,
            ],
        )
        .await,
    );
    assert_eq!(inspect.trim(), "3");
    run("docker", &["rmi", "-f", &tagged, &by_digest]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_multi_arch_manifest_list() {
    let t = TestServer::start(Backend::Sqlite).await;
    let work = tempfile::tempdir().expect("dir");
    let root = work.path().join("root");
    let runroot = work.path().join("run");
    let (root, runroot) = (
        root.to_str().expect("utf8"),
        runroot.to_str().expect("utf8"),
    );
    let podman = |args: Vec<String>| async move {
        let mut all: Vec<String> = [
            "--root",
            root,
            "--runroot",
            runroot,
            "--storage-driver",
            "vfs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        all.extend(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        run("podman", &refs).await
    };
    let ctx = work.path().join("ctx");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    let ctx_s = ctx.to_str().expect("utf8").to_owned();
    for arch in ["amd64", "arm64"] {
        std::fs::write(ctx.join("arch.txt"), arch).expect("write");
        std::fs::write(
            ctx.join("Containerfile"),
            "FROM scratch\nCOPY arch.txt /arch.txt\n",
        )
        .expect("write");
        podman(vec![
            "build".into(),
            "-q".into(),
            "--arch".into(),
            arch.into(),
            "-t".into(),
            format!("localhost/multi:{arch}"),
            ctx_s.clone(),
        ])
        .await;
    }
    podman(vec![
        "manifest".into(),
        "create".into(),
        "localhost/multi:list".into(),
    ])
    .await;
    for arch in ["amd64", "arm64"] {
        podman(vec![
            "manifest".into(),
            "add".into(),
            "localhost/multi:list".into(),
            format!("containers-storage:localhost/multi:{arch}"),
        ])
        .await;
    }
    let dest = format!("docker://{}/e2e/multi:latest", host(&t));
    podman(vec![
        "manifest".into(),
        "push".into(),
        "--all".into(),
        "--tls-verify=false".into(),
        "localhost/multi:list".into(),
        dest,
    ])
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
    podman(vec!["rmi".into(), "-a".into(), "-f".into()]).await;
    podman(vec![
        "pull".into(),
        "-q".into(),
        "--tls-verify=false".into(),
        "--arch".into(),
        "arm64".into(),
        src.clone(),
    ])
    .await;
    let arch = stdout(
        &podman(vec![
            "image".into(),
            "inspect".into(),
            "--format".into(),
            "{{.Architecture}}".into(),
            src,
        ])
        .await,
    );
    assert_eq!(arch.trim(), "arm64");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_oci_layout_in_and_out_then_delete() {
    let t = TestServer::start(Backend::Sqlite).await;
    let work = tempfile::tempdir().expect("dir");
    let (config, layer, manifest) = valid_image("hello.txt", b"hello from skopeo\n");
    let src = work.path().join("src");
    write_oci_layout(&src, "v1", &[&config, &layer], &manifest);
    let dest = format!("docker://{}/e2e/skopeo:v1", host(&t));
    run(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            &format!("oci:{}:v1", src.display()),
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
    let inspect = stdout(&run("skopeo", &["inspect", "--tls-verify=false", &dest]).await);
    let v: serde_json::Value = serde_json::from_str(&inspect).expect("inspect json");
    assert_eq!(v["Digest"], sha256(&manifest));
    let out = work.path().join("out");
    run(
        "skopeo",
        &[
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            &dest,
            &format!("oci:{}:v1", out.display()),
        ],
    )
    .await;
    let copied_layer = std::fs::read(
        out.join("blobs/sha256")
            .join(sha256(&layer).trim_start_matches("sha256:")),
    )
    .expect("layer copied out");
    assert_eq!(copied_layer, layer);
    run("skopeo", &["delete", "--tls-verify=false", &dest]).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_ctr_pull_plain_http() {
    let t = TestServer::start(Backend::Sqlite).await;
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
    run(
        "ctr",
        &[
            "--address",
            &address,
            "-n",
            &ns,
            "images",
            "pull",
            "--plain-http",
            "--platform",
            "linux/amd64",
            &reference,
        ],
    )
    .await;
    let listed = stdout(
        &run(
            "ctr",
            &["--address", &address, "-n", &ns, "images", "ls", "-q"],
        )
        .await,
    );
    assert!(listed.lines().any(|l| l == reference), "{listed}");
    let content = stdout(
        &run(
            "ctr",
            &["--address", &address, "-n", &ns, "content", "ls", "-q"],
        )
        .await,
    );
    assert!(
        content.contains(&sha256(&layer)),
        "layer fetched: {content}"
    );
    run(
        "ctr",
        &["--address", &address, "-n", &ns, "images", "rm", &reference],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildah_build_push_and_pull() {
    let t = TestServer::start(Backend::Sqlite).await;
    let work = tempfile::tempdir().expect("dir");
    let root = work.path().join("root");
    let runroot = work.path().join("run");
    let storage = [
        "--root".to_owned(),
        root.display().to_string(),
        "--runroot".to_owned(),
        runroot.display().to_string(),
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
    buildah(&["push", "--tls-verify=false", &reference]).await;
    assert_eq!(
        t.head("/v2/e2e/buildah/manifests/v1").await.status(),
        StatusCode::OK
    );
    buildah(&["rmi", "-a", "-f"]).await;
    buildah(&["pull", "-q", "--tls-verify=false", &reference]).await;
    let images = stdout(&buildah(&["images", "--format", "{{.Name}}:{{.Tag}}"]).await);
    assert!(images.lines().any(|l| l.trim() == reference), "{images}");
}
