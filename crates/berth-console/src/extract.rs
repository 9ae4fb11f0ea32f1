//! What a console request carries: the signed-in [`Viewer`] (from the
//! session cookie; without one, a redirect to the login page) and a
//! [`Posted`] form, whose CSRF token is checked before a handler sees it.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::DirectoryError;
use berth_web::{cookie, WebState, SESSION_COOKIE};

use crate::respond::PageError;
use crate::viewer::Viewer;
use crate::views::enc;

impl FromRequestParts<WebState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        let login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Redirect::to(&format!("/login?next={}", enc(next))).into_response()
        };
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(login());
        };
        match state.management.session(&value).await {
            Ok(s) => Ok(Viewer {
                principal: s.principal,
                csrf: s.csrf_token,
                cookie: value,
            }),
            Err(DirectoryError::AuthenticationFailed) => Err(login()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

impl axum::extract::OptionalFromRequestParts<WebState> for Viewer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Viewer as FromRequestParts<WebState>>::from_request_parts(parts, state)
                .await
                .ok(),
        )
    }
}

/// A form post from a signed-in user, with its CSRF token checked.
#[derive(Debug)]
pub(crate) struct Posted {
    pub viewer: Viewer,
    pub fields: HashMap<String, String>,
    /// Every field in order, repeated names included (selections).
    pub pairs: Vec<(String, String)>,
}

impl Posted {
    /// Every value of a repeated field (the checked boxes of a selection),
    /// trimmed, empty ones left out.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }

    /// A field's value, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.fields.get(name).map(|s| s.trim()).unwrap_or("")
    }

    /// A checkbox.
    pub fn checked(&self, name: &str) -> bool {
        self.fields.contains_key(name)
    }
}

impl FromRequest<WebState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &WebState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state).await.map_err(|_| {
            PageError::new(StatusCode::BAD_REQUEST, "The form could not be read.")
                .for_viewer(&viewer)
                .into_response()
        })?;
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
        let fields: HashMap<String, String> = pairs.iter().cloned().collect();
        let sent = fields
            .get("_csrf")
            .map(String::as_bytes)
            .unwrap_or_default();
        let ok = sent.len() == viewer.csrf.len()
            && sent
                .iter()
                .zip(viewer.csrf.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !ok {
            return Err(PageError::new(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this console. Reload the page and try again.",
            )
            .for_viewer(&viewer)
            .into_response());
        }
        Ok(Posted {
            viewer,
            fields,
            pairs,
        })
    }
}
