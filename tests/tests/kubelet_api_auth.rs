//! The kubelet API lets in only callers the api-server vouches for: the api-server's own client
//! certificate (bound to `system:kubelet-api-admin`) passes; another node's certificate, a
//! ServiceAccount token without rights and no credentials at all are refused, as Kubernetes' kubelet
//! does with webhook authentication and authorization.

use navarch_api::kubelet_proto::StatsRequest;
use navarch_api::kubelet_proto::kubelet_client::KubeletClient;
use navarch_tests::NodeEnv;
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

#[tokio::test(flavor = "multi_thread")]
async fn only_callers_the_api_server_vouches_for() {
    let n = NodeEnv::start().await;
    let url = n.kubelet_url().await;
    let pki = n.env.pki().clone();

    // The api-server's identity: allowed.
    n.kubelet_client().await.stats(StatsRequest::default()).await.expect("the api-server's certificate");

    // Another node's certificate: authenticated, refused.
    pki.node("node-other", &["127.0.0.1".parse().unwrap()]);
    let other = KubeletClient::new(pki.grpc_channel("nodes/node-other/kubelet-client", &url).await);
    let err = other.clone().stats(StatsRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("user=system:node:node-other, verb=get, resource=nodes, subresource=stats"),
        "{err:?}"
    );

    // A user without bindings, by certificate: refused.
    let stem = pki.user("alice", &[]);
    let alice = KubeletClient::new(pki.grpc_channel(&stem, &url).await);
    assert_eq!(
        alice.clone().stats(StatsRequest::default()).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // No credentials: 401.
    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pki.ca_pem()));
    let channel =
        Endpoint::from_shared(url.clone()).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
    let err = KubeletClient::new(channel.clone()).stats(StatsRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // A bearer token nobody issued: 401.
    let mut req = tonic::Request::new(StatsRequest::default());
    req.metadata_mut().insert("authorization", "Bearer forged.token.here".parse().unwrap());
    let err = KubeletClient::new(channel).stats(req).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");

    // The admin (cluster-admin) may.
    let admin = KubeletClient::new(pki.grpc_channel("admin", &url).await);
    admin.clone().stats(StatsRequest::default()).await.expect("cluster-admin may read stats");
}
