//! The checks Kubernetes makes on the PEM data of a CertificateSigningRequest, without an X.509 library:
//! PEM blocks as Go's `encoding/pem` finds them ([`pem_blocks`]), a PKCS#10 certificate request parsed and
//! its self-signature verified with ring ([`check_certificate_request`], Go's
//! `x509.ParseCertificateRequest` + `CheckSignature`), and the shape of X.509 certificates
//! ([`check_certificates`]). Errors read like Go's.
//!
//! Signatures: ECDSA on P-256 and P-384 with SHA-256/384, RSA PKCS#1 v1.5 with SHA-1/256/384/512 (keys of
//! 1024 to 8192 bits, SHA-384 from 2048) and Ed25519. Other algorithms (P-521, RSA-PSS) are refused as
//! Go refuses an algorithm it does not implement.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};

/// One PEM block: `-----BEGIN <label>-----` ... `-----END <label>-----`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PemBlock {
    pub label: String,
    /// Whether `Key: value` header lines preceded the data.
    pub has_headers: bool,
    pub der: Vec<u8>,
}

/// The well-formed PEM blocks of `text`, in order. Text around blocks is skipped, and so is a block without
/// its END line or with data that is not base64 (Go's `pem.Decode` skips to the next BEGIN line).
pub(super) fn pem_blocks(text: &[u8]) -> Vec<PemBlock> {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches([' ', '\t', '\r'])).collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let label = lines[i].strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----"));
        i += 1;
        let Some(label) = label else { continue };
        let end = format!("-----END {label}-----");
        let Some(len) = lines[i..].iter().position(|l| *l == end) else { continue };
        let body = &lines[i..i + len];
        let headers = body.iter().take_while(|l| l.contains(':')).count();
        let data: String =
            body[headers..].iter().flat_map(|l| l.chars()).filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = BASE64.decode(data) {
            blocks.push(PemBlock { label: label.to_string(), has_headers: headers > 0, der });
            i += len + 1;
        }
    }
    blocks
}

/// Why a certificate request is refused: Go's error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum RequestError {
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotARequest,
    #[error("x509: malformed certificate request")]
    Malformed,
    #[error("x509: cannot verify signature: algorithm unimplemented")]
    AlgorithmUnimplemented,
    #[error(
        "x509: signature algorithm specifies an {expected} public key, but have public key of type {actual}"
    )]
    KeyMismatch { expected: &'static str, actual: &'static str },
    #[error("{0}")]
    BadSignature(&'static str),
}

/// Parses the first PEM block of `pem` as a PKCS#10 certificate request and verifies its signature
/// (Kubernetes' `ParseCSR` and `CheckSignature`).
pub(super) fn check_certificate_request(pem: &[u8]) -> Result<(), RequestError> {
    let block = pem_blocks(pem).into_iter().next().filter(|b| b.label == "CERTIFICATE REQUEST");
    let block = block.ok_or(RequestError::NotARequest)?;
    let request = CertificateRequest::parse(&block.der).ok_or(RequestError::Malformed)?;
    request.verify()
}

/// Why certificate data is refused: Go's error text (`validateCertificate`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CertificateError {
    #[error("only CERTIFICATE PEM blocks are allowed, found {0:?}")]
    NotACertificate(String),
    #[error("no PEM block headers are permitted")]
    Headers,
    #[error("x509: malformed certificate")]
    Malformed,
    #[error("found CERTIFICATE PEM block containing 0 certificates")]
    Empty,
    #[error("must contain at least one CERTIFICATE PEM block")]
    NoBlock,
}

