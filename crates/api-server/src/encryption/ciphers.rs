//! The three ciphers of Kubernetes' encryption providers, one key each, in Kubernetes' byte layout. What
//! a cipher seals and opens is the part of a stored value after `k8s:enc:<provider>:v1:<key name>:`
//! (that prefix is [`super::transformer`]'s):
//!
//! * `aescbc` (`aes.NewCBCTransformer`): a 16-byte random IV, then AES-CBC with PKCS#7 padding.
//! * `aesgcm` (`aes.NewGCMTransformer`): a 12-byte random nonce, then the AES-GCM ciphertext and its
//!   16-byte tag; the etcd key is the additional authenticated data, so a value copied to another key
//!   does not open.
//! * `secretbox` (`secretbox.NewSecretboxTransformer`): a 24-byte random nonce, then NaCl's secretbox
//!   (the 16-byte Poly1305 tag, then the XSalsa20 ciphertext).
//!
//! AES takes 16, 24 or 32-byte keys (AES-128/192/256), secretbox 32. Nonces and IVs come from the
//! operating system's random source.

use aes::cipher::block_padding::{NoPadding, Pkcs7};
use aes::cipher::{BlockCipher, BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use crypto_secretbox::XSalsa20Poly1305;
use rand::TryRngCore;
use rand::rngs::OsRng;

use super::TransformError;

const AES_BLOCK: usize = 16;
const GCM_NONCE: usize = 12;
const SECRETBOX_NONCE: usize = 24;
const SECRETBOX_TAG: usize = 16;

/// An encryption provider that uses keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    AesCbc,
    AesGcm,
    Secretbox,
}

impl Algorithm {
    /// The provider's name in the configuration file and in the stored prefix (`aescbc`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::AesCbc => "aescbc",
            Algorithm::AesGcm => "aesgcm",
            Algorithm::Secretbox => "secretbox",
        }
    }

    /// The key lengths, in bytes, the provider accepts.
    pub fn key_sizes(self) -> &'static [usize] {
        match self {
            Algorithm::AesCbc | Algorithm::AesGcm => &[16, 24, 32],
            Algorithm::Secretbox => &[32],
        }
    }

    /// The word Kubernetes names the provider with in "no matching key" errors.
    pub(super) fn family(self) -> &'static str {
        match self {
            Algorithm::AesCbc | Algorithm::AesGcm => "AES",
            Algorithm::Secretbox => "Secretbox",
        }
    }
}

/// A key of the wrong length for its provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret is not of the expected length, got {got}, expected one of {expected:?}")]
pub struct KeySizeError {
    pub got: usize,
    pub expected: &'static [usize],
}

/// One key of one provider, ready to seal and open values.
pub struct KeyCipher(Keyed);

enum Keyed {
    Cbc(AesKey),
    Gcm(GcmKey),
    Secretbox(Box<XSalsa20Poly1305>),
}

/// Key schedules are large: each variant is boxed so that the enums stay small.
enum AesKey {
    A128(Box<Aes128>),
    A192(Box<Aes192>),
    A256(Box<Aes256>),
}

enum GcmKey {
    A128(Box<Aes128Gcm>),
    A192(Box<AesGcm<Aes192, U12>>),
    A256(Box<Aes256Gcm>),
}

impl std::fmt::Debug for KeyCipher {
    /// Never the key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.algorithm().name())
    }
}

impl KeyCipher {
    pub fn new(algorithm: Algorithm, secret: &[u8]) -> Result<KeyCipher, KeySizeError> {
        let wrong = || KeySizeError { got: secret.len(), expected: algorithm.key_sizes() };
        let keyed = match algorithm {
            Algorithm::AesCbc => Keyed::Cbc(match secret.len() {
                16 => AesKey::A128(Box::new(Aes128::new_from_slice(secret).map_err(|_| wrong())?)),
                24 => AesKey::A192(Box::new(Aes192::new_from_slice(secret).map_err(|_| wrong())?)),
                32 => AesKey::A256(Box::new(Aes256::new_from_slice(secret).map_err(|_| wrong())?)),
                _ => return Err(wrong()),
            }),
            Algorithm::AesGcm => Keyed::Gcm(match secret.len() {
                16 => GcmKey::A128(Box::new(Aes128Gcm::new_from_slice(secret).map_err(|_| wrong())?)),
                24 => GcmKey::A192(Box::new(AesGcm::new_from_slice(secret).map_err(|_| wrong())?)),
                32 => GcmKey::A256(Box::new(Aes256Gcm::new_from_slice(secret).map_err(|_| wrong())?)),
                _ => return Err(wrong()),
            }),
            Algorithm::Secretbox => {
                Keyed::Secretbox(Box::new(XSalsa20Poly1305::new_from_slice(secret).map_err(|_| wrong())?))
            }
        };
        Ok(KeyCipher(keyed))
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.0 {
            Keyed::Cbc(_) => Algorithm::AesCbc,
            Keyed::Gcm(_) => Algorithm::AesGcm,
            Keyed::Secretbox(_) => Algorithm::Secretbox,
        }
    }

