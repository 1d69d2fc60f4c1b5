"""The fan-out section's rows: what the clients took, what the gateway kept."""

from __future__ import annotations

from bench.fanout import KEPT_GOAL, Outcome, rows


def test_idle_clients_are_judged_by_the_share_of_their_memory_the_gateway_kept() -> None:
    idle = Outcome("idle", clients=10_000, tasks=0, rss_before=60, rss_connected=260,
                   rss_peak=262, rss_settled=90)
    table = {row.figure: row for row in rows([idle])}
    kept = table["fan-out idle (10,000 clients, 0 tasks): of the RSS the clients took, "
                 "kept 12 s after they left"]
    assert (kept.cargo, kept.peer, kept.goal, kept.better) == (30, 200, KEPT_GOAL, "lower")
    assert kept.met is True  # 15 % kept
    assert table["fan-out idle (10,000 clients, 0 tasks): gateway RSS peak"].met is True
    assert not any("every event" in figure for figure in table)  # no tasks, no events


def test_an_idle_gateway_that_keeps_most_of_the_clients_memory_misses_the_goal() -> None:
    idle = Outcome("idle", clients=10_000, tasks=0, rss_before=60, rss_connected=260,
                   rss_peak=262, rss_settled=200)
    kept = next(row for row in rows([idle]) if "kept" in row.figure)
    assert kept.met is False  # 70 % kept
