"""Helpers the training benchmark drivers share (ps_train_bench.py, sync_train_bench.py)."""
import os
import socket
import subprocess
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_secs(pid):
    """User + system CPU seconds of a process (all its threads) so far; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def stream(cmd, on_line, timeout, env=None):
    """Runs cmd in the repository root, calling on_line(popen, line) as each output line
    arrives; kills it after `timeout` seconds; returns (rc, output)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                         env=env)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    lines = []
    try:
        for line in p.stdout:
            lines.append(line)
            on_line(p, line)
        p.wait()
    finally:
        timer.cancel()
    return p.returncode, "".join(lines)


class Marks:
    """The chief's logged steps, each with the CPU seconds of every task at that moment."""

    def __init__(self):
        self.pids = {}  # role -> pid
        self.marks = []  # (global_step, seconds since the previous log, {role: cpu seconds})

    def add(self, step, secs):
        self.marks.append((step, secs, {r: cpu_secs(pid) for r, pid in self.pids.items()}))

    def window(self, skip):
        """(global steps/sec, {role: CPU ms per global step}) from mark `skip` to the last but one."""
        m = self.marks
        if len(m) < skip + 3:
            return None, {}
        a, b = m[skip], m[-2]
        steps = b[0] - a[0]
        secs = sum(x[1] for x in m[skip + 1:len(m) - 1])
        cpu = {r: (b[2][r] - a[2].get(r, 0.0)) * 1e3 / steps for r in b[2]}
        return steps / secs, cpu
