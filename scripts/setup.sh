#!/usr/bin/env bash
# Installs what corefleet needs on a Debian 12 host, only when it is missing:
# system packages (apt) for etcd, QEMU, image building and SSH, and the npm dependencies.
# Safe to run repeatedly: a machine that has everything spends well under a second here.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian package per command we need.
declare -A need=(
  [etcd]=etcd-server [etcdctl]=etcd-client
  [qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils
  [mmdebstrap]=mmdebstrap [mksquashfs]=squashfs-tools
  [mkfs.vfat]=dosfstools [mcopy]=mtools [xorriso]=xorriso
  [sshd]=openssh-server [ssh]=openssh-client [ssh-keygen]=openssh-client
  [ip]=iproute2 [busybox]=busybox-static [cpio]=cpio [zstd]=zstd
  [mkfs.ext4]=e2fsprogs [sfdisk]=fdisk [sgdisk]=gdisk [podman]=podman
  [skopeo]=skopeo [docker-registry]=docker-registry [chromium]=chromium
  [objcopy]=binutils
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${need[$cmd]}")
done
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || [ -f /usr/share/OVMF/OVMF_CODE.fd ] || missing+=(ovmf)
[ -d /usr/lib/systemd/boot/efi ] || missing+=(systemd-boot-efi)

if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "setup: installing Debian packages: ${pkgs[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: cannot install packages: not running as root; run as root or install them: apt-get install ${pkgs[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  echo "setup: packages installed"
fi

# etcd-server's Debian package starts a system etcd on 127.0.0.1:2379 where systemd runs; tests start
# their own on random ports, so nothing here depends on it.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm dependencies (versions from package-lock.json)"
  # `npm install` rather than `npm ci`: with this machine's npm configuration
  # (omit-lockfile-registry-resolved) the lock file leaves out other platforms' optional packages,
  # which `npm ci` then refuses as "not in sync"; `npm install` keeps the locked versions.
  npm install --no-audit --no-fund --loglevel=error
fi
