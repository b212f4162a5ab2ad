//! Reading from a registry: manifests and configs (bounded, checked against
//! their digests) and layer blobs as streams, which a dropped connection
//! resumes with a `Range` request from the byte it stopped at.

use std::io::{self, Read};

use reqwest::StatusCode;
use reqwest::blocking::Response;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, RANGE};

use crate::digest::Digest;
use crate::image::BlobRef;

use super::RegistryError;
use super::access::{Client, Retry};

/// Docker's limit on a manifest.
const MANIFEST_LIMIT: u64 = 4 << 20;
/// A config larger than this is no image config.
pub const CONFIG_LIMIT: u64 = 8 << 20;
/// Redirects followed for one blob (a registry handing it to its storage).
const REDIRECTS: usize = 3;
/// Times a dropped blob download is resumed.
const RESUMES: u32 = 4;

/// The scope a pull from `repository` needs.
pub fn pull_scope(repository: &str) -> Vec<String> {
    vec![format!("repository:{repository}:pull")]
}

/// A manifest as the registry sent it.
pub struct FetchedManifest {
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// The `Content-Type` the registry gave.
    pub content_type: Option<String>,
}

/// The manifest `reference` (a tag or a digest) names in `repository`;
/// `shown` names it in messages. A digest reference must match the bytes.
pub fn manifest(
    client: &Client,
    repository: &str,
    reference: &str,
    shown: &str,
) -> Result<FetchedManifest, RegistryError> {
    let what = format!("GET manifest {}", crate::display::escape(shown));
    let url = client.url(&format!("/v2/{repository}/manifests/{reference}"));
    let response = client.send(&what, &pull_scope(repository), Retry::Yes, &|http| {
        http.get(url.clone())
            .header(ACCEPT, super::manifest::ACCEPT)
    })?;
    let status = response.status();
    if status == StatusCode::NOT_FOUND {
        return Err(not_found(client, shown, repository, response));
    }
    if !status.is_success() {
        return Err(client.refused(&what, status.as_u16(), response));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_bounded(client, response, MANIFEST_LIMIT, &what)?;
    let digest = Digest::of(&bytes);
    if let Ok(expected) = reference.parse::<Digest>() {
        if expected != digest {
            return Err(unusable(
                shown,
                format!(
                    "the registry sent a manifest hashing to {digest}, not to the digest asked for"
                ),
            ));
        }
    }
    Ok(FetchedManifest {
        bytes,
        digest,
        content_type,
    })
}

/// A small blob (a config) whole, checked against its digest and size.
pub fn small_blob(
    client: &Client,
    repository: &str,
    blob: &BlobRef,
    shown: &str,
) -> Result<Vec<u8>, RegistryError> {
    if blob.size > CONFIG_LIMIT {
        return Err(unusable(
            shown,
            format!(
                "its config claims {} bytes, more than a config has",
                blob.size
            ),
        ));
    }
    let mut bytes = Vec::new();
    let what = format!("GET blob {}", blob.digest);
    open_blob(client, repository, blob, shown)?
        .read_to_end(&mut bytes)
        .map_err(|source| read_failure(client, &what, source))?;
    if Digest::of(&bytes) != blob.digest || bytes.len() as u64 != blob.size {
        return Err(unusable(
            shown,
            format!("its blob {} does not hash to its name", blob.digest),
        ));
    }
    Ok(bytes)
}

/// A failure while reading a body: the connection's, as unreachable.
pub fn read_failure(client: &Client, what: &str, source: io::Error) -> RegistryError {
    RegistryError::Unreachable {
        registry: client.host().to_owned(),
        cause: format!("{what}: {source}"),
    }
}

/// A stream of exactly `blob.size` bytes of the blob (fewer only where the
/// registry ends it early, which the reader reports as an error). The
/// caller checks the digest.
pub fn open_blob<'c>(
    client: &'c Client,
    repository: &str,
    blob: &BlobRef,
    shown: &str,
) -> Result<BlobReader<'c>, RegistryError> {
    let mut reader = BlobReader {
        client,
        repository: repository.to_owned(),
        blob: blob.clone(),
        shown: shown.to_owned(),
        response: None,
        offset: 0,
        resumed: 0,
    };
    reader.response = Some(reader.request()?);
    Ok(reader)
}

/// One blob's bytes, resumed where a connection drops.
pub struct BlobReader<'c> {
    client: &'c Client,
    repository: String,
    blob: BlobRef,
    shown: String,
    response: Option<Response>,
    offset: u64,
    resumed: u32,
}

