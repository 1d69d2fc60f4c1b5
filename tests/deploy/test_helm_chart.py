"""helm/cargo: rendered and linted by a real helm, every object checked against its schema.

Scenarios: the default values and every helm/cargo/ci/*-values.yaml. Built-in objects are
validated against Kubernetes 1.30's strict schemas (kubernetes-validate), custom resources
against their CRDs in ../shared/crds/ made strict; checkov runs on the rendered chart. The
KEDA trigger against a real RabbitMQ is tests/deploy/test_keda_scaling.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.settings import Settings, load_settings
from broker.topology import build_topology
from tests.deploy.chart import (
    CHART,
    CHECKOV_SKIP,
    HELM_MIN,
    NAMESPACE,
    REPO,
    SCENARIOS,
    crd_errors,
    find,
    find_checkov,
    helm,
    is_builtin,
    kubernetes_errors,
    pod_specs,
    render,
    render_scenario,
    render_text,
)

OPS_RULES = REPO / "ops" / "prometheus" / "rules.yml"
OPS_DASHBOARDS = REPO / "ops" / "grafana"
CUSTOM_KINDS = {"ScaledObject", "TriggerAuthentication", "ServiceMonitor", "PodMonitor",
                "PrometheusRule", "RabbitmqCluster"}
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def configmap_env(objects: Any) -> dict[str, str]:
    data: dict[str, str] = find(objects, "ConfigMap", "-config")["data"]
    return data


def settings_of(objects: Any, rabbitmq_url: str = "amqp://u:p@rabbit:5672/%2F") -> Settings:
    """What a Cargo process in these pods would load: the ConfigMap plus the broker URL."""
    return load_settings({**configmap_env(objects), "RABBITMQ_URL": rabbitmq_url})


def worker_deployments(objects: Any) -> list[dict[str, Any]]:
    """The worker pools' Deployments (component worker), in render order."""
    return [o for o in objects if o["kind"] == "Deployment"
            and o["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"]


def container_env(deployment: dict[str, Any]) -> dict[str, str]:
    """The plain-valued env of a Deployment's first container (secretKeyRefs left out)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def pools(default: dict[str, Any], *others: dict[str, Any]) -> str:
    """A --set-json workerPools=...: the default pool (with `default`'s keys) and `others`,
    each given the built-in module unless it names its own."""
    listed = [{"name": "default", "taskModules": ["workers.builtin"], **default},
              *({"taskModules": ["workers.builtin"], **pool} for pool in others)]
    return "workerPools=" + json.dumps(listed)


# --- helm itself ------------------------------------------------------------------------


def test_helm_is_a_real_helm_new_enough() -> None:
    version = helm("version", "--short").stdout.strip()
    match = re.match(r"v(\d+)\.(\d+)\.(\d+)", version)
    assert match, version
    assert (int(match[1]), int(match[2])) >= HELM_MIN, f"helm {version} is older than 3.17"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_chart_lints_strictly(scenario: str) -> None:
    args = [] if scenario == "default" else ["-f", str(CHART / "ci" / f"{scenario}-values.yaml")]
    result = helm("lint", "--strict", CHART, *args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout, result.stdout


def test_there_are_scenarios_for_each_broker_mode_the_bridge_monitoring_scale_to_zero_and_pools(
) -> None:
    assert {"external-broker", "operator-cluster", "existing-cluster", "bridge",
            "monitoring-off", "scale-to-zero", "two-pools"} <= set(SCENARIOS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCount=3"], "Additional property replicaCount is not allowed"),
        (["--set", "keda.valu=5"], "Additional property valu is not allowed"),
        (["--set", "config.taskQueu=jobs"], "Additional property taskQueu is not allowed"),
        (["--set", "keda.value=many"], "keda.value: Invalid type. Expected: number"),
        (["--set", "worker.concurrency=two"], "worker.concurrency: Invalid type"),
        (["--set", "gateway.maxUnavailable=1"], "gateway.maxUnavailable"),
        (["--set", "containerSecurityContext.readOnlyRootFilesystem=false"],
         "readOnlyRootFilesystem"),
        (["--set", "rabbitmq.mode=amazonmq"], "rabbitmq.mode"),
        (["--set", "config.logLevel=LOUD"], "config.logLevel"),
        (["--set-json", 'config.taskLimits={"sleep":{"timelimit":5}}'],
         "Additional property timelimit is not allowed"),
        (["--set", "config.brokerHeartbeat=-1"], "config.brokerHeartbeat"),
        (["--set-json", "config.brokerHeartbeat=2.5"], "config.brokerHeartbeat: Invalid type"),
        (["--set", "config.brokerCheckInterval=0"], "config.brokerCheckInterval"),
        (["--set-json", pools({"queus": ["cargo"]})],
         "workerPools.0: Additional property queus is not allowed"),
        (["--set-json", pools({"name": "Reports_1"})],
         "workerPools.0.name: Does not match pattern"),
        (["--set-json", pools({"name": "r" * 31})], "workerPools.0.name"),
        (["--set-json", pools({"queues": []})],
         "workerPools.0.queues: Array must have at least 1 items"),
        (["--set-json", pools({"queues": ["reports", "bad queue"]})],
         "workerPools.0.queues.1: Does not match pattern"),
        (["--set-json", pools({"taskModules": ["acme-tasks"]})],
         "workerPools.0.taskModules.0: Does not match pattern"),
        (["--set-json", 'workerPools=[{"name": "default"}]'],
         "workerPools.0: taskModules is required"),
        (["--set-json", "workerPools=[]"], "workerPools: Array must have at least 1 items"),
        (["--set-json", pools({"keda": {"valu": 5}})],
         "workerPools.0.keda: Additional property valu is not allowed"),
        (["--set-json", pools({"minReplicas": -1})], "workerPools.0.minReplicas"),
        (["--set-json", pools({"image": {"tag": "1.0"}})],
         "workerPools.0.image: repository is required"),
        (["--set-json", pools({"env": [{"name": "A", "vaule": "b"}]})],
         "workerPools.0.env.0: Additional property vaule is not allowed"),
        (["--set-json", pools({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}})],
         "workerPools.0.resources: limits is required"),
    ],
    ids=["unknown-top-level", "unknown-nested", "unknown-config", "wrong-type", "wrong-type-int",
         "gateway-max-unavailable", "writable-root", "unknown-mode", "bad-enum",
         "unknown-task-limit", "negative-heartbeat", "fractional-heartbeat",
         "zero-check-interval", "pool-unknown-key", "pool-bad-name", "pool-long-name",
         "pool-empty-queues", "pool-bad-queue", "pool-bad-module", "pool-without-modules",
         "no-pools", "pool-unknown-keda-key", "pool-negative-min", "pool-image-without-repo",
         "pool-env-typo", "pool-resources-without-limits"],
)
def test_the_schema_rejects_a_bad_value(args: list[str], message: str) -> None:
    result = helm("template", "cargo", CHART, *args, check=False)
    assert result.returncode != 0, f"helm accepted {args}"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "worker.terminationGracePeriodSeconds=3600"],
         'pool "default": terminationGracePeriodSeconds (3600) must exceed the longest hard '
         "time limit (3660 s)"),
        (["--set-json", 'config.taskLimits={"sleep":{"time_limit":7200}}'],
         "must exceed the longest hard time limit (7200 s)"),
        (["--set", "rabbitmq.mode=external"], "needs rabbitmq.external.existingSecret"),
        (["--set", "rabbitmq.vhost=jobs"], "rabbitmq.mode cluster uses the operator's default"),
        (["--set", "gateway.pdb.minAvailable=2"], "no node could be drained"),
        (["--set", "keda.minReplicaCount=30"], "must not exceed keda.maxReplicaCount"),
        (["--set-json", pools({}, {"name": "default", "queues": ["reports"]})],
         'two pools are named "default"'),
        (["--set-json", pools({}, {"name": "reports", "queues": ["reports", "cargo"]})],
         'queue "cargo" is in pools "default" and "reports"'),
        (["--set-json", pools({"queues": ["cargo", "reports"]},
                              {"name": "reports", "queues": ["reports"]})],
         'queue "reports" is in pools "default" and "reports"'),
        (["--set-json", pools({"minReplicas": 4, "maxReplicas": 3})],
         'pool "default" has minReplicas (4) above maxReplicas (3)'),
        (["--set-json", pools({}, {"name": "reports", "queues": ["reports"], "maxReplicas": 1}),
          "--set", "keda.minReplicaCount=2"],
         'pool "reports" has minReplicas (2) above maxReplicas (1)'),
        (["--set-json", pools({}, {"name": "reports", "queues": ["reports"],
                                   "longestTimeLimit": 7200})],
         'pool "reports": terminationGracePeriodSeconds (3720) must exceed the longest hard '
         "time limit (7200 s)"),
        (["--set-json", pools({}, {"name": "reports", "queues": ["reports"],
                                   "terminationGracePeriodSeconds": 600})],
         'pool "reports": terminationGracePeriodSeconds (600) must exceed'),
        (["--set-json", pools({"queues": ["jobs"]})],
         'no pool consumes config.taskQueue ("cargo")'),
        (["--set-json", pools({}, {"name": "reports", "queues": ["reports.XQ"]})],
         'queue "reports.XQ" ends like a dead-letter'),
        (["--set-json", pools({}, {"name": "reports", "queues": ["cargo.catalog.stream"]})],
         'queue "cargo.catalog.stream" is reserved'),
        (["--set-json", pools({"env": [{"name": "CARGO_WORKER_QUEUES", "value": "x"}]})],
         "env CARGO_WORKER_QUEUES is set by the chart"),
        (["--set-json", pools({}, {"name": "r" * 30, "queues": ["a"]},
                              {"name": "r" * 29 + "s", "queues": ["b"]}),
          "--set", "fullnameOverride=" + "c" * 40],
         "once cut to 63 characters"),
    ],
    ids=["grace-below-builtin", "grace-below-task-limit", "external-without-secret",
         "cluster-vhost", "pdb-blocks-drains", "keda-min-above-max", "pool-duplicate-name",
         "queue-in-two-pools", "queue-in-two-pools-default-first", "pool-min-above-max",
         "pool-inherited-min-above-max", "pool-grace-below-its-modules",
         "pool-grace-below-builtin", "task-queue-unconsumed", "pool-dead-letter-queue",
         "pool-reserved-queue", "pool-env-overrides-chart", "pool-names-collide-when-cut"],
)
def test_the_chart_refuses_values_that_break_it(args: list[str], message: str) -> None:
    result = helm("template", "cargo", CHART, *args, check=False)
    assert result.returncode != 0, f"helm accepted {args}"
    assert message in result.stderr, result.stderr


# --- every object against its schema ------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_rendered_object_validates_strictly(scenario: str) -> None:
    pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed "
                        "(pip install -e '.[dev]'; scripts/bootstrap.sh does)")
    objects = render_scenario(scenario)
    assert objects
    problems, builtin, custom = [], 0, 0
    for obj in objects:
        name = f"{obj['kind']} {obj['metadata']['name']}"
        if is_builtin(obj):
            builtin += 1
            problems += [f"{name}: {e}" for e in kubernetes_errors(obj)]
        else:
            errors = crd_errors(obj)
            assert errors is not None, f"{name}: no CRD in shared/crds covers {obj['apiVersion']}"
            custom += 1
            problems += [f"{name}: {e}" for e in errors]
    assert not problems, "\n".join(problems)
    assert builtin + custom == len(objects)
    print(f"{scenario}: {builtin} built-in + {custom} custom objects validated")


def test_the_strict_checks_catch_a_misspelt_field() -> None:
    """The validators can fail: a typo in a Deployment and in each custom resource."""
    pytest.importorskip("kubernetes_validate")
    objects = render_scenario("default")
    deployment = find(objects, "Deployment", "-worker-default")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    assert any("livenesProbe" in e for e in kubernetes_errors(deployment))
    seen = set()
    for obj in objects:
        if obj["kind"] in CUSTOM_KINDS:
            broken = json.loads(json.dumps(obj))
            broken["spec"]["replicaz"] = 1
            errors = crd_errors(broken)
            assert errors, obj["kind"]
            assert any("replicaz" in e for e in errors), obj["kind"]
            seen.add(obj["kind"])
    assert seen == CUSTOM_KINDS


def test_the_scenarios_render_every_custom_resource_kind() -> None:
    kinds = {o["kind"] for s in SCENARIOS for o in render_scenario(s)}
    assert kinds >= CUSTOM_KINDS | {"Deployment", "Service", "HorizontalPodAutoscaler",
                                    "PodDisruptionBudget", "CronJob", "ServiceAccount", "Role",
                                    "RoleBinding", "ConfigMap", "NetworkPolicy", "Pod"}
    assert "Secret" not in kinds, "the chart must reference Secrets, never make them"


# Short names a template's file may use for the kind it holds, as kubectl does.
KIND_FILE_NAMES = {"PodDisruptionBudget": "pdb", "HorizontalPodAutoscaler": "hpa"}


def test_every_template_holds_one_kind_and_is_named_for_it() -> None:
    """templates/[<component>-]<kind>.yaml: an object is found by its kind, and a file says
    what it holds (several objects of one kind may share a file)."""
    kinds_by_file: dict[str, set[str]] = {}
    for scenario in SCENARIOS:
        for doc in re.split(r"^---\s*$", render_text(scenario=scenario), flags=re.M):
            source = re.search(r"^# Source: cargo/(templates/\S+)$", doc, re.M)
            obj = yaml.safe_load(doc)
            if source and obj:
                kinds_by_file.setdefault(source[1], set()).add(obj["kind"])
    mixed = {f: sorted(k) for f, k in kinds_by_file.items() if len(k) > 1}
    assert not mixed, f"templates holding more than one kind: {mixed}"
    misnamed = [
        f"{f} holds {kind}" for f, (kind,) in kinds_by_file.items()
        if not Path(f).stem.replace("-", "").endswith(KIND_FILE_NAMES.get(kind, kind.lower()))
    ]
    assert not misnamed, f"templates not named for the kind they hold: {misnamed}"
    on_disk = {str(p.relative_to(CHART)) for p in (CHART / "templates").rglob("*.yaml")}
    assert on_disk == set(kinds_by_file), (
        f"templates no scenario renders: {sorted(on_disk - set(kinds_by_file))}"
    )


# --- checkov -------------------------------------------------------------------------------


@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", ["default", "operator-cluster", "external-broker", "bridge",
                                      "two-pools"])
def test_checkov_finds_no_unskipped_failure_in_the_rendered_chart(
    scenario: str, tmp_path: Path
) -> None:
    checkov = find_checkov()
    if checkov is None:
        pytest.fail("checkov is not installed: run scripts/tools.sh (scripts/test.sh does)",
                    pytrace=False)
    manifest = tmp_path / "cargo.yaml"
    manifest.write_text(render_text(scenario=scenario))
    result = subprocess.run(
        [checkov, "--file", str(manifest), "--framework", "kubernetes", "--compact",
         "--skip-download", "--output", "json"],
        capture_output=True, text=True, timeout=280, check=False, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "HOME": str(tmp_path)},
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}"
              for c in report["results"]["failed_checks"]]
    assert not failed, "checkov failures without an inline, reasoned skip:\n" + "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert report["summary"]["passed"] > 100, report["summary"]
    print(f"checkov {scenario}: {report['summary']}")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_checkov_skip_names_a_check_and_gives_a_reason(scenario: str) -> None:
    for obj in render_scenario(scenario):
        for key, value in (obj["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                assert CHECKOV_SKIP.match(value), f"{obj['kind']} {key}: {value!r}"


# --- the one rules file and the dashboards -------------------------------------------------


def test_the_prometheus_rule_is_the_ops_rules_file_itself() -> None:
    link = CHART / "files" / "prometheus" / "rules.yml"
    assert link.is_symlink(), "helm/cargo/files/prometheus/rules.yml must link to ops/, not copy"
    assert link.resolve() == OPS_RULES.resolve()
    rule = find(render_scenario("default"), "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(OPS_RULES.read_text())["groups"]
    text = json.dumps(rule)
    assert "{{ $labels.name }}" in text, "Prometheus' own templates must pass through unexpanded"


def test_the_dashboards_configmap_is_ops_grafana_itself() -> None:
    link = CHART / "files" / "grafana"
    assert link.is_symlink()
    assert link.resolve() == OPS_DASHBOARDS.resolve()
    cm = find(render_scenario("default"), "ConfigMap", "-dashboards")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboards = {p.name: json.loads(p.read_text()) for p in OPS_DASHBOARDS.glob("*.json")}
    assert dashboards
    assert sorted(cm["data"]) == sorted(dashboards)
    for name, text in cm["data"].items():
        assert json.loads(text) == dashboards[name], name


def test_helm_package_carries_the_linked_files(tmp_path: Path) -> None:
    """A packaged chart (what a repository serves) holds the real rules and dashboards."""
    helm("package", CHART, "--destination", tmp_path)
    (package,) = tmp_path.glob("cargo-*.tgz")
    with tarfile.open(package) as tar:
        rules = tar.extractfile("cargo/files/prometheus/rules.yml")
        assert rules is not None
        assert rules.read().decode() == OPS_RULES.read_text()
        names = {Path(m.name).name for m in tar.getmembers() if "/files/grafana/" in m.name}
    assert names == {p.name for p in OPS_DASHBOARDS.glob("*.json")}


@pytest.mark.parametrize("switch", ["serviceMonitor", "podMonitor", "prometheusRule",
                                    "grafanaDashboards"])
def test_each_monitoring_object_has_its_own_switch(switch: str) -> None:
    kinds = {"serviceMonitor": "ServiceMonitor", "podMonitor": "PodMonitor",
             "prometheusRule": "PrometheusRule", "grafanaDashboards": "ConfigMap"}
    on = [o for o in render_scenario("default") if o["kind"] == kinds[switch]]
    off = [o for o in render("--set", f"monitoring.{switch}.enabled=false")
           if o["kind"] == kinds[switch]]
    assert len(off) == len(on) - (1 if switch == "grafanaDashboards" else len(on))


def test_the_scrape_jobs_are_the_ones_the_rules_and_dashboards_expect() -> None:
    objects = render_scenario("bridge")
    jobs = set()
    for obj in objects:
        if obj["kind"] in ("ServiceMonitor", "PodMonitor"):
            spec = obj["spec"]
            for endpoint in spec.get("endpoints") or spec.get("podMetricsEndpoints"):
                jobs |= {r["replacement"] for r in endpoint["relabelings"]
                         if r["targetLabel"] == "job"}
    expected = {j["job_name"] for j in
                yaml.safe_load((REPO / "ops/prometheus/prometheus.yml").read_text())
                ["scrape_configs"]}
    # cargo-canary is the Pushgateway's job, scraped by the Pushgateway's own chart.
    assert jobs >= expected - {"cargo-canary"}
    assert "cargo-bridge" in jobs


# --- settings, KEDA and the workers' queue ------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cargo_accepts_the_rendered_settings(scenario: str) -> None:
    settings = settings_of(render_scenario(scenario))
    assert settings.worker_metrics_port == VALUES["worker"]["metricsPort"]


def test_every_config_value_is_a_cargo_setting_with_the_applications_default() -> None:
    env = configmap_env(render_scenario("default"))
    defaults = Settings()
    for key in VALUES["config"]:
        field = re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
        assert field in Settings.model_fields, f"config.{key} is no Cargo setting"
        if key in ("logFormat", "bridgeMaxPriority"):
            continue  # json for log collectors; null: unset
        ours = settings_of(render_scenario("default"))
        assert getattr(ours, field) == getattr(defaults, field), f"config.{key}"
        assert f"CARGO_{field.upper()}" in env


def test_the_keda_trigger_watches_the_queue_the_workers_consume() -> None:
    for args in ([], ["--set", "config.taskQueue=jobs.high"]):
        objects = render(*args)
        scaled = find(objects, "ScaledObject")
        worker = find(objects, "Deployment", "-worker-default")
        assert scaled["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": worker["metadata"]["name"]}
        (trigger,) = scaled["spec"]["triggers"]
        assert trigger["type"] == "rabbitmq"
        meta = trigger["metadata"]
        assert meta["protocol"] == "http"
        assert meta["mode"] == "QueueLength"
        # the workers' queue: what Celery's task_queues take from broker.topology
        topology = build_topology(settings_of(objects))
        assert meta["queueName"] == topology.default_queue.name
        # the default pool follows config.taskQueue: its workers consume that queue
        assert container_env(worker)["CARGO_WORKER_QUEUES"] == meta["queueName"]
        assert worker["spec"]["template"]["spec"]["containers"][0]["envFrom"][0][
            "configMapRef"]["name"] == find(objects, "ConfigMap", "-config")["metadata"]["name"]
        auth = find(objects, "TriggerAuthentication")
        assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {"username",
                                                                             "password"}
    assert meta["queueName"] == "jobs.high"


def test_keda_reads_the_external_brokers_credentials_from_its_secret() -> None:
    objects = render_scenario("external-broker")
    (ref,) = find(objects, "TriggerAuthentication")["spec"]["secretTargetRef"]
    assert ref == {"parameter": "host", "name": "cargo-rabbitmq", "key": "managementUrl"}
    meta = find(objects, "ScaledObject")["spec"]["triggers"][0]["metadata"]
    assert meta["vhostName"] == "cargo"
    assert "host" not in meta


def test_keda_values_reach_the_scaled_object() -> None:
    spec = find(render_scenario("scale-to-zero"), "ScaledObject")["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["cooldownPeriod"]) == (0, 5, 600)
    meta = spec["triggers"][0]["metadata"]
    assert (meta["value"], meta["activationValue"]) == ("10", "2")
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 60}]


def test_no_replica_count_fights_an_autoscaler() -> None:
    """`helm upgrade` must not reset what KEDA or the HPA decided."""
    objects = render_scenario("default")
    assert "replicas" not in find(objects, "Deployment", "-worker-default")["spec"]
    assert "replicas" not in find(objects, "Deployment", "-gateway")["spec"]
    fixed = render_scenario("monitoring-off")
    assert find(fixed, "Deployment", "-worker-default")["spec"]["replicas"] == 3
    assert find(fixed, "Deployment", "-gateway")["spec"]["replicas"] == 2


# --- workers ---------------------------------------------------------------------------------


def builtin_longest_time_limit() -> int:
    """The longest hard time limit of workers.builtin's tasks: sleep and memory_leak_task run
    for at most MAX_SLEEP_SECONDS / MAX_LEAK_SECONDS, and their hard limit is 60 s more."""
    from workers import tasks

    return max(tasks.MAX_SLEEP_SECONDS + 60, tasks.MAX_LEAK_SECONDS + 60)


def test_the_worker_grace_period_outlasts_the_longest_hard_time_limit_in_every_pool() -> None:
    builtin = builtin_longest_time_limit()
    assert VALUES["worker"]["longestTimeLimit"] == builtin, (
        "worker.longestTimeLimit is out of step with workers/tasks.py")
    checked = 0
    for scenario in SCENARIOS:
        objects = render_scenario(scenario)
        settings = settings_of(objects)
        declared = {pool["name"]: pool.get("longestTimeLimit", builtin)
                    for pool in scenario_values(scenario).get("workerPools", [])}
        for pool, deployment in pool_objects(objects, "Deployment").items():
            modules = container_env(deployment)["CARGO_TASK_MODULES"].split(",")
            longest = max([declared.get(pool, builtin), settings.time_limit,
                           *(t.time_limit for t in settings.task_limits.values()
                             if t.time_limit)])
            if "workers.builtin" in modules:
                longest = max(longest, builtin)
            spec = deployment["spec"]["template"]["spec"]
            assert spec["terminationGracePeriodSeconds"] > longest, (scenario, pool)
            checked += 1
    assert checked > len(SCENARIOS), "the two-pools scenario has two worker Deployments"


def scenario_values(scenario: str) -> dict[str, Any]:
    """A scenario's own values file (empty for the defaults)."""
    if scenario == "default":
        return {}
    values: dict[str, Any] = yaml.safe_load(
        (CHART / "ci" / f"{scenario}-values.yaml").read_text())
    return values


def test_the_worker_probes_are_the_cheap_heartbeat_checks(tmp_path: Path) -> None:
    objects = render_scenario("default")
    env = configmap_env(objects)
    container = find(objects, "Deployment", "-worker-default")["spec"]["template"]["spec"][
        "containers"][0]
    assert container["args"][0] == "worker"
    for probe, mode in (("startupProbe", "--liveness"), ("livenessProbe", "--liveness"),
                        ("readinessProbe", "--readiness")):
        command = container[probe]["exec"]["command"]
        assert "inspect" not in command
        assert "celery" not in command
        assert command[:3] == ["cargoctl", "worker", "health"]
        assert command[-1] == mode
        assert command[command.index("--file") + 1] == env["CARGO_WORKER_HEARTBEAT_FILE"]
        assert float(command[command.index("--max-age") + 1]) == float(
            env["CARGO_WORKER_HEARTBEAT_MAX_AGE"])
        # The real command line: with no heartbeat file it says "not live/ready" (exit 1),
        # not a usage error (exit 2).
        missing = tmp_path / "none.json"
        argv = [str(REPO / ".venv" / "bin" / "cargoctl"), *command[1:]]
        argv[argv.index("--file") + 1] = str(missing)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("not live" if mode == "--liveness" else "not ready")
    assert [p["name"] for p in container["ports"]] == ["metrics"], "the canary finds it by name"


def test_the_bridge_runs_with_its_probes_and_settings_when_enabled() -> None:
    assert not [o for o in render_scenario("default") if o["metadata"]["name"].endswith("-bridge")
                and o["kind"] == "Deployment"]
    objects = render_scenario("bridge")
    container = find(objects, "Deployment", "-bridge")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["bridge"]
    assert container["livenessProbe"]["exec"]["command"][:3] == ["cargoctl", "bridge", "health"]
    assert settings_of(objects).bridge_queue_names == ("default", "reports")


# --- worker pools ----------------------------------------------------------------------------


def pool_objects(objects: Any, kind: str) -> dict[str, dict[str, Any]]:
    """The worker objects of one kind by pool name (label cargo.io/pool)."""
    found: dict[str, dict[str, Any]] = {}
    for obj in objects:
        labels = obj["metadata"]["labels"]
        if obj["kind"] == kind and labels.get("app.kubernetes.io/component") == "worker" and (
                "cargo.io/pool" in labels):
            assert labels["cargo.io/pool"] not in found, f"two {kind}s for one pool"
            found[labels["cargo.io/pool"]] = obj
    return found


def trigger_queues(scaled: dict[str, Any]) -> list[str]:
    return [t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]]


def test_the_default_values_give_one_pool_like_the_single_worker_of_before() -> None:
    objects = render_scenario("default")
    (deployment,) = worker_deployments(objects)
    assert deployment["metadata"]["name"] == "cargo-worker-default"
    assert set(pool_objects(objects, "ScaledObject")) == {"default"}
    assert set(pool_objects(objects, "PodDisruptionBudget")) == {"default"}
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["args"] == ["worker", "--concurrency",
                                 str(VALUES["worker"]["concurrency"])]
    assert container["resources"] == VALUES["worker"]["resources"]
    assert spec["terminationGracePeriodSeconds"] == VALUES["worker"][
        "terminationGracePeriodSeconds"]
    env = container_env(deployment)
    assert env["CARGO_WORKER_QUEUES"] == VALUES["config"]["taskQueue"] == "cargo"
    assert env["CARGO_TASK_MODULES"] == "workers.builtin"
    assert env["CARGO_MEMORY_LIMIT_MB"] == str(VALUES["config"]["memoryLimitMb"])
    scaled = pool_objects(objects, "ScaledObject")["default"]["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (
        VALUES["keda"]["minReplicaCount"], VALUES["keda"]["maxReplicaCount"])
    assert (scaled["pollingInterval"], scaled["cooldownPeriod"]) == (
        VALUES["keda"]["pollingInterval"], VALUES["keda"]["cooldownPeriod"])
    assert trigger_queues(pool_objects(objects, "ScaledObject")["default"]) == ["cargo"]
    assert scaled["triggers"][0]["metadata"]["value"] == str(VALUES["keda"]["value"])


def test_the_two_pools_scenario_renders_a_deployment_a_scaled_object_and_a_pdb_per_pool() -> None:
    objects = render_scenario("two-pools")
    deployments = pool_objects(objects, "Deployment")
    scaled = pool_objects(objects, "ScaledObject")
    budgets = pool_objects(objects, "PodDisruptionBudget")
    assert set(deployments) == set(scaled) == set(budgets) == {"default", "reports"}
    assert len(worker_deployments(objects)) == 2
    for pool in ("default", "reports"):
        name = f"cargo-worker-{pool}"
        assert deployments[pool]["metadata"]["name"] == name
        assert scaled[pool]["metadata"]["name"] == name
        assert budgets[pool]["metadata"]["name"] == name
        assert scaled[pool]["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert budgets[pool]["spec"]["selector"] == deployments[pool]["spec"]["selector"]
    # Each ScaledObject watches its own pool's queues and only those.
    assert trigger_queues(scaled["default"]) == ["cargo"]
    assert trigger_queues(scaled["reports"]) == ["reports"]
    # Each Deployment's workers consume those queues, load their modules, guard their memory.
    default_env, reports_env = (container_env(deployments[p]) for p in ("default", "reports"))
    assert (default_env["CARGO_WORKER_QUEUES"], default_env["CARGO_TASK_MODULES"],
            default_env["CARGO_MEMORY_LIMIT_MB"]) == (
        "cargo", "workers.builtin,acme_tasks.images", "256")
    assert (reports_env["CARGO_WORKER_QUEUES"], reports_env["CARGO_TASK_MODULES"],
            reports_env["CARGO_MEMORY_LIMIT_MB"]) == ("reports", "acme_tasks.reports", "64")
    assert reports_env["ACME_REPORTS_BUCKET"] == "acme-reports"
    assert "ACME_REPORTS_BUCKET" not in default_env
    # The reports pool's own KEDA target and bounds; the default pool keeps keda.*.
    reports = scaled["reports"]["spec"]
    assert (reports["minReplicaCount"], reports["maxReplicaCount"]) == (1, 3)
    assert (reports["triggers"][0]["metadata"]["value"],
            reports["triggers"][0]["metadata"]["activationValue"]) == ("5", "0")
    default = scaled["default"]["spec"]
    assert (default["minReplicaCount"], default["maxReplicaCount"]) == (1, 20)
    assert default["triggers"][0]["metadata"]["value"] == "20"
    # Its own size and node group.
    reports_pod = deployments["reports"]["spec"]["template"]["spec"]
    assert reports_pod["containers"][0]["args"] == ["worker", "--concurrency", "1"]
    assert reports_pod["containers"][0]["resources"]["limits"] == {"cpu": "1",
                                                                   "memory": "512Mi"}
    assert reports_pod["nodeSelector"] == {"cargo.io/node-group": "reports"}
    assert reports_pod["terminationGracePeriodSeconds"] == 660
    assert deployments["default"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"] == VALUES["worker"]["terminationGracePeriodSeconds"]
    assert "nodeSelector" not in deployments["default"]["spec"]["template"]["spec"]
    # One TriggerAuthentication serves both.
    auth = find(objects, "TriggerAuthentication")
    for scaled_object in scaled.values():
        assert {t["authenticationRef"]["name"] for t in scaled_object["spec"]["triggers"]} == {
            auth["metadata"]["name"]}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_pools_environment_is_a_worker_configuration_cargo_accepts(scenario: str) -> None:
    """What a worker of each pool loads (the ConfigMap, then the pool's env, which wins):
    exactly its queues, its modules and its memory limit, and a topology declaring them."""
    objects = render_scenario(scenario)
    config = configmap_env(objects)
    for pool, deployment in pool_objects(objects, "Deployment").items():
        env = container_env(deployment)
        settings = load_settings({**config, **env, "RABBITMQ_URL": "amqp://u:p@rabbit:5672/%2F"})
        queues = tuple(env["CARGO_WORKER_QUEUES"].split(","))
        assert settings.worker_queue_names == queues, pool
        assert settings.task_module_names == tuple(env["CARGO_TASK_MODULES"].split(",")), pool
        assert settings.memory_limit_mb == int(env["CARGO_MEMORY_LIMIT_MB"]), pool
        declared = {q.name for q in build_topology(settings, task_queues=queues).task_queues}
        assert set(queues) <= declared, pool
        scaled = pool_objects(objects, "ScaledObject").get(pool)
        if scaled is not None:
            assert tuple(trigger_queues(scaled)) == queues, pool


def test_a_pool_with_several_queues_gets_one_trigger_per_queue() -> None:
    objects = render("--set-json", pools({"queues": ["cargo", "cargo-high"]},
                                         {"name": "reports", "queues": ["reports"]}))
    scaled = pool_objects(objects, "ScaledObject")
    assert trigger_queues(scaled["default"]) == ["cargo", "cargo-high"]
    assert trigger_queues(scaled["reports"]) == ["reports"]
    assert container_env(pool_objects(objects, "Deployment")["default"])[
        "CARGO_WORKER_QUEUES"] == "cargo,cargo-high"


def test_a_pool_keeps_its_zero_and_falls_back_to_the_shared_values() -> None:
    """minReplicas: 0 stays 0 (the chart tests presence, not truth); absent keys take
    keda.* and worker.*."""
    objects = render("--set-json", pools({}, {"name": "batch", "queues": ["batch"],
                                              "minReplicas": 0, "keda": {"activationValue": 3}}))
    batch = pool_objects(objects, "ScaledObject")["batch"]["spec"]
    assert (batch["minReplicaCount"], batch["maxReplicaCount"]) == (
        0, VALUES["keda"]["maxReplicaCount"])
    assert batch["triggers"][0]["metadata"]["activationValue"] == "3"
    assert batch["triggers"][0]["metadata"]["value"] == str(VALUES["keda"]["value"])
    assert batch["cooldownPeriod"] == VALUES["keda"]["cooldownPeriod"]


def test_without_keda_each_pool_has_its_replica_count_and_no_scaled_object() -> None:
    objects = render("--set", "keda.enabled=false", "--set-json",
                     pools({}, {"name": "reports", "queues": ["reports"], "replicas": 1}))
    deployments = pool_objects(objects, "Deployment")
    assert deployments["default"]["spec"]["replicas"] == VALUES["worker"]["replicas"]
    assert deployments["reports"]["spec"]["replicas"] == 1
    assert not [o for o in objects if o["kind"] in ("ScaledObject", "TriggerAuthentication")]


def test_a_pool_may_run_a_teams_own_image() -> None:
    digest = "sha256:" + "a" * 64
    objects = render("--set-json", pools({}, {
        "name": "reports", "queues": ["reports"],
        "image": {"repository": "registry.example/acme-worker", "digest": digest}}, {
        "name": "etl", "queues": ["etl"],
        "image": {"repository": "registry.example/acme-etl", "tag": "2.1"}}))
    deployments = pool_objects(objects, "Deployment")

    def image(pool: str) -> tuple[str, str]:
        container = deployments[pool]["spec"]["template"]["spec"]["containers"][0]
        return container["image"], container["imagePullPolicy"]

    def skips(pool: str) -> str:
        return " ".join(v for k, v in deployments[pool]["metadata"]["annotations"].items()
                        if k.startswith("checkov.io/skip"))

    assert image("reports") == (f"registry.example/acme-worker@{digest}", "IfNotPresent")
    assert "CKV_K8S_43" not in skips("reports")  # pulled by digest
    assert image("etl") == ("registry.example/acme-etl:2.1", "Always")
    assert "CKV_K8S_43" in skips("etl")
    chart_image = find(objects, "Deployment", "-gateway")["spec"]["template"]["spec"][
        "containers"][0]["image"]
    assert image("default")[0] == chart_image


def test_every_worker_selector_matches_every_pool_and_each_deployment_only_its_own() -> None:
    objects = render_scenario("two-pools")
    deployments = pool_objects(objects, "Deployment")
    pod_labels = {p: d["spec"]["template"]["metadata"]["labels"] for p, d in deployments.items()}
    for pool, labels in pod_labels.items():
        assert labels["app.kubernetes.io/component"] == "worker"
        assert labels["cargo.io/pool"] == pool
    policy = find(objects, "NetworkPolicy", "-worker")["spec"]["podSelector"]["matchLabels"]
    monitor = find(objects, "PodMonitor", "-worker")["spec"]["selector"]["matchLabels"]
    canary = dict(pair.split("=") for pair in configmap_env(objects)[
        "CARGO_CANARY_WORKER_SELECTOR"].split(","))
    for selector in (policy, monitor, canary):
        for pool, labels in pod_labels.items():
            assert selector.items() <= labels.items(), (selector, pool)
    for pool, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert [p for p, labels in pod_labels.items()
                if selector.items() <= labels.items()] == [pool]


def test_the_schemas_queue_names_are_the_ones_the_broker_accepts() -> None:
    """A pool queue the chart renders is one broker.topology.check_queue_name accepts, and
    one it refuses the chart refuses too (schema pattern plus the template's reserved names)."""
    from broker.topology import check_queue_name

    names = ["reports", "jobs.high", "a:b-c_d", "9lives", "x" * 200, "x" * 201, ".hidden",
             "-dash", "with space", "amq.foo", "cargo.events", "celery_delayed_27",
             "reports.XQ", "reports.DQ", "reports.XQ.watch", "reports.watchful", "café"]
    for name in names:
        try:
            check_queue_name(name)
            accepted = True
        except ValueError:
            accepted = False
        result = helm("template", "cargo", CHART, "--set-json",
                      pools({}, {"name": "r", "queues": [name]}), check=False)
        assert (result.returncode == 0) == accepted, (name, result.stderr[-300:])


def test_every_pool_key_is_documented_in_values_yaml() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    keys = schema["properties"]["workerPools"]["items"]["properties"]
    text = (CHART / "values.yaml").read_text()
    block = text[text.index("# -- The worker pools"):text.index("\nworkerPools:")]
    for key in keys:
        assert re.search(rf"^#\s+(- )?{key}\b", block, re.M) or f" {key}," in block or (
            f"{key}\n" in block), f"workerPools[].{key} is not described in values.yaml"
    for pool in VALUES["workerPools"]:
        assert set(pool) <= set(keys)


def test_notes_list_every_pool_and_warn_when_one_can_have_no_worker(tmp_path: Path) -> None:
    notes = render_notes(tmp_path / "two", "-f", str(CHART / "ci" / "two-pools-values.yaml"))
    assert ("default: KEDA scales cargo-worker-default from 1 to 20 replicas: "
            "ceil(messages in cargo / 20)") in notes
    assert ("reports: KEDA scales cargo-worker-reports from 1 to 3 replicas: "
            "ceil(messages in reports / 5)") in notes
    assert "404 unknown_task" not in notes
    zero = render_notes(tmp_path / "zero", "-f", str(CHART / "ci" / "scale-to-zero-values.yaml"))
    assert "Scale to zero is on for default" in zero
    assert "not in the gateway's catalog" in zero
    assert "404 unknown_task" in zero
    assert "Keep minReplicas >= 1" in zero


# --- gateway, upgrade safety ----------------------------------------------------------------


def test_the_gateway_probes_autoscaling_and_rolling_update() -> None:
    objects = render_scenario("default")
    gateway = find(objects, "Deployment", "-gateway")
    container = gateway["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:1] == ["gateway"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    hpa = find(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    pdb = find(objects, "PodDisruptionBudget", "-gateway")
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
    service = find(objects, "Service", "-gateway")
    assert service["spec"]["selector"] == gateway["spec"]["selector"]["matchLabels"]


def test_the_broker_liveness_values_reach_the_gateways_and_the_bridges_environment() -> None:
    objects = render("--set", "config.brokerHeartbeat=30", "--set-json",
                     "config.brokerCheckInterval=0.5", scenario="bridge")
    config = find(objects, "ConfigMap", "-config")
    assert config["data"]["CARGO_BROKER_HEARTBEAT"] == "30"
    assert config["data"]["CARGO_BROKER_CHECK_INTERVAL"] == "0.5"
    for suffix in ("-gateway", "-bridge"):  # the processes whose broker connection uses them
        container = find(objects, "Deployment", suffix)["spec"]["template"]["spec"][
            "containers"][0]
        assert {"configMapRef": {"name": config["metadata"]["name"]}} in container["envFrom"]
        names = {e["name"] for e in container.get("env", [])}
        assert not names & {"CARGO_BROKER_HEARTBEAT", "CARGO_BROKER_CHECK_INTERVAL"}, suffix
    settings = settings_of(objects)
    assert (settings.broker_heartbeat, settings.broker_check_interval) == (30, 0.5)


def test_a_config_change_rolls_every_pod() -> None:
    before = render_scenario("bridge")
    after = render("--set", "config.logLevel=DEBUG", scenario="bridge")
    for kind, suffix in (("Deployment", "-gateway"), ("Deployment", "-worker-default"),
                         ("Deployment", "-bridge"), ("CronJob", "-canary")):
        old, new = (pod_template_annotations(find(o, kind, suffix)) for o in (before, after))
        assert old["checksum/config"] != new["checksum/config"], f"{kind} {suffix}"


def pod_template_annotations(obj: dict[str, Any]) -> dict[str, str]:
    spec = obj["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else spec[
        "template"]
    annotations: dict[str, str] = template["metadata"]["annotations"]
    return annotations


# --- security, secrets, network ------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_pod_is_locked_down_and_sized(scenario: str) -> None:
    pods = [(o, s) for o in render_scenario(scenario) for s in pod_specs(o)]
    assert pods
    for obj, spec in pods:
        name = f"{obj['kind']} {obj['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), name
            assert {"cpu", "memory"} <= resources["limits"].keys(), name
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_secrets_come_only_from_existing_secrets(scenario: str) -> None:
    text = render_text(scenario=scenario)
    assert not re.search(r"(?i)password\s*[:=]\s*\S", text.replace("$(RABBITMQ_PASSWORD)", "")
                         .replace("key: password", "").replace("parameter: password", ""))
    assert "guest" not in text
    for obj in render_scenario(scenario):
        for spec in pod_specs(obj):
            for container in spec["containers"]:
                for var in container.get("env", []):
                    if var["name"] in ("RABBITMQ_URL", "CARGO_MANAGEMENT_URL", "CARGO_AUTH_TOKEN",
                                       "RABBITMQ_USERNAME", "RABBITMQ_PASSWORD"):
                        assert "secretKeyRef" in var.get("valueFrom", {}) or (
                            "$(RABBITMQ_PASSWORD)" in var["value"]), var


def test_the_canary_runs_every_five_minutes_with_the_least_rbac() -> None:
    objects = render_scenario("default")
    cronjob = find(objects, "CronJob")
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"].endswith("-canary")
    assert pod["automountServiceAccountToken"] is False
    assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding", "ClusterRole")]
    assert pod["containers"][0]["args"][:3] == ["canary", "--gateway",
                                                f"http://cargo-gateway.{NAMESPACE}.svc:8000"]
    restarting = render_scenario("operator-cluster")
    role = find(restarting, "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["list", "delete"]}]
    binding = find(restarting, "RoleBinding")
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    assert "--restart-unhealthy" in find(restarting, "CronJob")["spec"]["jobTemplate"]["spec"][
        "template"]["spec"]["containers"][0]["args"]


def test_helm_test_runs_the_canary() -> None:
    pod = find(render_scenario("default"), "Pod", "-test-canary")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["args"][0] == "canary"


@pytest.mark.parametrize("scenario", ["default", "bridge", "external-broker", "two-pools"])
def test_every_pod_has_a_network_policy(scenario: str) -> None:
    objects = render_scenario(scenario)
    policies = [o["spec"]["podSelector"]["matchLabels"] for o in objects
                if o["kind"] == "NetworkPolicy"]
    for obj in objects:
        for _spec in pod_specs(obj):
            labels = (obj["spec"].get("template") or obj["spec"].get("jobTemplate", {})
                      .get("spec", {}).get("template") or obj)["metadata"]["labels"]
            assert any(p.items() <= labels.items() for p in policies), obj["metadata"]["name"]


def test_the_rabbitmq_cluster_has_three_nodes_and_the_plugins() -> None:
    cluster = find(render_scenario("default"), "RabbitmqCluster")
    assert cluster["spec"]["replicas"] == 3
    assert {"rabbitmq_management", "rabbitmq_prometheus"} <= set(
        cluster["spec"]["rabbitmq"]["additionalPlugins"])
    assert "default_queue_type = quorum" in cluster["spec"]["rabbitmq"]["additionalConfig"]
    assert not [o for o in render_scenario("existing-cluster") if o["kind"] == "RabbitmqCluster"]


# --- documentation -------------------------------------------------------------------------


def test_every_value_is_documented_and_typed_strictly() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented: list[str] = []
    parents: list[tuple[int, str]] = []  # (indent, key) of the enclosing keys
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)(- )?([A-Za-z][A-Za-z0-9_]*):", line)
        if not match:
            continue
        indent = len(match[1])
        parents = [(n, k) for n, k in parents if n < indent]
        # Inside Kubernetes structures (resources, list items such as NetworkPolicy peers) the
        # enclosing key's comment covers them.
        inside_k8s = any(k in ("resources", "-") for _, k in parents) or bool(match[2])
        if not inside_k8s and not lines[i - 1].lstrip().startswith("#"):
            undocumented.append(line.strip())
        parents.append((indent, "-" if match[2] else match[3]))
    assert not undocumented, f"values without a comment above them: {undocumented}"
    schema = json.loads((CHART / "values.schema.json").read_text())

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, f"{path} accepts unknown keys"
            for key, child in node.items():
                walk(child, f"{path}/{key}")
        elif isinstance(node, list):
            for child in node:
                walk(child, path)

    walk(schema, "")

    def keys(values: dict[str, Any], node: dict[str, Any], path: str) -> None:
        for key, value in values.items():
            assert key in node["properties"], f"{path}.{key} is not in values.schema.json"
            child = node["properties"][key]
            if isinstance(value, dict) and "properties" in child:
                keys(value, child, f"{path}.{key}")

    keys(VALUES, schema, "")


def render_notes(tmp_path: Path, *args: str) -> str:
    """NOTES.txt as helm renders it, without a cluster: `helm install --dry-run` wants one,
    so a copy of the chart renders the same text through tpl in a template of its own."""
    chart = tmp_path / "cargo"
    shutil.copytree(CHART, chart, symlinks=False)
    shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes-source.txt")
    (chart / "templates" / "notes-render.yaml").write_text(
        'notes: {{ tpl (.Files.Get "notes-source.txt") . | toJson }}\n')
    out = helm("template", "cargo", chart, "--namespace", NAMESPACE,
               "--show-only", "templates/notes-render.yaml", *args).stdout
    notes: str = yaml.safe_load(out)["notes"]
    return notes


def test_notes_say_how_to_reach_the_gateway_and_the_management_ui(tmp_path: Path) -> None:
    notes = render_notes(tmp_path / "cluster")
    assert "port-forward svc/cargo-gateway 8000:8000" in notes
    assert "port-forward svc/cargo-rabbitmq 15672:15672" in notes
    assert "cargo-rabbitmq-default-user" in notes
    assert "helm test cargo" in notes
    external = render_notes(tmp_path / "external", "-f",
                            str(CHART / "ci" / "external-broker-values.yaml"))
    assert "Secret cargo-rabbitmq (key managementUrl)" in external
    zero = render_notes(tmp_path / "zero", "-f", str(CHART / "ci" / "scale-to-zero-values.yaml"))
    assert "Scale to zero is on for default" in zero