    /// Encrypts `plain` with a fresh random IV or nonce; `aad` (the etcd key) binds AES-GCM values to
    /// their key.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>, TransformError> {
        match &self.0 {
            Keyed::Cbc(key) => {
                let iv = random::<AES_BLOCK>()?;
                let sealed = match key {
                    AesKey::A128(c) => cbc_seal(c.as_ref(), &iv, plain),
                    AesKey::A192(c) => cbc_seal(c.as_ref(), &iv, plain),
                    AesKey::A256(c) => cbc_seal(c.as_ref(), &iv, plain),
                };
                Ok(prepend(&iv, sealed))
            }
            Keyed::Gcm(key) => {
                let nonce = random::<GCM_NONCE>()?;
                let sealed = match key {
                    GcmKey::A128(c) => aead_seal(c.as_ref(), &nonce, plain, aad),
                    GcmKey::A192(c) => aead_seal(c.as_ref(), &nonce, plain, aad),
                    GcmKey::A256(c) => aead_seal(c.as_ref(), &nonce, plain, aad),
                }?;
                Ok(prepend(&nonce, sealed))
            }
            Keyed::Secretbox(c) => {
                let nonce = random::<SECRETBOX_NONCE>()?;
                let sealed = c.encrypt(&nonce.into(), plain).map_err(|_| TransformError::Seal)?;
                Ok(prepend(&nonce, sealed))
            }
        }
    }

    /// Decrypts what [`KeyCipher::seal`] produced (or Kubernetes, with the same key).
    pub fn open(&self, data: &[u8], aad: &[u8]) -> Result<Vec<u8>, TransformError> {
        match &self.0 {
            Keyed::Cbc(key) => {
                let (iv, body) = split::<AES_BLOCK>(data)?;
                if body.len() % AES_BLOCK != 0 {
                    return Err(TransformError::NotBlockMultiple);
                }
                let padded = match key {
                    AesKey::A128(c) => cbc_open(c.as_ref(), iv, body),
                    AesKey::A192(c) => cbc_open(c.as_ref(), iv, body),
                    AesKey::A256(c) => cbc_open(c.as_ref(), iv, body),
                }?;
                unpad_pkcs7(padded)
            }
            Keyed::Gcm(key) => {
                let (nonce, body) = split::<GCM_NONCE>(data)?;
                match key {
                    GcmKey::A128(c) => aead_open(c.as_ref(), nonce, body, aad),
                    GcmKey::A192(c) => aead_open(c.as_ref(), nonce, body, aad),
                    GcmKey::A256(c) => aead_open(c.as_ref(), nonce, body, aad),
                }
            }
            Keyed::Secretbox(c) => {
                if data.len() < SECRETBOX_NONCE + SECRETBOX_TAG {
                    return Err(TransformError::TooShort);
                }
                let (nonce, body) = split::<SECRETBOX_NONCE>(data)?;
                c.decrypt(nonce.into(), body).map_err(|_| TransformError::Authentication)
            }
        }
    }
}

/// `n` random bytes from the operating system.
fn random<const N: usize>() -> Result<[u8; N], TransformError> {
    let mut bytes = [0u8; N];
    OsRng.try_fill_bytes(&mut bytes).map_err(|_| TransformError::Random)?;
    Ok(bytes)
}

fn prepend(head: &[u8], tail: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() + tail.len());
    out.extend_from_slice(head);
    out.extend_from_slice(&tail);
    out
}

/// The first `N` bytes (IV or nonce) and the rest.
fn split<const N: usize>(data: &[u8]) -> Result<(&[u8; N], &[u8]), TransformError> {
    let (head, rest) = data.split_first_chunk::<N>().ok_or(TransformError::TooShort)?;
    Ok((head, rest))
}

fn cbc_seal<C: BlockEncryptMut + BlockCipher + Clone>(
    cipher: &C,
    iv: &[u8; AES_BLOCK],
    plain: &[u8],
) -> Vec<u8> {
    cbc::Encryptor::<C>::inner_iv_slice_init(cipher.clone(), iv)
        .map(|e| e.encrypt_padded_vec_mut::<Pkcs7>(plain))
        .unwrap_or_default()
}