impl BlobReader<'_> {
    /// Asks for the blob from `self.offset` on, following the registry's
    /// redirect to its storage (where no credentials are sent).
    fn request(&self) -> Result<Response, RegistryError> {
        let what = format!("GET blob {}", self.blob.digest);
        let url = self.client.url(&format!(
            "/v2/{}/blobs/{}",
            self.repository, self.blob.digest
        ));
        let offset = self.offset;
        let ranged = |request: reqwest::blocking::RequestBuilder| match offset {
            0 => request,
            n => request.header(RANGE, format!("bytes={n}-")),
        };
        let mut response =
            self.client
                .send(&what, &pull_scope(&self.repository), Retry::Yes, &|http| {
                    ranged(http.get(url.clone()))
                })?;
        let mut hops = 0;
        while response.status().is_redirection() && hops < REDIRECTS {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            response = self
                .client
                .follow(&what, &location, &|request| ranged(request))?;
            hops += 1;
        }
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(RegistryError::NotFound {
                refs: vec![format!(
                    "{} (its blob {} is missing from the registry)",
                    crate::display::escape(&self.shown),
                    self.blob.digest
                )],
            });
        }
        let expected = match offset {
            0 => StatusCode::OK,
            _ => StatusCode::PARTIAL_CONTENT,
        };
        if status != expected {
            return Err(self.client.refused(&what, status.as_u16(), response));
        }
        Ok(response)
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.blob.size - self.offset;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        loop {
            let response = self.response.as_mut().expect("a response is open");
            match response.read(&mut buf[..len]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "the registry ended blob {} after {} of its {} bytes",
                            self.blob.digest, self.offset, self.blob.size
                        ),
                    ));
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(error) if self.resumed < RESUMES => {
                    self.resumed += 1;
                    self.response = None;
                    std::thread::sleep(std::time::Duration::from_millis(500 << self.resumed));
                    match self.request() {
                        Ok(response) => self.response = Some(response),
                        Err(_) => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }
}

fn read_bounded(
    client: &Client,
    response: Response,
    limit: u64,
    what: &str,
) -> Result<Vec<u8>, RegistryError> {
    let mut bytes = Vec::new();
    response
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| read_failure(client, what, source))?;
    if bytes.len() as u64 > limit {
        return Err(RegistryError::Refused {
            registry: client.host().to_owned(),
            what: what.to_owned(),
            status: 200,
            detail: format!(": an answer over {limit} bytes, larger than any manifest"),
        });
    }
    Ok(bytes)
}

/// A 404 for a manifest: the repository or the tag is unknown. Registries
/// (Distribution among them) answer `MANIFEST_UNKNOWN` for both, so the
/// repository's tag list tells them apart, and names the tags it has.
fn not_found(client: &Client, shown: &str, repository: &str, response: Response) -> RegistryError {
    let repository_shown = crate::display::escape(repository);
    let cause = if error_code(response) == "NAME_UNKNOWN" {
        None
    } else {
        tags(client, repository)
    };
    let cause = match cause {
        None => format!(
            "registry {} has no repository {repository_shown}",
            client.host()
        ),
        Some(tags) if tags.is_empty() => format!(
            "registry {} has no such tag or digest in {repository_shown}",
            client.host()
        ),
        Some(tags) => format!(
            "registry {} has no such tag or digest in {repository_shown}, which holds {}",
            client.host(),
            tags.join(", ")
        ),
    };
    RegistryError::NotFound {
        refs: vec![format!("{} ({cause})", crate::display::escape(shown))],
    }
}

/// Tags shown of a repository's list, at most.
const TAGS_SHOWN: usize = 5;

/// Some tags of `repository` (escaped, `…` after the last shown); `None`
/// when the registry says the repository does not exist; empty when it
/// cannot tell.
fn tags(client: &Client, repository: &str) -> Option<Vec<String>> {
    let url = client.url(&format!("/v2/{repository}/tags/list"));
    let Ok(response) = client.send("GET tags", &pull_scope(repository), Retry::No, &|http| {
        http.get(url.clone())
    }) else {
        return Some(Vec::new());
    };
    if response.status() == StatusCode::NOT_FOUND {
        return (error_code(response) != "NAME_UNKNOWN").then(Vec::new);
    }
    let Ok(bytes) = read_bounded(client, response, MANIFEST_LIMIT, "GET tags") else {
        return Some(Vec::new());
    };
    let list: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let all: Vec<&str> = list
        .get("tags")
        .and_then(|t| t.as_array())
        .map(|t| t.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    let mut shown: Vec<String> = all
        .iter()
        .take(TAGS_SHOWN)
        .map(|t| crate::display::escape(t).into_owned())
        .collect();
    if all.len() > TAGS_SHOWN {
        shown.push("…".into());
    }
    Some(shown)
}

/// The first error code of a registry's error answer.
fn error_code(response: Response) -> String {
    let body = response.text().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("errors")?
                .as_array()?
                .first()?
                .get("code")?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// What the registry holds under a reference that airgap cannot use.
pub fn unusable(shown: &str, reason: String) -> RegistryError {
    RegistryError::Unusable {
        reference: crate::display::escape(shown).into_owned(),
        reason,
    }
}
