#!/usr/bin/env bash
# Builds the emulated arm64 board for the VM tests from Debian packages only, into a cache
# directory outside the repository, and does nothing when the cache is current:
#   base.ext4   a 1 GiB ext4 root filesystem (sparse): Debian 12 arm64 from mmdebstrap
#               (systemd, udev, mosquitto) with the overlay in tests/vm/guest
#   vmlinuz     Debian's arm64 kernel, taken from its package on the host
#   initrd.gz   a busybox initramfs that loads virtio PCI/block and ext4, mounts /dev/vda
#               and switches to the root filesystem's /sbin/init
# The kernel package is never installed in the rootfs (its initramfs hook takes over 25
# minutes under user-mode emulation); its modules are copied in and indexed with depmod.
#   build-image.sh CACHE_DIR
# EDGEGW_VM_MIRROR overrides the Debian mirror. Needs root, mmdebstrap, qemu-user-static
# with binfmt_misc (scripts/setup), kmod and cpio. docs/BOARD-VM.md has the whole recipe.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=$1
mirror=${EDGEGW_VM_MIRROR:-http://deb.debian.org/debian}
packages=systemd-sysv,udev,kmod,mosquitto,procps,adduser,init-system-helpers

# The kernel's module list for the initramfs (in load order, dependencies first) and for
# the root filesystem (udev loads virtio_console for the virtio-serial ports).
initrd_modules="virtio_pci virtio_blk ext4"
rootfs_modules="$initrd_modules virtio_console"

kernel_pkg=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
kernel_pkg=${kernel_pkg%:arm64}
[ -n "$kernel_pkg" ] || { echo "build-image: no linux-image-arm64:arm64 in apt's lists (dpkg --add-architecture arm64; apt-get update)" >&2; exit 1; }
kver=${kernel_pkg#linux-image-}

stamp=$( (cat "$0"; echo "$kernel_pkg $packages $mirror"; cd "$here/guest" && find . -type f | sort | xargs cat) | sha256sum | cut -c1-16)
if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$stamp" ] &&
   [ -f "$cache/base.ext4" ] && [ -f "$cache/vmlinuz" ] && [ -f "$cache/initrd.gz" ]; then
  echo "build-image: cached in $cache (recipe $stamp)"
  exit 0
fi

for tool in mmdebstrap mke2fs depmod modprobe cpio; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is missing (scripts/setup installs it)" >&2; exit 1; }
done
if ! [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  echo "build-image: arm64 binaries do not run here: binfmt_misc has no qemu-aarch64 (scripts/setup)" >&2
  exit 1
fi

start=$(date +%s)
mkdir -p "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

echo "build-image: mmdebstrap arm64 bookworm ($packages)"
mmdebstrap --quiet --arch=arm64 --variant=apt --include="$packages" bookworm "$root" "deb $mirror bookworm main"

echo "build-image: kernel $kernel_pkg and busybox-static:arm64"
(cd "$work" && chmod 777 . && apt-get download -q "$kernel_pkg:arm64" busybox-static:arm64 >/dev/null)
dpkg-deb -x "$work"/linux-image-*_arm64.deb "$work/kernel"
dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/busybox"
depmod -b "$work/kernel" "$kver"
mods=$work/kernel/lib/modules/$kver
closure() { for m in "$@"; do modprobe -d "$work/kernel" -S "$kver" --show-depends "$m"; done |
            awk '$1 == "insmod" && !seen[$2]++ {print $2}'; }

# The root filesystem: the modules udev needs, the test overlay, quiet timers.
for ko in $(closure $rootfs_modules); do
  install -D -m 0644 "$ko" "$root/lib/modules/$kver/${ko#"$mods"/}"
done
cp "$mods"/modules.order "$mods"/modules.builtin* "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"
cp -a "$here/guest/." "$root/"
mkdir -p "$root/vm" "$root/etc/systemd/system/multi-user.target.wants"
for unit in vm-ctl.service vm-vport@upstream.service vm-vport@local.service vm-vport@sensor.service; do
  ln -sf "/etc/systemd/system/${unit/@*./@.}" "$root/etc/systemd/system/multi-user.target.wants/$unit"
done
for timer in apt-daily apt-daily-upgrade dpkg-db-backup fstrim e2scrub_all; do  # nothing else on the 2 emulated cores
  ln -sf /dev/null "$root/etc/systemd/system/$timer.timer"
done

# The initramfs: busybox, the modules, and an init that mounts the disk and switches to it.
ird=$work/initramfs
mkdir -p "$ird/bin" "$ird/lib/modules"
cp "$work/busybox/bin/busybox" "$ird/bin/"
for ko in $(closure $initrd_modules); do
  cp "$ko" "$ird/lib/modules/"
  basename "$ko" >>"$ird/lib/modules/order"
done
cat >"$ird/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /dev /newroot
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m || echo "initramfs: cannot load $m"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; exec sh; }
umount /proc
exec switch_root /newroot /sbin/init
EOF
chmod 755 "$ird/init"
(cd "$ird" && find . | cpio --quiet -o -H newc | gzip -1) >"$work/initrd.gz"

mke2fs -q -F -t ext4 -L board -d "$root" "$work/base.ext4" 1G
mv "$work/base.ext4" "$work/initrd.gz" "$cache/"
cp "$work/kernel/boot/vmlinuz-$kver" "$cache/vmlinuz"
echo "$stamp" >"$cache/stamp"
echo "build-image: built in $(($(date +%s) - start)) s: $cache (kernel $kver, recipe $stamp, rootfs $(du -sh "$root" | cut -f1))"
