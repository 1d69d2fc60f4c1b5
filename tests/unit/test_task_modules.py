"""A team's task modules: loading, and what a worker derives from ordinary Celery tasks.

No broker: the app is built and inspected, tasks run eagerly where needed.
"""

from __future__ import annotations

import itertools
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import celery
import pytest
import structlog.testing

from broker.arguments import InvalidArguments
from broker.catalog import decode_announcement
from broker.settings import ConfigError, load_settings
from workers.announce import build_announcement
from workers.app import create_app
from workers.base import LoadedTask, progress_of_state
from workers.policy import InvalidTaskOption, PermanentError, policy_from_options
from workers.runtime import runtime_of

_numbers = itertools.count()

TEAM_MODULE = '''
from celery import shared_task
from workers.base import CargoBaseTask


class NotCargo:
    pass


@shared_task(name="{p}.add")
def add(a, b):
    """Add two things.

    More text that is not the first line.
    """
    return a + b


@shared_task(name="{p}.typed", queue="{p}-reports", time_limit=30, soft_time_limit=20,
             cargo_memory_limit_mb=128, max_retries=5)
def typed(x: int, label: str = "none") -> str:
    return f"{{label}}:{{x}}"


@shared_task(name="{p}.bound", bind=True, retry_backoff=3, retry_backoff_max=7)
def bound(self, n: int) -> int:
    return n


@shared_task(name="{p}.auto", autoretry_for=(ValueError,), max_retries=1)
def auto(n: int) -> int:
    raise ValueError(n)


@shared_task(name="{p}.picky", dont_autoretry_for=(KeyError,))
def picky() -> None:
    raise KeyError("never retried")


class TeamBase(CargoBaseTask):
    max_retries = 9


@shared_task(name="{p}.based", base=TeamBase)
def based() -> None:
    pass
'''


def team_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str = TEAM_MODULE,
                ) -> tuple[str, str]:
    """A fresh importable module (its name and its tasks' name prefix)."""
    prefix = f"team{next(_numbers)}_{datetime.now(UTC).strftime('%H%M%S%f')}"
    (tmp_path / f"{prefix}.py").write_text(textwrap.dedent(source.format(p=prefix)))
    monkeypatch.syspath_prepend(str(tmp_path))
    return prefix, prefix


def app_for(modules: str, **env: str) -> celery.Celery:
    return create_app(load_settings({"CARGO_TASK_MODULES": modules, **env}))


def loaded(app: celery.Celery) -> dict[str, LoadedTask]:
    runtime = runtime_of(app)
    assert runtime is not None
    return runtime.tasks


def test_a_worker_offers_exactly_the_tasks_of_its_modules_with_celerys_own_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    app = app_for(f"workers.builtin,{module}")
    names = {f"{p}.{n}" for n in ("add", "typed", "bound", "auto", "picky", "based")}
    assert set(loaded(app)) == names | {"calculate_distance", "sleep", "memory_leak_task"}
    assert {n for n in app.tasks if not n.startswith("celery.")} == set(loaded(app))


def test_tasks_of_modules_a_worker_did_not_load_are_not_registered_on_its_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    app_for(module)  # imports the module: its shared tasks now exist process-wide
    app = app_for("workers.builtin")
    assert not [n for n in app.tasks if n.startswith(f"{p}.")]


def test_an_untyped_task_accepts_any_json_values_and_gets_them_uncoerced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    app = app_for(module)
    task = loaded(app)[f"{p}.add"]
    assert task.schema["x-cargo-positional"] == ["a", "b"]
    assert task.schema["required"] == ["a", "b"]
    assert "type" not in task.schema["properties"]["a"]
    assert task.doc == "Add two things."
    assert app.tasks[f"{p}.add"].apply(args=(["x"], ["y"])).get() == ["x", "y"]
    assert app.tasks[f"{p}.add"].apply(args=(1, 2.5)).get() == 3.5


def test_a_typed_task_gets_its_hints_as_schema_and_bad_arguments_fail_as_a_type_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    app = app_for(module)
    task = loaded(app)[f"{p}.typed"]
    assert task.schema["properties"]["x"]["type"] == "integer"
    assert task.schema["properties"]["label"]["default"] == "none"
    with pytest.raises(InvalidArguments):
        task.arguments.validate(["3"], {})
    result = app.tasks[f"{p}.typed"].apply(args=("3",))
    assert isinstance(result.result, TypeError)
    assert "args.0: Input should be a valid integer" in str(result.result)
    assert app.tasks[f"{p}.typed"].apply(args=(3,), kwargs={"label": "n"}).get() == "n:3"


