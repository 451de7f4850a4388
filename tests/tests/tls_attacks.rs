//! The connection-level attacks of the security issue's list, against a real api-server and etcd: a
//! client certificate of another CA (naming the admin), an expired certificate of the cluster CA,
//! plaintext HTTP to the api-server, plaintext to etcd, and etcd with a certificate of the cluster CA
//! instead of the etcd CA. Each is refused before any request is answered; the admin's own certificate,
//! the control, is answered.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use navarch_pki::authority::CA_VALIDITY;
use navarch_pki::{Authority, Leaf};
use navarch_tests::{Rest, TestEnv};

const ADMIN: &str = "kubernetes-admin";
const ADMINS: &str = "navarch:cluster-admins";
const PODS: &str = "/api/v1/namespaces/default/pods";

/// A REST client presenting `cert`/`key` and trusting the cluster CA.
fn rest_with(env: &TestEnv, cert: &str, key: &str) -> Rest {
    let tls = navarch_pki::tls::client_config(
        &env.pki().ca_pem(),
        Some((cert.as_bytes(), key.as_bytes())),
        &[b"http/1.1"],
    )
    .expect("a TLS client configuration");
    Rest::new(env.api_server_addr(), Arc::new(tls))
}

#[tokio::test]
async fn foreign_expired_and_plaintext_connections_are_refused() {
    let env = TestEnv::start().await;
    let pki = env.pki().clone();
    let control = env.rest();
    let r = tokio::task::spawn_blocking(move || control.get(PODS)).await.unwrap();
    assert_eq!(r.map(|(code, _)| code), Some(200), "the admin's own certificate is answered");

    // The admin's name and group, signed by another CA.
    let other = Authority::generate("navarch-ca", CA_VALIDITY).unwrap();
    let forged = other.issue(&Leaf::client(ADMIN, &[ADMINS])).unwrap();
    let rest = rest_with(&env, &forged.cert_pem, &forged.key_pem);
    let r = tokio::task::spawn_blocking(move || rest.get(PODS)).await.unwrap();
    assert!(r.is_none(), "a certificate of another CA got an answer: {r:?}");

    // The cluster CA's certificate, expired.
    let ca = Authority::load(&pki.path("ca.crt"), &pki.path("ca.key")).unwrap();
    let mut leaf = Leaf::client(ADMIN, &[ADMINS]);
    leaf.validity = Duration::from_secs(1);
    let expired = ca.issue(&leaf).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rest = rest_with(&env, &expired.cert_pem, &expired.key_pem);
    let r = tokio::task::spawn_blocking(move || rest.get(PODS)).await.unwrap();
    assert!(r.is_none(), "an expired certificate got an answer: {r:?}");

    // Plaintext HTTP to the api-server's port: no HTTP answer (at most a TLS alert).
    let addr = env.api_server_addr();
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: api\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plaintext HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // etcd in plaintext.
    let plain = env.etcd.endpoint().replace("https://", "http://");
    let attempt = async {
        let mut c = etcd_client::Client::connect([plain.as_str()], None).await?;
        c.get("/registry/secrets", Some(etcd_client::GetOptions::new().with_prefix())).await
    };
    let r = tokio::time::timeout(Duration::from_secs(15), attempt).await;
    assert!(!matches!(r, Ok(Ok(_))), "etcd answered plaintext");

    // etcd with a certificate of the cluster CA (the admin's): its CA is not etcd's.
    let (cert, key) = pki.identity_pem("admin");
    let tls = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(std::fs::read(pki.path("etcd/ca.crt")).unwrap()))
        .identity(etcd_client::Identity::from_pem(cert, key));
    let options = etcd_client::ConnectOptions::new().with_tls(tls);
    let endpoint = env.etcd.endpoint();
    let attempt = async {
        let mut c = etcd_client::Client::connect([endpoint.as_str()], Some(options)).await?;
        c.get("/registry/secrets", Some(etcd_client::GetOptions::new().with_prefix())).await
    };
    let r = tokio::time::timeout(Duration::from_secs(15), attempt).await;
    assert!(!matches!(r, Ok(Ok(_))), "etcd answered a client certificate of the cluster CA");

    // The api-server's own etcd client certificate is answered (the control).
    let mut c = env.etcd.client().await;
    c.get("/registry/secrets", Some(etcd_client::GetOptions::new().with_prefix())).await.unwrap();
}
