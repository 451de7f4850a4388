#!/usr/bin/env bash
# Role tests in the style of kubespray's molecule scenarios, with systemd-nspawn containers as the driver.
#
#   ansible/tests/roles.sh [-k] [scenario...]     # every scenario (a directory here with converge.yml) by default
#
# Per scenario: create -> converge -> idempotence (a second converge must report changed=0 on every
# host) -> verify -> destroy, each phase timed and reported PASS/FAIL; the first failing phase skips the
# rest but destroy. Exit status: 0 when every scenario passed.
#
# A scenario directory holds
#   hosts.ini    the inventory: one container per host, at its ansible_host (10.251.0.10 and up); the
#                groups say which plays of converge.yml apply, as in ansible/site.yml
#   converge.yml the roles under test (ansible/tests/vars.yml and ansible/group_vars/all.yml loaded per play)
#   verify.yml   assertions, in the containers (and on this host, hosts: localhost)
#   nspawn.args  optional: more systemd-nspawn options, one a line (the worker scenario's capabilities)
#   scenario.conf optional: `writable_cgroups = yes` makes the cgroup v1 controllers writable in the
#                containers after boot (containerd/runc; see create)
#
# The containers boot the Vagrant box's root file system (make vagrant-box writes .navarch/box/rootfs.tar;
# one fresh copy per container) on a bridge of their own, navarch-rt, 10.251.0.1/24 on this host. They
# have no default route: nothing they send leaves the bridge. Everything is removed on exit, failure and
# Ctrl-C included: containers, their root file systems, the bridge and its guard route.
#
# Environment: ROOTFS_TAR (default .navarch/box/rootfs.tar), WORK_DIR (default /var/tmp/navarch-role-tests,
# the containers' root file systems), LOG_DIR (default /tmp/navarch-role-tests-logs, kept after the run:
# ansible's output per phase and each container's console), NAVARCH_BIN_DIR (default target/release),
# VERBOSE=1 (ansible's output on the terminal too), KEEP_ON_FAILURE=1 (wait for Enter before the destroy
# of a failed scenario, to look inside with ssh -i ~/.vagrant.d/insecure_private_key vagrant@10.251.0.x).
# -k: same as KEEP_ON_FAILURE=1.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROOTFS_TAR=${ROOTFS_TAR:-$ROOT/.navarch/box/rootfs.tar}
WORK_DIR=${WORK_DIR:-/var/tmp/navarch-role-tests}
LOG_DIR=${LOG_DIR:-/tmp/navarch-role-tests-logs}
NAVARCH_BIN_DIR=${NAVARCH_BIN_DIR:-$ROOT/target/release}
KEEP_ON_FAILURE=${KEEP_ON_FAILURE:-0}
VERBOSE=${VERBOSE:-0}
BRIDGE=navarch-rt
HOST_ADDR=10.251.0.1/24
# unreachable on this host for the run: the test network, and the cluster's pod and Service ranges
# (this host has no route to the containers' pods: a request to one must be refused, not sent to the
# default gateway). A range already covered (make up running) is left alone.
GUARD_ROUTES=(10.251.0.0/16 10.244.0.0/16 10.96.0.0/12)
GUARDS_ADDED=()
SSH_KEY=${SSH_KEY:-$HOME/.vagrant.d/insecure_private_key}

export ANSIBLE_CONFIG=$ROOT/ansible/ansible.cfg
# ssh's control masters (ControlPersist) of this run in a directory of its own: ended at destroy.
export ANSIBLE_SSH_CONTROL_PATH_DIR=$WORK_DIR/ssh-cp
export ANSIBLE_NOCOLOR=1
export ANSIBLE_RETRY_FILES_ENABLED=0
export ANSIBLE_DEPRECATION_WARNINGS=0
export no_proxy="10.251.0.0/24,${no_proxy:-}" NO_PROXY="10.251.0.0/24,${NO_PROXY:-}"

die() { echo "roles.sh: $*" >&2; exit 2; }
log() { printf '%s\n' "$*"; }

while [ $# -gt 0 ]; do
  case $1 in
    -k) KEEP_ON_FAILURE=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
done

ALL_SCENARIOS=(common etcd control_plane worker)
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=("${ALL_SCENARIOS[@]}")
for s in "${SCENARIOS[@]}"; do
  [ -f "$HERE/$s/converge.yml" ] || die "no scenario '$s' (directories of $HERE with a converge.yml)"
