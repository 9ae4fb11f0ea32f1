//! Who may call each operation, declared in one table and published in the
//! OpenAPI document (`x-berth-access` on every operation). The handlers
//! enforce it through the management service; the declaration is what the
//! authorization test (`crates/berth/tests/authorization.rs`) derives its
//! expectations from, for every operation and every kind of caller, so an
//! operation that lets in more than it declares fails CI.

/// What an operation needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Anyone, anonymous callers included (what they see is theirs).
    Anyone,
    /// A signed-in account, acting on what is its own.
    Account,
    /// The account that owns the record named in the path (a token).
    Owner,
    /// Pull on the namespace or image named (members; anyone for public
    /// namespaces).
    NamespacePull,
    /// A member of the namespace (a project-group or namespace role).
    NamespaceMember,
    /// Delete on the namespace's images and tags (developers and up).
    NamespaceDelete,
    /// The namespace's administrators.
    NamespaceAdmin,
    /// Manage on the image: its namespace's administrators, or a Manage
    /// permission on it.
    ImageManage,
    /// A member of the project group.
    GroupMember,
    /// The project group's administrators.
    GroupAdmin,
    /// The account that owns the registry user named.
    RegistryUserOwner,
    /// The administrators of the webhook's namespace (platform
    /// administrators for platform webhooks).
    WebhookScope,
    /// Platform administrators.
    PlatformAdmin,
    /// A batch: any account may ask; each item is done or refused by its
    /// own rules, and the answer says which.
    EachItem,
}

impl Needs {
    /// The published form.
    pub fn as_str(self) -> &'static str {
        match self {
            Needs::Anyone => "anyone",
            Needs::Account => "account",
            Needs::Owner => "owner",
            Needs::NamespacePull => "namespace-pull",
            Needs::NamespaceMember => "namespace-member",
            Needs::NamespaceDelete => "namespace-delete",
            Needs::NamespaceAdmin => "namespace-admin",
            Needs::ImageManage => "image-manage",
            Needs::GroupMember => "group-member",
            Needs::GroupAdmin => "group-admin",
            Needs::RegistryUserOwner => "registry-user-owner",
            Needs::WebhookScope => "webhook-scope",
            Needs::PlatformAdmin => "platform-admin",
            Needs::EachItem => "each-item",
        }
    }

    /// Every operation but [`Needs::Anyone`] needs an account's
    /// credentials (anonymous callers are answered 401).
    pub fn needs_account(self) -> bool {
        self != Needs::Anyone
    }
}

use Needs::*;

