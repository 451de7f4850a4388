//! The integration-test environment: real processes on loopback, cleaned up on drop. One module per
//! process it starts, re-exported here:
//!
//! * [`TestPki`] (`pki.rs`): a cluster PKI in a temporary directory (`navarch_pki::ClusterPki` for
//!   loopback); every certificate, kubeconfig and TLS configuration below comes from it.
//! * [`Etcd::start`] (`etcd.rs`) runs the `etcd` binary in a temporary data directory on free loopback
//!   ports, TLS with client certificates, with a new [`TestPki`]; [`Etcd::compact`] compacts its history
//!   (to force watch expiry), [`Etcd::client`] talks to it.
//! * [`ApiServer::start`] (`api_server.rs`) runs the built `api-server` binary against that etcd (TLS
//!   with the etcd's PKI) on free ports and waits for `/readyz`; [`ApiServer::kill9`] /
//!   [`ApiServer::restart`] (same ports) test crash safety; the log goes to a file whose tail is printed
//!   if startup fails.
//! * [`TestEnv::start`] (`env.rs`) bundles both; [`TestEnv::client`] connects a
//!   [`navarch_client::Client`] as the admin, [`TestEnv::rest`] makes raw REST requests ([`Rest`]),
//!   [`TestEnv::navctl`] runs navctl against it.
//! * [`Registry::start`] (`registry.rs`) runs Debian's `docker-registry` (plain HTTP, no auth) on a free
//!   loopback port; [`Registry::with_test_images`] also pushes the offline test images of
//!   `scripts/images.sh` (`library/busybox:{latest,1.36}`, `library/serve-hostname:{1.0,2.0}`), built
//!   once into `target/test-images` and shared by every test.
//! * [`Containerd::start`] (`containerd.rs`) and [`Kubelet::start`] (`kubelet.rs`) run a node;
//!   [`NodeEnv::start`] (`node_env.rs`) a whole one-node cluster (without controllers).
//! * [`Daemon::start`] (`daemon.rs`) runs any other daemon of the workspace against a [`TestEnv`], as
//!   its own identity ([`identity`]).
//! * [`registered_node`] and [`play_kubelet`] (`stand_ins.rs`) stand in for kubelets where controllers run
//!   without them.
//! * [`Kubectl::new`] (`kubectl.rs`) runs the installed kubectl against an api-server as the admin
//!   ([`Kubectl::as_user`]: as anyone), with a kubeconfig and cache of its own.
//!
//! Shared by them and the tests: [`eventually`] (`poll.rs`), the one way tests wait for something;
//! [`http_get`] (plain HTTP: admin ports, the registry) and [`Rest`] (TLS: the api-server) in
//! `http.rs`; and `process.rs`: [`free_port`], [`ChildProcess`] and the binaries, found in the cargo
//! target directory of the running test (`target/<profile>/`) or in `$NAVARCH_BIN_DIR` ([`binary`]
//! builds a missing one with cargo). Every child process is killed when its handle is dropped, so a
//! failing test leaves nothing running. `bench.rs` measures for the benchmark binaries.

#![forbid(unsafe_code)]

mod api_server;
mod bench;
mod containerd;
mod daemon;
mod env;
mod etcd;
mod http;
mod kubectl;
mod kubelet;
mod node_env;
mod pki;
mod poll;
mod process;
mod registry;
mod stand_ins;

pub use api_server::ApiServer;
pub use bench::{CpuSample, percentile, rss_bytes};
pub use containerd::Containerd;
pub use daemon::{Daemon, identity};
pub use env::TestEnv;
pub use etcd::Etcd;
pub use http::{HttpResponse, Rest, http_get, http_get_with_headers, http_request};
pub use kubectl::{Kubectl, KubectlOutput};
pub use kubelet::Kubelet;
pub use node_env::{NodeEnv, ready_node};
pub use pki::TestPki;
pub use poll::{BLOCKING_POLL_INTERVAL, Outcome, POLL_INTERVAL, describe, eventually, eventually_blocking};
pub use process::{ChildProcess, bin_dir, binary, free_port, workspace_root};
pub use registry::Registry;
pub use stand_ins::{play_kubelet, registered_node};
