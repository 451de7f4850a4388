#!/usr/bin/env bash
# make up / make down / make status / make node-*: a local navarch cluster of N worker nodes on one
# machine, every component a background process.
#
# Network (host-gw, like flannel's host-gw backend, with routes set here since make up assigns the
# pod CIDRs):
#   bridge navarch-nodes 10.250.0.1/24 (the "node network"; the control plane listens here)
#   node i (node-1, node-2, ...): network namespace navarch-node-i, veth navarch-n<i> on the bridge,
#     address 10.250.0.(10+i), pod CIDR 10.244.i.0/24 on its own bridge navarch0, its own kubelet,
#     kube-proxy (nftables in its namespace) and containerd namespace navarch-node-i; routes to every
#     other node's pod CIDR via that node's address
#   this host: routes to every pod CIDR via its node; unreachable routes over 10.244.0.0/16,
#     10.96.0.0/12 and 10.250.0.0/16 first, so nothing for those ranges leaves the machine
# One containerd serves all nodes (a containerd namespace each), because containerd and runc work on
# the host's mounts and cgroups, which the nodes share; the kubelet and kube-proxy run in the node's
# network namespace only (nsenter --net), so pod sandboxes, bridges, routes and nftables are per node.
#
# State, logs and pid files live under $NAVARCH_HOME (default: .navarch/ in the checkout):
#   etcd/            etcd data
#   logs/<c>.log     one log per component (kubelet-node-1.log, kube-proxy-node-1.log, ...)
#   run/<c>.pid      one pid file per component
#   nodes/node-i/    each node's kubelet directories
#   pki/             the cluster's CAs, certificates and keys (navarch-pki; kubeadm's layout)
#   kubeconfigs/     one kubeconfig per control-plane identity (scheduler, controller-manager, cluster-dns, admin)
#   join/            the join token and the bootstrap kubeconfig nodes start from; each node's kubelet and
#                    kube-proxy write their own kubeconfig (and the kubelet its serving certificate) in nodes/node-i/
# navctl's config goes to ~/.navarch/config.yaml.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${NAVARCH_HOME:-$ROOT/.navarch}"
LOGS="$HOME_DIR/logs"
RUN="$HOME_DIR/run"
BIN="$ROOT/target/release"
NODES="${NODES:-2}"
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-2379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-2380}"
API_PORT="${API_PORT:-6443}"
API_HTTP_PORT="${API_HTTP_PORT:-6444}"
SCHED_HTTP_PORT="${SCHED_HTTP_PORT:-10259}"
CM_HTTP_PORT="${CM_HTTP_PORT:-10257}"
REGISTRY_PORT="${REGISTRY_PORT:-5000}"
KUBELET_HTTP_PORT="${KUBELET_HTTP_PORT:-10248}"
KUBELET_API_PORT="${KUBELET_API_PORT:-10250}"
PROXY_HTTP_PORT="${PROXY_HTTP_PORT:-10256}"
DNS_HTTP_PORT="${DNS_HTTP_PORT:-9153}"
# The cluster DNS: the kube-dns Service's ClusterIP (pods' nameserver), served by cluster-dns on the
# host's node-network address, which pods reach through kube-proxy's DNAT.
DNS_SERVICE_IP="${DNS_SERVICE_IP:-10.96.0.10}"
NODE_BRIDGE="navarch-nodes"
HOST_IP="10.250.0.1"
CLUSTER_CIDR="10.244.0.0/16"
SERVICE_CIDR="10.96.0.0/12"
# SERVICE_CIDR in two halves: the host reaches ClusterIPs through node-1 (see network_up).
SERVICE_ROUTES="10.96.0.0/13 10.104.0.0/13"
NODE_RANGE="10.250.0.0/16"
BRIDGE="navarch0"
CTD_DIR="$HOME_DIR/containerd"
# Node i's name, namespace, host-side link, address, pod CIDR.
node_name() { echo "node-$1"; }
node_ns() { echo "navarch-node-$1"; }
node_link() { echo "navarch-n$1"; }
node_ip() { echo "10.250.0.$((10 + $1))"; }
node_pod_cidr() { echo "10.244.$1.0/24"; }
in_node() { local i="$1"; shift; nsenter --net="/run/netns/$(node_ns "$i")" -- "$@"; }
# The nodes that exist now (from their namespaces), whatever NODES was when they were made.
existing_nodes() { ip netns list 2>/dev/null | sed -n 's/^navarch-node-\([0-9]*\).*/\1/p' | sort -n; }
CTD_SOCK="$CTD_DIR/containerd.sock"
NAVCTL_CONFIG_DIR="${HOME}/.navarch"
NAVCTL_CONFIG="$NAVCTL_CONFIG_DIR/config.yaml"
# kubectl: a kubeconfig of our own, and a context "navarch" merged into the user's (as kind does).
KUBECONFIG_FILE="$HOME_DIR/kubeconfig"
USER_KUBECONFIG="${USER_KUBECONFIG:-${HOME}/.kube/config}"
NAVCTL_LINK="/usr/local/bin/navctl"
PKI="$HOME_DIR/pki"
KUBECONFIGS="$HOME_DIR/kubeconfigs"
JOIN_DIR="$HOME_DIR/join"
API_URL="https://$HOST_IP:$API_PORT"

