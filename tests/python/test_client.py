"""The official Kubernetes Python client against navarch (a real api-server, scheduler,
controller-manager and kubelet started by tests/tests/python_client.rs, which sets NAVARCH_KUBECONFIG)."""

import json
import os
import time
import uuid

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

IMAGE = os.environ.get("NAVARCH_TEST_IMAGE", "busybox:1.36")
NS = "default"


@pytest.fixture(scope="session")
def api():
    cfg = client.Configuration()
    # The api-server's address, its CA and the admin's client certificate (TLS only).
    config.load_kube_config(config_file=os.environ["NAVARCH_KUBECONFIG"], client_configuration=cfg)
    return client.ApiClient(cfg)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_list_nodes(api):
    nodes = client.CoreV1Api(api).list_node()
    assert nodes.items, "at least one node"
    for n in nodes.items:
        ready = [c for c in n.status.conditions if c.type == "Ready"]
        assert ready and ready[0].status == "True", n.status.conditions
        assert n.status.node_info.kubelet_version


def test_deployment_from_dict_watch_patch_logs_delete(api):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    name = unique("py-web")
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "main",
                            "image": IMAGE,
                            "command": ["sh", "-c", "echo hello from python; sleep 3600"],
                        }
                    ],
                },
            },
        },
    }
    created = apps.create_namespaced_deployment(NS, body)
    assert created.metadata.uid and created.metadata.resource_version

    running = None
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, NS, label_selector=f"app={name}", timeout_seconds=120):
        pod = event["object"]
        if pod.status is not None and pod.status.phase == "Running":
            running = pod
            w.stop()
    assert running is not None, "a pod of the Deployment became Running"
    assert running.status.container_statuses[0].ready in (True, False)
    assert running.status.container_statuses[0].restart_count == 0

    # A dict is sent as a strategic merge patch, a list as a JSON patch.
    apps.patch_namespaced_deployment(name, NS, {"metadata": {"labels": {"patched": "strategic"}}})
    apps.patch_namespaced_deployment(name, NS, [{"op": "replace", "path": "/spec/replicas", "value": 2}])
    d = apps.read_namespaced_deployment(name, NS)
    assert d.metadata.labels["patched"] == "strategic"
    assert d.spec.replicas == 2
    assert d.spec.template.spec.containers[0].image == IMAGE

    deadline = time.time() + 60
    while "hello from python" not in core.read_namespaced_pod_log(running.metadata.name, NS):
        assert time.time() < deadline, "the container's output in its log"
        time.sleep(1)

    apps.delete_namespaced_deployment(name, NS)
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment(name, NS)
    assert e.value.status == 404


def test_errors_are_status_objects(api):
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as e:
        core.read_namespaced_config_map("does-not-exist", NS)
    assert e.value.status == 404
    with pytest.raises(ApiException) as e:
        client.AppsV1Api(api).create_namespaced_deployment(
            NS,
            {
                "metadata": {"name": unique("bad")},
                "spec": {
                    "replicas": -1,
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": IMAGE}]}},
                },
            },
        )
    assert e.value.status == 422
    assert "spec.replicas" in e.value.body


