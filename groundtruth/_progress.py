"""Progress a person can follow wherever the work runs: a bar on a terminal or in a notebook (tqdm),
and a line now and then when the output is a file or a pipe."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return type(shell).__name__ == "ZMQInteractiveShell"


class Progress:
    """Progress over ``total`` units, as a context manager: ``update(n)`` advances it and
    ``note(text)`` sets the text after it.

    On a terminal (or in a Jupyter notebook) it is a tqdm bar with the rate and the time left.
    Anywhere else (a log file, a pipe, CI) it stays quiet for the first ``every`` seconds, then
    writes one line every ``every`` seconds: units done, time elapsed, time left, and a last line
    when it ends, so a long run in a script is never silent and a short one adds nothing.
    ``enabled=False`` writes nothing at all.

    Parameters
    ----------
    total : int
        Units of work (cells, steps, frames).
    label : str
        What is running, at the start of every line.
    stream : text stream, optional
        Where to write (default: standard error).
    enabled : bool, optional
        False: silent. Default (None): on.
    every : float
        Seconds between lines when the stream is not a terminal.
    unit : str
        What a unit is called in the lines.
    """

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, enabled: bool | None = None,
                 every: float = 30.0, unit: str = "") -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled is not False
        self.every = float(every)
        self.unit = f" {unit}" if unit else ""
        self.done = 0
        self.text = ""
        self._start = time.perf_counter()
        self._last_line = self._start
        self._lines = 0
        self._bar = None
        terminal = getattr(self.stream, "isatty", lambda: False)()
        if self.enabled and (terminal or (_in_notebook() and self.stream in (sys.stderr, sys.stdout))):
            if _in_notebook():
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm
            self._bar = tqdm(total=self.total, desc=label, file=self.stream, dynamic_ncols=True, leave=True,
                             unit=unit or "it")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End the bar, or write the last line (when any line was written)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self._lines:
            self._line(final=True)
            self._lines = 0

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.perf_counter() - self._last_line >= self.every:
            self._line()

    def note(self, text: str) -> None:
        self.text = text
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def _line(self, final: bool = False) -> None:
        now = time.perf_counter()
        elapsed = now - self._start
        done = min(self.done, self.total)
        left = ""
        if not final and 0 < done < self.total:
            left = f", about {_duration(elapsed / done * (self.total - done))} left"
        state = "done" if final and done >= self.total else f"{100 * done / self.total:.0f}%"
        text = f" ({self.text})" if self.text else ""
        self.stream.write(f"{self.label}: {done}/{self.total}{self.unit} {state}, {_duration(elapsed)} elapsed{left}{text}\n")
        self.stream.flush()
        self._last_line = now
        self._lines += 1


__all__ = ["Progress"]
