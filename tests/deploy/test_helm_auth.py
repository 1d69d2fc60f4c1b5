"""The chart's API auth: on by default from a Secret, off only by an explicit choice.

Rendered by the real helm (``bash scripts/tools.sh`` installs it; see tests/deploy/chart.py).
"""

from __future__ import annotations

from typing import Any

from tests.deploy.chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    helm,
    pod_specs,
    render,
    render_scenario,
)


def _token_refs(objects: Any) -> dict[str, list[Any]]:
    """CARGO_AUTH_TOKEN of every container that has one, by workload name."""
    refs: dict[str, list[Any]] = {}
    for obj in objects:
        for spec in pod_specs(obj):
            for container in spec["containers"]:
                for var in container.get("env", []):
                    if var["name"] == "CARGO_AUTH_TOKEN":
                        refs.setdefault(obj["metadata"]["name"], []).append(
                            var["valueFrom"]["secretKeyRef"])
    return refs


def test_by_default_the_gateway_and_canary_read_the_token_from_the_release_auth_secret() -> None:
    refs = _token_refs(render_scenario("default"))
    gateway = [name for name in refs if name.endswith("-gateway")]
    canary = [name for name in refs if "canary" in name]
    assert gateway, refs
    assert canary, refs
    for name in gateway + canary:
        assert refs[name] == [{"name": f"{RELEASE}-auth", "key": "token"}], refs


def test_an_existing_secret_named_in_the_values_replaces_the_default_one() -> None:
    refs = _token_refs(render_scenario("external-broker"))
    assert refs
    assert all(r == [{"name": "cargo-auth", "key": "token"}] for r in refs.values()), refs


def test_running_without_auth_takes_auth_enabled_false_and_then_no_token_is_wired() -> None:
    assert _token_refs(render("--set", "auth.enabled=false")) == {}
    assert _token_refs(render_scenario("monitoring-off")) == {}  # its values choose that


def test_leaving_auth_enabled_out_does_not_turn_auth_off() -> None:
    result = helm("template", RELEASE, CHART, "--namespace", NAMESPACE,
                  "--set", "auth.enabled=null", check=False)
    assert result.returncode != 0, "helm rendered with auth.enabled removed"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert "auth: enabled is required" in result.stderr, result.stderr


def test_auth_enabled_must_be_a_boolean() -> None:
    result = helm("template", RELEASE, CHART, "--namespace", NAMESPACE,
                  "--set-string", "auth.enabled=false", check=False)
    assert result.returncode != 0, "helm took the string 'false' for auth.enabled"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert "boolean" in result.stderr, result.stderr


def test_auth_off_with_a_secret_named_is_refused_as_contradictory() -> None:
    result = helm("template", RELEASE, CHART, "--namespace", NAMESPACE,
                  "--set", "auth.enabled=false", "--set", "auth.existingSecret=cargo-auth",
                  check=False)
    assert result.returncode != 0, "helm accepted auth off with a token Secret named"
    assert "auth.enabled is false but auth.existingSecret is set" in result.stderr

