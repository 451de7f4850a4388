//! [`Registry`]: a Docker distribution registry (Debian's `docker-registry`) on a free loopback port,
//! over plain HTTP or HTTPS with a CA of its own; SIGKILLed on drop. [`Registry::with_test_images`]
//! also pushes the offline test images of `scripts/images.sh` (`library/busybox:{latest,1.36}`,
//! `library/serve-hostname:{1.0,2.0}`), built once into `target/test-images` and shared by every test.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use tempfile::TempDir;

use crate::http::http_get;
use crate::poll::{describe, eventually_blocking};
use crate::process::{ChildProcess, STARTUP_TIMEOUT, free_port, log_to, tail, workspace_root};

/// A Docker distribution registry (Debian's `docker-registry` binary) on loopback: plain HTTP, no auth,
/// filesystem storage in a temporary directory, deletes enabled. Its log (access log included) goes to a
/// file whose tail is printed if startup or pushing fails.
pub struct Registry {
    process: ChildProcess,
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
        let mut r = Registry { process: ChildProcess::default(), dir, port, tls };
        let log = r.log_path();
        let child =
            log_to(Command::new("docker-registry").arg("serve").arg(&config).stdin(Stdio::null()), &log)
                .spawn()
                .expect("starting docker-registry (apt install docker-registry)");
        r.process.set(child);
        let addr = r.addr();
        eventually_blocking(
            describe(|| format!("docker-registry to answer:\n{}", tail(&log, 30))),
            STARTUP_TIMEOUT,
            || {
                let up = if tls {
                    TcpStream::connect(addr).is_ok()
                } else {
                    http_get(addr, "/v2/").is_some_and(|(code, _)| code == 200)
                };
                if !up {
                    r.process.assert_running("docker-registry", &log, 30);
                }
                up
            },
        );
        r
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