/// Checks issued certificate data: one or more CERTIFICATE PEM blocks without headers, each holding
/// DER certificates (`SEQUENCE { tbsCertificate, signatureAlgorithm, signature }`); empty data is fine.
pub(super) fn check_certificates(pem: &[u8]) -> Result<(), CertificateError> {
    if pem.is_empty() {
        return Ok(());
    }
    let blocks = pem_blocks(pem);
    if blocks.is_empty() {
        return Err(CertificateError::NoBlock);
    }
    for block in blocks {
        if block.label != "CERTIFICATE" {
            return Err(CertificateError::NotACertificate(block.label));
        }
        if block.has_headers {
            return Err(CertificateError::Headers);
        }
        let mut rest = block.der.as_slice();
        if rest.is_empty() {
            return Err(CertificateError::Empty);
        }
        while !rest.is_empty() {
            let (certificate, after) = Der::read(rest, SEQUENCE).ok_or(CertificateError::Malformed)?;
            let mut fields = certificate.content;
            let shape = [SEQUENCE, SEQUENCE, BIT_STRING].iter().all(|tag| match Der::read(fields, *tag) {
                Some((_, after)) => {
                    fields = after;
                    true
                }
                None => false,
            });
            if !shape || !fields.is_empty() {
                return Err(CertificateError::Malformed);
            }
            rest = after;
        }
    }
    Ok(())
}

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const NULL: u8 = 0x05;

/// One DER element: its whole encoding and its content.
#[derive(Debug, Clone, Copy)]
struct Der<'a> {
    whole: &'a [u8],
    content: &'a [u8],
}

impl<'a> Der<'a> {
    /// Reads an element with tag `tag` from the front of `input`; returns it and what follows. Definite
    /// lengths only, in their shortest form, as DER requires.
    fn read(input: &'a [u8], tag: u8) -> Option<(Der<'a>, &'a [u8])> {
        let (&first, rest) = input.split_first()?;
        if first != tag {
            return None;
        }
        let (&len_byte, rest) = rest.split_first()?;
        let (len, rest) = if len_byte < 0x80 {
            (usize::from(len_byte), rest)
        } else {
            let n = usize::from(len_byte & 0x7f);
            if n == 0 || n > 4 || rest.len() < n || rest[0] == 0 {
                return None;
            }
            let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return None;
            }
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let header = input.len() - rest.len();
        Some((Der { whole: &input[..header + len], content: &rest[..len] }, &rest[len..]))
    }

    /// The elements of a constructed element's content, each of any tag.
    fn children(content: &'a [u8]) -> Option<Vec<(u8, Der<'a>)>> {
        let mut out = Vec::new();
        let mut rest = content;
        while let Some(&tag) = rest.first() {
            // High tag numbers (0x1f) never occur in the structures read here.
            if tag & 0x1f == 0x1f {
                return None;
            }
            let (element, after) = Der::read(rest, tag)?;
            out.push((tag, element));
            rest = after;
        }
        Some(out)
    }
}

/// The parts of a PKCS#10 request that signature verification needs.
struct CertificateRequest<'a> {
    /// The DER of `certificationRequestInfo`: what is signed.
    signed: &'a [u8],
    key: PublicKey<'a>,
    signature_algorithm: &'a [u8],
    signature: &'a [u8],
}

/// A subject public key, by algorithm.
enum PublicKey<'a> {
    /// The curve's OID, the uncompressed point.
    Ec {
        curve: &'a [u8],
        point: &'a [u8],
    },
    /// The `RSAPublicKey` DER.
    Rsa(&'a [u8]),
    Ed25519(&'a [u8]),
    /// An algorithm not verified here.
    Other,
}

impl PublicKey<'_> {
    fn go_type(&self) -> &'static str {
        match self {
            PublicKey::Ec { .. } => "*ecdsa.PublicKey",
            PublicKey::Rsa(_) => "*rsa.PublicKey",
            PublicKey::Ed25519(_) => "ed25519.PublicKey",
            PublicKey::Other => "unknown",
        }
    }
}

// Object identifiers, as their DER content bytes.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const OID_ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const OID_RSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const OID_RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const OID_RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const OID_RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];

