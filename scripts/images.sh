#!/usr/bin/env bash
# Offline test images as OCI image layouts, and pushing them to a (plain HTTP) registry.
#
#   scripts/images.sh build OUTDIR            OUTDIR/busybox         tags latest, 1.36
#                                             OUTDIR/serve-hostname  tags 1.0, 2.0
#   scripts/images.sh push OUTDIR REGISTRY    -> REGISTRY/library/<name>:<tag>  (REGISTRY like 127.0.0.1:5000)
#
# Nothing is downloaded: the rootfs is Debian's busybox-static (/bin/busybox) with a symlink in /bin for
# every applet, /etc/passwd, /etc/group, /tmp, /root, /var/www. Each image is a shared base layer plus a
# small layer with /etc/navarch-image-version, so the two tags of an image have different digests.
# serve-hostname (like Kubernetes' serve-hostname test image) answers GET / with its hostname (the pod
# name) and a newline on $PORT (default 9376); 2.0 answers "v2 <hostname>". It exits on SIGTERM.
#
# Idempotent: `build` skips when OUTDIR/.stamp matches this script and the busybox binary, otherwise it
# builds into a temporary directory beside OUTDIR and swaps it in; `push` overwrites the tags.
# Needs: umoci, skopeo, busybox-static, coreutils (Debian packages, see scripts/deps.sh).
set -euo pipefail

BUSYBOX=${BUSYBOX:-/bin/busybox}
SCRIPT="$(readlink -f "${BASH_SOURCE[0]}")"

usage() {
  echo "usage: $0 build OUTDIR | push OUTDIR REGISTRY" >&2
  exit 2
}

need() {
  local c
  for c in "$@"; do
    command -v "$c" >/dev/null 2>&1 || { echo "images: $c not found (run scripts/deps.sh)" >&2; exit 1; }
  done
}

# OCI architecture of this host, from Debian's name for it.
oci_arch() {
  local a
  a=$(dpkg --print-architecture 2>/dev/null || uname -m)
  case "$a" in
    amd64 | x86_64) echo amd64 ;;
    arm64 | aarch64) echo arm64 ;;
    armhf | armel | arm*) echo arm ;;
    i386 | i686) echo 386 ;;
    ppc64el | ppc64le) echo ppc64le ;;
    *) echo "$a" ;;
  esac
}

# umoci (un)pack flags: rootless when not root, so the build also works as a normal user.
UMOCI_ROOTLESS=()
[ "$(id -u)" -eq 0 ] || UMOCI_ROOTLESS=(--rootless)

# The busybox root filesystem, written into directory $1.
make_rootfs() {
  local r=$1 applet
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,var/www,www,proc,sys,dev}
  install -m 0755 "$BUSYBOX" "$r/bin/busybox"
  for applet in $("$BUSYBOX" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$r/bin/$applet"
  done
  install -d -m 1777 "$r/tmp"
  chmod 0700 "$r/root"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
    >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
}

# The serve-hostname entrypoint; $1 is the prefix of the response body ("" or "v2 ").
serve_hostname_script() {
  cat <<EOF
#!/bin/sh
# serve-hostname: answers GET / with "${1}<hostname>" and a newline (the hostname is the pod name).
# httpd runs as a child: as PID 1 busybox httpd would ignore SIGTERM (it installs no handler).
port="\${PORT:-9376}"
mkdir -p /www
printf '%s%s\n' '${1}' "\$(hostname)" >/www/index.html
trap 'kill -TERM "\$pid" 2>/dev/null; wait "\$pid"; exit 0' TERM INT
httpd -f -p "\$port" -h /www &
pid=\$!
echo "serve-hostname ${1}on port \$port as \$(hostname)"
wait "\$pid"
EOF
}

# build_base LAYOUT WORKDIR: a layout whose tag "base" is the busybox rootfs layer plus the common config.
build_base() {
  local layout=$1 work=$2
  umoci init --layout "$layout"
  umoci new --image "$layout:base"
  umoci unpack "${UMOCI_ROOTLESS[@]}" --image "$layout:base" "$work/base"
  make_rootfs "$work/base/rootfs"
  umoci repack --image "$layout:base" "$work/base"
  umoci config --image "$layout:base" \
    --architecture="$(oci_arch)" --os=linux \
    --config.env="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --config.cmd=sh --config.workingdir=/
}

