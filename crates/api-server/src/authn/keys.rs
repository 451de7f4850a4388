//! The ServiceAccount token keys: the ECDSA P-256 private key that signs tokens
//! (`--service-account-signing-key-file`) and the public keys that verify them
//! (`--service-account-key-file`, several during a rotation), read from PEM files, and Kubernetes'
//! key id of each (`kid`: the unpadded base64url SHA-256 of the key's DER SubjectPublicKeyInfo, what
//! `keyIDFromPublicKey` in pkg/serviceaccount/jwt.go computes).
//!
//! Only P-256 keys (ES256) are supported: a private key as PKCS#8 (`-----BEGIN PRIVATE KEY-----`, what
//! rcgen and `openssl genpkey` write) or SEC1 (`-----BEGIN EC PRIVATE KEY-----`, what kubeadm and
//! `openssl ecparam -genkey` write); a public key as SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`).
//! As in Kubernetes, a verification key file may hold private keys instead: their public halves are used.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use rustls_pki_types::pem::{PemObject, SectionKind};
use sha2::{Digest, Sha256};

/// The DER SubjectPublicKeyInfo of every P-256 key starts with these bytes (SEQUENCE, the algorithm
/// `id-ecPublicKey` with the curve `prime256v1`, BIT STRING with no unused bits); the 65-byte
/// uncompressed point follows.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// The PKCS#8 AlgorithmIdentifier of a P-256 key: `id-ecPublicKey`, `prime256v1`.
const P256_ALGORITHM: [u8; 21] = [
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07,
];
/// `04 || X || Y`.
pub const P256_POINT_LEN: usize = 65;
/// Key files are a few hundred bytes; anything this large is not one.
const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: larger than {MAX_KEY_FILE_BYTES} bytes, not a key file")]
    TooLarge { path: String },
    #[error("not valid PEM: {0}")]
    Pem(String),
    #[error("no private key (PRIVATE KEY or EC PRIVATE KEY block) found")]
    NoPrivateKey,
    #[error("no public key (PUBLIC KEY, PRIVATE KEY or EC PRIVATE KEY block) found")]
    NoPublicKey,
    #[error("only ECDSA P-256 keys are supported (ES256): {0}")]
    Unsupported(&'static str),
    #[error("the private key is invalid: {0}")]
    InvalidPrivateKey(String),
    #[error("signing failed")]
    Signing,
    #[error("{path}: {source}")]
    InFile { path: String, source: Box<KeyError> },
}

/// Kubernetes' key id of a public key: unpadded base64url of the SHA-256 of its DER
/// SubjectPublicKeyInfo.
pub fn key_id(spki_der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(spki_der))
}

/// A P-256 public key that verifies ES256 signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    point: [u8; P256_POINT_LEN],
    key_id: String,
}

impl VerifyingKey {
    /// From the uncompressed point `04 || X || Y` (65 bytes).
    pub fn from_point(point: &[u8]) -> Result<VerifyingKey, KeyError> {
        let point: [u8; P256_POINT_LEN] = point
            .try_into()
            .map_err(|_| KeyError::Unsupported("the public key is not an uncompressed P-256 point"))?;
        if point[0] != 0x04 {
            return Err(KeyError::Unsupported("the public key is not an uncompressed P-256 point"));
        }
        let key_id = key_id(&spki_der_of(&point));
        Ok(VerifyingKey { point, key_id })
    }

    /// From a DER SubjectPublicKeyInfo. DER is canonical, so a P-256 key's is exactly the fixed prefix
    /// and the point; anything else (RSA, another curve, a compressed point) is refused.
    pub fn from_spki_der(der: &[u8]) -> Result<VerifyingKey, KeyError> {
        match der.strip_prefix(&P256_SPKI_PREFIX[..]) {
            Some(point) => VerifyingKey::from_point(point),
            None => Err(KeyError::Unsupported("the public key is not an ECDSA P-256 SubjectPublicKeyInfo")),
        }
    }

    /// The DER SubjectPublicKeyInfo (what `-----BEGIN PUBLIC KEY-----` holds).
    pub fn spki_der(&self) -> Vec<u8> {
        spki_der_of(&self.point)
    }

    /// Kubernetes' key id (`kid`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The affine X coordinate (32 bytes, big-endian).
    pub fn x(&self) -> &[u8] {
        &self.point[1..33]
    }

    /// The affine Y coordinate (32 bytes, big-endian).
    pub fn y(&self) -> &[u8] {
        &self.point[33..]
    }

    /// Whether `signature` (64 bytes, `r || s`) is this key's ES256 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        ring::signature::UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.point[..])
            .verify(message, signature)
            .is_ok()
    }
}

