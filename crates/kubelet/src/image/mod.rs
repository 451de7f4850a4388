//! Images: Docker-style references, an OCI distribution client (registry mirrors per host, like
//! containerd's hosts.toml), and pulling into containerd: blobs into its content store, the image
//! record, and the layers unpacked into overlayfs snapshots named by their chain ids.
//!
//! * `reference`: parsing and normalising image references ([`Reference`]).
//! * `registry`: the registry client ([`Puller`]): HTTP(S) fetches, bearer tokens, [`Mirrors`] and
//!   the TLS settings ([`tls_config`]).
//! * `pull`: pulling into containerd ([`Puller::pull`]) and looking up images already there
//!   ([`present`]).
//! * `inventory`: the images the Node reports in `status.images` ([`inventory::list`]).
//!
//! This module holds what they share: the error type and the sha256 digest of content.

pub mod inventory;
mod pull;
mod reference;
mod registry;

pub use pull::{
    MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, PulledImage, chain_ids,
    present,
};
pub use reference::Reference;
pub use registry::{Mirrors, Puller, bearer_challenge, tls_config};

use sha2::{Digest, Sha256};

use crate::containerd::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("{0}")]
    Registry(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

type Result<T> = std::result::Result<T, ImageError>;

fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}
