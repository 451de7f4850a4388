//! A minimal HTTP/1.0 client for loopback: the `/readyz`, `/healthz` and `/metrics` of the daemons and
//! the registry's API in plain HTTP ([`http_get`], [`http_request`]), and raw requests to the
//! api-server's REST API over TLS with a client certificate ([`Rest`], made by
//! [`TestEnv::rest`](crate::TestEnv::rest)), without a client library ([`Rest::json`]: one JSON request
//! and its JSON answer, from async tests).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A response of [`http_get_with_headers`].
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.0 GET on loopback with extra request headers (e.g. `Accept`), returning the status,
/// the response headers and the body.
pub fn http_get_with_headers(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Option<HttpResponse> {
    http_request(addr, "GET", path, headers, None)
}

/// A minimal HTTP/1.0 request on loopback (`POST`, `PUT`, `PATCH` with a body, sent with its
/// `Content-Length`), returning the status, the response headers and the body.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Option<HttpResponse> {
    let mut s = connect(addr)?;
    exchange(&mut s, addr, method, path, headers, body)
}

fn connect(addr: SocketAddr) -> Option<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    Some(s)
}

/// Sends one request on `s` and reads the answer up to the end of the stream.
fn exchange(
    s: &mut impl ReadWrite,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Option<HttpResponse> {
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body.unwrap_or_default());
    s.write_all(&bytes).ok()?;
    s.flush().ok()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A TLS peer that closes without close_notify: the answer is complete all the same.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(_) => return None,
        }
    }
    let resp = String::from_utf8(raw).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(HttpResponse { status, headers, body: body.to_string() })
}

/// A byte stream of [`exchange`]: a TCP connection, plain or TLS.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Raw requests to the api-server's REST API: TLS (its certificate checked against the cluster CA)
/// with a client certificate, HTTP/1.0. Cheap to clone; made by
/// [`TestEnv::rest`](crate::TestEnv::rest) (as the admin) or [`TestEnv::rest_as`](crate::TestEnv::rest_as).
#[derive(Clone)]
pub struct Rest {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Rest {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Rest({})", self.addr)
    }
}

impl Rest {
    /// Requests to `addr` with `tls` (ALPN `http/1.1`; the server name is the address's IP).
    pub fn new(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Rest {
        Rest { addr, tls }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// One request, blocking (`None`: no connection, no TLS session or no HTTP answer).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Option<HttpResponse> {
        let name = rustls_pki_types::ServerName::IpAddress(self.addr.ip().into());
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).ok()?;
        let mut s = rustls::StreamOwned::new(conn, connect(self.addr)?);
        exchange(&mut s, self.addr, method, path, headers, body)
    }

    /// A GET with extra request headers (e.g. `Accept`), blocking.
    pub fn get_with_headers(&self, path: &str, headers: &[(&str, &str)]) -> Option<HttpResponse> {
        self.request("GET", path, headers, None)
    }

    /// A GET, blocking: (status code, body).
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.get_with_headers(path, &[]).map(|r| (r.status, r.body))
    }

    /// [`Rest::request`] off the caller's runtime; panics without an answer.
    pub async fn request_async(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> HttpResponse {
        let rest = self.clone();
        let (method, path) = (method.to_string(), path.to_string());
        let headers: Vec<(String, String)> =
            headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            rest.request(&method, &path, &headers, body.as_deref())
        })
        .await
        .expect("the request's thread")
        .unwrap_or_else(|| panic!("no answer from {}", self.addr))
    }

    /// One REST request with a JSON `body` (sent as `content_type` when not empty), run off the caller's
    /// runtime: the status and the answer as JSON (`Null` when it is not JSON).
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let body = body.map(|b| serde_json::to_vec(b).expect("a JSON body"));
        let mut headers = vec![("User-Agent", "navarch-tests/1.0 (linux/amd64)")];
        if !content_type.is_empty() {
            headers.push(("Content-Type", content_type));
        }
        let resp = self.request_async(method, path, &headers, body).await;
        (resp.status, serde_json::from_str(&resp.body).unwrap_or_default())
    }
}

/// A minimal HTTP/1.0 GET on loopback: (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_get_with_headers(addr, path, &[]).map(|r| (r.status, r.body))
}
