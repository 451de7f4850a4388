#!/usr/bin/env bash
# Offline test images as OCI image layouts, and pushing them to a (plain HTTP) registry.
#
#   scripts/images.sh build OUTDIR            OUTDIR/busybox         tags latest, 1.36
#                                             OUTDIR/serve-hostname  tags 1.0, 2.0
#                                             OUTDIR/nginx           tags latest, <major.minor> (1.22 on Debian 12)
#                                             OUTDIR/curl            tags latest, <major.minor> (7.88 on Debian 12)
#                                             OUTDIR/redis           tags latest, <major.minor> (7.0 on Debian 12)
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
# curl behaves like curlimages/curl (Entrypoint /entrypoint.sh, Cmd curl, user curl_user as 100:101): Debian's curl
# packaged the same way (busybox's wget cannot talk TLS to the api-server: its ClientHello lacks
# signature_algorithms, which rustls requires).
# redis behaves like the official image for a StatefulSet's database: Entrypoint docker-entrypoint.sh, Cmd
# redis-server, WORKDIR /data, port 6379; run as root, the entrypoint gives /data to user redis (999) and
# starts redis-server as that user (busybox su instead of gosu); arguments that are options or a .conf file
# are redis-server's. The official image builds redis with protected mode off; the entrypoint passes
# --protected-mode no instead (unless the command sets it). Debian's redis-tools has the server binary
# (redis-check-rdb, which is redis-server by argv[0]) and redis-cli.
#
# Only nginx, curl and redis need the network, and only Debian's apt mirror: their .deb files (apt's candidates
# and the library packages they depend on, recursively; ~15 MB) are fetched with `apt-get download` unless
# apt's cache or OUTDIR/debs (kept from the previous build) has them with the right SHA256. The package
# versions are read offline from apt's lists.
#
# Idempotent: `build` skips when OUTDIR/.stamp matches this script, the busybox binary and the Debian
# packages (name, version, SHA256), otherwise it builds into a temporary directory beside OUTDIR and swaps
# it in; `push` overwrites the tags.
# Needs: umoci, skopeo, busybox-static, coreutils (Debian packages, see scripts/deps.sh), and apt/dpkg with
# current package lists (apt-get update) for nginx and curl.
set -euo pipefail

BUSYBOX=${BUSYBOX:-/bin/busybox}
DEBS="" # while building: the directory of the images' .deb files, one subdirectory per image
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

# debian_packages ROOT [EXTRA...]: the Debian packages of an image, one "NAME VERSION FILE SHA256" line each
# (FILE named as apt-get download names it): apt's candidates, read offline from apt's lists, of ROOT, of
# the library packages it depends on (Depends and Pre-Depends, through library packages only: nginx-common's
# iproute2 is not followed), and of the EXTRA packages.
debian_packages() {
  local arch root=$1 names
  arch=$(dpkg --print-architecture)
  shift
  # One apt-cache call for the dependency graph (each call costs about a second), walked breadth-first
  # from ROOT through library packages only.
  names=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
    --no-enhances "$root:$arch" 2>/dev/null | awk -v root="$root" '
      function lib(p) { return p ~ /^(lib|zlib)/ }
      /^[^ ]/ { sub(/:.*/, ""); pkg = $0; next }
      /^ *\|?(Pre)?Depends: / { d = $2; sub(/:.*/, "", d); if (lib(d)) deps[pkg] = deps[pkg] " " d }
      END {
        queue[1] = root; seen[root] = 1; n = 1
        for (i = 1; i <= n; i++) {
          k = split(deps[queue[i]], ds, " ")
          for (j = 1; j <= k; j++) if (!(ds[j] in seen)) { seen[ds[j]] = 1; queue[++n] = ds[j]; print ds[j] }
        }
      }')
  [ -n "$names" ] || { echo "images: apt knows no $root package for $arch (run apt-get update)" >&2; return 1; }
  # One apt-cache call for the candidates' versions and checksums.
  # shellcheck disable=SC2046
  apt-cache show --no-all-versions $(printf '%s:'"$arch"'\n' "$root" $names "$@") 2>/dev/null | awk '
    /^Package:/ {p = $2} /^Version:/ {v = $2} /^Architecture:/ {a = $2} /^SHA256:/ {s = $2}
    /^$/ { if (p != "" && s != "") { f = v; gsub(/:/, "%3a", f); print p, v, p "_" f "_" a ".deb", s }; p = v = a = s = "" }
    END { if (p != "" && s != "") { f = v; gsub(/:/, "%3a", f); print p, v, p "_" f "_" a ".deb", s } }' | sort -u
}

