//! The unpack pipeline: verify → what the target holds → lock the record →
//! rollback check → finished images → intent → sink → tags → record.
//! Verification reads the whole bundle before the sink is even called: a
//! sealed bundle's bytes are hashed against its signed seal, any other is
//! decompressed and every entry checked.

pub mod record;
pub mod restore;

use std::path::PathBuf;

use crate::delta::finish::{FinishedImages, Target};
use crate::digest::Digest;
use crate::error::Error;
use crate::media::sink::{LoadReport, Sink, SinkError};
use crate::progress::Progress;
use crate::trust::TrustPolicy;
use crate::unpack::record::{AppliedBundle, Record, RecordError};
use crate::unpack::restore::{RestoreError, Restored, restore_compose};
use crate::verify::{self, VerifiedBundle};

/// How to unpack.
pub struct UnpackOptions {
    /// Which signers to accept.
    pub policy: TrustPolicy,
    /// Where the per-engine unpack records live.
    pub state_dir: PathBuf,
    /// Load even if tags would move back to older images.
    pub allow_downgrade: bool,
    /// Write the carried compose project here and check its images.
    pub compose_dir: Option<PathBuf>,
}

/// What an unpack did.
pub struct UnpackReport {
    /// The bundle, as verified.
    pub bundle: VerifiedBundle,
    /// What the sink loaded.
    pub load: LoadReport,
    /// An earlier application of this same bundle to this engine.
    pub previously_applied: Option<AppliedBundle>,
    /// The compose project written out, if asked for.
    pub compose: Option<Restored>,
}

/// Verifies the bundle at `path` completely, refuses rollbacks, loads it
/// into `sink`, and records what was applied.
pub fn unpack(
    path: &std::path::Path,
    options: &UnpackOptions,
    sink: &dyn Sink,
    progress: &dyn Progress,
) -> Result<UnpackReport, Error> {
    let bundle = verify::admit(path, &options.policy, progress)?;
    // Held until the record is written: another unpack of this engine
    // waits here, then checks against what this one applied.
    let holdings = sink.holdings(&bundle.manifest().images)?;
    let mut record = Record::open(&options.state_dir, &holdings.target)?;
    let manifest_digest: Digest = bundle.manifest_digest();
    let previously_applied = record.applied(&manifest_digest).cloned();
    let downgrades = record.downgrades(bundle.manifest());
    if !downgrades.is_empty() && !options.allow_downgrade {
        return Err(RecordError::Downgrade { downgrades }.into());
    }
    if options.compose_dir.is_some() && bundle.manifest().compose.is_none() {
        return Err(RestoreError::NoProject.into());
    }
    if let Some(dir) = &options.compose_dir {
        crate::unpack::restore::check_compose_dir(&bundle, dir)?;
    }
    let target = Target {
        takes_absent_layers: holdings.takes_absent_layers,
        layer_chains: &|| sink.layer_chains(),
        supply_layers: &|digests| sink.supply_layers(digests, progress),
    };
    let finished: FinishedImages =
        FinishedImages::prepare::<SinkError>(&bundle, &holdings.present, &target)?;
    let signer = bundle.signer().map(ToString::to_string);
    record.note_intent(bundle.manifest(), &manifest_digest, signer.clone())?;
    if !finished.images().is_empty() {
        if let Err(error) = sink.write(&finished, progress) {
            // A lack of space is found before the target is sent anything;
            // any other failure may come after tags moved, and the intent stays.
            if matches!(error, SinkError::NoSpace(_)) {
                record.withdraw_intent(&manifest_digest)?;
            }
            return Err(error.into());
        }
    }
    let mut load = LoadReport::default();
    for (image, present) in bundle.manifest().images.iter().zip(&holdings.present) {
        load.images.push(sink.tag(image, *present)?);
    }
    record.note_applied(bundle.manifest(), &manifest_digest, signer)?;
    drop(record);
    let compose = match &options.compose_dir {
        Some(dir) => Some(restore_compose(&bundle, dir, sink)?),
        None => None,
    };
    Ok(UnpackReport {
        bundle,
        load,
        previously_applied,
        compose,
    })
}
