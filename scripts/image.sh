#!/usr/bin/env bash
# Build Berth's container image: FROM scratch, holding the berth binary, the
# shared libraries it links (glibc, libgcc, the loader), the CA
# certificates (for S3 and PostgreSQL over TLS) and an unprivileged user.
# No base image is needed, so it builds without access to any registry.
#
# Usage: scripts/image.sh [--binary PATH] [--tag NAME]
#   --binary  the berth binary to package (default: a fresh release build)
#   --tag     the image name (default: berth:<version>)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=""
tag="berth:$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    *) echo "image: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  cargo build --release -p berth
  binary=target/release/berth
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
rootfs=$context/rootfs
mkdir -p "$context/data" "$rootfs/tmp" "$rootfs/etc/ssl/certs"
chmod 1777 "$rootfs/tmp"
# The binary without its debug information, and every library it links,
# at the path the loader looks for it.
objcopy --strip-debug "$binary" "$rootfs/berth"
ldd "$binary" | awk '/=> \// {print $3} /^[[:space:]]*\// {print $1}' | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
fi
echo "berth:x:65532:65532:berth:/data:/berth" >"$rootfs/etc/passwd"
echo "berth:x:65532:" >"$rootfs/etc/group"

docker build -q -t "$tag" -f docker/Dockerfile "$context" >/dev/null
echo "$tag"