done

[ "$(id -u)" = 0 ] || die "must run as root (systemd-nspawn, bridge)"
for tool in systemd-nspawn ip tar ansible-playbook ansible-inventory python3 ssh; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
[ -f "$ROOTFS_TAR" ] || die "$ROOTFS_TAR not found (make vagrant-box)"
[ -f "$SSH_KEY" ] || die "$SSH_KEY not found (Vagrant's insecure key)"
for b in api-server navarch-pki navctl; do
  [ -x "$NAVARCH_BIN_DIR/$b" ] || die "$NAVARCH_BIN_DIR/$b not found (cargo build --release)"
done
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  die "bridge $BRIDGE exists: another run in progress, or a leftover (ip link del $BRIDGE)"
fi

# ---------------------------------------------------------------------------------------------- cleanup
declare -A PIDS=()      # container name -> systemd-nspawn pid
declare -A ROOTS=()     # container name -> root directory
NET_UP=0

stop_container() {
  local name=$1 pid=${PIDS[$1]:-} i
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    # SIGTERM: systemd-nspawn asks the container's systemd to power off (SIGRTMIN+3).
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "  ($name did not power off in 30 s: SIGKILL)" >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  fi
  unset "PIDS[$name]"
  if [ -n "${ROOTS[$name]:-}" ]; then
    rm -rf --one-file-system "${ROOTS[$name]}"
    unset "ROOTS[$name]"
  fi
}