def test_a_bound_task_announces_its_arguments_without_self(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    task = loaded(app_for(module))[f"{p}.bound"]
    assert task.schema["x-cargo-positional"] == ["n"]
    assert task.policy.retry_backoff == 3.0
    assert task.policy.retry_backoff_max == 7.0


def test_decorator_options_set_queue_limits_retries_and_memory_and_celery_enforces_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    app = app_for(module)
    task = loaded(app)[f"{p}.typed"]
    assert task.queue == f"{p}-reports"
    assert task.policy.time_limit == 30
    assert task.policy.soft_time_limit == 20
    assert task.policy.memory_limit_mb == 128
    assert task.policy.max_retries == 5
    celery_task = app.tasks[f"{p}.typed"]
    assert getattr(celery_task, "queue", None) == f"{p}-reports"
    assert (celery_task.time_limit, celery_task.max_retries) == (30, 5)
    # Its queue is part of the worker's topology (with its .XQ and watch queue).
    names = {q.name for q in app.conf.task_queues}
    assert {"cargo", f"{p}-reports"} <= names


def test_a_task_without_explicit_options_gets_cargos_defaults_and_a_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    app = app_for(module, CARGO_TIME_LIMIT="45", CARGO_MEMORY_LIMIT_MB="77",
                  CARGO_MAX_RETRIES="4")
    task = loaded(app)[f"{p}.add"]
    assert (task.queue, task.policy.time_limit, task.policy.memory_limit_mb,
            task.policy.max_retries) == ("cargo", 45, 77, 4)
    assert app.tasks[f"{p}.add"].time_limit == 45


def test_cargo_task_limits_override_the_decorators_explicit_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    limits = f'{{"{p}.typed": {{"time_limit": 99, "memory_mb": 300, "max_retries": 0}}}}'
    app = app_for(module, CARGO_TASK_LIMITS=limits)
    policy = loaded(app)[f"{p}.typed"].policy
    assert (policy.time_limit, policy.memory_limit_mb, policy.max_retries) == (99, 300, 0)
    assert app.tasks[f"{p}.typed"].max_retries == 0


def test_autoretry_for_leaves_retries_to_celery_and_dont_autoretry_for_is_never_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    tasks = loaded(app_for(module))
    assert tasks[f"{p}.auto"].policy.celery_autoretry
    assert not tasks[f"{p}.add"].policy.celery_autoretry
    picky = tasks[f"{p}.picky"].policy
    assert not picky.retryable(KeyError("x"))
    assert picky.retryable(RuntimeError("x"))
    assert not picky.retryable(PermanentError("x"))


def test_options_of_a_cargo_subclass_base_count_as_declared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    app = app_for(module)
    assert loaded(app)[f"{p}.based"].policy.max_retries == 9
    # It still reaches the worker's runtime (dead-lettering, events, memory guard).
    assert runtime_of(app.tasks[f"{p}.based"]) is runtime_of(app)


def test_a_base_class_that_is_not_cargos_stops_the_worker_naming_the_task_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch, '''
from celery import Task, shared_task

class Plain(Task):
    pass

@shared_task(name="{p}.plain", base=Plain)
def plain() -> None:
    pass
''')
    with pytest.raises(ConfigError) as caught:
        app_for(module)
    assert f"{p}.plain" in str(caught.value)
    assert "CargoBaseTask" in str(caught.value)
    assert "CARGO_TASK_MODULES" in str(caught.value)


def test_a_module_that_does_not_import_names_the_variable_the_module_and_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        app_for("workers.builtin,nosuchmodule_for_cargo")
    message = str(caught.value)
    assert "CARGO_TASK_MODULES" in message
    assert "nosuchmodule_for_cargo" in message
    assert "ModuleNotFoundError" in message


def test_a_module_that_raises_on_import_names_its_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, _ = team_module(tmp_path, monkeypatch, 'raise RuntimeError("no config here")\n')
    with pytest.raises(ConfigError, match="RuntimeError: no config here"):
        app_for(module)


def test_modules_without_any_task_stop_the_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, _ = team_module(tmp_path, monkeypatch, "VALUE = 1\n")
    with pytest.raises(ConfigError, match="define no Celery task"):
        app_for(module)


def test_a_task_whose_hints_do_not_resolve_stops_the_worker_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch, '''
from __future__ import annotations
from celery import shared_task

@shared_task(name="{p}.broken")
def broken(x: NoSuchType) -> None:
    pass
''')
    with pytest.raises(ConfigError, match=f"{p}.broken"):
        app_for(module)


@pytest.mark.parametrize(("options", "wording"), [
    ({"max_retries": None}, "max_retries"),
    ({"max_retries": -1}, "max_retries"),
    ({"cargo_memory_limit_mb": 0}, "cargo_memory_limit_mb"),
    ({"cargo_memory_limit_mb": 1.5}, "cargo_memory_limit_mb"),
    ({"time_limit": "soon"}, "time_limit"),
    ({"dont_autoretry_for": ("KeyError",)}, "dont_autoretry_for"),
])
def test_an_option_cargo_cannot_use_is_refused_naming_it(options: dict[str, Any],
                                                         wording: str) -> None:
    with pytest.raises(InvalidTaskOption, match=wording):
        policy_from_options("t", options, load_settings({}))