# Components not built yet: name and the issue that builds them.
NOT_YET=()

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid" || true; }

# Alive: the pid exists and is not a zombie (a killed daemon nobody has reaped yet).
running() {
  local pid
  pid="$(pid_of "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ! grep -qE '^[0-9]+ \(.*\) Z' "/proc/$pid/stat" 2>/dev/null
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

http_ok() { curl -fsS --max-time 2 "http://127.0.0.1:$1$2" >/dev/null 2>&1; }
http_ok_at() { curl -fsS --max-time 2 "http://$1:$2$3" >/dev/null 2>&1; }

wait_for() { # name, timeout seconds, command...
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ! running "$name"; then
      say "$name exited; last lines of $LOGS/$name.log:" >&2
      tail -n 30 "$LOGS/$name.log" >&2 || true
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name not healthy after ${timeout}s; last lines of $LOGS/$name.log:" >&2
      tail -n 30 "$LOGS/$name.log" >&2 || true
      exit 1
    fi
    sleep 0.3
  done
}

start_bg() { # name, command...
  local name="$1"; shift
  nohup setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

etcd_healthy() {
  ETCDCTL_API=3 etcdctl --endpoints="https://127.0.0.1:$ETCD_CLIENT_PORT" --cacert="$PKI/etcd/ca.crt" \
    --cert="$PKI/apiserver-etcd-client.crt" --key="$PKI/apiserver-etcd-client.key" endpoint health >/dev/null 2>&1
}

# The cluster's PKI (idempotent: what exists and is still good is kept) and a kubeconfig per
# component identity, each with its own client certificate.
pki_up() {
  "$BIN/navarch-pki" --dir "$PKI" init --api-server-ip "$HOST_IP" --etcd-ip 127.0.0.1 | sed 's/^/pki: /'
  mkdir -p "$KUBECONFIGS"
  chmod 0700 "$KUBECONFIGS"
  local c
  for c in scheduler controller-manager cluster-dns admin; do
    component_kubeconfig "$c" "$c"
  done
}

# The join token (kubeadm's bootstrap token) every node joins with: its Secret
# kube-system/bootstrap-token-<id>, and the bootstrap kubeconfig a node starts from (the api-server's
# address, the cluster CA and the token; no key of the cluster's). With it a node's kubelet asks for its
# client and serving certificates, and its kube-proxy for system:kube-proxy's, through
# CertificateSigningRequests the controller-manager approves and signs. Kept in join/ (0700) so that
# `make up NODES=3` later joins node-3 with the same token.
join_token_up() {
  mkdir -p "$JOIN_DIR"
  chmod 0700 "$JOIN_DIR"
  if [ ! -s "$JOIN_DIR/token" ]; then
    (umask 077; printf '%s.%s\n' "$(random_chars 6)" "$(random_chars 16)" >"$JOIN_DIR/token")
  fi
  local token; token="$(cat "$JOIN_DIR/token")"
  "$BIN/navctl" --kubeconfig "$KUBECONFIGS/admin.kubeconfig" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-${token%%.*}
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  description: "make up's join token"
  token-id: "${token%%.*}"
  token-secret: "${token#*.}"
  usage-bootstrap-authentication: "true"
EOF
  "$BIN/navarch-pki" --dir "$PKI" bootstrap-kubeconfig --token "$token" --server "$API_URL" \
    --out "$JOIN_DIR/bootstrap.kubeconfig" >/dev/null
  say "join token ${token%%.*}.**** in $JOIN_DIR (nodes join with it)"
}

random_chars() { tr -dc 'a-z0-9' </dev/urandom | head -c "$1"; }

component_kubeconfig() { # cert stem, kubeconfig name
  "$BIN/navarch-pki" --dir "$PKI" kubeconfig --cert "$1" --server "$API_URL" --out "$KUBECONFIGS/$2.kubeconfig" >/dev/null
}

cmd_up() {
  [ "$(id -u)" -eq 0 ] || die "make up must run as root (it installs packages and creates network namespaces, bridges and routes): try sudo make up"
  case "$NODES" in ''|*[!0-9]*) die "NODES must be a number from 1 to 50 (got '$NODES')" ;; esac
  { [ "$NODES" -ge 1 ] && [ "$NODES" -le 50 ]; } || die "NODES must be a number from 1 to 50 (got '$NODES')"
  "$ROOT/scripts/deps.sh"
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs), then run make up again"
  for tool in etcd etcdctl curl nsenter ip nft containerd docker-registry; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found after installing packages"
  done

  say "building release binaries (first time: several minutes)"
  (cd "$ROOT" && cargo build --release --workspace --bins)

  mkdir -p "$LOGS" "$RUN" "$HOME_DIR/etcd"
  pki_up
  network_up

  if running etcd; then
    say "etcd already running (pid $(pid_of etcd))"
  else
    rm -f "$RUN/etcd.pid"
    port_busy "$ETCD_CLIENT_PORT" && die "port $ETCD_CLIENT_PORT is in use by a process that is not ours (set ETCD_CLIENT_PORT)"
    port_busy "$ETCD_PEER_PORT" && die "port $ETCD_PEER_PORT is in use by a process that is not ours (set ETCD_PEER_PORT)"
    say "starting etcd on 127.0.0.1:$ETCD_CLIENT_PORT (TLS, client certificates of the etcd CA only)"
    start_bg etcd etcd --name=navarch --data-dir="$HOME_DIR/etcd" \
      --listen-client-urls="https://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls="https://127.0.0.1:$ETCD_CLIENT_PORT" \
      --listen-peer-urls="https://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="https://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster="navarch=https://127.0.0.1:$ETCD_PEER_PORT" --log-level=warn \
      --cert-file="$PKI/etcd/server.crt" --key-file="$PKI/etcd/server.key" --client-cert-auth --trusted-ca-file="$PKI/etcd/ca.crt" \
      --peer-cert-file="$PKI/etcd/peer.crt" --peer-key-file="$PKI/etcd/peer.key" --peer-client-cert-auth \
      --peer-trusted-ca-file="$PKI/etcd/ca.crt"
  fi
  wait_for etcd 60 etcd_healthy

  if running api-server; then
    say "api-server already running (pid $(pid_of api-server))"
  else
    rm -f "$RUN/api-server.pid"
    port_busy "$API_HTTP_PORT" && die "port $API_HTTP_PORT is in use by a process that is not ours (set API_HTTP_PORT)"
    say "starting api-server on $HOST_IP:$API_PORT"
    RUST_LOG="${RUST_LOG:-info}" start_bg api-server "$BIN/api-server" \
      --listen="$HOST_IP:$API_PORT" --http-listen="127.0.0.1:$API_HTTP_PORT" \
      --etcd-endpoints="https://127.0.0.1:$ETCD_CLIENT_PORT" --service-cluster-ip-range="$SERVICE_CIDR" \
      --etcd-cafile="$PKI/etcd/ca.crt" --etcd-certfile="$PKI/apiserver-etcd-client.crt" --etcd-keyfile="$PKI/apiserver-etcd-client.key" \
      --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
      --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
      --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
      --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
      --encryption-provider-config="$PKI/encryption-config.yaml" \
      --audit-policy-file="$ROOT/deploy/config/audit-policy.yaml" --audit-log-path="$LOGS/audit.log" \
      --audit-log-maxsize=100 --audit-log-maxbackup=3 ${API_SERVER_ARGS:-}
  fi
  wait_for api-server 60 http_ok "$API_HTTP_PORT" /readyz

  if running scheduler; then
    say "scheduler already running (pid $(pid_of scheduler))"
  else
    rm -f "$RUN/scheduler.pid"
    say "starting scheduler"
    port_busy "$SCHED_HTTP_PORT" && die "port $SCHED_HTTP_PORT is in use by a process that is not ours (set SCHED_HTTP_PORT)"
    RUST_LOG="${RUST_LOG:-info}" start_bg scheduler "$BIN/scheduler" --kubeconfig="$KUBECONFIGS/scheduler.kubeconfig" \
      --http-listen="127.0.0.1:$SCHED_HTTP_PORT"
  fi
  wait_for scheduler 30 http_ok "$SCHED_HTTP_PORT" /healthz

  if running controller-manager; then
    say "controller-manager already running (pid $(pid_of controller-manager))"
  else
    rm -f "$RUN/controller-manager.pid"
    say "starting controller-manager"
    port_busy "$CM_HTTP_PORT" && die "port $CM_HTTP_PORT is in use by a process that is not ours (set CM_HTTP_PORT)"
    RUST_LOG="${RUST_LOG:-info}" start_bg controller-manager "$BIN/controller-manager" --kubeconfig="$KUBECONFIGS/controller-manager.kubeconfig" \
      --http-listen="127.0.0.1:$CM_HTTP_PORT" \
      --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" ${CM_ARGS:-}
  fi
  wait_for controller-manager 30 http_ok "$CM_HTTP_PORT" /healthz
  join_token_up

  start_shared
  local i
  for i in $(seq 1 "$NODES"); do start_node "$i"; done

  mkdir -p "$NAVCTL_CONFIG_DIR"
  printf 'server: %s:%s\nnamespace: default\nkubeconfig: %s\n' "$HOST_IP" "$API_PORT" "$KUBECONFIG_FILE" >"$NAVCTL_CONFIG"
  if [ ! -e "$NAVCTL_LINK" ] || [ "$(readlink "$NAVCTL_LINK" || true)" = "$BIN/navctl" ]; then
    ln -sfn "$BIN/navctl" "$NAVCTL_LINK"
  fi

  write_kubeconfig

  say ""
  say "navarch is up ($NODES nodes):"
  cmd_status
  say ""
  say "next:"
  say "  kubectl get nodes -o wide       # context 'navarch' (or KUBECONFIG=$KUBECONFIG_FILE)"
  say "  navctl get nodes -o wide"
  say "  navctl apply -f examples/web-deployment.yaml -f examples/client-pod.yaml && navctl get pods -o wide"
  say "  navctl expose deployment web --port 80 --target-port 9376"
  say "  navctl exec client -- wget -qO- http://web       # a replica on either node answers"
  say "  navctl get pods -A -w            # watch changes live"
  say "  make node-stop NODE=1 / make node-cut NODE=1 / make kill C=scheduler   # break things (README)"
  say "  make status / make down"
}