stop_ssh_masters() {
  local sock
  for sock in "$ANSIBLE_SSH_CONTROL_PATH_DIR"/*; do
    [ -S "$sock" ] && ssh -o ControlPath="$sock" -O exit dummy >/dev/null 2>&1
  done
  rm -rf "$ANSIBLE_SSH_CONTROL_PATH_DIR"
}

destroy_all() {
  local name
  stop_ssh_masters
  for name in "${!PIDS[@]}"; do stop_container "$name"; done
  for name in "${!ROOTS[@]}"; do rm -rf --one-file-system "${ROOTS[$name]}"; unset "ROOTS[$name]"; done
}

net_down() {
  [ "$NET_UP" = 1 ] || return 0
  ip link del "$BRIDGE" 2>/dev/null
  local kept=()
  for r in "${GUARDS_ADDED[@]}"; do ip route del unreachable "$r" 2>/dev/null || kept+=("$r"); done
  GUARDS_ADDED=("${kept[@]}")
  NET_UP=0
}

# cgroups: each container starts in a cgroup of its own, <this script's cgroup>/navarch-role-tests/<machine>,
# in every hierarchy (systemd-nspawn --keep-unit makes payload/ and supervisor/ under the cgroup it
# starts in: without systemd on this host that would be the root, shared by all containers). The
# container's cgroup namespace is rooted there, so what runs inside (runc's pod cgroups) stays below it.
CGROUP_NAME=navarch-role-tests
CGROUP_BASES=()     # /sys/fs/cgroup/<hierarchy><path of this script>/navarch-role-tests
while IFS=: read -r _ ctrls path; do
  case $ctrls in
    '') h=unified ;;
    name=*) h=${ctrls#name=} ;;
    *) h=$ctrls ;;
  esac
  [ -f "/sys/fs/cgroup/$h$path/cgroup.procs" ] || continue
  CGROUP_BASES+=("/sys/fs/cgroup/$h${path%/}/$CGROUP_NAME")
done </proc/self/cgroup
# systemd-nspawn leaves /run/systemd/nspawn (locks/, propagate/) behind: removed at the end if it is ours.
NSPAWN_RUN_DIR_EXISTED=0
[ -e /run/systemd/nspawn ] && NSPAWN_RUN_DIR_EXISTED=1

# Moves the calling (sub)shell into the container's cgroups.
enter_cgroups() {  # machine
  local b d
  for b in "${CGROUP_BASES[@]}"; do
    d=$b/$1
    mkdir -p "$d" || return 1
    if [ -f "$d/cpuset.cpus" ]; then   # cpuset: a new cgroup has no CPUs and no memory nodes to run on
      cat "$b/../cpuset.cpus" >"$b/cpuset.cpus" && cat "$b/../cpuset.mems" >"$b/cpuset.mems" || return 1
      cat "$b/cpuset.cpus" >"$d/cpuset.cpus" && cat "$b/cpuset.mems" >"$d/cpuset.mems" || return 1
    fi
    echo "$BASHPID" >"$d/cgroup.procs" || return 1
  done
}

remove_cgroups() {
  local d rc=0
  for d in "${CGROUP_BASES[@]}"; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    if [ -d "$d" ]; then echo "roles.sh: $d not removed (processes left in it?)" >&2; rc=1; fi
  done
  return $rc
}

# Long commands run in the background and are waited for: `wait` returns at once on Ctrl-C, so the trap
# runs now (a foreground child that catches SIGINT itself, like ansible-playbook, would make bash skip it).
CHILD=""
# setsid: in a process group of its own, which cleanup can end as a whole.
run() {
  setsid "$@" &
  CHILD=$!
  wait "$CHILD"
  local rc=$?
  CHILD=""
  return $rc
}

CLEANED=0
cleanup() {
  [ "$CLEANED" = 1 ] && return
  CLEANED=1
  trap '' INT TERM HUP
  if [ -n "$CHILD" ]; then
    kill -TERM -- "-$CHILD" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$CHILD" 2>/dev/null
    wait "$CHILD" 2>/dev/null
  fi
  destroy_all
  rm -f "$WORK_DIR"/*-admin.kubeconfig
  net_down
  remove_cgroups
  [ "$NSPAWN_RUN_DIR_EXISTED" = 1 ] || rm -rf /run/systemd/nspawn
  rmdir "$WORK_DIR" 2>/dev/null
}
trap cleanup EXIT
# To the original stderr: the trap may run inside a phase, whose output goes to a file.
exec {STDERR}>&2
trap 'echo "roles.sh: interrupted, cleaning up" >&$STDERR; cleanup; exit 130' INT TERM HUP

net_up() {
  NET_UP=1
  for r in "${GUARD_ROUTES[@]}"; do
    [ -n "$(ip route show exact "$r" type unreachable)" ] && continue
    ip route add unreachable "$r" || die "ip route add unreachable $r failed"
    GUARDS_ADDED+=("$r")
  done
  ip link add "$BRIDGE" type bridge || die "ip link add $BRIDGE failed"
  ip addr add "$HOST_ADDR" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# -------------------------------------------------------------------------------------------- phases
# hosts of an inventory: "name address" per line
inventory_hosts() {
  ansible-inventory -i "$1" --list 2>/dev/null | python3 -c '
import json, sys
inv = json.load(sys.stdin)
hv = inv.get("_meta", {}).get("hostvars", {})
for name in sorted(hv):
    print(name, hv[name].get("ansible_host", ""))'
}

create() {    # scenario dir
  local dir=$1 scen name addr root machine all_hosts="" extra=() line
  mapfile -t HOSTS < <(inventory_hosts "$dir/hosts.ini")
  [ ${#HOSTS[@]} -gt 0 ] || { echo "no hosts in $dir/hosts.ini"; return 1; }
  if [ -f "$dir/nspawn.args" ]; then
    while IFS= read -r line; do
      case $line in ''|'#'*) ;; *) extra+=("$line") ;; esac
    done <"$dir/nspawn.args"
  fi
  for line in "${HOSTS[@]}"; do
    read -r name addr <<<"$line"
    all_hosts+="$addr	$name"$'\n'
  done
  scen=$(basename "$dir")
  mkdir -p "$WORK_DIR"
  for line in "${HOSTS[@]}"; do
    read -r name addr <<<"$line"
    case $addr in 10.251.0.*) ;; *) echo "$name: ansible_host $addr not in 10.251.0.0/24"; return 1 ;; esac
    root=$WORK_DIR/$scen-$name
    ROOTS[$name]=$root
    rm -rf --one-file-system "$root"
    mkdir -p "$root"
    echo "  $name ($addr): extracting the root file system"
    run tar -C "$root" --numeric-owner -xpf "$ROOTFS_TAR" || return 1
    echo "$name" >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n%s' \
      "$name" "$all_hosts" >"$root/etc/hosts"
    # The bridge only: no gateway, no name server.
    cat >"$root/etc/network/interfaces" <<EOF
# ansible/tests/roles.sh: the test bridge $BRIDGE only, no default route
auto lo
iface lo inet loopback

auto host0
iface host0 inet static
    address $addr/24
EOF
    echo "# ansible/tests/roles.sh: no name server" >"$root/etc/resolv.conf"
    # Short machine names: the host side of the veth is vb-<name>, at most 15 characters.
    machine=rt-$name
    # setsid: a Ctrl-C on the terminal reaches this script only, which then powers the containers off.
    (
      enter_cgroups "$machine" || { echo "roles.sh: cannot enter the cgroups of $machine"; exit 1; }
      exec setsid systemd-nspawn --register=no --keep-unit --quiet -b -D "$root" \
        --machine="$machine" --hostname="$name" --network-bridge="$BRIDGE" \
        --console=read-only --resolv-conf=off --timezone=off --link-journal=no "${extra[@]}"
    ) </dev/null >"$LOG_DIR/$scen/console-$name.log" 2>&1 &
    PIDS[$name]=$!
  done
  # Up when ansible can log in and become root on every host.
  local deadline=$((SECONDS + 120))
  while :; do
    for name in "${!PIDS[@]}"; do
      kill -0 "${PIDS[$name]}" 2>/dev/null || { echo "$name: systemd-nspawn exited (console-$name.log)"; tail -n 20 "$LOG_DIR/$scen/console-$name.log"; return 1; }
    done
    if run ansible all -i "$dir/hosts.ini" -m ansible.builtin.ping -o >"$LOG_DIR/$scen/create-ping.log" 2>&1; then
      break
    fi
    [ $SECONDS -lt $deadline ] || { echo "not reachable over SSH in 120 s:"; cat "$LOG_DIR/$scen/create-ping.log"; return 1; }
    sleep 2
  done
  if [ -f "$dir/scenario.conf" ] && grep -qx 'writable_cgroups *= *yes' "$dir/scenario.conf"; then
    # systemd-nspawn mounts the cgroup v1 controllers read-only; runc (containerd's pods) makes a cgroup
    # per pod in them. The container's cgroup namespace is rooted at its own cgroup (enter_cgroups), so
    # writable, they still reach no further than that.
    local leader
    for name in "${!PIDS[@]}"; do
      leader=$(cat "/proc/${PIDS[$name]}/task/${PIDS[$name]}/children" 2>/dev/null | awk '{print $1}')
      [ -n "$leader" ] || { echo "$name: no container init under systemd-nspawn ${PIDS[$name]}"; return 1; }
      nsenter -t "$leader" -m sh -ec 'for m in /sys/fs/cgroup/*; do
          case $m in */unified|*/systemd) continue ;; esac
          mountpoint -q "$m" && mount -o remount,bind,rw "$m"
        done' || { echo "$name: cannot make the cgroup controllers writable"; return 1; }
    done
    echo "  cgroup controllers writable in the containers (scenario.conf: writable_cgroups)"
  fi
  echo "  ${#HOSTS[@]} container(s) up: $(for l in "${HOSTS[@]}"; do printf '%s ' "$l"; done)"
}

