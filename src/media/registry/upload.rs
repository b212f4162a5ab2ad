//! The upload half of the registry API, which oci-client lacks: HEAD, a
//! cross-repository mount that falls back to an upload where the registry
//! answers 202, and a chunked upload (POST, PATCH with Content-Range, PUT
//! ?digest=) that goes on from the offset the registry reports (GET on the
//! upload location) after a cut, whether in this run or a later one.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use reqwest::Url;
use reqwest::blocking::{Body, Response};

use crate::image::BlobRef;

use super::RegistryError;
use super::access::{Client, Retry};
use super::interrupt::Held;
use super::state::UploadState;

/// Sent per PATCH: the most an interruption at a chunk boundary waits for.
const CHUNK: u64 = 16 << 20;
/// Times an upload is started again after the registry lost it.
const RESTARTS: u32 = 3;
/// Transient failures of chunks tolerated in one upload.
const CHUNK_FAILURES: u32 = 8;

/// Where a blob's bytes come from.
#[derive(Clone, Copy)]
pub enum Content<'a> {
    /// A file (a compressed layer).
    File(&'a Path),
    /// Bytes in memory (a config).
    Bytes(&'a [u8]),
}

impl Content<'_> {
    fn body(&self, offset: u64, len: u64, streamed: &Arc<AtomicU64>) -> std::io::Result<Body> {
        match self {
            Self::File(path) => {
                let mut file = std::fs::File::open(path)?;
                file.seek(SeekFrom::Start(offset))?;
                let counted = Counted {
                    inner: file.take(len),
                    streamed: Arc::clone(streamed),
                };
                Ok(Body::sized(counted, len))
            }
            Self::Bytes(bytes) => {
                let start = usize::try_from(offset).expect("in-memory offsets fit");
                let end = start + usize::try_from(len).expect("in-memory sizes fit");
                Ok(Body::from(bytes[start..end].to_vec()))
            }
        }
    }
}

/// A request body that counts what the HTTP client has read of it, for a
/// progress bar that follows the upload rather than the chunk answers.
struct Counted<R> {
    inner: R,
    streamed: Arc<AtomicU64>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.streamed.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// How a blob came to be in a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// It was there already.
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded, going on from `resumed_from` bytes a cut upload had sent.
    Uploaded {
        /// Bytes the registry already held of it.
        resumed_from: u64,
    },
}

/// Puts blobs into repositories of one registry.
pub struct Blobs<'a> {
    client: &'a Client,
    state: &'a UploadState,
    held: &'a Held,
    /// Bytes sent in PATCH bodies.
    pub sent: AtomicU64,
    /// Bytes of files handed to the HTTP client so far, acknowledged or
    /// not: what a progress bar shows.
    pub streamed: Arc<AtomicU64>,
    /// What happened that a person would want to know (resumed, restarted).
    pub notes: Mutex<Vec<String>>,
}

enum ChunkFailure {
    /// No answer, or 5xx/408/429: ask the registry where the upload stands.
    Transient(RegistryError),
    /// The registry no longer knows the upload (or its state): start again.
    Lost(RegistryError),
    /// Anything else.
    Fatal(RegistryError),
}

impl<'a> Blobs<'a> {
    /// Blobs going to `client`'s registry, with upload locations kept in `state`.
    pub fn new(client: &'a Client, state: &'a UploadState, held: &'a Held) -> Self {
        Self {
            client,
            state,
            held,
            sent: AtomicU64::new(0),
            streamed: Arc::new(AtomicU64::new(0)),
            notes: Mutex::new(Vec::new()),
        }
    }

    /// True once Ctrl-C or SIGTERM asked the push to stop.
    pub fn interrupted(&self) -> bool {
        self.held.asked()
    }

    fn note(&self, text: String) {
        self.notes.lock().expect("notes lock").push(text);
    }

