//! Configuration tests: defaults, file then environment, and errors.

use std::time::Duration;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn zero_config_defaults() {
    let c = Config::load(None, env(&[])).expect("defaults");
    assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
    assert_eq!(c.data_dir, PathBuf::from("berth-data"));
    assert_eq!(c.storage_path(), PathBuf::from("berth-data/blobs"));
    assert!(c.database.url.is_none());
    assert_eq!(c.registry.max_manifest_bytes, 4 << 20);
}

#[test]
fn file_then_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("berth.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:6000\"\ndata_dir = \"/srv/berth\"\n[registry]\ndeletes_enabled = false\n",
    )
    .expect("write");
    let c = Config::load(
        Some(&path),
        env(&[
            ("BERTH_LISTEN", "127.0.0.1:7000"),
            ("BERTH_EXTERNAL_URL", "https://r.example"),
            ("BERTH_DATABASE_URL", "postgres://u:hunter2@db/berth"),
            ("BERTH_ADMIN_PASSWORD", "swordfish-admin"),
            ("BERTH_PLATFORM_NAMESPACE", "platform"),
            ("OTHER", "x"),
        ]),
    )
    .expect("load");
    assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
    assert_eq!(c.data_dir, PathBuf::from("/srv/berth"));
    assert!(!c.registry.deletes_enabled);
    assert_eq!(c.external_url.as_deref(), Some("https://r.example"));
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("hunter2"),
        "secrets must be redacted: {debug}"
    );
}