# The admin's kubeconfig the converge writes on this host (navarch_local_kubeconfig, as make vagrant-up
# does), for verify's navctl: removed by destroy.
local_kubeconfig() { echo "$WORK_DIR/$(basename "$1")-admin.kubeconfig"; }

playbook() {  # scenario dir, playbook, log file
  local cmd=(ansible-playbook -i "$1/hosts.ini" "$1/$2"
             -e "navarch_bin_dir=$NAVARCH_BIN_DIR" -e "navarch_deploy_dir=$ROOT/deploy"
             -e "navarch_local_kubeconfig=$(local_kubeconfig "$1")")
  if [ "$VERBOSE" = 1 ]; then
    run "${cmd[@]}" > >(tee "$3") 2>&1
  else
    run "${cmd[@]}" >"$3" 2>&1
  fi
}

converge() { playbook "$1" converge.yml "$LOG_DIR/$(basename "$1")/converge.log"; }

idempotence() {
  local log=$LOG_DIR/$(basename "$1")/idempotence.log
  playbook "$1" converge.yml "$log" || return 1
  # PLAY RECAP: "host : ok=12 changed=0 unreachable=0 failed=0 ..."
  local bad
  bad=$(sed -n '/^PLAY RECAP/,$p' "$log" | grep -E ' : ok=' | grep -vE 'changed=0 +unreachable=0 +failed=0' || true)
  if [ -n "$bad" ]; then
    echo "  not idempotent:"
    printf '    %s\n' "$bad"
    echo "  changed tasks:"
    grep -B1 -E '^changed: ' "$log" | grep -E '^(TASK|changed)' | sed 's/^/    /'
    return 1
  fi
}

