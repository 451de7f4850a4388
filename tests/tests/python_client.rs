//! The official Kubernetes Python client (PyPI's `kubernetes`, in a venv made by
//! scripts/python-env.sh) against a real one-node navarch: etcd, api-server, scheduler,
//! controller-manager, containerd + kubelet with the registry's test images. The tests themselves
//! are pytest files in tests/python; this starts the cluster and runs them. Needs root and PyPI
//! (the first time).

use std::time::Duration;

use navarch_api::v1::Node;
use navarch_client::Api;
use navarch_tests::{Containerd, Daemon, Kubelet, Registry, TestEnv, eventually, workspace_root};

#[tokio::test]
async fn pytest_suite_with_the_python_client() {
    let root = workspace_root();
    let venv = std::process::Command::new(root.join("scripts/python-env.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running scripts/python-env.sh");
    assert!(venv.status.success(), "scripts/python-env.sh failed");
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_string();

    let env = TestEnv::start().await;
    let registry = Registry::with_test_images();
    let ctd = Containerd::start().await;
    let kubelet = Kubelet::start(&env.api_server, &ctd, &registry).await;
    let _scheduler = Daemon::start(&env, "scheduler", "scheduler", &[]);
    let _cm = Daemon::start(&env, "controller-manager", "controller-manager", &[]);
    let c = env.client().await;
    let nodes: Api<Node> = c.api("");
    eventually(kubelet.with_log("node Ready"), Duration::from_secs(60), async || {
        let n = nodes.get_opt(&kubelet.node_name).await.ok()??;
        n.status?.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True").then_some(())
    })
    .await;

    let out = tokio::process::Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no"])
        .arg(root.join("tests/python"))
        .env("NAVARCH_KUBECONFIG", env.admin_kubeconfig())
        .current_dir(&root)
        .kill_on_drop(true)
        .output();
    let out =
        tokio::time::timeout(Duration::from_secs(600), out).await.expect("pytest hung").expect("pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pytest failed:\n{stdout}\n{}\n--- api-server log (tail)\n{}",
        String::from_utf8_lossy(&out.stderr),
        env.api_server
            .log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!("{stdout}");
}
