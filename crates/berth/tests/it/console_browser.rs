//! The web console in a real headless Chromium (Debian `chromium` and
//! `chromium-driver`, installed by scripts/test.sh), with a real docker
//! engine pushing and pulling: log in, create a namespace, push, watch the
//! pull count rise, copy a pull command, delete a tag, delete a namespace
//! without and with "delete all images". Screenshots of each main page go
//! to `<target>/tmp/console-screenshots/`.

use std::path::PathBuf;

use crate::common::cli::*;
use crate::common::webdriver::Browser;
use crate::common::*;
use serde_json::json;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// The number in a table cell of the row matching `row`.
async fn pulls(b: &Browser, row: &str) -> i64 {
    b.text(&format!("{row} td.pulls"))
        .await
        .trim()
        .parse()
        .expect("pull count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    let t = TestServer::start(Backend::Sqlite).await;
    let base = t.url("");
    let registry = host(&t);
    let b = Browser::start(&shots()).await;

    // Log in (an unknown session is sent to the login page first).
    b.goto(&format!("{base}/namespaces")).await;
    b.find("#username").await;
    assert!(b.url().await.contains("/login?next="), "{}", b.url().await);
    b.fill("#username", "admin").await;
    b.fill("#password", "wrong password").await;
    b.click("#login").await;
    b.wait_text("Wrong account name or password").await;
    b.screenshot("01-login-failed").await;
    b.fill("#username", "admin").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("#login").await;
    assert_eq!(b.text("#who").await, "admin");
    b.screenshot("02-namespaces").await;

    // Create a namespace through the dialog; a bad name gets a message.
    b.click("#open-create").await;
    b.fill("#ns-name", "web-team").await;
    b.fill("#ns-description", "Front-end images").await;
    b.fill("#ns-labels", "team=web, tier=frontend").await;
    b.screenshot("03-create-dialog").await;
    b.click("#create").await;
    b.wait_text("Namespace web-team created.").await;
    b.screenshot("04-namespace-empty").await;
    b.goto(&format!("{base}/namespaces")).await;
    b.click("#open-create").await;
    b.fill("#ns-name", "web-team").await;
    b.click("#create").await;
    b.wait_text("already exists").await;

    // Push an image with two tags with docker; it shows with its pull command.
    docker_login(&t, "admin", ADMIN_PASSWORD).await;
    let ctx = tempfile::tempdir().expect("tempdir");
    let image = format!("{registry}/web-team/site");
    // Content unique to this run, so the engine holds no copy of the image.
    let page = format!("<h1>hello from {registry}</h1>");
    docker_build(
        ctx.path(),
        &format!("{image}:1.0"),
        &[("index.html", &page)],
    )
    .await;
    run(
        "docker",
        &["tag", &format!("{image}:1.0"), &format!("{image}:2.0")],
    )
    .await;
    run("docker", &["push", &format!("{image}:1.0")]).await;
    run("docker", &["push", &format!("{image}:2.0")]).await;
    b.goto(&format!("{base}/namespaces/web-team")).await;
    let row = "tr[data-image=\"site\"]";
    b.find(row).await;
    assert_eq!(pulls(&b, row).await, 0);
    let shown = b.text(&format!("{row} .pull code")).await;
    assert!(
        shown.starts_with(&format!("docker pull {image}:")),
        "{shown}"
    );
    b.screenshot("05-images").await;

    // Pull with docker: the count rises.
    // Remove the local copy so the engine fetches the manifest (a HEAD
    // alone, which an engine holding the image sends, is not a pull).
    run(
        "docker",
        &["rmi", &format!("{image}:1.0"), &format!("{image}:2.0")],
    )
    .await;
    run("docker", &["pull", &format!("{image}:1.0")]).await;
    b.goto(&format!("{base}/namespaces/web-team")).await;
    assert!(pulls(&b, row).await >= 1, "image pull count after a pull");
    b.goto(&format!("{base}/namespaces")).await;
    assert!(
        pulls(&b, "tr[data-namespace=\"web-team\"]").await >= 1,
        "namespace pull count"
    );
    b.screenshot("06-namespaces-with-pulls").await;

    // The tag list; copy a pull command to the clipboard.
    b.goto(&format!("{base}/namespaces/web-team")).await;
    b.click(&format!("{row} td a")).await;
    b.find("tr[data-tag=\"1.0\"]").await;
    assert!(
        pulls(&b, "tr[data-tag=\"1.0\"]").await >= 1,
        "tag pull count"
    );
    b.grant("clipboard-read").await;
    b.grant("clipboard-write").await;
    b.click("tr[data-tag=\"1.0\"] button.copy").await;
    b.wait_text("Copied").await;
    let clipboard = b
        .script_async(
            "navigator.clipboard.readText().then(arguments[0], e => arguments[0]('error: ' + e))",
        )
        .await;
    assert_eq!(clipboard, json!(format!("docker pull {image}:1.0")));
    b.screenshot("07-tags").await;

    // Delete tag 2.0 through its confirmation dialog.
    b.click("tr[data-tag=\"2.0\"] button.danger").await;
    b.screenshot("08-delete-tag-dialog").await;
    b.click("#confirm-delete-tag").await;
    b.wait_text("Tag 2.0 deleted.").await;
    assert!(b.find_all("tr[data-tag=\"2.0\"]").await.is_empty());
    assert_eq!(t.get("/v2/web-team/site/manifests/2.0").await.status(), 404);
    assert_eq!(t.get("/v2/web-team/site/manifests/1.0").await.status(), 200);

    // Access, registry users, project groups, account and audit pages.
    for (path, shot, expect) in [
        (
            "/namespaces/web-team/access",
            "09-access",
            "Registry user grants",
        ),
        (
            "/registry-users",
            "10-registry-users",
            "No registry users yet",
        ),
        ("/project-groups", "11-project-groups", "admin"),
        ("/account", "12-account", "API tokens"),
        ("/audit", "13-audit", "tag.delete"),
        (
            "/namespaces?tab=platform",
            "14-platform-images",
            "No platform images yet",
        ),
        (
            "/namespaces/web-team/policies",
            "14b-policies",
            "Run retention",
        ),
    ] {
        b.goto(&format!("{base}{path}")).await;
        b.wait_text(expect).await;
        b.screenshot(shot).await;
    }
    b.goto(&format!("{base}/namespaces/nope")).await;
    b.wait_text("not found").await;
    b.screenshot("15-not-found").await;

    // Delete the namespace: refused without the checkbox, done with it.
    b.goto(&format!("{base}/namespaces")).await;
    b.click("tr[data-namespace=\"web-team\"] button.danger")
        .await;
    b.click("#confirm-delete-namespace").await;
    b.wait_text("still holds 1 image(s)").await;
    b.screenshot("16-delete-refused").await;
    assert_eq!(t.get("/v2/web-team/site/manifests/1.0").await.status(), 200);
    b.click("tr[data-namespace=\"web-team\"] button.danger")
        .await;
    b.click("#delete-all-images").await;
    b.screenshot("17-delete-dialog-checked").await;
    b.click("#confirm-delete-namespace").await;
    b.wait_text("Namespace web-team deleted with 1 image(s).")
        .await;
    assert!(b
        .find_all("tr[data-namespace=\"web-team\"]")
        .await
        .is_empty());
    assert_eq!(t.get("/v2/web-team/site/manifests/1.0").await.status(), 404);
    b.screenshot("18-namespace-deleted").await;

    // Log out: the session is gone.
    b.click("#logout").await;
    b.find("#username").await;
    b.goto(&format!("{base}/account")).await;
    b.find("#username").await;
    b.close().await;
    let _ = try_run("docker", &["rmi", &format!("{image}:1.0")], &[], None).await;
}

/// Log in as the platform administrator.
async fn log_in(b: &Browser, base: &str) {
    b.goto(&format!("{base}/login")).await;
    b.fill("#username", "admin").await;
    b.fill("#password", ADMIN_PASSWORD).await;
    b.click("#login").await;
    assert_eq!(b.text("#who").await, "admin");
}

/// Whether the "Delete selected" button is enabled.
async fn batch_enabled(b: &Browser) -> bool {
    b.script(
        "return !document.querySelector('#delete-selected').disabled;",
        json!([]),
    )
    .await
        == json!(true)
}

/// Select several namespaces, images and tags and delete them with one
/// "Delete selected" and its confirmation, as the seeds' consoles do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_deletes_in_a_real_browser() {
    let t = TestServer::start(Backend::Sqlite).await;
    let base = t.url("");
    for tag in ["t1", "t2", "t3"] {
        t.push_image("batch/img1", tag, tag.as_bytes()).await;
    }
    t.push_image("batch/img2", "v1", b"two").await;
    t.push_image("batch/img3", "v1", b"three").await;
    for name in ["empty-one", "empty-two"] {
        let (s, v) = t
            .api(
                reqwest::Method::POST,
                "/api/v1/namespaces",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{v}");
    }
    let b = Browser::start(&shots()).await;
    log_in(&b, &base).await;

    // Tags: nothing selected, nothing to delete; two selected, two deleted.
    b.goto(&format!("{base}/namespaces/batch/tags?image=img1"))
        .await;
    b.find("tr[data-tag=\"t3\"]").await;
    let title = b.script("return document.title;", json!([])).await;
    assert!(
        title
            .as_str()
            .is_some_and(|t| t.contains("batch/img1") && !t.contains("dialog")),
        "page title: {title}"
    );
    assert!(!batch_enabled(&b).await, "enabled with nothing selected");
    b.click("tr[data-tag=\"t1\"] input[type=checkbox]").await;
    b.click("tr[data-tag=\"t2\"] input[type=checkbox]").await;
    assert!(batch_enabled(&b).await);
    b.click("#delete-selected").await;
    assert_eq!(b.text("#batch-delete-tags [data-count]").await, "2");
    b.screenshot("19-batch-delete-tags-dialog").await;
    b.click("#confirm-batch-delete").await;
    b.wait_text("Deleted 2 tag(s): t1, t2.").await;
    assert!(b.find_all("tr[data-tag=\"t1\"]").await.is_empty());
    assert_eq!(t.get("/v2/batch/img1/manifests/t1").await.status(), 404);
    assert_eq!(t.get("/v2/batch/img1/manifests/t2").await.status(), 404);
    assert_eq!(t.get("/v2/batch/img1/manifests/t3").await.status(), 200);

    // Images: select all, leave one out.
    b.goto(&format!("{base}/namespaces/batch")).await;
    b.click("th.select input[type=checkbox]").await;
    b.click("tr[data-image=\"img1\"] input[type=checkbox]")
        .await;
    b.click("#delete-selected").await;
    assert_eq!(b.text("#batch-delete-images [data-count]").await, "2");
    b.screenshot("20-batch-delete-images-dialog").await;
    b.click("#confirm-batch-delete").await;
    b.wait_text("Deleted 2 image(s): img2, img3.").await;
    assert_eq!(t.get("/v2/batch/img2/manifests/v1").await.status(), 404);
    assert_eq!(t.get("/v2/batch/img3/manifests/v1").await.status(), 404);
    assert_eq!(t.get("/v2/batch/img1/manifests/t3").await.status(), 200);

    // Namespaces: the one holding an image is refused without the option
    // (and said why), the empty ones go; then it goes with the option.
    b.goto(&format!("{base}/namespaces")).await;
    for name in ["empty-one", "empty-two", "batch"] {
        b.click(&format!(
            "tr[data-namespace=\"{name}\"] input[type=checkbox]"
        ))
        .await;
    }
    b.click("#delete-selected").await;
    assert_eq!(b.text("#batch-delete-namespaces [data-count]").await, "3");
    b.click("#confirm-batch-delete").await;
    b.wait_text("Deleted 2 namespace(s): empty-one, empty-two.")
        .await;
    b.wait_text("Not deleted: batch").await;
    b.screenshot("21-batch-delete-namespaces-partly").await;
    assert_eq!(t.get("/v2/batch/img1/manifests/t3").await.status(), 200);
    b.click("tr[data-namespace=\"batch\"] input[type=checkbox]")
        .await;
    b.click("#delete-selected").await;
    b.click("#batch-delete-all-images").await;
    b.click("#confirm-batch-delete").await;
    b.wait_text("Deleted 1 namespace(s): batch.").await;
    assert!(b.find_all("tr[data-namespace=\"batch\"]").await.is_empty());
    assert_eq!(t.get("/v2/batch/img1/manifests/t3").await.status(), 404);
    b.screenshot("22-batch-deleted").await;
    b.close().await;
}

/// A namespace's webhooks tab: add a webhook (its generated secret shown
/// once), see a push delivered and recorded, redeliver it, send a test
/// delivery, disable and delete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_in_a_real_browser() {
    // A receiver that takes everything (signatures are the webhooks test's).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let receiver = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let taken = taken.clone();
            move || async move {
                taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.webhooks.allow_private_targets = true;
    })
    .await;
    let base = t.url("");
    let (s, v) = t
        .api(
            reqwest::Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": "hooks"})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{v}");
    let b = Browser::start(&shots()).await;
    log_in(&b, &base).await;

    b.goto(&format!("{base}/namespaces/hooks")).await;
    b.click("a[href=\"/namespaces/hooks/webhooks\"]").await;
    b.find("#no-webhooks").await;
    b.fill("#name", "ci").await;
    b.fill("#url", "ftp://example.com/").await;
    b.click("#create-webhook button[type=submit]").await;
    b.wait_text("must be http:// or https://").await;
    b.fill("#name", "ci").await;
    b.fill("#url", &receiver).await;
    b.screenshot("21-webhook-form").await;
    b.click("#create-webhook button[type=submit]").await;
    b.wait_text("Webhook ci created").await;
    let secret = b.text("#secret").await;
    assert!(secret.len() >= 32, "generated secret {secret:?}");
    b.screenshot("22-webhook-secret").await;

    // A push is delivered and recorded.
    t.push_image("hooks/app", "v1", b"hooked").await;
    let row = "#webhook-ci table.deliveries tbody tr";
    let mut delivered = false;
    for _ in 0..100 {
        b.goto(&format!("{base}/namespaces/hooks/webhooks")).await;
        if !b.find_all(".status-succeeded").await.is_empty() {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered, "the push was delivered");
    assert!(b.text(row).await.contains("image.push"));
    assert!(b.text(row).await.contains("200"));
    b.screenshot("23-webhook-deliveries").await;
    let before = taken.load(std::sync::atomic::Ordering::SeqCst);
    b.click(&format!("{row} button")).await;
    b.wait_text("queued again").await;
    b.click("#webhook-ci button.small").await; // Test delivery
    b.wait_text("Test delivery").await;
    for _ in 0..100 {
        if taken.load(std::sync::atomic::Ordering::SeqCst) >= before + 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        taken.load(std::sync::atomic::Ordering::SeqCst) >= before + 2,
        "redelivery and test delivery arrived"
    );
    b.click("form[action$=\"/disable\"] button").await;
    b.wait_text("Webhook ci disabled.").await;
    b.click("form[action$=\"/delete\"] button").await;
    b.wait_text("Webhook ci deleted.").await;
    b.find("#no-webhooks").await;
    b.close().await;
}

