#!/usr/bin/env bash
# Offline test images as OCI image layouts, and pushing them to a (plain HTTP) registry.
#
#   scripts/images.sh build OUTDIR            OUTDIR/busybox         tags latest, 1.36
#                                             OUTDIR/serve-hostname  tags 1.0, 2.0
#                                             OUTDIR/nginx           tags latest, <major.minor> (1.22 on Debian 12)
#   scripts/images.sh push OUTDIR REGISTRY    -> REGISTRY/library/<name>:<tag>  (REGISTRY like 127.0.0.1:5000)
#
# The rootfs is Debian's busybox-static (/bin/busybox) with a symlink in /bin for every applet, /etc/passwd,
# /etc/group, /tmp, /root, /var/www. Each image is a shared base layer plus a small layer with
# /etc/navarch-image-version, so the two tags of an image have different digests.
# serve-hostname (like Kubernetes' serve-hostname test image) answers GET / with its hostname (the pod
# name) and a newline on $PORT (default 9376); 2.0 answers "v2 <hostname>". It exits on SIGTERM.
# nginx behaves like the official image for `kubectl run nginx --image=nginx --port=80`: on port 80 it
# serves /usr/share/nginx/html (a "Welcome to nginx!" page), logs to stdout/stderr, stops gracefully on
# SIGQUIT; Cmd nginx -g 'daemon off;' behind /docker-entrypoint.sh, which adds `listen [::]:80` when the
# kernel has IPv6. It has one more shared layer: Debian's nginx binary (nginx package, mime.types from
# nginx-common) and exactly the shared libraries it links plus the dynamic loader, taken from Debian's
# library packages (not the host's files), and the config, users nginx (101) and www-data (33).
#
# Only the nginx image needs the network, and only Debian's apt mirror: its .deb files (apt's candidates,
# ~5.5 MB) are fetched with `apt-get download` unless apt's cache or OUTDIR/debs (kept from the previous
# build) has them with the right SHA256. The package versions are read offline from apt's lists.
#
# Idempotent: `build` skips when OUTDIR/.stamp matches this script, the busybox binary and the nginx
# packages (name, version, SHA256), otherwise it builds into a temporary directory beside OUTDIR and swaps
# it in; `push` overwrites the tags.
# Needs: umoci, skopeo, busybox-static, coreutils (Debian packages, see scripts/deps.sh), and apt/dpkg with
# current package lists (apt-get update) for nginx.
set -euo pipefail

