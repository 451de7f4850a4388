//! The request handler behind hickory's UDP and TCP server: cluster names answered from the stores
//! ([`crate::records`]), authoritatively; everything else forwarded ([`crate::forward`]). Until the
//! stores hold their first list, cluster names get SERVFAIL (an empty store would otherwise answer
//! NXDOMAIN, which resolvers cache).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{DNSClass, Name, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tracing::Instrument;

use crate::forward::Forwarder;
use crate::metrics::{DnsMetrics, RcodeLabel, RequestLabels, ZoneLabel, rcode_name};
use crate::records::{Outcome, Stores, Zone, answer};

/// Answers DNS requests.
pub struct Handler {
    pub stores: Stores,
    pub zone: Zone,
    /// The SOA serial: the Unix time of the last change seen in the stores.
    pub serial: Arc<AtomicU32>,
    pub forwarder: Forwarder,
    pub metrics: Arc<DnsMetrics>,
}

/// A response's sections and flags.
struct Reply {
    rcode: ResponseCode,
    authoritative: bool,
    /// `cluster` or `forward`, for the metrics.
    zone: &'static str,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

impl Reply {
    fn error(rcode: ResponseCode, zone: &'static str) -> Reply {
        Reply {
            rcode,
            authoritative: false,
            zone,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

impl Handler {
    fn is_cluster_name(&self, name: &Name) -> bool {
        self.zone.origin.zone_of(name)
    }

    async fn reply(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query {
            return Reply::error(ResponseCode::NotImp, "cluster");
        }
        let [query] = request.queries.queries() else {
            return Reply::error(ResponseCode::FormErr, "cluster");
        };
        let query = query.original();
        let (qname, qtype) = (query.name(), query.query_type());
        if !self.is_cluster_name(qname) {
            if query.query_class() != DNSClass::IN {
                return self.forward(query, request).await;
            }
        } else {
            if query.query_class() != DNSClass::IN || matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
                return Reply::error(ResponseCode::Refused, "cluster");
            }
            if !self.stores.is_ready() {
                tracing::debug!("stores not synced yet: SERVFAIL");
                return Reply::error(ResponseCode::ServFail, "cluster");
            }
        }
        let serial = self.serial.load(Ordering::Relaxed);
        match answer(&self.stores, &self.zone, serial, qname, qtype) {
            Outcome::Forward => self.forward(query, request).await,
            Outcome::Answer(a) => {
                let mut reply = Reply {
                    rcode: a.rcode,
                    authoritative: true,
                    zone: "cluster",
                    answers: a.answers,
                    authorities: a.authorities,
                    additionals: a.additionals,
                };
                if let Some(target) = a.chase {
                    // An ExternalName: resolve its target as a recursive server would.
                    let q = Query::query(target.clone(), qtype);
                    match self.forwarder.forward(&q, request.metadata.checking_disabled).await {
                        Ok(m) => {
                            reply.answers.extend(m.answers);
                            if m.metadata.response_code == ResponseCode::NXDomain {
                                reply.rcode = ResponseCode::NXDomain;
                            }
                        }
                        Err(e) => tracing::debug!(%target, error = %e, "resolving the CNAME target failed"),
                    }
                }
                reply
            }
        }
    }

    async fn forward(&self, query: &Query, request: &Request) -> Reply {
        match self.forwarder.forward(query, request.metadata.checking_disabled).await {
            Ok(m) => Reply {
                rcode: m.metadata.response_code,
                authoritative: false,
                zone: "forward",
                answers: m.answers,
                authorities: m.authorities,
                additionals: m.additionals,
            },
            Err(e) => {
                tracing::debug!(error = %e, "no upstream answered");
                self.metrics.forward_failures.inc();
                Reply::error(ResponseCode::ServFail, "forward")
            }
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = Instant::now();
        let proto = if request.protocol().is_datagram() { "udp" } else { "tcp" };
        let (name, qtype) = match request.queries.queries() {
            [q] => (q.name().to_string(), q.query_type().to_string()),
            _ => (String::new(), String::new()),
        };
        let span = tracing::debug_span!("query", %name, %qtype, proto, src = %request.src());
        let mut edns = None;
        let reply = match request.edns.as_ref() {
            Some(req) if req.version() > 0 => Reply::error(ResponseCode::BADVERS, "cluster"),
            _ => self.reply(request).instrument(span.clone()).await,
        };
        if let Some(req) = request.edns.as_ref() {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512));
            e.set_version(0);
            edns = Some(e);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = reply.authoritative;
        metadata.recursion_available = true;
        metadata.response_code = reply.rcode;
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            std::iter::empty(),
            reply.additionals.iter(),
        );
        let info = match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                span.in_scope(|| tracing::debug!(error = %e, "sending the response failed"));
                ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
            }
        };
        let m = &self.metrics;
        m.requests.get_or_create(&RequestLabels { proto, zone: reply.zone }).inc();
        m.responses.get_or_create(&RcodeLabel { rcode: rcode_name(reply.rcode) }).inc();
        m.duration.get_or_create(&ZoneLabel { zone: reply.zone }).observe(started.elapsed().as_secs_f64());
        span.in_scope(|| {
            tracing::debug!(rcode = %rcode_name(reply.rcode), answers = reply.answers.len(), took = ?started.elapsed(), "answered")
        });
        info
    }
}
