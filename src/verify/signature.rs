//! Signatures (FORMAT.md 4): a trusted key's signature of a context string
//! followed by the signed bytes, for the manifest, the seal and the parts
//! index alike.

use crate::bundle::reader::Head;
use crate::bundle::{SIGNATURE_CONTEXT, SignatureEntry};
use crate::trust::TrustPolicy;
use crate::trust::keys::Fingerprint;

use super::error::VerifyError;

/// The fingerprint that signed the bundle, if any, checked against `policy`.
pub fn check_signature(
    head: &Head,
    policy: &TrustPolicy,
) -> Result<Option<Fingerprint>, VerifyError> {
    check_signed(
        &head.manifest_bytes,
        head.signature.as_ref(),
        SIGNATURE_CONTEXT,
        policy,
    )
}

/// Checks that `signature` (a signature entry, FORMAT.md 4) is a trusted
/// key's signature of `context` followed by `signed`; `None` signature is
/// accepted only where `policy` allows unsigned bundles.
pub fn check_signed(
    signed: &[u8],
    signature: Option<&SignatureEntry>,
    context: &[u8],
    policy: &TrustPolicy,
) -> Result<Option<Fingerprint>, VerifyError> {
    let Some(entry) = signature else {
        return if policy.allow_unsigned {
            Ok(None)
        } else {
            Err(VerifyError::Unsigned)
        };
    };
    let signer = Fingerprint(entry.key.clone());
    if entry.algorithm != "ed25519" {
        return Err(VerifyError::BadSignature { signer });
    }
    let Some(key) = policy.keys.iter().find(|k| k.fingerprint() == &signer) else {
        return Err(if policy.keys.is_empty() {
            VerifyError::NoTrustedKeys { signer }
        } else {
            VerifyError::UntrustedSigner { signer }
        });
    };
    let bytes: Option<[u8; 64]> = hex::decode(&entry.signature)
        .ok()
        .and_then(|b| b.try_into().ok());
    let mut message = context.to_vec();
    message.extend_from_slice(signed);
    match bytes {
        Some(bytes) if key.verifies(&message, &bytes) => Ok(Some(signer)),
        _ => Err(VerifyError::BadSignature { signer }),
    }
}
