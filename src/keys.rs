//! Ed25519 keys in the PEM encodings OpenSSL uses (PKCS#8 private, SPKI
//! public), their fingerprints, and the care private keys need on disk.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::digest::Digest;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("cannot access key file {path}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists already; keygen never overwrites a key.
    #[error("key file {path} already exists; refusing to overwrite it")]
    Exists {
        /// The key file.
        path: PathBuf,
    },
    /// A private key file others can read is treated as leaked, as ssh does.
    #[error(
        "private key {path} is readable by group or others (mode {mode:o}); run chmod 600 on it"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not an Ed25519 key of the expected kind.
    #[error("{path} is not an Ed25519 {expected} key in PEM format")]
    Malformed {
        /// The key file.
        path: PathBuf,
        /// `private (PKCS#8)` or `public (SPKI)`.
        expected: &'static str,
    },
    /// The system's random source failed.
    #[error("cannot get randomness for a new key")]
    Random(#[source] getrandom::Error),
}

/// SHA-256 of a public key's SPKI DER encoding, as `sha256:<hex>`: the same
/// value `openssl pkey -pubin -outform DER | sha256sum` prints.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint(pub Digest);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A key that can verify signatures, with its fingerprint.
#[derive(Clone, Debug)]
pub struct PublicKey {
    key: VerifyingKey,
    fingerprint: Fingerprint,
    /// Where the key was read from, for messages.
    pub origin: PathBuf,
}

impl PublicKey {
    fn new(key: VerifyingKey, origin: PathBuf) -> Self {
        let der = key
            .to_public_key_der()
            .expect("an Ed25519 public key always has an SPKI encoding");
        Self {
            key,
            fingerprint: Fingerprint(Digest::of(der.as_bytes())),
            origin,
        }
    }

    /// Reads an SPKI PEM public key; a PKCS#8 private key is accepted too and
    /// its public half used, so the signer can check its own bundles.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let pem = read_to_string(path)?;
        if let Ok(key) = VerifyingKey::from_public_key_pem(&pem) {
            return Ok(Self::new(key, path.to_owned()));
        }
        match SigningKey::from_pkcs8_pem(&pem) {
            Ok(key) => Ok(Self::new(key.verifying_key(), path.to_owned())),
            Err(_) => Err(KeyError::Malformed {
                path: path.to_owned(),
                expected: "public (SPKI)",
            }),
        }
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// True when `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key
            .verify(message, &Signature::from_bytes(signature))
            .is_ok()
    }
}

/// A private key that signs bundles.
pub struct PrivateKey {
    key: SigningKey,
    public: PublicKey,
}

impl PrivateKey {
    /// Makes a new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(KeyError::Random)?;
        Ok(Self::from_signing_key(
            SigningKey::from_bytes(&seed),
            PathBuf::new(),
        ))
    }

    fn from_signing_key(key: SigningKey, origin: PathBuf) -> Self {
        let public = PublicKey::new(key.verifying_key(), origin);
        Self { key, public }
    }

    /// Reads a PKCS#8 PEM private key, refusing files others can read.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let metadata = fs::metadata(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
        let pem = read_to_string(path)?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::Malformed {
            path: path.to_owned(),
            expected: "private (PKCS#8)",
        })?;
        Ok(Self::from_signing_key(key, path.to_owned()))
    }

    /// Writes `<prefix>.pem` (mode 0600) and `<prefix>.pub.pem`; never overwrites.
    pub fn write_pair(&self, prefix: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
        let private_path = with_suffix(prefix, ".pem");
        let public_path = with_suffix(prefix, ".pub.pem");
        for path in [&private_path, &public_path] {
            if path.exists() {
                return Err(KeyError::Exists { path: path.clone() });
            }
        }
        let private_pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("an Ed25519 key always has a PKCS#8 encoding");
        let public_pem = self
            .key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .expect("an Ed25519 key always has an SPKI encoding");
        write_new(&private_path, private_pem.as_bytes(), 0o600)?;
        write_new(&public_path, public_pem.as_bytes(), 0o644)?;
        Ok((private_path, public_path))
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn read_to_string(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let io_error = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_error)?;
    // The umask may have narrowed the mode; the public key should stay readable.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_error)?;
    file.write_all(contents).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pair_round_trips_through_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        let (private, public) = key.write_pair(&dir.path().join("ops")).unwrap();
        assert_eq!(
            fs::metadata(&private).unwrap().permissions().mode() & 0o777,
            0o600
        );

        let private = PrivateKey::read(&private).unwrap();
        let public = PublicKey::read(&public).unwrap();
        assert_eq!(private.public().fingerprint(), public.fingerprint());
        let signature = private.sign(b"message");
        assert!(public.verifies(b"message", &signature));
        assert!(!public.verifies(b"messagf", &signature));
    }

    #[test]
    fn keygen_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("ops");
        PrivateKey::generate().unwrap().write_pair(&prefix).unwrap();
        let again = PrivateKey::generate().unwrap().write_pair(&prefix);
        assert!(matches!(again, Err(KeyError::Exists { .. })));
    }

    #[test]
    fn readable_private_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (private, _) = PrivateKey::generate()
            .unwrap()
            .write_pair(&dir.path().join("k"))
            .unwrap();
        fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            PrivateKey::read(&private),
            Err(KeyError::TooOpen { .. })
        ));
    }

    #[test]
    fn openssl_generated_key_is_accepted() {
        // Written by `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("o.pem");
        let public = dir.path().join("o.pub.pem");
        write_new(
            &private,
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPNza3ZF2owIxka4sraeOKnKTu40j31dcunyns5Rtqva\n-----END PRIVATE KEY-----\n",
            0o600,
        )
        .unwrap();
        write_new(
            &public,
            b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEATb67NTiCck/z0GTaiqs27BRcxuSsU284h2zxzNvtQl0=\n-----END PUBLIC KEY-----\n",
            0o644,
        )
        .unwrap();
        let private = PrivateKey::read(&private).unwrap();
        let public = PublicKey::read(&public).unwrap();
        assert_eq!(private.public().fingerprint(), public.fingerprint());
        // `openssl pkey -pubin -in o.pub.pem -outform DER | sha256sum`
        assert_eq!(
            public.fingerprint().to_string(),
            "sha256:ef3a1951a055678c18f6c9cd537d9b1516d2e1b3d68e1878fa181bd84de053ea"
        );
    }
}
