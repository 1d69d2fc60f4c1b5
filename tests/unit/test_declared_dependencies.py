"""Every third-party package the shipped packages import is a declared dependency of
cargo-jobs (pyproject.toml ``[project] dependencies``), so an install from the package alone
has everything the code imports."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("broker", "workers", "gateway", "bridge", "cargoctl", "ops")


def declared() -> set[str]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    return {canonicalize_name(Requirement(line).name) for line in dependencies}


def imports(path: Path) -> Iterator[tuple[str, int]]:
    """Top-level names of the absolute imports in one file, with their line."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno


def test_every_third_party_import_of_the_shipped_packages_is_a_declared_dependency() -> None:
    own = set(SHIPPED) | {"__future__"}
    distributions = packages_distributions()
    dependencies = declared()
    undeclared = []
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name, line in imports(path):
                if name in own or name in sys.stdlib_module_names:
                    continue
                providers = {canonicalize_name(d) for d in distributions.get(name, [])}
                if not providers & dependencies:
                    where = path.relative_to(ROOT)
                    undeclared.append(f"{where}:{line} imports {name!r} "
                                      f"(from {sorted(providers) or 'no installed package'})")
    assert not undeclared, ("not declared in pyproject.toml [project] dependencies:\n"
                            + "\n".join(undeclared))