def test_typed_models_read_every_kind(api):
    """Every kind navarch serves, created from a dict, then read and listed through the typed models
    (which reject missing required fields and wrong types)."""
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    coord = client.CoordinationV1Api(api)
    labels = {"app": unique("kinds")}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}]},
    }
    job_template = {
        "metadata": {"labels": labels},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": IMAGE, "command": ["true"]}]},
    }
    ns = unique("kinds")
    core.create_namespace({"metadata": {"name": ns}})
    n = unique("o")
    cases = [
        (core.create_namespaced_config_map, core.read_namespaced_config_map, core.list_namespaced_config_map,
         {"metadata": {"name": n}, "data": {"k": "v"}}),
        (core.create_namespaced_secret, core.read_namespaced_secret, core.list_namespaced_secret,
         {"metadata": {"name": n}, "stringData": {"p": "s3cret"}}),
        (core.create_namespaced_service_account, core.read_namespaced_service_account,
         core.list_namespaced_service_account, {"metadata": {"name": n}}),
        (core.create_namespaced_service, core.read_namespaced_service, core.list_namespaced_service,
         {"metadata": {"name": n}, "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]}}),
        (core.create_namespaced_endpoints, core.read_namespaced_endpoints, core.list_namespaced_endpoints,
         {"metadata": {"name": unique("ep")}, "subsets": [{"addresses": [{"ip": "10.244.9.9"}], "ports": [{"port": 80}]}]}),
        (core.create_namespaced_pod, core.read_namespaced_pod, core.list_namespaced_pod,
         {"metadata": {"name": n, "labels": labels}, "spec": template["spec"]}),
        (core.create_namespaced_event, core.read_namespaced_event, core.list_namespaced_event,
         {"metadata": {"name": n}, "involvedObject": {"kind": "Pod", "name": n, "namespace": ns},
          "reason": "Testing", "message": "from python", "type": "Normal"}),
        (apps.create_namespaced_deployment, apps.read_namespaced_deployment, apps.list_namespaced_deployment,
         {"metadata": {"name": n}, "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template}}),
        (apps.create_namespaced_replica_set, apps.read_namespaced_replica_set, apps.list_namespaced_replica_set,
         {"metadata": {"name": unique("rs")},
          "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": template}}),
        (apps.create_namespaced_daemon_set, apps.read_namespaced_daemon_set, apps.list_namespaced_daemon_set,
         {"metadata": {"name": n}, "spec": {"selector": {"matchLabels": labels}, "template": template}}),
        (apps.create_namespaced_stateful_set, apps.read_namespaced_stateful_set, apps.list_namespaced_stateful_set,
         {"metadata": {"name": n},
          "spec": {"serviceName": n, "replicas": 0, "selector": {"matchLabels": labels}, "template": template}}),
        (batch.create_namespaced_job, batch.read_namespaced_job, batch.list_namespaced_job,
         {"metadata": {"name": n}, "spec": {"suspend": True, "template": job_template}}),
        (batch.create_namespaced_cron_job, batch.read_namespaced_cron_job, batch.list_namespaced_cron_job,
         {"metadata": {"name": n},
          "spec": {"schedule": "*/5 * * * *", "suspend": True, "jobTemplate": {"spec": {"template": job_template}}}}),
        (coord.create_namespaced_lease, coord.read_namespaced_lease, coord.list_namespaced_lease,
         {"metadata": {"name": n}, "spec": {"holderIdentity": "python", "leaseDurationSeconds": 15}}),
    ]
    for create, read, list_, body in cases:
        created = create(ns, body)
        name = created.metadata.name
        again = read(name, ns)
        assert again.metadata.uid == created.metadata.uid, name
        listed = list_(ns)
        assert name in [o.metadata.name for o in listed.items], (list_.__name__, name)
    # Cluster-scoped kinds, and every namespace.
    assert ns in [o.metadata.name for o in core.list_namespace().items]
    core.list_node()
    core.list_pod_for_all_namespaces()
    apps.list_deployment_for_all_namespaces()
    core.delete_namespace(ns)


def test_server_side_apply(api):
    """patch_* with Content-Type application/apply-patch+yaml: created, owned by the field manager,
    a conflict as a 409 Status naming the field, then taken over with force."""
    core = client.CoreV1Api(api)
    name = unique("py-ssa")
    apply = "application/apply-patch+yaml"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}}
    created = core.patch_namespaced_config_map(name, NS, body, field_manager="pytest", _content_type=apply)
    assert created.data == {"a": "1"}
    entries = created.metadata.managed_fields
    assert [(e.manager, e.operation) for e in entries] == [("pytest", "Apply")]
    assert entries[0].fields_v1 == {"f:data": {"f:a": {}}}
    changed = dict(body, data={"a": "2"})
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map(name, NS, changed, field_manager="other", _content_type=apply)
    assert e.value.status == 409
    status = json.loads(e.value.body)
    assert status["reason"] == "Conflict"
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "pytest"', "field": ".data.a"}
    ]
    forced = core.patch_namespaced_config_map(
        name, NS, changed, field_manager="other", force=True, _content_type=apply
    )
    assert forced.data == {"a": "2"}
    assert [e.manager for e in forced.metadata.managed_fields] == ["other"]
    core.delete_namespaced_config_map(name, NS)
