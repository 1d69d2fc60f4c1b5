"""Worker probes: `cargoctl worker health` against `celery inspect ping`, side by side.

    .venv/bin/python -m bench.health_probe [--rounds 10]

Starts one real Cargo worker (prefork, 2 processes) on a private vhost, then
alternates, round after round, the two probes a kubelet would exec:

- ``cargoctl worker health --liveness`` (reads the heartbeat file; with ``--file``
  and ``--max-age`` given, as the chart's probes do, and without: settings
  loaded from the environment), and
- ``celery -A workers.app inspect ping -d <node> --timeout 10`` (the original
  design's probe: a broadcast through RabbitMQ and the worker's reply).

For each it records the wall time of the probe process, the CPU it used
(user + system, from ``wait4``) and the CPU the worker's main process spent
meanwhile (psutil), and whether it said healthy. Prints medians and ratios and
writes ``bench/results/health-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.bridge import log_dir, wait_consuming
from bench.procs import BIN, start_worker
from bench.vhost import private_vhost, process_env

RESULTS = Path(__file__).resolve().parent / "results"


def probe(argv: list[str], env: dict[str, str], worker: psutil.Process) -> dict[str, Any]:
    worker_cpu = sum(worker.cpu_times()[:2])
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "worker_cpu_s": sum(worker.cpu_times()[:2]) - worker_cpu,
            "healthy": proc.returncode == 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with private_vhost("cargo-bench-health") as settings:
        logs = log_dir()
        heartbeat = str(logs / f"bench-health-{os.getpid()}.heartbeat.json")
        node = f"bench-health-{os.getpid()}@{os.uname().nodename}"
        env = process_env(settings, CARGO_WORKER_HEARTBEAT_FILE=heartbeat)
        worker = start_worker("bench-health", env, logs, concurrency=2)
        try:
            asyncio.run(wait_consuming(settings, worker))
            # start_worker names the node itself; ask the worker for it.
            node = _node_name(worker.log_path.read_text(errors="replace")) or node
            main_process = psutil.Process(worker.popen.pid)
            probes = {
                "cargoctl worker health --liveness --file F --max-age 30": [
                    str(BIN / "cargoctl"), "worker", "health", "--liveness", "--file", heartbeat,
                    "--max-age", "30"],
                "cargoctl worker health --liveness (settings from env)": [
                    str(BIN / "cargoctl"), "worker", "health", "--liveness"],
                "celery inspect ping -d <node>": [
                    str(BIN / "celery"), "-A", "workers.app", "inspect", "ping",
                    "-d", node, "--timeout", "10"],
            }
            rows: dict[str, list[dict[str, Any]]] = {name: [] for name in probes}
            for _ in range(args.rounds):
                for name, argv in probes.items():
                    rows[name].append(probe(argv, env, main_process))
        finally:
            worker.stop()
    summary = {name: {key: statistics.median(r[key] for r in runs)
                      for key in ("wall_s", "cpu_s", "worker_cpu_s")}
               | {"healthy": sum(r["healthy"] for r in runs), "rounds": len(runs)}
               for name, runs in rows.items()}
    cheap, _, ping = summary.values()
    ratios = {"wall": ping["wall_s"] / cheap["wall_s"], "cpu": ping["cpu_s"] / cheap["cpu_s"]}
    print(f"{'probe':56} {'wall (median)':>14} {'probe CPU':>10} {'worker CPU':>11} healthy")
    for name, s in summary.items():
        print(f"{name:56} {s['wall_s']:13.3f}s {s['cpu_s']:9.3f}s {s['worker_cpu_s']:10.4f}s "
              f"{s['healthy']}/{s['rounds']}")
    print(f"inspect ping / health --file: {ratios['wall']:.1f}x the wall time, "
          f"{ratios['cpu']:.1f}x the CPU")
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"health-{stamp}.json"
    out.write_text(json.dumps({"summary": summary, "ratios": ratios, "runs": rows,
                               "cpus": os.cpu_count(), "python": sys.version}, indent=2))
    print(f"written {out}")


def _node_name(log: str) -> str | None:
    """The node name from Celery's start banner (``-------------- name@host v5...``)."""
    for line in log.splitlines():
        stripped = line.strip()
        if stripped.startswith("-------------- ") and "@" in stripped:
            return stripped.split()[1]
    return None


if __name__ == "__main__":
    main()
