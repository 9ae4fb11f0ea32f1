//! An image built by the docker engine from this machine's real content —
//! its os-release and dpkg status, pip's metadata as Debian installed it,
//! npm packages as npm installed them for the test environment, and the
//! containerd `ctr` binary (Go, with its build information) — pushed with
//! `docker push`, is inventoried with every kind of package it holds.

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
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY rootfs/ /\n",
    )
    .unwrap();
    let tagged = format!("{}/team/machine:v1", host(&t));
    run_full(
        "docker",
        &["build", "-q", "-t", &tagged, ctx.path().to_str().unwrap()],
        &[("DOCKER_BUILDKIT", "0")],
        None,
    )
    .await;
    docker_login(&t, "admin", ADMIN_PASSWORD).await;
    let pushed = stdout(&run("docker", &["push", &tagged]).await);
    let digest = pushed
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_else(|| panic!("no digest in push output: {pushed}"))
        .to_owned();
    let _ = run("docker", &["rmi", &tagged]).await;

    let path =
        format!("/api/v1/namespaces/team/repositories/machine/manifests/{digest}/vulnerabilities");
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
    let packages = v["packages"].as_array().unwrap();
    let has = |eco: &str, name: &str| {
        packages.iter().any(|p| {
            p["ecosystem"].as_str().is_some_and(|e| e.starts_with(eco)) && p["name"] == name
        })
    };
    assert!(has("Debian:", "libc6"), "dpkg status");
    assert!(has("PyPI", "pip"), "pip's metadata");
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
}
