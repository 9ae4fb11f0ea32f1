//! The registry under test: its URL, HTTP clients (with and without
//! credentials), and the pushes and pulls the scenarios make.

use anyhow::{bail, Context};
use bytes::Bytes;
use reqwest::{Client, StatusCode};

use crate::payload::*;

#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) client: Client,
    pub(crate) anon: Client,
    pub(crate) creds: Option<(String, String)>,
    pub(crate) token_auth: bool,
}

impl Target {
    /// A target at `url`, pushing with `creds` ("user:password") if given.
    pub(crate) fn new(url: &str, creds: Option<&str>, token_auth: bool) -> anyhow::Result<Self> {
        let creds = creds.map(|c| {
            let (u, p) = c.split_once(':').unwrap_or((c, ""));
            (u.to_owned(), p.to_owned())
        });
        let client = Client::builder().pool_max_idle_per_host(64).build()?;
        Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            anon: client.clone(),
            client,
            creds,
            token_auth,
        })
    }

    pub(crate) fn push_req(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.creds {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    pub(crate) async fn push_blob(&self, repo: &str, body: Vec<u8>) -> anyhow::Result<String> {
        let digest = sha256(&body);
        self.push_blob_as(repo, Bytes::from(body), &digest).await?;
        Ok(digest)
    }

    /// Monolithic upload (POST, then PUT with the whole body) of content
    /// whose digest the caller already knows, so that timing it measures the
    /// transfer alone.
    pub(crate) async fn push_blob_as(
        &self,
        repo: &str,
        body: impl Into<reqwest::Body>,
        digest: &str,
    ) -> anyhow::Result<()> {
        let r = self
            .push_req(
                self.client
                    .post(format!("{}/v2/{repo}/blobs/uploads/", self.url)),
            )
            .send()
            .await?;
        if r.status() != StatusCode::ACCEPTED {
            bail!("start upload: {}", r.status());
        }
        let loc = location(&self.url, &r)?;
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self
            .push_req(self.client.put(format!("{loc}{sep}digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!(
                "finish upload: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Chunked upload (PATCH of `CHUNK` bytes each, then PUT) of content
    /// whose digest the caller already knows.
    pub(crate) async fn push_chunked(
        &self,
        repo: &str,
        body: &Bytes,
        digest: &str,
    ) -> anyhow::Result<()> {
        let r = self
            .push_req(
                self.client
                    .post(format!("{}/v2/{repo}/blobs/uploads/", self.url)),
            )
            .send()
            .await?;
        let mut loc = location(&self.url, &r)?;
        for start in (0..body.len()).step_by(CHUNK) {
            let chunk = body.slice(start..(start + CHUNK).min(body.len()));
            let r = self
                .push_req(self.client.patch(&loc))
                .header("content-type", "application/octet-stream")
                .header(
                    "content-range",
                    format!("{start}-{}", start + chunk.len() - 1),
                )
                .body(chunk.clone())
                .send()
                .await?;
            if r.status() != StatusCode::ACCEPTED {
                bail!("chunk: {}", r.status());
            }
            loc = location(&self.url, &r)?;
        }
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self
            .push_req(self.client.put(format!("{loc}{sep}digest={digest}")))
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!("close: {}", r.status());
        }
        Ok(())
    }

    pub(crate) async fn push_manifest(
        &self,
        repo: &str,
        tag: &str,
        config: (&str, usize),
        layers: &[(String, usize)],
    ) -> anyhow::Result<String> {
        let m = manifest_body(config, layers)?;
        self.put_manifest(repo, tag, m).await
    }

    pub(crate) async fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        m: Vec<u8>,
    ) -> anyhow::Result<String> {
        let r = self
            .push_req(
                self.client
                    .put(format!("{}/v2/{repo}/manifests/{tag}", self.url)),
            )
            .header("content-type", MANIFEST_TYPE)
            .body(m.clone())
            .send()
            .await?;
        if r.status() != StatusCode::CREATED {
            bail!(
                "manifest: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            );
        }
        Ok(sha256(&m))
    }

    /// A bearer token for `scope` (Berth), or none (the reference registry).
    pub(crate) async fn bearer(&self, scope: &str) -> anyhow::Result<Option<String>> {
        if !self.token_auth {
            return Ok(None);
        }
        let r = self
            .anon
            .get(format!(
                "{}/auth/token?service=berth&scope={scope}",
                self.url
            ))
            .send()
            .await?;
        let v: serde_json::Value = r.json().await?;
        Ok(v["token"].as_str().map(str::to_owned))
    }
}

pub(crate) fn location(base: &str, r: &reqwest::Response) -> anyhow::Result<String> {
    let l = r
        .headers()
        .get("location")
        .context("no Location header")?
        .to_str()?;
    Ok(if l.starts_with("http") {
        l.to_owned()
    } else {
        format!("{base}{l}")
    })
}