#[test]
fn regions_take_the_issue_shape_and_need_postgres() {
    let text = r#"
region = "north"
[database]
url = "postgres://berth@db/berth"
[regions.north]
storage = { kind = "fs", path = "/srv/berth/north" }
internal_networks = ["10.1.0.0/16"]
[regions.south]
storage = { kind = "s3", s3 = { endpoint = "https://s3.south.example", bucket = "berth", region = "south", access_key_id = "AK", secret_access_key = "very-secret" } }
internal_pulls = false
"#;
    let c = Config::parse(Some(text), env(&[])).expect("regions");
    assert_eq!(c.regions.len(), 2);
    assert_eq!(
        c.local_region().expect("local").storage.path.as_deref(),
        Some(Path::new("/srv/berth/north"))
    );
    let policy = c.network_policy().expect("policy");
    assert_eq!(
        policy.internal.len(),
        1,
        "the region's own internal networks"
    );
    assert!(!format!("{c:?}").contains("very-secret"));
    // A node of the south: no client is internal.
    let south = Config::parse(Some(text), env(&[("BERTH_REGION", "south")])).expect("south");
    assert!(south.network_policy().expect("policy").internal.is_empty());
    // Refused: SQLite, no region named, an unknown one, a region without the table.
    let sqlite = text.replace(r#"url = "postgres://berth@db/berth""#, "");
    let err = Config::parse(Some(&sqlite), env(&[])).expect_err("sqlite");
    assert!(err.to_string().contains("PostgreSQL"), "{err}");
    let err = Config::parse(Some(&text.replace(r#"region = "north""#, "")), env(&[]))
        .expect_err("no region");
    assert!(err.to_string().contains("BERTH_REGION"), "{err}");
    let err = Config::parse(Some(text), env(&[("BERTH_REGION", "west")])).expect_err("west");
    assert!(err.to_string().contains("north, south"), "{err}");
    let err = Config::parse(None, env(&[("BERTH_REGION", "north")])).expect_err("no table");
    assert!(err.to_string().contains("[regions]"), "{err}");
    let err = Config::parse(Some(&text.replace(r#"bucket = "berth", "#, "")), env(&[]))
        .expect_err("bucket");
    assert!(
        err.to_string().contains("regions.south.storage.s3.bucket"),
        "{err}"
    );
    let err =
        Config::parse(Some(&format!("{text}bogus = 1\n")), env(&[])).expect_err("unknown key");
    assert!(format!("{err:#}").contains("bogus"), "{err:#}");
}

#[test]
fn remotes_take_the_issue_shape() {
    let text = r#"
[[remotes]]
name = "dockerhub"
url = "https://registry-1.docker.io"
username = "me"
password = "hub-token"
[[remotes]]
name = "mirror"
url = "http://10.0.0.5:5000"
"#;
    let c = Config::parse(
        Some(text),
        env(&[("BERTH_ENCRYPTION_KEY", "0123456789abcdef0123456789abcdef")]),
    )
    .expect("remotes");
    assert_eq!(c.remotes.len(), 2);
    assert_eq!(c.remotes[0].name, "dockerhub");
    assert!(!format!("{c:?}").contains("hub-token"), "redacted");
    assert!(!format!("{c:?}").contains("0123456789abcdef"), "redacted");
    let declared = c.remotes[0].to_core().expect("core");
    assert_eq!(declared.password.as_deref(), Some("hub-token"));
    let twice = format!("{text}[[remotes]]\nname = \"mirror\"\nurl = \"http://x\"\n");
    let err = Config::parse(Some(&twice), env(&[])).expect_err("twice");
    assert!(err.to_string().contains("declared twice"), "{err}");
    let err = Config::parse(
        Some("[[remotes]]\nname = \"a\"\nurl = \"http://x\"\npassword = \"p\"\n"),
        env(&[]),
    )
    .expect_err("password alone");
    assert!(err.to_string().contains("username"), "{err}");
    let err = Config::parse(
        Some("[[remotes]]\nname = \"a\"\nurl = \"http://x\"\ncolour = 1\n"),
        env(&[]),
    )
    .expect_err("unknown key");
    assert!(format!("{err:#}").contains("colour"), "{err:#}");
    let err =
        Config::parse(None, env(&[("BERTH_ENCRYPTION_KEY", "short")])).expect_err("short key");
    assert!(err.to_string().contains("32"), "{err}");
}

#[test]
fn proxy_namespaces_take_the_issue_shape() {
    let text = r#"
[[remotes]]
name = "dockerhub"
url = "https://registry-1.docker.io"
[[proxy_namespaces]]
namespace = "hub"
remote = "dockerhub"
"#;
    let c = Config::parse(Some(text), env(&[])).expect("proxy");
    let p = c.proxy_namespaces[0].to_core();
    assert_eq!(
        (p.namespace.as_str(), p.remote.as_str()),
        ("hub", "dockerhub")
    );
    assert_eq!(p.revalidate, Duration::from_secs(300));
    assert!(!p.default);
    let twice = format!("{text}[[proxy_namespaces]]\nnamespace = \"hub\"\nremote = \"x\"\n");
    let err = Config::parse(Some(&twice), env(&[])).expect_err("twice");
    assert!(err.to_string().contains("twice"), "{err}");
    let err = Config::parse(
        Some("[[proxy_namespaces]]\nnamespace = \"a/b\"\nremote = \"x\"\n"),
        env(&[]),
    )
    .expect_err("bad name");
    assert!(err.to_string().contains("namespace name"), "{err}");
    let err = Config::parse(
        Some("[[proxy_namespaces]]\nnamespace = \"a\"\nremote = \"x\"\nttl = 1\n"),
        env(&[]),
    )
    .expect_err("unknown key");
    assert!(format!("{err:#}").contains("ttl"), "{err:#}");
}

#[test]
fn bad_values_are_explained() {
    let err = Config::load(None, env(&[("BERTH_LISTEN", "nope")])).expect_err("bad");
    assert!(err.to_string().contains("BERTH_LISTEN"));
    let err = Config::load(None, env(&[("BERTH_TLS_CERT", "/c.pem")])).expect_err("half tls");
    assert!(err.to_string().contains("BERTH_TLS_KEY"));
    let err = Config::load(None, env(&[("BERTH_DATABASE_URL", "mysql://x")])).expect_err("db");
    assert!(err.to_string().contains("postgres"));
    let err = Config::load(
        None,
        env(&[("BERTH_INTERNAL_NETWORKS", "10.0.0.0/8, 10.0.0.0/40")]),
    )
    .expect_err("bad block");
    assert!(err.to_string().contains("10.0.0.0/40"), "{err}");
    let c = Config::load(
        None,
        env(&[
            ("BERTH_INTERNAL_NETWORKS", "10.1.0.0/16, fd00::/8"),
            ("BERTH_TRUSTED_PROXIES", "10.1.0.9"),
            ("BERTH_EXTERNAL_BANDWIDTH", "0"),
        ]),
    )
    .expect("zones");
    assert_eq!(c.network.internal_networks, ["10.1.0.0/16", "fd00::/8"]);
    assert_eq!(
        c.network.to_core().expect("policy").trusted_proxies.len(),
        1
    );
    assert_eq!(c.network.external_bandwidth, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "unknown_key = 1\n").expect("write");
    assert!(Config::load(Some(&path), env(&[])).is_err());
}

#[test]
fn identity_providers_directories_and_mappings() {
    let text = r#"
        [identity]
        clock_skew_secs = 30
        [[identity.oidc]]
        name = "corp"
        issuer = "https://idp.example.com/realms/main"
        client_id = "berth"
        client_secret = "oidc-client-secret"
        groups_claim = "realm_access.roles"
        [[identity.ldap]]
        name = "ad"
        url = "ldaps://dc.example.com"
        bind_dn = "cn=berth,dc=example,dc=com"
        bind_password = "ldap-bind-password"
        user_base = "dc=example,dc=com"
        [[identity.group_mappings]]
        origin = "oidc:corp"
        group = "berth-admin"
        platform_admin = true
        [[identity.group_mappings]]
        origin = "ldap:ad"
        group = "cn=devs,dc=example,dc=com"
        project_group = "team"
        role = "developer"
    "#;
    let c = Config::parse(Some(text), env(&[("BERTH_IDENTITY_CACHE_SECS", "60")])).expect("valid");
    assert_eq!(
        (c.identity.clock_skew_secs, c.identity.cache_secs),
        (30, 60)
    );
    let p = c.identity.oidc[0].to_core();
    assert_eq!(
        (p.username_claim.as_str(), p.scopes.len()),
        ("preferred_username", 2)
    );
    let d = c.identity.ldap[0].to_core().expect("directory");
    assert_eq!(
        (d.user_filter.as_str(), d.id_attribute.as_str()),
        ("(uid={username})", "entryUUID")
    );
    assert_eq!(c.identity.group_mappings.len(), 2);
    let debug = format!("{c:?} {p:?} {d:?}");
    assert!(
        !debug.contains("oidc-client-secret") && !debug.contains("ldap-bind-password"),
        "secrets must be redacted: {debug}"
    );

    for (bad, why) in [
        ("[identity]\nunknown = 1", "unknown field"),
        ("[[identity.oidc]]\nname = \"Corp\"\nissuer = \"https://i\"\nclient_id = \"c\"", "lowercase"),
        ("[[identity.oidc]]\nname = \"c\"\nissuer = \"http://idp.example.com\"\nclient_id = \"c\"", "https"),
        (
            "[[identity.group_mappings]]\norigin = \"oidc:c\"\ngroup = \"g\"\nplatform_admin = true\nnamespace = \"n\"\nrole = \"guest\"",
            "exactly one",
        ),
        ("[[identity.group_mappings]]\norigin = \"oidc:c\"\ngroup = \"g\"\nnamespace = \"n\"", "role is required"),
        ("[[identity.group_mappings]]\norigin = \"oidc:c\"\ngroup = \"g\"\nnamespace = \"n\"\nrole = \"owner\"", "owner"),
    ] {
        let e = Config::parse(Some(bad), env(&[])).expect_err(bad);
        assert!(format!("{e:#}").contains(why), "{bad}: {e:#}");
    }
    // A directory password must not cross the network in clear.
    let plain = LdapSection {
        name: "x".into(),
        url: "ldap://dc.example.com".into(),
        bind_dn: "cn=b".into(),
        user_base: "dc=x".into(),
        ..LdapSection::default()
    };
    assert!(format!("{:#}", plain.to_core().unwrap_err()).contains("starttls"));
}
