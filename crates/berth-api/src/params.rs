//! Request parameters every handler parses the same way: sort keys,
//! visibility, image names, and batches of names deleted one by one.

use berth_core::token::parse_rfc3339;
use berth_oci::RepoName;

use crate::error::{ApiError, ApiResult};
use crate::model::{BatchFailure, BatchResult};

/// Parse `sort=key` or `sort=-key` (descending) against the allowed keys.
pub(crate) fn parse_sort<T: Copy + Default>(
    sort: Option<&str>,
    keys: &[(&str, T)],
) -> Result<(T, bool), ApiError> {
    let Some(sort) = sort.filter(|s| !s.is_empty()) else {
        return Ok((T::default(), false));
    };
    let (name, descending) = match sort.strip_prefix('-') {
        Some(n) => (n, true),
        None => (sort, false),
    };
    keys.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| (*v, descending))
        .ok_or_else(|| {
            let allowed: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
            ApiError::invalid(format!(
                "unknown sort key {name:?}: use one of {} (prefix - for descending)",
                allowed.join(", ")
            ))
        })
}

/// The `visibility` parameter: `public`, `private` or absent.
pub(crate) fn visibility(v: Option<&str>) -> ApiResult<Option<bool>> {
    match v {
        None => Ok(None),
        Some("public") => Ok(Some(true)),
        Some("private") => Ok(Some(false)),
        Some(v) => Err(ApiError::invalid(format!(
            "unknown visibility {v:?}: use public or private"
        ))),
    }
}

/// Run `delete` on each name of a batch: each deleted or refused on its own.
pub(crate) async fn each_deleted<F, Fut>(names: Vec<String>, mut delete: F) -> BatchResult
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = ApiResult<()>>,
{
    let mut result = BatchResult::default();
    for name in names {
        match delete(name.clone()).await {
            Ok(()) => result.deleted.push(name),
            Err(e) => result.failed.push(failure(name, e)),
        }
    }
    result
}

pub(crate) fn check_batch(names: &[String]) -> ApiResult<()> {
    if names.is_empty() || names.len() > 100 {
        return Err(ApiError::invalid("a batch names 1 to 100 items"));
    }
    Ok(())
}

fn failure(name: String, e: ApiError) -> BatchFailure {
    let p = e.problem();
    BatchFailure {
        name,
        code: p.code.to_owned(),
        detail: p.detail,
    }
}

/// The image `repo` of namespace `ns`. A name of the right grammar that
/// is only too long as a whole names no image there is: not found.
pub(crate) fn repo_name(ns: &str, repo: &str) -> ApiResult<RepoName> {
    if ns.contains('/') {
        return Err(ApiError::invalid(format!("invalid namespace name {ns:?}")));
    }
    let full = format!("{ns}/{repo}");
    RepoName::parse(&full).map_err(|e| {
        let grammatical = full.len() > berth_oci::MAX_NAME_LEN
            && RepoName::parse(ns).is_ok()
            && repo.split('/').all(|c| RepoName::parse(c).is_ok());
        if grammatical {
            ApiError::not_found(format!("image {full} not found"))
        } else {
            ApiError::invalid(format!("invalid image name {full}: {e}"))
        }
    })
}

/// An RFC 3339 time parameter, in Unix milliseconds.
pub(crate) fn time_param(name: &str, value: Option<&str>) -> ApiResult<Option<i64>> {
    value
        .map(|v| {
            parse_rfc3339(v).map(|s| s * 1000).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{name} must be an RFC 3339 time such as 2026-11-22T12:00:00Z"
                ))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    enum K {
        #[default]
        A,
        B,
    }

    #[test]
    fn sort_keys_parse() {
        let keys = [("a", K::A), ("b", K::B)];
        assert_eq!(parse_sort(None, &keys).unwrap(), (K::A, false));
        assert_eq!(parse_sort(Some("b"), &keys).unwrap(), (K::B, false));
        assert_eq!(parse_sort(Some("-b"), &keys).unwrap(), (K::B, true));
        assert!(parse_sort(Some("c"), &keys).is_err());
    }
}
