"""The shared most-recently-used cache of per-piece state."""

from collections import OrderedDict

import pytest

from follower.recent import recently_used


@pytest.mark.parametrize("cache", [{}, OrderedDict()])
def test_keeps_the_most_recently_used_and_makes_only_what_is_missing(cache):
    made = []

    def make(k):
        return lambda: made.append(k) or f"v{k}"

    for k in (1, 2, 1, 3, 4):
        assert recently_used(cache, k, make(k), keep=3) == f"v{k}"
    assert list(cache) == [1, 3, 4]  # 2 was the least recently used when 4 came
    assert made == [1, 2, 3, 4]  # 1 was reused, not made again
    assert recently_used(cache, 2, make(2), keep=3) == "v2" and made[-1] == 2
    assert list(cache) == [3, 4, 2]
