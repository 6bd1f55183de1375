"""What the neighbours of each audio query vote for: offset cells, and pieces overall.

Each update the k nearest index snippets of the audio window cast one unit of vote
mass between them (weights = their clipped similarities, normalised to sum 1). Two
tallies keep it:

* :class:`OffsetVotes`, **votes with temporal consistency**, as audio fingerprinting
  does: each neighbour votes for the cell (piece, offset), offset = its snippet's
  position (MIDI s) minus the audio time of the window centre, soft-binned over
  ``bin_s`` bins (the bin width is the tempo tolerance); votes decay with ``decay_s``
  and are kept for the last ``horizon_updates`` updates. The best cells are the
  hypotheses the path verification (:mod:`follower.verify`) checks.
* :class:`PieceEvidence`, **accumulated piece votes**, order-free, as the paper
  identifies a piece: the same mass added to each neighbour's piece in a running
  total per piece that decays slowly (time constant ``decay_s`` of *voting* audio:
  updates that do not vote neither add nor decay). ``heard_s`` counts the seconds of
  audio that voted since the last reset. :meth:`PieceEvidence.leader` reports the
  leading piece, its total over the runner-up's (``inf`` when the runner-up has
  none; exact ties give 1), and ``heard_s``; the lock policy
  (:mod:`follower.policy`) decides what that is worth.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)  # no fastmath: the sums are bincount's, in its order
def _best_cells(piece, offset, weight, row_decay, bin_s, table, cell_key, cell_mass, best_key, best_mass):
    """The best cells of :meth:`OffsetVotes.cells` by mass, best first (ties: the lower key first).

    Exactly what ``cells`` then a stable argsort of the masses give: the same kept votes
    (decayed weight > 1e-4), keys and soft-bin split, and each cell's mass summed in
    bincount's order (the lower-bin shares in ring order, then the upper-bin shares).
    Cells are found with an open-addressing hash ``table`` (columns: key, cell number,
    generation stamp; row 0 is never a slot, its stamp column counts the calls), so
    nothing is sorted and nothing allocated. Fills ``best_key`` / ``best_mass`` (their
    length is how many are wanted) and returns how many it filled.
    """
    m, k = weight.shape
    mask = len(table) - 1
    gen = table[0, 2] + 1
    table[0, 2] = gen
    n_cells = 0
    for upper in range(2):
        for r in range(m):
            for c in range(k):
                w = row_decay[r] * weight[r, c]
                if w > 1e-4:
                    x = offset[r, c] / bin_s - 0.5
                    lo = np.floor(x)
                    frac = x - lo
                    key = piece[r, c] * 2**32 + (np.int64(lo) + upper + 2**31)
                    share = w * frac if upper else w * (1 - frac)
                    h = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & mask
                    while h == 0 or (table[h, 2] == gen and table[h, 0] != key):
                        h = (h + 1) & mask
                    if table[h, 2] != gen:
                        table[h, 0], table[h, 1], table[h, 2] = key, n_cells, gen
                        cell_key[n_cells] = key
                        cell_mass[n_cells] = 0.0
                        n_cells += 1
                    cell_mass[table[h, 1]] += share
    return _select(cell_key, cell_mass, n_cells, best_key, best_mass)


@numba.njit(cache=True, nogil=True)
def _key_ids(piece, offset, bin_s, rows, table, key_ids, id_key, frac, state):
    """Give every vote of ``rows`` the ids of its two cells' keys (as :func:`_best_cells` keys them) and its
    soft-bin fraction, from a hash ``table`` (columns: key, id + 1; 0 = empty) that keeps its keys
    between calls. Returns False, changing nothing further, when the ids would run out (the caller
    then starts a fresh table over every kept row)."""
    m, k = piece.shape
    mask = len(table) - 1
    for r in rows:
        if state[0] + 2 * k > len(id_key):
            return False
        for c in range(k):
            x = offset[r, c] / bin_s - 0.5
            lo = np.floor(x)
            frac[r, c] = x - lo
            for upper in range(2):
                key = piece[r, c] * 2**32 + (np.int64(lo) + upper + 2**31)
                h = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & mask
                while table[h, 1] != 0 and table[h, 0] != key:
                    h = (h + 1) & mask
                if table[h, 1] == 0:
                    table[h, 0], table[h, 1] = key, state[0] + 1
                    id_key[state[0]] = key
                    state[0] += 1
                key_ids[r, c, upper] = table[h, 1] - 1
    return True


@numba.njit(cache=True, nogil=True)  # no fastmath: the sums are bincount's, in its order
def _best_cells_by_id(key_ids, frac, weight, row_decay, id_key, stamp, cell_of, state, cell_key, cell_mass,
                      best_key, best_mass):
    """:func:`_best_cells` with each vote's cell keys and fraction found when it was added (:func:`_key_ids`):
    the same votes kept, the same shares added to each cell in the same order, the same selection."""
    m, k = weight.shape
    state[1] += 1
    gen = state[1]
    n_cells = 0
    for upper in range(2):
        for r in range(m):
            for c in range(k):
                w = row_decay[r] * weight[r, c]
                if w > 1e-4:
                    frac_rc = frac[r, c]
                    share = w * frac_rc if upper else w * (1 - frac_rc)
                    i = key_ids[r, c, upper]
                    if stamp[i] != gen:
                        stamp[i] = gen
                        cell_of[i] = n_cells
                        cell_key[n_cells] = id_key[i]
                        cell_mass[n_cells] = 0.0
                        n_cells += 1
                    cell_mass[cell_of[i]] += share
    return _select(cell_key, cell_mass, n_cells, best_key, best_mass)


@numba.njit(cache=True, nogil=True)
def _select(cell_key, cell_mass, n_cells, best_key, best_mass):
    """The best ``len(best_key)`` of the first ``n_cells`` cells by mass, best first (ties: the lower key
    first), into ``best_key`` / ``best_mass``; returns how many it filled."""
    n_best = len(best_key)
    found = 0
    for i in range(n_cells):
        key, total = cell_key[i], cell_mass[i]
        if found == n_best and not (total > best_mass[n_best - 1]
                                    or (total == best_mass[n_best - 1] and key < best_key[n_best - 1])):
            continue
        j = min(found, n_best - 1)
        while j > 0 and (best_mass[j - 1] < total or (best_mass[j - 1] == total and best_key[j - 1] > key)):
            best_mass[j], best_key[j] = best_mass[j - 1], best_key[j - 1]
            j -= 1
        best_mass[j], best_key[j] = total, key
        found = min(found + 1, n_best)
    return found


class OffsetVotes:
    """Decaying (piece, offset) vote cells over the last few seconds of updates.

    With ``bin_s`` given, each vote's cell keys are found once, when it is added, and
    :meth:`best_cells` for that bin width only sums the decayed shares per cell (the keys
    used to be recomputed and hashed for every kept vote, ~6,000 of them, on every update).
    """

    def __init__(self, k: int, horizon_updates: int, bin_s: float | None = None):
        self.k = k
        m = max(horizon_updates, 1)
        self._piece = np.zeros((m, k), np.int64)
        self._offset = np.zeros((m, k), np.float64)
        self._weight = np.zeros((m, k), np.float64)
        self._time = np.full(m, -np.inf)
        self._i = 0
        # best_cells' scratch: a hash table at most a quarter full (2 shares per vote), and the cells
        self._table = np.zeros((1 << int(np.ceil(np.log2(8 * m * k + 2))), 3), np.int64)
        self._cell_key = np.empty(2 * m * k, np.int64)
        self._cell_mass = np.empty(2 * m * k)
        self.bin_s = None if bin_s is None else float(bin_s)
        if self.bin_s is not None:
            # keys kept between updates: an id per distinct key since the table was last started afresh
            # (up to twice the votes kept: a fresh table holds at most 2 m k keys, so it lasts >= m updates)
            self._keys = np.zeros((1 << int(np.ceil(np.log2(8 * m * k + 2))), 2), np.int64)
            self._key_ids = np.zeros((m, k, 2), np.int64)
            self._frac = np.zeros((m, k), np.float64)
            self._id_key = np.zeros(4 * m * k + 2 * k, np.int64)
            self._stamp = np.zeros(len(self._id_key), np.int64)
            self._cell_of = np.zeros(len(self._id_key), np.int64)
            self._state = np.zeros(2, np.int64)  # ids given out, best_cells' generation

    def reset(self):
        self._weight[:] = 0
        self._time[:] = -np.inf

    def add(self, t_s: float, pieces, offsets_s, weights):
        i = self._i
        n = len(pieces)
        self._piece[i, :n], self._offset[i, :n], self._weight[i, :n] = pieces, offsets_s, weights
        self._weight[i, n:] = 0
        self._time[i] = t_s
        self._i = (i + 1) % len(self._time)
        if self.bin_s is not None:
            if not _key_ids(self._piece, self._offset, self.bin_s, np.array([i]), self._keys, self._key_ids,
                            self._id_key, self._frac, self._state):
                self._keys[:, 1] = 0  # ids ran out: a fresh table, over every kept row
                self._state[0] = 0
                _key_ids(self._piece, self._offset, self.bin_s, np.arange(len(self._time)), self._keys,
                         self._key_ids, self._id_key, self._frac, self._state)

    def cells(self, t_s: float, decay_s: float, bin_s: float):
        """(piece, offset_s, mass) of every cell, and the total decayed vote mass."""
        decay = np.exp(-(t_s - self._time) / decay_s)[:, None] * self._weight
        keep = decay > 1e-4
        if not keep.any():
            return np.empty(0, np.int64), np.empty(0), np.empty(0), 0.0
        piece, w = self._piece[keep], decay[keep]
        x = self._offset[keep] / bin_s - 0.5
        lo = np.floor(x)
        frac = x - lo
        # soft binning: each vote split between its two nearest bins
        keys = np.concatenate([piece * 2**32 + (lo.astype(np.int64) + 2**31),
                               piece * 2**32 + (lo.astype(np.int64) + 1 + 2**31)])
        mass = np.concatenate([w * (1 - frac), w * frac])
        uniq, inv = np.unique(keys, return_inverse=True)
        cell_mass = np.bincount(inv, weights=mass)
        cell_piece = uniq >> 32
        cell_offset = ((uniq & (2**32 - 1)) - 2**31 + 0.5) * bin_s
        return cell_piece, cell_offset, cell_mass, float(w.sum())


    def best_cells(self, t_s: float, decay_s: float, bin_s: float, n: int):
        """(piece, offset_s) of the ``n`` cells of most mass, best first (ties: lower piece and offset first).

        The same as :meth:`cells` followed by a stable sort of the masses, bit for bit, in one
        numba pass instead of a sort and a bincount over every vote of the horizon.
        """
        if n <= 0:
            return np.empty(0, np.int64), np.empty(0)
        row_decay = np.exp(-(t_s - self._time) / decay_s)  # numpy's exp, as cells() takes it
        keys, mass = np.empty(n, np.int64), np.empty(n)
        if self.bin_s is not None and float(bin_s) == self.bin_s:
            found = _best_cells_by_id(self._key_ids, self._frac, self._weight, row_decay, self._id_key, self._stamp,
                                      self._cell_of, self._state, self._cell_key, self._cell_mass, keys, mass)
        else:
            found = _best_cells(self._piece, self._offset, self._weight, row_decay, float(bin_s), self._table,
                                self._cell_key, self._cell_mass, keys, mass)
        keys = keys[:found]
        return keys >> 32, ((keys & (2**32 - 1)) - 2**31 + 0.5) * bin_s

    def warm_up(self) -> None:
        """Compile (or load) the kernel before audio starts."""
        _best_cells(self._piece, self._offset, self._weight, np.zeros(len(self._time)), 1.0, self._table,
                    self._cell_key, self._cell_mass, np.empty(1, np.int64), np.empty(1))
        if self.bin_s is not None:
            _key_ids(self._piece, self._offset, self.bin_s, np.zeros(0, np.int64), self._keys, self._key_ids,
                     self._id_key, self._frac, self._state)
            _best_cells_by_id(self._key_ids, self._frac, self._weight, np.zeros(len(self._time)), self._id_key,
                              self._stamp, self._cell_of, self._state, self._cell_key, self._cell_mass,
                              np.empty(1, np.int64), np.empty(1))


class Evidence(NamedTuple):
    """What the accumulated piece votes say now (a plain tuple to the lock policy)."""

    leader: int | None    # piece with the largest total; None before anything voted
    ratio: float          # its total / the runner-up's; inf if the runner-up has none
    heard_s: float        # seconds of audio that voted since the last reset


NOTHING_HEARD = Evidence(None, 0.0, 0.0)


class PieceEvidence:
    """Running, slowly decaying vote totals per piece; see the module docstring."""

    def __init__(self, n_pieces: int, decay_s: float):
        self.decay_s = decay_s
        self.totals = np.zeros(n_pieces)   # decayed vote mass per piece (one unit per voting update)
        self.heard_s = 0.0                 # audio that voted since the last reset, s

    def reset(self) -> None:
        self.totals[:] = 0.0
        self.heard_s = 0.0

    def add(self, pieces, mass, elapsed_s: float) -> None:
        """Decay the totals over ``elapsed_s`` of voting audio, then add ``mass`` to ``pieces``."""
        self.totals *= np.exp(-elapsed_s / self.decay_s)
        self.totals += np.bincount(pieces, weights=mass, minlength=len(self.totals))
        self.heard_s += elapsed_s

    def leader(self) -> Evidence:
        """(leading piece, its total / the runner-up's, seconds that voted)."""
        e = self.totals
        if self.heard_s <= 0 or len(e) == 0:
            return NOTHING_HEARD
        # runs every update: a partial sort for the top two, not a full one (exact ties
        # give ratio 1, which never locks, so which tied piece leads is moot)
        top = np.argpartition(-e, 1)[:2] if len(e) > 1 else np.zeros(1, np.int64)
        top = top[np.argsort(-e[top], kind="stable")]
        second = e[top[1]] if len(top) > 1 else 0.0
        ratio = float(e[top[0]] / second) if second > 0 else float("inf")
        return Evidence(int(top[0]), ratio, self.heard_s)
