"""The worker-path benchmark in one command: every section, one table, one results file.

``python -m bench.pipeline [--sections e2e latency_floor drain bridge fanout] [--quick]
[--rounds R]`` runs each section module (``bench.<name>``) as a subprocess, one
after another (a section that crashes or hogs memory cannot skew the next),
with ``--json-out`` pointing at a temporary file; it then prints one markdown
table of every section's rows (``bench.sections.markdown_table``) and saves the
whole run, every section's report included, to
``bench/results/pipeline-<UTC time>.json``.

A section whose module is not in this checkout, or that does not take
``--json-out`` yet, is skipped with a message saying so; one that fails is
reported as failed with the tail of its output, and the others still run.
``--quick`` and ``--rounds`` are passed to the sections that accept them;
``--args 'e2e=--tasks 2000'`` passes anything else to one section.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bench.procs import outlive_no_parent
from bench.sections import Row, SectionReport, markdown_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
SECTIONS = ("e2e", "latency_floor", "drain", "bridge", "fanout")
Status = Literal["ok", "skipped", "failed"]


@dataclass
class SectionOutcome:
    """What became of one section: its report when it ran, else why not."""

    name: str
    status: Status
    report: SectionReport | None = None
    message: str = ""
    command: list[str] = field(default_factory=list)
    seconds: float | None = None
    returncode: int | None = None


def merge(outcomes: list[SectionOutcome]) -> dict[str, Any]:
    """The pipeline's results document: every row in section order, and each section."""
    rows: list[Row] = [row for o in outcomes if o.report is not None for row in o.report.rows]
    sections = []
    for outcome in outcomes:
        doc: dict[str, Any] = {"name": outcome.name, "status": outcome.status,
                               "message": outcome.message, "command": outcome.command,
                               "seconds": outcome.seconds, "returncode": outcome.returncode}
        if outcome.report is not None:
            doc["rows"] = [row.to_doc() for row in outcome.report.rows]
            doc["raw"] = outcome.report.raw
        sections.append(doc)
    goals = [row.met for row in rows if row.met is not None]
    return {"rows": [row.to_doc() for row in rows], "table": markdown_table(rows),
            "sections": sections,
            "goals": {"met": sum(goals), "not_met": len(goals) - sum(goals)}}


def render(outcomes: list[SectionOutcome], doc: dict[str, Any]) -> str:
    lines = [doc["table"], ""]
    for outcome in outcomes:
        if outcome.status != "ok":
            lines.append(f"- {outcome.name}: {outcome.status}: {outcome.message}")
    goals = doc["goals"]
    lines.append(f"goals met: {goals['met']} of {goals['met'] + goals['not_met']}")
    return "\n".join(lines)


def module_missing(name: str) -> bool:
    return importlib.util.find_spec(f"bench.{name}") is None


