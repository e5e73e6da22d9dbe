"""A small, thread-safe memo of the last few truths computed for scoring: every method of a cell
is scored against the same census or functional differences, so each is computed once."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Hashable
from typing import Any


class Memo:
    """The values of the ``size`` keys used last; ``get(key, compute)`` computes on a miss."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._values: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = compute()
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._size:
                self._values.popitem(last=False)
        return value