# The node network: the host's bridge and address, the unreachable routes over the cluster's ranges
# (first: a packet for a missing pod or Service must never reach the default gateway), and per node a
# namespace with its veth, address, forwarding and routes (to the host, and to every pod CIDR via its
# node). Idempotent: what exists is left as it is.
network_up() {
  local cidr i j
  for cidr in "$CLUSTER_CIDR" "$SERVICE_CIDR" "$NODE_RANGE"; do ip route replace unreachable "$cidr"; done
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$NODE_BRIDGE" type bridge
  ip addr show dev "$NODE_BRIDGE" | grep " $HOST_IP/" >/dev/null || ip addr add "$HOST_IP/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  for i in $(seq 1 "$NODES"); do
    local ns link
    ns="$(node_ns "$i")"; link="$(node_link "$i")"
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    if ! ip link show "$link" >/dev/null 2>&1; then
      ip -n "$ns" link del eth0 2>/dev/null || true
      ip link add "$link" type veth peer name eth0 netns "$ns"
    fi
    ip link set "$link" master "$NODE_BRIDGE" up
    ip -n "$ns" addr show dev eth0 | grep " $(node_ip "$i")/" >/dev/null || ip -n "$ns" addr add "$(node_ip "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    in_node "$i" sysctl -qw net.ipv4.ip_forward=1
    for cidr in "$CLUSTER_CIDR" "$SERVICE_CIDR" "$NODE_RANGE"; do ip -n "$ns" route replace unreachable "$cidr"; done
    for j in $(seq 1 "$NODES"); do
      [ "$j" = "$i" ] || ip -n "$ns" route replace "$(node_pod_cidr "$j")" via "$(node_ip "$j")"
    done
    ip route replace "$(node_pod_cidr "$i")" via "$(node_ip "$i")"
  done
  # ClusterIPs from the host (`curl http://<cluster IP>:<port>/`, as the articles do) go to node-1,
  # whose kube-proxy DNATs them and masquerades the host's address. Both halves are more specific
  # than the unreachable route over the whole range, which stays as the fallback.
  for cidr in $SERVICE_ROUTES; do ip route replace "$cidr" via "$(node_ip 1)"; done
}

