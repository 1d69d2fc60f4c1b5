"""The alert rules and the Alertmanager configuration, checked by the real tools."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.processes import ROOT
from tests.support.tools import tool

OPS = ROOT / "ops"
RULES = OPS / "prometheus" / "rules.yml"
RULE_TESTS = OPS / "prometheus" / "rules.test.yml"
ALERTMANAGER = OPS / "alertmanager" / "alertmanager.yml"
RUNBOOK = OPS / "runbook.md"
REQUIRED = {  # the issue's list, by the alert that covers it
    "task failure ratio high": "CargoTaskFailureRatioHigh",
    "dead letters growing": "CargoDeadLettersGrowing",
    "queue backlog high and old": "CargoQueueBacklogHighAndOld",
    "a task stopped for memory": "CargoTaskStoppedForMemory",
    "no worker consuming a queue": "CargoQueueNoConsumer",
    "canary failing": "CargoCanaryFailing",
    "gateway 5xx/503 ratio high": "CargoGatewayErrorRatioHigh",
    "broker down": "CargoBrokerDown",
}


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    return {re.sub(r"[^a-z0-9 _-]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.M)}


def test_promtool_accepts_the_rules_file() -> None:
    result = run(tool("promtool"), "check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    result = run(tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_fail_when_the_alerts_never_fire(tmp_path: Path) -> None:
    """The tests can fail: with every expression replaced by one that is never true."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule["expr"] = "vector(1) > 2"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(doc))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = run(tool("promtool"), "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    for alert in alerts():
        assert alert["alert"] in output, f"no test of {alert['alert']} failed"


def test_every_alert_is_tested_both_firing_and_silent() -> None:
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
             for case in test.get("alert_rule_test", [])]
    for alert in alerts():
        mine = [case for case in cases if case["alertname"] == alert["alert"]]
        assert any(case.get("exp_alerts") for case in mine), f"{alert['alert']} never fires"
        assert any(not case.get("exp_alerts") for case in mine), f"{alert['alert']} never silent"


def test_the_issues_alerts_exist_with_severity_and_a_runbook_section_each() -> None:
    by_name = {alert["alert"]: alert for alert in alerts()}
    assert set(REQUIRED.values()) <= set(by_name)
    sections = anchors(RUNBOOK.read_text())
    for name, alert in by_name.items():
        assert alert["labels"]["severity"] in {"critical", "warning"}, name
        url = alert["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("/ops/runbook.md"), url
        assert url.split("#")[1] in sections, f"{name}: no runbook section #{url.split('#')[1]}"
        assert alert["annotations"].get("summary"), name


def test_per_queue_alerts_say_so_for_inhibition() -> None:
    for alert in alerts():
        expr = alert["expr"]
        per_queue = "by (queue_name)" in expr or "by (queue)" in expr
        if alert["alert"] in {"CargoTaskStoppedForMemory"}:
            continue  # one stopped task matters even while the broker is down
        assert (alert["labels"].get("scope") == "queue") == (
            per_queue and alert["alert"] != "CargoTaskFailureRatioHigh"), alert["alert"]


def test_amtool_accepts_the_alertmanager_configuration() -> None:
    result = run(tool("amtool"), "check-config", ALERTMANAGER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout


def test_alertmanager_routes_critical_alerts_to_the_pager_and_warnings_to_tickets() -> None:
    amtool = tool("amtool")
    for labels, receiver in ((["alertname=CargoBrokerDown", "severity=critical"], "pager"),
                             (["alertname=CargoDeadLettersGrowing", "severity=warning",
                               "scope=queue"], "tickets")):
        result = run(amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
                     *labels)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == receiver


def test_alertmanager_inhibits_per_queue_alerts_while_the_broker_is_down() -> None:
    inhibit = yaml.safe_load(ALERTMANAGER.read_text())["inhibit_rules"]
    assert {"source_matchers": ['alertname="CargoBrokerDown"'],
            "target_matchers": ['scope="queue"']} in inhibit
