#!/usr/bin/env bash
# make up / make down / make status: a local navarch control plane as background processes.
#
# State, logs and pid files live under $NAVARCH_HOME (default: .navarch/ in the checkout):
#   etcd/            etcd data
#   logs/<c>.log     one log per component
#   run/<c>.pid      one pid file per component
# navctl's config goes to ~/.navarch/config.yaml.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR="${NAVARCH_HOME:-$ROOT/.navarch}"
LOGS="$HOME_DIR/logs"
RUN="$HOME_DIR/run"
BIN="$ROOT/target/release"
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
# bridge's gateway address, which pods reach through kube-proxy's DNAT.
DNS_SERVICE_IP="${DNS_SERVICE_IP:-10.96.0.10}"
# The local node's address: loopback, so the kubelet API (logs, exec; no authentication yet) is
# reachable only from this machine.
NODE_IP="${NODE_IP:-127.0.0.1}"
POD_CIDR="${POD_CIDR:-10.244.0.0/24}"
BRIDGE="${BRIDGE:-navarch0}"
CTD_DIR="$HOME_DIR/containerd"
CTD_SOCK="$CTD_DIR/containerd.sock"
NAVCTL_CONFIG_DIR="${HOME}/.navarch"
NAVCTL_CONFIG="$NAVCTL_CONFIG_DIR/config.yaml"
NAVCTL_LINK="/usr/local/bin/navctl"

# Components not built yet: name and the issue that builds them.
NOT_YET=()

