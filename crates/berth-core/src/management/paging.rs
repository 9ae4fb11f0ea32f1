//! Pages of lists: checked page numbers and sizes, and one page of items.

use berth_meta::Window;

use crate::error::DirectoryError;

type Result<T> = std::result::Result<T, DirectoryError>;

/// Largest page a list returns.
pub const MAX_PER_PAGE: i64 = 100;

/// Page number (from 1) and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Page, from 1.
    pub page: i64,
    /// Items per page, 1 to [`MAX_PER_PAGE`].
    pub per_page: i64,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            page: 1,
            per_page: 20,
        }
    }
}

/// The highest page number a list takes.
pub const MAX_PAGE: i64 = 1_000_000_000;

impl Paging {
    /// Checked paging.
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Result<Paging> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(20);
        if page < 1 {
            return Err(DirectoryError::Invalid("page starts at 1".into()));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(DirectoryError::Invalid(format!(
                "per_page must be between 1 and {MAX_PER_PAGE}"
            )));
        }
        // A fixed bound the API document can state (page × per_page must
        // not overflow either way).
        if page > MAX_PAGE || page.checked_mul(per_page).is_none() {
            return Err(DirectoryError::Invalid(format!(
                "page is at most {MAX_PAGE}"
            )));
        }
        Ok(Paging { page, per_page })
    }

    pub(super) fn window(self) -> Window {
        Window {
            offset: (self.page - 1) * self.per_page,
            limit: self.per_page,
        }
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Items matching in all pages.
    pub total: i64,
    /// This page's number.
    pub page: i64,
    /// Page size.
    pub per_page: i64,
}

impl<T> Page<T> {
    pub(super) fn new(items: Vec<T>, total: i64, paging: Paging) -> Self {
        Page {
            items,
            total,
            page: paging.page,
            per_page: paging.per_page,
        }
    }

    /// Turn each item into another.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            page: self.page,
            per_page: self.per_page,
        }
    }
}

/// An image or tag list request.
#[derive(Debug, Clone, Default)]
pub struct ListFilter<S> {
    /// Name contains.
    pub name: Option<String>,
    /// Sort key.
    pub sort: S,
    /// Descending.
    pub descending: bool,
    /// Page.
    pub paging: Paging,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_is_checked() {
        assert_eq!(Paging::new(None, None).unwrap(), Paging::default());
        assert!(Paging::new(Some(0), None).is_err());
        assert!(Paging::new(None, Some(101)).is_err());
        assert!(Paging::new(Some(i64::MAX), Some(100)).is_err());
        assert_eq!(
            Paging::new(Some(3), Some(10)).unwrap().window(),
            Window {
                offset: 20,
                limit: 10
            }
        );
    }
}
