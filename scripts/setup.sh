#!/usr/bin/env bash
# npm run setup: everything the test suite needs on a fresh Debian/Ubuntu machine.
#   1. the system packages of the real-client tests (the one list of them: PACKAGES below);
#      installed when run as root (apt-get update once, then install, non-interactive),
#      otherwise the exact command to run is printed;
#   2. npm ci (dependencies, TypeScript build, the native cipher addon).
# .ci/run calls this script too. SETUP_SYSTEM_ONLY=1 does step 1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

# libnbd-bin: nbdinfo, nbdcopy, nbdfuse's libnbd; qemu-utils: qemu-img, qemu-io; gnutls-bin: psktool;
# nbdkit (bench and tests); nbdfuse + fuse3: an export as a file, for the filesystem tests; e2fsprogs: mkfs.ext4, fsck.
PACKAGES=(libnbd-bin qemu-utils gnutls-bin nbdkit nbdfuse fuse3 e2fsprogs)

# What each package gives the tests (a package counts as present when its commands are on PATH;
# on Debian 12 nbdfuse ships inside libnbd-bin, later releases split it out).
declare -A TOOLS=([libnbd-bin]="nbdinfo nbdcopy" [qemu-utils]="qemu-img qemu-io" [gnutls-bin]="psktool"
  [nbdkit]="nbdkit" [nbdfuse]="nbdfuse" [fuse3]="fusermount3" [e2fsprogs]="mkfs.ext4 e2fsck")
missing=()
for p in "${PACKAGES[@]}"; do
  for t in ${TOOLS[$p]}; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$t" >/dev/null; then missing+=("$p"); break; fi
  done
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: system packages present: ${PACKAGES[*]}"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${missing[@]}"
else
  {
    echo "setup: the real-client tests need system packages that are not installed: ${missing[*]}"
    echo "setup: run this (as root), then npm run setup again:"
    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${PACKAGES[*]}"
    echo "setup: without them those suites are skipped (and npm test under CI=true fails)."
  } >&2
fi

if [ "${SETUP_SYSTEM_ONLY:-}" != 1 ]; then
  npm ci
fi
