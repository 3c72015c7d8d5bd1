"""`make demo PERSON=…` is how the README has a newcomer try another role; make's own built-in variables
(AS is the assembler, "as") must not leak into the command."""

from __future__ import annotations

import subprocess

from bot.config import REPO_ROOT


def _demo_command(*variables: str) -> str:
    dry_run = subprocess.run(["make", "-n", "demo", *variables], cwd=REPO_ROOT, check=True,
                             capture_output=True, text=True).stdout
    return [line for line in dry_run.splitlines() if "accessbot demo" in line][-1]


def test_make_demo_person_starts_the_demo_as_that_person() -> None:
    assert _demo_command("PERSON=pattif@contoso.com").split()[-3:] == ["demo", "--as", "pattif@contoso.com"]


def test_plain_make_demo_starts_it_as_alex() -> None:
    assert _demo_command().split()[-1] == "demo"
