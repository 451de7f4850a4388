//! Forwarding of names outside the cluster domain to upstream resolvers, like a stub resolver:
//! upstreams in order, each given [`UPSTREAM_TIMEOUT`]; UDP first (from a fresh socket, so a fresh
//! source port, with a random message id), TCP when the UDP answer comes back truncated.
//! The default upstreams are the host's (`/etc/resolv.conf`), minus loopback addresses.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_server::proto::op::{Edns, Message, MessageType, Query};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::Error;

/// How long one upstream may take to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// The EDNS buffer size advertised upstream (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// `IP` (port 53) or `IP:port` (`[v6]:port`).
pub fn parse_upstream(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not an IP address or IP:port"))
}

/// The `nameserver` lines of a resolv.conf, without loopback addresses: on a node those are a local
/// stub (systemd-resolved's 127.0.0.53) or this very server, and forwarding there would loop.
pub fn nameservers_from_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()).flatten()
        })
        // A scoped IPv6 address (`fe80::1%eth0`) is not supported by SocketAddr; skip it.
        .filter_map(|w| w.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Sends queries to the upstream resolvers.
#[derive(Debug, Clone)]
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    timeout: Duration,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder { upstreams, timeout: UPSTREAM_TIMEOUT }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// Asks the upstreams in order; the first answer wins, whatever its response code.
    pub async fn forward(&self, query: &Query, checking_disabled: bool) -> Result<Message, Error> {
        let mut last = Error::NoUpstream;
        for &upstream in &self.upstreams {
            match self.exchange(upstream, query, checking_disabled).await {
                Ok(m) => return Ok(m),
                Err(e) => {
                    tracing::debug!(%upstream, error = %e, "upstream failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn exchange(&self, upstream: SocketAddr, query: &Query, cd: bool) -> Result<Message, Error> {
        let mut request = Message::query();
        request.metadata.recursion_desired = true;
        request.metadata.checking_disabled = cd;
        request.add_query(query.clone());
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        request.set_edns(edns);
        let bytes = request.to_vec().map_err(Error::Proto)?;
        let io = |source| Error::Upstream { upstream, source };
        let timeout = |_| Error::Upstream { upstream, source: std::io::ErrorKind::TimedOut.into() };
        let response = tokio::time::timeout(self.timeout, udp_exchange(upstream, &request, &bytes))
            .await
            .map_err(timeout)?
            .map_err(io)?;
        if !response.metadata.truncation {
            return Ok(response);
        }
        tokio::time::timeout(self.timeout, tcp_exchange(upstream, &request, &bytes))
            .await
            .map_err(timeout)?
            .map_err(io)
    }
}

/// True when `response` answers `request` (same id and question): anything else on the socket is
/// ignored, as a stub resolver does.
fn answers(request: &Message, response: &Message) -> bool {
    response.metadata.id == request.metadata.id
        && response.metadata.message_type == MessageType::Response
        && response.queries == request.queries
}

fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}

async fn udp_exchange(upstream: SocketAddr, request: &Message, bytes: &[u8]) -> std::io::Result<Message> {
    let local: SocketAddr = if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(bytes).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await?;
        match Message::from_vec(&buf[..n]) {
            Ok(m) if answers(request, &m) => return Ok(m),
            _ => continue,
        }
    }
}

async fn tcp_exchange(upstream: SocketAddr, request: &Message, bytes: &[u8]) -> std::io::Result<Message> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(bytes.len()).map_err(invalid)?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await?;
    loop {
        let len = stream.read_u16().await? as usize;
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        let m = Message::from_vec(&buf).map_err(invalid)?;
        if answers(request, &m) {
            return Ok(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    use hickory_server::proto::op::ResponseCode;
    use hickory_server::proto::rr::{Name, RData, Record, RecordType};

    use super::*;

    #[test]
    fn resolv_conf_and_upstream_syntax() {
        let text = "# generated\nsearch a.example\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n\
                    nameserver ::1\nnameserver 2001:db8::53\nnameserver fe80::1%eth0\noptions ndots:2\n";
        assert_eq!(
            nameservers_from_resolv_conf(text),
            vec!["192.0.2.1:53".parse::<SocketAddr>().unwrap(), "[2001:db8::53]:53".parse().unwrap()]
        );
        assert_eq!(parse_upstream("192.0.2.1").unwrap(), "192.0.2.1:53".parse().unwrap());
        assert_eq!(parse_upstream("192.0.2.1:5353").unwrap(), "192.0.2.1:5353".parse().unwrap());
        assert_eq!(parse_upstream("2001:db8::1").unwrap(), "[2001:db8::1]:53".parse().unwrap());
        assert!(parse_upstream("dns.example").is_err());
    }

    /// A fake upstream on loopback: over UDP it answers truncated (after a stray datagram with a
    /// wrong id), over TCP with the full answer.
    async fn truncating_upstream() -> SocketAddr {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = tokio::net::TcpListener::bind(addr).await.unwrap();
        let answer = |q: &Message| {
            let mut m = Message::response(q.metadata.id, q.metadata.op_code);
            m.add_queries(q.queries.clone());
            m.metadata.recursion_available = true;
            m
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, from) = udp.recv_from(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut stray = answer(&q);
                stray.metadata.id = q.metadata.id.wrapping_add(1);
                udp.send_to(&stray.to_vec().unwrap(), from).await.unwrap();
                let mut m = answer(&q);
                m.metadata.truncation = true;
                udp.send_to(&m.to_vec().unwrap(), from).await.unwrap();
            }
        });
        tokio::spawn(async move {
            loop {
                let (mut s, _) = tcp.accept().await.unwrap();
                let len = s.read_u16().await.unwrap() as usize;
                let mut buf = vec![0u8; len];
                s.read_exact(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf).unwrap();
                let mut m = answer(&q);
                let name = q.queries[0].name().clone();
                for i in 0..100u8 {
                    m.add_answer(Record::from_rdata(
                        name.clone(),
                        60,
                        RData::A(Ipv4Addr::new(192, 0, 2, i).into()),
                    ));
                }
                let out = m.to_vec().unwrap();
                s.write_all(&(out.len() as u16).to_be_bytes()).await.unwrap();
                s.write_all(&out).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn falls_back_to_tcp_and_to_the_next_upstream() {
        // The first upstream does not answer at all (a bound socket nobody reads).
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let good = truncating_upstream().await;
        let mut f = Forwarder::new(vec![silent.local_addr().unwrap(), good]);
        f.timeout = Duration::from_millis(300);
        let q = Query::query(Name::from_str("big.example.").unwrap(), RecordType::A);
        let m = f.forward(&q, false).await.unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 100);

        let none = Forwarder::new(vec![]);
        assert!(matches!(none.forward(&q, false).await, Err(Error::NoUpstream)));
    }
}
