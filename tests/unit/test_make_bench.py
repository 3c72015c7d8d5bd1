"""`make bench` runs every benchmark in bench/: one added without being listed would never be measured."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_make_bench_runs_every_benchmark_in_bench() -> None:
    benchmarks = sorted(p.stem for p in (REPO / "bench").glob("*.py") if 'if __name__ == "__main__":' in p.read_text())
    listed = re.search(r"^BENCHES\s*:=\s*(.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert listed is not None, "the Makefile has no BENCHES list"
    assert sorted(listed.group(1).split()) == benchmarks