# build_image NAME BASE_LAYOUT LAYOUT WORKDIR TAG...: a copy of the base layout (so every image shares the
# base layer blob) and, per tag, a layer with /etc/navarch-image-version plus what `tag_layer_<name> ROOTFS
# TAG` writes, then the config changes of `tag_config_<name> IMAGE TAG`.
build_image() {
  local name=$1 base=$2 layout=$3 work=$4 tag
  shift 4
  cp -a "$base" "$layout"
  for tag in "$@"; do
    umoci unpack "${UMOCI_ROOTLESS[@]}" --image "$layout:base" "$work/$tag"
    echo "$name:$tag" >"$work/$tag/rootfs/etc/navarch-image-version"
    "tag_layer_$name" "$work/$tag/rootfs" "$tag"
    umoci repack --image "$layout:$tag" "$work/$tag"
    "tag_config_$name" "$layout:$tag" "$tag"
  done
  umoci rm --image "$layout:base"
  umoci gc --layout "$layout"
}

tag_layer_busybox() { :; }
tag_config_busybox() { :; }

tag_layer_serve-hostname() {
  local prefix=""
  [ "$2" = 1.0 ] || prefix="v${2%%.*} "
  serve_hostname_script "$prefix" >"$1/usr/local/bin/serve-hostname"
  chmod 0755 "$1/usr/local/bin/serve-hostname"
}
tag_config_serve-hostname() {
  umoci config --image "$1" --clear=config.cmd --config.entrypoint=/usr/local/bin/serve-hostname \
    --config.exposedports=9376/tcp --config.stopsignal=SIGTERM \
    --history.created_by="serve-hostname $2 (navarch scripts/images.sh)"
}

stamp() {
  # The build inputs: this script and the busybox binary.
  sha256sum "$SCRIPT" "$(readlink -f "$BUSYBOX")" | awk '{print $1}' | tr -d '\n'
  echo " $(oci_arch)"
}

cmd_build() {
  local out=$1
  need umoci sha256sum
  [ -x "$BUSYBOX" ] || { echo "images: $BUSYBOX missing (apt install busybox-static)" >&2; exit 1; }
  if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$(stamp)" ]; then
    echo "images: $out is up to date"
    return
  fi
  mkdir -p "$(dirname "$out")"
  local tmp
  tmp=$(mktemp -d "$out.tmp.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  chmod 0755 "$tmp"
  build_base "$tmp/base" "$tmp/work"
  build_image busybox "$tmp/base" "$tmp/busybox" "$tmp/work/busybox" latest 1.36
  build_image serve-hostname "$tmp/base" "$tmp/serve-hostname" "$tmp/work/serve-hostname" 1.0 2.0
  rm -rf "$tmp/base" "$tmp/work"
  stamp >"$tmp/.stamp"
  # Swap in: a reader sees the old or the new directory (a concurrent build may win; both are complete).
  if [ -e "$out" ]; then
    local old="$out.old.$$"
    mv "$out" "$old"
    mv "$tmp" "$out" || { mv "$old" "$out"; exit 1; }
    rm -rf "$old"
  else
    mv -T "$tmp" "$out"
  fi
  trap - EXIT
  echo "images: built in $out"
  du -sh "$out"/busybox "$out"/serve-hostname
}

cmd_push() {
  local out=$1 reg=$2 name tag
  need skopeo
  for name in busybox serve-hostname; do
    [ -f "$out/$name/index.json" ] || { echo "images: $out/$name missing (run: $0 build $out)" >&2; exit 1; }
    # The tags of the layout, from its index.json (org.opencontainers.image.ref.name annotations).
    for tag in $(grep -o '"org.opencontainers.image.ref.name":"[^"]*"' "$out/$name/index.json" | cut -d'"' -f4); do
      skopeo copy -q --dest-tls-verify=false "oci:$out/$name:$tag" "docker://$reg/library/$name:$tag"
      echo "images: pushed $reg/library/$name:$tag"
    done
  done
}

case "${1:-}" in
  build) [ $# -eq 2 ] || usage; cmd_build "$2" ;;
  push) [ $# -eq 3 ] || usage; cmd_push "$2" "$3" ;;
  *) usage ;;
esac
