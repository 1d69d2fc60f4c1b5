"""README.md and docs/*.md: every relative link reaches a file (and heading) of this
repository, and the README stays short enough to read to the end."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
README_MAX_LINES = 250

# Pages being written on other branches at the same time as the README links them.
# A link to one passes while the page does not exist yet; once it exists it is
# checked like any other (file and anchor).
PAGES_FROM_OTHER_BRANCHES = frozenset({"docs/console.md", "docs/cli.md"})

# [text](target) or ![alt](target); the target ends at whitespace or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+).*?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.source.relative_to(REPO)}:{self.line}: {self.target}"


def documents() -> list[Path]:
    return [README, *sorted((REPO / "docs").glob("*.md"))]


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        marker = re.match(r"(```+|~~~+)", stripped)
        if marker:
            if fence is None:
                fence = marker[1][0] * 3
            elif stripped.startswith(fence):
                fence = None
            continue
        if fence is None:
            lines.append((number, line))
    return lines


def links_in(path: Path) -> list[Link]:
    """Links outside code: inline code spans are blanked first, so that a `[x](y)`
    shown as code is not taken for a link."""
    return [Link(path, number, match[1])
            for number, line in prose_lines(path.read_text(encoding="utf-8"))
            for match in LINK.finditer(CODE_SPAN.sub("", line))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file, repeated headings numbered as GitHub does."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match[2])
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def is_external(target: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) is not None  # http:, https:, mailto:


def broken(link: Link, repo: Path = REPO,
           pending: frozenset[str] = PAGES_FROM_OTHER_BRANCHES) -> str | None:
    """Why a relative link does not resolve inside ``repo``, or None when it does."""
    if is_external(link.target):
        return None
    path_part, _, anchor = link.target.partition("#")
    target = (link.source.parent / path_part).resolve() if path_part else link.source
    if not target.is_relative_to(repo):
        return "points outside the repository (a fresh clone does not have it)"
    relative = target.relative_to(repo).as_posix()
    if not target.exists():
        return None if relative in pending else f"no such file: {relative}"
    if anchor and target.suffix == ".md" and anchor not in anchors(target):
        return f"no heading #{anchor} in {relative}"
    return None


def test_every_relative_link_in_the_readme_and_docs_reaches_a_file_and_heading() -> None:
    links = [link for path in documents() for link in links_in(path)]
    assert len([lk for lk in links if not is_external(lk.target)]) > 20, "links not found"
    problems = [f"{link}: {why}" for link in links if (why := broken(link))]
    assert problems == []


def test_the_readme_stays_under_250_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_the_readme_links_every_page_of_the_docs_index() -> None:
    linked = {(link.source.parent / link.target.partition("#")[0]).resolve()
              for link in links_in(README) if not is_external(link.target)}
    for page in ("api", "events", "tasks", "workers", "topology", "configuration",
                 "operations", "deploy-helm", "deploy-terraform", "benchmarks",
                 "dramatiq-migration", "console", "cli"):
        assert REPO / "docs" / f"{page}.md" in linked, page


def test_the_checker_reports_a_missing_file_a_missing_heading_and_an_escape(
        tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "page.md"
    page.write_text("# A page\n\n## Stopping: SIGTERM (`now`)\n\n```\n## not a heading\n```\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[ok](docs/page.md#stopping-sigterm-now) [gone](docs/gone.md) "
        "[no heading](docs/page.md#not-a-heading) [out](../shared/API.md) "
        "[self](#nowhere) [web](https://example.com/x) `[code](docs/shown-as-code.md)`\n"
        "[later](docs/later.md)\n")
    reasons = {link.target: broken(link, tmp_path, frozenset({"docs/later.md"}))
               for link in links_in(readme)}
    assert reasons == {
        "docs/page.md#stopping-sigterm-now": None,
        "docs/gone.md": "no such file: docs/gone.md",
        "docs/page.md#not-a-heading": "no heading #not-a-heading in docs/page.md",
        "../shared/API.md": "points outside the repository (a fresh clone does not have it)",
        "#nowhere": "no heading #nowhere in README.md",
        "https://example.com/x": None,
        "docs/later.md": None,
    }


@pytest.mark.parametrize(("heading", "anchor"), [
    ("The worker path (`bench/pipeline.py`)", "the-worker-path-benchpipelinepy"),
    ("Applying dev, then KEDA, RabbitMQ and the chart",
     "applying-dev-then-keda-rabbitmq-and-the-chart"),
    ("Upgrading a vhost whose `cargo.XQ.watch` has no `x-delivery-limit`",
     "upgrading-a-vhost-whose-cargoxqwatch-has-no-x-delivery-limit"),
    ("`../shared`, beside the checkout", "shared-beside-the-checkout"),
])
def test_anchors_are_made_as_github_makes_them(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor
