#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for Estuary and builds it:
#   - Debian packages: Bazel 4.2, gRPC 1.51, Protobuf 3.21, Abseil, Eigen,
#     spdlog, nlohmann-json, GoogleTest, Google Benchmark, FarmHash;
#   - CUDA 13 + NCCL wheels from PyPI into .venv-cuda (for --config=cuda);
#   - TensorFlow 2.15 from PyPI into .venv-tf: the test oracle of the
#     compatibility tests and benchmarks (never used by the product), with
#     onnx + onnxruntime (the ONNX export's test: scripts/requirements-tf.txt);
#   - Fashion-MNIST (Debian's dataset-fashion-mnist);
#   - podman + runc + catatonit (the container image and the podman
#     multi-pod test), node/npm packages and kustomize v5.5.0 (tests/k8s);
#   - `bazel build //...`.
# Idempotent: packages already present are not reinstalled.
#
# With --bench it also installs the benchmarks' peers: Debian's python3-torch
# and OpenBLAS (bench/train_bench.py preloads it; torch's default BLAS is
# the slow reference one), Open MPI and iperf3 (bench/allreduce_bench.py's
# MPI_Allreduce peer and TCP limit), and PyTorch 2.x from PyPI (MKL,
# oneDNN) into .venv-torch (scripts/requirements-torch.txt). The PyPI
# wheel is the CUDA build: it does not import without its nvidia-* libraries
# (libcudart, cuBLASLt, ... are loaded at import), so they come too,
# ~5.4 GB; the benchmark runs it CPU-only (CUDA_VISIBLE_DEVICES="").
#
# It writes user.bazelrc (git-ignored) to build for this machine's CPU
# (--config=native); --portable writes --config=x86_64_v3 instead.
#
# With --tsan it also builds the dependencies of --config=tsan: Abseil from
# Debian's source package with -fsanitize=thread, into .tsan/absl
# (scripts/build_tsan_deps.sh; ~10 min on 2 cores, once).
#
# Usage: scripts/setup.sh [--no-cuda] [--no-tf] [--no-build] [--bench] [--portable] [--tsan]
set -euo pipefail
cd "$(dirname "$0")/.."

cuda=1
tf=1
build=1
bench=0
portable=0
tsan=0
for arg in "$@"; do
  case "$arg" in
    --no-cuda) cuda=0 ;;
    --no-tf) tf=0 ;;
    --no-build) build=0 ;;
    --bench) bench=1 ;;
    --portable) portable=1 ;;
    --tsan) tsan=1 ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

packages=(
  bazel-bootstrap g++ pkg-config python3-venv
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  libabsl-dev libeigen3-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libfarmhash-dev
  libssl-dev zlib1g-dev libc-ares-dev libre2-dev libcpp-httplib-dev
  dataset-fashion-mnist
  podman runc catatonit python3-yaml  # deploy/build_image.sh, tests/k8s (issue 12)
  libleveldb-dev  # the .index tables of TF checkpoints (common/tf_bundle/)
  chromium  # tests/status_page_test: the live status page in headless Chromium
  prometheus-cpp-dev prometheus  # Prometheus metrics (common/metrics.h); promtool for tests
  clang-14 libclang-rt-14-dev  # --config=fuzz: libFuzzer + ASan (scripts/fuzz.sh, fuzz/)
)
if [ "$bench" = 1 ]; then packages+=(python3-torch python3-numpy libopenblas0-pthread hyperfine
                                  openmpi-bin libopenmpi-dev iperf3); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$cuda" = 1 ]; then
  if [ ! -x .venv-cuda/bin/pip ]; then python3 -m venv .venv-cuda; fi
  .venv-cuda/bin/pip install -q --disable-pip-version-check -r scripts/requirements-cuda.txt
fi

if [ "$tf" = 1 ]; then
  if [ ! -x .venv-tf/bin/pip ]; then python3 -m venv .venv-tf; fi
  .venv-tf/bin/pip install -q --disable-pip-version-check -r scripts/requirements-tf.txt
  # TF Serving's Python client stubs (tests/serving_test.py). Without its
  # dependencies: it asks for the full `tensorflow` wheel, while the stubs
  # need only the protos tensorflow-cpu already ships.
  .venv-tf/bin/pip install -q --disable-pip-version-check --no-deps "tensorflow-serving-api==2.15.*"
fi

if [ "$bench" = 1 ]; then
  if [ ! -x .venv-torch/bin/pip ]; then /usr/bin/python3 -m venv .venv-torch; fi
  .venv-torch/bin/pip install -q --disable-pip-version-check -r scripts/requirements-torch.txt
fi

# tests/k8s: the schema checker's npm packages (pinned by package-lock.json)
# and kustomize (pinned; from the Go module proxy, as Debian 12's
# kubernetes-client is 1.20 with a kustomize too old for these manifests).
# This machine kind ships Node.js with npm; Debian's are the fallback.
if ! command -v npm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm
fi
(cd tests/k8s && npm ci --no-audit --no-fund --loglevel=error)
if ! command -v kustomize >/dev/null; then
  if command -v go >/dev/null || [ -x /usr/local/go/bin/go ]; then
    GOBIN=/usr/local/bin PATH="$PATH:/usr/local/go/bin" \
      go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
  else
    echo "setup: no Go toolchain: install kustomize v5 by hand for tests/k8s" >&2
  fi
fi

if [ "$portable" = 1 ]; then
  echo "build --config=x86_64_v3" > user.bazelrc
else
  echo "build --config=native" > user.bazelrc
fi

if [ "$tsan" = 1 ]; then
  scripts/build_tsan_deps.sh
fi

if [ "$build" = 1 ]; then
  bazel build //...
fi
echo "setup: done"
