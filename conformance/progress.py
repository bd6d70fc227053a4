"""What the run is doing, while it runs: on a terminal a live display (rich), in a CI log plain
lines every few seconds, nothing with `-q`.

Shown: the part running (a domain family or a Schemathesis phase) as step k of n, requests sent,
the operation being requested, violations so far, the current wait for the request budget with
its reason and length, and a rough time left (elapsed time per finished step times the steps
left: parts differ a lot in size, so it is an order of magnitude, marked ≈; it counts down and
never grows)."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from .budget import Budget
from .results import Results


def _fmt(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    def __init__(
        self,
        budget: Budget,
        results: Results,
        steps: list[str],
        mode: str = "auto",  # auto (rich on a TTY, else plain), rich, plain, off
        stream: IO[str] | None = None,
        interval: float = 15.0,
        max_time: float | None = None,
    ) -> None:
        self.budget, self.results, self.steps = budget, results, steps
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "rich" if self.stream.isatty() else "plain"
        self.mode, self.interval, self.max_time = mode, interval, max_time
        self.index = 0
        self.step = ""
        self.started = time.monotonic()
        self.step_started = self.started
        self.waiting: tuple[float, str, float] | None = None  # (seconds, why, since)
        self._end: float | None = None  # the estimated end (monotonic clock), never moved later
        self._estimated_at = 0  # steps finished when it was estimated
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Any = None
        budget.on_wait = self.wait

    # -- events --------------------------------------------------------------------------------
    def _follow(self) -> bool:
        """Follow the budget's section (the part running); True when it changed."""
        step = self.budget.section
        if step == self.step:
            return False
        if step in self.steps:
            self.index = self.steps.index(step) + 1
        self.step, self.step_started, self.waiting = step, time.monotonic(), None
        return True

    def wait(self, seconds: float, why: str) -> None:
        self._follow()
        self.waiting = (seconds, why, time.monotonic())
        if self.mode == "plain" and seconds >= 5:
            self.log(f"waiting {seconds:.0f}s for {why}")

    def log(self, message: str) -> None:
        if self.mode == "off":
            return
        if self._live is not None:
            self._live.console.print(f"[conformance] {message}", markup=False, highlight=False)
        else:
            print(f"[conformance] {message}", file=self.stream, flush=True)

    # -- rendering -----------------------------------------------------------------------------
    def status(self) -> str:
        self._follow()
        now = time.monotonic()
        elapsed = now - self.started
        parts = [
            f"{self.step} (step {self.index}/{len(self.steps)})",
            f"{self.budget.requests} requests",
            f"{len(self.results.failing)} violations",
            f"elapsed {_fmt(elapsed)}",
        ]
        left = self.left(now)
        if left is not None:
            parts.append(f"≈{_fmt(left)} left")
        if self.max_time is not None:
            parts.append(f"--max-time in {_fmt(self.max_time - elapsed)}")
        if self.budget.current:
            parts.append(f"now {self.budget.current}")
        if self.waiting is not None:
            seconds, why, since = self.waiting
            if now - since < seconds:
                parts.append(f"waiting {seconds - (now - since):.0f}s of {seconds:.0f}s for {why}")
        return " | ".join(parts)

    def left(self, now: float) -> float | None:
        """Time left, about: at each finished step, elapsed time per step times the steps left;
        between steps it counts down, and a new estimate never moves the end later than the last
        one did (nor past --max-time): an ETA that does not grow while the run waits on a bucket."""
        finished = max(self.index - 1, 0)
        if finished and finished != self._estimated_at:
            elapsed = now - self.started
            end = now + elapsed / finished * (len(self.steps) - finished)
            self._end = end if self._end is None else min(self._end, end)
            self._estimated_at = finished
        if self._end is None:
            return None
        end = self._end if self.max_time is None else min(self._end, self.started + self.max_time)
        return max(0.0, end - now)

    def _line(self) -> None:
        print(f"[conformance] {self.status()}", file=self.stream, flush=True)

    def _render(self) -> Any:
        from rich.text import Text

        return Text(self.status(), overflow="ellipsis", no_wrap=True)

    def start(self) -> None:
        if self.mode == "rich":
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, stderr=self.stream is sys.stderr)
            self._live = Live(self._render(), console=console, refresh_per_second=4, transient=True)
            self._live.start()
            self._thread = threading.Thread(target=self._refresh, name="conformance-progress", daemon=True)
            self._thread.start()
        elif self.mode == "plain":
            self._thread = threading.Thread(target=self._tick, name="conformance-progress", daemon=True)
            self._thread.start()

    def _refresh(self) -> None:
        while not self._done.wait(0.25):
            self._follow()
            self._live.update(self._render())

    def _tick(self) -> None:
        last = time.monotonic()
        while not self._done.wait(0.5):
            if self._follow() or time.monotonic() - last >= self.interval:
                self._line()
                last = time.monotonic()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._live is not None:
            self._live.stop()
            self._live = None
