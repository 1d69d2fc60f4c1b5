"""``python -m tests.support.bridge``: the real bridge, with the tests' settings.

The bridge only translates messages for task names live workers announced on
the catalog stream (the tests' failing tasks of ``tests.support.chaos`` too,
announced by the chaos worker that offers them); it needs no task code.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from bridge.runner import run_bridge
from broker.logs import configure_logging
from broker.settings import Settings, load_settings
from tests.support.eventually import eventually_sync
from tests.support.processes import LOGS, ROOT, Proc, process_env


def bridge_heartbeat_path(name: str) -> str:
    LOGS.mkdir(parents=True, exist_ok=True)
    return str(LOGS / f"{name}-{os.getpid()}-{time.time_ns()}.bridge-heartbeat.json")


def start_bridge(settings: Settings, name: str = "bridge", wait: bool = True,
                 env: dict[str, str] | None = None) -> Proc:
    """Start the bridge (with the chaos tasks); wait until its own heartbeat says it
    consumes every bridged queue (the management API's consumer counts lag)."""
    env = dict(env or {})
    env.setdefault("CARGO_BRIDGE_METRICS_PORT", "0")
    env.setdefault("CARGO_BRIDGE_HEARTBEAT_FILE", bridge_heartbeat_path(name))
    env.setdefault("PYTHONPATH", str(ROOT))
    proc = Proc(name, [sys.executable, "-m", "tests.support.bridge"],
                process_env(settings, **env))
    if wait:
        try:
            wait_consuming(proc, env["CARGO_BRIDGE_HEARTBEAT_FILE"])
        except BaseException:
            proc.stop()
            raise
    return proc


def wait_consuming(proc: Proc, heartbeat: str, timeout: float = 60) -> None:
    def heartbeat_says_connected() -> bool:
        if not proc.alive():
            raise RuntimeError(f"the bridge exited early:\n{proc.output()[-3000:]}")
        doc = json.loads(Path(heartbeat).read_text())
        return bool(doc.get("pid") == proc.pid and doc.get("connected"))

    eventually_sync(heartbeat_says_connected, timeout,
                    lambda: f"the bridge consuming:\n{proc.output()[-3000:]}",
                    ignoring=(OSError, ValueError))


def main() -> None:
    settings = load_settings()
    configure_logging(settings)
    run_bridge(settings)


if __name__ == "__main__":
    main()
