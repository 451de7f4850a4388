"""The Python client's streams against navarch: `kubernetes.stream.stream` exec (WebSocket,
v5/v4.channel.k8s.io), with output, stdin and the exit code from the error channel; and
`kubernetes.stream.portforward` (WebSocket, v4.channel.k8s.io with the ports in the query)."""

import os
import time
import uuid

import pytest
from kubernetes import client, config
from kubernetes.stream import portforward, stream

IMAGE = os.environ.get("NAVARCH_TEST_IMAGE", "busybox:1.36")
NS = "default"


@pytest.fixture(scope="module")
def pod():
    cfg = client.Configuration()
    # The api-server's address, its CA and the admin's client certificate (TLS only).
    config.load_kube_config(config_file=os.environ["NAVARCH_KUBECONFIG"], client_configuration=cfg)
    core = client.CoreV1Api(client.ApiClient(cfg))
    name = f"py-stream-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(NS, {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": IMAGE, "command": [
                "sh", "-c", "mkdir -p /www && echo hello from the pod > /www/index.html && exec httpd -f -p 80 -h /www"]}],
        },
    })
    deadline = time.time() + 90
    while core.read_namespaced_pod(name, NS).status.phase != "Running":
        assert time.time() < deadline, "the pod did not start"
        time.sleep(0.5)
    yield core, name
    core.delete_namespaced_pod(name, NS, grace_period_seconds=0)


def test_exec_output(pod):
    core, name = pod
    out = stream(core.connect_get_namespaced_pod_exec, name, NS,
                 command=["sh", "-c", "echo hello; echo oops >&2"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert "hello" in out and "oops" in out, out


def test_exec_stdin_separate_streams_and_exit_code(pod):
    core, name = pod
    resp = stream(core.connect_get_namespaced_pod_exec, name, NS,
                  command=["sh", "-c", "read x; echo got $x; echo bad >&2; exit 4"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    resp.write_stdin("ping\n")
    out, err = "", ""
    deadline = time.time() + 20
    while resp.is_open() and time.time() < deadline:
        resp.update(timeout=1)
        # read_* block until their channel has data: only after a peek says it has.
        if resp.peek_stdout():
            out += resp.read_stdout()
        if resp.peek_stderr():
            err += resp.read_stderr()
    assert not resp.is_open(), "the session ends when the command exits"
    assert out == "got ping\n", out
    assert err == "bad\n", err
    assert resp.returncode == 4


def test_portforward(pod):
    core, name = pod
    for _ in range(3):
        pf = portforward(core.connect_get_namespaced_pod_portforward, name, NS, ports="80")
        sock = pf.socket(80)
        sock.setblocking(True)
        sock.settimeout(20)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
        reply = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.") and b"hello from the pod" in reply, reply
        assert pf.error(80) is None, pf.error(80)
