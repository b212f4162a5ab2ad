//! How airgap reaches a registry: TLS by default (rustls with the system's
//! roots, plus `--registry-ca`), plain HTTP or unverified TLS only for a
//! host named by `--plain-http` / `--insecure-skip-verify`, credentials
//! (see [`super::credentials`]), token and Basic auth, and bounded retries
//! of transient failures. Nothing is sent anywhere but the registry named,
//! except a download's redirect to another host (over HTTPS only, without
//! credentials); a token realm or upload location on another host is refused. Shared by every command that talks to a registry.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::blocking::{Client as Http, RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};

use crate::files::untrusted::{Links, read_bounded};

use super::RegistryError;
use super::credentials::{self, Credentials, Login};

/// How to reach registries, from the command line.
#[derive(Clone, Debug, Default)]
pub struct AccessOptions {
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// Hosts (HOST[:PORT]) spoken to over plain HTTP.
    pub plain_http: Vec<String>,
    /// Hosts whose TLS certificate is not checked.
    pub insecure_skip_verify: Vec<String>,
    /// `--registry-user` and the password read from standard input.
    pub login: Option<Login>,
    /// The Docker config directory (default `$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
}

/// Transient failures are tried again this many times, waiting twice as
/// long each time from [`FIRST_WAIT`].
const RETRIES: u32 = 4;
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// A CA bundle larger than this is no CA bundle.
const CA_LIMIT: u64 = 1 << 20;

/// A connection to one registry.
pub struct Client {
    host: String,
    base: Url,
    http: Http,
    credentials: Credentials,
    auth: Mutex<Auth>,
}

#[derive(Default)]
struct Auth {
    challenge: Option<Challenge>,
    /// Bearer tokens by the scopes they were asked for.
    tokens: HashMap<String, String>,
}

#[derive(Clone, Debug)]
enum Challenge {
    Basic,
    Bearer { realm: Url, service: Option<String> },
}

/// Whether a request may simply be sent again after a transient failure
/// (a chunk of an upload may not: the registry may have kept part of it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Send again, with backoff.
    Yes,
    /// Hand the failure back.
    No,
}

