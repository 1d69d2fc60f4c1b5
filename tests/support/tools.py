"""promtool, prometheus and amtool, as scripts/tools.sh unpacks them into .tools/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.processes import ROOT

TOOLS_BIN = ROOT / ".tools" / "usr" / "bin"


def tool(name: str) -> Path:
    """The tool's path, or skip the test saying exactly what is missing and how to get it."""
    local = TOOLS_BIN / name
    if local.is_file():
        return local
    found = shutil.which(name)
    if found:
        return Path(found)
    pytest.skip(f"{name} not found in {TOOLS_BIN} or on PATH: run `bash scripts/tools.sh` "
                "(it unpacks the Debian packages prometheus and prometheus-alertmanager)")
