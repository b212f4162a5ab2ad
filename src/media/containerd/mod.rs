//! containerd (Kubernetes nodes, k3s, RKE2, k0s) as a sink
//! (`unpack --to containerd[://SOCKET][?namespace=NS]`) and as what
//! `inventory --from containerd…` describes.
//!
//! Reached through containerd's own `ctr`, not its gRPC API: `ctr` ships
//! with every containerd (k3s and RKE2 as `ctr` beside their binary), so a
//! node that runs containerd can run it, and airgap carries no gRPC or
//! protobuf stack. The images are handed over as an uncompressed OCI layout
//! tar on `ctr images import`'s standard input, the one input both ctr 1.6
//! (uncompressed only) and 2.x (its transfer service) read, with an
//! `index.json` naming only complete images (containerd fails an import
//! whose index names absent content).

mod address;
mod content;
mod ctr;
mod inventory;
mod node;
mod sink;

pub use address::{ContainerdAddress, DEFAULT_NAMESPACE, DEFAULT_SOCKETS};
pub use content::{ContentStore, Unreadable};
pub use ctr::Ctr;
pub use inventory::take_inventory;
pub use node::manifest_configs;
pub use sink::ContainerdSink;

use crate::digest::Digest;

/// The label that keeps an image from the kubelet's image garbage collection.
pub const PIN_LABEL: &str = "io.cri-containerd.pinned";
/// Its value.
pub const PIN_VALUE: &str = "pinned";

/// Why containerd could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerdError {
    /// The `containerd` address is malformed.
    #[error("invalid containerd address \"{given}\": {reason}")]
    InvalidAddress {
        /// What was given.
        given: String,
        /// Why it is refused.
        reason: String,
    },
    /// No socket was named and none of the usual ones exists.
    #[error(
        "no containerd socket found (tried {tried}); name it with containerd:///PATH/TO/containerd.sock"
    )]
    NoSocket {
        /// The sockets looked for.
        tried: String,
    },
    /// The socket named does not exist.
    #[error(
        "containerd socket {socket} does not exist; check that containerd runs and that this is its grpc address"
    )]
    SocketAbsent {
        /// The socket.
        socket: String,
    },
    /// `ctr` could not be started.
    #[error(
        "cannot run ctr; it ships with containerd: put it on PATH (k3s and RKE2 install it beside their own binary)"
    )]
    NoCtr {
        /// Why it could not be started.
        #[source]
        source: std::io::Error,
    },
    /// `ctr` failed.
    #[error("containerd at {socket}: ctr {what} failed: {reason}")]
    Ctr {
        /// The socket.
        socket: String,
        /// The ctr command, in short.
        what: String,
        /// Its last lines of error output, or its exit status.
        reason: String,
    },
    /// containerd holds a blob that is not what its digest says, or that
    /// airgap cannot read.
    #[error("containerd's content {digest}: {reason}")]
    Content {
        /// The blob.
        digest: Digest,
        /// What is wrong with it.
        reason: String,
    },
}

impl ContainerdError {
    /// The kind of this failure (see [`crate::Error::kind`]): a containerd
    /// that fails is treated as an engine that fails (exit code 5).
    pub fn kind(&self) -> crate::error::kind::ErrorKind {
        use crate::error::kind::ErrorKind;
        match self {
            Self::InvalidAddress { .. } => ErrorKind::Usage,
            Self::Content { .. } => ErrorKind::Failure,
            Self::NoSocket { .. }
            | Self::SocketAbsent { .. }
            | Self::NoCtr { .. }
            | Self::Ctr { .. } => ErrorKind::Engine,
        }
    }
}