    /// True when `repository` holds `blob`.
    pub fn exists(&self, repository: &str, blob: &BlobRef) -> Result<bool, RegistryError> {
        let url = self
            .client
            .url(&format!("/v2/{repository}/blobs/{}", blob.digest));
        let what = format!("HEAD {repository} blob {}", blob.digest.short());
        let response = self
            .client
            .send(&what, &push_scope(repository), Retry::Yes, &|http| {
                http.head(url.clone())
            })?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(self.client.refused(&what, status.as_u16(), response)),
        }
    }

    /// Puts `blob` into `repository`: nothing if it is there, a mount from
    /// one of `holders` (repositories of this registry known to hold it),
    /// else an upload of `content`, going on from a saved upload if any.
    pub fn place(
        &self,
        repository: &str,
        blob: &BlobRef,
        holders: &[String],
        content: Content<'_>,
    ) -> Result<Placed, RegistryError> {
        if self.exists(repository, blob)? {
            return Ok(Placed::Present);
        }
        let saved = self.state.location(repository, blob.digest.as_str());
        let mut started = None;
        if saved.is_none() {
            // One holder is enough to ask: a 202 starts an upload anyway.
            if let Some(holder) = holders.iter().find(|h| h.as_str() != repository) {
                match self.mount(repository, blob, holder)? {
                    None => return Ok(Placed::Mounted),
                    Some(location) => started = Some(location),
                }
            }
        }
        self.upload(repository, blob, content, started)
            .map(|resumed_from| Placed::Uploaded { resumed_from })
    }

    /// Asks the registry to mount `blob` from `holder`: `None` when it did,
    /// else the upload it started instead (a 202 means "upload here").
    fn mount(
        &self,
        repository: &str,
        blob: &BlobRef,
        holder: &str,
    ) -> Result<Option<Url>, RegistryError> {
        let mut url = self.client.url(&format!("/v2/{repository}/blobs/uploads/"));
        url.query_pairs_mut()
            .append_pair("mount", blob.digest.as_str())
            .append_pair("from", holder);
        let mut scopes = push_scope(repository);
        scopes.push(format!("repository:{holder}:pull"));
        let what = format!("mounting blob {} into {repository}", blob.digest.short());
        let response = self.client.send(&what, &scopes, Retry::Yes, &|http| {
            http.post(url.clone())
                .header(reqwest::header::CONTENT_LENGTH, 0)
        })?;
        match response.status() {
            StatusCode::CREATED => Ok(None),
            StatusCode::ACCEPTED => self.location(&response, &what).map(Some),
            status => Err(self.client.refused(&what, status.as_u16(), response)),
        }
    }

    /// Uploads `blob` in chunks, from `started` or a saved upload or a new
    /// one; returns the bytes a saved upload already held.
    fn upload(
        &self,
        repository: &str,
        blob: &BlobRef,
        content: Content<'_>,
        started: Option<Url>,
    ) -> Result<u64, RegistryError> {
        let digest = blob.digest.as_str();
        let mut current = match started {
            Some(url) => Some((url, 0)),
            None => self.saved(repository, blob)?,
        };
        let resumed_from = current.as_ref().map_or(0, |(_, offset)| *offset);
        if resumed_from > 0 {
            self.note(format!(
                "blob {} in {repository}: resumed at byte {resumed_from} of {}",
                blob.digest.short(),
                blob.size
            ));
        }
        let mut restarts = 0;
        loop {
            let (url, offset) = match current.take() {
                Some(at) => at,
                None => (self.start(repository, blob)?, 0),
            };
            self.state.save(repository, digest, Some(url.as_str()))?;
            match self.send_chunks(repository, blob, content, url, offset)? {
                Ok(url) => {
                    self.finish(repository, blob, &url)?;
                    self.state.save(repository, digest, None)?;
                    return Ok(resumed_from);
                }
                Err(lost) if restarts < RESTARTS => {
                    restarts += 1;
                    self.note(format!(
                        "blob {} in {repository}: the registry lost the upload ({lost}); started again from byte 0",
                        blob.digest.short()
                    ));
                    self.state.save(repository, digest, None)?;
                }
                Err(lost) => return Err(lost),
            }
        }
    }

    /// The saved upload of `blob`, where the registry still has it.
    fn saved(&self, repository: &str, blob: &BlobRef) -> Result<Option<(Url, u64)>, RegistryError> {
        let Some(saved) = self.state.location(repository, blob.digest.as_str()) else {
            return Ok(None);
        };
        let Ok(url) = self.client.resolve(&saved) else {
            self.state.save(repository, blob.digest.as_str(), None)?;
            return Ok(None);
        };
        let at = self.status(repository, &url)?;
        if at.is_none() {
            self.note(format!(
                "blob {} in {repository}: the registry no longer has the upload an earlier run started; starting again",
                blob.digest.short()
            ));
            self.state.save(repository, blob.digest.as_str(), None)?;
        }
        Ok(at)
    }

    /// Starts an upload; its location.
    fn start(&self, repository: &str, blob: &BlobRef) -> Result<Url, RegistryError> {
        let url = self.client.url(&format!("/v2/{repository}/blobs/uploads/"));
        let what = format!(
            "starting the upload of {} into {repository}",
            blob.digest.short()
        );
        let response = self
            .client
            .send(&what, &push_scope(repository), Retry::Yes, &|http| {
                http.post(url.clone())
                    .header(reqwest::header::CONTENT_LENGTH, 0)
            })?;
        match response.status() {
            StatusCode::ACCEPTED => self.location(&response, &what),
            status => Err(self.client.refused(&what, status.as_u16(), response)),
        }
    }

    /// Where an upload stands: its next location and the bytes the
    /// registry holds; `None` when the registry no longer knows it.
    fn status(&self, repository: &str, url: &Url) -> Result<Option<(Url, u64)>, RegistryError> {
        let what = format!("asking where the upload into {repository} stands");
        let response = self
            .client
            .send(&what, &push_scope(repository), Retry::Yes, &|http| {
                http.get(url.clone())
            })?;
        match response.status() {
            StatusCode::NO_CONTENT => {
                let offset = reached(&response);
                let next = match response.headers().get(reqwest::header::LOCATION) {
                    Some(_) => self.location(&response, &what)?,
                    None => url.clone(),
                };
                Ok(Some((next, offset)))
            }
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => Ok(None),
            status => Err(self.client.refused(&what, status.as_u16(), response)),
        }
    }

    /// Sends the chunks from `offset` on; the location to finish at, or
    /// (inner error) the registry lost the upload.
    #[allow(clippy::type_complexity)]
    fn send_chunks(
        &self,
        repository: &str,
        blob: &BlobRef,
        content: Content<'_>,
        mut url: Url,
        mut offset: u64,
    ) -> Result<Result<Url, RegistryError>, RegistryError> {
        let mut failures = 0;
        while offset < blob.size {
            if self.held.asked() {
                return Err(RegistryError::Interrupted);
            }
            let len = CHUNK.min(blob.size - offset);
            match self.patch(repository, blob, content, &url, offset, len) {
                Ok((next, at)) => {
                    self.sent
                        .fetch_add(at.saturating_sub(offset), Ordering::Relaxed);
                    url = next;
                    offset = at;
                    self.state
                        .save(repository, blob.digest.as_str(), Some(url.as_str()))?;
                }
                Err(ChunkFailure::Transient(error)) => {
                    failures += 1;
                    if failures > CHUNK_FAILURES {
                        return Err(error);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500 << failures.min(4)));
                    match self.status(repository, &url)? {
                        Some((next, at)) => {
                            url = next;
                            offset = at;
                        }
                        None => return Ok(Err(error)),
                    }
                }
                Err(ChunkFailure::Lost(error)) => return Ok(Err(error)),
                Err(ChunkFailure::Fatal(error)) => return Err(error),
            }
        }
        Ok(Ok(url))
    }

    fn patch(
        &self,
        repository: &str,
        blob: &BlobRef,
        content: Content<'_>,
        url: &Url,
        offset: u64,
        len: u64,
    ) -> Result<(Url, u64), ChunkFailure> {
        let what = format!(
            "PATCH of {} bytes at {offset} of blob {} into {repository}",
            len,
            blob.digest.short()
        );
        let body_failed = std::sync::Mutex::new(None);
        let response = self
            .client
            .send(&what, &push_scope(repository), Retry::No, &|http| {
                let request = http
                    .patch(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header(
                        reqwest::header::CONTENT_RANGE,
                        format!("{offset}-{}", offset + len - 1),
                    )
                    .header(reqwest::header::CONTENT_LENGTH, len);
                match content.body(offset, len, &self.streamed) {
                    Ok(body) => request.body(body),
                    Err(error) => {
                        *body_failed.lock().expect("body lock") = Some(error);
                        request
                    }
                }
            });
        if let Some(error) = body_failed.lock().expect("body lock").take() {
            return Err(ChunkFailure::Fatal(RegistryError::Io {
                what: format!("reading the blob {} to upload", blob.digest.short()),
                source: error,
            }));
        }
        let response = match response {
            Ok(response) => response,
            Err(error @ RegistryError::Unreachable { .. }) => {
                return Err(ChunkFailure::Transient(error));
            }
            Err(error) => return Err(ChunkFailure::Fatal(error)),
        };
        let status = response.status();
        match status {
            StatusCode::ACCEPTED | StatusCode::NO_CONTENT => {
                let at = reached(&response);
                let next = self
                    .location(&response, &what)
                    .map_err(ChunkFailure::Fatal)?;
                Ok((next, if at == 0 { offset + len } else { at }))
            }
            StatusCode::NOT_FOUND | StatusCode::RANGE_NOT_SATISFIABLE | StatusCode::BAD_REQUEST => {
                Err(ChunkFailure::Lost(self.client.refused(
                    &what,
                    status.as_u16(),
                    response,
                )))
            }
            status
                if status.is_server_error()
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS =>
            {
                Err(ChunkFailure::Transient(self.client.refused(
                    &what,
                    status.as_u16(),
                    response,
                )))
            }
            status => Err(ChunkFailure::Fatal(self.client.refused(
                &what,
                status.as_u16(),
                response,
            ))),
        }
    }

    /// Closes the upload with its digest; the registry checks the bytes.
    fn finish(&self, repository: &str, blob: &BlobRef, url: &Url) -> Result<(), RegistryError> {
        let mut url = url.clone();
        url.query_pairs_mut()
            .append_pair("digest", blob.digest.as_str());
        let what = format!(
            "completing the upload of {} into {repository}",
            blob.digest.short()
        );
        let response = self
            .client
            .send(&what, &push_scope(repository), Retry::Yes, &|http| {
                http.put(url.clone())
                    .header(reqwest::header::CONTENT_LENGTH, 0)
            })?;
        match response.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT => Ok(()),
            // A retried PUT after one whose answer was lost finds the
            // upload gone and the blob in place.
            status if self.exists(repository, blob)? => {
                let _ = status;
                Ok(())
            }
            status => Err(self.client.refused(&what, status.as_u16(), response)),
        }
    }

    fn location(&self, response: &Response, what: &str) -> Result<Url, RegistryError> {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| RegistryError::Refused {
                registry: self.client.host().to_owned(),
                what: what.to_owned(),
                status: response.status().as_u16(),
                detail: ": no Location header".into(),
            })?;
        self.client.resolve(location)
    }
}

/// The bytes an upload holds, from its `Range: 0-LAST` header.
/// Distribution writes `0-0` for an empty upload, so `0-0` is taken as
/// nothing (a single byte held is then refused with 416 and sent again).
fn reached(response: &Response) -> u64 {
    response
        .headers()
        .get(reqwest::header::RANGE)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.trim().strip_prefix("0-")?.parse::<u64>().ok())
        .map_or(0, |last| if last == 0 { 0 } else { last + 1 })
}

/// The scope a push into `repository` needs.
pub fn push_scope(repository: &str) -> Vec<String> {
    vec![format!("repository:{repository}:pull,push")]
}
