"""Python's garbage collector, set for a process that builds many queries.

Every analysis builds its query as a graph of Ibis objects, and compiling it
builds as many again: tens of thousands of short-lived objects per command.
With Python's default thresholds (a young-generation pass every 700 net
allocations) the collector ran 2,842 times in a 500-customer `regulars demo`
and took about 3 s of its 45-55 s, two thirds of it in full passes over
every object the imported libraries keep; with `collect_less`, 64 times and
about 1 s. Three of the test files, which run hundreds of
queries in one process, took 180-184 s with `collect_less` and 202-217 s
without.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "collect_less"]

#: Net allocations of container objects between two young-generation passes.
YOUNG_THRESHOLD = 20_000


def collect_less() -> None:
    """Run the young-generation pass every `YOUNG_THRESHOLD` allocations
    rather than every 700, and the older ones as often relative to it.

    What is collected is the same; only how often the collector looks
    changes. Objects freed by their reference count go at once as before;
    only garbage in reference cycles waits for a pass, now up to 20,000
    objects' worth more of it.
    """
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