def section_options(name: str) -> str:
    """The section's ``--help`` text: which of the pipeline's options it accepts."""
    proc = subprocess.run([sys.executable, "-m", f"bench.{name}", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    return proc.stdout


def run_section(name: str, args: argparse.Namespace, out_dir: Path) -> SectionOutcome:
    if module_missing(name):
        return SectionOutcome(name, "skipped", message=f"bench/{name}.py is not in this "
                                                       f"checkout yet")
    options = section_options(name)
    if "--json-out" not in options:
        return SectionOutcome(name, "skipped", message=f"bench.{name} has no --json-out "
                                                       f"option yet (bench.sections contract)")
    json_out = out_dir / f"{name}.json"
    command = [sys.executable, "-m", f"bench.{name}", "--json-out", str(json_out)]
    for flag, wanted, value in (("--quick", args.quick, []),
                                ("--rounds", args.rounds is not None, [str(args.rounds)])):
        if wanted:
            if flag in options:
                command += [flag, *value]
            else:
                print(f"[pipeline] bench.{name} takes no {flag}: run without it",
                      file=sys.stderr, flush=True)
    command += args.extra.get(name, [])
    shown = shlex.join(["python", *command[1:]])
    print(f"[pipeline] {name}: {shown}", file=sys.stderr, flush=True)
    started = time.monotonic()
    log_path = out_dir / f"{name}.log"
    # Same process group as the pipeline: a Ctrl-C reaches the section, which then
    # stops its own processes and deletes its vhost; it also dies with the pipeline.
    with log_path.open("w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                preexec_fn=outlive_no_parent())
        # Past its time a section gets SIGTERM, which it takes as a Ctrl-C (cleanup).
        timer = threading.Timer(args.section_timeout, proc.send_signal, (signal.SIGTERM,))
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:  # the section's progress, live and in its log
                sys.stderr.write(f"  {name}| {line}")
                log.write(line)
            returncode = proc.wait()
        except BaseException:
            stop_section(proc)
            raise
        finally:
            timer.cancel()
        timed_out = time.monotonic() - started >= args.section_timeout
    seconds = time.monotonic() - started
    if returncode != 0 or not json_out.exists():
        tail = log_path.read_text(errors="replace")[-1500:]
        return SectionOutcome(name, "failed", command=command, seconds=seconds,
                              returncode=returncode,
                              message=f"{'timed out, ' if timed_out else ''}exit "
                                      f"{returncode}; output in {log_path}; last lines:\n"
                                      f"{tail}")
    return SectionOutcome(name, "ok", report=SectionReport.read(json_out), command=command,
                          seconds=seconds, returncode=returncode)


def stop_section(proc: subprocess.Popen[str]) -> None:
    """Give an interrupted section time to clean up (it got the Ctrl-C too), then insist."""
    for sig, grace in ((None, 60), (signal.SIGTERM, 30), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        if sig is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description="Every section of the worker-path benchmark, one table (issue 13)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="which sections, in this order (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: each section's --quick (small N, one round)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="passed to every section that takes --rounds")
    parser.add_argument("--args", action="append", default=[], metavar="SECTION=ARGS",
                        help="extra arguments for one section, e.g. --args "
                             "'e2e=--tasks 2000 --latency-tasks 300' (repeatable)")
    parser.add_argument("--section-timeout", type=float, default=3600,
                        help="seconds before a section is stopped (default 3600)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR,
                        help="directory for pipeline-<time>.json (default bench/results)")
    parser.add_argument("--no-save", action="store_true", help="do not write the results file")
    args = parser.parse_args(argv)
    try:
        args.extra = section_args(args.args)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def section_args(specs: list[str]) -> dict[str, list[str]]:
    """``["e2e=--tasks 2000", …]`` → ``{"e2e": ["--tasks", "2000"]}``."""
    extra: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep or name not in SECTIONS:
            raise ValueError(f"--args {spec!r}: expected SECTION=ARGS, SECTION one of "
                             f"{', '.join(SECTIONS)}")
        extra.setdefault(name, []).extend(shlex.split(text))
    return extra


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    outcomes: list[SectionOutcome] = []
    with tempfile.TemporaryDirectory(prefix="cargo-bench-pipeline-") as tmp:
        try:
            for name in args.sections:
                outcome = run_section(name, args, Path(tmp))
                if outcome.status != "ok":
                    print(f"[pipeline] {name}: {outcome.status}: {outcome.message}",
                          file=sys.stderr, flush=True)
                outcomes.append(outcome)
        except KeyboardInterrupt:
            print("[pipeline] interrupted", file=sys.stderr)
            raise SystemExit(130) from None
    doc = merge(outcomes)
    print(render(outcomes, doc))
    if not args.no_save:
        doc = {"command": shlex.join(["python", "-m", "bench.pipeline", *(argv or sys.argv[1:])]),
               "started_at": started_at,
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()}, **doc}
        args.output.mkdir(parents=True, exist_ok=True)
        path = args.output / f"pipeline-{started_at.replace('-', '').replace(':', '')}.json"
        path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"written to {path}", file=sys.stderr)
    if any(o.status == "failed" for o in outcomes):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
