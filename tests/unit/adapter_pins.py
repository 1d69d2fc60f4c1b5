"""What the adapter tests share: the installed and declared versions of a library,
and the one failure message that says what to do when an upgrade breaks an adapter."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared_pins() -> dict[str, str]:
    """``name -> version`` of every dependency pinned with ``==`` in pyproject.toml."""
    with PYPROJECT.open("rb") as f:
        dependencies = tomllib.load(f)["project"]["dependencies"]
    pins = {}
    for line in dependencies:
        requirement = Requirement(line)
        for spec in requirement.specifier:
            if spec.operator == "==":
                pins[requirement.name.lower()] = spec.version
    return pins


def adapter_path(adapter: ModuleType) -> str:
    return str(Path(adapter.__file__ or "").relative_to(PYPROJECT.parent))


def changed(library: str, adapter: ModuleType, what: str) -> str:
    """The message of a failed check: which library, which version, what the adapter relies on."""
    return (f"{library} {version(library)} changed {what}: {adapter_path(adapter)} relies on it; "
            f"re-measure and update the adapter (and its pin in pyproject.toml)")


def assert_pinned(adapter: ModuleType) -> None:
    """Every library the adapter names is installed at, and pinned to, the version it was
    written against."""
    pins = declared_pins()
    for library, written_against in adapter.PINNED.items():
        installed = version(library)
        assert installed == written_against, (
            f"{library} {installed} is installed, but {adapter_path(adapter)} was written "
            f"against {library} {written_against}: run its tests, re-measure, update it")
        assert pins.get(library) == written_against, (
            f"pyproject.toml must pin {library}=={written_against} "
            f"({adapter_path(adapter)} relies on its internals), not {pins.get(library)!r}")