/// Every operation of the API: (method, path, what it needs).
pub const DECLARED: &[(&str, &str, Needs)] = &[
    ("get", "/api/v1/accounts", PlatformAdmin),
    ("post", "/api/v1/accounts", PlatformAdmin),
    ("get", "/api/v1/accounts/me", Account),
    ("patch", "/api/v1/accounts/me", Account),
    ("patch", "/api/v1/accounts/{account}", PlatformAdmin),
    ("get", "/api/v1/audit-log", Account),
    ("get", "/api/v1/gc/runs", PlatformAdmin),
    ("post", "/api/v1/gc/runs", PlatformAdmin),
    ("get", "/api/v1/gc/runs/{id}", PlatformAdmin),
    ("get", "/api/v1/integrity/runs", PlatformAdmin),
    ("post", "/api/v1/integrity/runs", PlatformAdmin),
    ("get", "/api/v1/integrity/runs/{id}", PlatformAdmin),
    ("get", "/api/v1/namespaces", Anyone),
    ("post", "/api/v1/namespaces", Account),
    ("post", "/api/v1/namespaces/batch-delete", EachItem),
    ("delete", "/api/v1/namespaces/{ns}", NamespaceAdmin),
    ("get", "/api/v1/namespaces/{ns}", NamespacePull),
    ("patch", "/api/v1/namespaces/{ns}", NamespaceAdmin),
    ("get", "/api/v1/namespaces/{ns}/grants", NamespaceMember),
    (
        "delete",
        "/api/v1/namespaces/{ns}/grants/{user}",
        NamespaceAdmin,
    ),
    (
        "put",
        "/api/v1/namespaces/{ns}/grants/{user}",
        NamespaceAdmin,
    ),
    ("get", "/api/v1/namespaces/{ns}/members", NamespaceMember),
    (
        "delete",
        "/api/v1/namespaces/{ns}/members/{account}",
        NamespaceAdmin,
    ),
    (
        "put",
        "/api/v1/namespaces/{ns}/members/{account}",
        NamespaceAdmin,
    ),
    (
        "get",
        "/api/v1/namespaces/{ns}/permissions",
        NamespaceMember,
    ),
    (
        "delete",
        "/api/v1/namespaces/{ns}/permissions/{repo}/{account}",
        NamespaceAdmin,
    ),
    (
        "put",
        "/api/v1/namespaces/{ns}/permissions/{repo}/{account}",
        NamespaceAdmin,
    ),
    ("get", "/api/v1/namespaces/{ns}/policies", NamespaceMember),
    (
        "get",
        "/api/v1/namespaces/{ns}/signature-policy",
        NamespaceMember,
    ),
    (
        "put",
        "/api/v1/namespaces/{ns}/signature-policy",
        NamespaceAdmin,
    ),
    (
        "delete",
        "/api/v1/namespaces/{ns}/signature-policy",
        NamespaceAdmin,
    ),
    (
        "post",
        "/api/v1/namespaces/{ns}/signature-policy/dry-run",
        NamespaceMember,
    ),
    (
        "get",
        "/api/v1/namespaces/{ns}/repositories/{repo}/manifests/{digest}/signatures",
        NamespacePull,
    ),
    (
        "get",
        "/api/v1/namespaces/{ns}/repositories/{repo}/manifests/{digest}/vulnerabilities",
        NamespacePull,
    ),
    (
        "get",
        "/api/v1/namespaces/{ns}/repositories/{repo}/manifests/{digest}/sbom",
        NamespacePull,
    ),
    (
        "get",
        "/api/v1/namespaces/{ns}/vulnerability-policy",
        NamespaceMember,
    ),
    (
        "put",
        "/api/v1/namespaces/{ns}/vulnerability-policy",
        NamespaceAdmin,
    ),
    (
        "delete",
        "/api/v1/namespaces/{ns}/vulnerability-policy",
        NamespaceAdmin,
    ),
    ("put", "/api/v1/namespaces/{ns}/policies", NamespaceAdmin),
    (
        "get",
        "/api/v1/namespaces/{ns}/region-copies",
        NamespacePull,
    ),
    (
        "put",
        "/api/v1/namespaces/{ns}/region-copies",
        NamespaceAdmin,
    ),
    ("get", "/api/v1/namespaces/{ns}/replication", NamespacePull),
    ("put", "/api/v1/namespaces/{ns}/replication", NamespaceAdmin),
    ("get", "/api/v1/namespaces/{ns}/repositories", NamespacePull),
    (
        "post",
        "/api/v1/namespaces/{ns}/repositories/batch-delete",
        EachItem,
    ),
    (
        "delete",
        "/api/v1/namespaces/{ns}/repositories/{repo}",
        NamespaceDelete,
    ),
    (
        "get",
        "/api/v1/namespaces/{ns}/repositories/{repo}",
        NamespacePull,
    ),
    (
        "post",
        "/api/v1/namespaces/{ns}/repositories/{repo}/sync",
        ImageManage,
    ),
    (
        "get",
        "/api/v1/namespaces/{ns}/repositories/{repo}/sync-rules",
        NamespacePull,
    ),
    (
        "post",
        "/api/v1/namespaces/{ns}/repositories/{repo}/sync-rules",
        ImageManage,
    ),
    (
        "delete",
        "/api/v1/namespaces/{ns}/repositories/{repo}/sync-rules/{id}",
        ImageManage,
    ),
    (
        "get",
        "/api/v1/namespaces/{ns}/repositories/{repo}/tags",
        NamespacePull,
    ),
    (
        "post",
        "/api/v1/namespaces/{ns}/repositories/{repo}/tags/batch-delete",
        EachItem,
    ),
    (
        "delete",
        "/api/v1/namespaces/{ns}/repositories/{repo}/tags/{tag}",
        NamespaceDelete,
    ),
    (
        "post",
        "/api/v1/namespaces/{ns}/retention/run",
        NamespaceAdmin,
    ),
    ("get", "/api/v1/namespaces/{ns}/webhooks", NamespaceAdmin),
    ("post", "/api/v1/namespaces/{ns}/webhooks", NamespaceAdmin),
    ("get", "/api/v1/platform/repositories", Anyone),
    ("post", "/api/v1/advisories", PlatformAdmin),
    ("get", "/api/v1/advisories/{id}/images", Account),
    ("get", "/api/v1/images/by-package", Account),
    ("get", "/api/v1/platform/signature-policy", Account),
    ("get", "/api/v1/platform/vulnerability-policy", Account),
    (
        "put",
        "/api/v1/platform/vulnerability-policy",
        PlatformAdmin,
    ),
    (
        "delete",
        "/api/v1/platform/vulnerability-policy",
        PlatformAdmin,
    ),
    ("put", "/api/v1/platform/signature-policy", PlatformAdmin),
    ("delete", "/api/v1/platform/signature-policy", PlatformAdmin),
    ("get", "/api/v1/group-mappings", PlatformAdmin),
    ("post", "/api/v1/group-mappings/preview", PlatformAdmin),
    ("post", "/api/v1/group-mappings", PlatformAdmin),
    ("delete", "/api/v1/group-mappings/{id}", PlatformAdmin),
    ("get", "/api/v1/project-groups", Account),
    ("post", "/api/v1/project-groups", PlatformAdmin),
    ("get", "/api/v1/project-groups/{group}", GroupMember),
    ("patch", "/api/v1/project-groups/{group}", PlatformAdmin),
    (
        "delete",
        "/api/v1/project-groups/{group}/members/{account}",
        GroupAdmin,
    ),
    (
        "put",
        "/api/v1/project-groups/{group}/members/{account}",
        GroupAdmin,
    ),
    ("get", "/api/v1/proxy-namespaces", PlatformAdmin),
    ("get", "/api/v1/regions", PlatformAdmin),
    ("get", "/api/v1/registry-users", Account),
    ("post", "/api/v1/registry-users", Account),
    ("delete", "/api/v1/registry-users/{name}", RegistryUserOwner),
    ("get", "/api/v1/registry-users/{name}", RegistryUserOwner),
    ("patch", "/api/v1/registry-users/{name}", RegistryUserOwner),
    (
        "get",
        "/api/v1/registry-users/{name}/trust-rules",
        RegistryUserOwner,
    ),
    (
        "post",
        "/api/v1/registry-users/{name}/trust-rules",
        RegistryUserOwner,
    ),
    (
        "delete",
        "/api/v1/registry-users/{name}/trust-rules/{rule}",
        RegistryUserOwner,
    ),
    (
        "get",
        "/api/v1/registry-users/{name}/trust-rules/{rule}",
        RegistryUserOwner,
    ),
    ("get", "/api/v1/remotes", PlatformAdmin),
    ("post", "/api/v1/remotes", PlatformAdmin),
    ("delete", "/api/v1/remotes/{name}", PlatformAdmin),
    ("get", "/api/v1/remotes/{name}", PlatformAdmin),
    ("patch", "/api/v1/remotes/{name}", PlatformAdmin),
    ("post", "/api/v1/remotes/{name}/test", PlatformAdmin),
    ("get", "/api/v1/replication/rules", PlatformAdmin),
    ("post", "/api/v1/replication/rules", PlatformAdmin),
    ("delete", "/api/v1/replication/rules/{id}", PlatformAdmin),
    ("get", "/api/v1/replication/rules/{id}", PlatformAdmin),
    ("put", "/api/v1/replication/rules/{id}", PlatformAdmin),
    ("post", "/api/v1/replication/rules/{id}/run", PlatformAdmin),
    ("get", "/api/v1/replication/runs", PlatformAdmin),
    ("get", "/api/v1/replication/runs/{id}", PlatformAdmin),
    ("get", "/api/v1/replication/tasks", PlatformAdmin),
    ("get", "/api/v1/repositories", Anyone),
    ("post", "/api/v1/repositories/batch-delete", EachItem),
    ("delete", "/api/v1/session", Anyone),
    ("get", "/api/v1/session", Account),
    ("post", "/api/v1/session", Anyone),
    ("post", "/api/v1/session/sign-out-everywhere", Account),
    ("get", "/api/v1/shared/namespaces", Anyone),
    ("get", "/api/v1/sync-records", NamespaceMember),
    ("delete", "/api/v1/tokens", Account),
    ("get", "/api/v1/tokens", Account),
    ("post", "/api/v1/tokens", Account),
    ("delete", "/api/v1/tokens/{id}", Owner),
    ("get", "/api/v1/trust-rules", PlatformAdmin),
    ("post", "/api/v1/trust-rules/test", PlatformAdmin),
    ("get", "/api/v1/webhooks", PlatformAdmin),
    ("post", "/api/v1/webhooks", PlatformAdmin),
    ("delete", "/api/v1/webhooks/{id}", WebhookScope),
    ("get", "/api/v1/webhooks/{id}", WebhookScope),
    ("patch", "/api/v1/webhooks/{id}", WebhookScope),
    ("get", "/api/v1/webhooks/{id}/deliveries", WebhookScope),
    (
        "get",
        "/api/v1/webhooks/{id}/deliveries/{delivery}",
        WebhookScope,
    ),
    (
        "post",
        "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
        WebhookScope,
    ),
    ("post", "/api/v1/webhooks/{id}/ping", WebhookScope),
];

/// What `method path` declares, if it is an operation.
pub fn declared(method: &str, path: &str) -> Option<Needs> {
    DECLARED
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, n)| *n)
}