fn spki_der_of(point: &[u8; P256_POINT_LEN]) -> Vec<u8> {
    let mut der = Vec::with_capacity(P256_SPKI_PREFIX.len() + P256_POINT_LEN);
    der.extend_from_slice(&P256_SPKI_PREFIX);
    der.extend_from_slice(point);
    der
}

/// The P-256 private key that signs tokens.
pub struct SigningKey {
    key_pair: EcdsaKeyPair,
    public: VerifyingKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.public.key_id).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From a DER PKCS#8 document (v1 with the public key in its ECPrivateKey, as ring, rcgen and
    /// OpenSSL write them).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        let rng = SystemRandom::new();
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| KeyError::InvalidPrivateKey(e.to_string()))?;
        let public = VerifyingKey::from_point(key_pair.public_key().as_ref())?;
        Ok(SigningKey { key_pair, public, rng })
    }

    /// From a DER SEC1 `ECPrivateKey` (with its public key, as OpenSSL and Go write them).
    pub fn from_sec1_der(der: &[u8]) -> Result<SigningKey, KeyError> {
        SigningKey::from_pkcs8_der(&pkcs8_from_sec1(der))
    }

    /// The first private key in PEM text: `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC1).
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, KeyError> {
        for (kind, der) in pem_sections(pem)? {
            match kind {
                SectionKind::PrivateKey => return SigningKey::from_pkcs8_der(&der),
                SectionKind::EcPrivateKey => return SigningKey::from_sec1_der(&der),
                SectionKind::RsaPrivateKey => return Err(KeyError::Unsupported("RSA PRIVATE KEY")),
                _ => {}
            }
        }
        Err(KeyError::NoPrivateKey)
    }

    /// `--service-account-signing-key-file`.
    pub fn from_pem_file(path: &Path) -> Result<SigningKey, KeyError> {
        let pem = read_key_file(path)?;
        SigningKey::from_pem(&pem).map_err(|e| in_file(path, e))
    }

    /// The public half, which verifies this key's tokens.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    pub fn key_id(&self) -> &str {
        self.public.key_id()
    }

    /// The ES256 signature of `message`: 64 bytes, `r || s`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let signature = self.key_pair.sign(&self.rng, message).map_err(|_| KeyError::Signing)?;
        Ok(signature.as_ref().to_vec())
    }
}

/// The keys that verify tokens: the signing key's public half and, during a rotation, the previous
/// ones. A token names its key with `kid`; one without is tried against every key, as Kubernetes does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyingKeys {
    keys: Vec<VerifyingKey>,
}

impl VerifyingKeys {
    /// Duplicates (the same key given twice) are kept once.
    pub fn new(keys: impl IntoIterator<Item = VerifyingKey>) -> VerifyingKeys {
        let mut set = VerifyingKeys::default();
        for key in keys {
            set.push(key);
        }
        set
    }

    fn push(&mut self, key: VerifyingKey) {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
    }

    /// Every `PUBLIC KEY` block of PEM text; when there is none, the public halves of its private keys
    /// (Kubernetes' `keyutil.PublicKeysFromFile`).
    pub fn from_pem(pem: &[u8]) -> Result<VerifyingKeys, KeyError> {
        let sections = pem_sections(pem)?;
        let mut public = VerifyingKeys::default();
        for (kind, der) in &sections {
            if *kind == SectionKind::PublicKey {
                public.push(VerifyingKey::from_spki_der(der)?);
            }
        }
        if !public.keys.is_empty() {
            return Ok(public);
        }
        for (kind, der) in &sections {
            let key = match kind {
                SectionKind::PrivateKey => SigningKey::from_pkcs8_der(der)?,
                SectionKind::EcPrivateKey => SigningKey::from_sec1_der(der)?,
                _ => continue,
            };
            public.push(key.public);
        }
        if public.keys.is_empty() {
            return Err(KeyError::NoPublicKey);
        }
        Ok(public)
    }

