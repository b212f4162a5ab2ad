//! The options of `unpack --to registry://…` and `pack --from-registry`:
//! how the registry is reached, and how layers are compressed for a push.

use std::io::Read;
use std::path::PathBuf;

use airgap::media::registry::{AccessOptions, PushCompression};

#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// How layers are compressed when pushed to a registry: gzip (every client pulls it), zstd or none; the same bundle always gives the same manifest digests.
    #[arg(long, value_name = "HOW", default_value = "gzip", value_parser = PushCompression::parse)]
    push_compression: PushCompression,
    #[command(flatten)]
    access: RegistryAccessArgs,
}

/// How a registry is reached (`unpack --to registry://…`, `pack --from-registry`).
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryAccessArgs {
    /// A PEM file of CA certificates to trust for the registry, besides the system's.
    #[arg(long, value_name = "FILE")]
    registry_ca: Option<PathBuf>,
    /// Speak plain HTTP (no TLS) to this registry HOST[:PORT].
    #[arg(long, value_name = "HOST")]
    plain_http: Vec<String>,
    /// Use TLS without checking the certificate of this registry HOST[:PORT].
    #[arg(long, value_name = "HOST")]
    insecure_skip_verify: Vec<String>,
    /// The registry user (the password is read from standard input with --registry-password-stdin); default: ~/.docker/config.json.
    #[arg(long, value_name = "USER", requires = "registry_password_stdin")]
    registry_user: Option<String>,
    /// Read the password of --registry-user from standard input.
    #[arg(long, requires = "registry_user")]
    registry_password_stdin: bool,
}

impl RegistryArgs {
    /// How to compress layers.
    pub fn compression(&self) -> PushCompression {
        self.push_compression
    }

    /// How to reach the registry; reads the password from standard input.
    pub fn access(&self) -> anyhow::Result<AccessOptions> {
        self.access.options()
    }
}

impl RegistryAccessArgs {
    /// How to reach the registry; reads the password from standard input.
    pub fn options(&self) -> anyhow::Result<AccessOptions> {
        let login = match &self.registry_user {
            Some(user) => {
                let mut password = String::new();
                std::io::stdin()
                    .take(64 << 10)
                    .read_to_string(&mut password)
                    .map_err(|e| {
                        anyhow::anyhow!("reading the registry password from standard input: {e}")
                    })?;
                let password = password.trim_end_matches(['\n', '\r']).to_owned();
                Some(airgap::media::registry::Login {
                    user: user.clone(),
                    password,
                })
            }
            None => None,
        };
        Ok(AccessOptions {
            ca_file: self.registry_ca.clone(),
            plain_http: self.plain_http.clone(),
            insecure_skip_verify: self.insecure_skip_verify.clone(),
            login,
            docker_config: None,
        })
    }
}
