//! Certificate signing requests (PKCS#10), both ends of a node joining with a bootstrap token: the
//! requester makes a key and a request for a subject and names ([`request`]); the signer reads the
//! subject, the names and the public key back out of the request ([`CertificateRequest::from_pem`]) and
//! issues a certificate for that key ([`crate::Authority::sign_key`]).
//!
//! The reader is the bounded DER reader of [`crate::subject`]; the request's self-signature is not
//! checked here (the api-server verifies it when the CertificateSigningRequest is created).

use std::net::IpAddr;

use rcgen::{PublicKeyData, SignatureAlgorithm};
use rustls_pki_types::CertificateSigningRequestDer;
use rustls_pki_types::pem::PemObject;

use crate::authority::{Leaf, generate_error, leaf_params, new_key};
use crate::subject::{OID, SEQUENCE, SET, SubjectNames, element, expect, read_name};
use crate::{PkiError, Result};

/// A signing request and the new private key it is for, both PEM.
#[derive(Clone, Debug)]
pub struct Requested {
    pub csr_pem: String,
    pub key_pem: String,
}

/// A new ECDSA P-256 key and a signing request for `leaf`'s subject (CN, O) and names. Validity and
/// usages are the signer's to decide.
pub fn request(leaf: &Leaf) -> Result<Requested> {
    let key = new_key()?;
    let params = leaf_params(leaf)?;
    let csr = params.serialize_request(&key).map_err(generate_error(&leaf.common_name))?;
    let csr_pem = csr.pem().map_err(generate_error(&leaf.common_name))?;
    Ok(Requested { csr_pem, key_pem: key.serialize_pem() })
}

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no PEM CERTIFICATE REQUEST block: {0}")]
    NotPem(String),
    #[error("malformed certificate request: {0}")]
    Malformed(&'static str),
    #[error("unsupported public key algorithm (ECDSA P-256/P-384, Ed25519 and RSA are)")]
    UnsupportedKey,
}

impl From<crate::SubjectError> for RequestError {
    fn from(e: crate::SubjectError) -> Self {
        let crate::SubjectError::Malformed(why) = e;
        RequestError::Malformed(why)
    }
}

/// A request's public key, as rcgen signs for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestKey {
    /// The key's bits (an EC point, an `RSAPublicKey`, an Ed25519 key).
    raw: Vec<u8>,
    algorithm: &'static SignatureAlgorithm,
}

impl PublicKeyData for RequestKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

/// What a signer reads of a PKCS#10 request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRequest {
    pub subject: SubjectNames,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    /// Whether it asks for names of other kinds (email addresses, URIs, ...), which no node or
    /// component certificate carries.
    pub other_names: bool,
    pub public_key: RequestKey,
}

// Object identifiers, as their DER content bytes.
const OID_EXTENSION_REQUEST: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
/// `[0] IMPLICIT SET OF Attribute`.
const ATTRIBUTES: u8 = 0xa0;
/// `GeneralName` choices: `[2] dNSName`, `[7] iPAddress`.
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;

impl CertificateRequest {
    /// The first `CERTIFICATE REQUEST` block of `pem`.
    pub fn from_pem(pem: &[u8]) -> Result<CertificateRequest, RequestError> {
        let der = CertificateSigningRequestDer::from_pem_slice(pem)
            .map_err(|e| RequestError::NotPem(e.to_string()))?;
        CertificateRequest::from_der(der.as_ref())
    }

    /// `SEQUENCE { SEQUENCE { INTEGER version, Name subject, SubjectPublicKeyInfo, [0] attributes },
    /// AlgorithmIdentifier, BIT STRING }`.
    pub fn from_der(der: &[u8]) -> Result<CertificateRequest, RequestError> {
        let (request, _) = expect(der, SEQUENCE)?;
        let (info, _) = expect(request, SEQUENCE)?;
        let (_version, rest) = expect(info, INTEGER)?;
        let (subject, rest) = expect(rest, SEQUENCE)?;
        let (spki, rest) = expect(rest, SEQUENCE)?;
        let (attributes, _) = expect(rest, ATTRIBUTES)?;
        let mut req = CertificateRequest {
            subject: read_name(subject)?,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            other_names: false,
            public_key: public_key(spki)?,
        };
        req.read_attributes(attributes)?;
        Ok(req)
    }

    /// The leaf certificate this request asks for, of `kind` and valid for `validity`.
    pub fn leaf(&self, kind: crate::LeafKind, validity: std::time::Duration) -> Leaf {
        Leaf {
            common_name: self.subject.common_name.clone(),
            organizations: self.subject.organizations.clone(),
            dns_names: self.dns_names.clone(),
            ip_addresses: self.ip_addresses.clone(),
            kind,
            validity,
        }
    }

    /// `Attribute ::= SEQUENCE { OID, SET OF value }`; the names are in the extension request's
    /// subjectAltName extension.
    fn read_attributes(&mut self, mut attributes: &[u8]) -> Result<(), RequestError> {
        while !attributes.is_empty() {
            let (attribute, after) = expect(attributes, SEQUENCE)?;
            attributes = after;
            let (oid, values) = expect(attribute, OID)?;
            if oid != OID_EXTENSION_REQUEST {
                continue;
            }
            let (mut values, _) = expect(values, SET)?;
            while !values.is_empty() {
                let (extensions, after) = expect(values, SEQUENCE)?;
                values = after;
                self.read_extensions(extensions)?;
            }
        }
        Ok(())
    }

