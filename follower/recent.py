"""A cache that keeps only its most recently used entries.

The engine builds per-piece state (trackers, fine aligners, note-template cells) on first
use. Keeping every piece ever used grows a long run with each new one (music outside the
corpus brings ever new candidates), so each cache keeps the most recently used few and
builds a dropped entry again, the same, if it comes back.
"""

from __future__ import annotations

from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


def recently_used(cache: dict, key: Hashable, make: Callable[[], T], keep: int) -> T:
    """``cache[key]`` (made by ``make()`` if absent), now the most recently used entry.

    The cache's insertion order is its order of use (a plain dict or an OrderedDict); entries
    beyond the ``keep`` most recently used are dropped, least recent first.
    """
    value = cache.pop(key) if key in cache else make()
    cache[key] = value  # (re-)inserted last: the most recent
    while len(cache) > keep:
        del cache[next(iter(cache))]
    return value