/// The platform's "Remote registries" page: add one (against the
/// reference registry), test its connection, see a failed test explained,
/// delete it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_registries_in_a_real_browser() {
    let reference =
        crate::common::reference::Reference::start(Some(("robot", "robot-password"))).await;
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.encryption_key = Some(berth::config::Secret::new(
            "an-encryption-key-of-at-least-32-characters",
        ));
    })
    .await;
    let base = t.url("");
    let b = Browser::start(&shots()).await;
    log_in(&b, &base).await;
    b.click("a[href=\"/remotes\"]").await;
    b.find("#no-remotes").await;
    b.fill("#name", "lab").await;
    b.fill("#url", &reference.url()).await;
    b.fill("#username", "robot").await;
    b.fill("#password", "robot-password").await;
    b.click("#create-remote button[type=submit]").await;
    b.wait_text("Remote registry lab registered.").await;
    assert!(b
        .text("tr[data-remote=\"lab\"]")
        .await
        .contains("password set"));
    b.click("tr[data-remote=\"lab\"] form[action$=\"/test\"] button")
        .await;
    b.wait_text("answers and accepts the credentials").await;
    b.screenshot("24-remote-registries").await;
    // The password is nowhere on the page.
    let page = b.script("return document.body.innerHTML;", json!([])).await;
    assert!(!page.to_string().contains("robot-password"));
    reference.stop().await;
    b.click("tr[data-remote=\"lab\"] form[action$=\"/test\"] button")
        .await;
    b.wait_text("the connection failed").await;
    b.click("tr[data-remote=\"lab\"] form[action$=\"/delete\"] button")
        .await;
    b.wait_text("Remote registry lab deleted.").await;
    b.find("#no-remotes").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_rules_and_runs_in_a_real_browser() {
    let reference = crate::common::reference::Reference::start(None).await;
    let url = reference.url();
    let t = TestServer::start_with(Backend::Sqlite, |c| {
        c.remotes = vec![berth::config::RemoteSection {
            name: "dr".into(),
            url: url.clone(),
            ..Default::default()
        }];
        c.proxy_namespaces = vec![berth::config::ProxyNamespaceSection {
            namespace: "hub".into(),
            remote: "dr".into(),
            ..Default::default()
        }];
    })
    .await;
    let (s, v) = t
        .api(
            reqwest::Method::POST,
            "/api/v1/namespaces",
            Some(json!({"name": "team"})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{v}");
    t.push_image("team/app", "v1", b"a layer to replicate")
        .await;
    let base = t.url("");
    let b = Browser::start(&shots()).await;
    log_in(&b, &base).await;
    // The proxy namespace is listed with the remotes, read-only.
    b.click("a[href=\"/remotes\"]").await;
    assert!(b.text("tr[data-proxy=\"hub\"]").await.contains("300 s"));
    b.click("a[href=\"/replication\"]").await;
    b.find("#no-rules").await;
    b.fill("#name", "to-dr").await;
    b.fill("#repositories", "team/*").await;
    b.fill("#destination", "copies").await;
    b.click("#create-rule button[type=submit]").await;
    b.wait_text("Replication rule to-dr created.").await;
    assert!(b
        .text("tr[data-rule=\"to-dr\"]")
        .await
        .contains("push to dr"));
    b.click("tr[data-rule=\"to-dr\"] form[action$=\"/run\"] button")
        .await;
    b.wait_text("started.").await;
    // The run's tasks, once done.
    let mut done = false;
    for _ in 0..100 {
        if b.text("#runs").await.contains("succeeded") {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let here = b.url().await;
        b.goto(&here).await;
    }
    assert!(done, "the run succeeded");
    let tasks = b.text("#tasks").await;
    assert!(
        tasks.contains("dr:copies/team/app") && tasks.contains("succeeded"),
        "{tasks}"
    );
    b.screenshot("25-replication").await;
    b.click("tr[data-rule=\"to-dr\"] form[action$=\"/disable\"] button")
        .await;
    b.wait_text("Replication rule to-dr disabled.").await;
    assert!(b.text("tr[data-rule=\"to-dr\"]").await.contains("disabled"));
    b.click("tr[data-rule=\"to-dr\"] form[action$=\"/delete\"] button")
        .await;
    b.wait_text("Replication rule deleted.").await;
    b.find("#no-rules").await;
    b.close().await;
}

/// "Images": an account in two namespaces sees all its images on one page,
/// narrows them by namespace, searches, sorts, pages, deletes a selection,
/// and manages one image's permissions from the image page's tab.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_across_namespaces_in_a_real_browser() {
    let t = TestServer::start(Backend::Sqlite).await;
    let base = t.url("");
    create_account(&t, "dev").await;
    create_account(&t, "viewer").await;
    for (ns, role) in [("shop", "admin"), ("data", "developer")] {
        let (s, v) = t
            .api(
                reqwest::Method::POST,
                "/api/v1/namespaces",
                Some(json!({"name": ns})),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{v}");
        let (s, v) = t
            .api(
                reqwest::Method::PUT,
                &format!("/api/v1/namespaces/{ns}/members/dev"),
                Some(json!({"role": role})),
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::NO_CONTENT, "{v}");
    }
    for i in 0..20 {
        t.push_image(
            &format!("shop/item{i:02}"),
            "v1",
            format!("item {i}").as_bytes(),
        )
        .await;
    }
    t.push_image("data/etl", "v1", b"etl").await;
    t.push_image("data/loader", "v1", b"loader").await;
    t.push_image("library/base", "v1", b"base").await;
    // Pulled twice: first by pulls.
    for _ in 0..2 {
        assert_eq!(t.get("/v2/data/loader/manifests/v1").await.status(), 200);
    }

    let b = Browser::start(&shots()).await;
    b.goto(&format!("{base}/login")).await;
    b.fill("#username", "dev").await;
    b.fill("#password", "a-long-password").await;
    b.click("#login").await;
    assert_eq!(b.text("#who").await, "dev");
    b.click("#nav-images").await;
    b.find("tr[data-image=\"data/etl\"]").await;
    assert!(
        b.text(".pager").await.contains("22 in all"),
        "{}",
        b.text(".pager").await
    );
    assert!(b
        .find_all("tr[data-image=\"library/base\"]")
        .await
        .is_empty());
    b.screenshot("26-images").await;

    // The namespace drop-down applies at once.
    b.script(
        "const s = document.querySelector('#namespace-filter'); s.value = 'data'; \
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([]),
    )
    .await;
    b.wait_text("2 in all").await;
    assert!(
        b.url().await.contains("namespace=data"),
        "{}",
        b.url().await
    );
    assert_eq!(b.find_all("#images tbody tr").await.len(), 2);
    // Sorted by pulls: the pulled one first.
    b.script(
        "const s = document.querySelector('#sort'); s.value = '-pull_count'; \
         s.dispatchEvent(new Event('change', {bubbles: true}));",
        json!([]),
    )
    .await;
    b.wait_text("2 in all").await;
    assert!(
        b.url().await.contains("sort=-pull_count"),
        "{}",
        b.url().await
    );
    assert_eq!(
        b.script(
            "return document.querySelector('#images tbody tr').dataset.image;",
            json!([])
        )
        .await,
        json!("data/loader")
    );
    b.screenshot("27-images-one-namespace").await;
    // Shared: the platform's images too.
    b.click("#show-shared").await;
    b.find("tr[data-image=\"library/base\"]").await;
    // Search, then pages of 20.
    b.goto(&format!("{base}/images?q=item1")).await;
    b.wait_text("10 in all").await;
    b.goto(&format!("{base}/images")).await;
    b.click("a[rel=next]").await;
    b.wait_text("Page 2 of 2").await;
    assert_eq!(b.find_all("#images tbody tr").await.len(), 2);

    // Batch delete across namespaces; it comes back to the same list.
    b.goto(&format!("{base}/images?sort=name")).await;
    b.click("tr[data-image=\"data/etl\"] input[type=checkbox]")
        .await;
    b.click("tr[data-image=\"shop/item00\"] input[type=checkbox]")
        .await;
    b.click("#delete-selected").await;
    assert_eq!(b.text("#batch-delete-images [data-count]").await, "2");
    b.screenshot("28-images-batch-delete").await;
    b.click("#confirm-batch-delete").await;
    b.wait_text("Deleted 2 image(s): data/etl, shop/item00.")
        .await;
    assert!(b.url().await.contains("sort=name"), "{}", b.url().await);
    assert_eq!(t.get("/v2/data/etl/manifests/v1").await.status(), 404);
    assert_eq!(t.get("/v2/shop/item00/manifests/v1").await.status(), 404);

    // The image page: tags, then its permissions, granted and removed here.
    b.click("tr[data-image=\"shop/item01\"] a").await;
    b.find("tr[data-tag=\"v1\"]").await;
    b.click("#permissions-tab").await;
    b.wait_text("No per-image permissions on item01.").await;
    b.fill("#p-account", "viewer").await;
    b.script(
        "document.querySelector('#p-permission').value = 'write';",
        json!([]),
    )
    .await;
    b.click("#grant-permission button[type=submit]").await;
    b.wait_text("viewer may now write item01.").await;
    assert_eq!(
        b.text("tr[data-account=\"viewer\"] td:nth-child(2)").await,
        "write"
    );
    b.screenshot("29-image-permissions").await;
    // The grant works: viewer may push to this image only.
    let viewer = client_as("viewer", "a-long-password");
    let r = viewer
        .get(t.url("/v2/shop/item01/manifests/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, v) = t
        .api_as(&viewer, reqwest::Method::GET, "/api/v1/repositories", None)
        .await;
    assert_eq!(s, reqwest::StatusCode::OK);
    assert_eq!(v["total"], 1, "{v}");
    b.click("tr[data-account=\"viewer\"] button").await;
    b.wait_text("Permission of viewer on item01 removed.").await;
    b.wait_text("No per-image permissions on item01.").await;
    // A developer of data may not change permissions there: no form.
    b.goto(&format!(
        "{base}/namespaces/data/image-permissions?image=loader"
    ))
    .await;
    b.wait_text("No per-image permissions on loader.").await;
    assert!(b.find_all("#grant-permission").await.is_empty());
    b.click("#sync-tab").await;
    b.find("#permissions-tab").await;
    b.close().await;
}
