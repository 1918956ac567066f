"""Starting N local processes of a jax.distributed run in tests (127.0.0.1, a free port)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(code: str, n: int = 2, timeout: float = 600) -> list[dict]:
    """Run ``python -c code`` as processes 0..n−1 of one jax.distributed run; every process must exit
    0 and print one JSON object as its last line; returns those objects in process order."""
    port = free_port()
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "MIRRORPO_COORDINATOR": f"127.0.0.1:{port}",
                                   "MIRRORPO_NUM_PROCESSES": str(n), "MIRRORPO_PROCESS_ID": str(i)})
             for i in range(n)]
    outputs = [p.communicate(timeout=timeout) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err[-2000:] for _, err in outputs]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