network_down() {
  local i
  for i in $(existing_nodes); do
    ip link del "$(node_link "$i")" 2>/dev/null || true
    ip route del "$(node_pod_cidr "$i")" 2>/dev/null || true
    ip netns del "$(node_ns "$i")" 2>/dev/null || true
  done
  local cidr
  for cidr in $SERVICE_ROUTES; do ip route del "$cidr" 2>/dev/null || true; done
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  for cidr in "$CLUSTER_CIDR" "$SERVICE_CIDR" "$NODE_RANGE"; do ip route del unreachable "$cidr" 2>/dev/null || true; done
}

# What the nodes share: containerd (a containerd namespace per node), the local registry with the
# offline test images (the docker.io mirror) and cluster-dns.
start_shared() {
  mkdir -p "$CTD_DIR" "$HOME_DIR/registry"
  if running containerd; then
    say "containerd already running (pid $(pid_of containerd))"
  else
    rm -f "$RUN/containerd.pid"
    cat >"$CTD_DIR/config.toml" <<EOF2
version = 2
root = "$CTD_DIR/root"
state = "$CTD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTD_SOCK"
[ttrpc]
  address = "$CTD_SOCK.ttrpc"
EOF2
    say "starting containerd ($CTD_SOCK)"
    start_bg containerd containerd --config "$CTD_DIR/config.toml"
  fi
  wait_for containerd 30 test -S "$CTD_SOCK"

  if running registry; then
    say "registry already running (pid $(pid_of registry))"
  else
    rm -f "$RUN/registry.pid"
    cat >"$HOME_DIR/registry/config.yml" <<EOF2
version: 0.1
storage:
  filesystem:
    rootdirectory: $HOME_DIR/registry/data
  delete:
    enabled: true
http:
  addr: $HOST_IP:$REGISTRY_PORT
log:
  level: warn
EOF2
    say "starting the image registry on $HOST_IP:$REGISTRY_PORT"
    start_bg registry docker-registry serve "$HOME_DIR/registry/config.yml"
  fi
  wait_for registry 30 http_ok_at "$HOST_IP" "$REGISTRY_PORT" /v2/
  "$ROOT/scripts/images.sh" build "$HOME_DIR/images"
  "$ROOT/scripts/images.sh" push "$HOME_DIR/images" "$HOST_IP:$REGISTRY_PORT" >/dev/null
  say "images busybox:latest, busybox:1.36, serve-hostname:1.0, serve-hostname:2.0, nginx:latest, curl:latest, redis:latest served as docker.io/library/*"

  if running cluster-dns; then
    say "cluster-dns already running (pid $(pid_of cluster-dns))"
  else
    rm -f "$RUN/cluster-dns.pid"
    port_busy "$DNS_HTTP_PORT" && die "port $DNS_HTTP_PORT is in use by a process that is not ours (set DNS_HTTP_PORT)"
    say "starting cluster-dns on $HOST_IP:53 (Service kube-system/kube-dns $DNS_SERVICE_IP; no forwarding outside the cluster)"
    RUST_LOG="${RUST_LOG:-info}" start_bg cluster-dns "$BIN/cluster-dns" --kubeconfig="$KUBECONFIGS/cluster-dns.kubeconfig" \
      --http-listen="127.0.0.1:$DNS_HTTP_PORT" --listen="$HOST_IP:53" --advertise-address="$HOST_IP" \
      --service-ip="$DNS_SERVICE_IP" --upstream=''
  fi
  wait_for cluster-dns 30 http_ok "$DNS_HTTP_PORT" /healthz
}