def test_retry_backoff_true_is_a_one_second_base_and_a_number_is_seconds() -> None:
    settings = load_settings({"CARGO_RETRY_BACKOFF": "5"})
    assert policy_from_options("t", {"retry_backoff": True}, settings).retry_backoff == 1.0
    assert policy_from_options("t", {"retry_backoff": 0.25}, settings).retry_backoff == 0.25
    assert policy_from_options("t", {"retry_backoff": False}, settings).retry_backoff == 5.0
    assert policy_from_options("t", {}, settings).retry_backoff == 5.0


@pytest.mark.parametrize(("state", "meta", "progress"), [
    ("PROGRESS", {"done": 3, "total": 10}, {"done": 3, "total": 10}),
    ("PROGRESS", None, {}),
    ("PROGRESS", 7, {"meta": 7}),
    ("UPLOADING", {"file": "a.csv"}, {"state": "UPLOADING", "file": "a.csv"}),
    ("UPLOADING", None, {"state": "UPLOADING"}),
    ("SUCCESS", {"x": 1}, None),
    ("FAILURE", {"x": 1}, None),
    ("STARTED", {}, None),
    (None, {"x": 1}, None),
])
def test_update_state_maps_custom_states_to_progress_and_ignores_celerys_own(
    state: str | None, meta: Any, progress: dict[str, Any] | None,
) -> None:
    assert progress_of_state(state, meta) == progress


def test_update_state_outside_a_worker_or_for_another_task_does_not_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    task = app_for(module).tasks[f"{p}.add"]
    task.update_state(state="PROGRESS", meta={"done": 1})
    task.update_state(task_id="someone-else", state="PROGRESS", meta={"done": 1})


def test_an_announcement_offers_only_the_tasks_of_the_queues_the_worker_consumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, p = team_module(tmp_path, monkeypatch)
    settings = load_settings({"CARGO_TASK_MODULES": module, "CARGO_CATALOG_INTERVAL": "10",
                              "RABBITMQ_URL": "amqp://u:p@rabbit:5672/team"})
    tasks = loaded(create_app(settings))
    started = datetime(2026, 1, 1, tzinfo=UTC)
    announcement = build_announcement(worker="w1@host", settings=settings, started_at=started,
                                      tasks=tasks, consumed=["cargo"])
    decoded = decode_announcement(announcement.encode(), "team")
    assert decoded.ttl == 30
    assert decoded.queues == ("cargo",)
    offered = {t.name: t for t in decoded.tasks}
    assert f"{p}.typed" not in offered  # routed to <p>-reports, not consumed here
    assert offered[f"{p}.add"].doc == "Add two things."
    assert offered[f"{p}.add"].limits.max_retries == 3
    withdrawn = build_announcement(worker="w1@host", settings=settings, started_at=started,
                                   tasks=tasks, consumed=["cargo"], withdrawn=True)
    assert withdrawn.withdrawn
    assert withdrawn.tasks == ()


def test_every_loaded_task_acks_late_and_rejects_on_a_lost_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module, _ = team_module(tmp_path, monkeypatch)
    app = app_for(f"workers.builtin,{module}")
    for name in loaded(app):
        task = app.tasks[name]
        assert task.acks_late is True, name
        assert task.reject_on_worker_lost is True, name
        assert task.serializer == "json", name


def test_a_worker_consumes_its_tasks_queues_unless_told_which_queues_to_consume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from workers.announce import consumed_queues

    module, p = team_module(tmp_path, monkeypatch)
    assert set(consumed_queues(app_for(module))) == {"cargo", f"{p}-reports"}
    told = app_for(module, CARGO_WORKER_QUEUES="cargo,extra")
    assert consumed_queues(told) == ("cargo", "extra")
    # A queue only named in CARGO_WORKER_QUEUES is declared with Cargo's guarantees too.
    assert "extra" in {q.name for q in told.conf.task_queues}


def test_an_announcement_that_cannot_be_published_is_logged_and_never_raised() -> None:
    from broker.topology import build_topology
    from workers.announce import Announcer

    settings = load_settings({})
    app = create_app(settings)

    def unreachable() -> Any:
        raise ConnectionRefusedError("broker down")

    announcer = Announcer(app, settings, build_topology(settings), loaded(app),
                          connect=unreachable)
    announcer.worker, announcer.consumed = "w1@host", ("cargo",)
    with structlog.testing.capture_logs() as logs:
        assert announcer.publish() is False
        assert announcer.publish(withdrawn=True) is False
    assert any(entry["event"] == "catalog.announce_failed" and entry["worker"] == "w1@host"
               and "broker down" in entry["error"] for entry in logs)