say() { printf '%s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

pid_of() { [ -f "$RUN/$1.pid" ] && cat "$RUN/$1.pid" || true; }

running() {
  local pid
  pid="$(pid_of "$1")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

http_ok() { curl -fsS --max-time 2 "http://127.0.0.1:$1$2" >/dev/null 2>&1; }

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

etcd_healthy() { ETCDCTL_API=3 etcdctl --endpoints="http://127.0.0.1:$ETCD_CLIENT_PORT" endpoint health >/dev/null 2>&1; }

cmd_up() {
  [ "$(id -u)" -eq 0 ] || die "make up must run as root (it installs packages and, in later issues, creates network namespaces): try sudo make up"
  "$ROOT/scripts/deps.sh"
  command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs), then run make up again"
  for tool in etcd etcdctl curl; do command -v "$tool" >/dev/null 2>&1 || die "$tool not found after installing packages"; done

  say "building release binaries (first time: several minutes)"
  (cd "$ROOT" && cargo build --release --workspace --bins)

  mkdir -p "$LOGS" "$RUN" "$HOME_DIR/etcd"

  if running etcd; then
    say "etcd already running (pid $(pid_of etcd))"
  else
    rm -f "$RUN/etcd.pid"
    port_busy "$ETCD_CLIENT_PORT" && die "port $ETCD_CLIENT_PORT is in use by a process that is not ours (set ETCD_CLIENT_PORT)"
    port_busy "$ETCD_PEER_PORT" && die "port $ETCD_PEER_PORT is in use by a process that is not ours (set ETCD_PEER_PORT)"
    say "starting etcd on 127.0.0.1:$ETCD_CLIENT_PORT"
    start_bg etcd etcd --name=navarch --data-dir="$HOME_DIR/etcd" \
      --listen-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_CLIENT_PORT" \
      --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster="navarch=http://127.0.0.1:$ETCD_PEER_PORT" --log-level=warn
  fi
  wait_for etcd 60 etcd_healthy

  if running api-server; then
    say "api-server already running (pid $(pid_of api-server))"
  else
    rm -f "$RUN/api-server.pid"
    port_busy "$API_PORT" && die "port $API_PORT is in use by a process that is not ours (set API_PORT)"
    port_busy "$API_HTTP_PORT" && die "port $API_HTTP_PORT is in use by a process that is not ours (set API_HTTP_PORT)"
    say "starting api-server on 127.0.0.1:$API_PORT"
    RUST_LOG="${RUST_LOG:-info}" start_bg api-server "$BIN/api-server" \
      --listen="127.0.0.1:$API_PORT" --http-listen="127.0.0.1:$API_HTTP_PORT" \
      --etcd-endpoints="http://127.0.0.1:$ETCD_CLIENT_PORT"
  fi
  wait_for api-server 60 http_ok "$API_HTTP_PORT" /readyz

  if running scheduler; then
    say "scheduler already running (pid $(pid_of scheduler))"
  else
    rm -f "$RUN/scheduler.pid"
    say "starting scheduler"
    port_busy "$SCHED_HTTP_PORT" && die "port $SCHED_HTTP_PORT is in use by a process that is not ours (set SCHED_HTTP_PORT)"
    RUST_LOG="${RUST_LOG:-info}" start_bg scheduler "$BIN/scheduler" --server="127.0.0.1:$API_PORT" \
      --http-listen="127.0.0.1:$SCHED_HTTP_PORT"
  fi
  wait_for scheduler 30 http_ok "$SCHED_HTTP_PORT" /healthz

  if running controller-manager; then
    say "controller-manager already running (pid $(pid_of controller-manager))"
  else
    rm -f "$RUN/controller-manager.pid"
    say "starting controller-manager"
    port_busy "$CM_HTTP_PORT" && die "port $CM_HTTP_PORT is in use by a process that is not ours (set CM_HTTP_PORT)"
    RUST_LOG="${RUST_LOG:-info}" start_bg controller-manager "$BIN/controller-manager" --server="127.0.0.1:$API_PORT" \
      --http-listen="127.0.0.1:$CM_HTTP_PORT"
  fi
  wait_for controller-manager 30 http_ok "$CM_HTTP_PORT" /healthz

  start_node

  mkdir -p "$NAVCTL_CONFIG_DIR"
  printf 'server: 127.0.0.1:%s\nnamespace: default\n' "$API_PORT" >"$NAVCTL_CONFIG"
  if [ ! -e "$NAVCTL_LINK" ] || [ "$(readlink "$NAVCTL_LINK" || true)" = "$BIN/navctl" ]; then
    ln -sfn "$BIN/navctl" "$NAVCTL_LINK"
  fi

  say ""
  say "navarch control plane is up:"
  cmd_status
  say ""
  say "next:"
  say "  navctl get nodes -o wide"
  say "  navctl apply -f examples/pod-web.yaml && navctl get pods -o wide"
  say "  curl http://<pod IP>:9376/          # the pod answers with its name"
  say "  navctl get namespaces"
  say "  navctl apply -f examples/guestbook.yaml"
  say "  navctl get all -n guestbook     # or: navctl get deploy,svc,cm -n guestbook"
  say "  navctl get pods -A -w            # watch changes live"
  say "  make status / make down"
}

# containerd (own root and socket), the local registry with the offline test images (the docker.io
# mirror), and the kubelet.
start_node() {
  mkdir -p "$CTD_DIR" "$HOME_DIR/registry" "$HOME_DIR/kubelet"
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
    port_busy "$REGISTRY_PORT" && die "port $REGISTRY_PORT is in use by a process that is not ours (set REGISTRY_PORT)"
    cat >"$HOME_DIR/registry/config.yml" <<EOF2
version: 0.1
storage:
  filesystem:
    rootdirectory: $HOME_DIR/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
log:
  level: warn
EOF2
    say "starting the image registry on 127.0.0.1:$REGISTRY_PORT"
    start_bg registry docker-registry serve "$HOME_DIR/registry/config.yml"
  fi
  wait_for registry 30 http_ok "$REGISTRY_PORT" /v2/
  "$ROOT/scripts/images.sh" build "$HOME_DIR/images"
  "$ROOT/scripts/images.sh" push "$HOME_DIR/images" "127.0.0.1:$REGISTRY_PORT" >/dev/null
  say "images busybox:latest, busybox:1.36, serve-hostname:1.0, serve-hostname:2.0 served as docker.io/library/*"

  if running kubelet; then
    say "kubelet already running (pid $(pid_of kubelet))"
  else
    rm -f "$RUN/kubelet.pid"
    port_busy "$KUBELET_HTTP_PORT" && die "port $KUBELET_HTTP_PORT is in use by a process that is not ours (set KUBELET_HTTP_PORT)"
    port_busy "$KUBELET_API_PORT" && die "port $KUBELET_API_PORT is in use by a process that is not ours (set KUBELET_API_PORT)"
    say "starting kubelet (pod CIDR $POD_CIDR on bridge $BRIDGE)"
    ensure_bridge
    RUST_LOG="${RUST_LOG:-info}" start_bg kubelet "$BIN/kubelet" --server="127.0.0.1:$API_PORT" \
      --containerd-socket="$CTD_SOCK" --root-dir="$HOME_DIR/kubelet/root" --run-dir="$HOME_DIR/kubelet/run" \
      --log-dir="$HOME_DIR/kubelet/logs" --pod-cidr="$POD_CIDR" --bridge="$BRIDGE" \
      --registry-mirror="docker.io=http://127.0.0.1:$REGISTRY_PORT" --http-listen="127.0.0.1:$KUBELET_HTTP_PORT" \
      --node-ip="$NODE_IP" --grpc-listen="$NODE_IP:$KUBELET_API_PORT" --cluster-dns="$DNS_SERVICE_IP"
  fi
  wait_for kubelet 60 http_ok "$KUBELET_HTTP_PORT" /healthz

  if running kube-proxy; then
    say "kube-proxy already running (pid $(pid_of kube-proxy))"
  else
    rm -f "$RUN/kube-proxy.pid"
    port_busy "$PROXY_HTTP_PORT" && die "port $PROXY_HTTP_PORT is in use by a process that is not ours (set PROXY_HTTP_PORT)"
    say "starting kube-proxy (nftables table ip navarch-proxy)"
    RUST_LOG="${RUST_LOG:-info}" start_bg kube-proxy "$BIN/kube-proxy" --server="127.0.0.1:$API_PORT" \
      --http-listen="127.0.0.1:$PROXY_HTTP_PORT" --cluster-cidr=10.244.0.0/16 --service-cluster-ip-range=10.96.0.0/12
  fi
  wait_for kube-proxy 30 http_ok "$PROXY_HTTP_PORT" /healthz

  if running cluster-dns; then
    say "cluster-dns already running (pid $(pid_of cluster-dns))"
  else
    rm -f "$RUN/cluster-dns.pid"
    port_busy "$DNS_HTTP_PORT" && die "port $DNS_HTTP_PORT is in use by a process that is not ours (set DNS_HTTP_PORT)"
    ensure_bridge
    say "starting cluster-dns on $(gateway_ip):53 (Service kube-system/kube-dns $DNS_SERVICE_IP; no forwarding outside the cluster)"
    RUST_LOG="${RUST_LOG:-info}" start_bg cluster-dns "$BIN/cluster-dns" --server="127.0.0.1:$API_PORT" \
      --http-listen="127.0.0.1:$DNS_HTTP_PORT" --listen="$(gateway_ip):53" --advertise-address="$(gateway_ip)" \
      --service-ip="$DNS_SERVICE_IP" --upstream=''
  fi
  wait_for cluster-dns 30 http_ok "$DNS_HTTP_PORT" /healthz
}

# The bridge's gateway: the first address of the pod CIDR.
gateway_ip() {
  local net="${POD_CIDR%/*}"
  echo "${net%.*}.$(( ${net##*.} + 1 ))"
}

# The pods' bridge with its gateway address, made before the kubelet (the CNI bridge plugin adopts it)
# so cluster-dns can listen there from the start.
ensure_bridge() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr show dev "$BRIDGE" | grep -q " $(gateway_ip)/" || ip addr add "$(gateway_ip)/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# Stops every container the kubelet started and undoes its network setup.
stop_node() {
  stop cluster-dns
  stop kube-proxy
  "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  stop kubelet
  if [ -S "$CTD_SOCK" ] && running containerd; then
    local id
    for id in $(ctr -a "$CTD_SOCK" -n navarch tasks ls -q 2>/dev/null); do ctr -a "$CTD_SOCK" -n navarch tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    sleep 0.5
    for id in $(ctr -a "$CTD_SOCK" -n navarch tasks ls -q 2>/dev/null); do ctr -a "$CTD_SOCK" -n navarch tasks delete -f "$id" >/dev/null 2>&1 || true; done
    for id in $(ctr -a "$CTD_SOCK" -n navarch containers ls -q 2>/dev/null); do
      ctr -a "$CTD_SOCK" -n navarch containers rm "$id" >/dev/null 2>&1 || true
      ctr -a "$CTD_SOCK" -n navarch snapshots rm "$id" >/dev/null 2>&1 || true
    done
  fi
  stop containerd
  local ns
  for ns in "$HOME_DIR"/kubelet/run/netns/*; do [ -e "$ns" ] && { umount -l "$ns" 2>/dev/null || true; rm -f "$ns"; }; done
  { grep -o " $HOME_DIR/[^ ]*" /proc/self/mounts 2>/dev/null || true; } | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$HOME_DIR/kubelet/root/cni" "$HOME_DIR/kubelet/root/pods"
  ip link del "$BRIDGE" 2>/dev/null || true
  nft delete table inet navarch-kubelet 2>/dev/null || true
  ip route del unreachable 10.244.0.0/16 2>/dev/null || true
  ip route del unreachable 10.96.0.0/12 2>/dev/null || true
  stop registry
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

cmd_down() {
  stop_node
  stop controller-manager
  stop scheduler
  stop api-server
  stop etcd
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

cmd_status() {
  printf '%-20s %-10s %-8s %-12s %s\n' COMPONENT STATE PID UPTIME HEALTH
  local name pid health
  for name in etcd api-server scheduler controller-manager containerd registry kubelet kube-proxy cluster-dns; do
    if running "$name"; then
      pid="$(pid_of "$name")"
      case "$name" in
        etcd) etcd_healthy && health="healthy" || health="unhealthy" ;;
        api-server) http_ok "$API_HTTP_PORT" /readyz && health="ready (http://127.0.0.1:$API_HTTP_PORT/metrics)" || health="not ready" ;;
        scheduler) http_ok "$SCHED_HTTP_PORT" /healthz && health="healthy (http://127.0.0.1:$SCHED_HTTP_PORT/metrics)" || health="unhealthy" ;;
        controller-manager) http_ok "$CM_HTTP_PORT" /healthz && health="healthy" || health="unhealthy" ;;
        containerd) [ -S "$CTD_SOCK" ] && health="socket $CTD_SOCK" || health="no socket" ;;
        registry) http_ok "$REGISTRY_PORT" /v2/ && health="serving http://127.0.0.1:$REGISTRY_PORT" || health="unhealthy" ;;
        kubelet) http_ok "$KUBELET_HTTP_PORT" /healthz && health="healthy (node $(hostname))" || health="unhealthy" ;;
        kube-proxy) http_ok "$PROXY_HTTP_PORT" /healthz && health="synced (http://127.0.0.1:$PROXY_HTTP_PORT/metrics)" || health="not synced" ;;
        cluster-dns) http_ok "$DNS_HTTP_PORT" /healthz && health="serving $(gateway_ip):53 as $DNS_SERVICE_IP" || health="not ready" ;;
      esac
      printf '%-20s %-10s %-8s %-12s %s\n' "$name" running "$pid" "$(uptime_of "$pid")" "$health"
    else
      printf '%-20s %-10s %-8s %-12s %s\n' "$name" stopped - - "log: $LOGS/$name.log"
    fi
  done
  local entry
  for entry in "${NOT_YET[@]+"${NOT_YET[@]}"}"; do
    printf '%-20s %-10s %-8s %-12s %s\n' "${entry%%:*}" "-" - - "not implemented yet (issue ${entry##*:})"
  done
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: $0 up|down|status" ;;
esac
