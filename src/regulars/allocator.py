"""Arrow's memory allocator, set for a process that reads large files.

Arrow allocates every table an import reads through its default memory
pool, mimalloc. In a fresh process, mimalloc's first gigabytes cost the
kernel more than reading the file does: reading the 322 MB, 1,026,242-line
bench export (`bench/import_bench.py`) took 2.7 to 3.0 s, 2.2 to 2.6 s of it
system time, against 2.1 to 2.2 s (0.8 s system) with jemalloc. Whole
imports of it with the `regulars` command, five of each interleaved, took
14.1 to 16.1 s (mean 14.7 s) with jemalloc and 15.1 to 17.1 s (mean
15.9 s) with mimalloc, jemalloc the faster of each pair by 0.5 to 2.1 s,
at a peak of 2.29 to 2.31 GB against 2.45 to 2.53 GB.
The tables are the same either way: only where their memory comes from
changes.
"""

from __future__ import annotations

import os
import platform

__all__ = ["ENV", "use_jemalloc"]

#: Arrow's own setting: when set, Arrow uses the allocator it names and
#: `use_jemalloc` leaves it alone.
ENV = "ARROW_DEFAULT_MEMORY_POOL"

# jemalloc is built for one memory page size and cannot run where pages are
# larger (some ARM machines): it is chosen on x86-64 only, whose pages are 4 KB.
_X86_64 = ("x86_64", "amd64")


def use_jemalloc() -> str:
    """Have Arrow allocate with jemalloc in this process, unless `ENV` names
    an allocator, the machine is not x86-64 or this Arrow has no jemalloc.

    Returns the name of the allocator Arrow uses from now on. Buffers
    allocated before keep their own allocator, which frees them.
    """
    import pyarrow as pa

    if (
        not os.environ.get(ENV)
        and platform.machine().lower() in _X86_64
        and "jemalloc" in pa.supported_memory_backends()
    ):
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    return str(pa.default_memory_pool().backend_name)