BUSYBOX=${BUSYBOX:-/bin/busybox}
NGINX_DEBS="" # the directory of the nginx image's .deb files, while it is built
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
# base layer blob), then, if the function `image_layer_<name> ROOTFS WORKDIR` exists, one layer with what it
# writes, shared by all the tags, and per tag a layer with /etc/navarch-image-version plus what
# `tag_layer_<name> ROOTFS TAG` writes, then the config changes of `tag_config_<name> IMAGE TAG`.
build_image() {
  local name=$1 base=$2 layout=$3 work=$4 tag
  shift 4
  cp -a "$base" "$layout"
  if declare -F "image_layer_$name" >/dev/null; then
    umoci unpack "${UMOCI_ROOTLESS[@]}" --image "$layout:base" "$work/image"
    "image_layer_$name" "$work/image/rootfs" "$work"
    umoci repack --image "$layout:base" --history.created_by="$name (navarch scripts/images.sh)" "$work/image"
  fi
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

# The Debian packages of the nginx image, one "NAME VERSION FILE SHA256" line each (FILE named as apt-get
# download names it): apt's candidates, read offline from apt's lists, of nginx, nginx-common (mime.types)
# and the library packages nginx depends on.
nginx_packages() {
  local arch deps p info
  arch=$(dpkg --print-architecture)
  deps=$(apt-cache show --no-all-versions "nginx:$arch" 2>/dev/null | sed -n 's/^Depends: //p')
  if [ -z "$deps" ]; then
    echo "images: apt knows no nginx package for $arch (run apt-get update)" >&2
    return 1
  fi
  for p in nginx nginx-common $(echo "$deps" | tr ',' '\n' | sed 's/^ *//; s/[ (|:].*//' | grep -E '^(lib|zlib)' | sort -u); do
    info=$(apt-cache show --no-all-versions "$p:$arch" 2>/dev/null |
      awk '/^Version:/ {v = $2} /^Architecture:/ {a = $2} /^SHA256:/ {s = $2} END {if (v != "" && s != "") print v, a, s}')
    [ -n "$info" ] || { echo "images: apt knows no $p package for $arch (run apt-get update)" >&2; return 1; }
    # shellcheck disable=SC2086
    set -- $info
    echo "$p $1 ${p}_${1//:/%3a}_$2.deb $3"
  done
}

# The nginx image's tags: latest and the upstream major.minor of the Debian nginx version (1.22.1-9 -> 1.22).
nginx_tags() {
  local v
  v=$(echo "$1" | awk '$1 == "nginx" {print $2}')
  v=${v#*:}
  echo latest "$(echo "$v" | grep -oE '^[0-9]+\.[0-9]+')"
}

sha256_of() { sha256sum <"$1" | cut -d' ' -f1; }

# fetch_debs DIR OLDDIR PACKAGES: the .deb files of PACKAGES (nginx_packages lines) into DIR, copied from
# OLDDIR or apt's cache when there with the right SHA256, else downloaded (apt-get download checks them).
fetch_debs() {
  local dir=$1 old=$2 name version file sum f want=()
  mkdir -p "$dir"
  while read -r name version file sum; do
    for f in "$old/$file" "/var/cache/apt/archives/$file"; do
      if [ -f "$f" ] && [ "$(sha256_of "$f")" = "$sum" ]; then
        cp "$f" "$dir/$file"
        break
      fi
    done
    [ -f "$dir/$file" ] || want+=("$name=$version")
  done <<<"$3"
  if [ "${#want[@]}" -gt 0 ]; then
    echo "images: downloading ${want[*]}"
    # As root apt would drop to user _apt, who cannot write DIR.
    (cd "$dir" && apt-get download -q=2 -o APT::Sandbox::User="$(id -un)" "${want[@]}") ||
      { echo "images: apt-get download failed for: ${want[*]}" >&2; return 1; }
  fi
  while read -r name version file sum; do
    if [ ! -f "$dir/$file" ] || [ "$(sha256_of "$dir/$file")" != "$sum" ]; then
      echo "images: $dir/$file missing or not SHA256 $sum" >&2
      return 1
    fi
  done <<<"$3"
}

nginx_conf() {
  cat <<'EOF'
user  nginx;
worker_processes  1;

error_log  stderr notice;
pid        /run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /dev/stdout  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
EOF
}

# "#listen [::]:80;" is enabled by /docker-entrypoint.sh when the kernel has IPv6: a listen on [::] fails
# without it, and then nginx would not start.
nginx_default_conf() {
  cat <<'EOF'
server {
    listen       80;
    #listen  [::]:80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
EOF
}

nginx_index() {
  cat <<'EOF'
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
html { color-scheme: light dark; }
body { width: 35em; margin: 0 auto; font-family: Tahoma, Verdana, Arial, sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and working.
This is the navarch test image: Debian's nginx, served like the official image.</p>
<p><em>Thank you for using nginx.</em></p>
</body>
</html>
EOF
}

nginx_50x() {
  cat <<'EOF'
<!DOCTYPE html>
<html>
<head>
<title>Error</title>
</head>
<body>
<h1>An error occurred.</h1>
<p>Sorry, the page you are looking for is currently unavailable.
Please try again later.</p>
</body>
</html>
EOF
}

nginx_entrypoint() {
  cat <<'EOF'
#!/bin/sh
# navarch nginx test image. Like the official image's entrypoint: when the command is nginx and the kernel
# has IPv6, listen on [::]:80 too (uncomment it in default.conf, if that is still ours); then run the command.
set -e
conf=/etc/nginx/conf.d/default.conf
if [ "$1" = nginx ] && [ -e /proc/net/if_inet6 ] && grep -q '^ *#listen  *\[::\]:80;' "$conf" 2>/dev/null; then
  if sed -i 's/^\( *\)#\(listen  *\[::\]:80;\)/\1\2/' "$conf" 2>/dev/null; then
    echo "$0: enabled listen on IPv6 [::]:80 in $conf"
  else
    echo "$0: cannot write $conf, listening on IPv4 only" >&2
  fi
fi
exec "$@"
EOF
}

# image_layer_nginx ROOTFS WORKDIR: nginx, its libraries and loader from the .debs in $NGINX_DEBS, config.
image_layer_nginx() {
  local r=$1 st=$2/debs-root deb loader libpath list so arrow path rest
  mkdir -p "$st"
  for deb in "$NGINX_DEBS"/*.deb; do dpkg-deb -x "$deb" "$st"; done
  install -D -m 0755 "$st/usr/sbin/nginx" "$r/usr/sbin/nginx"
  # The libraries nginx links, as the packages' own loader resolves them among the packages' files only
  # (no host library, no ld.so.cache), copied to the same paths; the loader itself to nginx's PT_INTERP.
  loader=$(find "$st" -type f \( -name 'ld-linux*.so*' -o -name 'ld64.so*' \) | head -n 1)
  [ -n "$loader" ] || { echo "images: no dynamic loader in the nginx packages" >&2; return 1; }
  libpath=$(find "$st" \( -type f -o -type l \) -name '*.so*' -printf '%h\n' | sort -u | paste -sd: -)
  list=$("$loader" --inhibit-cache --library-path "$libpath" --list "$st/usr/sbin/nginx") ||
    { echo "images: nginx's libraries are not all in the packages:" >&2; echo "$list" >&2; return 1; }
  while read -r so arrow path rest; do
    [ "$arrow" = "=>" ] || continue
    case "$path" in
      "$loader") install -D -m 0755 "$path" "$r$so" ;;
      "$st"/*) install -D -m 0644 "$path" "$r${path#"$st"}" ;;
      *) echo "images: nginx needs $so, found outside the packages: $path" >&2; return 1 ;;
    esac
  done <<<"$list"
  # The packages' licenses.
  for deb in "$st"/usr/share/doc/*/copyright; do
    install -D -m 0644 "$deb" "$r${deb#"$st"}"
  done

  install -D -m 0644 "$st/etc/nginx/mime.types" "$r/etc/nginx/mime.types"
  mkdir -p "$r/etc/nginx/conf.d" "$r/usr/share/nginx/html"
  nginx_conf >"$r/etc/nginx/nginx.conf"
  nginx_default_conf >"$r/etc/nginx/conf.d/default.conf"
  nginx_index >"$r/usr/share/nginx/html/index.html"
  nginx_50x >"$r/usr/share/nginx/html/50x.html"
  nginx_entrypoint >"$r/docker-entrypoint.sh"
  chmod 0755 "$r/docker-entrypoint.sh"
  printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns' >"$r/etc/nsswitch.conf"
  printf '%s\n' 'www-data:x:33:33:www-data:/var/www:/bin/false' \
    'nginx:x:101:101:nginx user:/nonexistent:/bin/false' >>"$r/etc/passwd"
  printf '%s\n' 'www-data:x:33:' 'nginx:x:101:' >>"$r/etc/group"
  # Logs to the container's output also for configs that use Debian's or the official image's paths.
  mkdir -p "$r/var/log/nginx" "$r/var/lib/nginx" "$r/var/cache/nginx" "$r/usr/lib/nginx/modules" "$r/run/lock"
  ln -sf /dev/stdout "$r/var/log/nginx/access.log"
  ln -sf /dev/stderr "$r/var/log/nginx/error.log"
  ln -sfn ../run "$r/var/run"
  ln -sfn ../run/lock "$r/var/lock"
}
tag_layer_nginx() { :; }
tag_config_nginx() {
  umoci config --image "$1" --config.entrypoint=/docker-entrypoint.sh \
    --clear=config.cmd --config.cmd=nginx --config.cmd=-g --config.cmd="daemon off;" \
    --config.exposedports=80/tcp --config.stopsignal=SIGQUIT \
    --history.created_by="nginx $2 (navarch scripts/images.sh)"
}

# stamp NGINX_PACKAGES: the build inputs: this script, the busybox binary and the nginx packages.
stamp() {
  sha256sum "$SCRIPT" "$(readlink -f "$BUSYBOX")" | awk '{print $1}' | tr -d '\n'
  echo " $(oci_arch)"
  echo "$1"
}

cmd_build() {
  local out=$1
  need umoci sha256sum apt-cache apt-get dpkg-deb
  [ -x "$BUSYBOX" ] || { echo "images: $BUSYBOX missing (apt install busybox-static)" >&2; exit 1; }
  local pkgs want
  pkgs=$(nginx_packages)
  want=$(stamp "$pkgs")
  if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$want" ]; then
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
  fetch_debs "$tmp/debs" "$out/debs" "$pkgs"
  NGINX_DEBS="$tmp/debs"
  # shellcheck disable=SC2046
  build_image nginx "$tmp/base" "$tmp/nginx" "$tmp/work/nginx" $(nginx_tags "$pkgs")
  rm -rf "$tmp/base" "$tmp/work"
  echo "$want" >"$tmp/.stamp"
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
  du -sh "$out"/busybox "$out"/serve-hostname "$out"/nginx
}

cmd_push() {
  local out=$1 reg=$2 name tag
  need skopeo
  for name in busybox serve-hostname nginx; do
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
