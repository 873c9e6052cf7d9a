#!/usr/bin/env bash
# The Kubernetes manifests, run for real on this machine with podman:
# builds the image (deploy/build_image.sh), renders the plain-Kubernetes
# manifests for examples/fashion_mnist_k8s.json with `estuary k8s` (chief,
# 2 workers, 1 ps, evaluator), renders them with kustomize, and plays them
# with `podman kube play` (tests/k8s/podman_pods.py: Jobs -> their pods,
# Services -> hostAliases for TFJob's `<job>-<type>-<i>.<ns>.svc` names).
#   run 1: the job trains to max_steps on the shared volume (the PVC: a
#          podman named volume), every pod exits 0 without a restart, and the
#          trained model evaluates in one process (`estuary evaluate`);
#   run 2: the same, with worker 1's process killed (SIGKILL) mid-run: podman's
#          restart policy (the pods' restartPolicy: OnFailure) restarts it, it
#          rejoins (the chief logs its new incarnation), and the job ends as in
#          run 1;
#   run 3: SIGTERM (`podman stop`, what the kubelet sends on preemption) to
#          worker 1's PID 1 mid-run: it leaves at once and exits 143 (the
#          pods run with --on_sigterm=preempt; Kubernetes would replace the
#          pod, podman leaves a stopped container down), and the others
#          finish the job and exit 0;
#   run 4: SIGTERM to the chief mid-run: it saves a checkpoint and exits 143
#          within the grace period; every other task exits 1 and podman
#          restarts it; the chief's container is started again (as the Job
#          controller would replace its pod); the new chief resumes from that
#          checkpoint and every pod ends with exit 0;
#   run 5: run 1 with the TFJob overlay, its pods made as Kubeflow's
#          training operator makes them (podman_pods.py: one pod per
#          replica, TF_CONFIG injected into the container `tensorflow`).
# Prints timings (image size, pod start-up to the start barrier, job wall
# time) for bench/RESULTS.md.
#
# Needs root, podman (Debian's 4.3: runc + catatonit), python3-yaml and
# kubectl or kustomize (scripts/setup.sh --k8s installs them). runc refuses
# the machine's high rlimits, so the test uses its own CONTAINERS_CONF with
# lowered default ulimits. Leaves nothing behind (pods, volumes, network).
#
# Usage: tests/k8s/podman_test.sh [--no-build] [clean|kill|term|preempt|tfjob...]
#   (all five: ~2.5 min once built)
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

