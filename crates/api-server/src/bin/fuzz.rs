//! `make fuzz`: time-bounded mutation fuzzing of what reads untrusted credentials — bearer tokens
//! (every parser: `authn::parse_untrusted`, and the whole ServiceAccount authenticator with a real key)
//! and client certificates (`navarch_pki::subject_names`, run on every verified certificate). Seeds are
//! valid tokens and certificates made here; each round mutates one (bit flips, byte changes, insertions,
//! deletions, truncation, splices, base64url-segment swaps). A panic is a failure: the input is printed
//! (hex) and the process exits 1. Stable Rust only (no sanitizers): it finds panics and hangs.
//!
//! `fuzz [--seconds N] [--seed S]` — N seconds per target (default 600).

#![forbid(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use navarch_api_server::authn::{
    self, BoundObjects, LiveObject, LivePod, ServiceAccountRef, SigningKey, TokenAuthenticator, TokenConfig,
    TokenIssuer, TokenRequest, VerifyingKeys,
};
use navarch_pki::authority::{Authority, CA_VALIDITY, Leaf};

/// A deterministic xorshift generator: a failing run is repeated with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

const INTERESTING: &[u8] = &[0, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff, b'.', b'=', b'-', b'_', b'{', b'"', b'%'];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                v.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                v.remove(i);
            }
            4 => v.truncate(rng.below(len + 1)),
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let (a, b) = (rng.below(len + 1), rng.below(other.len() + 1));
                v.truncate(a);
                v.extend_from_slice(&other[b..]);
            }
            6 => {
                // Swap two dot-separated segments (a JWS's header, payload, signature).
                let mut parts: Vec<Vec<u8>> = v.split(|b| *b == b'.').map(<[u8]>::to_vec).collect();
                if parts.len() > 1 {
                    let (i, j) = (rng.below(parts.len()), rng.below(parts.len()));
                    parts.swap(i, j);
                    v = parts.join(&b'.');
                }
            }
            _ => {
                let i = rng.below(len + 1);
                let n = rng.below(64);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(i..i, bytes);
            }
        }
    }
    v
}

/// Every ServiceAccount and pod exists (so binding checks run to the end).
struct Everything;

impl BoundObjects for Everything {
    fn service_account(&self, _: &str, _: &str) -> Option<LiveObject> {
        Some(LiveObject { uid: "sa-uid".into(), deletion_timestamp: String::new() })
    }
    fn pod(&self, _: &str, _: &str) -> Option<LivePod> {
        None
    }
    fn secret(&self, _: &str, _: &str) -> Option<LiveObject> {
        None
    }
    fn node(&self, _: &str) -> Option<LiveObject> {
        None
    }
}

fn run(
    name: &str,
    budget: Duration,
    rng: &mut Rng,
    seeds: &[Vec<u8>],
    target: impl Fn(&[u8]),
) -> Result<u64, String> {
    let start = Instant::now();
    let mut rounds = 0u64;
    while start.elapsed() < budget {
        for _ in 0..256 {
            let input = mutate(rng, seeds);
            if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                return Err(format!("{name}: panic on input {hex}"));
            }
            rounds += 1;
        }
    }
    println!("{name}: {rounds} inputs in {:.0} s, no panic", start.elapsed().as_secs_f64());
    Ok(rounds)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse::<u64>().ok())
    };
    let budget = Duration::from_secs(flag("--seconds").unwrap_or(600));
    let seed = flag("--seed").unwrap_or(0x9e37_79b9_7f4a_7c15);
    println!("fuzzing each target for {budget:?}, seed {seed}");
    let mut rng = Rng(seed.max(1));
    // Quiet the default hook: a caught panic is reported once, by `run`.
    std::panic::set_hook(Box::new(|_| {}));

    let ca = match Authority::generate("fuzz-ca", CA_VALIDITY) {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("making a CA: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cert_seeds = vec![ca.cert_der().to_vec()];
    let mut key_pem = Vec::new();
    for (user, groups) in
        [("system:node:node-1", vec!["system:nodes"]), ("alice", vec!["a", "b"]), ("x", vec![])]
    {
        let Ok(issued) = ca.issue(&Leaf::client(user, &groups)) else { return ExitCode::FAILURE };
        if let Ok(mut certs) = navarch_pki::files::certificates_from_pem(issued.cert_pem.as_bytes()) {
            cert_seeds.push(certs.remove(0).to_vec());
        }
        key_pem = issued.key_pem.into_bytes();
    }

    let Ok(key) = SigningKey::from_pem(&key_pem) else {
        eprintln!("loading the signing key");
        return ExitCode::FAILURE;
    };
    let verifying = VerifyingKeys::new([key.verifying_key().clone()]);
    let config = TokenConfig::new(vec!["https://kubernetes.default.svc.cluster.local".into()]);
    let Ok(issuer) = TokenIssuer::new(key, &config) else { return ExitCode::FAILURE };
    let mut token_seeds: Vec<Vec<u8>> = vec![b"abcdef.0123456789abcdef".to_vec()];
    for (ns, name) in [("default", "default"), ("kube-system", "builder")] {
        let request = TokenRequest {
            service_account: ServiceAccountRef {
                namespace: ns.into(),
                name: name.into(),
                uid: "sa-uid".into(),
            },
            bound_object: None,
            audiences: Vec::new(),
            expiration_seconds: Some(3600),
        };
        if let Ok(t) = issuer.issue(&request, SystemTime::now()) {
            token_seeds.push(t.token.into_bytes());
        }
    }
    let authenticator = TokenAuthenticator::new(&config, verifying);
    let audiences = config.api_audiences().to_vec();

    let results = [
        run("token parsers", budget, &mut rng, &token_seeds, |input| {
            let _ = authn::parse_untrusted(input);
        }),
        run("ServiceAccount authenticator", budget, &mut rng, &token_seeds, |input| {
            if let Ok(token) = std::str::from_utf8(input) {
                let _ = authenticator.authenticate(token, &audiences, SystemTime::now(), &Everything);
            }
        }),
        run("client certificate subject", budget, &mut rng, &cert_seeds, |input| {
            let _ = navarch_pki::subject_names(input);
        }),
    ];
    let mut failed = false;
    for r in results {
        if let Err(e) = r {
            eprintln!("{e}");
            failed = true;
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