    /// `--service-account-key-file`, which may be given several times.
    pub fn from_pem_files<P: AsRef<Path>>(paths: &[P]) -> Result<VerifyingKeys, KeyError> {
        let mut all = VerifyingKeys::default();
        for path in paths {
            let path = path.as_ref();
            let pem = read_key_file(path)?;
            for key in VerifyingKeys::from_pem(&pem).map_err(|e| in_file(path, e))?.keys {
                all.push(key);
            }
        }
        Ok(all)
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys to try for a token with this `kid` (every key when it has none).
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a VerifyingKey> + 'a {
        self.keys.iter().filter(move |k| kid.is_none_or(|kid| k.key_id() == kid))
    }
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, KeyError> {
    let display = path.display().to_string();
    let len =
        std::fs::metadata(path).map_err(|source| KeyError::Read { path: display.clone(), source })?.len();
    if len > MAX_KEY_FILE_BYTES {
        return Err(KeyError::TooLarge { path: display });
    }
    std::fs::read(path).map_err(|source| KeyError::Read { path: display, source })
}

fn in_file(path: &Path, e: KeyError) -> KeyError {
    KeyError::InFile { path: path.display().to_string(), source: Box::new(e) }
}

fn pem_sections(pem: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, KeyError> {
    <(SectionKind, Vec<u8>)>::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KeyError::Pem(e.to_string()))
}

/// Wraps a SEC1 `ECPrivateKey` into the PKCS#8 `PrivateKeyInfo` ring reads: SEQUENCE { INTEGER 0,
/// the P-256 AlgorithmIdentifier, OCTET STRING { the SEC1 key } }.
fn pkcs8_from_sec1(sec1: &[u8]) -> Vec<u8> {
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&P256_ALGORITHM);
    body.push(0x04);
    push_der_length(&mut body, sec1.len());
    body.extend_from_slice(sec1);
    let mut der = vec![0x30];
    push_der_length(&mut der, body.len());
    der.extend_from_slice(&body);
    der
}