impl Client {
    /// A client for `host` (HOST[:PORT]) as `options` say.
    pub fn connect(host: &str, options: &AccessOptions) -> Result<Self, RegistryError> {
        for (flag, named) in [
            ("--plain-http", &options.plain_http),
            ("--insecure-skip-verify", &options.insecure_skip_verify),
        ] {
            if let Some(other) = named.iter().find(|h| h.as_str() != host) {
                return Err(RegistryError::Usage(format!(
                    "{flag} {other} names no registry this command uses (it uses {host}); name the registry exactly as HOST[:PORT]"
                )));
            }
        }
        let plain = options.plain_http.iter().any(|h| h == host);
        let unverified = options.insecure_skip_verify.iter().any(|h| h == host);
        if plain && unverified {
            return Err(RegistryError::Usage(format!(
                "--plain-http and --insecure-skip-verify both name {host}: choose plain HTTP or unverified TLS"
            )));
        }
        let scheme = if plain { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{host}/")).map_err(|error| {
            RegistryError::InvalidAddress {
                given: host.to_owned(),
                reason: error.to_string(),
            }
        })?;
        let mut builder = Http::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("airgap/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &options.ca_file {
            for certificate in read_ca(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if unverified {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder.build().map_err(|error| {
            RegistryError::Usage(format!("cannot set up the HTTP client: {}", chain(&error)))
        })?;
        let credentials = credentials::find(
            host,
            options.login.clone(),
            options.docker_config.as_deref(),
        )?;
        Ok(Self {
            host: host.to_owned(),
            base,
            http,
            credentials,
            auth: Mutex::new(Auth::default()),
        })
    }

    /// HOST[:PORT].
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL of `path` (which starts with `/v2/`) on this registry.
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("a path joins onto a base URL")
    }

    /// `location` (a `Location` header or a saved upload location) as a
    /// URL on this registry; refused when it points anywhere else.
    pub fn resolve(&self, location: &str) -> Result<Url, RegistryError> {
        let url = self
            .base
            .join(location)
            .map_err(|_| RegistryError::Elsewhere {
                registry: self.host.clone(),
                url: crate::display::escape(location).into_owned(),
            })?;
        if !self.same_origin(&url) {
            return Err(RegistryError::Elsewhere {
                registry: self.host.clone(),
                url: crate::display::escape(url.as_str()).into_owned(),
            });
        }
        Ok(url)
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
    }

    /// Checks the registry answers the v2 API, that its certificate is
    /// trusted and that the credentials are accepted, before anything is sent.
    pub fn ping(&self) -> Result<(), RegistryError> {
        let response = self.send("GET /v2/", &[], Retry::Yes, &|http| {
            http.get(self.url("/v2/"))
        })?;
        match response.status() {
            status if status.is_success() => Ok(()),
            status => Err(self.refused("GET /v2/", response_status(status), response)),
        }
    }

    /// Sends the request `build` makes (again for every try), with the
    /// authorization `scopes` need; a 401 is answered once by
    /// authenticating as the registry asks, transient failures are retried
    /// when `retry` allows. A 401 or 403 is never retried.
    pub fn send(
        &self,
        what: &str,
        scopes: &[String],
        retry: Retry,
        build: &dyn Fn(&Http) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            let mut request = build(&self.http);
            if let Some(header) = self.authorization(scopes)? {
                request = request.header(AUTHORIZATION, header);
            }
            match request.send() {
                Ok(response) => {
                    let status = response.status();
                    if status == StatusCode::UNAUTHORIZED && !authenticated {
                        authenticated = true;
                        self.learn(&response, scopes)?;
                        continue;
                    }
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        return Err(self.unauthorized(status.as_u16()));
                    }
                    if !transient_status(status) || retry == Retry::No || attempt >= RETRIES {
                        return Ok(response);
                    }
                }
                Err(error) => {
                    let failure = self.failure(&error);
                    let transient = matches!(failure, RegistryError::Unreachable { .. });
                    if !transient || retry == Retry::No || attempt >= RETRIES {
                        return Err(match failure {
                            RegistryError::Unreachable { registry, cause } => {
                                RegistryError::Unreachable {
                                    registry,
                                    cause: format!("{what}: {cause}"),
                                }
                            }
                            other => other,
                        });
                    }
                }
            }
            std::thread::sleep(FIRST_WAIT * 2u32.pow(attempt));
            attempt += 1;
        }
    }

    /// Follows a registry's redirect of a download (a blob handed to its
    /// storage): on the registry itself with its credentials, elsewhere
    /// (a CDN) without any and over HTTPS only, since what comes back is
    /// checked against its digest anyway. Nothing is sent but the GET.
    pub fn follow(
        &self,
        what: &str,
        location: &str,
        adjust: &dyn Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let elsewhere = || RegistryError::Elsewhere {
            registry: self.host.clone(),
            url: crate::display::escape(location).into_owned(),
        };
        let url = self.base.join(location).map_err(|_| elsewhere())?;
        if self.same_origin(&url) {
            return self.send(what, &[], Retry::Yes, &|http| adjust(http.get(url.clone())));
        }
        if url.scheme() != "https" {
            return Err(RegistryError::PlainRedirect {
                registry: self.host.clone(),
                url: crate::display::escape(url.as_str()).into_owned(),
            });
        }
        let mut attempt = 0;
        loop {
            match adjust(self.http.get(url.clone())).send() {
                Ok(response) if transient_status(response.status()) && attempt < RETRIES => {}
                Ok(response) => return Ok(response),
                Err(error) => {
                    let failure = self.failure(&error);
                    if !matches!(failure, RegistryError::Unreachable { .. }) || attempt >= RETRIES {
                        return Err(failure);
                    }
                }
            }
            std::thread::sleep(FIRST_WAIT * 2u32.pow(attempt));
            attempt += 1;
        }
    }

    /// A request's failure (no answer) as an error: a certificate problem,
    /// else the registry cannot be reached.
    pub fn failure(&self, error: &reqwest::Error) -> RegistryError {
        let cause = chain(error);
        if cause.contains("certificate") || cause.contains("UnknownIssuer") {
            return RegistryError::Tls {
                registry: self.host.clone(),
                cause,
            };
        }
        RegistryError::Unreachable {
            registry: self.host.clone(),
            cause,
        }
    }

    /// An answer a request cannot go on from, with the registry's own
    /// error text where it gave one.
    pub fn refused(&self, what: &str, status: u16, response: Response) -> RegistryError {
        let body = response.text().unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("errors")?.as_array()?.first().map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let message = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    format!(": {code} {message}")
                })
            })
            .unwrap_or_default();
        RegistryError::Refused {
            registry: self.host.clone(),
            what: what.to_owned(),
            status,
            detail: crate::display::escape(detail.trim_end()).into_owned(),
        }
    }

    fn unauthorized(&self, status: u16) -> RegistryError {
        let next = match (&self.credentials.login, status) {
            (_, 403) => "the credentials lack the right to push there",
            (Some(_), _) => "check the user and password",
            (None, _) => {
                "give credentials with --registry-user U --registry-password-stdin, or docker login"
            }
        };
        RegistryError::Unauthorized {
            registry: self.host.clone(),
            status,
            tried: self.credentials.source.clone(),
            next,
        }
    }

    fn authorization(&self, scopes: &[String]) -> Result<Option<String>, RegistryError> {
        let challenge = self.auth.lock().expect("auth lock").challenge.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.login.as_ref().map(basic)),
            Some(Challenge::Bearer { realm, service }) => {
                let key = scopes.join(" ");
                if let Some(token) = self.auth.lock().expect("auth lock").tokens.get(&key) {
                    return Ok(Some(format!("Bearer {token}")));
                }
                let token = self.token(&realm, service.as_deref(), scopes)?;
                self.auth
                    .lock()
                    .expect("auth lock")
                    .tokens
                    .insert(key, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Takes in how the registry wants to be authenticated (a 401's
    /// `WWW-Authenticate`).
    fn learn(&self, response: &Response, scopes: &[String]) -> Result<(), RegistryError> {
        let header = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let challenge = match parse_challenge(header) {
            Some((scheme, params)) if scheme.eq_ignore_ascii_case("bearer") => {
                let realm = params.get("realm").ok_or_else(|| self.unauthorized(401))?;
                let realm = Url::parse(realm).map_err(|_| self.unauthorized(401))?;
                if realm.host_str() != self.base.host_str() {
                    return Err(RegistryError::Elsewhere {
                        registry: self.host.clone(),
                        url: crate::display::escape(realm.as_str()).into_owned(),
                    });
                }
                if self.base.scheme() == "https" && realm.scheme() != "https" {
                    return Err(RegistryError::PlainRealm {
                        registry: self.host.clone(),
                        url: crate::display::escape(realm.as_str()).into_owned(),
                    });
                }
                Challenge::Bearer {
                    realm,
                    service: params.get("service").cloned(),
                }
            }
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("basic") => {
                if self.credentials.login.is_none() {
                    return Err(self.unauthorized(401));
                }
                Challenge::Basic
            }
            _ => return Err(self.unauthorized(401)),
        };
        let mut auth = self.auth.lock().expect("auth lock");
        auth.challenge = Some(challenge);
        // A token that was refused is not offered again.
        auth.tokens.remove(&scopes.join(" "));
        Ok(())
    }

    /// A bearer token for `scopes` from the registry's token service.
    fn token(
        &self,
        realm: &Url,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let mut url = realm.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            for scope in scopes {
                query.append_pair("scope", scope);
            }
        }
        let mut attempt = 0;
        let response = loop {
            let mut request = self.http.get(url.clone());
            if let Some(login) = &self.credentials.login {
                request = request.header(AUTHORIZATION, basic(login));
            }
            match request.send() {
                Ok(response) if transient_status(response.status()) && attempt < RETRIES => {}
                Ok(response) => break response,
                Err(error) => {
                    let failure = self.failure(&error);
                    if !matches!(failure, RegistryError::Unreachable { .. }) || attempt >= RETRIES {
                        return Err(failure);
                    }
                }
            }
            std::thread::sleep(FIRST_WAIT * 2u32.pow(attempt));
            attempt += 1;
        };
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(status.as_u16()));
        }
        if !status.is_success() {
            return Err(self.refused("the token service", status.as_u16(), response));
        }
        let text = response.text().map_err(|error| self.failure(&error))?;
        let answer: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        answer
            .get("token")
            .or_else(|| answer.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::Refused {
                registry: self.host.clone(),
                what: "the token service".into(),
                status: status.as_u16(),
                detail: ": no token in its answer".into(),
            })
    }
}

