"""Progress of one evaluation phase (scoring, generating) counted in items, with the elapsed time and an ETA.

A phase runs in batches that can each take minutes on a CPU (greedy generation of 128 questions of a 135 M model), so
a bar of batches sits at "0/1" for as long. :class:`ItemProgress` counts the items a phase has finished — generation
reports each question as it stops (EOS or budget), scoring each batch — and estimates the rest at the rate so far:

    generating: 96/657 questions · 1:02 elapsed · ETA 6:03

ETA = elapsed × (total − done) / done (``?`` until the first item is done); times as ``m:ss`` (minutes unbounded), as
the demo / study display (docs/console-progress.md). On a terminal the line is rewritten in place with ``\\r`` (at most
once a second); anywhere else (a pipe, a stage log) a whole line is written at
most every ``PLAIN_EVERY_S`` seconds. Either way the line is written as the phase begins, and ended by one line with
the phase's total time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, TypeVar

T = TypeVar("T")
TTY_EVERY_S = 1.0
PLAIN_EVERY_S = 30.0


def clock(seconds: float) -> str:
    """``m:ss`` (minutes unbounded): 83.4 → ``1:23``."""
    s = max(int(seconds), 0)
    return f"{s // 60}:{s % 60:02d}"


def eta_seconds(elapsed: float, done: int, total: int) -> float | None:
    """Seconds left at the rate so far, ``elapsed × (total − done) / done``; None before the first item."""
    if done <= 0:
        return None
    return elapsed * max(total - done, 0) / done


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class ItemProgress:
    """Items done of ``total`` in the phase ``desc``; :meth:`advance` as items finish, :meth:`close` at the end.

    ``enabled`` False writes nothing. ``stream`` None: stderr. ``clock_fn``: the time source (tests pass a fake)."""

    def __init__(self, total: int, desc: str | None, unit: str = "items", enabled: bool = True,
                 stream: IO[str] | None = None, clock_fn: Callable[[], float] = time.monotonic) -> None:
        self.total, self.desc, self.unit, self.enabled = int(total), desc or "evaluating", unit, enabled and total > 0
        self.done = 0
        self._stream, self._clock = stream, clock_fn
        self._start = clock_fn()
        self._written_at = self._start
        self._width = 0
        if self.enabled:  # the phase has begun: its line at once ("0/N ... ETA ?"), not after the first batch
            self._write(self.text())

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    def text(self) -> str:
        """The status line: ``desc: done/total unit · m:ss elapsed · ETA m:ss``."""
        elapsed = self._clock() - self._start
        eta = eta_seconds(elapsed, self.done, self.total)
        return (f"{self.desc}: {self.done}/{self.total} {self.unit} · {clock(elapsed)} elapsed · "
                f"ETA {'?' if eta is None else clock(eta)}")

    def advance(self, n: int = 1) -> None:
        """``n`` more items done (capped at ``total``); writes the line when it is due."""
        self.done = min(self.done + int(n), self.total)
        if not self.enabled:
            return
        now = self._clock()
        every = TTY_EVERY_S if _is_tty(self.stream) else PLAIN_EVERY_S
        if now - self._written_at >= every and self.done < self.total:  # the last one: close's line
            self._write(self.text())
            self._written_at = now

    def close(self) -> None:
        """End the phase: one line with its total time (``desc: total/total unit in m:ss``)."""
        if not self.enabled:
            return
        self._write(f"{self.desc}: {self.done}/{self.total} {self.unit} in {clock(self._clock() - self._start)}",
                    end=True)
        self.enabled = False

    def _write(self, text: str, end: bool = False) -> None:
        stream = self.stream
        if _is_tty(stream):
            stream.write("\r" + text.ljust(self._width) + ("\n" if end else ""))
            self._width = 0 if end else len(text)
        else:
            stream.write(text + "\n")
        stream.flush()

    def __enter__(self) -> ItemProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def item_batches(batches: Sequence[Sequence[T]], desc: str | None, enabled: bool, unit: str = "items",
                 size: Callable[[Sequence[T]], int] = len) -> Iterator[Sequence[T]]:
    """Iterate ``batches``, advancing an :class:`ItemProgress` over their items (``size(batch)`` each) after each."""
    progress = ItemProgress(sum(size(b) for b in batches), desc, unit, enabled)
    with progress:
        for batch in batches:
            yield batch
            progress.advance(size(batch))


__all__ = ["ItemProgress", "clock", "eta_seconds", "item_batches"]
