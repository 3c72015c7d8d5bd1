"""A clone of this repository is all its reader has: what it cites must be in it.

Code comments and docs cite the repository's own documents (``docs/….md#anchor``), never the notes of
the people who built it; the packages ship their ``py.typed`` markers; CI sets nothing the code ignores;
the README's folder table names the folders that exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QUOTED_TEXTS = "docs/guidance/"  # Microsoft's articles, quoted verbatim: not ours to edit
PACKAGES = ("bot", "dialogs", "checks")

# Built from parts so that this file does not trip its own check.
OUTSIDE_CITATIONS = tuple(
    "".join(parts) for parts in (("..", "/shared"), ("shared/", "DESIGN"), ("TRAPS", ".md"), ("DESIGN", " §"))
)
DOC_ANCHOR = re.compile(r"(?<![\w./-])(docs/[\w./-]+?\.md)#([A-Za-z0-9_-]+)")
RELATIVE_ANCHOR = re.compile(r"\]\(([\w./-]+?\.md)?#([A-Za-z0-9_-]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def tracked_files() -> list[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def text_of(name: str) -> str | None:
    try:
        return (ROOT / name).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None  # icons and other binaries


def outside_citations(text: str) -> list[str]:
    """Every line of ``text`` that cites a file a user of this repository does not have."""
    return [line.strip() for line in text.splitlines() if any(needle in line for needle in OUTSIDE_CITATIONS)]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The anchors of a Markdown document's headings (not of lines inside code fences); a repeated
    heading gets ``-1``, ``-2``… as on GitHub."""
    found: set[str] = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match is None:
            continue
        slug, n = github_slug(match.group(1)), 0
        while (slug if n == 0 else f"{slug}-{n}") in found:
            n += 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def cited_anchors(name: str, text: str) -> Iterator[tuple[Path, str]]:
    """(document, anchor) for every ``docs/x.md#a`` in any file, and every ``](x.md#a)`` or ``](#a)``
    link in a Markdown file (relative to that file)."""
    for path, anchor in DOC_ANCHOR.findall(text):
        yield ROOT / path, anchor
    if name.endswith(".md"):
        here = (ROOT / name).parent
        for path, anchor in RELATIVE_ANCHOR.findall(text):
            yield (here / path if path else ROOT / name), anchor


def broken_anchors(files: dict[str, str]) -> list[str]:
    problems = []
    for name, text in files.items():
        for document, anchor in cited_anchors(name, text):
            if not document.is_file():
                problems.append(f"{name} cites {document.relative_to(ROOT)}#{anchor}: no such document")
            elif anchor not in anchors(document.read_text(encoding="utf-8")):
                problems.append(f"{name} cites {document.relative_to(ROOT)}#{anchor}: no such heading")
    return problems


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return {name: text for name in tracked_files() if (text := text_of(name)) is not None}


def test_no_tracked_file_cites_notes_that_live_outside_the_repository(texts: dict[str, str]) -> None:
    cited = {
        name: lines for name, text in texts.items()
        if not name.startswith(QUOTED_TEXTS) and (lines := outside_citations(text))
    }
    assert cited == {}


def test_every_cited_docs_anchor_is_a_heading_of_that_document(texts: dict[str, str]) -> None:
    assert broken_anchors(texts) == []
    cited = {anchor for name, text in texts.items() for _, anchor in cited_anchors(name, text)}
    assert "per-turn-clients" in cited  # the code's comments do cite the dependency notes


def test_the_checks_catch_an_outside_citation_and_a_dangling_anchor() -> None:
    """The two checks above can fail: a planted citation and a planted broken anchor are reported."""
    planted = "# see " + OUTSIDE_CITATIONS[2] + " for why"
    assert outside_citations(f"ok\n{planted}\n") == [planted]
    assert outside_citations("see docs/dependency-notes.md#per-turn-clients") == []
    problems = broken_anchors(
        {
            "bot/x.py": "# docs/dependency-notes.md#no-such-trap and docs/dependency-notes.md#per-turn-clients",
            "docs/x.md": "[gone](missing.md#anywhere) [here](#per-turn-clients)",
        }
    )
    assert problems == [
        "bot/x.py cites docs/dependency-notes.md#no-such-trap: no such heading",
        "docs/x.md cites docs/missing.md#anywhere: no such document",
        "docs/x.md cites docs/x.md#per-turn-clients: no such document",
    ]


def test_heading_anchors_follow_githubs_rules() -> None:
    document = "# Notes\n## $batch responses lose JSON bodies\n```\n# not a heading\n```\n## Notes\n### `py.typed`, too\n"
    assert anchors(document) == {"notes", "batch-responses-lose-json-bodies", "notes-1", "pytyped-too"}


def test_every_package_declares_and_holds_its_py_typed_marker() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        assert "py.typed" in declared.get(package, []), f"{package} does not declare py.typed"
        assert (ROOT / package / "py.typed").is_file(), f"{package}/py.typed is missing"


def test_the_build_puts_py_typed_in_every_package(tmp_path: Path) -> None:
    """setuptools' own build_py step (what fills a wheel), run on a copy of the sources."""
    pytest.importorskip("setuptools", reason="setuptools is not installed in this environment")
    for name in ("pyproject.toml", "README.md"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "from setuptools import setup; setup()", "-q", "build_py", "--build-lib", "out"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stderr
    for package in PACKAGES:
        assert (tmp_path / "out" / package / "py.typed").is_file(), f"the build leaves out {package}/py.typed"


def test_every_variable_ci_exports_is_read_somewhere(texts: dict[str, str]) -> None:
    exported = re.findall(r"^export\s+([A-Z_][A-Z0-9_]*)=", texts[".ci/run"], flags=re.MULTILINE)
    assert exported, "the CI script exports nothing: this test would prove nothing"
    unread = [
        name for name in exported
        if not any(name in text for path, text in texts.items() if path != ".ci/run" and not path.endswith(".md"))
    ]
    assert unread == []


def test_the_readme_folder_table_names_every_folder_and_only_real_ones(texts: dict[str, str]) -> None:
    readme = texts["README.md"]
    table = readme[readme.index("| folder | holds |") :]
    listed = set(re.findall(r"^\| `([^`]+)/` \|", table, flags=re.MULTILINE))
    top_level = {name.split("/")[0] for name in tracked_files() if "/" in name}
    packages = {
        str(Path(name).parent) for name in texts
        if name.endswith("/__init__.py") and name.split("/")[0] in PACKAGES
    }
    assert top_level | packages <= listed, f"missing from the README: {sorted(top_level | packages - listed)}"
    assert all((ROOT / folder).is_dir() for folder in listed), f"not in the tree: {sorted(f for f in listed if not (ROOT / f).is_dir())}"
