"""Each real ``cargoctl`` process validates the settings it reads, and only those.

A malformed variable stops each process that reads it (exit 2, naming it); a
variable of another process, malformed or not, stops none; a ``CARGO_`` variable no
process reads stops them all. The table of processes is ``broker.settings.PROCESSES``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.settings import PROCESSES, Settings, env_name
from broker.topology import EVENTS_STREAM
from tests.support.processes import BIN, Proc, process_env, start_worker, wait_for_consumer
from tests.support.rabbit import private_vhost

pytestmark = pytest.mark.integration

CARGOCTL = str(BIN / "cargoctl")
UNUSED_GATEWAY = "http://127.0.0.1:9"  # discard: nothing answers HTTP there

# Each process's command line (one that ends by itself where it can without a broker),
# and a malformed value of a variable it reads.
PROCESS_RUNS: dict[str, tuple[list[str], str, str]] = {
    "gateway": (["gateway", "--host", "127.0.0.1", "--port", "0"],
                "CARGO_WS_SEND_QUEUE", "many"),
    "worker": (["worker"], "CARGO_TASK_LIMITS", "memory_leak_task=64"),
    "worker health": (["worker", "health", "--readiness"], "CARGO_WORKER_HEARTBEAT_FILE",
                      "relative/heartbeat.json"),
    "bridge": (["bridge"], "CARGO_BRIDGE_PREFETCH", "0"),
    "bridge health": (["bridge", "health", "--readiness"], "CARGO_BRIDGE_HEARTBEAT_MAX_AGE",
                      "never"),
    "canary": (["canary", "--gateway", UNUSED_GATEWAY, "--timeout", "1"],
               "CARGO_CANARY_MAX_RESTARTS", "-1"),
    "topology": (["topology", "export"], "CARGO_DELIVERY_LIMIT", "0"),
}


def others_malformed(process: str) -> dict[str, str]:
    """The malformed variable of every other process in PROCESS_RUNS that ``process``
    does not read."""
    reads = {env_name(Settings, name) for name in PROCESSES[process].model_fields}
    return {variable: value for other, (_args, variable, value) in PROCESS_RUNS.items()
            if other != process and variable not in reads}


def run(settings: Settings, args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CARGOCTL, *args], env=process_env(settings, **env),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(scope="module")
def vhost() -> Iterator[Settings]:
    with private_vhost("cargo-test-settings") as settings:
        yield settings


def test_every_process_has_a_run_here() -> None:
    assert set(PROCESS_RUNS) == set(PROCESSES)


@pytest.mark.parametrize("process", sorted(PROCESS_RUNS))
def test_a_process_stops_on_a_malformed_variable_it_reads_naming_it(
    vhost: Settings, process: str,
) -> None:
    args, variable, value = PROCESS_RUNS[process]
    done = run(vhost, args, **{variable: value})
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"{variable}: " in done.stderr
    assert repr(value) in done.stderr


@pytest.mark.parametrize("process", sorted(PROCESS_RUNS))
def test_a_process_stops_on_a_cargo_variable_no_process_reads_naming_it(
    vhost: Settings, process: str,
) -> None:
    args, _variable, _value = PROCESS_RUNS[process]
    done = run(vhost, args, CARGO_TASK_QUEU="typo")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "unknown configuration variable(s): CARGO_TASK_QUEU" in done.stderr


@pytest.mark.parametrize(("process", "verdict"), [
    ("topology", 0),        # the definitions, written
    ("worker health", 1),   # no heartbeat at that path: not ready
    ("bridge health", 1),
    ("canary", 1),          # nothing answers at the gateway's URL: the check fails
])
def test_other_processes_malformed_variables_stop_no_process_that_does_not_read_them(
    vhost: Settings, tmp_path: Path, process: str, verdict: int,
) -> None:
    args, _variable, _value = PROCESS_RUNS[process]
    if process.endswith("health"):
        args = [*args, "--file", str(tmp_path / "no-heartbeat.json")]
    malformed = others_malformed(process)
    assert len(malformed) >= 4, malformed
    done = run(vhost, args, **malformed)
    assert done.returncode == verdict, done.stderr[-3000:]
    assert "configuration" not in done.stderr


def test_a_gateway_serves_with_every_other_processes_malformed_variables(
    vhost: Settings,
) -> None:
    proc = Proc("gateway-others-malformed",
                [CARGOCTL, "gateway", "--host", "127.0.0.1", "--port", "0"],
                process_env(vhost, **others_malformed("gateway")))
    try:
        wait_for_consumer(vhost, EVENTS_STREAM, proc)  # it started and follows the events
    finally:
        proc.stop()


def test_a_worker_consumes_with_every_other_processes_malformed_variables(
    vhost: Settings,
) -> None:
    proc = start_worker(vhost, "worker-others-malformed", 1, **others_malformed("worker"))
    proc.stop()
