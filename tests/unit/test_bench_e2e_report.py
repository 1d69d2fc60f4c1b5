"""bench.e2e's summary: medians over rounds, CPU per task by component and in total."""

from __future__ import annotations

from typing import Any

import pytest

from bench.cpu import CpuWindow
from bench.e2e import CARGO, PEER, Config, Rounds, cpu_doc, per_round_ratios, rows_from
from bench.sections import Row

CONFIG = Config(tasks=1000, clients=64, concurrency=2, rounds=3, latency_tasks=500,
                warmup_tasks=200, latency_warmup=20)


def _e2e(rate: float, total: float, parts: dict[str, float]) -> dict[str, Any]:
    return {"rate": rate, "cpu": {"total_ms_per_task": total, "ms_per_task": parts}}


def test_cpu_per_task_is_each_components_seconds_over_the_tasks_in_ms() -> None:
    window = CpuWindow(seconds={"rabbitmq": 1.0, "worker": 0.5, "gateway": 0.25,
                                "clients": 2.0}, wall=2.0, machine=3.0)
    doc = cpu_doc(window, 500, total_of=("rabbitmq", "worker", "gateway"))
    assert doc["ms_per_task"] == {"rabbitmq": 2.0, "worker": 1.0, "gateway": 0.5,
                                  "clients": 4.0}
    assert doc["total_ms_per_task"] == 3.5  # the clients are not in the total
    assert doc["machine_busy_pct"] == 150.0


def test_cpu_total_is_unknown_when_a_component_could_not_be_read() -> None:
    window = CpuWindow(seconds={"rabbitmq": None, "worker": 0.5}, wall=1.0, machine=1.0)
    assert cpu_doc(window, 100, total_of=("rabbitmq", "worker"))["total_ms_per_task"] is None


def test_rows_are_medians_over_rounds_with_the_issues_goals() -> None:
    rounds = Rounds()
    for rate, total in ((600.0, 2.0), (700.0, 2.6), (650.0, 2.4)):
        rounds.end_to_end[CARGO].append(_e2e(rate, total, {
            "rabbitmq": 1.0, "worker": 0.9, "gateway": total - 1.9, "clients": 0.4}))
    for rate, total in ((1200.0, 0.6), (1250.0, 0.5), (1300.0, 0.7)):
        rounds.end_to_end[PEER].append(_e2e(rate, total, {
            "rabbitmq": 0.3, "worker": 0.2, "producer": total - 0.5}))
    rounds.latency[CARGO] += [{"p50": 2.8, "p99": 5.0}, {"p50": 3.0, "p99": 4.5},
                              {"p50": 2.9, "p99": 5.4}]
    rounds.latency[PEER] += [{"p50": 1.5, "p99": 2.4}, {"p50": 1.4, "p99": 2.3},
                             {"p50": 1.6, "p99": 2.6}]
    made = rows_from(rounds, CONFIG)

    def row(start: str) -> Row:
        (found,) = [r for r in made if r.figure.startswith(start)]
        return found

    e2e = row("end to end")
    assert (e2e.cargo, e2e.peer, e2e.goal, e2e.better) == (650.0, 1250.0, 1.0, "higher")
    p50, p99 = row("latency p50"), row("latency p99")
    assert (p50.cargo, p50.peer, p50.goal, p50.better) == (2.9, 1.5, 1.0, "lower")
    assert (p99.cargo, p99.peer, p99.goal) == (5.0, 2.4, 1.5)
    cpu = row("CPU per task end to end")
    assert (cpu.cargo, cpu.peer, cpu.goal, cpu.better) == (2.4, 0.6, 1.5, "lower")
    gateway = row("CPU per task: gateway")
    assert gateway.cargo == pytest.approx(0.5)
    assert gateway.peer == pytest.approx(0.1)
    assert gateway.goal is None
    assert row("CPU per task: the benchmark").peer is None


def test_rabbitmqs_load_around_the_window_is_taken_off_its_cpu_per_task() -> None:
    window = CpuWindow(seconds={"rabbitmq": 3.0, "worker": 1.0}, wall=10.0, machine=12.0)
    before, after = {"rabbitmq_pct": 10.0}, {"rabbitmq_pct": 30.0}  # 20 % of a core: 2 s
    doc = cpu_doc(window, 1000, total_of=("rabbitmq", "worker"),
                  rabbitmq_background=(before, after))
    assert doc["ms_per_task"]["rabbitmq"] == 3.0
    assert doc["ms_per_task"]["rabbitmq_less_background"] == pytest.approx(1.0)
    assert doc["total_ms_per_task"] == 4.0  # the total stays what was measured


def test_per_round_ratios_pair_the_sides_of_the_same_round() -> None:
    rounds = Rounds()
    rounds.end_to_end[CARGO] += [_e2e(100.0, 4.0, {}), _e2e(300.0, 2.0, {})]
    rounds.end_to_end[PEER] += [_e2e(200.0, 2.0, {}), _e2e(300.0, 1.0, {})]
    rounds.latency[CARGO] += [{"p50": 3.0, "p99": 6.0}]
    rounds.latency[PEER] += [{"p50": 1.5, "p99": 4.0}]
    assert per_round_ratios(rounds) == {"end_to_end_rate": [0.5, 1.0], "cpu_total": [2.0, 2.0],
                                        "latency_p50": [2.0], "latency_p99": [1.5]}
