"""The console side of a multi-stage run (``baldro demo``, ``baldro study``): one progress display over all stages.

Stages report events ``{"name", "status"}`` with status ``started``, ``done`` (+ ``seconds``), ``cached`` or
``failed`` (+ ``seconds``, ``log``); :class:`Progress` turns them into console output on stderr, in one of two modes:

- **live** (stderr is a terminal): ONE line, rewritten in place with ``\\r`` and refreshed every second by a
  background thread, so the elapsed time moves while a long stage runs::

      [baldro demo 5/14 1:23] [#######-------------] running: unlearn npo seed 0 (0:12) | last: evaluate target model done in 3.1 s

  It writes to a duplicate of file descriptor 2 taken at the start, so a stage that captures fd 2 into its log
  (:func:`baldro.experiments.stages.captured_output`) does not swallow it. A failure is printed as a line of its own
  (naming the stage's log) above the status line; :meth:`Progress.close` ends the line.
- **plain** (pipes, CI logs, files): whole lines only, one per finished or cached stage, no carriage returns::

      [baldro demo 5/14 1:23] unlearn npo seed 0: done in 12.3 s
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Any

BAR_WIDTH = 20
DEFAULT_COLUMNS = 100


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def clock(seconds: float) -> str:
    """``m:ss`` (minutes unbounded): 83.4 → ``1:23``."""
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


class Progress:
    """Progress over ``total`` stages; call it with each stage event. ``live``: None = decide from the stream.

    ``stream`` None means stderr: in plain mode whatever ``sys.stderr`` is at each event, in live mode a duplicate of
    file descriptor 2. Use it as a context manager (or call :meth:`close`) so the live line ends cleanly.
    """

    def __init__(self, total: int, prefix: str = "baldro", count: int = 0, start: float | None = None,
                 stream: IO[str] | None = None, live: bool | None = None, tick_s: float = 1.0) -> None:
        self.total, self.prefix, self.count = total, prefix, count
        self.start = time.perf_counter() if start is None else start
        self.live = _is_tty(stream if stream is not None else sys.stderr) if live is None else live
        self._stream, self._owned = stream, False
        if self.live and stream is None:
            try:
                self._stream = os.fdopen(os.dup(sys.stderr.fileno()), "w", encoding="utf-8", errors="replace")
                self._owned = True
            except (AttributeError, ValueError, OSError):  # no real fd 2: fall back to whatever stderr is
                self._stream = sys.stderr
        self.tick_s = tick_s
        self.running: dict[str, float] = {}
        self.last = ""
        self._shown = 0  # length of the live line on screen
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._closed = False

    # ---- formatting -------------------------------------------------------------------------------------------
    def head(self) -> str:
        return f"[{self.prefix} {self.count}/{self.total} {clock(time.perf_counter() - self.start)}]"

    @staticmethod
    def outcome(event: dict[str, Any]) -> str:
        """``done in 12.3 s`` / ``cached`` / ``FAILED after 1.0 s; its output: <log>``."""
        status = event["status"]
        if status == "done":
            return f"done in {event['seconds']:.1f} s"
        if status == "failed":
            return f"FAILED after {event['seconds']:.1f} s; its output: {event['log']}"
        return str(status)

    def line(self, event: dict[str, Any]) -> str:
        """The plain-mode line of a finished, cached or failed stage."""
        return f"{self.head()} {event['name']}: {self.outcome(event)}"

    def status_line(self, columns: int | None = None) -> str:
        """The live line: position, bar, elapsed time, the running stages with their own time, the last event;
        clipped to ``columns - 1`` characters so the terminal never wraps it (a wrapped line cannot be rewritten)."""
        now = time.perf_counter()
        filled = BAR_WIDTH * min(self.count, self.total) // max(self.total, 1)
        parts = [f"{self.head()} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}]"]
        if self.running:
            parts.append("running: " + ", ".join(f"{n} ({clock(now - t)})" for n, t in self.running.items()))
        if self.last:
            parts.append(f"last: {self.last}")
        text = parts[0] + (" " + " | ".join(parts[1:]) if len(parts) > 1 else "")
        columns = columns or self._columns()
        return text if len(text) <= columns - 1 else text[: max(columns - 4, 0)] + "..."

    def _columns(self) -> int:
        try:
            columns = os.get_terminal_size(self._stream.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            return DEFAULT_COLUMNS
        return columns if columns > 0 else DEFAULT_COLUMNS  # a pseudo-terminal nobody sized reports 0

    # ---- events ------------------------------------------------------------------------------------------------
    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            name, status = event["name"], event["status"]
            if status == "started":
                self.running[name] = time.perf_counter()
                self._ensure_ticker()
            else:
                self.running.pop(name, None)
                self.count += status != "failed"
            if not self.live:
                if status != "started":
                    print(self.line(event), file=sys.stderr if self._stream is None else self._stream, flush=True)
                return
            if status == "failed":
                self._write_over(self.line(event) + "\n")
                self._shown = 0
            elif status != "started":
                self.last = f"{name} {self.outcome(event)}"
            self._draw()

    def refresh(self) -> None:
        """Redraw the live line (the elapsed time moves); nothing in plain mode."""
        with self._lock:
            if self.live and not self._closed:
                self._draw()

    def close(self) -> None:
        """Stop the refresh thread and end the live line with a newline (idempotent)."""
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.live and self._shown:
                self._draw()
                self._stream.write("\n")  # type: ignore[union-attr]
                self._stream.flush()  # type: ignore[union-attr]
                self._shown = 0
            if self._owned:
                self._stream.close()  # type: ignore[union-attr]

    def __enter__(self) -> Progress:
        """Live mode: draw the line now and keep its clock moving (workers can take seconds to start)."""
        with self._lock:
            if self.live:
                self._draw()
                self._ensure_ticker()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- live drawing ------------------------------------------------------------------------------------------
    def _write_over(self, text: str) -> None:
        """``\\r`` + text, blank-padded over what the previous line left on screen (no escape codes needed)."""
        body = text.rstrip("\n")
        pad = " " * max(self._shown - len(body), 0)
        self._stream.write("\r" + body + pad + text[len(body):])  # type: ignore[union-attr]
        self._stream.flush()  # type: ignore[union-attr]

    def _draw(self) -> None:
        text = self.status_line()
        self._write_over(text)
        self._shown = len(text)

    def _ensure_ticker(self) -> None:
        if self.live and self._ticker is None and self.tick_s > 0:
            self._ticker = threading.Thread(target=self._tick, name="baldro-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.refresh()
            except (OSError, ValueError):  # the terminal went away: stop refreshing, the run goes on
                return
