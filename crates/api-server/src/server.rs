//! The api-server's one listener: HTTP/1.1 and HTTP/2 (detected per connection) on the same port,
//! each request routed by its content type — `application/grpc*` to the gRPC service, everything else
//! to the REST API. Both sit behind this one `tower` service ([`FrontDoor`]), so request layers
//! (authentication, authorization, audit, admission) wrap both at one place.
//!
//! HTTP/1.1 connections may be upgraded (kubectl exec/attach/port-forward: WebSocket or SPDY/3.1);
//! the upgraded stream is then served by a task of [`crate::rest::upgrade`], owned by the state's task
//! tracker and ended by the same shutdown token.
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

use crate::rest::{ResponseBody, RestApi};
use crate::service::Service;

/// How often an idle HTTP/2 connection is pinged, and how long the answer may take: a client that
/// vanished (a cut link) is noticed and its watches freed.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a client may take to send an HTTP/1.1 request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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

impl tower_service::Service<Request<Incoming>> for FrontDoor {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<ResponseBody>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        if is_grpc(&req) {
            let mut grpc = self.grpc.clone();
            Box::pin(async move { tower_service::Service::call(&mut grpc, req).await })
        } else {
            let rest = self.rest.clone();
            Box::pin(async move { Ok(rest.handle(req).await) })
        }
    }
}

/// Serves connections from `listener` until `shutdown`, then asks every connection to finish and waits
/// for them at most `drain`.
pub async fn serve(listener: TcpListener, front: FrontDoor, shutdown: CancellationToken, drain: Duration) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT).keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT)
        // As tonic's server: no limit on concurrent streams (a daemon's watches share one connection).
        .max_concurrent_streams(None);
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
        let service = TowerToHyperService::new(front.clone());
        let builder = builder.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
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
