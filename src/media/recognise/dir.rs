//! Directories: a split bundle's, an OCI image layout, skopeo's `dir:`.
//! Only named files inside are looked at, never followed through a link.

use std::path::Path;

use super::{Kind, Why};
use crate::bundle::parts::{self, PartsIndex};
use crate::files::untrusted::{self, Links};

/// What skopeo writes in a `dir:` directory's `version` file.
const SKOPEO_DIR_VERSION: &[u8] = b"Directory Transport Version:";

pub(super) fn recognise(dir: &Path) -> Kind {
    // An index that cannot be used still makes this a split bundle's
    // directory: the bundle reader names what is wrong with it.
    if let Some(index) = parts::find_index(dir) {
        let bundle = PartsIndex::read(&index)
            .map(|(index, _)| index.bundle)
            .unwrap_or_else(|_| super::name_of_index(&index));
        return Kind::PartsDirectory { bundle };
    }
    let is_file = |name: &str| {
        std::fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.file_type().is_file())
    };
    if is_file("oci-layout") && is_file("index.json") {
        return Kind::OciLayout;
    }
    let version =
        untrusted::read_bounded(&dir.join("version"), Links::Refuse, 4096, "version file");
    if version.is_ok_and(|v| v.starts_with(SKOPEO_DIR_VERSION)) && is_file("manifest.json") {
        return Kind::SkopeoDir;
    }
    Kind::Other(Why::Directory)
}
