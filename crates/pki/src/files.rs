//! Reading and writing PKI files: PEM certificates and keys, private files created 0600.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::{PkiError, Result};

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

fn invalid(path: &Path, reason: impl Into<String>) -> PkiError {
    PkiError::Invalid { path: path.to_path_buf(), reason: reason.into() }
}

/// Writes `content` to `path` (creating parent directories 0700 where missing), readable by its owner
/// only when `private`. Written to a temporary name first and renamed, so a reader never sees half a key.
pub fn write(path: &Path, content: &[u8], private: bool) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    let tmp = PathBuf::from(format!("{}.tmp", path.display()));
    let mode = if private { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    // An existing file keeps its mode through open(): set it.
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io(&tmp))?;
    f.write_all(content).and_then(|()| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(io(path))
}

/// Every certificate of a PEM file (a bundle of CAs, or a leaf then its chain).
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    certificates_from_pem(&read(path)?).map_err(|reason| invalid(path, reason))
}

pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("reading PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no PEM CERTIFICATE block".into());
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    private_key_from_pem(&read(path)?).map_err(|reason| invalid(path, reason))
}

pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("reading a PEM private key: {e}"))
}
