//! SPDY/3.1 frames on the wire: the 8-byte frame header (control bit, version and type, or stream
//! id; flags; 24-bit length), the control frames (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING,
//! GOAWAY, HEADERS, WINDOW_UPDATE) and data frames, read from and written to byte streams. Header
//! blocks go through the session's [`HeaderEncoder`]/[`HeaderDecoder`], so frames must be encoded
//! and decoded in wire order.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::SpdyError;
use super::headers::{HeaderDecoder, HeaderEncoder, Headers};

/// The only SPDY version spoken (SPDY/3.1 frames carry version 3).
pub const VERSION: u16 = 3;
/// The largest frame payload the 24-bit length allows.
pub const MAX_PAYLOAD: usize = 0xff_ffff;

/// FLAG_FIN: the sender sends nothing more on the stream.
pub const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL (SYN_STREAM): the recipient must not send on the stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// An RST_STREAM status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RstStatus(pub u32);

impl RstStatus {
    pub const PROTOCOL_ERROR: RstStatus = RstStatus(1);
    pub const INVALID_STREAM: RstStatus = RstStatus(2);
    pub const REFUSED_STREAM: RstStatus = RstStatus(3);
    pub const CANCEL: RstStatus = RstStatus(5);
    pub const INTERNAL_ERROR: RstStatus = RstStatus(6);

    /// SPDY/3's names of the codes 1 to 11.
    const NAMES: [&'static str; 11] = [
        "PROTOCOL_ERROR",
        "INVALID_STREAM",
        "REFUSED_STREAM",
        "UNSUPPORTED_VERSION",
        "CANCEL",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "STREAM_IN_USE",
        "STREAM_ALREADY_CLOSED",
        "INVALID_CREDENTIALS",
        "FRAME_TOO_LARGE",
    ];
}

impl std::fmt::Display for RstStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.0 as usize).checked_sub(1).and_then(|i| RstStatus::NAMES.get(i)) {
            Some(name) => f.write_str(name),
            None => write!(f, "status {}", self.0),
        }
    }
}

/// A GOAWAY status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoAwayStatus(pub u32);

impl GoAwayStatus {
    pub const OK: GoAwayStatus = GoAwayStatus(0);
    pub const PROTOCOL_ERROR: GoAwayStatus = GoAwayStatus(1);
    pub const INTERNAL_ERROR: GoAwayStatus = GoAwayStatus(2);
}

/// One SETTINGS entry: flags (8 bits), id (24 bits), value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynStream {
    pub stream_id: u32,
    pub associated_to: u32,
    /// 0 (highest) to 7.
    pub priority: u8,
    pub slot: u8,
    pub fin: bool,
    pub unidirectional: bool,
    pub headers: Headers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream(SynStream),
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: RstStatus,
    },
    Settings {
        clear: bool,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame of a type SPDY/3.1 does not define (or the obsolete NOOP/CREDENTIAL): the
    /// protocol says to ignore it.
    Unknown {
        frame_type: u16,
    },
}

/// The 8-byte header of every frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameHead {
    Control { version: u16, frame_type: u16, flags: u8, length: usize },
    Data { stream_id: u32, flags: u8, length: usize },
}

impl FrameHead {
    pub fn parse(b: [u8; 8]) -> FrameHead {
        let first = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let flags = b[4];
        let length = u32::from_be_bytes([0, b[5], b[6], b[7]]) as usize;
        if first & 0x8000_0000 != 0 {
            FrameHead::Control {
                version: ((first >> 16) & 0x7fff) as u16,
                frame_type: (first & 0xffff) as u16,
                flags,
                length,
            }
        } else {
            FrameHead::Data { stream_id: first, flags, length }
        }
    }

