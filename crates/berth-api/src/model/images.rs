//! Images and tags.

use berth_core::pull_policy::SignatureCheck;
use berth_core::{ImageListView, ImageView, TagView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::time;

/// An image (repository) in a namespace.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageJson {
    /// Name inside the namespace (may contain `/`).
    #[schema(example = "web/frontend")]
    pub name: String,
    /// Full repository name.
    #[schema(example = "team-a/web/frontend")]
    pub repository: String,
    /// Most recently pushed tag.
    pub latest_tag: Option<String>,
    /// Pulls of the image.
    pub pull_count: i64,
    /// Last pull.
    pub last_pulled: Option<String>,
    /// `docker pull` of the latest tag.
    #[schema(example = "docker pull registry.example.com/team-a/web/frontend:1.2")]
    pub pull_command: Option<String>,
    /// Number of tags.
    pub tag_count: i64,
    /// Bytes of the distinct layers and configs of its manifests.
    pub size: i64,
    /// Created.
    pub created: String,
    /// Last push.
    pub updated: String,
}

impl From<ImageView> for ImageJson {
    fn from(v: ImageView) -> Self {
        let s = v.summary;
        ImageJson {
            name: v.short_name,
            repository: s.name,
            latest_tag: s.latest_tag,
            pull_count: s.pull_count,
            last_pulled: s.last_pulled_at.map(time),
            pull_command: v.pull_command,
            tag_count: s.tag_count,
            size: s.size,
            created: time(s.created_at),
            updated: time(s.updated_at),
        }
    }
}

/// Which images the list across namespaces shows, and filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImageListParams {
    /// Every image (platform administrators; others get 403).
    pub all: Option<bool>,
    /// Also the images of public namespaces you do not belong to.
    pub shared: Option<bool>,
    /// Also the platform namespace's images.
    pub platform: Option<bool>,
    /// Only this namespace's images.
    #[param(
        max_length = 255,
        pattern = "^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$"
    )]
    pub namespace: Option<String>,
    /// Only images of this project group's namespaces.
    pub project_group: Option<String>,
    /// `public` or `private`: only images of such namespaces.
    #[param(pattern = "^(public|private)$")]
    pub visibility: Option<String>,
}

/// An image in the list across namespaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageListJson {
    /// The image, as in a namespace's list.
    #[serde(flatten)]
    pub image: ImageJson,
    /// Its namespace.
    #[schema(example = "team-a")]
    pub namespace: String,
    /// The namespace's status: `available` or `deleting`.
    pub namespace_status: String,
    /// The namespace's visibility: `public` or `private`.
    pub visibility: String,
    /// The namespace's project group.
    pub project_group: String,
}

impl From<ImageListView> for ImageListJson {
    fn from(v: ImageListView) -> Self {
        ImageListJson {
            image: v.image.into(),
            namespace: v.namespace,
            namespace_status: v.namespace_status,
            visibility: if v.public { "public" } else { "private" }.to_owned(),
            project_group: v.group,
        }
    }
}

/// A tag of an image.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagJson {
    /// Tag.
    pub name: String,
    /// Manifest digest.
    pub digest: String,
    /// `docker pull` of this tag.
    pub pull_command: String,
    /// Pulls through this tag (or of its manifest by digest).
    pub pull_count: i64,
    /// Last pull.
    pub last_pulled: Option<String>,
    /// Bytes (manifest, config and layers; for an index, of all its images).
    pub size: i64,
    /// Manifest media type.
    pub media_type: String,
    /// Platforms of an index (`os/arch[/variant]`); empty for one image.
    pub platforms: Vec<String>,
    /// When the tag was pushed.
    pub pushed: String,
    /// With several regions: the regions the image is whole in now
    /// (`available`), and those it is still being copied to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<TagRegionJson>,
    /// With `signatures=true`: the image's signatures as the signature
    /// policies governing the namespace see them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Vec<SignatureJson>>,
    /// With `vulnerabilities=true`: the image's advisories counted per
    /// severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vulnerabilities: Option<VulnerabilitySummaryJson>,
}

/// An image's advisories counted per severity (an index: its images').
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VulnerabilitySummaryJson {
    /// `ready`, `pending` (inventory not made yet) or `not_applicable`
    /// (an artifact without filesystem layers).
    pub status: String,
    /// Critical advisories.
    pub critical: usize,
    /// High.
    pub high: usize,
    /// Medium.
    pub medium: usize,
    /// Low.
    pub low: usize,
    /// Of unknown severity.
    pub unknown: usize,
    /// Of them all, those with a fixed version.
    pub fixable: usize,
}

impl From<berth_core::vulnerabilities::Summary> for VulnerabilitySummaryJson {
    fn from(s: berth_core::vulnerabilities::Summary) -> Self {
        use berth_core::vulnerabilities::SummaryStatus;
        VulnerabilitySummaryJson {
            status: match s.status {
                SummaryStatus::Ready => "ready",
                SummaryStatus::Pending => "pending",
                SummaryStatus::NotApplicable => "not_applicable",
            }
            .to_owned(),
            critical: s.critical,
            high: s.high,
            medium: s.medium,
            low: s.low,
            unknown: s.unknown,
            fixable: s.fixable,
        }
    }
}

/// Options of the tag list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagListOptions {
    /// Include each tag's signatures (who signed, verified or not and why).
    pub signatures: Option<bool>,
    /// Include each tag's advisories counted per severity.
    pub vulnerabilities: Option<bool>,
}

/// Whether an image is available in a region.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagRegionJson {
    /// Region.
    pub region: String,
    /// Every blob of the image is in the region's storage (else pending;
    /// a pull there still works, fetching what is missing).
    pub available: bool,
}

impl From<TagView> for TagJson {
    fn from(v: TagView) -> Self {
        let s = v.summary;
        TagJson {
            name: s.name,
            digest: s.digest.to_string(),
            pull_command: v.pull_command,
            pull_count: s.pull_count,
            last_pulled: s.last_pulled_at.map(time),
            size: s.size,
            media_type: s.media_type,
            platforms: v.platforms,
            pushed: time(s.pushed_at),
            regions: Vec::new(),
            signatures: None,
            vulnerabilities: None,
        }
    }
}

/// What deleting a tag did.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagDeletedJson {
    /// Tag.
    pub tag: String,
    /// The image went too (it was its last tag).
    pub image_deleted: bool,
}

/// A signature of an image.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignatureJson {
    /// Where it was found: `tag sha256-….sig` or `referrer sha256:…`.
    pub source: String,
    /// Whether what the policies governing the namespace trust verifies it.
    pub verified: bool,
    /// Who signed: the trusted key's name, or the keyless signer
    /// (`subject (issuer) via authority`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Why it does not verify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl From<SignatureCheck> for SignatureJson {
    fn from(c: SignatureCheck) -> Self {
        SignatureJson {
            source: c.source,
            verified: c.signer.is_some(),
            signer: c.signer,
            problem: c.problem,
        }
    }
}