    /// `Extension ::= SEQUENCE { OID, BOOLEAN critical DEFAULT FALSE, OCTET STRING value }`.
    fn read_extensions(&mut self, mut extensions: &[u8]) -> Result<(), RequestError> {
        while !extensions.is_empty() {
            let (extension, after) = expect(extensions, SEQUENCE)?;
            extensions = after;
            let (oid, mut rest) = expect(extension, OID)?;
            if rest.first() == Some(&BOOLEAN) {
                rest = element(rest)?.2;
            }
            let (value, _) = expect(rest, OCTET_STRING)?;
            if oid == OID_SUBJECT_ALT_NAME {
                self.read_general_names(value)?;
            }
        }
        Ok(())
    }

    fn read_general_names(&mut self, value: &[u8]) -> Result<(), RequestError> {
        let (mut names, _) = expect(value, SEQUENCE)?;
        while !names.is_empty() {
            let (tag, content, after) = element(names)?;
            names = after;
            match tag {
                DNS_NAME => self.dns_names.push(
                    String::from_utf8(content.to_vec())
                        .map_err(|_| RequestError::Malformed("a DNS name is not text"))?,
                ),
                IP_ADDRESS => self.ip_addresses.push(match content.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(content).unwrap_or_default()),
                    16 => IpAddr::from(<[u8; 16]>::try_from(content).unwrap_or_default()),
                    _ => return Err(RequestError::Malformed("an IP address is neither 4 nor 16 bytes")),
                }),
                _ => self.other_names = true,
            }
        }
        Ok(())
    }
}

/// `SubjectPublicKeyInfo { AlgorithmIdentifier { OID, parameters }, BIT STRING }`.
fn public_key(spki: &[u8]) -> Result<RequestKey, RequestError> {
    let (algorithm, rest) = expect(spki, SEQUENCE)?;
    let (bits, _) = expect(rest, BIT_STRING)?;
    let raw = match bits.split_first() {
        Some((0, raw)) => raw.to_vec(),
        _ => return Err(RequestError::Malformed("the public key is not a whole number of bytes")),
    };
    let (oid, parameters) = expect(algorithm, OID)?;
    let algorithm: &'static SignatureAlgorithm = match oid {
        OID_EC_PUBLIC_KEY => match expect(parameters, OID)?.0 {
            OID_P256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            OID_P384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ => return Err(RequestError::UnsupportedKey),
        },
        OID_RSA => &rcgen::PKCS_RSA_SHA256,
        OID_ED25519 => &rcgen::PKCS_ED25519,
        _ => return Err(RequestError::UnsupportedKey),
    };
    Ok(RequestKey { raw, algorithm })
}

impl From<RequestError> for PkiError {
    fn from(e: RequestError) -> Self {
        PkiError::Tls(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::authority::{Authority, CA_VALIDITY};
    use crate::{LeafKind, files, subject_names};

    #[test]
    fn a_request_read_back_and_signed() {
        let ip: IpAddr = "10.250.0.13".parse().unwrap();
        let mut leaf = Leaf::server("system:node:node-3", &["node-3".into()], &[ip]);
        leaf.organizations = vec!["system:nodes".into()];
        let asked = request(&leaf).unwrap();
        assert!(asked.csr_pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
        let req = CertificateRequest::from_pem(asked.csr_pem.as_bytes()).unwrap();
        assert_eq!(req.subject.common_name, "system:node:node-3");
        assert_eq!(req.subject.organizations, ["system:nodes"]);
        assert_eq!(req.dns_names, ["node-3"]);
        assert_eq!(req.ip_addresses, [ip]);
        assert!(!req.other_names);

        let ca = Authority::generate("navarch-ca", CA_VALIDITY).unwrap();
        let wanted = req.leaf(LeafKind::Server, Duration::from_secs(3600));
        let cert_pem = ca.sign_key(&wanted, &req.public_key).unwrap();
        let cert = files::certificates_from_pem(cert_pem.as_bytes()).unwrap().remove(0);
        assert!(ca.verifies(&cert, &wanted, Duration::ZERO));
        assert_eq!(subject_names(&cert).unwrap().common_name, "system:node:node-3");
        // The certificate is for the requester's key: it serves TLS with it.
        let key = files::private_key_from_pem(asked.key_pem.as_bytes()).unwrap();
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider.key_provider.load_private_key(key).unwrap();
        let certified = rustls::sign::CertifiedKey::new(vec![cert], signing);
        assert!(certified.keys_match().is_ok(), "the certificate's key is the request's");
    }

    #[test]
    fn a_client_request_has_no_names() {
        let asked = request(&Leaf::client("system:kube-proxy", &[])).unwrap();
        let req = CertificateRequest::from_pem(asked.csr_pem.as_bytes()).unwrap();
        assert_eq!(req.subject.common_name, "system:kube-proxy");
        assert!(
            req.subject.organizations.is_empty() && req.dns_names.is_empty() && req.ip_addresses.is_empty()
        );
    }

    #[test]
    fn hostile_input_is_an_error() {
        let asked = request(&Leaf::client("u", &["g"])).unwrap();
        let der =
            CertificateSigningRequestDer::from_pem_slice(asked.csr_pem.as_bytes()).unwrap().as_ref().to_vec();
        for len in 0..der.len() {
            let _ = CertificateRequest::from_der(&der[..len]);
        }
        for i in 0..der.len() {
            for b in [0u8, 0x7f, 0x80, 0x84, 0xff] {
                let mut m = der.clone();
                m[i] = b;
                let _ = CertificateRequest::from_der(&m);
            }
        }
        assert!(matches!(CertificateRequest::from_pem(b"nothing"), Err(RequestError::NotPem(_))));
        assert!(CertificateRequest::from_der(&[]).is_err());
    }
}
