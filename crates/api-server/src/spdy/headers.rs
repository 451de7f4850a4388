//! SPDY/3 header blocks: the name/value block format (32-bit counts and lengths, lower-case names,
//! several values of one name joined by NUL) and its zlib compression with the SPDY/3 dictionary.
//! Each direction of a session is one zlib stream for the whole session (every block is
//! sync-flushed, never finished), so a session owns exactly one [`HeaderEncoder`] for what it sends
//! and one [`HeaderDecoder`] for what it receives, and every header-carrying frame must go through
//! them in wire order.

use std::sync::LazyLock;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::SpdyError;

/// Largest decompressed header block accepted (a peer could otherwise inflate a small frame into
/// gigabytes).
const MAX_BLOCK: usize = 256 * 1024;

/// The words of the SPDY/3 dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1), each stored with a
/// 32-bit big-endian length before it ...
const DICTIONARY_WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// ... followed by this text, unprefixed.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request",
    "401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented",
    "503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,",
    "application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=",
    "gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 zlib dictionary (1423 bytes).
pub static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut d = Vec::with_capacity(1423);
    for w in DICTIONARY_WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    d
});

/// The dictionary's Adler-32, which a zlib stream names in its header (the bytes `e3 c6 a7 c2` after
/// `78 f9` on the wire).
pub const DICTIONARY_ID: u32 = 0xe3c6_a7c2;

/// A header block: names are lower case (SPDY/3 requires it), in the order received or inserted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Adds a header (the name is lower-cased). A second value of the same name is joined to the
    /// first with NUL, as SPDY/3 carries several values.
    pub fn insert(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push('\0');
                v.push_str(value);
            }
            None => self.0.push((name, value.to_string())),
        }
    }

    /// The value of `name` (any case); with several values, the first.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split('\0').next().unwrap_or_default())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The uncompressed name/value block.
    pub fn to_block(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(4 + self.0.iter().map(|(n, v)| 8 + n.len() + v.len()).sum::<usize>());
        b.extend_from_slice(&(self.0.len() as u32).to_be_bytes());
        for (n, v) in &self.0 {
            b.extend_from_slice(&(n.len() as u32).to_be_bytes());
            b.extend_from_slice(n.as_bytes());
            b.extend_from_slice(&(v.len() as u32).to_be_bytes());
            b.extend_from_slice(v.as_bytes());
        }
        b
    }

    /// Parses an uncompressed name/value block of stream `stream_id`.
    pub fn from_block(block: &[u8], stream_id: u32) -> Result<Headers, SpdyError> {
        let bad = |reason: String| SpdyError::HeaderBlock { stream_id, reason };
        let mut rest = block;
        let mut take = |n: usize, what: &str| -> Result<&[u8], SpdyError> {
            if rest.len() < n {
                return Err(bad(format!("truncated {what} ({} of {n} bytes)", rest.len())));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let count = be32(take(4, "header count")?);
        let mut headers = Headers::new();
        for _ in 0..count {
            let len = be32(take(4, "name length")?);
            if len == 0 {
                return Err(bad("empty header name".into()));
            }
            let name = std::str::from_utf8(take(len, "name")?)
                .map_err(|_| bad("header name is not UTF-8".into()))?
                .to_string();
            let len = be32(take(4, "value length")?);
            let value = String::from_utf8_lossy(take(len, "value")?).into_owned();
            headers.insert(&name, &value);
        }
        if !rest.is_empty() {
            return Err(bad(format!("{} bytes after the last header", rest.len())));
        }
        Ok(headers)
    }
}

/// The compressing side of one direction of a session.
pub struct HeaderEncoder {
    z: Compress,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        HeaderEncoder::new()
    }
}

impl HeaderEncoder {
    pub fn new() -> HeaderEncoder {
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(&DICTIONARY).expect("a fresh zlib stream takes a dictionary");
        HeaderEncoder { z }
    }

