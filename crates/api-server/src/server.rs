//! The api-server's one listener: HTTP/1.1 and HTTP/2 (detected per connection) on the same port,
//! each request routed by its content type — `application/grpc*` to the gRPC service, everything else
//! to the REST API. Both sit behind this one `tower` service ([`FrontDoor`]), so request layers
//! (authentication, authorization, audit, admission) wrap both at one place.
//!
//! HTTP/1.1 connections may be upgraded (kubectl exec/attach/port-forward: WebSocket or SPDY/3.1);
//! the upgraded stream is then served by a task of [`crate::rest::upgrade`], owned by the state's task
//! tracker and ended by the same shutdown token.
//!
//! Every connection is TLS (rustls, ALPN `h2` and `http/1.1`); a plaintext client fails the handshake.
//! The client certificate the handshake verified, and the peer's address, go into every request's
//! extensions ([`ConnectionInfo`]) for authentication and audit.
//!
//! Shutdown: the listener closes, every connection is asked to finish gracefully (HTTP/2 GOAWAY,
//! HTTP/1.1 closes after the request in flight), and the caller bounds the wait.

use std::convert::Infallible;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use navarch_api::proto::api_server_server::ApiServerServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::authenticate::ConnectionInfo;
use crate::rest::{ResponseBody, RestApi};
use crate::service::Service;

/// How often an idle HTTP/2 connection is pinged, and how long the answer may take: a client that
/// vanished (a cut link) is noticed and its watches freed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a client may take to send an HTTP/1.1 request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Routes each request to gRPC or REST.
#[derive(Clone)]
pub struct FrontDoor {
    grpc: ApiServerServer<Service>,
    rest: RestApi,
}

impl FrontDoor {
    pub fn new(grpc: ApiServerServer<Service>, rest: RestApi) -> FrontDoor {
        FrontDoor { grpc, rest }
    }
}

fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

impl<B> tower_service::Service<Request<B>> for FrontDoor
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if is_grpc(&req) {
            let mut grpc = self.grpc.clone();
            Box::pin(async move { tower_service::Service::call(&mut grpc, req).await })
        } else {
            let rest = self.rest.clone();
            Box::pin(async move { Ok(rest.handle(req).await) })
        }
    }
}

/// Puts the connection's [`ConnectionInfo`] into each request of the connection.
#[derive(Clone)]
struct WithConnection<S> {
    inner: S,
    info: ConnectionInfo,
}

impl<S, B> tower_service::Service<Request<B>> for WithConnection<S>
where
    S: tower_service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        req.extensions_mut().insert(self.info.clone());
        self.inner.call(req)
    }
}

/// The subject of the client certificate a TLS connection verified, if any.
fn client_certificate(conn: &rustls::ServerConnection) -> Option<navarch_pki::SubjectNames> {
    let cert = conn.peer_certificates()?.first()?;
    match navarch_pki::subject_names(cert) {
        Ok(names) => Some(names),
        Err(e) => {
            // rustls verified it, so this does not happen with certificates of our CA.
            tracing::warn!(error = %e, "reading a verified client certificate's subject");
            None
        }
    }
}

/// Serves TLS connections from `listener` until `shutdown`, then asks every connection to finish and
/// waits for them at most `drain`. `service` is the whole request stack (authentication, audit, the
/// front door).
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
    drain: Duration,
) where
    S: tower_service::Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        // As tonic's server: no limit on concurrent streams (a daemon's watches share one connection).
        .max_concurrent_streams(None);
    let acceptor = TlsAcceptor::from(tls);
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accepting a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Without NODELAY small responses wait out Nagle + delayed ACK (~40 ms each).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY");
        }
        let service = service.clone();
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        let acceptor = acceptor.clone();
        connections.spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let info = ConnectionInfo { peer, client_cert: client_certificate(stream.get_ref().1) };
            let service = TowerToHyperService::new(WithConnection { inner: service, info });
            let mut conn = pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), service));
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    connections.close();
    if tokio::time::timeout(drain, connections.wait()).await.is_err() {
        tracing::warn!(remaining = connections.len(), "drain timed out; closing remaining connections");
    }
}
