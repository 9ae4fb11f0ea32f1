//! The endpoint table: every route, method and query the parser knows,
//! and the errors of what it does not.

use super::*;

const D: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

fn repo(s: &str) -> RepoName {
    RepoName::parse(s).expect("valid name")
}

fn digest() -> Digest {
    Digest::parse(D).expect("valid digest")
}

#[test]
fn parses_every_endpoint() {
    let tag = |t: &str| Reference::Tag(Tag::parse(t).expect("tag"));
    let q_mount = format!("mount={D}&from=other/repo");
    let q_digest = format!("digest={D}");
    let cases: Vec<(Method, String, Option<&str>, Endpoint)> = vec![
        (Method::GET, "/v2/".into(), None, Endpoint::Base),
        (Method::GET, "/v2".into(), None, Endpoint::Base),
        (
            Method::GET,
            "/v2/_catalog".into(),
            Some("n=10&last=a"),
            Endpoint::Catalog {
                n: Some(10),
                last: Some("a".into()),
            },
        ),
        (
            Method::GET,
            "/v2/a/b/c/tags/list".into(),
            None,
            Endpoint::Tags {
                repo: repo("a/b/c"),
                n: None,
                last: None,
            },
        ),
        (
            Method::GET,
            "/v2/library/ubuntu/manifests/latest".into(),
            None,
            Endpoint::GetManifest {
                repo: repo("library/ubuntu"),
                reference: tag("latest"),
                head: false,
            },
        ),
        (
            Method::HEAD,
            format!("/v2/x/manifests/{D}"),
            None,
            Endpoint::GetManifest {
                repo: repo("x"),
                reference: Reference::Digest(digest()),
                head: true,
            },
        ),
        (
            Method::PUT,
            format!("/v2/x/manifests/{D}"),
            Some("tag=a&tag=b"),
            Endpoint::PutManifest {
                repo: repo("x"),
                reference: Reference::Digest(digest()),
                tags: vec![Tag::parse("a").expect("t"), Tag::parse("b").expect("t")],
            },
        ),
        (
            Method::DELETE,
            "/v2/x/manifests/v1".into(),
            None,
            Endpoint::DeleteManifest {
                repo: repo("x"),
                reference: tag("v1"),
            },
        ),
        (
            Method::GET,
            format!("/v2/x/y/blobs/{D}"),
            None,
            Endpoint::GetBlob {
                repo: repo("x/y"),
                digest: digest(),
                head: false,
            },
        ),
        (
            Method::DELETE,
            format!("/v2/x/blobs/{D}"),
            None,
            Endpoint::DeleteBlob {
                repo: repo("x"),
                digest: digest(),
            },
        ),
        (
            Method::POST,
            "/v2/x/blobs/uploads/".into(),
            None,
            Endpoint::StartUpload {
                repo: repo("x"),
                digest: None,
                mount: None,
                from: None,
                algorithm: Algorithm::Sha256,
            },
        ),
        (
            Method::POST,
            "/v2/x/blobs/uploads".into(),
            Some("digest-algorithm=sha512"),
            Endpoint::StartUpload {
                repo: repo("x"),
                digest: None,
                mount: None,
                from: None,
                algorithm: Algorithm::Sha512,
            },
        ),
        (
            Method::POST,
            "/v2/x/blobs/uploads/".into(),
            Some(q_mount.as_str()),
            Endpoint::StartUpload {
                repo: repo("x"),
                digest: None,
                mount: Some(digest()),
                from: Some(repo("other/repo")),
                algorithm: Algorithm::Sha256,
            },
        ),
        (
            Method::POST,
            "/v2/x/blobs/uploads/".into(),
            Some(q_digest.as_str()),
            Endpoint::StartUpload {
                repo: repo("x"),
                digest: Some(digest()),
                mount: None,
                from: None,
                algorithm: Algorithm::Sha256,
            },
        ),
        (
            Method::GET,
            "/v2/x/blobs/uploads/abc".into(),
            None,
            Endpoint::UploadStatus {
                repo: repo("x"),
                id: "abc".into(),
            },
        ),
        (
            Method::PATCH,
            "/v2/x/blobs/uploads/abc".into(),
            None,
            Endpoint::UploadChunk {
                repo: repo("x"),
                id: "abc".into(),
            },
        ),
        (
            Method::PUT,
            "/v2/x/blobs/uploads/abc".into(),
            Some(q_digest.as_str()),
            Endpoint::FinishUpload {
                repo: repo("x"),
                id: "abc".into(),
                digest: digest(),
            },
        ),
        (
            Method::DELETE,
            "/v2/x/blobs/uploads/abc".into(),
            None,
            Endpoint::CancelUpload {
                repo: repo("x"),
                id: "abc".into(),
            },
        ),
        (
            Method::GET,
            format!("/v2/x/referrers/{D}"),
            Some("artifactType=application%2Fvnd.example"),
            Endpoint::Referrers {
                repo: repo("x"),
                digest: digest(),
                artifact_type: Some("application/vnd.example".into()),
            },
        ),
        // Names that contain the keywords themselves.
        (
            Method::GET,
            "/v2/blobs/manifests/tags/list".into(),
            None,
            Endpoint::Tags {
                repo: repo("blobs/manifests"),
                n: None,
                last: None,
            },
        ),
        (
            Method::GET,
            "/v2/a/blobs/uploads/manifests/latest".into(),
            None,
            Endpoint::GetManifest {
                repo: repo("a/blobs/uploads"),
                reference: tag("latest"),
                head: false,
            },
        ),
        (
            Method::GET,
            format!("/v2/a/blobs/uploads/blobs/{D}"),
            None,
            Endpoint::GetBlob {
                repo: repo("a/blobs/uploads"),
                digest: digest(),
                head: false,
            },
        ),
    ];
    let mut cases = cases;
    cases.push((
        Method::HEAD,
        format!("/v2/x/blobs/{D}"),
        None,
        Endpoint::GetBlob {
            repo: repo("x"),
            digest: digest(),
            head: true,
        },
    ));
    let mut kinds: Vec<&str> = cases.iter().map(|c| c.3.kind()).collect();
    for (method, path, query, expected) in cases {
        assert_eq!(
            Endpoint::parse(&method, &path, query),
            Ok(expected),
            "{method} {path}"
        );
    }
    // KINDS lists exactly the kinds there are.
    kinds.sort_unstable();
    kinds.dedup();
    let mut all = Endpoint::KINDS.to_vec();
    all.sort_unstable();
    assert_eq!(kinds, all);
}