    pub fn length(&self) -> usize {
        match self {
            FrameHead::Control { length, .. } | FrameHead::Data { length, .. } => *length,
        }
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// 31-bit stream ids (the top bit is reserved).
fn stream_id(b: &[u8], at: usize) -> u32 {
    be32(b, at) & 0x7fff_ffff
}

/// Decodes a frame from its head and payload; header blocks go through `decoder` (always, even for
/// frames the caller will ignore, since the compression context spans the session).
pub fn decode(head: FrameHead, payload: Bytes, decoder: &mut HeaderDecoder) -> Result<Frame, SpdyError> {
    let (version, frame_type, flags) = match head {
        FrameHead::Data { stream_id, flags, .. } => {
            if stream_id == 0 {
                return Err(SpdyError::Frame { frame: "DATA", reason: "stream id 0".into() });
            }
            return Ok(Frame::Data { stream_id, fin: flags & FLAG_FIN != 0, data: payload });
        }
        FrameHead::Control { version, frame_type, flags, .. } => (version, frame_type, flags),
    };
    if version != VERSION {
        return Err(SpdyError::Version(version));
    }
    let p = &payload[..];
    let need = |frame: &'static str, n: usize| {
        if p.len() < n {
            Err(SpdyError::Frame { frame, reason: format!("{} bytes, at least {n} needed", p.len()) })
        } else {
            Ok(())
        }
    };
    let fin = flags & FLAG_FIN != 0;
    Ok(match frame_type {
        SYN_STREAM => {
            need("SYN_STREAM", 10)?;
            let id = stream_id(p, 0);
            let headers = decoder.decode(&p[10..], id)?;
            Frame::SynStream(SynStream {
                stream_id: id,
                associated_to: stream_id(p, 4),
                priority: p[8] >> 5,
                slot: p[9],
                fin,
                unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                headers,
            })
        }
        SYN_REPLY | HEADERS => {
            let name = if frame_type == SYN_REPLY { "SYN_REPLY" } else { "HEADERS" };
            need(name, 4)?;
            let id = stream_id(p, 0);
            let headers = decoder.decode(&p[4..], id)?;
            if frame_type == SYN_REPLY {
                Frame::SynReply { stream_id: id, fin, headers }
            } else {
                Frame::Headers { stream_id: id, fin, headers }
            }
        }
        RST_STREAM => {
            need("RST_STREAM", 8)?;
            Frame::RstStream { stream_id: stream_id(p, 0), status: RstStatus(be32(p, 4)) }
        }
        SETTINGS => {
            need("SETTINGS", 4)?;
            let n = be32(p, 0) as usize;
            if p.len() != 4 + n.saturating_mul(8) {
                return Err(SpdyError::Frame {
                    frame: "SETTINGS",
                    reason: format!("{n} entries in {} bytes", p.len()),
                });
            }
            let entries = (0..n)
                .map(|i| {
                    let at = 4 + 8 * i;
                    Setting { flags: p[at], id: be32(p, at) & 0xff_ffff, value: be32(p, at + 4) }
                })
                .collect();
            Frame::Settings { clear: flags & 0x01 != 0, entries }
        }
        PING => {
            need("PING", 4)?;
            Frame::Ping { id: be32(p, 0) }
        }
        GOAWAY => {
            need("GOAWAY", 8)?;
            Frame::GoAway { last_good_stream_id: stream_id(p, 0), status: GoAwayStatus(be32(p, 4)) }
        }
        WINDOW_UPDATE => {
            need("WINDOW_UPDATE", 8)?;
            Frame::WindowUpdate { stream_id: stream_id(p, 0), delta: be32(p, 4) & 0x7fff_ffff }
        }
        other => Frame::Unknown { frame_type: other },
    })
}

/// Reads one frame; `None` when the stream ends cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    decoder: &mut HeaderDecoder,
) -> Result<Option<Frame>, SpdyError> {
    let mut head = [0u8; 8];
    let n = r.read(&mut head).await.map_err(SpdyError::Io)?;
    if n == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[n..]).await.map_err(SpdyError::Io)?;
    let head = FrameHead::parse(head);
    let mut payload = BytesMut::zeroed(head.length());
    r.read_exact(&mut payload).await.map_err(SpdyError::Io)?;
    decode(head, payload.freeze(), decoder).map(Some)
}

