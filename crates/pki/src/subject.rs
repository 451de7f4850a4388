//! The user a client certificate names, as Kubernetes' x509 authenticator reads it: the subject's
//! CommonName is the user, each Organization a group.
//!
//! A small, bounded DER reader over the certificate's `tbsCertificate.subject` only; the certificate
//! has already been verified by rustls (chain, validity, usage) when the api-server calls this, but
//! the parser still treats its input as hostile (it is fuzzed): every length is checked, nothing panics.

/// CN and O of a certificate's subject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubjectNames {
    pub common_name: String,
    pub organizations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("malformed certificate: {0}")]
    Malformed(&'static str),
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const OID: u8 = 0x06;
const VERSION_TAG: u8 = 0xa0;
/// 2.5.4.3 and 2.5.4.10.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];
/// The string types a name may use: UTF8String, PrintableString, TeletexString (read as Latin-1),
/// IA5String.
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const TELETEX_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;

/// One DER element: its tag and contents; the rest of the input after it.
pub(crate) fn element(input: &[u8]) -> Result<(u8, &[u8], &[u8]), SubjectError> {
    let (&tag, rest) = input.split_first().ok_or(SubjectError::Malformed("truncated"))?;
    if tag & 0x1f == 0x1f {
        return Err(SubjectError::Malformed("high tag numbers are not used in certificates"));
    }
    let (&first, rest) = rest.split_first().ok_or(SubjectError::Malformed("truncated length"))?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(SubjectError::Malformed("unsupported length"));
        }
        if rest.len() < n {
            return Err(SubjectError::Malformed("truncated length"));
        }
        let (bytes, rest) = rest.split_at(n);
        (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
    };
    if rest.len() < len {
        return Err(SubjectError::Malformed("truncated contents"));
    }
    let (contents, rest) = rest.split_at(len);
    Ok((tag, contents, rest))
}

pub(crate) fn expect(input: &[u8], want: u8) -> Result<(&[u8], &[u8]), SubjectError> {
    let (tag, contents, rest) = element(input)?;
    if tag != want {
        return Err(SubjectError::Malformed("unexpected element"));
    }
    Ok((contents, rest))
}

fn text(tag: u8, value: &[u8]) -> Result<String, SubjectError> {
    match tag {
        UTF8_STRING | PRINTABLE_STRING | IA5_STRING => {
            String::from_utf8(value.to_vec()).map_err(|_| SubjectError::Malformed("a name is not UTF-8"))
        }
        TELETEX_STRING => Ok(value.iter().map(|b| char::from(*b)).collect()),
        _ => Err(SubjectError::Malformed("unsupported string type in a name")),
    }
}

/// Reads CN (the last one, as Go's pkix keeps it) and every O of a DER certificate's subject.
pub fn subject_names(cert_der: &[u8]) -> Result<SubjectNames, SubjectError> {
    let (certificate, _) = expect(cert_der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional.
    if rest.first() == Some(&VERSION_TAG) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, then subject.
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (rdns, _) = expect(rest, SEQUENCE)?;
    read_name(rdns)
}

/// CN (the last one) and every O of a `Name`'s contents (its RDNs).
pub(crate) fn read_name(mut rdns: &[u8]) -> Result<SubjectNames, SubjectError> {
    let mut names = SubjectNames::default();
    while !rdns.is_empty() {
        let (set, after) = expect(rdns, SET)?;
        rdns = after;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, after) = expect(attributes, SEQUENCE)?;
            attributes = after;
            let (oid, value) = expect(attribute, OID)?;
            let (tag, value, _) = element(value)?;
            if oid == OID_COMMON_NAME {
                names.common_name = text(tag, value)?;
            } else if oid == OID_ORGANIZATION {
                names.organizations.push(text(tag, value)?);
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::{Authority, CA_VALIDITY, Leaf};
    use crate::files;

    #[test]
    fn reads_what_rcgen_writes() {
        let ca = Authority::generate("ca", CA_VALIDITY).unwrap();
        let pem = ca.issue(&Leaf::client("system:kube-proxy", &["a", "b"])).unwrap().cert_pem;
        let der = files::certificates_from_pem(pem.as_bytes()).unwrap().remove(0);
        let names = subject_names(&der).unwrap();
        assert_eq!(
            names,
            SubjectNames {
                common_name: "system:kube-proxy".into(),
                organizations: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(subject_names(ca.cert_der()).unwrap().common_name, "ca");
    }

    #[test]
    fn hostile_input_never_panics() {
        let ca = Authority::generate("ca", CA_VALIDITY).unwrap();
        let pem = ca.issue(&Leaf::client("u", &["g"])).unwrap().cert_pem;
        let der = files::certificates_from_pem(pem.as_bytes()).unwrap().remove(0).to_vec();
        for len in 0..der.len() {
            let _ = subject_names(&der[..len]);
        }
        // Every single-byte change, and a deterministic stream of random mutations.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..der.len() {
            for b in [0u8, 0x7f, 0x80, 0x81, 0x84, 0xff] {
                let mut m = der.clone();
                m[i] = b;
                let _ = subject_names(&m);
            }
        }
        for _ in 0..20_000 {
            let mut m = der.clone();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() as usize) % m.len();
                m[at] = next() as u8;
            }
            let _ = subject_names(&m);
        }
        assert!(subject_names(&[]).is_err());
        assert!(subject_names(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
