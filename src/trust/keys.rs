//! Ed25519 keys in the PEM encodings OpenSSL uses (PKCS#8 private, SPKI
//! public), their fingerprints, and the care private keys need on disk.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, KeypairBytes,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::digest::Digest;
use crate::files::untrusted::{self, Links};

/// A PEM key is a few hundred bytes; the bound leaves room for comments
/// around it and keeps a device or a huge file from being read whole.
const KEY_FILE_LIMIT: u64 = 16 * 1024;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("cannot use key file {path}")]
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
    /// A private key where a public (trust) key belongs.
    #[error(
        "{path} is a private key, which never belongs on the isolated side; give its public half instead (`openssl pkey -in {path} -pubout`, or the .pub.pem file keygen wrote beside it)"
    )]
    PrivateNotPublic {
        /// The key file.
        path: PathBuf,
    },
    /// A public key where the signing (private) key belongs.
    #[error("{} is a public key, which cannot sign; give {instead}", .path.display())]
    PublicNotPrivate {
        /// The key file.
        path: PathBuf,
        /// Which file to give: the private key keygen wrote beside it,
        /// where that exists.
        instead: String,
    },
    /// A public key of small order, for which anyone can make signatures.
    #[error(
        "{path} is a weak Ed25519 public key (a point of small order) for which anyone can forge signatures; remove it and get the signer's real public key"
    )]
    Weak {
        /// The key file.
        path: PathBuf,
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

    /// Reads an SPKI PEM public key from a path the user named (a link there
    /// is followed). A private key is refused: it is never a trust key.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        Self::read_with(path, Links::Follow)
    }

    /// Reads an SPKI PEM public key from a file found in a directory (a
    /// trust directory): a link at its name is refused.
    pub fn read_found(path: &Path) -> Result<Self, KeyError> {
        Self::read_with(path, Links::Refuse)
    }

    fn read_with(path: &Path, links: Links) -> Result<Self, KeyError> {
        let pem = read_pem(path, links)?;
        if is_private_label(&pem) {
            return Err(KeyError::PrivateNotPublic {
                path: path.to_owned(),
            });
        }
        Self::from_spki_pem(&pem, path)
    }

    fn from_spki_pem(pem: &str, path: &Path) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem).map_err(|_| KeyError::Malformed {
            path: path.to_owned(),
            expected: "public (SPKI)",
        })?;
        Self::checked(key, path)
    }

    /// Reads a public key, or a private key's public half, from a path the
    /// user named: for `airgap key fingerprint`, which the signer runs where
    /// the private key belongs.
    pub fn read_public_half(path: &Path) -> Result<Self, KeyError> {
        let pem = read_pem(path, Links::Follow)?;
        if !is_private_label(&pem) {
            return Self::from_spki_pem(&pem, path);
        }
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|_| KeyError::Malformed {
            path: path.to_owned(),
            expected: "private (PKCS#8)",
        })?;
        Self::checked(key.verifying_key(), path)
    }

    /// Refuses a key of small order: any signature "verifies" for it under
    /// lax rules, so once trusted, anyone could sign as it.
    fn checked(key: VerifyingKey, path: &Path) -> Result<Self, KeyError> {
        if key.is_weak() {
            return Err(KeyError::Weak {
                path: path.to_owned(),
            });
        }
        Ok(Self::new(key, path.to_owned()))
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// True when `signature` is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        // Strict: refuses small-order keys and R values and non-canonical
        // encodings, which lax verification lets a forger use.
        self.key
            .verify_strict(message, &Signature::from_bytes(signature))
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

    /// Reads a PKCS#8 PEM private key from a path the user named, refusing
    /// files others can read.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let io_error = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let file = untrusted::open_regular(path, Links::Follow).map_err(io_error)?;
        let mode = file.metadata().map_err(io_error)?.permissions().mode() & 0o777;
        let pem = pem_text(
            path,
            untrusted::read_file_bounded(file, KEY_FILE_LIMIT, "PEM key file").map_err(io_error)?,
        )?;
        // A public key named here is a mix-up, not a leak: say what it is
        // before any advice about its mode.
        if pem.contains("-----BEGIN PUBLIC KEY-----") {
            return Err(KeyError::PublicNotPrivate {
                path: path.to_owned(),
                instead: private_beside(path).map_or_else(
                    || "the private key (the .pem file keygen wrote, not the .pub.pem)".to_owned(),
                    |private| format!("its private key {} instead", private.display()),
                ),
            });
        }
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
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
        // PKCS#8 v1 (RFC 8410 OneAsymmetricKey version 0, without the public
        // key), as `openssl genpkey` writes it: OpenSSL 3.0 cannot read v2.
        let private_pem = KeypairBytes {
            secret_key: self.key.to_bytes(),
            public_key: None,
        }
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

/// The private key keygen wrote beside the public key `path`
/// (`ops.pub.pem` → `ops.pem`), where it exists.
fn private_beside(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let private = path.with_file_name(format!("{}.pem", name.strip_suffix(".pub.pem")?));
    private.is_file().then_some(private)
}

fn read_pem(path: &Path, links: Links) -> Result<String, KeyError> {
    let bytes =
        untrusted::read_bounded(path, links, KEY_FILE_LIMIT, "PEM key file").map_err(|source| {
            KeyError::Io {
                path: path.to_owned(),
                source,
            }
        })?;
    pem_text(path, bytes)
}

fn pem_text(path: &Path, bytes: Vec<u8>) -> Result<String, KeyError> {
    String::from_utf8(bytes).map_err(|_| KeyError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "it is not text, so not a PEM key (DER keys are not read: convert with openssl pkey)",
        ),
    })
}

