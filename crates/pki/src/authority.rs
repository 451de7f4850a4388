//! A certificate authority and the leaf certificates it issues: ECDSA P-256 keys, SHA-256 signatures,
//! as kubeadm's (10-year CAs, 1-year leaves).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;

use crate::{PkiError, Result, files, subject_names};

/// How long a CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long a leaf certificate is valid.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A leaf valid for less than this is issued again.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Certificates start being valid a little in the past: clocks of the machines differ.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// What a leaf certificate is for (its extended key usage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    Server,
    Client,
    /// etcd's peer certificates: both ends of a peer connection.
    ServerAndClient,
}

/// A leaf certificate to issue: subject (CN = user, O = groups, as Kubernetes reads client
/// certificates) and, for servers, the names it answers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub kind: LeafKind,
    pub validity: Duration,
}

impl Leaf {
    pub fn client(common_name: &str, organizations: &[&str]) -> Leaf {
        Leaf {
            common_name: common_name.into(),
            organizations: organizations.iter().map(|o| o.to_string()).collect(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            kind: LeafKind::Client,
            validity: LEAF_VALIDITY,
        }
    }

    pub fn server(common_name: &str, dns_names: &[String], ip_addresses: &[IpAddr]) -> Leaf {
        Leaf {
            common_name: common_name.into(),
            organizations: Vec::new(),
            dns_names: dns_names.to_vec(),
            ip_addresses: ip_addresses.to_vec(),
            kind: LeafKind::Server,
            validity: LEAF_VALIDITY,
        }
    }
}

/// An issued certificate and its new private key, both PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A CA that can issue: its key and the parameters its certificate was made from (the issuer name of
/// every certificate it signs must be its subject, byte for byte).
pub struct Authority {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
}

pub(crate) fn generate_error(what: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError::Generate { what: what.to_string(), source }
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // a positive INTEGER
    bytes[0] |= 0x01; // and 16 bytes long
    SerialNumber::from_slice(&bytes)
}

fn offset(at: OffsetDateTime, by: Duration, forward: bool) -> OffsetDateTime {
    let by = time::Duration::try_from(by).unwrap_or(time::Duration::ZERO);
    if forward { at.saturating_add(by) } else { at.saturating_sub(by) }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

/// A new ECDSA P-256 key.
pub(crate) fn new_key() -> Result<KeyPair> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate_error("a key"))
}

/// What a certificate for `leaf` says: subject, names and usages (no validity, serial or issuer).
pub(crate) fn leaf_params(leaf: &Leaf) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    // rcgen keeps one value per attribute type: a second group goes in as the same OID (2.5.4.10)
    // spelled as a custom type. Two groups at most.
    match leaf.organizations.as_slice() {
        [] => {}
        [one] => params.distinguished_name.push(DnType::OrganizationName, one.as_str()),
        [one, two] => {
            params.distinguished_name.push(DnType::OrganizationName, one.as_str());
            params.distinguished_name.push(DnType::CustomDnType(vec![2, 5, 4, 10]), two.as_str());
        }
        _ => {
            return Err(PkiError::Tls(format!(
                "{}: a certificate carries at most two groups (organizations)",
                leaf.common_name
            )));
        }
    }
    params.distinguished_name.push(DnType::CommonName, leaf.common_name.as_str());
    for name in &leaf.dns_names {
        let name = name.as_str().try_into().map_err(generate_error(name))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params.subject_alt_names.extend(leaf.ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = match leaf.kind {
        LeafKind::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        LeafKind::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
        LeafKind::ServerAndClient => {
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
        }
    };
    Ok(params)
}

/// Whether `cert` is signed by the CA `ca`, is what `leaf` asks for (subject, names, usage) and is still
/// valid `remaining` from now.
pub fn verify_issued(
    ca: &CertificateDer<'_>,
    cert: &CertificateDer<'_>,
    leaf: &Leaf,
    remaining: Duration,
) -> bool {
    let Ok(anchor) = webpki::anchor_from_trusted_cert(ca) else { return false };
    let Ok(end_entity) = webpki::EndEntityCert::try_from(cert) else { return false };
    let Some(at) = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|now| now.checked_add(remaining))
    else {
        return false;
    };
    let usages: &[webpki::KeyUsage] = match leaf.kind {
        LeafKind::Server => &[webpki::KeyUsage::server_auth()],
        LeafKind::Client => &[webpki::KeyUsage::client_auth()],
        LeafKind::ServerAndClient => &[webpki::KeyUsage::server_auth(), webpki::KeyUsage::client_auth()],
    };
    for usage in usages {
        let verified = end_entity.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            std::slice::from_ref(&anchor),
            &[],
            UnixTime::since_unix_epoch(at),
            *usage,
            None,
            None,
        );
        if verified.is_err() {
            return false;
        }
    }
    let names = leaf
        .dns_names
        .iter()
        .filter_map(|n| ServerName::try_from(n.as_str()).ok())
        .chain(leaf.ip_addresses.iter().map(|ip| ServerName::IpAddress((*ip).into())));
    for name in names {
        if end_entity.verify_is_valid_for_subject_name(&name).is_err() {
            return false;
        }
    }
    let Ok(subject) = subject_names(cert) else { return false };
    let mut wanted = leaf.organizations.clone();
    wanted.sort();
    let mut have = subject.organizations;
    have.sort();
    subject.common_name == leaf.common_name && have == wanted
}

