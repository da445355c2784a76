"""The import bench runs end to end on a small export.

The bench asserts nothing about its timings (they are figures to read), but a
bench that no longer runs, or whose bare SQL reference drops lines of the
export, would print figures that mean nothing. Run here at its smallest size.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "import_bench.py"


def test_the_import_bench_runs_and_its_bare_import_keeps_every_line():
    run = subprocess.run(
        [sys.executable, str(BENCH), "--lines", "3000"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = run.stdout
    read = re.search(
        r"read ([\d,]+) = loaded ([\d,]+) \+ rejected ([\d,]+) \((\w+)\)", out
    )
    assert read is not None and read.group(4) == "reconciles", out
    made = re.search(
        r"made: ([\d,]+) orders, ([\d,]+) order_lines, ([\d,]+) customers", out
    )
    assert made is not None, out
    # The bare import keeps every line of the export, bad ones included.
    assert int(made.group(2).replace(",", "")) == int(read.group(1).replace(",", ""))
    assert int(made.group(1).replace(",", "")) > 0
    assert re.search(r"bare SQL import: +[\d.]+ s", out), out
    assert re.search(r"ratio to the table floor: [\d.]+x", out), out
