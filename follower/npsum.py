"""numpy's float sums, bit for bit, inside numba kernels.

numpy adds a float array pairwise: blocks of up to 128 elements in 8 interleaved
partial sums, longer runs split in two. A kernel that must give exactly what the numpy
expression it replaces gave (the follower's JSON lines do not change when its hot loops
move into numba) adds in that order with :func:`pairwise_sum`, in the array's own
precision (float32 or float64: numba compiles one version for each); the kernels that use
it are compiled without fastmath, which would let LLVM reorder the additions.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _block_sum(a, lo, n):
    """numpy's sum of ``a[lo:lo + n]`` for n <= 128: 8 partial sums, then the rest in turn."""
    if n < 8:
        res = np.zeros(1, a.dtype)[0]  # (a zero of the array's type: a float64 0.0 would widen a float32 sum)
        for i in range(lo, lo + n):
            res = res + a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        j = lo + i
        r0, r1, r2, r3 = r0 + a[j], r1 + a[j + 1], r2 + a[j + 2], r3 + a[j + 3]
        r4, r5, r6, r7 = r4 + a[j + 4], r5 + a[j + 5], r6 + a[j + 6], r7 + a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res = res + a[lo + i]
        i += 1
    return res


@numba.njit(cache=True, nogil=True)
def pairwise_sum(a, lo, n):
    """numpy's ``sum`` of ``a[lo:lo + n]`` (float32 or float64), in its pairwise order, bit for bit.

    Blocks of up to 128 as :func:`_block_sum`; longer runs split in two (the first half
    a multiple of 8) and add the halves' sums. The split is walked with an explicit stack,
    not recursion (numba's on-disk cache and recursive kernels do not mix).
    """
    if n <= 128:
        return _block_sum(a, lo, n)
    seg_lo = np.empty(64, np.int64)       # pending segments, and the left sums waiting for their right halves
    seg_n = np.empty(64, np.int64)
    left = np.empty(64, a.dtype)
    state = np.zeros(64, np.int64)        # 0: split me; 1: left half done; 2: both done
    seg_lo[0], seg_n[0], top = lo, n, 0
    res = np.zeros(1, a.dtype)[0]
    while top >= 0:
        m = seg_n[top]
        if state[top] == 0 and m <= 128:
            res = _block_sum(a, seg_lo[top], m)
            top -= 1
        elif state[top] == 0:
            h = m // 2
            h -= h % 8
            state[top] = 1
            seg_lo[top + 1], seg_n[top + 1], state[top + 1] = seg_lo[top], h, 0
            top += 1
            continue
        elif state[top] == 1:
            h = m // 2
            h -= h % 8
            left[top] = res
            state[top] = 2
            seg_lo[top + 1], seg_n[top + 1], state[top + 1] = seg_lo[top] + h, m - h, 0
            top += 1
            continue
        else:
            res = left[top] + res
            top -= 1
        # a finished segment hands its sum (res) to its parent, which is in state 1 or 2
    return res
