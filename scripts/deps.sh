#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages navarch needs, only when something is missing (idempotent).
# Used by `make up`, `make deps` and .ci/run.
set -euo pipefail

PACKAGES=(
  etcd-server etcd-client containerd runc containernetworking-plugins nftables iptables iproute2
  busybox-static skopeo umoci docker-registry util-linux protobuf-compiler libprotobuf-dev
  build-essential pkg-config curl ca-certificates openssl
  ansible ansible-lint vagrant vagrant-libvirt   # make vagrant-lint (part of make test): syntax check, lint, vagrant validate
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps: missing packages (${missing[*]}) and not root: run as root or install sudo" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
  echo "deps: apt-get update failed; cannot install ${missing[*]}" >&2
  exit 1
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  echo "deps: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi
# Debian's etcd-server and containerd packages try to start services; we start our own processes.
for p in "${missing[@]}"; do
  case "$p" in
    etcd-server) $SUDO pkill -x etcd 2>/dev/null || true ;;
  esac
done
echo "deps: done"
