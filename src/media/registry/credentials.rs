//! Where the credentials for a registry come from: `--registry-user` with a
//! password on standard input, else the Docker client's config
//! (`credHelpers`, `auths`, `credsStore`, in the order Docker consults them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;

use crate::files::untrusted::{Links, read_bounded};

use super::RegistryError;

/// A user name and password (or identity token) for Basic auth and token requests.
#[derive(Clone)]
pub struct Login {
    /// The user.
    pub user: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({}, <password>)", self.user)
    }
}

/// The credentials found for one registry and where they came from, so an
/// error can say which source was tried.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// `None`: anonymous.
    pub login: Option<Login>,
    /// Words for the source (`--registry-user alice`, `auths in ~/.docker/config.json`).
    pub source: String,
}

/// Docker's config holds a few logins; more than this is no config.
const CONFIG_LIMIT: u64 = 4 << 20;

/// The credentials for `host`: `given` (from the command line) wins; else
/// the Docker config at `config_dir` (default `$DOCKER_CONFIG`, else
/// `~/.docker`).
pub fn find(
    host: &str,
    given: Option<Login>,
    config_dir: Option<&Path>,
) -> Result<Credentials, RegistryError> {
    if let Some(login) = given {
        return Ok(Credentials {
            source: format!("the credentials of --registry-user {}", login.user),
            login: Some(login),
        });
    }
    let dir = config_dir.map(Path::to_owned).or_else(default_config_dir);
    let Some(dir) = dir else {
        return Ok(anonymous("no credentials (no Docker config directory)"));
    };
    let path = dir.join("config.json");
    let bytes = match read_bounded(&path, Links::Refuse, CONFIG_LIMIT, "Docker config") {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(anonymous(&format!(
                "no credentials ({} does not exist)",
                path.display()
            )));
        }
        Err(error) => {
            return Err(RegistryError::File {
                path: path.display().to_string(),
                reason: error.to_string(),
            });
        }
    };
    let config: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|error| RegistryError::File {
            path: path.display().to_string(),
            reason: format!("not JSON: {error}"),
        })?;
    from_config(host, &config, &path)
}

fn anonymous(source: &str) -> Credentials {
    Credentials {
        login: None,
        source: source.to_owned(),
    }
}

fn default_config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| PathBuf::from(home).join(".docker"))
}

fn from_config(
    host: &str,
    config: &serde_json::Value,
    path: &Path,
) -> Result<Credentials, RegistryError> {
    let shown = path.display();
    if let Some(helper) = entry_for(host, config.get("credHelpers")).and_then(|v| v.as_str()) {
        return helper_login(helper, host, &format!("credHelpers in {shown}"));
    }
    if let Some(entry) = entry_for(host, config.get("auths")) {
        if let Some(login) = auths_login(entry) {
            return Ok(Credentials {
                login: Some(login),
                source: format!("the credentials of auths[{host}] in {shown}"),
            });
        }
    }
    if let Some(store) = config.get("credsStore").and_then(|v| v.as_str()) {
        return helper_login(store, host, &format!("credsStore in {shown}"));
    }
    Ok(anonymous(&format!(
        "no credentials (none for {host} in {shown})"
    )))
}

/// The entry of a map keyed by registry whose key names `host`: Docker
/// writes keys as `host`, `https://host` or `https://host/v1/`.
fn entry_for<'c>(host: &str, map: Option<&'c serde_json::Value>) -> Option<&'c serde_json::Value> {
    let map = map?.as_object()?;
    map.iter()
        .find(|(key, _)| {
            let bare = key
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            bare.split('/').next() == Some(host)
        })
        .map(|(_, value)| value)
}

fn auths_login(entry: &serde_json::Value) -> Option<Login> {
    if let Some(auth) = entry
        .get("auth")
        .and_then(|v| v.as_str())
        .filter(|a| !a.is_empty())
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(Login {
            user: user.to_owned(),
            password: password.to_owned(),
        });
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some(Login {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// Asks `docker-credential-NAME get` for `host`, as the Docker client does.
fn helper_login(name: &str, host: &str, from: &str) -> Result<Credentials, RegistryError> {
    let failed = |reason: String| RegistryError::Helper {
        helper: name.to_owned(),
        reason,
    };
    // The name becomes part of a program name looked up on PATH.
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        return Err(failed(format!("{from} names an invalid helper")));
    }
    let mut child = Command::new(format!("docker-credential-{name}"))
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| failed(format!("cannot run it ({error}); it is named by {from}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(host.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|error| failed(error.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(anonymous(&format!(
                "no credentials (docker-credential-{name}, named by {from}, has none for {host})"
            )));
        }
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!(
            "it failed: {}",
            crate::display::escape(said.trim())
        )));
    }
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|error| failed(format!("its answer is not JSON: {error}")))?;
    let user = answer
        .get("Username")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let secret = answer.get("Secret").and_then(|v| v.as_str()).unwrap_or("");
    Ok(Credentials {
        login: Some(Login {
            // An identity token comes with the user `<token>`; token
            // services take it as the password of that user.
            user: user.to_owned(),
            password: secret.to_owned(),
        }),
        source: format!("the credentials of docker-credential-{name} (named by {from})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entries_are_found_under_any_spelling_of_the_host() {
        let config = serde_json::json!({
            "auths": { "https://reg.example:5000/v1/": { "auth": "YWxpY2U6c2VjcmV0" } }
        });
        let found = from_config("reg.example:5000", &config, Path::new("c.json")).unwrap();
        let login = found.login.unwrap();
        assert_eq!(
            (login.user.as_str(), login.password.as_str()),
            ("alice", "secret")
        );
        assert!(found.source.contains("auths[reg.example:5000]"));
        let none = from_config("other:5000", &config, Path::new("c.json")).unwrap();
        assert!(none.login.is_none());
    }

    #[test]
    fn helper_names_that_could_be_paths_are_refused() {
        let config = serde_json::json!({ "credHelpers": { "h": "../../bin/sh" } });
        assert!(from_config("h", &config, Path::new("c.json")).is_err());
    }
}
