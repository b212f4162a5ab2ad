//! The unpack pipeline: verify → sink. Verification reads the whole bundle
//! before the sink is even called.

use std::path::Path;

use crate::error::Error;
use crate::progress::Progress;
use crate::sink::{LoadReport, Sink};
use crate::verify::{self, TrustPolicy, VerifiedBundle};

/// Verifies the bundle at `path` completely, then loads it into `sink`.
pub fn unpack(
    path: &Path,
    policy: &TrustPolicy,
    sink: &dyn Sink,
    progress: &dyn Progress,
) -> Result<(VerifiedBundle, LoadReport), Error> {
    let bundle = verify::verify(path, policy, progress)?;
    let report = sink.load(&bundle, progress)?;
    Ok((bundle, report))
}
