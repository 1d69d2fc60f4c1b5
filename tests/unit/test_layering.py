"""The house's layers: broker → workers → gateway → bridge → cargoctl, and ``bench`` apart from
``tests``. Each package may import those before it, never one after it; ``bench`` never
imports ``tests`` (the tests may import ``bench``'s helpers, never the other way round).
Imports inside functions count too: every import statement of every module is read."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("broker", "workers", "gateway", "bridge", "cargoctl")


def imported_packages(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``path``."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def imports_of(package: str, forbidden: set[str]) -> list[str]:
    """``file:line imports X`` for each import of a ``forbidden`` package in ``package``."""
    return [f"{path.relative_to(ROOT)}:{line} imports {name}"
            for path in sorted((ROOT / package).rglob("*.py"))
            for line, name in imported_packages(path) if name in forbidden]


def test_no_layer_imports_a_layer_above_it() -> None:
    upward = [found for index, layer in enumerate(LAYERS)
              for found in imports_of(layer, set(LAYERS[index + 1:]))]
    assert upward == [], "an import runs upward (broker → workers → gateway → bridge → " \
                         "cargoctl):\n" + "\n".join(upward)


def test_the_bridge_does_not_import_the_gateway() -> None:
    # Named on its own: the Announcer both use lives in broker/ for this reason.
    assert imports_of("bridge", {"gateway"}) == []


def test_no_bench_module_imports_the_tests() -> None:
    assert imports_of("bench", {"tests"}) == []


def test_the_layering_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from tests.support import rabbit\n    import gateway.app\n")
    assert [name for _, name in imported_packages(module)] == ["tests", "gateway"]
