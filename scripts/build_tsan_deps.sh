#!/usr/bin/env bash
# Builds the ThreadSanitizer dependencies of `--config=tsan`: Abseil from
# Debian's own source package (the version of the installed libabsl-dev,
# 20220623.1 on Debian 12, with Debian's patches), compiled with
# -fsanitize=thread and installed as static libraries into .tsan/absl
# (git-ignored). Debian's Abseil is not instrumented, so without this every
# absl::Mutex is invisible to TSAN and it reports races that are none.
#
# `--config=tsan` points the @sys repository's pkg-config at
# .tsan/absl/lib/pkgconfig (third_party/pkg_config.bzl): the static,
# instrumented copy is linked into every binary and, since Debian's
# libabsl_*.so carry no symbol versions, it also serves gRPC and Protobuf.
#
# Idempotent: does nothing when .tsan/absl already holds a build of the
# installed version with these flags. Adds a deb-src entry for Debian's
# archive to /etc/apt/sources.list.d if `apt-get source` has none.
#
# Usage: scripts/build_tsan_deps.sh [--jobs N]
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "build_tsan_deps.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

prefix="$root/.tsan/absl"
work="$root/.tsan/src"
flags="-fsanitize=thread -O2 -g -fno-omit-frame-pointer"
version="$(dpkg-query -W -f='${source:Version}' libabsl-dev 2>/dev/null || true)"
if [ -z "$version" ]; then
  echo "build_tsan_deps: libabsl-dev is not installed: run scripts/setup.sh first" >&2
  exit 1
fi
stamp="abseil $version | $flags"
if [ -f "$prefix/.stamp" ] && [ "$(cat "$prefix/.stamp")" = "$stamp" ]; then
  echo "build_tsan_deps: $prefix is up to date ($stamp)"
  exit 0
fi

missing=()
for p in dpkg-dev cmake ninja-build; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "build_tsan_deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! apt-cache showsrc abseil 2>/dev/null | grep -q "^Version: $version\$"; then
  codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
  echo "build_tsan_deps: adding deb-src entries for $codename"
  $sudo tee /etc/apt/sources.list.d/estuary-deb-src.sources >/dev/null <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  $sudo apt-get update -qq
fi

rm -rf "$work" "$prefix"
mkdir -p "$work"
(cd "$work" && apt-get source -qq "abseil=$version" >/dev/null)
src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'abseil-*')"

# Debian's own configuration (debian/rules: C++17, static) plus TSAN.
cmake -S "$src" -B "$work/build" -G Ninja \
  -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_STANDARD=17 \
  -DABSL_PROPAGATE_CXX_STD=ON \
  -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DBUILD_SHARED_LIBS=OFF \
  -DBUILD_TESTING=OFF \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DCMAKE_INSTALL_LIBDIR=lib >/dev/null
ninja -C "$work/build" -j "$jobs" install >/dev/null
echo "$stamp" > "$prefix/.stamp"
rm -rf "$work"
echo "build_tsan_deps: installed $stamp into $prefix"