fn control_head(out: &mut BytesMut, frame_type: u16, flags: u8, length: usize) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(frame_type);
    out.put_u32(((flags as u32) << 24) | length as u32);
}

fn flag(set: bool, bit: u8) -> u8 {
    if set { bit } else { 0 }
}

/// Appends the wire form of `frame` to `out`; header blocks go through `encoder`.
pub fn encode(frame: &Frame, encoder: &mut HeaderEncoder, out: &mut BytesMut) -> Result<(), SpdyError> {
    let too_large = |frame: &'static str, len: usize| SpdyError::Frame {
        frame,
        reason: format!("payload of {len} bytes exceeds {MAX_PAYLOAD}"),
    };
    match frame {
        Frame::SynStream(s) => {
            let block = encoder.encode(&s.headers)?;
            let len = 10 + block.len();
            if len > MAX_PAYLOAD {
                return Err(too_large("SYN_STREAM", len));
            }
            let flags = flag(s.fin, FLAG_FIN) | flag(s.unidirectional, FLAG_UNIDIRECTIONAL);
            control_head(out, SYN_STREAM, flags, len);
            out.put_u32(s.stream_id & 0x7fff_ffff);
            out.put_u32(s.associated_to & 0x7fff_ffff);
            out.put_u8((s.priority & 0x07) << 5);
            out.put_u8(s.slot);
            out.put_slice(&block);
        }
        Frame::SynReply { stream_id, fin, headers } | Frame::Headers { stream_id, fin, headers } => {
            let (ty, name) = match frame {
                Frame::SynReply { .. } => (SYN_REPLY, "SYN_REPLY"),
                _ => (HEADERS, "HEADERS"),
            };
            let block = encoder.encode(headers)?;
            let len = 4 + block.len();
            if len > MAX_PAYLOAD {
                return Err(too_large(name, len));
            }
            control_head(out, ty, flag(*fin, FLAG_FIN), len);
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_slice(&block);
        }
        Frame::RstStream { stream_id, status } => {
            control_head(out, RST_STREAM, 0, 8);
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32(status.0);
        }
        Frame::Settings { clear, entries } => {
            let len = 4 + 8 * entries.len();
            if len > MAX_PAYLOAD {
                return Err(too_large("SETTINGS", len));
            }
            control_head(out, SETTINGS, flag(*clear, 0x01), len);
            out.put_u32(entries.len() as u32);
            for e in entries {
                out.put_u32(((e.flags as u32) << 24) | (e.id & 0xff_ffff));
                out.put_u32(e.value);
            }
        }
        Frame::Ping { id } => {
            control_head(out, PING, 0, 4);
            out.put_u32(*id);
        }
        Frame::GoAway { last_good_stream_id, status } => {
            control_head(out, GOAWAY, 0, 8);
            out.put_u32(last_good_stream_id & 0x7fff_ffff);
            out.put_u32(status.0);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            control_head(out, WINDOW_UPDATE, 0, 8);
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32(delta & 0x7fff_ffff);
        }
        Frame::Data { stream_id, fin, data } => {
            if data.len() > MAX_PAYLOAD {
                return Err(too_large("DATA", data.len()));
            }
            out.put_u32(stream_id & 0x7fff_ffff);
            out.put_u32(((flag(*fin, FLAG_FIN) as u32) << 24) | data.len() as u32);
            out.put_slice(data);
        }
        Frame::Unknown { frame_type } => {
            return Err(SpdyError::Frame {
                frame: "unknown",
                reason: format!("type {frame_type} is not sent"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in pairs {
            h.insert(n, v);
        }
        h
    }

    /// Encodes each frame with one encoder, decodes with one decoder, as a session does.
    fn round_trip(frames: &[Frame]) -> (Vec<Frame>, BytesMut) {
        let (mut enc, mut dec) = (HeaderEncoder::new(), HeaderDecoder::new());
        let mut wire = BytesMut::new();
        for f in frames {
            encode(f, &mut enc, &mut wire).unwrap();
        }
        let mut r = &wire[..];
        let mut out = Vec::new();
        while !r.is_empty() {
            let head = FrameHead::parse(r[..8].try_into().unwrap());
            let payload = Bytes::copy_from_slice(&r[8..8 + head.length()]);
            r = &r[8 + head.length()..];
            out.push(decode(head, payload, &mut dec).unwrap());
        }
        (out, wire)
    }

    #[test]
    fn every_frame_type_round_trips() {
        let frames = vec![
            Frame::SynStream(SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                slot: 0,
                fin: false,
                unidirectional: false,
                headers: headers(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
            }),
            Frame::SynStream(SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 7,
                slot: 2,
                fin: true,
                unidirectional: true,
                headers: headers(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
            }),
            Frame::SynReply { stream_id: 1, fin: false, headers: Headers::new() },
            Frame::SynReply { stream_id: 3, fin: true, headers: headers(&[("x", "y")]) },
            Frame::RstStream { stream_id: 5, status: RstStatus::CANCEL },
            Frame::Settings {
                clear: true,
                entries: vec![
                    Setting { flags: 1, id: 7, value: 65536 },
                    Setting { flags: 0, id: 4, value: 100 },
                ],
            },
            Frame::Ping { id: 1 },
            Frame::GoAway { last_good_stream_id: 3, status: GoAwayStatus::OK },
            Frame::Headers { stream_id: 3, fin: true, headers: headers(&[("a", "b")]) },
            Frame::WindowUpdate { stream_id: 3, delta: 1 << 20 },
            Frame::Data { stream_id: 3, fin: false, data: Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n") },
            Frame::Data { stream_id: 3, fin: true, data: Bytes::new() },
        ];
        let (decoded, _) = round_trip(&frames);
        assert_eq!(decoded, frames);
    }

    #[test]
    fn wire_layout() {
        let syn = Frame::SynStream(SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            slot: 0,
            fin: false,
            unidirectional: false,
            headers: headers(&[("port", "80")]),
        });
        let (_, wire) = round_trip(&[syn]);
        // Control bit + version 3, type 1 (SYN_STREAM), no flags, length, stream 1, no associated
        // stream, priority and slot 0, then zlib with the SPDY dictionary: what kubectl sends.
        assert_eq!(&wire[..4], [0x80, 0x03, 0x00, 0x01]);
        assert_eq!(wire[4], 0);
        assert_eq!(u32::from_be_bytes([0, wire[5], wire[6], wire[7]]) as usize, wire.len() - 8);
        assert_eq!(&wire[8..18], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&wire[18..24], [0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);

        let (_, wire) =
            round_trip(&[Frame::Data { stream_id: 3, fin: true, data: Bytes::from_static(b"hi") }]);
        assert_eq!(&wire[..], [0, 0, 0, 3, 0x01, 0, 0, 2, b'h', b'i']);
        let (_, wire) = round_trip(&[Frame::Ping { id: 1 }]);
        assert_eq!(&wire[..], [0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1]);
        let (_, wire) = round_trip(&[Frame::RstStream { stream_id: 1, status: RstStatus::CANCEL }]);
        assert_eq!(&wire[..], [0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 5]);
        let (_, wire) = round_trip(&[Frame::GoAway { last_good_stream_id: 0, status: GoAwayStatus::OK }]);
        assert_eq!(
            (RstStatus(11).to_string(), RstStatus(12).to_string()),
            ("FRAME_TOO_LARGE".into(), "status 12".into())
        );
        assert_eq!(&wire[..], [0x80, 0x03, 0x00, 0x07, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn kubectls_frames_decode() {
        use crate::spdy::test_client::KUBECTL_WIRE;
        let head = FrameHead::parse(KUBECTL_WIRE[..8].try_into().unwrap());
        assert_eq!(head, FrameHead::Control { version: 3, frame_type: SYN_STREAM, flags: 0, length: 0x3d });
        let mut dec = HeaderDecoder::new();
        let mut r = &KUBECTL_WIRE[..];
        let mut frames = Vec::new();
        while let Some(f) = read_frame(&mut r, &mut dec).await.unwrap() {
            frames.push(f);
        }
        let [Frame::SynStream(error), fin, Frame::SynStream(data), request, rst] = &frames[..] else {
            panic!("{frames:?}");
        };
        fn pf(s: &SynStream) -> (u32, usize, Option<&str>, Option<&str>, Option<&str>) {
            let h = &s.headers;
            (s.stream_id, h.len(), h.get("streamtype"), h.get("port"), h.get("requestid"))
        }
        assert_eq!(pf(error), (1, 3, Some("error"), Some("80"), Some("0")));
        assert_eq!(pf(data), (3, 3, Some("data"), Some("80"), Some("0")));
        assert_eq!((error.priority, error.associated_to, error.fin), (0, 0, false));
        assert_eq!(*fin, Frame::Data { stream_id: 1, fin: true, data: Bytes::new() });
        assert_eq!(
            *request,
            Frame::Data {
                stream_id: 3,
                fin: false,
                data: Bytes::from_static(b"GET / HTTP/1.0\r\nHost: 127.0.0.1:43301\r\n\r\n")
            }
        );
        assert_eq!(*rst, Frame::RstStream { stream_id: 3, status: RstStatus::CANCEL });
    }

    #[test]
    fn malformed_frames() {
        let mut dec = HeaderDecoder::new();
        let ctl = |frame_type, len| FrameHead::Control { version: 3, frame_type, flags: 0, length: len };
        let e = decode(ctl(PING, 2), Bytes::from_static(&[0, 1]), &mut dec).unwrap_err();
        assert_eq!(e.to_string(), "malformed PING frame: 2 bytes, at least 4 needed");
        let v2 = FrameHead::Control { version: 2, frame_type: PING, flags: 0, length: 4 };
        let e = decode(v2, Bytes::from_static(&[0, 0, 0, 1]), &mut dec).unwrap_err();
        assert_eq!(e.to_string(), "unsupported SPDY version 2 (only 3 is spoken)");
        let e =
            decode(ctl(SETTINGS, 8), Bytes::from_static(&[0, 0, 0, 2, 0, 0, 0, 0]), &mut dec).unwrap_err();
        assert!(e.to_string().contains("2 entries in 8 bytes"), "{e}");
        let data0 = FrameHead::Data { stream_id: 0, flags: 0, length: 0 };
        assert!(decode(data0, Bytes::new(), &mut dec).is_err());
        // Unknown control types (SPDY/2's NOOP) are ignored, not errors.
        assert_eq!(decode(ctl(5, 0), Bytes::new(), &mut dec).unwrap(), Frame::Unknown { frame_type: 5 });
    }

    #[tokio::test]
    async fn read_frame_from_a_byte_stream() {
        let (mut enc, mut dec) = (HeaderEncoder::new(), HeaderDecoder::new());
        let mut wire = BytesMut::new();
        let frames = [
            Frame::Ping { id: 3 },
            Frame::Data { stream_id: 1, fin: false, data: Bytes::from(vec![7u8; 100_000]) },
        ];
        for f in &frames {
            encode(f, &mut enc, &mut wire).unwrap();
        }
        let mut r = &wire[..];
        assert_eq!(read_frame(&mut r, &mut dec).await.unwrap().unwrap(), frames[0]);
        assert_eq!(read_frame(&mut r, &mut dec).await.unwrap().unwrap(), frames[1]);
        assert!(read_frame(&mut r, &mut dec).await.unwrap().is_none());
        // A stream ending mid-frame is an error.
        let mut cut = &wire[..20];
        read_frame(&mut cut, &mut dec).await.unwrap();
        assert!(read_frame(&mut cut, &mut dec).await.is_err());
    }
}