# Node i: its kubelet and kube-proxy, in its network namespace.
start_node() {
  local i="$1" name ip dir
  name="$(node_name "$i")"; ip="$(node_ip "$i")"; dir="$HOME_DIR/nodes/$name"
  mkdir -p "$dir"
  start_kubelet "$i"
  if running "kube-proxy-$name"; then
    say "kube-proxy on $name already running (pid $(pid_of "kube-proxy-$name"))"
  else
    rm -f "$RUN/kube-proxy-$name.pid"
    say "starting kube-proxy on $name"
    RUST_LOG="${RUST_LOG:-info}" start_bg "kube-proxy-$name" nsenter --net="/run/netns/$(node_ns "$i")" -- \
      "$BIN/kube-proxy" --bootstrap-kubeconfig="$JOIN_DIR/bootstrap.kubeconfig" --kubeconfig="$dir/kube-proxy.kubeconfig" \
      --hostname-override="$name" \
      --http-listen="$ip:$PROXY_HTTP_PORT" --cluster-cidr="$CLUSTER_CIDR" --service-cluster-ip-range="$SERVICE_CIDR"
  fi
  wait_for "kube-proxy-$name" 30 http_ok_at "$ip" "$PROXY_HTTP_PORT" /healthz
}

start_kubelet() {
  local i="$1" name ip dir
  name="$(node_name "$i")"; ip="$(node_ip "$i")"; dir="$HOME_DIR/nodes/$name"
  if running "kubelet-$name"; then
    say "kubelet on $name already running (pid $(pid_of "kubelet-$name"))"
  else
    rm -f "$RUN/kubelet-$name.pid"
    say "starting kubelet on $name ($ip, pod CIDR $(node_pod_cidr "$i"))"
    RUST_LOG="${RUST_LOG:-info}" start_bg "kubelet-$name" nsenter --net="/run/netns/$(node_ns "$i")" -- \
      "$BIN/kubelet" --bootstrap-kubeconfig="$JOIN_DIR/bootstrap.kubeconfig" --kubeconfig="$dir/kubelet.kubeconfig" \
      --cert-dir="$dir/pki" --node-name="$name" --node-ip="$ip" \
      --containerd-socket="$CTD_SOCK" --containerd-namespace="$(node_ns "$i")" \
      --root-dir="$dir/root" --run-dir="$dir/run" --log-dir="$dir/logs" \
      --pod-cidr="$(node_pod_cidr "$i")" --bridge="$BRIDGE" --cluster-cidr="$CLUSTER_CIDR" --service-cluster-ip-range="$SERVICE_CIDR" \
      --pod-egress-allowed="${HOST_IP%.*}.0/24" \
      --registry-mirror="docker.io=http://$HOST_IP:$REGISTRY_PORT" --http-listen="$ip:$KUBELET_HTTP_PORT" \
      --grpc-listen="$ip:$KUBELET_API_PORT" --cluster-dns="$DNS_SERVICE_IP" ${KUBELET_ARGS:-}
  fi
  wait_for "kubelet-$name" 60 http_ok_at "$ip" "$KUBELET_HTTP_PORT" /healthz
}

