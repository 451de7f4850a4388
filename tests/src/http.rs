//! A minimal HTTP/1.0 client for loopback: the `/readyz`, `/healthz` and `/metrics` of the daemons, the
//! registry's API and raw requests to the api-server's REST API, without a client library
//! ([`http_json`]: one JSON request and its JSON answer, from async tests).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
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
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(HttpResponse { status, headers, body: body.to_string() })
}

/// A minimal HTTP/1.0 GET on loopback: (status code, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    http_get_with_headers(addr, path, &[]).map(|r| (r.status, r.body))
}

/// One REST request with a JSON `body` (sent as `content_type` when not empty), run off the caller's
/// runtime: the status and the answer as JSON (`Null` when it is not JSON).
pub async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let (method, path, content_type) = (method.to_string(), path.to_string(), content_type.to_string());
    let body = body.map(|b| serde_json::to_vec(b).expect("a JSON body"));
    let resp = tokio::task::spawn_blocking(move || {
        let mut headers = vec![("User-Agent", "navarch-tests/1.0 (linux/amd64)")];
        if !content_type.is_empty() {
            headers.push(("Content-Type", content_type.as_str()));
        }
        http_request(addr, &method, &path, &headers, body.as_deref())
    })
    .await
    .expect("the request's thread")
    .unwrap_or_else(|| panic!("no answer from {addr}"));
    (resp.status, serde_json::from_str(&resp.body).unwrap_or_default())
}
