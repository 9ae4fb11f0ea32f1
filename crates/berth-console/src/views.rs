//! Page data: the templates under `templates/` and the rows they show, with
//! the formatting of sizes, times and labels done here so templates stay
//! plain.

use askama::Template;
use berth_core::model::NamespaceSummary;
use berth_core::token::rfc3339;
use berth_core::{parse_labels, ImageListView, ImageView, Page, TagView};

use crate::viewer::Viewer;

/// What every page's frame shows.
#[derive(Debug, Clone)]
pub struct Layout {
    pub user: String,
    pub is_admin: bool,
    pub csrf: String,
    pub nav: &'static str,
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl Layout {
    pub fn new(viewer: &Viewer, nav: &'static str) -> Self {
        Layout {
            user: viewer.name().to_owned(),
            is_admin: viewer.principal.is_platform_admin(),
            csrf: viewer.csrf.clone(),
            nav,
            notice: None,
            error: None,
        }
    }

    pub fn anonymous() -> Self {
        Layout {
            user: String::new(),
            is_admin: false,
            csrf: String::new(),
            nav: "",
            notice: None,
            error: None,
        }
    }

    /// With the `notice` and `error` messages a redirect carried.
    pub fn messages(mut self, q: &std::collections::HashMap<String, String>) -> Self {
        self.notice = q.get("notice").filter(|s| !s.is_empty()).cloned();
        self.error = q.get("error").filter(|s| !s.is_empty()).cloned();
        self
    }
}

/// `2026-11-22 21:56 UTC` of Unix milliseconds.
pub fn when(ms: i64) -> String {
    let s = rfc3339(ms.div_euclid(1000));
    format!("{} {} UTC", &s[..10], &s[11..16])
}

/// Optional time, `—` when absent.
pub fn when_opt(ms: Option<i64>) -> String {
    ms.map(when).unwrap_or_else(|| "—".into())
}

/// Bytes in binary units.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// `key=value` labels as a list of badges' texts.
pub fn label_texts(labels: &[(String, String)]) -> Vec<String> {
    labels
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect()
}

/// Parse `k=v, k2=v2` from a form.
pub fn parse_label_text(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => Ok((k.trim().to_owned(), v.trim().to_owned())),
            None => Err(format!("label {pair:?} needs the form key=value")),
        })
        .collect()
}

