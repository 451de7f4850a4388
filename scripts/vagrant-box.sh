#!/usr/bin/env bash
# make vagrant-box: build a Debian 12 Vagrant box for libvirt from Debian's package mirror alone, for
# machines that cannot reach a box catalogue (ours). Equivalent to debian/bookworm64 plus, preinstalled,
# every package the Ansible roles install, so the VMs need no network beyond their private one.
#
#   scripts/vagrant-box.sh [OUT_DIR]        # default .navarch/box; adds the box as navarch/bookworm64
#
# OUT_DIR gets navarch-bookworm64.box and rootfs.tar, the same guest as a root file system tarball
# (the role tests, ansible/tests/roles.sh, boot it in systemd-nspawn containers).
#
# Environment: MIRROR (default http://deb.debian.org/debian), DISK_GIB (default 12),
# BOX_NAME (default navarch/bookworm64).
#
# How: mmdebstrap a root file system, copy it onto an ext4 partition of a raw disk image, boot it with
# extlinux (no GRUB: the partition is reached through an offset loop device, which works on kernels
# without loop partition scanning), convert to qcow2, pack box.img + metadata.json + Vagrantfile.
set -euo pipefail

OUT=${1:-.navarch/box}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DISK_GIB=${DISK_GIB:-12}
BOX_NAME=${BOX_NAME:-navarch/bookworm64}

die() { echo "vagrant-box: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (loop devices, mount, chroot)"
for tool in mmdebstrap sfdisk losetup mkfs.ext4 extlinux qemu-img tar vagrant; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install mmdebstrap fdisk e2fsprogs extlinux syslinux-common qemu-utils vagrant)"
done
MBR=/usr/lib/EXTLINUX/mbr.bin
[ -f "$MBR" ] || die "$MBR not found (apt-get install extlinux)"
KEY=$(find /usr/share/rubygems-integration /opt/vagrant /usr/share/vagrant -path '*keys/vagrant.pub' 2>/dev/null | head -n 1 || true)
[ -n "$KEY" ] || die "Vagrant's insecure public key (keys/vagrant.pub) not found"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/navarch-box.XXXXXX)
ROOTFS="$WORK/rootfs"
MNT="$WORK/disk"
LOOP=""
cleanup() {
  set +e
  mountpoint -q "$MNT" && umount "$MNT"
  [ -n "$LOOP" ] && losetup -d "$LOOP"
  rm -rf "$WORK"
}
trap cleanup EXIT

# Base system, the packages every role installs (so the VMs can be provisioned offline), and what
# Vagrant and Ansible need on a guest (sshd, sudo, ifupdown for private networks, python3-apt).
PACKAGES=(
  linux-image-amd64 systemd-sysv udev dbus openssh-server sudo ifupdown isc-dhcp-client iproute2 kmod
  ca-certificates python3 python3-apt procps less
  etcd-server etcd-client containerd runc containernetworking-plugins nftables iptables docker-registry
)
# Installed but not started at boot: each role enables what its host runs.
DISABLED_UNITS=(etcd containerd docker-registry)

start=$(date +%s)
echo "== mmdebstrap bookworm from $MIRROR"
mmdebstrap --mode=root --variant=important --include="$(IFS=,; echo "${PACKAGES[*]}")" \
  --customize-hook='chroot "$1" systemctl disable '"${DISABLED_UNITS[*]}"' >/dev/null 2>&1 || true' \
  bookworm "$ROOTFS" "$MIRROR" >"$WORK/mmdebstrap.log" 2>&1 || { tail -n 30 "$WORK/mmdebstrap.log" >&2; die "mmdebstrap failed"; }

echo "== guest configuration"
echo "vagrant" >"$ROOTFS/etc/hostname"
# mmdebstrap writes no /etc/hosts; etcd fails to start without a localhost line.
cat >"$ROOTFS/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	vagrant
::1		localhost ip6-localhost ip6-loopback
EOF
cat >"$ROOTFS/etc/network/interfaces" <<'EOF'
# The management interface; Vagrant appends the private network's.
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug eth0
iface eth0 inet dhcp
EOF
chroot "$ROOTFS" useradd --create-home --shell /bin/bash --groups sudo vagrant
echo 'vagrant:vagrant' | chroot "$ROOTFS" chpasswd
echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$ROOTFS/etc/sudoers.d/vagrant"
chmod 0440 "$ROOTFS/etc/sudoers.d/vagrant"
install -d -m 0700 -o 1000 -g 1000 "$ROOTFS/home/vagrant/.ssh"
install -m 0600 -o 1000 -g 1000 "$KEY" "$ROOTFS/home/vagrant/.ssh/authorized_keys"
# No reverse DNS lookups on SSH logins: the private network has no resolver.
echo 'UseDNS no' >"$ROOTFS/etc/ssh/sshd_config.d/vagrant.conf"
# Host keys are made on the guest's first boot, so VMs from the same box do not share them.
rm -f "$ROOTFS"/etc/ssh/ssh_host_*
cat >"$ROOTFS/etc/systemd/system/ssh-host-keys.service" <<'EOF'
[Unit]
Description=Generate SSH host keys on first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
EOF
chroot "$ROOTFS" systemctl enable ssh-host-keys.service >/dev/null 2>&1
# A fresh machine-id per VM (systemd makes one on first boot when the file is empty).
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"

tar -C "$ROOTFS" -cf "$OUT/rootfs.tar" .

IMG="$WORK/disk.raw"
echo "== disk image: ${DISK_GIB} GiB, one bootable ext4 partition from 1 MiB"
truncate -s "${DISK_GIB}G" "$IMG"
echo 'start=2048, type=83, bootable' | sfdisk -q "$IMG"
LOOP=$(losetup --find --show --offset $((2048 * 512)) "$IMG")
# extlinux cannot boot ext4 with 64bit or metadata_csum.
mkfs.ext4 -q -L root -O ^64bit,^metadata_csum "$LOOP"
UUID=$(blkid -s UUID -o value "$LOOP")
mkdir -p "$MNT"
mount "$LOOP" "$MNT"
cp -a "$ROOTFS/." "$MNT/"
rm -rf "$ROOTFS"
echo "UUID=$UUID / ext4 errors=remount-ro 0 1" >"$MNT/etc/fstab"

echo "== bootloader (extlinux)"
mkdir -p "$MNT/boot/extlinux"
cat >"$MNT/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 1
PROMPT 0
LABEL debian
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=$UUID ro console=tty0 console=ttyS0,115200 net.ifnames=0 biosdevname=0
EOF
extlinux --install "$MNT/boot/extlinux" >/dev/null 2>&1
umount "$MNT"
losetup -d "$LOOP"
LOOP=""
dd if="$MBR" of="$IMG" bs=440 count=1 conv=notrunc status=none

echo "== box"
qemu-img convert -f raw -O qcow2 "$IMG" "$WORK/box.img"
rm -f "$IMG"
cat >"$WORK/metadata.json" <<EOF
{"provider": "libvirt", "format": "qcow2", "virtual_size": $DISK_GIB}
EOF
cat >"$WORK/Vagrantfile" <<'EOF'
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
EOF
BOX="$OUT/navarch-bookworm64.box"
tar -C "$WORK" -czf "$BOX" metadata.json Vagrantfile box.img
vagrant box add --force --name "$BOX_NAME" "$BOX" >/dev/null
echo "vagrant-box: $BOX_NAME from $BOX ($(du -h "$BOX" | cut -f1)) in $(($(date +%s) - start)) s"