#[test]
fn refuses_what_does_not_parse() {
    type Case<'a> = (Method, String, Option<&'a str>, fn(&RouteError) -> bool);
    let cases: Vec<Case> = vec![
        (Method::GET, "/v2/x".into(), None, |e| {
            matches!(e, RouteError::NotFound(_))
        }),
        (Method::GET, "/v2/x/unknown/thing".into(), None, |e| {
            matches!(e, RouteError::NotFound(_))
        }),
        (Method::POST, "/v2/".into(), None, |e| {
            matches!(e, RouteError::MethodNotAllowed { .. })
        }),
        (Method::POST, "/v2/x/manifests/latest".into(), None, |e| {
            matches!(e, RouteError::MethodNotAllowed { .. })
        }),
        (
            Method::GET,
            "/v2/UPPER/manifests/latest".into(),
            None,
            |e| matches!(e, RouteError::Name(_)),
        ),
        (Method::GET, "/v2/manifests/latest".into(), None, |e| {
            matches!(e, RouteError::NotFound(_))
        }),
        (Method::GET, "/v2/x/manifests/-bad".into(), None, |e| {
            matches!(e, RouteError::Reference(_))
        }),
        (Method::GET, "/v2/x/manifests/sha256:zz".into(), None, |e| {
            matches!(e, RouteError::Digest(_))
        }),
        (Method::GET, "/v2/x/blobs/nothex".into(), None, |e| {
            matches!(e, RouteError::Digest(_))
        }),
        (Method::GET, "/v2/x/tags/list".into(), Some("n=-1"), |e| {
            matches!(e, RouteError::Query(_))
        }),
        (Method::PUT, "/v2/x/blobs/uploads/abc".into(), None, |e| {
            matches!(e, RouteError::Digest(_))
        }),
        (
            Method::POST,
            "/v2/x/blobs/uploads/".into(),
            Some("digest-algorithm=md5"),
            |e| matches!(e, RouteError::Digest(_)),
        ),
        (
            Method::PUT,
            "/v2/x/manifests/latest".into(),
            Some("tag=bad/tag"),
            |e| matches!(e, RouteError::Reference(_)),
        ),
    ];
    for (method, path, query, check) in cases {
        let got = Endpoint::parse(&method, &path, query);
        assert!(
            matches!(&got, Err(e) if check(e)),
            "{method} {path}: {got:?}"
        );
    }
}

#[test]
fn access_per_endpoint() {
    let get = Endpoint::parse(&Method::GET, "/v2/a/b/manifests/x", None).expect("parse");
    assert_eq!(
        get.access(),
        Access::Repository(vec![(repo("a/b"), Action::Pull)])
    );
    let mount = Endpoint::parse(
        &Method::POST,
        "/v2/a/blobs/uploads/",
        Some(&format!("mount={D}&from=b")),
    )
    .expect("parse");
    assert_eq!(
        mount.access(),
        Access::Repository(vec![(repo("a"), Action::Push)])
    );
    assert_eq!(
        mount.wanted(),
        vec![(repo("a"), Action::Push), (repo("b"), Action::Pull)]
    );
    assert_eq!(get.wanted(), vec![(repo("a/b"), Action::Pull)]);
    let del = Endpoint::parse(&Method::DELETE, &format!("/v2/a/blobs/{D}"), None).expect("parse");
    assert_eq!(
        del.access(),
        Access::Repository(vec![(repo("a"), Action::Delete)])
    );
    assert_eq!(Endpoint::Base.access(), Access::Base);
    assert_eq!(
        Endpoint::Catalog {
            n: None,
            last: None
        }
        .access(),
        Access::Catalog
    );
}