impl Authority {
    /// A new CA named `common_name`, valid for `validity` from now.
    pub fn generate(common_name: &str, validity: Duration) -> Result<Authority> {
        let key =
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate_error("a CA key"))?;
        let mut params = ca_params(common_name);
        let now = OffsetDateTime::now_utc();
        params.not_before = offset(now, BACKDATE, false);
        params.not_after = offset(now, validity, true);
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key).map_err(generate_error(common_name))?;
        Ok(Authority {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            params: ca_params(common_name),
            key,
        })
    }

    /// A CA from its certificate and key files (as [`Authority::write`] left them).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Authority> {
        let cert_pem = String::from_utf8(files::read(cert_path)?)
            .map_err(|_| PkiError::Invalid { path: cert_path.into(), reason: "not PEM text".into() })?;
        let cert_der = files::certificates_from_pem(cert_pem.as_bytes())
            .map_err(|reason| PkiError::Invalid { path: cert_path.into(), reason })?
            .remove(0);
        let names = subject_names(&cert_der)
            .map_err(|e| PkiError::Invalid { path: cert_path.into(), reason: e.to_string() })?;
        let key_pem = String::from_utf8(files::read(key_path)?)
            .map_err(|_| PkiError::Invalid { path: key_path.into(), reason: "not PEM text".into() })?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| PkiError::Invalid { path: key_path.into(), reason: e.to_string() })?;
        let ca = Authority { params: ca_params(&names.common_name), key, cert_pem, cert_der };
        // The key must be the certificate's: a certificate this key signs must verify against it.
        let probe = ca.issue(&Leaf::client("navarch-pki-probe", &[]))?;
        let probe_der = files::certificates_from_pem(probe.cert_pem.as_bytes())
            .map_err(|reason| PkiError::Invalid { path: key_path.into(), reason })?
            .remove(0);
        if !ca.verifies(&probe_der, &Leaf::client("navarch-pki-probe", &[]), Duration::ZERO) {
            return Err(PkiError::Invalid {
                path: key_path.into(),
                reason: format!("this key does not belong to the CA certificate {}", cert_path.display()),
            });
        }
        Ok(ca)
    }

    /// Writes the certificate (0644) and the key (0600).
    pub fn write(&self, cert_path: &Path, key_path: &Path) -> Result<()> {
        files::write(key_path, self.key.serialize_pem().as_bytes(), true)?;
        files::write(cert_path, self.cert_pem.as_bytes(), false)
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues `leaf` with a new key.
    pub fn issue(&self, leaf: &Leaf) -> Result<Issued> {
        let key = new_key()?;
        let cert_pem = self.sign_key(leaf, &key)?;
        Ok(Issued { cert_pem, key_pem: key.serialize_pem() })
    }

    /// Issues `leaf` for a key somebody else holds (a signing request's), as PEM.
    pub fn sign_key(&self, leaf: &Leaf, public_key: &impl PublicKeyData) -> Result<String> {
        let mut params = leaf_params(leaf)?;
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = offset(now, BACKDATE, false);
        params.not_after = offset(now, leaf.validity, true);
        params.serial_number = Some(random_serial());
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(public_key, &issuer).map_err(generate_error(&leaf.common_name))?;
        Ok(cert.pem())
    }

    /// Whether `cert` is signed by this CA, is what `leaf` asks for (subject, names, usage) and is still
    /// valid `remaining` from now.
    pub fn verifies(&self, cert: &CertificateDer<'_>, leaf: &Leaf, remaining: Duration) -> bool {
        verify_issued(&self.cert_der, cert, leaf, remaining)
    }

    /// Issues `leaf` into `cert_path`/`key_path` unless they already hold a certificate of this CA for the
    /// same subject and names, valid for at least [`RENEW_BEFORE`]. Returns whether it issued.
    pub fn ensure(&self, leaf: &Leaf, cert_path: &Path, key_path: &Path) -> Result<bool> {
        if cert_path.exists() && key_path.exists() {
            let current = files::certificates(cert_path)
                .ok()
                .and_then(|c| c.into_iter().next())
                .is_some_and(|c| self.verifies(&c, leaf, RENEW_BEFORE));
            if current && files::private_key(key_path).is_ok() {
                return Ok(false);
            }
        }
        let issued = self.issue(leaf)?;
        files::write(key_path, issued.key_pem.as_bytes(), true)?;
        files::write(cert_path, issued.cert_pem.as_bytes(), false)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        files::certificates_from_pem(pem.as_bytes()).unwrap().remove(0)
    }

    #[test]
    fn issues_and_verifies() {
        let ca = Authority::generate("navarch-ca", CA_VALIDITY).unwrap();
        let leaf = Leaf::client("system:node:node-1", &["system:nodes"]);
        let issued = ca.issue(&leaf).unwrap();
        let cert = der(&issued.cert_pem);
        assert!(ca.verifies(&cert, &leaf, RENEW_BEFORE));
        let names = subject_names(&cert).unwrap();
        assert_eq!(names.common_name, "system:node:node-1");
        assert_eq!(names.organizations, ["system:nodes"]);
        assert!(!ca.verifies(&cert, &Leaf::client("system:node:node-2", &["system:nodes"]), Duration::ZERO));
        assert!(!ca.verifies(&cert, &leaf, LEAF_VALIDITY + Duration::from_secs(3600)), "expired by then");
        let other = Authority::generate("other", CA_VALIDITY).unwrap();
        assert!(!other.verifies(&cert, &leaf, Duration::ZERO), "another CA's");
        let server = Leaf::server("api", &["kubernetes.default.svc".into()], &["10.96.0.1".parse().unwrap()]);
        let s = der(&ca.issue(&server).unwrap().cert_pem);
        assert!(ca.verifies(&s, &server, Duration::ZERO));
        let mut more = server.clone();
        more.ip_addresses.push("127.0.0.1".parse().unwrap());
        assert!(!ca.verifies(&s, &more, Duration::ZERO), "a name it lacks");
        assert!(
            !ca.verifies(&s, &Leaf { kind: LeafKind::Client, ..server }, Duration::ZERO),
            "not a client cert"
        );
    }

    #[test]
    fn load_write_ensure() {
        let dir = tempfile::tempdir().unwrap();
        let (crt, key) = (dir.path().join("ca.crt"), dir.path().join("ca.key"));
        let ca = Authority::generate("navarch-ca", CA_VALIDITY).unwrap();
        ca.write(&crt, &key).unwrap();
        let loaded = Authority::load(&crt, &key).unwrap();
        let leaf = Leaf::client("admin", &["navarch:cluster-admins"]);
        let (lc, lk) = (dir.path().join("a.crt"), dir.path().join("a.key"));
        assert!(loaded.ensure(&leaf, &lc, &lk).unwrap());
        assert!(
            ca.verifies(&files::certificates(&lc).unwrap()[0], &leaf, Duration::ZERO),
            "same CA after load"
        );
        assert!(!loaded.ensure(&leaf, &lc, &lk).unwrap(), "kept");
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&lk).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        let other = Authority::generate("navarch-ca", CA_VALIDITY).unwrap();
        assert!(other.ensure(&leaf, &lc, &lk).unwrap(), "reissued for a new CA");
        // A key of another CA is refused.
        other.write(&dir.path().join("o.crt"), &dir.path().join("o.key")).unwrap();
        let err = Authority::load(&crt, &dir.path().join("o.key")).err().unwrap().to_string();
        assert!(err.contains("does not belong"), "{err}");
    }
}