# debian_tags PACKAGES NAME: an image's tags: latest and the upstream major.minor of the Debian version of
# package NAME in PACKAGES (debian_packages lines): nginx 1.22.1-9 -> 1.22, curl 7.88.1-10 -> 7.88.
debian_tags() {
  local v
  v=$(echo "$1" | awk -v name="$2" '$1 == name {print $2}')
  v=${v#*:}
  echo latest "$(echo "$v" | grep -oE '^[0-9]+\.[0-9]+')"
}

sha256_of() { sha256sum <"$1" | cut -d' ' -f1; }

# fetch_debs DIR OLDDIR PACKAGES: the .deb files of PACKAGES (debian_packages lines) into DIR, copied from
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

# install_linked ROOTFS STAGING BINARY...: each BINARY (a path inside STAGING, where the image's .debs are
# extracted) into ROOTFS, with exactly the shared libraries it links, as the packages' own loader resolves
# them among the packages' files only (no host library, no ld.so.cache), copied to the same paths, and the
# loader itself to the binary's PT_INTERP; then the packages' licenses.
install_linked() {
  local r=$1 st=$2 bin loader libpath list so arrow path rest f
  shift 2
  loader=$(find "$st" -type f \( -name 'ld-linux*.so*' -o -name 'ld64.so*' \) | head -n 1)
  [ -n "$loader" ] || { echo "images: no dynamic loader in the packages" >&2; return 1; }
  libpath=$(find "$st" \( -type f -o -type l \) -name '*.so*' -printf '%h\n' | sort -u | paste -sd: -)
  for bin in "$@"; do
    install -D -m 0755 "$st$bin" "$r$bin"
    list=$("$loader" --inhibit-cache --library-path "$libpath" --list "$st$bin") ||
      { echo "images: $bin's libraries are not all in the packages:" >&2; echo "$list" >&2; return 1; }
    while read -r so arrow path rest; do
      [ "$arrow" = "=>" ] || continue
      case "$path" in
        "$loader") install -D -m 0755 "$path" "$r$so" ;;
        "$st"/*) install -D -m 0644 "$path" "$r${path#"$st"}" ;;
        *) echo "images: $bin needs $so, found outside the packages: $path" >&2; return 1 ;;
      esac
    done <<<"$list"
  done
  for f in "$st"/usr/share/doc/*/copyright; do
    install -D -m 0644 "$f" "$r${f#"$st"}"
  done
}

