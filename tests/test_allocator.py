"""The `regulars` command has Arrow allocate with jemalloc where that is safe
(`regulars.allocator`), and leaves an allocator the user chose alone."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pyarrow as pa

from regulars.allocator import ENV
from regulars.backends import connect

# Runs the command in a fresh process, as a user does, then says which
# allocator Arrow uses and which one the first table read was allocated by.
_SCRIPT = """
import sys
import pyarrow as pa
from typer.testing import CliRunner
from regulars.cli.main import app
before = pa.default_memory_pool().backend_name
result = CliRunner().invoke(app, ["--store", sys.argv[1], "status"])
assert result.exit_code == 0, result.output
print(before, pa.default_memory_pool().backend_name)
"""


def _pools(tmp_path, **env: str) -> list[str]:
    store = tmp_path / "s.duckdb"
    connect(str(store)).close()  # `status` reads a store; it does not make one
    clean = {k: v for k, v in os.environ.items() if k != ENV}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(store)],
        env={**clean, **env}, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.split()


def test_the_command_allocates_with_jemalloc_on_x86_64(tmp_path):
    before, after = _pools(tmp_path)
    safe = platform.machine().lower() in ("x86_64", "amd64")
    if safe and "jemalloc" in pa.supported_memory_backends():
        assert (before, after) == ("mimalloc", "jemalloc")
    else:
        assert after == before


def test_an_allocator_the_user_chose_is_kept(tmp_path):
    assert _pools(tmp_path, **{ENV: "system"}) == ["system", "system"]