fn push_der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! Keys generated at test time: nothing secret is checked in.

    use super::*;

    /// A fresh P-256 key as PKCS#8 DER.
    pub fn pkcs8() -> Vec<u8> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("generating a P-256 key")
            .as_ref()
            .to_vec()
    }

    pub fn signing_key() -> SigningKey {
        SigningKey::from_pkcs8_der(&pkcs8()).expect("a generated key loads")
    }

    pub fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut out = format!("-----BEGIN {label}-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str(&format!("-----END {label}-----\n"));
        out
    }

    /// The SEC1 `ECPrivateKey` inside ring's PKCS#8 (its last field: the OCTET STRING after the
    /// 3-byte version and the AlgorithmIdentifier), with the curve parameters `[0]` added as OpenSSL
    /// writes them.
    pub fn sec1_with_parameters(pkcs8: &[u8]) -> Vec<u8> {
        // ring: 30 81 87 | 02 01 00 | <algorithm, 21 bytes> | 04 6d | 30 6b 02 01 01 04 20 <d> a1 44 03 42 00 <point>
        let inner = &pkcs8[3 + 3 + P256_ALGORITHM.len() + 2..];
        assert_eq!(&inner[..7], &[0x30, 0x6b, 0x02, 0x01, 0x01, 0x04, 0x20]);
        let d = &inner[7..39];
        let public = &inner[39..];
        let mut body = vec![0x02, 0x01, 0x01, 0x04, 0x20];
        body.extend_from_slice(d);
        body.extend_from_slice(&[0xa0, 0x0a]);
        body.extend_from_slice(&P256_ALGORITHM[11..]);
        body.extend_from_slice(public);
        let mut der = vec![0x30];
        push_der_length(&mut der, body.len());
        der.extend_from_slice(&body);
        der
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::*;
    use super::*;

    #[test]
    fn key_id_is_base64url_sha256_of_the_spki() {
        let key = signing_key();
        let spki = key.verifying_key().spki_der();
        assert_eq!(spki.len(), 91);
        assert_eq!(key.key_id(), URL_SAFE_NO_PAD.encode(Sha256::digest(&spki)));
        assert_eq!(key.key_id().len(), 43, "32 bytes, unpadded");
        assert!(!key.key_id().contains(['=', '+', '/']));
    }

    #[test]
    fn sign_and_verify() {
        let key = signing_key();
        let signature = key.sign(b"message").expect("signs");
        assert_eq!(signature.len(), 64);
        assert!(key.verifying_key().verify(b"message", &signature));
        assert!(!key.verifying_key().verify(b"messagf", &signature));
        assert!(!signing_key().verifying_key().verify(b"message", &signature), "another key");
        assert!(!key.verifying_key().verify(b"message", &signature[..63]));
        assert!(!key.verifying_key().verify(b"message", &[]));
    }

    #[test]
    fn pem_private_keys_pkcs8_and_sec1() {
        let der = pkcs8();
        let from_pkcs8 = SigningKey::from_pem(pem("PRIVATE KEY", &der).as_bytes()).expect("PKCS#8");
        let sec1 = sec1_with_parameters(&der);
        let from_sec1 = SigningKey::from_pem(pem("EC PRIVATE KEY", &sec1).as_bytes()).expect("SEC1");
        assert_eq!(from_pkcs8.verifying_key(), from_sec1.verifying_key());
        // Text around the block (comments, certificates) is skipped.
        let mixed = format!("a comment\n{}{}", pem("CERTIFICATE", b"not parsed"), pem("PRIVATE KEY", &der));
        assert_eq!(SigningKey::from_pem(mixed.as_bytes()).expect("found").key_id(), from_pkcs8.key_id());
    }

    #[test]
    fn rejected_private_keys() {
        assert!(matches!(SigningKey::from_pem(b""), Err(KeyError::NoPrivateKey)));
        let public = signing_key().verifying_key().spki_der();
        assert!(matches!(
            SigningKey::from_pem(pem("PUBLIC KEY", &public).as_bytes()),
            Err(KeyError::NoPrivateKey)
        ));
        assert!(matches!(
            SigningKey::from_pem(pem("RSA PRIVATE KEY", b"x").as_bytes()),
            Err(KeyError::Unsupported(_))
        ));
        assert!(matches!(
            SigningKey::from_pem(pem("PRIVATE KEY", b"garbage").as_bytes()),
            Err(KeyError::InvalidPrivateKey(_))
        ));
        let mut corrupt = pkcs8();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1; // the embedded public key no longer matches the private key
        assert!(SigningKey::from_pkcs8_der(&corrupt).is_err());
        assert!(
            SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n").is_err()
        );
        assert!(SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n").is_err(), "no end line");
    }

    #[test]
    fn public_keys_from_pem() {
        let (a, b) = (signing_key(), signing_key());
        let text = format!(
            "{}{}{}",
            pem("PUBLIC KEY", &a.verifying_key().spki_der()),
            pem("PUBLIC KEY", &b.verifying_key().spki_der()),
            pem("PUBLIC KEY", &a.verifying_key().spki_der()),
        );
        let keys = VerifyingKeys::from_pem(text.as_bytes()).expect("two keys");
        assert_eq!(
            keys.keys(),
            &[a.verifying_key().clone(), b.verifying_key().clone()],
            "duplicates dropped"
        );
        assert_eq!(keys.candidates(Some(b.key_id())).count(), 1);
        assert_eq!(keys.candidates(None).count(), 2);
        assert_eq!(keys.candidates(Some("unknown")).count(), 0);
    }

    #[test]
    fn public_keys_from_a_private_key_file() {
        let der = pkcs8();
        let signing = SigningKey::from_pkcs8_der(&der).expect("loads");
        let keys = VerifyingKeys::from_pem(pem("PRIVATE KEY", &der).as_bytes()).expect("public half");
        assert_eq!(keys.keys(), &[signing.verifying_key().clone()]);
        assert!(matches!(VerifyingKeys::from_pem(b"nothing here"), Err(KeyError::NoPublicKey)));
    }

    #[test]
    fn non_p256_public_keys_are_refused() {
        let spki = signing_key().verifying_key().spki_der();
        for bad in [&spki[..90], &[&spki[..], &[0u8][..]].concat()[..], &[][..], &[0x30, 0x59][..]] {
            assert!(VerifyingKey::from_spki_der(bad).is_err(), "{bad:?}");
        }
        let mut compressed_tag = spki.clone();
        compressed_tag[26] = 0x02;
        assert!(VerifyingKey::from_spki_der(&compressed_tag).is_err());
        let mut other_curve = spki;
        other_curve[22] = 0x22; // secp384r1's last OID byte
        assert!(VerifyingKey::from_spki_der(&other_curve).is_err());
    }

    #[test]
    fn key_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let der = pkcs8();
        let signing = SigningKey::from_pkcs8_der(&der).expect("loads");
        let key_path = dir.path().join("sa.key");
        let pub_path = dir.path().join("sa.pub");
        std::fs::write(&key_path, pem("PRIVATE KEY", &der)).expect("write");
        std::fs::write(&pub_path, pem("PUBLIC KEY", &signing.verifying_key().spki_der())).expect("write");
        assert_eq!(SigningKey::from_pem_file(&key_path).expect("loads").key_id(), signing.key_id());
        let keys = VerifyingKeys::from_pem_files(&[&pub_path, &key_path]).expect("loads");
        assert_eq!(keys.keys().len(), 1, "the same key from both files");
        let missing = dir.path().join("missing");
        assert!(matches!(SigningKey::from_pem_file(&missing), Err(KeyError::Read { .. })));
        std::fs::write(&pub_path, "garbage").expect("write");
        let err = VerifyingKeys::from_pem_files(&[&pub_path]).expect_err("no key");
        assert!(err.to_string().contains("sa.pub"), "{err}");
    }

    #[test]
    fn der_lengths() {
        for (len, expected) in
            [(0usize, vec![0u8]), (127, vec![127]), (128, vec![0x81, 128]), (256, vec![0x82, 1, 0])]
        {
            let mut out = Vec::new();
            push_der_length(&mut out, len);
            assert_eq!(out, expected, "{len}");
        }
    }
}
