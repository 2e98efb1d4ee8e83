"""A progress bar for long management commands: drawn on a terminal only (a pipe or a log gets nothing)."""

import sys
import time


class ProgressBar:
    """``bar(phase, done, total)`` redraws one line on ``stream`` when it is a terminal; ``close()`` ends it.
    Redraws at most ten times a second, so a loop may call it for every row."""

    def __init__(self, stream=None, *, width: int = 30, enabled: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) if enabled is None else enabled
        self.width, self.started, self.last, self.drawn = width, time.monotonic(), 0.0, False

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self.last < 0.1:
            return
        self.last = now
        share = done / total if total else 1
        filled = int(self.width * share)
        elapsed = now - self.started
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 and done else ""
        self.stream.write(f"\r{phase:<10} [{'#' * filled}{'.' * (self.width - filled)}] {done:>7,}/{total:,} {rate}"
                          "\033[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
