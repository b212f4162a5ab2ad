//! OCI image layout directories (image-spec `image-layout.md`): `oci-layout`,
//! `index.json` and `blobs/sha256/<hex>`, as skopeo (`oci:DIR`), podman
//! (`podman load -i DIR`), buildkit and containerd read and write them.
//!
//! [`LayoutWriter`] creates or merges into one, and [`LayoutSink`] uses it
//! as a [`crate::media::sink::Sink`]; [`LayoutSource`] reads one as a
//! [`crate::media::source::Source`]. Every path beneath the directory is
//! opened from directory descriptors without following links
//! (`dir.rs`); the directory itself is the user's to name through
//! a link.

pub(crate) mod dir;
mod read;
mod sink;
mod source;
mod write;

pub use read::{
    Compression, IndexedImage, LayoutImage, LayoutLayer, LayoutReader, MetadataBlobs, checked,
    image_of_manifest, index_images, manifest_image,
};
pub use sink::LayoutSink;
pub use source::{LayoutSource, export_images};
pub use write::{LayoutError, LayoutWriter};

/// Containerd's name annotation: the full reference (`docker.io/library/nginx:1.27`).
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The OCI reference annotation. airgap writes the full reference here too,
/// not the tag alone as containerd does nor the spelling typed as skopeo
/// does: `skopeo copy oci:DIR:REF` takes the entry whose value is exactly
/// REF, so one full name per entry can never be ambiguous, and the name
/// reads the same in both annotations. (podman 4.3's `load -i DIR` names
/// what it loads after DIR and takes one-image layouts only; `podman pull
/// oci:DIR:REF` takes any image of a layout.)
pub const REF_NAME: &str = oci_spec::image::ANNOTATION_REF_NAME;

/// The one layout version there is.
const LAYOUT_VERSION: &str = "1.0.0";

/// Largest `index.json` read into memory.
const INDEX_LIMIT: u64 = 64 << 20;

/// Largest `oci-layout`, image manifest, nested index or config read into memory.
const METADATA_LIMIT: u64 = 16 << 20;

#[cfg(test)]
mod tests;