    /// The compressed block for `headers`, sync-flushed so the peer can decode it at once.
    pub fn encode(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let input = headers.to_block();
        let mut out = Vec::with_capacity(input.len() / 2 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(64));
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&input[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            pos += (self.z.total_in() - before) as usize;
            // Done when all input is in and the flush fit into the spare room.
            if pos == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The decompressing side of one direction of a session.
pub struct HeaderDecoder {
    z: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        HeaderDecoder::new()
    }
}

impl HeaderDecoder {
    pub fn new() -> HeaderDecoder {
        HeaderDecoder { z: Decompress::new(true) }
    }

    /// Decompresses the block of a frame of stream `stream_id` and parses it.
    pub fn decode(&mut self, compressed: &[u8], stream_id: u32) -> Result<Headers, SpdyError> {
        let mut out = Vec::with_capacity(compressed.len() * 4 + 64);
        let mut pos = 0;
        loop {
            if out.len() > MAX_BLOCK {
                return Err(SpdyError::HeaderBlock {
                    stream_id,
                    reason: format!("larger than {MAX_BLOCK} bytes decompressed"),
                });
            }
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
            let r = self.z.decompress_vec(&compressed[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.z.total_in() - in_before) as usize;
            match r {
                Ok(Status::StreamEnd) => {
                    return Err(SpdyError::HeaderBlock {
                        stream_id,
                        reason: "the peer ended its header compression stream".into(),
                    });
                }
                Ok(_) => {
                    if pos == compressed.len() && out.len() < out.capacity() && out.len() <= MAX_BLOCK {
                        break;
                    }
                    let stuck = self.z.total_in() == in_before && self.z.total_out() == out_before;
                    if stuck && out.len() < out.capacity() {
                        return Err(SpdyError::HeaderBlock {
                            stream_id,
                            reason: "truncated compressed header block".into(),
                        });
                    }
                }
                Err(e) => match e.needs_dictionary() {
                    Some(DICTIONARY_ID) => {
                        self.z
                            .set_dictionary(&DICTIONARY)
                            .map_err(|e| SpdyError::Compression(e.to_string()))?;
                    }
                    Some(other) => {
                        return Err(SpdyError::HeaderBlock {
                            stream_id,
                            reason: format!("compressed with an unknown dictionary (Adler-32 {other:08x})"),
                        });
                    }
                    None => return Err(SpdyError::HeaderBlock { stream_id, reason: e.to_string() }),
                },
            }
        }
        Headers::from_block(&out, stream_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + x as u32) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    #[test]
    fn dictionary_is_the_spdy3_one() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert_eq!(adler32(&DICTIONARY), DICTIONARY_ID);
        assert_eq!(&DICTIONARY[..11], b"\0\0\0\x07options");
        assert!(DICTIONARY.ends_with(b",*,enq=0."));
    }

    fn pf_headers(kind: &str, id: u32) -> Headers {
        let mut h = Headers::new();
        h.insert("streamType", kind);
        h.insert("port", "80");
        h.insert("requestID", &id.to_string());
        h
    }

    #[test]
    fn names_are_lower_case_and_values_join_with_nul() {
        let mut h = pf_headers("data", 0);
        assert_eq!(h.get("StreamType"), Some("data"));
        assert_eq!(h.iter().map(|(n, _)| n).collect::<Vec<_>>(), ["streamtype", "port", "requestid"]);
        h.insert("Accept", "a");
        h.insert("accept", "b");
        assert_eq!(h.get("accept"), Some("a"));
        assert_eq!(h.iter().last(), Some(("accept", "a\0b")));
        assert_eq!(Headers::from_block(&h.to_block(), 1).unwrap(), h);
    }

    #[test]
    fn block_layout_and_malformed_blocks() {
        let mut h = Headers::new();
        h.insert("port", "80");
        assert_eq!(h.to_block(), b"\0\0\0\x01\0\0\0\x04port\0\0\0\x0280");
        let err = |b: &[u8]| Headers::from_block(b, 7).unwrap_err().to_string();
        assert_eq!(
            err(b"\0\0\0\x01\0\0\0\x04po"),
            "malformed header block of stream 7: truncated name (2 of 4 bytes)"
        );
        assert!(err(b"\0\0\0\x01\0\0\0\0\0\0\0\0").contains("empty header name"));
        assert!(err(b"\0\0\0\0x").contains("1 bytes after the last header"));
    }

    #[test]
    fn compressed_blocks_round_trip_through_one_context_per_direction() {
        let (mut enc, mut dec) = (HeaderEncoder::new(), HeaderDecoder::new());
        let first = enc.encode(&pf_headers("error", 0)).unwrap();
        // zlib header with FDICT and the SPDY dictionary's id, as kubectl's first SYN_STREAM has.
        assert_eq!(&first[..6], [0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);
        assert_eq!(dec.decode(&first, 1).unwrap(), pf_headers("error", 0));
        // Later blocks continue the same stream (no zlib header, back-references to earlier ones).
        for id in 1..50 {
            let b = enc.encode(&pf_headers("data", id)).unwrap();
            assert_ne!(&b[..2], [0x78, 0xf9]);
            assert_eq!(dec.decode(&b, 2 * id + 1).unwrap(), pf_headers("data", id));
        }
        // An empty block (a SYN_REPLY's) too.
        let empty = enc.encode(&Headers::new()).unwrap();
        assert!(dec.decode(&empty, 3).unwrap().is_empty());
        // A fresh decoder cannot read the middle of a stream.
        let b = enc.encode(&pf_headers("data", 9)).unwrap();
        assert!(HeaderDecoder::new().decode(&b, 5).is_err());
    }

    #[test]
    fn wrong_dictionary_and_bombs_are_refused() {
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(b"another dictionary").unwrap();
        let mut out = Vec::with_capacity(256);
        z.compress_vec(&pf_headers("data", 0).to_block(), &mut out, FlushCompress::Sync).unwrap();
        let e = HeaderDecoder::new().decode(&out, 1).unwrap_err().to_string();
        assert!(e.contains("unknown dictionary"), "{e}");

        // A block that inflates past the limit.
        let mut h = Headers::new();
        h.insert("x", &"a".repeat(MAX_BLOCK + 1));
        let bomb = HeaderEncoder::new().encode(&h).unwrap();
        assert!(bomb.len() < 2048, "{}", bomb.len());
        let e = HeaderDecoder::new().decode(&bomb, 1).map(|h| h.len());
        assert!(
            matches!(&e, Err(SpdyError::HeaderBlock { reason, .. }) if reason.contains("larger than")),
            "{e:?}"
        );
    }
}
