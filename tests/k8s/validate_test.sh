#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests (no cluster needed):
#  1. deploy/k8s is what `estuary k8s` renders for examples/fashion_mnist_k8s.json
#     (so the checked-in tree never drifts from the renderer);
#  2. kustomize renders every overlay (deploy/k8s and fresh renderings of
#     other shapes), and every object passes tests/k8s/validate.mjs:
#     Kubernetes' schemas (npm kubernetes-models) for core and batch objects,
#     tfjob-v1.schema.json (ajv) + PodTemplateSpec for the TFJob, unknown
#     fields rejected;
#  3. broken manifests fail the check with the expected errors.
# Needs node + tests/k8s/node_modules (`npm ci` in tests/k8s; scripts/setup.sh
# does it) and kustomize or kubectl; bazel-bin/cli/estuary built.
# Usage: tests/k8s/validate_test.sh   (~10 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
estuary=bazel-bin/cli/estuary
# (bazel-bin may point at another config's outputs, e.g. after --config=cuda)
bazel build //cli:estuary >/dev/null 2>&1 || bazel build //cli:estuary
if command -v kustomize >/dev/null; then
  kustomize_build() { kustomize build "$1"; }
else
  kustomize_build() { kubectl kustomize "$1"; }
fi
work=$(mktemp -d /tmp/estuary-k8s-validate.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

# 1. The checked-in tree is the renderer's output.
"$estuary" k8s examples/fashion_mnist_k8s.json --workers 2 --ps 1 --evaluator --name fmnist \
  --data_host_path /usr/share/datasets/fashion-mnist --out_dir "$work/golden" >/dev/null
if diff -r deploy/k8s "$work/golden" >"$work/golden.diff"; then
  ok "deploy/k8s matches estuary k8s"
else
  cat "$work/golden.diff"
  bad "deploy/k8s differs from estuary k8s's output (regenerate: see deploy/README.md)"
fi

# 2. Every overlay renders and validates.
"$estuary" k8s examples/clicks_wide_deep.json --workers 4 --ps 2 --name clicks --namespace ml \
  --image registry.example/estuary:1.0 --storage_class nfs-client --out_dir "$work/clicks" >/dev/null
"$estuary" k8s examples/fashion_mnist_k8s.json --workers 0 --ps 1 --name solo \
  --out_dir "$work/solo" >/dev/null
# Mutual TLS: the Secret of `estuary certs` mounted, httpGet probes.
"$estuary" k8s examples/fashion_mnist_k8s.json --workers 1 --ps 1 --name sec \
  --security_secret sec-security --out_dir "$work/secure" >/dev/null
for tree in deploy/k8s "$work/clicks" "$work/solo" "$work/secure"; do
  for overlay in plain tfjob; do
    if kustomize_build "$tree/overlays/$overlay" >"$work/out.yaml" &&
       node tests/k8s/validate.mjs "$work/out.yaml" >"$work/validate.log"; then
      ok "$tree/overlays/$overlay: $(tail -1 "$work/validate.log")"
    else
      cat "$work/validate.log" || true
      bad "$tree/overlays/$overlay"
    fi
  done
done
# The stdout form (`estuary k8s ... | kubectl apply -f -`) too.
for flag in "" --tfjob; do
  "$estuary" k8s examples/fashion_mnist_k8s.json --workers 2 --ps 2 --evaluator $flag >"$work/stdout.yaml"
  if node tests/k8s/validate.mjs "$work/stdout.yaml" >"$work/validate.log"; then
    ok "estuary k8s $flag (stdout): $(tail -1 "$work/validate.log")"
  else
    cat "$work/validate.log"; bad "estuary k8s $flag (stdout)"
  fi
done

# 3. Broken manifests fail, naming the field.
expect_fail() {  # FILE EXPECTED_LINE...
  local file=$1; shift
  if node tests/k8s/validate.mjs "$file" >"$work/broken.log"; then
    bad "$file passed the check"; return
  fi
  for want in "$@"; do
    grep -qF -- "$want" "$work/broken.log" || { cat "$work/broken.log"; bad "$file: no '$want'"; return; }
  done
  ok "$file fails: $(grep -c . "$work/broken.log") lines"
}
expect_fail tests/k8s/testdata/broken_plain.yaml \
  '(Service b-chief-0): /spec/publishNotReadyAdresses: unknown field "publishNotReadyAdresses"' \
  '(Job b-worker-0): /spec/template/spec/containers/0/imagePullPolicy: must be equal to one of the allowed values (Always, IfNotPresent, Never)' \
  '(Job b-worker-0): /spec/template/spec/containers/0/ports/0/containerPort: must be integer' \
  '(PersistentVolumeClaim b-model-dir): /spec/acessModes: unknown field "acessModes"'
expect_fail tests/k8s/testdata/broken_tfjob.yaml \
  '(TFJob b): /spec/tfReplicaSpecs: property name must be valid "Workers"' \
  '(TFJob b): /spec/runPolicy/cleanPodPolicy: must be equal to one of the allowed values (None, Running, All)' \
  '(TFJob b): /spec/tfReplicaSpecs/Chief/template/spec/containers/0/readinesProbe: unknown field "readinesProbe"' \
  '(TFJob b): /spec/tfReplicaSpecs/PS/template/spec/containers: no container named "tensorflow"'

echo "validate_test: $passed passed, $failed failed"
[ "$failed" = 0 ]