/// Page links.
#[derive(Debug, Clone)]
pub struct Pager {
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// For a page of a list whose URL (without `page`) is `base`.
    pub fn new<T>(page: &Page<T>, base: &str) -> Pager {
        let pages = ((page.total + page.per_page - 1) / page.per_page).max(1);
        let sep = if base.contains('?') { '&' } else { '?' };
        let link = |p: i64| format!("{base}{sep}page={p}");
        Pager {
            page: page.page,
            pages,
            total: page.total,
            prev: (page.page > 1).then(|| link(page.page - 1)),
            next: (page.page < pages).then(|| link(page.page + 1)),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub error: Option<String>,
    pub next: String,
    pub username: String,
    /// Identity providers: (name, button text).
    pub providers: Vec<(String, String)>,
    /// `next`, URL-encoded for the providers' links.
    pub next_enc: String,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage {
    /// The provider's end-session URL.
    pub to: String,
    /// The provider's name, for people.
    pub provider: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub l: Layout,
    pub title: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "secret.html")]
pub struct SecretPage {
    pub l: Layout,
    pub title: String,
    pub explanation: String,
    pub secret: String,
    pub back: String,
}

/// A namespace row.
#[derive(Debug, Clone)]
pub struct NamespaceRow {
    pub name: String,
    pub resource_id: String,
    pub status: String,
    pub public: bool,
    pub external_access: bool,
    pub pulls: i64,
    pub images: i64,
    pub group: String,
    pub labels: Vec<String>,
    pub labels_text: String,
    pub description: String,
    pub category: String,
    pub created: String,
    pub updated: String,
}

impl From<NamespaceSummary> for NamespaceRow {
    fn from(s: NamespaceSummary) -> Self {
        let labels = label_texts(&parse_labels(&s.namespace.labels));
        let n = s.namespace;
        NamespaceRow {
            resource_id: format!("ns-{}", n.id),
            labels_text: labels.join(", "),
            labels,
            name: n.name,
            status: n.status,
            public: n.public,
            external_access: n.external_access,
            pulls: s.pull_count,
            images: s.image_count,
            group: s.group_name,
            description: n.description,
            category: n.category,
            created: when(n.created_at),
            updated: when(n.updated_at),
        }
    }
}

/// An image row.
#[derive(Debug, Clone)]
pub struct ImageRow {
    pub name: String,
    pub latest_tag: String,
    pub pulls: i64,
    pub pull_command: String,
    pub tags: i64,
    pub size: String,
    pub created: String,
    pub updated: String,
    pub tags_url: String,
}

impl ImageRow {
    pub fn new(v: ImageView, namespace: &str) -> Self {
        ImageRow {
            tags_url: format!("/namespaces/{namespace}/tags?image={}", enc(&v.short_name)),
            name: v.short_name,
            latest_tag: v.summary.latest_tag.unwrap_or_default(),
            pulls: v.summary.pull_count,
            pull_command: v.pull_command.unwrap_or_default(),
            tags: v.summary.tag_count,
            size: size(v.summary.size),
            created: when(v.summary.created_at),
            updated: when(v.summary.updated_at),
        }
    }
}

/// An image row of the list across namespaces: the namespace list's row
/// (its `tags_url` is the image page) with the image's namespace.
#[derive(Debug, Clone)]
pub struct ListedImageRow {
    pub row: ImageRow,
    /// Full name.
    pub repository: String,
    pub namespace: String,
    /// The namespace's status when it is not `available`.
    pub status: String,
    pub public: bool,
}

impl ListedImageRow {
    pub fn new(v: ImageListView) -> Self {
        let row = ImageRow::new(v.image, &v.namespace);
        ListedImageRow {
            repository: format!("{}/{}", v.namespace, row.name),
            status: if v.namespace_status == "available" {
                String::new()
            } else {
                v.namespace_status
            },
            namespace: v.namespace,
            public: v.public,
            row,
        }
    }
}

/// A tag row.
#[derive(Debug, Clone)]
pub struct TagRow {
    pub name: String,
    pub digest: String,
    pub short_digest: String,
    pub pull_command: String,
    pub pulls: i64,
    pub last_pulled: String,
    pub size: String,
    pub kind: String,
    pub platforms: Vec<String>,
    pub pushed: String,
    /// (region, whole there) with several regions.
    pub regions: Vec<(String, bool)>,
}

impl From<TagView> for TagRow {
    fn from(v: TagView) -> Self {
        let digest = v.summary.digest.to_string();
        let short_digest = digest.chars().take(19).collect();
        let kind =
            if v.summary.media_type.contains("index") || v.summary.media_type.contains("list") {
                "index"
            } else if v.summary.media_type.contains("image.manifest")
                || v.summary.media_type.contains("distribution.manifest")
            {
                "image"
            } else {
                "artifact"
            };
        TagRow {
            name: v.summary.name,
            short_digest,
            digest,
            pull_command: v.pull_command,
            pulls: v.summary.pull_count,
            last_pulled: when_opt(v.summary.last_pulled_at),
            size: size(v.summary.size),
            kind: kind.to_owned(),
            platforms: v.platforms,
            pushed: when(v.summary.pushed_at),
            regions: Vec::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "namespaces.html")]
pub struct NamespacesPage {
    pub l: Layout,
    pub tab: String,
    pub q: String,
    pub host: String,
    pub platform: String,
    pub rows: Vec<NamespaceRow>,
    pub images: Vec<ImageRow>,
    pub groups: Vec<String>,
    pub pager: Pager,
    pub sort_url_name: String,
    pub sort_url_pulls: String,
    pub sort_url_images: String,
    pub sort_url_updated: String,
}

#[derive(Template)]
#[template(path = "namespace.html")]
pub struct NamespacePage {
    pub l: Layout,
    pub platform: String,
    pub ns: NamespaceRow,
    pub q: String,
    pub host: String,
    pub images: Vec<ImageRow>,
    pub pager: Pager,
    pub edit: bool,
}

#[derive(Template)]
#[template(path = "tags.html")]
pub struct TagsPage {
    pub l: Layout,
    pub ns: String,
    pub image: String,
    /// `image`, encoded for a query string.
    pub image_q: String,
    pub repository: String,
    pub host: String,
    pub q: String,
    pub pulls: i64,
    pub size: String,
    pub tags: Vec<TagRow>,
    pub multi_region: bool,
    pub pager: Pager,
}

#[derive(Template)]
#[template(path = "images.html")]
pub struct ImagesPage {
    pub l: Layout,
    pub show: String,
    pub namespace: String,
    pub namespaces: Vec<String>,
    pub q: String,
    pub sort: String,
    pub sorts: Vec<(&'static str, &'static str)>,
    pub host: String,
    pub images: Vec<ListedImageRow>,
    pub pager: Pager,
    /// This list's URL, for forms to come back to.
    pub back: String,
}

#[derive(Template)]
#[template(path = "image_permissions.html")]
pub struct ImagePermissionsPage {
    pub l: Layout,
    pub ns: String,
    pub image: String,
    /// `image`, encoded for a query string.
    pub image_q: String,
    pub repository: String,
    pub host: String,
    pub tags: i64,
    pub pulls: i64,
    pub size: String,
    /// (account, permission); `None` when the viewer is not a member.
    pub permissions: Option<Vec<(String, String)>>,
    pub may_edit: bool,
}

#[derive(Template)]
#[template(path = "access.html")]
pub struct AccessPage {
    pub l: Layout,
    pub ns: String,
    pub members: Vec<(String, String)>,
    pub permissions: Vec<(String, String, String)>,
    pub grants: Vec<(String, bool, bool)>,
}

/// A registry user row.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub name: String,
    pub description: String,
    pub enabled: bool,
    pub expires: String,
    pub owner: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "registry_users.html")]
pub struct RegistryUsersPage {
    pub l: Layout,
    pub users: Vec<UserRow>,
    /// Trust rules of these users (keyless CI).
    pub rules: Vec<berth_core::identity::TrustRuleView>,
}

/// A project group row.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub name: String,
    pub description: String,
    pub count: i64,
    pub limit: i64,
    pub created: String,
}

