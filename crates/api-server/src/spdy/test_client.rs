//! A small SPDY/3.1 client for tests, built from [`super::frame`]: what spdystream does on the client
//! side (odd stream ids, one header compression context per direction), frame by frame.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use super::frame::{self, Frame, SynStream};
use super::headers::{HeaderDecoder, HeaderEncoder, Headers};

/// What kubectl 1.32 sent for one forwarded connection (`KUBECTL_PORT_FORWARD_WEBSOCKETS=false`,
/// recorded after the 101): the error stream's SYN_STREAM (the start the wire notes of 3.20
/// show) and its FIN, the data stream's SYN_STREAM (its header block compressed against the
/// first), an HTTP request, and RST_STREAM CANCEL once the answer was complete.
pub const KUBECTL_WIRE: [u8; 174] = [
    0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3d, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0x25, 0x3a, 0x70, 0x3a, 0x2b, 0x29, 0x4a, 0x4d, 0xcc,
    0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x86, 0x14, 0xcb, 0x45, 0xa0, 0x24, 0xcc, 0x64, 0x61, 0xc0,
    0xc0, 0xc0, 0xc0, 0x59, 0x04, 0x89, 0xc4, 0x4c, 0x50, 0xe2, 0x66, 0x34, 0x00, 0x00, 0x00, 0x00, 0xff,
    0xff, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x18,
    0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc2, 0xaa, 0x15, 0x54, 0x0a, 0x25, 0x12,
    0xd2, 0x09, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x29, 0x47, 0x45,
    0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x30, 0x0d, 0x0a, 0x48, 0x6f, 0x73,
    0x74, 0x3a, 0x20, 0x31, 0x32, 0x37, 0x2e, 0x30, 0x2e, 0x30, 0x2e, 0x31, 0x3a, 0x34, 0x33, 0x33, 0x30,
    0x31, 0x0d, 0x0a, 0x0d, 0x0a, 0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x00, 0x05,
];

pub struct Client {
    pub r: ReadHalf<DuplexStream>,
    pub w: WriteHalf<DuplexStream>,
    enc: HeaderEncoder,
    dec: HeaderDecoder,
    pub next_id: u32,
}

impl Client {
    pub fn new(io: DuplexStream) -> Client {
        let (r, w) = tokio::io::split(io);
        Client { r, w, enc: HeaderEncoder::new(), dec: HeaderDecoder::new(), next_id: 1 }
    }

    pub async fn send(&mut self, f: Frame) {
        let mut b = BytesMut::new();
        frame::encode(&f, &mut self.enc, &mut b).unwrap();
        self.w.write_all(&b).await.unwrap();
    }

    /// The next frame from the server; `None` at the end of the connection.
    pub async fn recv(&mut self) -> Option<Frame> {
        tokio::time::timeout(Duration::from_secs(5), frame::read_frame(&mut self.r, &mut self.dec))
            .await
            .expect("a frame from the server within 5 s")
            .unwrap()
    }

    /// Opens a stream with these headers; returns its id.
    pub async fn open_with(&mut self, headers: &[(&str, &str)]) -> u32 {
        let id = self.next_id;
        self.next_id += 2;
        let mut h = Headers::new();
        for (n, v) in headers {
            h.insert(n, v);
        }
        self.send(Frame::SynStream(SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            slot: 0,
            fin: false,
            unidirectional: false,
            headers: h,
        }))
        .await;
        id
    }

    /// Opens a port-forward-like stream of type `kind` to port 80; returns its id.
    pub async fn open(&mut self, kind: &str) -> u32 {
        self.open_with(&[("streamType", kind), ("port", "80")]).await
    }

    pub async fn data(&mut self, stream_id: u32, data: &'static [u8], fin: bool) {
        self.send(Frame::Data { stream_id, fin, data: Bytes::from_static(data) }).await;
    }
}