/// True for PEM labels `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `OPENSSH
/// PRIVATE KEY` and the like.
fn is_private_label(pem: &str) -> bool {
    pem.contains("PRIVATE KEY-----")
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let io_error = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = untrusted::create_new(path, mode).map_err(io_error)?;
    file.write_all(contents).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use ed25519_dalek::Verifier;
    use ed25519_dalek::pkcs8::spki::der::pem;

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

    /// The identity point, the simplest key of small order.
    const IDENTITY: [u8; 32] = {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        bytes
    };

    /// R = identity, s = 0: a "signature" of any message for the identity key.
    fn forged_signature() -> [u8; 64] {
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&IDENTITY);
        signature
    }

    #[test]
    fn a_weak_public_key_is_refused_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weak.pub.pem");
        let pem = VerifyingKey::from_bytes(&IDENTITY)
            .unwrap()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        fs::write(&path, pem).unwrap();
        let error = PublicKey::read(&path).unwrap_err();
        assert!(matches!(error, KeyError::Weak { .. }), "{error}");
        assert!(error.to_string().contains("weak Ed25519 public key"));
        assert!(matches!(
            PublicKey::read_found(&path),
            Err(KeyError::Weak { .. })
        ));
    }

    #[test]
    fn a_forged_signature_for_a_weak_key_does_not_verify() {
        let weak = VerifyingKey::from_bytes(&IDENTITY).unwrap();
        let signature = forged_signature();
        // Lax verification accepts it: this is the forgery strictness stops.
        assert!(
            weak.verify(b"any manifest", &Signature::from_bytes(&signature))
                .is_ok()
        );
        let key = PublicKey::new(weak, PathBuf::from("weak.pub.pem"));
        assert!(!key.verifies(b"any manifest", &signature));
    }

    #[test]
    fn a_private_key_is_refused_as_a_public_key_but_has_a_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        let (private, _) = key.write_pair(&dir.path().join("ops")).unwrap();
        let error = PublicKey::read(&private).unwrap_err();
        assert!(
            matches!(error, KeyError::PrivateNotPublic { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("is a private key") && error.to_string().contains("-pubout"),
            "{error}"
        );
        let half = PublicKey::read_public_half(&private).unwrap();
        assert_eq!(half.fingerprint(), key.public().fingerprint());
    }

    #[test]
    fn a_public_key_given_to_sign_is_called_a_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = PrivateKey::generate()
            .unwrap()
            .write_pair(&dir.path().join("ops"))
            .unwrap();
        // Mode 0644, which would otherwise draw the chmod advice.
        let error = PrivateKey::read(&public).err().unwrap();
        assert!(
            matches!(error, KeyError::PublicNotPrivate { .. }),
            "{error}"
        );
        let private = dir.path().join("ops.pem");
        assert!(
            error.to_string().ends_with(&format!(
                "give its private key {} instead",
                private.display()
            )),
            "{error}"
        );
    }

    #[test]
    fn a_fifo_or_a_device_as_a_key_file_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("key.pem");
        crate::files::untrusted::mkfifo(&fifo);
        for path in [fifo.as_path(), Path::new("/dev/zero")] {
            let error = PublicKey::read(path).unwrap_err();
            assert!(matches!(error, KeyError::Io { .. }), "{error}");
            assert!(PrivateKey::read(path).is_err());
            assert!(PublicKey::read_public_half(path).is_err());
        }
        let big = dir.path().join("big.pem");
        fs::write(&big, vec![b'-'; 1 << 20]).unwrap();
        let error = format!(
            "{:#}",
            anyhow::Error::from(PublicKey::read(&big).unwrap_err())
        );
        assert!(error.contains("more than a PEM key file can"), "{error}");
    }

    #[test]
    fn keygen_writes_pkcs8_v1_as_openssl_does() {
        let dir = tempfile::tempdir().unwrap();
        let (private, _) = PrivateKey::generate()
            .unwrap()
            .write_pair(&dir.path().join("ops"))
            .unwrap();
        let pem = fs::read_to_string(&private).unwrap();
        let (label, der) = pem::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, "PRIVATE KEY");
        assert_eq!(der.len(), 48, "{pem}");
        assert_eq!(der[..5], [0x30, 0x2e, 0x02, 0x01, 0x00], "{pem}");
        assert!(pem.contains("MC4CAQAwBQYDK2VwBCIE"), "{pem}");
        PrivateKey::read(&private).unwrap();
    }

    #[test]
    fn openssl_reads_a_keygen_private_key() {
        let Ok(openssl) = which_openssl() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "openssl is needed for this test in CI (scripts/deps installs it)"
            );
            eprintln!("SKIPPED: openssl is not installed");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate().unwrap();
        let (private, _) = key.write_pair(&dir.path().join("ops")).unwrap();
        let output = std::process::Command::new(openssl)
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&private)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "openssl pkey: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            Fingerprint(Digest::of(&output.stdout)),
            *key.public().fingerprint()
        );
    }

    fn which_openssl() -> Result<PathBuf, ()> {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("openssl"))
            .find(|path| path.is_file())
            .ok_or(())
    }

    #[test]
    fn a_pkcs8_v2_key_from_an_older_keygen_is_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let v2 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let (_, der) = pem::decode_vec(v2.as_bytes()).unwrap();
        assert_eq!(der[4], 0x01, "the fixture is version 2 (v2 = 1)");
        let path = dir.path().join("old.pem");
        write_new(&path, v2.as_bytes(), 0o600).unwrap();
        let read = PrivateKey::read(&path).unwrap();
        assert_eq!(read.public().key, key.verifying_key());
    }
}
