//! Images built by the docker engine from this machine's real content —
//! its os-release and dpkg status, pip's metadata as Debian installed it,
//! requests as pip installed it from PyPI,
//! npm packages as npm installed them for the test environment, the
//! containerd `ctr` binary (Go, with its build information), a Rust
//! program built with `cargo auditable`, Debian's jackson-core Java
//! archive; and an RPM database made by RPM's own tools —
//! pushed with `docker push`, are inventoried with every kind of package
//! they hold, and a real advisory matches what they really contain.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;

use crate::common::cli::*;
use crate::common::*;

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_built_image_of_this_machines_content_is_inventoried() {
    let t = TestServer::start(Backend::Sqlite).await;
    let ctx = tempfile::tempdir().unwrap();
    let root = ctx.path().join("rootfs");
    copy(Path::new("/etc/os-release"), &root.join("etc/os-release"));
    copy(
        Path::new("/var/lib/dpkg/status"),
        &root.join("var/lib/dpkg/status"),
    );
    let pip = std::fs::read_dir("/usr/lib/python3/dist-packages")
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("pip-") && n.ends_with(".dist-info")
        })
        .expect("Debian's python3-pip (scripts/test-env.sh)");
    let pip_dir = pip.file_name().unwrap().to_string_lossy().into_owned();
    copy(
        &pip.join("METADATA"),
        &root.join(format!("usr/lib/python3/dist-packages/{pip_dir}/METADATA")),
    );
    let modules = std::path::PathBuf::from(
        std::env::var("BERTH_TEST_OIDC_MODULES")
            .expect("BERTH_TEST_OIDC_MODULES (scripts/test-env.sh)"),
    );
    for name in ["accepts", "oidc-provider"] {
        copy(
            &modules.join(name).join("package.json"),
            &root.join(format!("srv/app/node_modules/{name}/package.json")),
        );
    }
    copy(Path::new("/usr/bin/ctr"), &root.join("usr/bin/ctr"));
    copy(
        Path::new("/usr/share/java/jackson-core.jar"),
        &root.join("srv/app/lib/jackson-core.jar"),
    );
    // requests 2.30.0 as pip installed it from PyPI (the test environment's
    // venv), in a site-packages of the image.
    let venv = std::env::var("BERTH_TEST_SBOMGEN_DIR")
        .expect("BERTH_TEST_SBOMGEN_DIR (scripts/test-env.sh)");
    let site = std::fs::read_dir(Path::new(&venv).join("lib"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| {
            e.path()
                .join("site-packages/requests-2.30.0.dist-info/METADATA")
        })
        .find(|p| p.exists())
        .expect("requests 2.30.0 in the test environment's venv");
    copy(
        &site,
        &root.join("usr/local/lib/python3.11/site-packages/requests-2.30.0.dist-info/METADATA"),
    );
    let auditable = std::env::var("BERTH_TEST_AUDITABLE_BIN")
        .expect("BERTH_TEST_AUDITABLE_BIN (scripts/test-env.sh)");
    copy(Path::new(&auditable), &root.join("usr/local/bin/hello"));
    let (path, v) = build_push_inventory(&t, ctx.path(), "machine").await;
    let packages = v["packages"].as_array().unwrap();
    let has = |eco: &str, name: &str| {
        packages.iter().any(|p| {
            p["ecosystem"].as_str().is_some_and(|e| e.starts_with(eco)) && p["name"] == name
        })
    };
    assert!(has("Debian:", "libc6"), "dpkg status");
    assert!(has("PyPI", "pip"), "pip's metadata");
    assert!(has("PyPI", "requests"), "requests from PyPI");
    assert!(
        has("npm", "accepts") && has("npm", "oidc-provider"),
        "node_modules"
    );
    // Debian builds its Go programs in GOPATH mode: the build information
    // names the toolchain (the standard library's advisories match it) and
    // no modules (module lists are read in berth-inventory's unit tests).
    assert!(
        packages.iter().any(|p| p["ecosystem"] == "Go"
            && p["name"] == "stdlib"
            && p["version"].as_str().is_some_and(|v| v.starts_with("1."))
            && p["path"] == "usr/bin/ctr"),
        "ctr's Go build information: {:?}",
        packages
            .iter()
            .filter(|p| p["ecosystem"] == "Go")
            .collect::<Vec<_>>()
    );
    assert!(
        packages.iter().any(|p| p["ecosystem"] == "crates.io"
            && p["name"] == "itoa"
            && p["version"] == "1.0.11"
            && p["path"] == "usr/local/bin/hello"),
        "the cargo auditable section: {:?}",
        packages
            .iter()
            .filter(|p| p["ecosystem"] == "crates.io")
            .collect::<Vec<_>>()
    );
    assert!(
        packages.iter().any(|p| p["ecosystem"] == "Maven"
            && p["name"] == "com.fasterxml.jackson.core:jackson-core"
            && p["path"] == "srv/app/lib/jackson-core.jar"),
        "jackson-core's pom.properties: {:?}",
        packages
            .iter()
            .filter(|p| p["ecosystem"] == "Maven")
            .collect::<Vec<_>>()
    );

    // GitHub's advisory for jackson-core before 2.15.0 (Debian 12 ships
    // 2.14.1) finds it, with the fixed version and its severity.
    let (s, r) = t
        .api(
            Method::POST,
            "/api/v1/advisories",
            Some(serde_json::json!({"advisories": [
                crate::vulnerabilities::fixture("GHSA-h46c-h94j-95f3.json"),
                crate::vulnerabilities::fixture("GHSA-j8r2-6x86-q33q.json"),
            ]})),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["images_matched"], 1, "{r}");
    let (_, v) = t.api(Method::GET, &path, None).await;
    let found: Vec<&serde_json::Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["advisory"] == "GHSA-h46c-h94j-95f3")
        .collect();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["fixed"], "2.15.0", "{v}");
    assert_eq!(found[0]["severity"], "high", "{v}");
    assert!(
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["advisory"] == "GHSA-j8r2-6x86-q33q"
                && f["installed"] == "2.30.0"
                && f["fixed"] == "2.31.0"),
        "requests' advisory: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpm_database_made_by_rpm_is_inventoried() {
    let t = TestServer::start(Backend::Sqlite).await;
    let ctx = tempfile::tempdir().unwrap();
    let root = ctx.path().join("rootfs");
    std::fs::create_dir_all(root.join("var/lib/rpm")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"AlmaLinux\"\nVERSION=\"9.4 (Seafoam Ocelot)\"\nID=\"almalinux\"\nVERSION_ID=\"9.4\"\n",
    )
    .unwrap();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../berth-inventory/fixtures/make-rpmdb.sh");
    let db = root.join("var/lib/rpm/rpmdb.sqlite");
    run(script.to_str().unwrap(), &[db.to_str().unwrap()]).await;
    let (_, v) = build_push_inventory(&t, ctx.path(), "alma").await;
    let rpm: Vec<(String, String, String, Option<String>)> = v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["path"] == "var/lib/rpm/rpmdb.sqlite")
        .map(|p| {
            (
                p["ecosystem"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
                p["version"].as_str().unwrap().to_owned(),
                p["source"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(rpm.len(), 15, "{rpm:?}");
    assert!(rpm.iter().all(|p| p.0 == "AlmaLinux:9"), "{rpm:?}");
    assert!(rpm.contains(&(
        "AlmaLinux:9".into(),
        "berth-hello".into(),
        "2:1.2.3-4.el9".into(),
        None
    )));
    assert!(rpm.contains(&(
        "AlmaLinux:9".into(),
        "world-libs".into(),
        "3.0.7-16.el9_2".into(),
        Some("world".into())
    )));
}

/// `docker build` of `ctx` (its `rootfs/` copied onto scratch), pushed
/// as `team/<name>:v1`; the path of the image's vulnerabilities, and what
/// it answers once the image is inventoried.
async fn build_push_inventory(
    t: &TestServer,
    ctx: &Path,
    name: &str,
) -> (String, serde_json::Value) {
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n").unwrap();
    let tagged = format!("{}/team/{name}:v1", host(t));
    run_full(
        "docker",
        &["build", "-q", "-t", &tagged, ctx.to_str().unwrap()],
        &[("DOCKER_BUILDKIT", "0")],
        None,
    )
    .await;
    docker_login(t, "admin", ADMIN_PASSWORD).await;
    let pushed = stdout(&run("docker", &["push", &tagged]).await);
    let digest = pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in push output: {pushed}"))
        .to_owned();
    let _ = run("docker", &["rmi", &tagged]).await;

    let path =
        format!("/api/v1/namespaces/team/repositories/{name}/manifests/{digest}/vulnerabilities");
    let mut v = serde_json::Value::Null;
    for _ in 0..600 {
        let (_, r) = t.api(Method::GET, &path, None).await;
        if r["status"] == "ready" {
            v = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(v["status"], "ready", "not inventoried within a minute: {v}");
    assert_eq!(v["incomplete"], false, "{v}");
    (path, v)
}
