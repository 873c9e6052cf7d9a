#!/usr/bin/env bash
# Builds the Estuary container image offline and exports it as an OCI
# archive: FROM scratch with the four role binaries (chief, evaluator,
# worker, ps) and the `estuary` CLI in /usr/local/bin, exactly the shared
# libraries `ldd` lists for them (Debian's gRPC, Protobuf, Abseil, ...,
# glibc and its loader), a minimal /etc (passwd/group with the non-root
# user `estuary`, uid 65532; nsswitch.conf) and /tmp. No shell, no package
# manager, no registry: the role binary is the container's PID 1, so the
# SIGTERM Kubernetes (or `podman stop`) sends reaches it directly (the
# binaries block SIGTERM and read it from a signalfd, which works for PID 1).
#
# Usage: deploy/build_image.sh [--tag estuary:latest] [--out estuary.oci.tar]
#                              [--no-build] [-- BAZEL_FLAGS...]
#   --no-build   use the binaries already in bazel-bin/
#   BAZEL_FLAGS  e.g. --config=x86_64_v3 for an image that runs on any
#                x86-64-v3 machine (the default build is --config=native).
# Prints the image's size and the archive's path. Needs podman (Debian's
# podman 4.3 works; runc or crun).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=estuary:latest
out=estuary.oci.tar
build=1
bazel_flags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --) shift; bazel_flags=("$@"); break ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build_image.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

targets=(//server:chief //server:evaluator //worker //ps //cli:estuary)
binaries=(bazel-bin/server/chief bazel-bin/server/evaluator bazel-bin/worker/worker
          bazel-bin/ps/ps bazel-bin/cli/estuary)
if [ "$build" = 1 ]; then
  bazel build "${bazel_flags[@]}" "${targets[@]}"
fi

ctx=$(mktemp -d /tmp/estuary-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
root=$ctx/rootfs
mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/home/estuary"
chmod 1777 "$root/tmp"

for b in "${binaries[@]}"; do
  # Bazel's outputs are read-only; strip a writable copy.
  install -m 0755 "$b" "$root/usr/local/bin/"
  strip --strip-unneeded "$root/usr/local/bin/$(basename "$b")"
done

# Exactly the shared libraries ldd lists (the loader included), each at the
# path ldd resolved it to (with /lib -> /usr/lib merged, both spellings of
# the path would work; keep the one the binary asked for).
libs=$(for b in "${binaries[@]}"; do ldd "$b"; done |
       awk '/=> \// {print $3} /^[ \t]*\/[^ ]*ld-linux/ {print $1}' | sort -u)
if missing=$(for b in "${binaries[@]}"; do ldd "$b"; done | grep "not found"); then
  echo "build_image.sh: a shared library is missing: $missing" >&2
  exit 1
fi
for lib in $libs; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
estuary:x:65532:65532:estuary:/home/estuary:/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
estuary:x:65532:
GROUP
echo "hosts: files dns" > "$root/etc/nsswitch.conf"
chown 65532:65532 "$root/home/estuary" 2>/dev/null || true  # rootless: owned by the mapped root

cp deploy/Containerfile "$ctx/Containerfile"

old_id=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
podman build --quiet -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
new_id=$(podman image inspect --format '{{.Id}}' "$tag")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  podman rmi "$old_id" >/dev/null 2>&1 || true  # the image this tag replaced
fi
rm -f "$out"
podman save --quiet --format oci-archive -o "$out" "$tag"
size=$(podman image inspect --format '{{.Size}}' "$tag")
gz=$(gzip -1 -c "$out" | wc -c)
echo "image $tag: $((size / 1024 / 1024)) MiB ($size bytes) unpacked;" \
     "OCI archive $out: $(($(stat -c %s "$out") / 1024 / 1024)) MiB, $((gz / 1024 / 1024)) MiB gzipped"
