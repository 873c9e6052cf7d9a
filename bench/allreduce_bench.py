#!/usr/bin/env python3
"""Issue 10 all-reduce benchmark: float32 sum between 2 processes on
loopback, side by side in one run, alternating sides within each round:
  estuary  bench/allreduce_bench.cc: Estuary's RingCommunicator (the ring's
           default: shared memory between ranks on one host)
  estuary_tcp  the same with the ring's data over TCP only (--shm=false)
  gloo     bench/allreduce_bench_gloo.py: torch.distributed, backend gloo
           (Debian's python3-torch), TCP init on 127.0.0.1
  mpi      bench/allreduce_bench_mpi.c: Open MPI's MPI_Allreduce over its TCP
           BTL on lo (`mpirun --mca pml ob1 --mca btl tcp,self --mca
           btl_tcp_if_include lo --bind-to none`), built here with mpicc
  mpi_sm   the same program over Open MPI's shared-memory BTL (`--mca btl
           vader,self`): the same-host peer of `estuary`
  iperf3   one TCP stream for --iperf_seconds (the TCP limit), and one each
           way at once (--bidir: what a 2-rank ring needs, per direction)
Sizes 4 KiB .. 64 MiB; per size every side checks one all-reduce of known
values against the expected sum (a side that fails stops the run), then
times warm-up + --iters calls one by one. Figures (nccl-tests' definitions,
GB = 1e9 bytes): median time of one call, algbw = bytes / time, busbw =
algbw * 2(n-1)/n; and the CPU time (user + system, every thread, all ranks
together) per timed call, which other load on a shared machine disturbs far
less than wall time. The table holds, per side and size, the median over
--rounds rounds of each round's median; then the ratios the issue's targets
name (64 MiB busbw vs gloo and vs iperf3, 4 KiB median time), and CPU time
per call vs gloo.

  bazel build -c opt //bench:allreduce_bench
  /usr/bin/python3 bench/allreduce_bench.py [--rounds 3]
      [--sides estuary,estuary_tcp,gloo,mpi,mpi_sm,iperf3]
"""
import argparse
import atexit
import json
import os
import socket
import statistics
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZES = [4096, 65536, 1 << 20, 16 << 20, 64 << 20]
ITERS = [2000, 1000, 200, 30, 10]


def label(nbytes):
    return f"{nbytes >> 20} MiB" if nbytes >= 1 << 20 else f"{nbytes >> 10} KiB"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def figures(name, cmd, timeout):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"allreduce_bench: {name} failed ({' '.join(cmd)}):\n{p.stdout[-3000:]}"
                 f"{p.stderr[-3000:]}")
    got = {k: float(v) for k, v in (line.split() for line in p.stdout.splitlines()
                                     if len(line.split()) == 2)}
    if got.get("checked_sizes") != len(SIZES):
        sys.exit(f"allreduce_bench: {name} did not check every size:\n{p.stdout}{p.stderr}")
    return got


def build_mpi(out_dir):
    binary = os.path.join(out_dir, "allreduce_bench_mpi")
    subprocess.run(["mpicc", "-O2", "-o", binary, os.path.join(HERE, "allreduce_bench_mpi.c")],
                   check=True)
    return binary