fn response_status(status: StatusCode) -> u16 {
    status.as_u16()
}

/// 408, 429 and 5xx: worth trying again.
fn transient_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

fn basic(login: &Login) -> String {
    use base64::Engine as _;
    let pair = format!("{}:{}", login.user, login.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// An error and its causes on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text += &format!(": {said}");
        }
        source = cause.source();
    }
    text
}

fn read_ca(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, RegistryError> {
    let failed = |reason: String| RegistryError::File {
        path: path.display().to_string(),
        reason,
    };
    let pem = read_bounded(path, Links::Follow, CA_LIMIT, "CA certificate file")
        .map_err(|error| failed(error.to_string()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|error| failed(format!("not PEM certificates: {}", chain(&error))))?;
    if certificates.is_empty() {
        return Err(failed("holds no PEM certificate".into()));
    }
    Ok(certificates)
}

/// `Bearer realm="…",service="…"` as its scheme and parameters.
fn parse_challenge(header: &str) -> Option<(String, HashMap<String, String>)> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_owned());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some((scheme.to_owned(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://r.example/token",service="r.example",scope="repository:a:pull""#,
        )
        .unwrap();
        assert_eq!(scheme, "Bearer");
        assert_eq!(params["realm"], "https://r.example/token");
        assert_eq!(params["service"], "r.example");
        assert_eq!(params["scope"], "repository:a:pull");
        let (scheme, params) = parse_challenge(r#"Basic realm="test""#).unwrap();
        assert_eq!(scheme, "Basic");
        assert_eq!(params["realm"], "test");
    }

    #[test]
    fn locations_elsewhere_are_refused() {
        let options = AccessOptions {
            plain_http: vec!["127.0.0.1:5000".into()],
            docker_config: Some(PathBuf::from("/nonexistent")),
            ..AccessOptions::default()
        };
        let client = Client::connect("127.0.0.1:5000", &options).unwrap();
        assert!(client.resolve("/v2/a/blobs/uploads/x?_state=y").is_ok());
        assert!(client.resolve("http://127.0.0.1:5001/v2/a").is_err());
        assert!(client.resolve("https://127.0.0.1:5000/v2/a").is_err());
        assert!(client.resolve("http://elsewhere/v2/a").is_err());
    }

    #[test]
    fn plain_http_and_unverified_tls_are_separate() {
        let both = AccessOptions {
            plain_http: vec!["h:1".into()],
            insecure_skip_verify: vec!["h:1".into()],
            ..AccessOptions::default()
        };
        assert!(Client::connect("h:1", &both).is_err());
        let other = AccessOptions {
            plain_http: vec!["other:1".into()],
            ..AccessOptions::default()
        };
        assert!(Client::connect("h:1", &other).is_err());
    }
}
