//! The JSON documents of the management API. Times are RFC 3339 UTC
//! strings; sizes are bytes.

mod audit;
mod images;
mod namespaces;
mod people;
mod session;

pub use audit::*;
pub use images::*;
pub use namespaces::*;
pub use people::*;
pub use session::*;

use berth_core::token::rfc3339;
use berth_core::Page;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// RFC 3339 of Unix milliseconds.
pub fn time(ms: i64) -> String {
    rfc3339(ms.div_euclid(1000))
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Paged<T: ToSchema> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items matching, over all pages.
    pub total: i64,
    /// This page (from 1).
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

impl<T: ToSchema> Paged<T> {
    /// From a service page.
    pub fn from_page<S>(page: Page<S>, f: impl FnMut(S) -> T) -> Self {
        let page = page.map(f);
        Paged {
            items: page.items,
            total: page.total,
            page: page.page,
            per_page: page.per_page,
        }
    }
}

/// Paging and sorting parameters shared by the lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page number, from 1 (default 1) to 1000000000.
    #[param(minimum = 1, maximum = 1_000_000_000)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub per_page: Option<i64>,
    /// Only items whose name contains this.
    pub q: Option<String>,
    /// Sort key; see each list. Prefix with `-` for descending.
    pub sort: Option<String>,
}

/// A batch of names to delete (images or tags).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchDelete {
    /// Names.
    #[schema(min_items = 1, max_items = 100)]
    pub names: Vec<String>,
}

/// The outcome of a batch.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct BatchResult {
    /// Names done.
    pub deleted: Vec<String>,
    /// Names refused, each with its problem.
    pub failed: Vec<BatchFailure>,
}

/// One refused item of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchFailure {
    /// Name.
    pub name: String,
    /// Stable code.
    pub code: String,
    /// Why.
    pub detail: String,
}

/// Tell an absent field (`None`) from `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
