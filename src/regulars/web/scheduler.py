"""Run `flows run` on a schedule inside `regulars serve`.

A background thread runs the flows every `every` seconds, at the clock's
time, opening the store (read-only) for each run and closing it after, so
imports can go on in between. A run that fails is logged and retried at
the next tick; it never stops the web app. Cron and `serve` may both run
flows on the same state: the app state's lock and claims keep each message
to one send (docs/flows.md).
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FlowScheduler"]

log = logging.getLogger("regulars.flows")


@dataclass
class FlowScheduler:
    """Call `run_once` every `every` seconds in a daemon thread."""

    run_once: Callable[[], Any]
    every: float
    runs: int = 0
    last_started: _dt.datetime | None = None
    last_summary: dict[str, Any] | None = None
    last_error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name="regulars-flows", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.last_started = _dt.datetime.now(_dt.UTC)
            try:
                self.last_summary = self.run_once()
                self.last_error = None
            except Exception as exc:  # noqa: BLE001 (a failed run must not stop the server)
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("flows run failed: %s", self.last_error)
            self.runs += 1
            self._stop.wait(self.every)

    def status(self) -> dict[str, Any]:
        """What /health reports about the schedule."""
        return {
            "every_seconds": self.every, "runs": self.runs,
            "last_started": self.last_started.isoformat() if self.last_started else None,
            "last_run": self.last_summary, "last_error": self.last_error,
        }  # fmt: skip