verify() { playbook "$1" verify.yml "$LOG_DIR/$(basename "$1")/verify.log"; }

destroy() { rm -f "$(local_kubeconfig "$1")"; destroy_all; remove_cgroups; }

# Runs one phase: name, function, scenario dir. Prints PASS/FAIL and the duration.
PHASE_FAILED=0
phase() {
  local name=$1 fn=$2 dir=$3 t0=$SECONDS rc out
  out=$(mktemp)
  if [ "$VERBOSE" = 1 ]; then
    # Not a pipeline: the phase must run in this shell (create and destroy keep state in PIDS, ROOTS).
    "$fn" "$dir" > >(tee "$out") 2>&1; rc=$?
  else
    "$fn" "$dir" >"$out" 2>&1; rc=$?
  fi
  local dt=$((SECONDS - t0))
  if [ $rc = 0 ]; then
    printf '  %-12s PASS %5ss\n' "$name" "$dt"
    [ "$VERBOSE" = 1 ] || grep -E '^  [^ ]' "$out" | grep -vE '^  (not idempotent|changed tasks)' | sed 's/^/  /' | head -n 5
  else
    printf '  %-12s FAIL %5ss\n' "$name" "$dt"
    [ "$VERBOSE" = 1 ] || sed 's/^/    | /' "$out"
    local l=$LOG_DIR/$(basename "$dir")/$name.log
    if [ -f "$l" ] && [ "$VERBOSE" != 1 ]; then
      echo "    last lines of $l:"
      grep -vE '^\s*$' "$l" | grep -E 'fatal|FAILED|failed=|msg|assert|Error|error' | tail -n 15 | sed 's/^/    | /'
    fi
    PHASE_FAILED=1
  fi
  rm -f "$out"
  return $rc
}

# ---------------------------------------------------------------------------------------------- main
net_up
declare -A RESULT=() DURATION=()
FAILED=0
for s in "${SCENARIOS[@]}"; do
  dir=$HERE/$s
  rm -rf "${LOG_DIR:?}/$s"
  mkdir -p "$LOG_DIR/$s"
  echo "== scenario $s"
  t0=$SECONDS
  PHASE_FAILED=0
  ok=1
  for p in create converge idempotence verify; do
    phase "$p" "$p" "$dir" || { ok=0; break; }
  done
  if [ $ok = 0 ] && [ "$KEEP_ON_FAILURE" = 1 ]; then
    echo "  containers kept: $(for l in "${HOSTS[@]}"; do printf '%s ' "$l"; done)"
    read -r -p "  Enter to destroy " _ || true
  fi
  phase destroy destroy "$dir" || ok=0
  DURATION[$s]=$((SECONDS - t0))
  if [ $ok = 1 ]; then RESULT[$s]=PASS; else RESULT[$s]=FAIL; FAILED=1; fi
  echo "== scenario $s: ${RESULT[$s]} in ${DURATION[$s]} s (logs: $LOG_DIR/$s)"
done

echo "== summary"
for s in "${SCENARIOS[@]}"; do printf '  %-14s %s %5ss\n' "$s" "${RESULT[$s]}" "${DURATION[$s]}"; done
cleanup

# Nothing of this run may be left on the host.
left=()
ip link show "$BRIDGE" >/dev/null 2>&1 && left+=("bridge $BRIDGE")
for r in "${GUARDS_ADDED[@]}"; do left+=("route unreachable $r"); done
ip -o link | grep -q ' vb-rt-' && left+=("veth vb-rt-*")
ss -tn state established 2>/dev/null | grep -q ' 10\.251\.0\.' && left+=("TCP connections to 10.251.0.x")
for d in "${CGROUP_BASES[@]}"; do [ -d "$d" ] && left+=("cgroup $d"); done
[ -d "$WORK_DIR" ] && left+=("$WORK_DIR")
grep -q " $WORK_DIR" /proc/mounts && left+=("mounts under $WORK_DIR")

pgrep -f "systemd-nspawn .*-D $WORK_DIR/" >/dev/null && left+=("systemd-nspawn processes")
if [ ${#left[@]} -gt 0 ]; then
  echo "roles.sh: left on the host: ${left[*]}" >&2
  FAILED=1
fi
exit $FAILED