# Kills node i's containers (the containerd namespace's tasks) and removes them.
remove_containers() {
  local ns="$1" id
  [ -S "$CTD_SOCK" ] && running containerd || return 0
  for id in $(ctr -a "$CTD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do ctr -a "$CTD_SOCK" -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in $(ctr -a "$CTD_SOCK" -n "$ns" tasks ls -q 2>/dev/null); do ctr -a "$CTD_SOCK" -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true; done
  for id in $(ctr -a "$CTD_SOCK" -n "$ns" containers ls -q 2>/dev/null); do
    ctr -a "$CTD_SOCK" -n "$ns" containers rm "$id" >/dev/null 2>&1 || true
    ctr -a "$CTD_SOCK" -n "$ns" snapshots rm "$id" >/dev/null 2>&1 || true
  done
}

# Stops node i's daemons and containers and unmounts what its kubelet mounted.
stop_node() {
  local i="$1" name dir ns
  name="$(node_name "$i")"; dir="$HOME_DIR/nodes/$name"
  stop "kube-proxy-$name"
  stop "kubelet-$name"
  remove_containers "$(node_ns "$i")"
  for ns in "$dir"/run/netns/*; do [ -e "$ns" ] && { umount -l "$ns" 2>/dev/null || true; rm -f "$ns"; }; done
  { grep -o " $dir/[^ ]*" /proc/self/mounts 2>/dev/null || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$dir/root/cni" "$dir/root/pods"
}

stop() { # name
  local name="$1" pid
  pid="$(pid_of "$name")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    say "stopped $name (pid $pid)"
  fi
  rm -f "$RUN/$name.pid"
}

# .navarch/kubeconfig, and the context, cluster and user "navarch" in the user's kubeconfig, made
# current. Needs kubectl for the merge (without it, only our own file is written).
write_kubeconfig() {
  cp "$KUBECONFIGS/admin.kubeconfig" "$KUBECONFIG_FILE"
  chmod 0600 "$KUBECONFIG_FILE"
  if ! command -v kubectl >/dev/null 2>&1; then
    say "kubeconfig: $KUBECONFIG_FILE (kubectl not found: $USER_KUBECONFIG left alone)"
    return
  fi
  mkdir -p "$(dirname "$USER_KUBECONFIG")"
  local k=(env KUBECONFIG="$USER_KUBECONFIG" kubectl config)
  "${k[@]}" set-cluster navarch --server="$API_URL" --certificate-authority="$PKI/ca.crt" --embed-certs >/dev/null
  "${k[@]}" set-credentials navarch --client-certificate="$PKI/admin.crt" --client-key="$PKI/admin.key" --embed-certs >/dev/null
  "${k[@]}" set-context navarch --cluster=navarch --user=navarch --namespace=default >/dev/null
  "${k[@]}" use-context navarch >/dev/null
  chmod 0600 "$USER_KUBECONFIG"
  say "kubeconfig: $KUBECONFIG_FILE (user kubernetes-admin, group navarch:cluster-admins); context navarch is current in $USER_KUBECONFIG"
}

# Removes what write_kubeconfig merged into the user's kubeconfig, and nothing else.
remove_kubeconfig() {
  [ -f "$USER_KUBECONFIG" ] && command -v kubectl >/dev/null 2>&1 || return 0
  local k=(env KUBECONFIG="$USER_KUBECONFIG" kubectl config)
  if [ "$("${k[@]}" current-context 2>/dev/null || true)" = navarch ]; then
    "${k[@]}" unset current-context >/dev/null 2>&1 || true
  fi
  if "${k[@]}" get-contexts -o name 2>/dev/null | grep -x navarch >/dev/null; then
    "${k[@]}" delete-context navarch >/dev/null 2>&1 || true
  fi
  if "${k[@]}" get-clusters 2>/dev/null | grep -x navarch >/dev/null; then
    "${k[@]}" delete-cluster navarch >/dev/null 2>&1 || true
  fi
  if "${k[@]}" get-users 2>/dev/null | grep -x navarch >/dev/null; then
    "${k[@]}" delete-user navarch >/dev/null 2>&1 || true
  fi
}

cmd_down() {
  local i
  remove_kubeconfig
  for i in $(existing_nodes); do stop_node "$i"; done
  # Nodes of an older layout (one kubelet on the host, before issue 7).
  stop kube-proxy; stop kubelet
  remove_containers navarch
  stop cluster-dns
  stop registry
  stop containerd
  stop controller-manager
  stop scheduler
  stop api-server
  stop etcd
  { grep -o " $HOME_DIR/[^ ]*" /proc/self/mounts 2>/dev/null || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  network_down
  if [ "${PURGE:-0}" = "1" ]; then
    rm -rf "$HOME_DIR"
    rm -f "$NAVCTL_CONFIG"
    rmdir "$NAVCTL_CONFIG_DIR" 2>/dev/null || true
    if [ "$(readlink "$NAVCTL_LINK" 2>/dev/null || true)" = "$BIN/navctl" ]; then rm -f "$NAVCTL_LINK"; fi
    say "removed state $HOME_DIR, $NAVCTL_CONFIG and the navctl link"
  else
    say "data kept in $HOME_DIR (PURGE=1 make down removes it)"
  fi
}

uptime_of() { ps -o etime= -p "$1" 2>/dev/null | tr -d ' '; }

status_line() { # name, health
  local name="$1" pid
  if running "$name"; then
    pid="$(pid_of "$name")"
    printf '%-24s %-10s %-8s %-12s %s\n' "$name" running "$pid" "$(uptime_of "$pid")" "$2"
  else
    printf '%-24s %-10s %-8s %-12s %s\n' "$name" stopped - - "log: $LOGS/$name.log"
  fi
}

cmd_status() {
  printf '%-24s %-10s %-8s %-12s %s\n' COMPONENT STATE PID UPTIME HEALTH
  local h
  etcd_healthy && h="healthy" || h="unhealthy"; status_line etcd "$h"
  http_ok "$API_HTTP_PORT" /readyz && h="ready on $HOST_IP:$API_PORT (http://127.0.0.1:$API_HTTP_PORT/metrics)" || h="not ready"; status_line api-server "$h"
  http_ok "$SCHED_HTTP_PORT" /healthz && h="healthy" || h="unhealthy"; status_line scheduler "$h"
  http_ok "$CM_HTTP_PORT" /healthz && h="healthy" || h="unhealthy"; status_line controller-manager "$h"
  [ -S "$CTD_SOCK" ] && h="socket $CTD_SOCK" || h="no socket"; status_line containerd "$h"
  http_ok_at "$HOST_IP" "$REGISTRY_PORT" /v2/ && h="serving http://$HOST_IP:$REGISTRY_PORT" || h="unhealthy"; status_line registry "$h"
  http_ok "$DNS_HTTP_PORT" /healthz && h="serving $HOST_IP:53 as $DNS_SERVICE_IP" || h="not ready"; status_line cluster-dns "$h"
  local i name ip link
  for i in $(existing_nodes); do
    name="$(node_name "$i")"; ip="$(node_ip "$i")"; link="$(node_link "$i")"
    local state="link up"
    ip link show "$link" 2>/dev/null | grep "state UP" >/dev/null || state="LINK CUT"
    http_ok_at "$ip" "$KUBELET_HTTP_PORT" /healthz && h="healthy ($ip, pods $(node_pod_cidr "$i"), $state)" || h="unhealthy ($state)"
    status_line "kubelet-$name" "$h"
    http_ok_at "$ip" "$PROXY_HTTP_PORT" /healthz && h="synced (http://$ip:$PROXY_HTTP_PORT/metrics)" || h="not synced"
    status_line "kube-proxy-$name" "$h"
  done
  local entry
  for entry in "${NOT_YET[@]+"${NOT_YET[@]}"}"; do
    printf '%-24s %-10s %-8s %-12s %s\n' "${entry%%:*}" "-" - - "not implemented yet (issue ${entry##*:})"
  done
}

# Breaking things on purpose (make node-stop NODE=1, node-start, node-cut, node-restore, kill C=...).
need_node() {
  [ -n "${NODE:-}" ] || die "say which node: NODE=1 (node-1)"
  [ -e "/run/netns/$(node_ns "$NODE")" ] || die "no node $(node_name "$NODE") (make up first; nodes: $(existing_nodes | tr '\n' ' '))"
}

cmd_node_stop() { need_node; stop "kubelet-$(node_name "$NODE")"; say "its containers keep running; the node goes NotReady after the grace period"; }
cmd_node_start() { need_node; start_kubelet "$NODE"; }
cmd_node_cut() { need_node; ip link set "$(node_link "$NODE")" down; say "$(node_name "$NODE") is cut off from the control plane and the other nodes"; }
cmd_node_restore() { need_node; ip link set "$(node_link "$NODE")" up; say "$(node_name "$NODE")'s link is back"; }
cmd_kill() {
  local c="${C:-}"
  case "$c" in
    etcd|api-server|scheduler|controller-manager|containerd|registry|cluster-dns) ;;
    kubelet-node-*|kube-proxy-node-*) ;;
    *) die "say which component: C=etcd|api-server|scheduler|controller-manager|cluster-dns|kubelet-node-1|kube-proxy-node-1 ..." ;;
  esac
  running "$c" || die "$c is not running"
  local pid
  pid="$(pid_of "$c")"
  kill -KILL "$pid"
  # A killed process is gone only once the kernel has torn it down (every thread out of the kernel, its
  # memory freed): on a loaded machine that has taken over 10 s. Until then make up would think it alive.
  for _ in $(seq 1 300); do running "$c" || break; sleep 0.2; done
  if running "$c"; then
    die "$c (pid $pid) still exists 60 s after SIGKILL: $(grep -E '^(State|Threads):' "/proc/$pid/status" 2>/dev/null | tr '\n\t' '  ')"
  fi
  say "killed $c with SIGKILL; make up starts it again"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  node-stop) cmd_node_stop ;;
  node-start) cmd_node_start ;;
  node-cut) cmd_node_cut ;;
  node-restore) cmd_node_restore ;;
  kill) cmd_kill ;;
  *) die "usage: $0 up|down|status|node-stop|node-start|node-cut|node-restore|kill" ;;
esac
