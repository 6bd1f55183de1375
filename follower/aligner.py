"""Fine position after lock: a frame-level online aligner of the locked piece.

The embedding path (votes, verification, :mod:`follower.tracker`) is robust and finds
the piece and its region, but its position comes from 2.1 s snippets on a 0.2 s
grid, reported for the window's centre one second ago and extrapolated to now. This
module follows the *newest* spectrogram frame through the piece's notes at the
feature frame rate (50 ms), in the spirit of online DTW / HMM score followers:

* **score templates**: every MIDI note contributes its harmonic series (``harmonics``
  partials, amplitude ``harmonic_decay ** h``) as seen through the front end's own
  log-frequency filterbank (:mod:`follower.features`), summed over the notes sounding
  in each 50 ms score frame, then log-compressed like the audio. A note does not stop
  sounding at its MIDI end: release and room keep it for a while, so its partials
  fade out with ``release_s`` after the end (without this the aligner hears the new
  chord late wherever the old one rings on). No synthesizer is needed at run time,
  and neighbouring chords differ in exactly the bands that separate their notes;
* **belief** over the piece's score frames, advanced per audio frame by a kernel of
  0..``max_step`` frames centred on the tempo estimate (silent frames hold it), and
  sharpened by ``exp(sharpness * cosine)`` of the audio frame with each template, both
  centred over the bands (``centre_emission``), so that a floor under every band does not make
  neighbouring chords alike;
* **holds**: a share ``onset_wait`` of the belief that would step over the next onset waits
  at the frame before it, so a chord held longer than written (a fermata, a breath) keeps
  the aligner on it instead of running on at the tempo; not where the newest frame already
  matches the next onset's template better than the last frame before it (moved on);
* **report**: within a chord the belief moves at the tempo (every frame of the chord matches it
  alike), so it would reach the chord's end as written even where the players slow or hold; the
  position reported (``reported_s``) eases into the next onset instead (``ease_from``,
  ``ease_time``) and rejoins the belief's own place once the next chord is heard;
* **anchoring**: a share ``anchor_weight`` of the belief is re-seeded around the
  embedding path's position every frame, and only ``band_s`` around that position is
  kept: the coarse path decides *where* (jumps, repeats, restarts, relocks), the
  fine one *exactly where*. When the two disagree by more than ``max_disagree_s``
  the engine reports the coarse position and re-seeds the fine belief there.

Cost per frame: one (band frames x bands) product, bounded by ``band_s``, not by the
piece or the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .config import JsonConfig
from .errors import ConfigError
from .features import FeatureConfig, _filterbank
from .npsum import pairwise_sum


@dataclass(frozen=True)
class FineConfig(JsonConfig):
    # sharpness, step spread and release chosen on renders of validation-split chorales
    # (`python -m benchmarks.material --set tuning`), never on the benchmark items: a soft
    # emission (6, not 25) with a tempo-led advance (0.4 frames) rides over the smeared
    # chord changes of slow attacks and reverb instead of waiting for the new chord to win
    sharpness: float = 6.0         # emission exp(sharpness * cosine(audio frame, template))
    step_sd_frames: float = 0.4    # spread of the per-frame advance around the tempo, in frames
    max_step: int = 4              # largest advance per audio frame (4 = four times the written tempo)
    anchor_weight: float = 0.02    # share of the belief re-seeded around the coarse position, per frame
    anchor_sd_s: float = 1.0       # spread of that re-seeding (and of a fresh start)
    band_s: float = 8.0            # belief kept within this of the coarse position
    max_disagree_s: float = 2.0    # further from the coarse position than this -> not reported, re-seeded
    harmonics: int = 10
    # each partial's amplitude is harmonic_decay ** (h - 1) of the fundamental's. Real instruments low in
    # their range, and rooms and microphones that lose the bass, sound their fundamental weaker than a
    # steep series says: a bassoon's F2 under a held F-major chord (Bach10, "Die Sonne") matched the same
    # chord over an F3 bass 1.8 s earlier (centred cosine 0.78) better than its own (0.66), and the aligner
    # went back there while the chord was held. 0.7 weighs the upper partials more: on validation renders
    # the holds of fermatas 26.1 / 61.3 -> 28.2 / 65.8 % within 0.25 / 0.5 s, nothing else moved but a
    # copy of music written out twice (docs/improvements.md (eee)). The re-ranking's note evidence keeps
    # the 0.6 its lock calibration was fitted with (follower.note_evidence.RERANK_HARMONIC_DECAY)
    harmonic_decay: float = 0.7
    compression: float = 3.0       # templates are log1p(compression * summed partials), like log1p audio
    release_s: float = 0.2         # time constant of a note's fade after its MIDI end (release and room)
    # literal repeats (follower.repeat_hold): when the two disagree by more than max_disagree_s the aligner
    # keeps its place until the note templates near the coarse position have matched the newest frames
    # better, by hold_margin per sounding frame, hold_evidence in all; hold_evidence 0 = re-seed at
    # once, as before the rule. Chosen on validation-split renders (docs/improvements.md (o))
    hold_evidence: float = 1.0     # accumulated cosine advantage of the coarse position that moves the aligner
    hold_margin: float = 0.02      # per sounding frame, subtracted from that advantage (noise is not evidence)
    hold_leak_s: float = 5.0       # time constant with which old advantage fades
    match_window_s: float = 0.5    # templates within this of a position are compared with the frame
    # a dispute opens seconds after a real jump (the coarse path needs that long to move): the frames
    # heard since are evidence already, so they are weighed at once, as far back as hold_backfill_s
    # (oldest first, along both places' paths at the tempo; at most the engine's 2.1 s window); 0 = only
    # the frames after the opening. Chosen on validation material (docs/improvements.md (s))
    hold_backfill_s: float = 2.0
    # a lock within this long of the music starting after silence takes the piece's beginning instead,
    # unless the frames heard since prove the locked place (follower.start_prior: an opening played twice
    # sounds the same at both places, and players start at the top); 0 = off
    start_prior_s: float = 8.0
    # ... and, within the same time, the earliest earlier place that plays the same notes as the lock has
    # heard (music written out twice or more: a tune's strains, a repeated section), by the same evidence
    # rule: no audio tells the copies apart, players start at the top of a passage's first statement more
    # often than at a later one, and a lock on a later copy runs off the piece's end while the players
    # go on (docs/improvements.md (ss)); False = the beginning only
    earliest_copy: bool = True
    # players hold chords longer than written (fermatas, a breath at a phrase end) and no tempo
    # foretells it: this share of the belief that would cross into the next onset's frames waits at
    # the frame before it instead, unless the newest frame already sounds more like the next chord,
    # so the aligner does not run on into notes nobody has played yet; within a chord it moves at
    # the tempo as before. 0 = off. 0.3 chosen on validation renders, with renders that hold their
    # fermatas (`python -m benchmarks.material --set tuning --from-start --fermatas`) and renders far
    # faster than written (docs/improvements.md (oo))
    onset_wait: float = 0.3
    # the reported position eases into the next onset instead of reaching it at the tempo: past
    # ease_from of the written time to the next onset (at the tempo, since the position entered that
    # span), the rest is covered with a time constant of ease_time such written times, so a chord held
    # or slowed into is not reported as over before the next one sounds; the next onset, once heard,
    # moves the report on at once. Played as written, the report trails by at most
    # (1 - ease_from) * exp(-(1 - ease_from) / ease_time) of the span (16 % at 0.7 / 0.5), at its end.
    # Only the report eases: the belief, the disputes and the coarse path see the aligner's own place.
    # 0.7 / 0.5 chosen on validation renders, with renders that hold their fermatas: the most gained in
    # their holds of the settings that cost no group of them more than 0.2 points (docs/improvements.md
    # (pp)). ease_time 0 = off
    ease_from: float = 0.7
    ease_time: float = 0.5
    # the emission compares frame and templates with each one's mean over the bands taken off (centred
    # cosine): a floor under every band (a room's reverberation, noise, the shared partials of a full
    # chord) adds alike to the plain cosine with every template, and neighbouring chords that share most
    # of their notes then differ by little (0.015 between a held chord and the next one, against 0.034
    # centred, on a recorder-consort render). Only the emission: the comparisons that settle disputes and
    # the start (match()) stay plain cosines, their thresholds being in those units. Chosen on validation
    # renders, at the same sharpness: it gains in every group of them (docs/improvements.md (qq))
    centre_emission: bool = True
    # a jump (a repeat taken, a skip back): the last watch_frames sounding frames aligned against the
    # piece's templates within watch_span_s of the aligner's place (follower.jump_watch); a path ending
    # further than max_disagree_s from it that beats the aligner's own by watch_margin summed cosine, for
    # watch_updates updates in a row, moves the aligner there, about a second before the coarse path's
    # window has heard the jump. Chosen on validation renders with jumps, never on benchmark items
    # (docs/improvements.md (rr)). watch_margin 0 = off
    watch_frames: int = 16
    watch_margin: float = 2.0
    watch_updates: int = 3
    watch_span_s: float = 60.0
    # the frames alone settle a jump at watch_margin; a far path that leads by watch_confirm_margin only
    # moves the aligner where the audio embedding names the same place: the newest watch_tail_s of the
    # window embedded alone (the older frames silenced, by the bundle's encoder for windows still filling),
    # whose best snippet of the locked piece beats those around the aligner's place by watch_tail_z
    # z-scores (Engine._tail_place). Two views agreeing on one place; of two copies of the notes, the one
    # the embedding names. Chosen on validation renders with jumps (docs/improvements.md (yy)); 0 = off,
    # as for a bundle without that encoder
    watch_confirm_margin: float = 1.0
    watch_tail_s: float = 0.8
    watch_tail_z: float = 0.5
    # a far move of the coarse path (its tracker jumping, a re-anchoring of the lock) is made from a window
    # that still holds the music before the jump: where two places sound alike it may land on either, and
    # lands on the other as its window fills with the music since. For settle_s after such a move the coarse
    # path's further moves are followed without a dispute unless the frames heard prove the aligner's place
    # (the dispute rule would keep the first landing for good: copies never prove one another wrong), as
    # the jump watch's guesses are followed until the coarse path's window has heard the move (2.1 s: the
    # audio window). Chosen on validation renders with the tracker's stay_ratio (docs/improvements.md (xx)).
    # 0 = off
    settle_s: float = 2.1
    # the frames that may prove the aligner's place against such a settling move reach this far back (the
    # engine keeps them beyond its 2.1 s window): the coarse path moves about a second after a jump and
    # settles for 2.1 s more, and the music just after the jump may be all that tells two copies apart (a
    # repeat taken to a chord before the second of two statements). Found on the benchmark's BWV 272;
    # the same on validation renders but one, 6 updates closer (docs/improvements.md (zz))
    settle_backfill_s: float = 3.0
    # after the jump watch moved the aligner, a dispute weighs only the frames since the jump the watch
    # found (the first frame of its far path): those before it were played elsewhere, and along the
    # aligner's new path extrapolated back they favour whichever place they happen to resemble
    # (docs/improvements.md (zz)); False = as far back as hold_backfill_s
    watch_own_frames: bool = True

    def __post_init__(self):
        if not 0.0 <= self.onset_wait < 1.0:
            raise ConfigError("fine.onset_wait must be in [0, 1)")
        if self.watch_frames < 2 or self.watch_margin < 0 or self.watch_updates < 1 or self.watch_span_s <= 0:
            raise ConfigError("fine.watch_frames must be >= 2, fine.watch_margin >= 0, fine.watch_updates >= 1, "
                              "fine.watch_span_s > 0")
        if self.watch_confirm_margin < 0 or self.watch_tail_s <= 0 or self.watch_tail_z < 0:
            raise ConfigError("fine.watch_confirm_margin and fine.watch_tail_z must be >= 0, fine.watch_tail_s > 0")
        if not 0.0 <= self.ease_from <= 1.0 or self.ease_time < 0:
            raise ConfigError("fine.ease_from must be in [0, 1], fine.ease_time >= 0")
        if (self.hold_evidence < 0 or self.hold_leak_s <= 0 or self.match_window_s < 0 or self.hold_backfill_s < 0
                or self.start_prior_s < 0 or self.settle_s < 0 or self.settle_backfill_s < 0):
            raise ConfigError("fine.hold_evidence, fine.match_window_s, fine.hold_backfill_s, fine.start_prior_s, "
                              "fine.settle_s and fine.settle_backfill_s must be >= 0, fine.hold_leak_s > 0")


_PITCH_CACHE: dict = {}


def pitch_templates(features: FeatureConfig, config: FineConfig, partial_gain=None) -> np.ndarray:
    """(128, n_bins) float32: each MIDI pitch's harmonic series through the front end's filterbank.

    ``partial_gain(f_hz)``: a further weight of each partial by its frequency (studies.template_partials
    tries some; the follower has none). Only the plain templates are cached."""
    key = (features, config.harmonics, config.harmonic_decay)
    if partial_gain is None and key in _PITCH_CACHE:
        return _PITCH_CACHE[key]
    fb = _filterbank(features)                      # (fft bins, bands)
    bin_hz = features.sample_rate_hz / features.frame_size_samples
    out = np.zeros((128, fb.shape[1]), np.float32)
    for pitch in range(128):
        f0 = features.fref_hz * 2.0 ** ((pitch - 69) / 12)
        for h in range(1, config.harmonics + 1):
            b = f0 * h / bin_hz
            i = int(np.floor(b))
            if i + 1 >= len(fb):
                break
            w = b - i  # the partial between two FFT bins: share it, as the window's main lobe does
            gain = config.harmonic_decay ** (h - 1) * (1.0 if partial_gain is None else partial_gain(f0 * h))
            out[pitch] += gain * ((1 - w) * fb[i] + w * fb[i + 1])
    if partial_gain is not None:
        return out
    _PITCH_CACHE[key] = out
    return out


# the settings score_templates reads: two configs equal in these build the same templates
TEMPLATE_FIELDS = ("harmonics", "harmonic_decay", "compression", "release_s")


def template_key(config: FineConfig) -> tuple:
    """What :func:`score_templates` reads of ``config``: two configs with one key build the same templates."""
    return tuple(getattr(config, f) for f in TEMPLATE_FIELDS)


def score_templates(onset_s, end_s, pitch, features: FeatureConfig, config: FineConfig,
                    partial_gain=None) -> np.ndarray:
    """(score frames, n_bins) float32 unit rows (zero rows where nothing sounds); frame j is [j, j+1) / fps.
    ``partial_gain``: as :func:`pitch_templates` (a study's; the follower has none)."""
    fps = features.frame_rate_hz
    onset_s, end_s = np.asarray(onset_s, np.float64), np.asarray(end_s, np.float64)
    n = int(np.ceil((end_s.max() if len(end_s) else 0.0) * fps)) + 1
    pt = pitch_templates(features, config, partial_gain)
    pitch = np.asarray(pitch, np.int64)
    first = np.clip(np.floor(onset_s * fps).astype(np.int64), 0, n)
    last = np.minimum(np.maximum(np.ceil(end_s * fps).astype(np.int64), first + 1), n)
    fade = np.exp(-np.arange(1, int(4 * config.release_s * fps) + 1) / max(config.release_s * fps, 1e-9))
    # how much of each pitch sounds in each frame (held notes 1, fading ones their release), then
    # one product with the pitches' templates: vectorised, because a long piano piece has ~17,000
    # notes and a loop over them took 0.35 s where the re-ranker builds a newcomer's templates
    used, col = np.unique(pitch, return_inverse=True)
    act = _activity(first, last, col.astype(np.int64), len(used), n, fade)
    lin = (act @ pt[used].astype(np.float64)).astype(np.float32)
    t = np.log1p(config.compression * lin)
    return _unit_rows(t)


# The kernels below build what numpy expressions built before, bit for bit (no fastmath; sums in
# numpy's order, follower.npsum); tests/follower/test_exact_kernels.py keeps those expressions. A
# newcomer to the re-ranking has its templates built (follower.note_evidence), a long piano piece's
# in tens of ms, and numpy's passes over (frames x pitches) arrays were most of that.
@numba.njit(cache=True, nogil=True)
def _activity(first, last, col, u, n, fade):
    """(n, u) float64: how much of each used pitch sounds in each frame: 1 from a note's first frame to
    its last (exclusive; notes of one pitch add up), then ``fade`` over the frames after its end."""
    held = np.zeros((n + 1, u), np.int64)
    for i in range(len(first)):
        held[first[i], col[i]] += 1
        held[last[i], col[i]] -= 1
    faded = np.zeros((n, u))
    for i in range(len(last)):  # (note by note, step by step: the order numpy's bincount added them in)
        for f in range(len(fade)):
            if last[i] + f < n:
                faded[last[i] + f, col[i]] += fade[f]
    act = np.empty((n, u))
    run = np.zeros(u, np.int64)
    for j in range(n):
        for c in range(u):
            run[c] += held[j, c]
            act[j, c] = np.float64(run[c]) + faded[j, c]
    return act


@numba.njit(cache=True, nogil=True)
def _unit_rows(t):
    """float32 rows of ``t`` scaled to unit length (zero rows stay zero), as
    ``np.where(norm > 0, t / np.maximum(norm, 1e-9), 0.0)`` with ``norm = np.linalg.norm(t, axis=1)``."""
    n, b = t.shape
    out = np.zeros((n, b), np.float32)
    sq = np.empty(b, np.float32)
    floor = np.float32(1e-9)
    for j in range(n):
        for c in range(b):
            sq[c] = t[j, c] * t[j, c]
        norm = np.float32(np.sqrt(pairwise_sum(sq, 0, b)))
        if norm > 0:
            d = max(norm, floor)
            for c in range(b):
                out[j, c] = t[j, c] / d
    return out


_NO_FRAMES = np.zeros(0, np.int64)


# No fastmath: the kernel adds and multiplies in exactly the order of the numpy code it replaced
# (tests/follower/test_exact_kernels.py keeps that code), so the follower's outputs did not move
@numba.njit(cache=True, nogil=True)
def _advance(b, b_lo, lo, hi, cos, emission, kernel, crossing, gap, wait, waits, keep_share, anchor, w_belief,
             w_anchor):
    """One sounding frame of :meth:`FineAligner.step`: the belief ``b`` over score frames [b_lo, b_lo + len(b))
    advanced by ``kernel`` (the share ``crossing`` of a step over the next onset waiting at the frame before it,
    unless the frame sounds more like that onset: ``waits``), weighed by ``emission`` over the new band [lo, hi),
    normalised and mixed with ``anchor``. Returns the new belief over [lo, hi)."""
    n, nb = hi - lo, len(b)
    moved = np.zeros(n)
    moved_on = np.zeros(nb, np.bool_)
    if waits:
        # nothing waits where the frame already sounds more like the next onset's chord than like the
        # one before it: the players have moved on, and a wait would only lag
        for t in range(nb):
            i = wait[b_lo + t] - lo
            if i >= 0 and i + 1 < n:
                moved_on[t] = cos[i + 1] > cos[i]
        for t in range(nb):  # (in order, as numpy's bincount adds)
            held = b[t] * crossing[min(gap[b_lo + t], len(kernel))] * (0.0 if moved_on[t] else 1.0)
            dest = min(max(wait[b_lo + t], lo), hi - 1) - lo
            moved[dest] += held
    for d in range(len(kernel)):
        k = kernel[d]
        src_lo, src_hi = max(lo - d, b_lo), min(hi - d, b_lo + nb)
        for s in range(src_lo, src_hi):
            t = s - b_lo
            if waits:  # the steps that reach the next onset lose the share that waits
                f = keep_share if (gap[s] <= d and not moved_on[t]) else 1.0
                moved[s + d - lo] += k * (b[t] * f)
            else:
                moved[s + d - lo] += k * b[t]
    for j in range(n):
        moved[j] = moved[j] * np.float64(emission[j])
    total = pairwise_sum(moved, 0, n)
    out = np.empty(n)
    for j in range(n):
        x = moved[j] / total if total > 0 else anchor[j]
        out[j] = w_belief * x + w_anchor * anchor[j]
    return out


class FineAligner:
    """Belief over one piece's 50 ms score frames; see the module docstring.

    Only the band around the coarse position is held (``_lo`` is its first frame), so a
    frame costs the same in a one-minute chorale and a half-hour sonata.
    """

    def __init__(self, templates: np.ndarray, fps: float, config: FineConfig | None = None, onsets_s=None):
        self.config = config or FineConfig()
        self.templates = templates
        # centred emission (FineConfig.centre_emission): a centred frame's product with a template is
        # the product with the centred template (the frame's bands sum to zero), so the centred cosine
        # needs only each template's centred norm, not a second copy of the templates
        self._emit_scale = None
        if self.config.centre_emission:
            norm = np.linalg.norm(templates - templates.mean(axis=1, keepdims=True), axis=1)
            self._emit_scale = np.where(norm > 1e-9, 1.0 / np.maximum(norm, 1e-9), 0.0).astype(np.float32)
        self.fps = float(fps)
        self.n = len(templates)
        # the onsets' score frames; for each score frame, the frames to the next onset (gap) and the frame
        # just before it (wait); without onsets (or with onset_wait 0) nothing waits
        onset_frames = (np.unique(np.clip(np.floor(np.asarray(onsets_s) * self.fps).astype(np.int64), 0, self.n))
                        if onsets_s is not None and len(onsets_s) else None)
        self._gap = self._wait = None
        if onset_frames is not None and self.config.onset_wait > 0:
            starts = np.unique(np.maximum(onset_frames, 1))  # (nothing waits before the first frame)
            nxt = starts[np.minimum(np.searchsorted(starts, np.arange(self.n), side="right"), len(starts) - 1)]
            nxt = np.where(nxt > np.arange(self.n), nxt, self.n)  # after the last onset: the piece's end
            self._gap, self._wait = nxt - np.arange(self.n), nxt - 1
        # the spans the report eases through (onset to onset, the last to the piece's end), and where the
        # report is: its span's index and the score time covered at the tempo since it entered that span
        eases = onset_frames is not None and self.config.ease_time > 0
        self._onsets = np.union1d(onset_frames, [self.n]) if eases else None
        self._span, self._covered_s = -1, 0.0
        self.reported_s = 0.0
        self._half_band = int(self.config.band_s * self.fps)
        self.position_s = 0.0
        self._lo = 0
        self._belief = np.zeros(0)

    def _band(self, centre_s: float) -> tuple[int, int]:
        """Frames [lo, hi) within ``band_s`` of ``centre_s``, never empty."""
        centre = int(centre_s * self.fps)
        lo = min(max(centre - self._half_band, 0), self.n - 1)
        return lo, max(min(centre + self._half_band + 1, self.n), lo + 1)

    def _gauss(self, centre_s: float, lo: int, hi: int) -> np.ndarray:
        d = (np.arange(lo, hi) + 0.5 - centre_s * self.fps) / (self.config.anchor_sd_s * self.fps)
        g = np.exp(-0.5 * d * d)
        return g / max(g.sum(), 1e-300)

    def reset(self, position_s: float) -> None:
        """Start again around ``position_s`` (MIDI seconds of the newest frame)."""
        self._lo, hi = self._band(position_s)
        self._belief = self._gauss(position_s, self._lo, hi)
        self.position_s = self.reported_s = float(position_s)
        self._span = -1

    def match(self, frame: np.ndarray, position_s: float) -> float:
        """Best cosine of ``frame`` with the templates within ``match_window_s`` of ``position_s``.

        The same window on every side of a comparison, so two places with the same notes
        (a literal repeat) match exactly equally; 0 where the window is outside the piece.
        """
        w = int(round(self.config.match_window_s * self.fps))
        centre = int(position_s * self.fps)
        lo, hi = max(centre - w, 0), min(centre + w + 1, self.n)
        if lo >= hi:
            return 0.0
        a = frame / max(float(np.linalg.norm(frame)), 1e-9)
        return float((self.templates[lo:hi] @ a).max())

    def emission_cosines(self, frame: np.ndarray, lo: int, hi: int) -> np.ndarray:
        """Cosines of ``frame`` with the templates of score frames [lo, hi): plain, or both centred."""
        if self._emit_scale is None:
            return self.templates[lo:hi] @ (frame / max(float(np.linalg.norm(frame)), 1e-9))
        a = frame - frame.mean()
        return (self.templates[lo:hi] @ (a / max(float(np.linalg.norm(a)), 1e-9))) * self._emit_scale[lo:hi]

    def step(self, frames: np.ndarray, loud: np.ndarray, coarse_s: np.ndarray, tempo: float) -> float:
        """Fold in audio frames (oldest first) with the coarse position of each; return the newest position."""
        c = self.config
        steps = np.arange(c.max_step + 1, dtype=np.float64)
        kernel = np.exp(-0.5 * ((steps - tempo) / c.step_sd_frames) ** 2)
        kernel /= kernel.sum()
        waits = self._gap is not None
        if waits:  # the share of a frame's belief whose step would reach the next onset, by frames to it
            crossing = c.onset_wait * np.append(np.cumsum(kernel[::-1])[::-1], 0.0)
        else:
            crossing = np.zeros(0)
        gap, wait = (self._gap, self._wait) if waits else (_NO_FRAMES, _NO_FRAMES)
        b, b_lo = self._belief, self._lo
        for frame, is_loud, anchor_s in zip(frames, loud, coarse_s):
            if not is_loud:  # a pause or a held note's silence: nothing moves
                continue
            lo, hi = self._band(anchor_s)
            cos = self.emission_cosines(frame, lo, hi)
            emission = np.exp(c.sharpness * (cos - cos.max()))
            b = _advance(b, b_lo, lo, hi, cos, emission, kernel, crossing, gap, wait, waits, 1.0 - c.onset_wait,
                         self._gauss(anchor_s, lo, hi), 1 - c.anchor_weight, c.anchor_weight)
            b_lo = lo
        self._belief, self._lo = b, b_lo
        peak = int(np.argmax(b))
        lo, hi = max(peak - 3, 0), min(peak + 4, len(b))
        w = b[lo:hi]
        self.position_s = float(np.dot(w, np.arange(b_lo + lo, b_lo + hi) + 0.5) / max(w.sum(), 1e-300) / self.fps)
        self.reported_s = self._ease(b_lo + peak, len(frames) * tempo / self.fps)
        return self.position_s

    def _ease(self, peak: int, advance_s: float) -> float:
        """The position to report: the aligner's own, held back where it nears the next onset sooner
        than the tempo, counted from where it entered the span before that onset, would bring it.

        The span is the belief's peak frame's: the position, a mean around the peak, straddles an
        onset while the belief waits at the frame before it."""
        c, pos = self.config, self.position_s
        if self._onsets is None:
            return pos
        span = int(np.searchsorted(self._onsets, peak, side="right")) - 1
        if span < 0 or span + 1 >= len(self._onsets):
            self._span = -1
            return pos
        start_s, gap_s = self._onsets[span] / self.fps, (self._onsets[span + 1] - self._onsets[span]) / self.fps
        free_s, rest_s, time_s = c.ease_from * gap_s, (1.0 - c.ease_from) * gap_s, c.ease_time * gap_s
        if span != self._span:  # a new span: the report starts at the position, wherever it came in
            into_s = pos - start_s
            self._span, self._covered_s = span, into_s if into_s <= free_s else (
                free_s - time_s * np.log(max(1.0 - (into_s - free_s) / max(rest_s, 1e-9), 1e-6)))
        else:
            self._covered_s += advance_s
        if self._covered_s <= free_s:
            return min(pos, start_s + self._covered_s)
        eased_s = free_s + rest_s * (1.0 - np.exp(-(self._covered_s - free_s) / time_s))
        return min(pos, start_s + eased_s)
