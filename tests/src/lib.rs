//! The integration-test environment: real processes on loopback, cleaned up on drop.
//!
//! * [`Etcd::start`] runs the `etcd` binary in a temporary data directory on free loopback ports;
//!   [`Etcd::compact`] compacts its history (to force watch expiry), [`Etcd::client`] talks to it.
//! * [`ApiServer::start`] runs the built `api-server` binary against that etcd on free ports and waits for
//!   `/readyz`; [`ApiServer::kill9`] / [`ApiServer::restart`] (same ports) test crash safety; the log
//!   goes to a file whose tail is printed if startup fails.
//! * [`TestEnv::start`] bundles both; [`TestEnv::client`] connects a [`navarch_client::Client`].
//! * [`Registry::start`] runs Debian's `docker-registry` (plain HTTP, no auth) on a free loopback port;
//!   [`Registry::with_test_images`] also pushes the offline test images of `scripts/images.sh`
//!   (`library/busybox:{latest,1.36}`, `library/serve-hostname:{1.0,2.0}`), built once into
//!   `target/test-images` and shared by every test.
//!
//! Binaries are found in the cargo target directory of the running test (`target/<profile>/`), or in
//! `$NAVARCH_BIN_DIR`; [`binary`] builds a missing one with cargo. Every child process is killed when its
//! handle is dropped, so a failing test leaves nothing running.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a component may take to become ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
/// The `p` quantile (0..1) of sorted durations (zero when empty).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Resident memory of a process in bytes (VmRSS), if it is alive.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port").local_addr().unwrap().port()
}