def iperf3(seconds, bidir):
    """GB/s of one TCP stream on loopback (with bidir: the mean of the two directions)."""
    port = free_port()
    # Not one-off (-1): iperf3 3.12's one-off server sometimes stays up after
    # the test; it is terminated below once the client has its figures.
    server = subprocess.Popen(["iperf3", "-s", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:  # the server listens once it has started: retry refused connects
            cmd = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds), "-J"]
            p = subprocess.run(cmd + (["--bidir"] if bidir else []), capture_output=True, text=True,
                               timeout=seconds + 30)
            d = json.loads(p.stdout or '{"error": "no output"}')
            # (iperf3 3.12 -J may exit 0 with an "error": read the JSON, not the exit code.)
            if p.returncode == 0 and "error" not in d:
                break
            if "Connection refused" not in d.get("error", "") or time.monotonic() > deadline:
                sys.exit(f"allreduce_bench: iperf3 failed: {p.stdout[-2000:]}{p.stderr[-2000:]}")
            time.sleep(0.05)  # a retry pause, not synchronisation: the loop checks the outcome
    finally:
        server.terminate()
        server.wait(timeout=30)
    end = d["end"]
    if bidir:
        return (end["sum_received"]["bits_per_second"]
                + end["sum_received_bidir_reverse"]["bits_per_second"]) / 2 / 8e9
    return end["sum_received"]["bits_per_second"] / 8e9


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sides", default="estuary,estuary_tcp,gloo,mpi,mpi_sm,iperf3")
    ap.add_argument("--world", type=int, default=2)
    ap.add_argument("--iters_scale", type=float, default=1.0, help="multiplies every size's calls")
    ap.add_argument("--iperf_seconds", type=int, default=3)
    ap.add_argument("--estuary", default=os.path.join(ROOT, "bazel-bin/bench/allreduce_bench"))
    ap.add_argument("--timeout", type=int, default=600, help="per side and round, seconds")
    a = ap.parse_args()
    sides = a.sides.split(",")
    iters = [max(3, int(i * a.iters_scale)) for i in ITERS]
    sizes_arg, iters_arg = ",".join(map(str, SIZES)), ",".join(map(str, iters))
    tmp = tempfile.mkdtemp(prefix="allreduce_bench_")
    atexit.register(shutil.rmtree, tmp, True)  # model dirs, logs: GBs per run
    runs = {}
    for side, shm in (("estuary", "true"), ("estuary_tcp", "false")):
        if side not in sides:
            continue
        if not os.access(a.estuary, os.X_OK):
            sys.exit(f"allreduce_bench: no {a.estuary}: bazel build -c opt //bench:allreduce_bench")
        runs[side] = [a.estuary, "--world", str(a.world), "--sizes", sizes_arg,
                      "--iters", iters_arg, f"--shm={shm}"]
    if "gloo" in sides:
        runs["gloo"] = ["/usr/bin/python3", os.path.join(HERE, "allreduce_bench_gloo.py"),
                        "--world", str(a.world), "--sizes", sizes_arg, "--iters", iters_arg]
    for side, btl in (("mpi", ["--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo"]),
                      ("mpi_sm", ["--mca", "btl", "vader,self"])):
        if side not in sides:
            continue
        mpirun = ["mpirun", "-np", str(a.world), "--bind-to", "none", "--mca", "pml", "ob1"] + btl
        if os.geteuid() == 0:
            mpirun.append("--allow-run-as-root")
        runs[side] = mpirun + [build_mpi(tmp), sizes_arg, iters_arg, "-1"]
    unknown = set(sides) - set(runs) - {"iperf3"}
    if unknown:
        sys.exit(f"allreduce_bench: unknown sides {sorted(unknown)}")
    got = {name: [] for name in runs}
    tcp, tcp_bidir = [], []
    load = [os.getloadavg()[0]]
    for r in range(a.rounds):
        for name, cmd in runs.items():
            got[name].append(figures(name, cmd, a.timeout))
            print(f"# round {r + 1} {name}: " + ", ".join(
                f"{label(s)} {got[name][-1][f'time_us_{s}']:.1f} us / "
                f"{got[name][-1][f'busbw_gbps_{s}']:.2f} GB/s / "
                f"{got[name][-1][f'cpu_us_{s}']:.0f} CPU us" for s in SIZES),
                file=sys.stderr, flush=True)
        if "iperf3" in sides:
            tcp.append(iperf3(a.iperf_seconds, bidir=False))
            tcp_bidir.append(iperf3(a.iperf_seconds, bidir=True))
            print(f"# round {r + 1} iperf3: {tcp[-1]:.2f} GB/s, bidir {tcp_bidir[-1]:.2f} GB/s "
                  f"per direction", file=sys.stderr, flush=True)
        load.append(os.getloadavg()[0])

    med = {name: {k: statistics.median(run[k] for run in rs) for k in rs[0]}
           for name, rs in got.items()}
    names = list(runs)
    print(f"# all-reduce float32 sum, {a.world} processes on loopback; median of {a.rounds} rounds; "
          f"1-min load average {min(load):.2f}..{max(load):.2f}")
    print(f"# calls per size {dict(zip(map(label, SIZES), iters))} (+ iters/10 warm-up)")
    for fig, unit in (("time_us", "us"), ("algbw_gbps", "GB/s"), ("busbw_gbps", "GB/s"),
                      ("cpu_us", "CPU us")):
        print(f"{fig + ' (' + unit + ')':<20}" + "".join(f"{n:>10}" for n in names))
        for s in SIZES:
            print(f"  {label(s):<18}" + "".join(f"{med[n][f'{fig}_{s}']:>10.2f}" for n in names))
    for n in names:  # one figure per line, for RESULTS.md and scripts
        for s in SIZES:
            for fig in ("time_us", "algbw_gbps", "busbw_gbps", "cpu_us"):
                print(f"{n}_{fig}_{s} {med[n][f'{fig}_{s}']:.3f}")
    if tcp:
        print(f"iperf3_single_stream_gbps {statistics.median(tcp):.3f}")
        print(f"iperf3_bidir_per_direction_gbps {statistics.median(tcp_bidir):.3f}")
    big, small = SIZES[-1], SIZES[0]
    for mine in ("estuary", "estuary_tcp"):
        if mine not in med:
            continue
        e = med[mine]
        for peer in ("gloo", "mpi", "mpi_sm"):
            if peer in med:
                p = med[peer]
                print(f"{mine}_vs_{peer}_busbw_64MiB "
                      f"{e[f'busbw_gbps_{big}'] / p[f'busbw_gbps_{big}']:.2f}")
                print(f"{mine}_vs_{peer}_time_4KiB {p[f'time_us_{small}'] / e[f'time_us_{small}']:.2f}")
                print(f"{mine}_vs_{peer}_cpu_per_call_64MiB {p[f'cpu_us_{big}'] / e[f'cpu_us_{big}']:.2f}")
        if tcp:
            busbw = e[f"busbw_gbps_{big}"]
            print(f"{mine}_busbw_64MiB_vs_iperf3 {busbw / statistics.median(tcp):.2f}")
            print(f"{mine}_busbw_64MiB_vs_iperf3_bidir {busbw / statistics.median(tcp_bidir):.2f}")
        print(f"{mine}_time_us_4KiB {e[f'time_us_{small}']:.1f}")
    print(f"# raw {json.dumps(got)}", file=sys.stderr)


if __name__ == "__main__":
    main()