build_flag=()
if [ "${1:-}" = "--no-build" ]; then build_flag=(--no-build); shift; fi
runs=("$@")  # a subset of: clean kill term preempt tfjob (default: all)
[ ${#runs[@]} -gt 0 ] || runs=(clean kill term preempt tfjob)

work=$(mktemp -d /tmp/estuary-k8s-test.XXXXXX)
export CONTAINERS_CONF=$work/containers.conf
cat > "$CONTAINERS_CONF" <<'CONF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
network=estuary-k8s-test
subnet_prefix=10.89.231
plays=()
volumes=()
cleanup() {
  for p in "${plays[@]}"; do podman kube down "$p" >/dev/null 2>&1 || true; done
  for v in "${volumes[@]}"; do
    podman volume ls -q | grep "^$v-" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  done
  podman network rm -f "$network" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() { echo "podman_test: FAIL: $*" >&2; exit 1; }
now() { date +%s.%N; }
# Seconds between two `date +%s.%N` stamps.
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

if command -v kustomize >/dev/null; then
  kustomize_build() { kustomize build "$1"; }
else
  kustomize_build() { kubectl kustomize "$1"; }
fi

echo "== image"
image_line=$(deploy/build_image.sh "${build_flag[@]}" --tag localhost/estuary:test \
             --out "$work/estuary.oci.tar")
echo "$image_line"
estuary=$repo/bazel-bin/cli/estuary

podman network rm -f "$network" >/dev/null 2>&1 || true
podman network create --subnet "$subnet_prefix.0/24" "$network" >/dev/null

# run NAME JOB.json KILL: plays the job's pods, waits for every container to
# exit, checks exit codes, evaluates. KILL: none | sigkill-worker | sigterm-worker |
# sigterm-chief.
run() {
  local name=$1 job=$2 mode=$3 overlay=${4:-plain}
  local dir=$work/$name
  mkdir -p "$dir"
  "$estuary" k8s "$job" --workers 2 --ps 1 --evaluator --name "$name" \
    --image localhost/estuary:test --data_host_path /usr/share/datasets/fashion-mnist \
    --out_dir "$dir/k8s" >/dev/null
  kustomize_build "$dir/k8s/overlays/$overlay" > "$dir/rendered.yaml"
  local ips
  ips=$(python3 tests/k8s/podman_pods.py "$dir/rendered.yaml" "$dir/play.yaml" "$subnet_prefix.10")
  local volume=$name-model-dir
  podman volume create "$volume" >/dev/null
  volumes+=("$name")  # every volume of this run: the PVC's, the pods' emptyDirs
  local mountpoint
  mountpoint=$(podman volume inspect -f '{{.Mountpoint}}' "$volume")
  chown 65532:65532 "$mountpoint"  # what fsGroup does for a real PVC
  plays+=("$dir/play.yaml")
  local t0 t_up t_end
  t0=$(now)
  # From a folder without files named like images (kube play would build them).
  (cd "$dir" && podman kube play --network "$network" $ips play.yaml >/dev/null)
  t_up=$(now)
  local tasks=(chief-0 worker-0 worker-1 ps-0 evaluator-0)
  local containers=()
  for t in "${tasks[@]}"; do containers+=("$name-$t-tensorflow"); done
  local chief=$name-chief-0-tensorflow victim=$name-worker-1-tensorflow

  if [ "$mode" != none ]; then
    # Mid-run: once the chief has logged step 500 (of 2000).
    local deadline=$((SECONDS + 300))
    until podman logs "$chief" 2>&1 | grep -qE "step = ([5-9][0-9]{2}|1[0-9]{3})\b"; do
      [ $SECONDS -lt $deadline ] || fail "$name: the chief never reached step 500"
      podman logs "$chief" 2>&1 | grep -q "training finished" && fail "$name: finished before the fault"
      sleep 0.2
    done
    if [ "$mode" = sigkill-worker ]; then
      local pid
      pid=$(podman inspect -f '{{.State.Pid}}' "$victim")
      echo "$name: kill -9 worker 1 (pid $pid) at $(podman logs "$chief" 2>&1 | grep -oE 'step = [0-9]+' | tail -1)"
      kill -9 "$pid"
    elif [ "$mode" = sigterm-worker ]; then
      echo "$name: podman stop (SIGTERM) worker 1 at $(podman logs "$chief" 2>&1 | grep -oE 'step = [0-9]+' | tail -1)"
      podman stop -t 60 "$victim" >/dev/null
    else
      echo "$name: podman stop (SIGTERM) the chief at $(podman logs "$chief" 2>&1 | grep -oE 'step = [0-9]+' | tail -1)"
      local t_term t_gone
      t_term=$(now)
      podman stop -t 60 "$chief" >/dev/null
      t_gone=$(now)
      local code
      code=$(podman inspect -f '{{.State.ExitCode}}' "$chief")
      podman logs "$chief" > "$dir/chief-preempted.log" 2>&1
      [ "$code" = 143 ] || { tail -20 "$dir/chief-preempted.log"; fail "$name: the preempted chief exited $code, not 143"; }
      grep -q "preempted: saved checkpoint" "$dir/chief-preempted.log" ||
        { tail -20 "$dir/chief-preempted.log"; fail "$name: the preempted chief saved no checkpoint"; }
      echo "$name: chief exited 143 $(elapsed "$t_term" "$t_gone") s after SIGTERM:" \
           "$(grep -o 'preempted: saved checkpoint.*' "$dir/chief-preempted.log")"
      podman start "$chief" >/dev/null  # the Job controller's new pod
    fi
  fi

  # Every container exits; with restartPolicy OnFailure an exit 0 stays down.
  local deadline=$((SECONDS + 600))
  while :; do
    local running=0
    for c in "${containers[@]}"; do
      [ "$(podman inspect -f '{{.State.Status}}' "$c")" = exited ] || running=1
    done
    [ $running = 0 ] && break
    [ $SECONDS -lt $deadline ] || { podman logs "$chief" | tail -30; fail "$name: pods still running after 600 s"; }
    sleep 0.5
  done
  t_end=$(now)

  for c in "${containers[@]}"; do
    local code restarts
    code=$(podman inspect -f '{{.State.ExitCode}}' "$c")
    restarts=$(podman inspect -f '{{.RestartCount}}' "$c")
    echo "$name: $c exit $code, restarts $restarts"
    local want=0
    [ "$c" = "$victim" ] && [ "$mode" = sigterm-worker ] && want=143
    [ "$code" = "$want" ] || { podman logs "$c" 2>&1 | tail -20; fail "$name: $c exited $code, not $want"; }
    if [ "$c" = "$victim" ] && [ "$mode" = sigkill-worker ]; then
      [ "$restarts" -ge 1 ] || fail "$name: podman did not restart the killed worker"
    elif [ "$mode" = sigterm-chief ] && [ "$c" != "$chief" ]; then
      [ "$restarts" -ge 1 ] || fail "$name: $c was not restarted after the chief's preemption"
    elif [ "$restarts" != 0 ]; then
      podman logs "$c" 2>&1 | tail -20
      fail "$name: $c restarted $restarts times"
    fi
  done
  local log=$dir/chief.log
  podman logs "$chief" > "$log" 2>&1
  grep -q "training finished: final checkpoint at global_step" "$log" || fail "$name: no final checkpoint"
  grep -q "every task has left" "$log" || fail "$name: not every task left"
  if [ "$mode" = sigkill-worker ]; then
    grep -q "task worker:1 restarted: incarnation" "$log" || fail "$name: no rejoin logged"
    podman logs "$victim" 2>&1 | grep -c "registered with chief:0" | grep -qv '^1$' ||
      fail "$name: worker 1 registered only once"
  fi
  if [ "$mode" = sigterm-worker ]; then
    podman logs "$victim" 2>&1 | grep -q "preempted by signal 15: exiting 143" ||
      fail "$name: worker 1 did not see SIGTERM"
  fi
  if [ "$mode" = sigterm-chief ]; then
    # The new chief resumed from the preemption checkpoint's step.
    local saved
    saved=$(grep -oE 'preempted: saved checkpoint .*model.ckpt-[0-9]+' "$dir/chief-preempted.log" | grep -oE '[0-9]+$')
    grep -qE "initialized 1 ps tasks with .* at global_step $saved " "$log" ||
      { grep "initialized" "$log"; fail "$name: the new chief did not resume from step $saved"; }
    echo "$name: the new chief resumed from global_step $saved"
  fi
  podman logs "$name-evaluator-0-tensorflow" 2>&1 | grep "saving dict for global step" | tail -1

  # The trained model, evaluated in one process from the shared volume.
  python3 - "$dir/k8s/base/job.json" "$mountpoint" "$dir/local_job.json" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))
job["model_dir"] = job["model_dir"].replace("/estuary", sys.argv[2], 1)
json.dump(job, open(sys.argv[3], "w"))
PY
  local eval_out
  eval_out=$("$estuary" evaluate "$dir/local_job.json" 2>&1) || { echo "$eval_out"; fail "$name: estuary evaluate failed"; }
  local accuracy
  accuracy=$(echo "$eval_out" | grep -oE "accuracy = [0-9.]+" | tail -1 | awk '{print $3}')
  echo "$name: estuary evaluate: accuracy = $accuracy"
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.80 else 1)" "$accuracy" ||
    fail "$name: accuracy $accuracy < 0.80"

  local ready_ms
  ready_ms=$(grep -oE "passed the start barrier [0-9]+ ms after the chief started" "$log" | grep -oE "[0-9]+ ms" | head -1)
  # The chief's log stamps (UTC) against kube play's start.
  python3 - "$log" "$t0" "$t_up" "$t_end" "$ready_ms" "$name" <<'PY'
import datetime, re, sys
log, t0, t_up, t_end, ready_ms, name = sys.argv[1:]
t0, t_up, t_end = float(t0), float(t_up), float(t_end)
def stamp(pattern):
    for line in open(log):
        if re.search(pattern, line):
            d = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
            return d.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None
ready = stamp("cluster ready:")
done = stamp("training finished: final checkpoint")
print(f"{name}: kube play returned after {t_up - t0:.1f} s; start barrier passed "
      f"{ready - t0:.1f} s after kube play started ({ready_ms} after the chief's process "
      f"started); training {done - ready:.1f} s; job wall time (kube play to every pod "
      f"exited) {t_end - t0:.1f} s")
PY
  podman kube down "$dir/play.yaml" >/dev/null
}

job=$repo/examples/fashion_mnist_k8s.json
for r in "${runs[@]}"; do
  case "$r" in
    clean) run fmnist "$job" none ;;
    kill) run fmnist-kill "$job" sigkill-worker ;;
    term) run fmnist-term "$job" sigterm-worker ;;
    preempt) run fmnist-preempt "$job" sigterm-chief ;;
    tfjob) run fmnist-tfjob "$job" none tfjob ;;
    *) fail "unknown run '$r'" ;;
  esac
done
echo "podman_test: ${#runs[@]} passed, 0 failed"
