"""The drain and bridge sections' arithmetic: the drain window, rates, CPU per task, the rows."""

from __future__ import annotations

import pytest

from bench.bridge import SideResult
from bench.bridge import parse_args as bridge_args
from bench.bridge import rows as bridge_rows
from bench.depth import DrainTiming, drain_window, rate
from bench.drain import DrainResult, paired_ratios, parse_args, rows
from bench.peers.celery_bare import QUEUE, create_app
from broker.settings import load_settings
from broker.topology import task_queue_arguments


def test_the_drain_window_runs_from_the_last_full_sample_to_the_first_empty_one() -> None:
    samples = [(0.0, 100), (1.0, 100), (2.0, 90), (3.0, 40), (4.0, 0), (5.0, 0), (6.0, 0)]
    assert drain_window(samples, 100) == (1.0, 4.0)


def test_a_queue_that_emptied_and_filled_again_ends_at_its_final_empty_run() -> None:
    # A bridge republishing what it held: empty for a moment, then not.
    samples = [(0.0, 10), (1.0, 5), (2.0, 0), (3.0, 3), (4.0, 0), (5.0, 0)]
    assert drain_window(samples, 10) == (0.0, 4.0)


def test_a_drain_already_under_way_at_the_first_sample_starts_at_that_sample() -> None:
    assert drain_window([(7.0, 50), (8.0, 0)], 100) == (7.0, 8.0)


def test_a_queue_that_never_drained_or_is_not_empty_at_the_end_has_no_window() -> None:
    with pytest.raises(ValueError, match="never drained"):
        drain_window([(0.0, 10), (1.0, 10)], 10)
    with pytest.raises(ValueError, match="not empty"):
        drain_window([(0.0, 10), (1.0, 4)], 10)


def test_the_rate_is_every_task_over_the_window_and_an_empty_window_is_refused() -> None:
    assert rate(3000, 10.0, 11.5) == 2000.0
    with pytest.raises(ValueError, match="empty window"):
        rate(10, 2.0, 2.0)


def test_cpu_per_task_counts_the_tasks_delivered_between_the_drop_and_the_empty_queue() -> None:
    timing = DrainTiming(cpu_at_drop=(1.0, 10.0), cpu_at_empty=(3.0, 11.0), delivered_at_drop=200)
    worker, rabbit = timing.cpu_per_task_ms(1200)
    assert worker == pytest.approx(2.0)  # 2 s over 1,000 tasks
    assert rabbit == pytest.approx(1.0)
    assert DrainTiming().cpu_per_task_ms(1200) == (None, None)


def drain(side: str, processes: int, round_no: int, tasks_per_second: float) -> DrainResult:
    return DrainResult(side, processes, round_no, 3000, tasks_per_second, 3000 / tasks_per_second,
                       1.0, 0.5, None)


def test_the_drain_rows_put_cargo_beside_bare_celery_and_its_own_two_process_rate() -> None:
    results = [drain("cargo", 2, 1, 800), drain("cargo", 2, 2, 1000), drain("celery", 2, 1, 1000),
               drain("celery", 2, 2, 1200), drain("cargo", 8, 1, 1800),
               drain("celery", 8, 1, 2000), drain("dramatiq", 2, 1, 6000)]
    table = {row.figure: row for row in rows(results, [2, 8])}
    at_two = table["worker drain, tasks/s (P=2)"]
    assert (at_two.cargo, at_two.peer, at_two.goal) == (900, 1100, 0.8)  # medians of rounds
    assert at_two.met is True
    scaling = table["worker drain, Cargo at P=8 vs at P=2"]
    assert (scaling.cargo, scaling.peer, scaling.goal) == (1800, 900, 1.0)
    ceiling = table["worker drain, tasks/s (P=2), ceiling"]
    assert (ceiling.peer, ceiling.goal) == (6000, None)
    assert "worker drain, tasks/s (P=8), ceiling" not in table  # no Dramatiq drain at P=8
    assert table["worker drain, worker tree CPU per task (P=8)"].better == "lower"


def test_the_guarantees_floor_is_set_beside_bare_celery_and_beside_cargo_without_a_goal() -> None:
    results = [drain("cargo", 2, 1, 500), drain("celery", 2, 1, 1000), drain("floor", 2, 1, 600)]
    table = {row.figure: row for row in rows(results, [2])}
    floor = table["worker drain, the guarantee's floor vs bare Celery (P=2)"]
    assert (floor.cargo, floor.peer, floor.goal) == (600, 1000, None)
    against_floor = table["worker drain, tasks/s (P=2), against the guarantee's floor"]
    assert (against_floor.cargo, against_floor.peer, against_floor.goal) == (500, 600, None)
    assert table["worker drain, tasks/s (P=2)"].met is False  # the goal stays on bare Celery


def test_the_paired_ratios_divide_cargo_by_bare_celery_of_the_same_round() -> None:
    results = [drain("celery", 2, 1, 1000), drain("cargo", 2, 1, 500), drain("cargo", 2, 2, 300),
               drain("celery", 2, 2, 1000), drain("cargo", 8, 1, 900), drain("cargo", 2, 3, 1)]
    assert paired_ratios(results, 2) == [0.5, 0.3]  # round 3 has no bare Celery drain


def test_the_bridge_row_puts_the_bridged_rate_beside_bare_celery_draining_the_same_tasks() -> None:
    def side(name: str, throughput: float, p50: float | None) -> SideResult:
        return SideResult(name, 1, 3000, throughput, 1.0, None, None, p50, p50, p50)

    table = bridge_rows([side("bridged", 700, 4.0), side("celery", 1000, None),
                         side("dramatiq", 5000, 1.5)], 2)
    assert [(r.cargo, r.peer, r.goal) for r in table] == [
        (700, 1000, 0.8), (700, 5000, None), (4.0, 1.5, None)]
    assert table[0].met is False


def test_the_bare_celery_peer_declares_its_queue_with_the_arguments_of_cargos_task_queues() -> None:
    settings = load_settings({"RABBITMQ_URL": "amqp://guest:guest@127.0.0.1:5672/x"})
    app = create_app(settings)
    (queue,) = app.conf.task_queues
    assert queue.name == QUEUE
    assert queue.queue_arguments == task_queue_arguments(QUEUE, settings)
    assert queue.queue_arguments["x-queue-type"] == "quorum"
    assert (app.conf.task_acks_late, app.conf.worker_prefetch_multiplier) == (True, 1)
    assert app.conf.broker_transport_options == {"confirm_publish": True}


def test_quick_is_a_small_single_round_unless_the_size_or_rounds_are_given() -> None:
    assert (parse_args([]).tasks, parse_args([]).rounds) == (3000, 2)
    assert (parse_args(["--quick"]).tasks, parse_args(["--quick"]).rounds) == (500, 1)
    assert parse_args(["--quick", "--rounds", "3"]).rounds == 3
    quick = bridge_args(["--quick"])
    assert (quick.messages, quick.probes, quick.rounds) == (500, 5, 1)
    assert bridge_args(["--tasks", "1000"]).messages == 1000