impl<'a> CertificateRequest<'a> {
    /// `SEQUENCE { SEQUENCE { INTEGER version, Name subject, SubjectPublicKeyInfo, [0] attributes },
    /// AlgorithmIdentifier, BIT STRING }`, with nothing after it.
    fn parse(der: &'a [u8]) -> Option<CertificateRequest<'a>> {
        let (request, rest) = Der::read(der, SEQUENCE)?;
        if !rest.is_empty() {
            return None;
        }
        let (info, rest) = Der::read(request.content, SEQUENCE)?;
        let (algorithm, rest) = Der::read(rest, SEQUENCE)?;
        let (signature, rest) = Der::read(rest, BIT_STRING)?;
        if !rest.is_empty() {
            return None;
        }
        let parts = Der::children(info.content)?;
        let [(0x02, _version), (SEQUENCE, _subject), (SEQUENCE, spki), (0xa0, _attributes)] =
            parts.as_slice()
        else {
            return None;
        };
        Some(CertificateRequest {
            signed: info.whole,
            key: public_key(spki.content)?,
            signature_algorithm: algorithm_oid(algorithm.content)?,
            signature: bit_string(signature.content)?,
        })
    }

    fn verify(&self) -> Result<(), RequestError> {
        let mismatch = |expected| RequestError::KeyMismatch { expected, actual: self.key.go_type() };
        let (algorithm, key, failure): (&dyn VerificationAlgorithm, &[u8], &'static str) =
            match (self.signature_algorithm, &self.key) {
                (OID_ECDSA_SHA256 | OID_ECDSA_SHA384, PublicKey::Ec { curve, point }) => {
                    let sha256 = self.signature_algorithm == OID_ECDSA_SHA256;
                    let algorithm = match (*curve, sha256) {
                        (OID_P256, true) => &signature::ECDSA_P256_SHA256_ASN1,
                        (OID_P256, false) => &signature::ECDSA_P256_SHA384_ASN1,
                        (OID_P384, true) => &signature::ECDSA_P384_SHA256_ASN1,
                        (OID_P384, false) => &signature::ECDSA_P384_SHA384_ASN1,
                        _ => return Err(RequestError::AlgorithmUnimplemented),
                    };
                    (algorithm, point, "x509: ECDSA verification failure")
                }
                (OID_ECDSA_SHA256 | OID_ECDSA_SHA384, _) => return Err(mismatch("ECDSA")),
                (OID_RSA_SHA1 | OID_RSA_SHA256 | OID_RSA_SHA384 | OID_RSA_SHA512, PublicKey::Rsa(key)) => {
                    let algorithm: &dyn VerificationAlgorithm = match self.signature_algorithm {
                        OID_RSA_SHA1 => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
                        OID_RSA_SHA256 => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                        OID_RSA_SHA384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                        _ => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
                    };
                    (algorithm, key, "crypto/rsa: verification error")
                }
                (OID_RSA_SHA1 | OID_RSA_SHA256 | OID_RSA_SHA384 | OID_RSA_SHA512, _) => {
                    return Err(mismatch("RSA"));
                }
                (OID_ED25519, PublicKey::Ed25519(key)) => {
                    (&signature::ED25519, key, "x509: Ed25519 verification failure")
                }
                (OID_ED25519, _) => return Err(mismatch("Ed25519")),
                _ => return Err(RequestError::AlgorithmUnimplemented),
            };
        UnparsedPublicKey::new(algorithm, key)
            .verify(self.signed, self.signature)
            .map_err(|_| RequestError::BadSignature(failure))
    }
}

/// The OID of an `AlgorithmIdentifier { OID, parameters }`.
fn algorithm_oid(content: &[u8]) -> Option<&[u8]> {
    let (oid, _parameters) = Der::read(content, OID)?;
    Some(oid.content)
}

/// The bits of a BIT STRING whose length is a whole number of bytes.
fn bit_string(content: &[u8]) -> Option<&[u8]> {
    match content.split_first() {
        Some((0, bits)) => Some(bits),
        _ => None,
    }
}

/// `SubjectPublicKeyInfo { AlgorithmIdentifier { OID, parameters }, BIT STRING }`.
fn public_key(content: &[u8]) -> Option<PublicKey<'_>> {
    let (algorithm, rest) = Der::read(content, SEQUENCE)?;
    let (key, rest) = Der::read(rest, BIT_STRING)?;
    if !rest.is_empty() {
        return None;
    }
    let key = bit_string(key.content)?;
    let (oid, parameters) = Der::read(algorithm.content, OID)?;
    Some(match oid.content {
        OID_EC_PUBLIC_KEY => {
            let (curve, rest) = Der::read(parameters, OID)?;
            if !rest.is_empty() {
                return None;
            }
            PublicKey::Ec { curve: curve.content, point: key }
        }
        OID_RSA => {
            // The parameters are NULL (or, from some encoders, absent).
            if !parameters.is_empty()
                && Der::read(parameters, NULL).is_none_or(|(n, r)| !n.content.is_empty() || !r.is_empty())
            {
                return None;
            }
            PublicKey::Rsa(key)
        }
        OID_ED25519 => PublicKey::Ed25519(key),
        _ => PublicKey::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/src/validation/certificates/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn requests_of_every_supported_algorithm_verify() {
        for name in ["p256.csr", "p384.csr", "rsa.csr", "ed25519.csr"] {
            assert_eq!(check_certificate_request(&fixture(name)), Ok(()), "{name}");
        }
        // Text around the block is ignored, as Go's pem.Decode ignores it.
        let mut wrapped = b"a request:\n".to_vec();
        wrapped.extend(fixture("p256.csr"));
        wrapped.extend(b"\ntrailing words\n");
        assert_eq!(check_certificate_request(&wrapped), Ok(()));
        // CRLF line ends.
        let crlf = String::from_utf8(fixture("rsa.csr")).unwrap().replace('\n', "\r\n");
        assert_eq!(check_certificate_request(crlf.as_bytes()), Ok(()));
    }

    #[test]
    fn unsupported_algorithms_are_unimplemented() {
        assert_eq!(
            check_certificate_request(&fixture("p521.csr")),
            Err(RequestError::AlgorithmUnimplemented)
        );
    }

    /// Re-wraps DER as PEM with `label`.
    fn pem(label: &str, der: &[u8]) -> Vec<u8> {
        let b64 = BASE64.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n")).into_bytes()
    }

    fn der(name: &str) -> Vec<u8> {
        pem_blocks(&fixture(name)).remove(0).der
    }

    #[test]
    fn tampered_requests_fail_verification() {
        for (name, failure) in [
            ("p256.csr", "x509: ECDSA verification failure"),
            ("rsa.csr", "crypto/rsa: verification error"),
            ("ed25519.csr", "x509: Ed25519 verification failure"),
        ] {
            let mut der = der(name);
            // A byte of the subject (inside the signed part).
            let i = der.windows(2).position(|w| w == [0x0c, 0x05] || w == [0x0c, 0x04]).unwrap() + 2;
            der[i] ^= 0x20;
            let got = check_certificate_request(&pem("CERTIFICATE REQUEST", &der));
            assert_eq!(got, Err(RequestError::BadSignature(failure)), "{name}");
        }
    }

    #[test]
    fn hostile_requests_are_malformed_not_panics() {
        let good = der("p256.csr");
        let malformed = |der: &[u8]| check_certificate_request(&pem("CERTIFICATE REQUEST", der));
        // Every truncation, and every single-byte length corruption of the outer headers.
        for cut in 0..good.len() {
            assert!(malformed(&good[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..8.min(good.len()) {
            for v in [0x00, 0x7f, 0x80, 0x81, 0x84, 0x85, 0xff] {
                let mut d = good.clone();
                d[i] = v;
                let _ = malformed(&d);
            }
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(malformed(&trailing), Err(RequestError::Malformed));
        assert_eq!(malformed(&[]), Err(RequestError::Malformed));
        assert_eq!(malformed(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), Err(RequestError::Malformed));
        // Non-minimal long-form length.
        assert_eq!(malformed(&[0x30, 0x81, 0x01, 0x00]), Err(RequestError::Malformed));
    }

    #[test]
    fn only_a_certificate_request_block_is_read() {
        assert_eq!(check_certificate_request(b""), Err(RequestError::NotARequest));
        assert_eq!(check_certificate_request(b"not pem at all"), Err(RequestError::NotARequest));
        assert_eq!(check_certificate_request(&fixture("cert.pem")), Err(RequestError::NotARequest));
        let unterminated = b"-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n";
        assert_eq!(check_certificate_request(unterminated), Err(RequestError::NotARequest));
        let not_base64 = b"-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n";
        assert_eq!(check_certificate_request(not_base64), Err(RequestError::NotARequest));
    }

    #[test]
    fn key_and_signature_algorithms_must_agree() {
        // The P-256 request's info, signed "with RSA": the algorithm names RSA, the key is ECDSA.
        let good = der("p256.csr");
        let (request, _) = Der::read(&good, SEQUENCE).unwrap();
        let (info, rest) = Der::read(request.content, SEQUENCE).unwrap();
        let (_, signature) = Der::read(rest, SEQUENCE).unwrap();
        let rsa_algorithm = [&[0x30, 0x0d, 0x06, 0x09][..], OID_RSA_SHA256, &[0x05, 0x00]].concat();
        let body = [info.whole, &rsa_algorithm, signature].concat();
        let len = u16::try_from(body.len()).unwrap();
        let mut der = match len {
            0..0x80 => vec![0x30, len as u8],
            0x80..0x100 => vec![0x30, 0x81, len as u8],
            _ => [vec![0x30, 0x82], len.to_be_bytes().to_vec()].concat(),
        };
        der.extend(body);
        assert_eq!(
            check_certificate_request(&pem("CERTIFICATE REQUEST", &der)),
            Err(RequestError::KeyMismatch { expected: "RSA", actual: "*ecdsa.PublicKey" })
        );
        assert_eq!(
            RequestError::KeyMismatch { expected: "RSA", actual: "*ecdsa.PublicKey" }.to_string(),
            "x509: signature algorithm specifies an RSA public key, but have public key of type *ecdsa.PublicKey"
        );
    }

    #[test]
    fn certificates() {
        let cert = fixture("cert.pem");
        assert_eq!(check_certificates(&cert), Ok(()));
        assert_eq!(check_certificates(b""), Ok(()));
        let chain = [cert.clone(), b"intermediate:\n".to_vec(), cert.clone()].concat();
        assert_eq!(check_certificates(&chain), Ok(()));
        assert_eq!(check_certificates(b"garbage"), Err(CertificateError::NoBlock));
        assert_eq!(
            check_certificates(&fixture("p256.csr")),
            Err(CertificateError::NotACertificate("CERTIFICATE REQUEST".into()))
        );
        assert_eq!(check_certificates(&pem("CERTIFICATE", &[])), Err(CertificateError::Empty));
        assert_eq!(check_certificates(&pem("CERTIFICATE", &[0x30, 0x00])), Err(CertificateError::Malformed));
        let headers = String::from_utf8(cert.clone()).unwrap().replacen(
            "-----\n",
            "-----\nProc-Type: 4,ENCRYPTED\n\n",
            1,
        );
        assert_eq!(check_certificates(headers.as_bytes()), Err(CertificateError::Headers));
        assert_eq!(
            CertificateError::NotACertificate("X".into()).to_string(),
            "only CERTIFICATE PEM blocks are allowed, found \"X\""
        );
    }

    #[test]
    fn pem_blocks_are_found_like_go() {
        let text = b"junk\n-----BEGIN A-----\nK: v\n\nAAEC\n-----END A-----\n-----BEGIN B-----\nAw==\n-----END B-----";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].label.as_str(), blocks[0].has_headers, blocks[0].der.as_slice()),
            ("A", true, &[0, 1, 2][..])
        );
        assert_eq!(
            (blocks[1].label.as_str(), blocks[1].has_headers, blocks[1].der.as_slice()),
            ("B", false, &[3][..])
        );
        // A mismatched END skips the block.
        assert!(pem_blocks(b"-----BEGIN A-----\nAAEC\n-----END B-----\n").is_empty());
    }
}