/// The padded plaintext (the padding is checked by [`unpad_pkcs7`], with Kubernetes' errors).
fn cbc_open<C: BlockDecryptMut + BlockCipher + Clone>(
    cipher: &C,
    iv: &[u8; AES_BLOCK],
    body: &[u8],
) -> Result<Vec<u8>, TransformError> {
    let decryptor =
        cbc::Decryptor::<C>::inner_iv_slice_init(cipher.clone(), iv).map_err(|_| TransformError::TooShort)?;
    decryptor.decrypt_padded_vec_mut::<NoPadding>(body).map_err(|_| TransformError::NotBlockMultiple)
}

fn unpad_pkcs7(mut padded: Vec<u8>) -> Result<Vec<u8>, TransformError> {
    let pad = padded.last().copied().map(usize::from).unwrap_or(0);
    if pad == 0 || pad > padded.len() {
        return Err(TransformError::InvalidPkcs7Data);
    }
    let size = padded.len() - pad;
    if padded[size..].iter().any(|&b| usize::from(b) != pad) {
        return Err(TransformError::InvalidPkcs7Padding);
    }
    padded.truncate(size);
    Ok(padded)
}

fn aead_seal<A: Aead>(
    cipher: &A,
    nonce: &[u8; GCM_NONCE],
    msg: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, TransformError> {
    let nonce = aes_gcm::aead::Nonce::<A>::from_slice(nonce);
    cipher.encrypt(nonce, Payload { msg, aad }).map_err(|_| TransformError::Seal)
}

fn aead_open<A: Aead>(
    cipher: &A,
    nonce: &[u8; GCM_NONCE],
    msg: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, TransformError> {
    let nonce = aes_gcm::aead::Nonce::<A>::from_slice(nonce);
    cipher.decrypt(nonce, Payload { msg, aad }).map_err(|_| TransformError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn key(alg: Algorithm, bytes: &[u8]) -> KeyCipher {
        KeyCipher::new(alg, bytes).unwrap()
    }

    #[test]
    fn secretbox_matches_nacl() {
        // golang.org/x/crypto/nacl/secretbox's TestSecretBox (generated with NaCl's C implementation):
        // key 32 x 0x01, nonce 24 x 0x02, message 64 x 0x03.
        let expected = hex(
            "8442bc313f4626f1359e3b50122b6ce6fe66ddfe7d39d14e637eb4fd5b45beadab55198df6ab5368439792a23c87db70\
             acb6156dc5ef957ac04f6276cf6093b84be77ff0849cc33e34b7254d5a8f65ad",
        );
        let k = key(Algorithm::Secretbox, &[1; 32]);
        let mut stored = vec![2u8; 24];
        stored.extend_from_slice(&expected);
        assert_eq!(k.open(&stored, b"ignored").unwrap(), vec![3u8; 64]);
        let sealed = k.seal(&[3; 64], b"").unwrap();
        assert_eq!(sealed.len(), 24 + expected.len());
        assert_eq!(k.open(&sealed, b"").unwrap(), vec![3u8; 64]);
    }

    #[test]
    fn aescbc_matches_openssl() {
        // `openssl enc -aes-256-cbc -K 00..1f -iv a0..af` of "hello, kubernetes" (PKCS#7 padded).
        let k = key(Algorithm::AesCbc, &(0u8..32).collect::<Vec<_>>());
        let mut stored = hex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
        stored.extend(hex("070393b53d0e53e62e0361c7506f61224606eb80f542e765e0e4e25cd8c81fb1"));
        assert_eq!(k.open(&stored, b"").unwrap(), b"hello, kubernetes");
        let sealed = k.seal(b"hello, kubernetes", b"").unwrap();
        assert_eq!(sealed.len(), 16 + 32, "IV + two padded blocks");
        assert_eq!(k.open(&sealed, b"").unwrap(), b"hello, kubernetes");
    }

    #[test]
    fn aesgcm_matches_nist_and_binds_the_etcd_key() {
        // NIST GCM test case 4 (AES-128, 96-bit IV, with AAD).
        let k = key(Algorithm::AesGcm, &hex("feffe9928665731c6d6a8f9467308308"));
        let nonce = hex("cafebabefacedbaddecaf888");
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let plain = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525\
             b16aedf5aa0de657ba637b39",
        );
        let mut stored = nonce.clone();
        stored.extend(hex(
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa05\
             1ba30b396a0aac973d58e091",
        ));
        stored.extend(hex("5bc94fbc3221a5db94fae95ae7121a47"));
        assert_eq!(k.open(&stored, &aad).unwrap(), plain);
        assert_eq!(k.open(&stored, b"/registry/secrets/default/other"), Err(TransformError::Authentication));
        let sealed = k.seal(b"data", b"/registry/secrets/default/a").unwrap();
        assert_eq!(sealed.len(), 12 + 4 + 16);
        assert_eq!(k.open(&sealed, b"/registry/secrets/default/a").unwrap(), b"data");
        assert_eq!(k.open(&sealed, b"/registry/secrets/default/b"), Err(TransformError::Authentication));
    }

    #[test]
    fn every_key_size_round_trips() {
        for alg in [Algorithm::AesCbc, Algorithm::AesGcm, Algorithm::Secretbox] {
            for &size in alg.key_sizes() {
                let k = key(alg, &vec![7u8; size]);
                for plain in [&b""[..], b"x", &[0u8; 16], &[0xffu8; 1000]] {
                    let sealed = k.seal(plain, b"/k").unwrap();
                    assert_eq!(k.open(&sealed, b"/k").unwrap(), plain, "{alg:?} {size} {}", plain.len());
                    assert_ne!(sealed, k.seal(plain, b"/k").unwrap(), "fresh IV/nonce each time");
                }
            }
        }
    }

    #[test]
    fn wrong_key_sizes_are_refused() {
        for (alg, size) in [
            (Algorithm::AesCbc, 0),
            (Algorithm::AesCbc, 15),
            (Algorithm::AesCbc, 33),
            (Algorithm::AesGcm, 8),
            (Algorithm::Secretbox, 16),
            (Algorithm::Secretbox, 24),
        ] {
            let e = KeyCipher::new(alg, &vec![1; size]).unwrap_err();
            assert_eq!(e.got, size);
            assert_eq!(e.expected, alg.key_sizes());
        }
        let e = KeyCipher::new(Algorithm::AesCbc, &[1; 8]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret is not of the expected length, got 8, expected one of [16, 24, 32]"
        );
    }

    #[test]
    fn tampered_and_truncated_values_fail_cleanly() {
        for alg in [Algorithm::AesCbc, Algorithm::AesGcm, Algorithm::Secretbox] {
            let k = key(alg, &[9; 32]);
            let plain = b"the secret value, long enough for two blocks";
            let sealed = k.seal(plain, b"/k").unwrap();
            // AES-CBC is not authenticated: a cut at a block boundary, or a wrong key, yields valid
            // padding about once in 256 (the IV is random), so there it must only not give the value.
            let refused = |r: Result<Vec<u8>, TransformError>| match r {
                Err(_) => true,
                Ok(v) => alg == Algorithm::AesCbc && v != plain,
            };
            for cut in 0..sealed.len() {
                assert!(refused(k.open(&sealed[..cut], b"/k")), "{alg:?} cut at {cut}");
            }
            if alg != Algorithm::AesCbc {
                // Authenticated: any flipped bit is detected.
                for i in 0..sealed.len() {
                    let mut t = sealed.clone();
                    t[i] ^= 0x20;
                    assert_eq!(k.open(&t, b"/k"), Err(TransformError::Authentication), "{alg:?} byte {i}");
                }
            }
            let other = key(alg, &[8; 32]);
            assert!(refused(other.open(&sealed, b"/k")), "{alg:?} wrong key");
        }
    }

    #[test]
    fn cbc_errors_are_kubernetes_ones() {
        let k = key(Algorithm::AesCbc, &[1; 16]);
        assert_eq!(k.open(&[0; 15], b""), Err(TransformError::TooShort));
        assert_eq!(k.open(&[0; 20], b""), Err(TransformError::NotBlockMultiple));
        assert_eq!(k.open(&[0; 16], b""), Err(TransformError::InvalidPkcs7Data), "IV only: nothing to unpad");
        assert_eq!(unpad_pkcs7(vec![1, 2, 0]), Err(TransformError::InvalidPkcs7Data));
        assert_eq!(unpad_pkcs7(vec![4, 4, 4]), Err(TransformError::InvalidPkcs7Data));
        assert_eq!(unpad_pkcs7(vec![9, 3, 2, 3]), Err(TransformError::InvalidPkcs7Padding));
        assert_eq!(unpad_pkcs7(vec![9, 3, 3, 3]).unwrap(), vec![9]);
        assert_eq!(unpad_pkcs7(vec![]), Err(TransformError::InvalidPkcs7Data));
    }

    #[test]
    fn debug_never_shows_key_material() {
        assert_eq!(format!("{:?}", key(Algorithm::Secretbox, &[0x41; 32])), "secretbox");
    }
}