#[derive(Template)]
#[template(path = "groups.html")]
pub struct GroupsPage {
    pub l: Layout,
    pub groups: Vec<GroupRow>,
}

#[derive(Template)]
#[template(path = "group.html")]
pub struct GroupPage {
    pub l: Layout,
    pub name: String,
    pub description: String,
    pub count: i64,
    pub limit: i64,
    pub own_limit: String,
    pub used: String,
    pub quota: Option<String>,
    pub quota_text: String,
    pub members: Vec<(String, String)>,
}

/// An API token row.
#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    /// `local`, or the identity provider it signs in through.
    pub origin: String,
    pub l: Layout,
    pub email: String,
    pub has_registry_password: bool,
    pub tokens: Vec<TokenRow>,
    pub api: String,
}

/// An audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub client: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditPage {
    pub l: Layout,
    pub namespace: String,
    pub actor: String,
    pub action: String,
    pub entries: Vec<AuditRow>,
    pub older: Option<String>,
}

/// Percent-encode a query value.
pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_labels_format() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(
            parse_label_text(" team=web , tier = front ").unwrap(),
            vec![
                ("team".into(), "web".into()),
                ("tier".into(), "front".into())
            ]
        );
        assert!(parse_label_text("novalue").is_err());
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
    }
}