# extract_debs DIR STAGING: every .deb of DIR unpacked into STAGING.
extract_debs() {
  local deb
  mkdir -p "$2"
  for deb in "$1"/*.deb; do dpkg-deb -x "$deb" "$2"; done
}

# image_layer_nginx ROOTFS WORKDIR: nginx, its libraries and loader from the .debs in $DEBS/nginx, config.
image_layer_nginx() {
  local r=$1 st=$2/debs-root
  extract_debs "$DEBS/nginx" "$st"
  install_linked "$r" "$st" /usr/sbin/nginx

  install -D -m 0644 "$st/etc/nginx/mime.types" "$r/etc/nginx/mime.types"
  mkdir -p "$r/etc/nginx/conf.d" "$r/usr/share/nginx/html"
  nginx_conf >"$r/etc/nginx/nginx.conf"
  nginx_default_conf >"$r/etc/nginx/conf.d/default.conf"
  nginx_index >"$r/usr/share/nginx/html/index.html"
  nginx_50x >"$r/usr/share/nginx/html/50x.html"
  nginx_entrypoint >"$r/docker-entrypoint.sh"
  chmod 0755 "$r/docker-entrypoint.sh"
  nsswitch_conf >"$r/etc/nsswitch.conf"
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

nsswitch_conf() {
  printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns'
}

# curl behaves like curlimages/curl: `kubectl run -it --rm c --image=curl -- curl -s URL` or arguments
# alone (`-- -s URL`); runs as curl_user, written 100:101 (the kubelet takes only numeric image users).
# Debian's curl and the libraries it links; no CA bundle (pass --cacert, e.g. the pod's
# /var/run/secrets/kubernetes.io/serviceaccount/ca.crt).
curl_entrypoint() {
  cat <<'EOF'
#!/bin/sh
# navarch curl test image. Like curlimages/curl's entrypoint: arguments that are options (or no command)
# are curl's.
set -e
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "$1")" ]; then
  set -- curl "$@"
fi
exec "$@"
EOF
}

# image_layer_curl ROOTFS WORKDIR: curl, its libraries and loader from the .debs in $DEBS/curl.
image_layer_curl() {
  local r=$1 st=$2/debs-root
  extract_debs "$DEBS/curl" "$st"
  install_linked "$r" "$st" /usr/bin/curl
  curl_entrypoint >"$r/entrypoint.sh"
  chmod 0755 "$r/entrypoint.sh"
  nsswitch_conf >"$r/etc/nsswitch.conf"
  echo 'curl_user:x:100:101:curl_user:/home/curl_user:/bin/sh' >>"$r/etc/passwd"
  echo 'curl_group:x:101:' >>"$r/etc/group"
  install -d -m 0755 -o 100 -g 101 "$r/home/curl_user"
}
tag_layer_curl() { :; }

redis_entrypoint() {
  cat <<'EOF'
#!/bin/sh
# navarch redis test image. Like the official image's entrypoint: options or a .conf file first mean
# redis-server; as root, /data is given to user redis and the server runs as redis.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
  case " $* " in
    *" --protected-mode "*) ;;
    *) set -- "$@" --protected-mode no ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec su -s /bin/sh -c 'exec "$0" "$@"' -- redis "$@"
  fi
fi
exec "$@"
EOF
}

# image_layer_redis ROOTFS WORKDIR: redis-server (as Debian links it: a name of redis-check-rdb) and
# redis-cli, their libraries and loader from the .debs in $DEBS/redis; user redis; /data.
image_layer_redis() {
  local r=$1 st=$2/debs-root
  extract_debs "$DEBS/redis" "$st"
  install_linked "$r" "$st" /usr/bin/redis-check-rdb /usr/bin/redis-cli
  ln -sf redis-check-rdb "$r/usr/bin/redis-server"
  redis_entrypoint >"$r/usr/local/bin/docker-entrypoint.sh"
  chmod 0755 "$r/usr/local/bin/docker-entrypoint.sh"
  nsswitch_conf >"$r/etc/nsswitch.conf"
  echo 'redis:x:999:999:redis:/home/redis:/bin/sh' >>"$r/etc/passwd"
  echo 'redis:x:999:' >>"$r/etc/group"
  install -d -m 0755 -o 999 -g 999 "$r/data" "$r/home/redis"
}
tag_layer_redis() { :; }
tag_config_redis() {
  umoci config --image "$1" --config.entrypoint=docker-entrypoint.sh --clear=config.cmd --config.cmd=redis-server \
    --config.workingdir=/data --config.exposedports=6379/tcp --config.volume=/data \
    --history.created_by="redis $2 (navarch scripts/images.sh)"
}
tag_config_curl() {
  umoci config --image "$1" --config.entrypoint=/entrypoint.sh --clear=config.cmd --config.cmd=curl \
    --config.user=100:101 --config.workingdir=/home/curl_user \
    --history.created_by="curl $2 (navarch scripts/images.sh)"
}

# stamp PACKAGES: the build inputs: this script, the busybox binary and the images' Debian packages.
stamp() {
  sha256sum "$SCRIPT" "$(readlink -f "$BUSYBOX")" | awk '{print $1}' | tr -d '\n'
  echo " $(oci_arch)"
  echo "$1"
}

cmd_build() {
  local out=$1
  need umoci sha256sum apt-cache apt-get dpkg-deb
  [ -x "$BUSYBOX" ] || { echo "images: $BUSYBOX missing (apt install busybox-static)" >&2; exit 1; }
  local nginx_pkgs curl_pkgs redis_pkgs want
  nginx_pkgs=$(debian_packages nginx nginx-common)
  curl_pkgs=$(debian_packages curl)
  redis_pkgs=$(debian_packages redis-tools)
  want=$(stamp "$nginx_pkgs$curl_pkgs$redis_pkgs")
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
  fetch_debs "$tmp/debs/nginx" "$out/debs/nginx" "$nginx_pkgs"
  fetch_debs "$tmp/debs/curl" "$out/debs/curl" "$curl_pkgs"
  fetch_debs "$tmp/debs/redis" "$out/debs/redis" "$redis_pkgs"
  DEBS="$tmp/debs"
  # shellcheck disable=SC2046
  build_image nginx "$tmp/base" "$tmp/nginx" "$tmp/work/nginx" $(debian_tags "$nginx_pkgs" nginx)
  # shellcheck disable=SC2046
  build_image curl "$tmp/base" "$tmp/curl" "$tmp/work/curl" $(debian_tags "$curl_pkgs" curl)
  # shellcheck disable=SC2046
  build_image redis "$tmp/base" "$tmp/redis" "$tmp/work/redis" $(debian_tags "$redis_pkgs" redis-tools)
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
  du -sh "$out"/busybox "$out"/serve-hostname "$out"/nginx "$out"/curl "$out"/redis
}

cmd_push() {
  local out=$1 reg=$2 name tag
  need skopeo
  for name in busybox serve-hostname nginx curl redis; do
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