/// The directory holding the workspace's binaries for this test run.
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("NAVARCH_BIN_DIR") {
        return PathBuf::from(d);
    }
    // Tests run from target/<profile>/deps/<test>-<hash>, binaries (bench-api) from target/<profile>.
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("executable has a directory");
    if dir.ends_with("deps") {
        dir.parent().expect("target/<profile>").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// The path of a workspace binary, building it with cargo if it is missing.
pub fn binary(package: &str, bin: &str) -> PathBuf {
    let path = bin_dir().join(bin);
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", package, "--bin", bin]);
        if bin_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build");
        assert!(status.success(), "building {bin} failed");
    }
    assert!(path.exists(), "{} does not exist", path.display());
    path
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn kill_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A real etcd on loopback.
pub struct Etcd {
    child: Option<Child>,
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
}

impl Etcd {
    pub async fn start() -> Etcd {
        let dir = tempfile::Builder::new().prefix("navarch-etcd-").tempdir().expect("temp dir");
        let mut etcd = Etcd { child: None, dir, client_port: free_port(), peer_port: free_port() };
        etcd.spawn().await;
        etcd
    }

    async fn spawn(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("etcd log file");
        let child = Command::new("etcd")
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting etcd (apt install etcd-server)");
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(mut c) = etcd_client::Client::connect([self.endpoint()], None).await
                && c.status().await.is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("etcd exited with {status}:\n{}", tail(&self.dir.path().join("etcd.log"), 30));
            }
            assert!(
                Instant::now() < deadline,
                "etcd not ready:\n{}",
                tail(&self.dir.path().join("etcd.log"), 30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint()], None).await.expect("connecting to test etcd")
    }

    /// Compacts etcd's history up to its current revision; returns that revision.
    pub async fn compact(&self) -> i64 {
        let mut c = self.client().await;
        let rev = c
            .get("\0", Some(etcd_client::GetOptions::new().with_count_only()))
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        c.compact(rev, Some(etcd_client::CompactionOptions::new().with_physical()))
            .await
            .expect("compaction");
        rev
    }

    /// SIGKILLs etcd (data stays).
    pub fn kill9(&mut self) {
        kill_child(&mut self.child);
    }

    /// Starts etcd again on the same ports with the same data.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// The real api-server binary.
pub struct ApiServer {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    http_port: u16,
    etcd_endpoint: String,
    extra_args: Vec<String>,
}

impl ApiServer {
    pub async fn start(etcd: &Etcd) -> ApiServer {
        ApiServer::start_with(etcd, &[]).await
    }

    /// Starts with extra flags (e.g. `--bookmark-interval=1s`).
    pub async fn start_with(etcd: &Etcd, args: &[&str]) -> ApiServer {
        let dir = tempfile::Builder::new().prefix("navarch-apiserver-").tempdir().expect("temp dir");
        let mut s = ApiServer {
            child: None,
            dir,
            port: free_port(),
            http_port: free_port(),
            etcd_endpoint: etcd.endpoint(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn().await;
        s
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("api-server.log")
    }

    /// The api-server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let bin = binary("api-server", "api-server");
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file");
        let child = Command::new(bin)
            .arg(format!("--listen=127.0.0.1:{}", self.port))
            .arg(format!("--http-listen=127.0.0.1:{}", self.http_port))
            .arg(format!("--etcd-endpoints={}", self.etcd_endpoint))
            .args(&self.extra_args)
            .env("RUST_LOG", std::env::var("NAVARCH_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .env_remove("NAVARCH_APISERVER_CONFIG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting api-server");
        self.child = Some(child);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if http_get(self.http_addr(), "/readyz").is_some_and(|(code, _)| code == 200) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("api-server exited with {status}:\n{}", tail(&self.log_path(), 40));
            }
            assert!(Instant::now() < deadline, "api-server not ready:\n{}", tail(&self.log_path(), 40));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn http_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// The pid of the running process.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILLs the api-server.
    pub fn kill9(&mut self) {
        kill_child(&mut self.child);
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        c.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Starts it again on the same ports (after [`ApiServer::kill9`], or kills it first).
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A Docker distribution registry (Debian's `docker-registry` binary) on loopback: plain HTTP, no auth,
/// filesystem storage in a temporary directory, deletes enabled. Its log (access log included) goes to a
/// file whose tail is printed if startup or pushing fails.
pub struct Registry {
    child: Option<Child>,
    dir: TempDir,
    port: u16,
    tls: bool,
}

/// Serializes the test-image build within this process (`flock` serializes it across processes).
static IMAGES_LOCK: Mutex<bool> = Mutex::new(false);

impl Registry {
    /// Starts an empty registry and waits until `GET /v2/` answers 200.
    pub fn start() -> Registry {
        Registry::start_with(false)
    }

    /// Starts an empty registry serving HTTPS with a certificate for 127.0.0.1 signed by a CA of its
    /// own ([`Registry::ca_file`]), made with openssl.
    pub fn start_tls() -> Registry {
        Registry::start_with(true)
    }

    /// The CA certificate (PEM) a TLS registry's certificate is signed by.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The registry's base URL (`http://` or `https://`).
    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr())
    }

    fn make_certificates(dir: &Path) {
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir).output().expect("running openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=navarch test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext.cnf");
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ]);
    }

    fn start_with(tls: bool) -> Registry {
        let dir = tempfile::Builder::new().prefix("navarch-registry-").tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        let tls_config = if tls {
            Registry::make_certificates(dir.path());
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                dir.path().join("server.pem").display(),
                dir.path().join("server.key").display()
            )
        } else {
            String::new()
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\n\
                 log:\n  level: warn\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{tls_config}",
                storage.display()
            ),
        )
        .expect("writing the registry config");
        let mut r = Registry { child: None, dir, port, tls };
        let log = std::fs::File::create(r.log_path()).expect("registry log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry (apt install docker-registry)");
        r.child = Some(child);
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            let up = if tls {
                TcpStream::connect(r.addr()).is_ok()
            } else {
                http_get(r.addr(), "/v2/").is_some_and(|(code, _)| code == 200)
            };
            if up {
                return r;
            }
            if let Some(Ok(Some(status))) = r.child.as_mut().map(|c| c.try_wait()) {
                panic!("docker-registry exited with {status}:\n{}", tail(&r.log_path(), 30));
            }
            assert!(Instant::now() < deadline, "docker-registry not ready:\n{}", tail(&r.log_path(), 30));
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a registry holding the test images of `scripts/images.sh`: `library/busybox:latest`,
    /// `library/busybox:1.36`, `library/serve-hostname:1.0` and `library/serve-hostname:2.0`. The OCI
    /// layouts are built once into [`Registry::test_images_dir`] (the script skips an up-to-date build).
    pub fn with_test_images() -> Registry {
        Registry::with_test_images_over(false)
    }

    /// [`Registry::with_test_images`] over HTTPS ([`Registry::start_tls`]).
    pub fn tls_with_test_images() -> Registry {
        Registry::with_test_images_over(true)
    }

    fn with_test_images_over(tls: bool) -> Registry {
        let images = Registry::test_images_dir();
        Registry::build_test_images(&images);
        let r = Registry::start_with(tls);
        let out = Command::new(workspace_root().join("scripts/images.sh"))
            .arg("push")
            .arg(&images)
            .arg(r.addr().to_string())
            .stdin(Stdio::null())
            .output()
            .expect("running scripts/images.sh push");
        assert!(
            out.status.success(),
            "scripts/images.sh push failed ({}):\n{}{}\n--- registry log\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&r.log_path(), 30)
        );
        r
    }

    /// Where the test images' OCI layouts are cached: `<workspace>/target/test-images`.
    pub fn test_images_dir() -> PathBuf {
        workspace_root().join("target").join("test-images")
    }

    /// Runs `scripts/images.sh build` once per process, under `flock` on `<dir>.lock` so that test
    /// binaries running at the same time do not build together.
    fn build_test_images(dir: &Path) {
        let mut built = IMAGES_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        if *built {
            return;
        }
        std::fs::create_dir_all(dir.parent().expect("test-images has a parent")).expect("target dir");
        let out = Command::new("flock")
            .arg(dir.with_extension("lock"))
            .arg(workspace_root().join("scripts/images.sh"))
            .arg("build")
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .expect("running flock scripts/images.sh build (apt install util-linux)");
        assert!(
            out.status.success(),
            "scripts/images.sh build failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        *built = true;
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where it listens (plain HTTP), e.g. for `127.0.0.1:<port>/library/busybox:1.36`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

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
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
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
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((code, body))
}

/// etcd + api-server.
pub struct TestEnv {
    pub api_server: ApiServer,
    pub etcd: Etcd,
}

impl TestEnv {
    pub async fn start() -> TestEnv {
        TestEnv::start_with(&[]).await
    }

    /// Starts with extra api-server flags.
    pub async fn start_with(args: &[&str]) -> TestEnv {
        let etcd = Etcd::start().await;
        let api_server = ApiServer::start_with(&etcd, args).await;
        TestEnv { api_server, etcd }
    }

    pub fn api_server_addr(&self) -> SocketAddr {
        self.api_server.addr()
    }

    pub async fn client(&self) -> navarch_client::Client {
        navarch_client::Client::connect(&self.api_server.addr().to_string())
            .await
            .expect("connecting to the api-server")
    }
}

/// Runs a command, ignoring failures (cleanup paths).
fn quietly(cmd: &str, args: &[&str]) {
    let _ = Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// A real containerd with its own root, state and socket in a temp dir. On drop every task in it is
/// killed and deleted, its containers removed, then containerd stopped and its mounts undone.
pub struct Containerd {
    child: Option<Child>,
    dir: TempDir,
    pub namespace: String,
}

impl Containerd {
    pub async fn start() -> Containerd {
        let dir = tempfile::Builder::new().prefix("navarch-containerd-").tempdir().expect("temp dir");
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("containerd.sock").display()
        );
        std::fs::write(d.join("config.toml"), config).expect("writing containerd config");
        let log = std::fs::File::create(d.join("containerd.log")).expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting containerd (apt install containerd)");
        let c = Containerd { child: Some(child), dir, namespace: "navarch".into() };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !c.socket().exists() {
            assert!(Instant::now() < deadline, "containerd did not start:\n{}", tail(&c.log_path(), 30));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        c
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("containerd.log")
    }

    /// `ctr` against this containerd, in its namespace; stdout.
    pub fn ctr(&self, args: &[&str]) -> String {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(self.socket())
            .arg("-n")
            .arg(&self.namespace)
            .args(args)
            .output()
            .expect("running ctr");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Container ids in the namespace, sorted.
    pub fn container_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> =
            self.ctr(&["containers", "ls", "-q"]).lines().map(str::to_string).collect();
        ids.sort();
        ids
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.ctr(&["tasks", "ls", "-q"]).lines() {
            self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        }
        std::thread::sleep(Duration::from_millis(300));
        for id in self.ctr(&["tasks", "ls", "-q"]).lines() {
            self.ctr(&["tasks", "delete", "-f", id]);
        }
        for id in self.container_ids() {
            self.ctr(&["containers", "rm", &id]);
        }
        kill_child(&mut self.child);
        // Whatever is still mounted under the temp dir (rootfs of killed tasks).
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.dir.path().display().to_string();
            let mut points: Vec<&str> =
                mounts.lines().filter_map(|l| l.split(' ').nth(1)).filter(|p| p.starts_with(&root)).collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                quietly("umount", &["-l", p]);
            }
        }
    }
}

/// The kubelet binary on this machine, against a [`Containerd`] and an api-server, with its own
/// bridge, pod CIDR and directories. On drop it is killed and its pinned network namespaces, bridge,
/// CNI leases, routes and nftables table are removed (pods should be deleted first by the test).
pub struct Kubelet {
    child: Option<Child>,
    dir: TempDir,
    args: Vec<String>,
    pub node_name: String,
    pub bridge: String,
    pub pod_cidr: String,
    /// Where its /healthz and /metrics answer.
    pub http_addr: SocketAddr,
}

/// Distinct pod subnets for concurrent tests in one process.
static LIVE_KUBELETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static NEXT_SUBNET: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Kubelet {
    pub async fn start(api: &ApiServer, containerd: &Containerd, registry: &Registry) -> Kubelet {
        Kubelet::start_with(api, containerd, registry, &[]).await
    }

    /// A kubelet using `registry` as the docker.io mirror, with extra flags.
    pub async fn start_with(
        api: &ApiServer,
        containerd: &Containerd,
        registry: &Registry,
        extra: &[String],
    ) -> Kubelet {
        let dir = tempfile::Builder::new().prefix("navarch-kubelet-").tempdir().expect("temp dir");
        let n = (std::process::id() % 200) + NEXT_SUBNET.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let node_name = format!("node-{}", free_port());
        let bridge = format!("nvt{}", n % 10000);
        let pod_cidr = format!("10.244.{}.0/24", 20 + n % 230);
        let d = dir.path();
        let http_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let args: Vec<String> = vec![
            format!("--server=http://{}", api.addr()),
            format!("--node-name={node_name}"),
            format!("--node-ip=127.0.0.1"),
            format!("--containerd-socket={}", containerd.socket().display()),
            format!("--root-dir={}", d.join("root").display()),
            format!("--run-dir={}", d.join("run").display()),
            format!("--log-dir={}", d.join("logs").display()),
            format!("--pod-cidr={pod_cidr}"),
            format!("--bridge={bridge}"),
            format!("--registry-mirror=docker.io={}", registry.url()),
            format!("--http-listen={http_addr}"),
            format!("--grpc-listen=127.0.0.1:{}", free_port()),
            "--heartbeat=2s".into(),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .collect();
        let mut k = Kubelet { child: None, dir, args, node_name, bridge, pod_cidr, http_addr };
        LIVE_KUBELETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        k.spawn();
        k
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("kubelet.log"))
            .expect("kubelet log");
        let child = Command::new(binary("kubelet", "kubelet"))
            .args(&self.args)
            .env("RUST_LOG", "info,navarch_kubelet=debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting the kubelet");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        tail(&self.dir.path().join("kubelet.log"), 60)
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn kill9(&mut self) {
        kill_child(&mut self.child);
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Pinned network namespaces the kubelet still holds.
    pub fn netns_count(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("run/netns")).map(|d| d.count()).unwrap_or(0)
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        kill_child(&mut self.child);
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("run/netns")) {
            for e in entries.flatten() {
                quietly("umount", &["-l", &e.path().display().to_string()]);
            }
        }
        quietly("ip", &["link", "del", &self.bridge]);
        // The unreachable routes and the egress guard are shared by the kubelets of this process:
        // the last one out removes them.
        if LIVE_KUBELETS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            quietly("nft", &["delete", "table", "inet", "navarch-kubelet"]);
            quietly("ip", &["route", "del", "unreachable", "10.244.0.0/16"]);
            quietly("ip", &["route", "del", "unreachable", "10.96.0.0/12"]);
        }
    }
}

/// A daemon of this workspace run as a child process against a [`TestEnv`]; killed (SIGKILL,
/// like a crash) on drop or by [`Daemon::kill9`].
pub struct Daemon {
    child: Child,
    /// Its `--http-listen` address (/healthz, /metrics).
    pub http: SocketAddr,
}

impl Daemon {
    /// Starts binary `bin` of `package` with `--server` and `--http-listen` (a free port) set, then
    /// `args`. Logs at `$NAVARCH_TEST_LOG` (default info) to the test's stderr.
    pub fn start(env: &TestEnv, package: &str, bin: &str, args: &[&str]) -> Daemon {
        let port = free_port();
        let child = Command::new(binary(package, bin))
            .arg(format!("--server={}", env.api_server_addr()))
            .arg(format!("--http-listen=127.0.0.1:{port}"))
            .args(args)
            .env("RUST_LOG", std::env::var("NAVARCH_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
        Daemon { child, http: SocketAddr::from(([127, 0, 0, 1], port)) }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
