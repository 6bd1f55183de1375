"""The follower's engine: audio blocks in, piece / position / tempo / state out.

Per update (every ``stride_frames`` spectrogram frames, 50 ms each):

1. the newest ``audio_frames`` (42) frames of the streaming spectrogram are embedded
   by the bundle's audio encoder (onnxruntime);
2. the cosine top-k of the index is found by the exact numba kernel (:mod:`follower.knn`),
   or, for an index that carries one (large corpora), by its faiss structure (:mod:`follower.ann`);
3. the neighbours vote, with their clipped similarities as one unit of mass between
   them, for (piece, offset) cells (``offset_bin_s`` wide, decaying with
   ``vote_decay_s``) and for their pieces in the slowly decaying accumulated piece
   votes (``evidence_decay_s``); see :mod:`follower.votes`;
4. **verification**: the best cells (and the best paths of the previous update) are
   checked along their paths over the last ``verify_window_s`` of queries, at a few
   tempi (:mod:`follower.verify`), giving each piece a z-score; the confidence is
   the margin of the best piece over the runner-up, scaled so that 0.5 is the margin
   needed to lock (``lock_margin``), 1.0 twice that;
5. **re-ranking**: the best pieces of steps 3-4 are candidates of an online local
   alignment of everything heard since the music began (:mod:`follower.rerank`):
   evidence accumulates over the whole performance instead of expiring with the
   verification window, at a cost bounded by the candidates, not the corpus;
6. the lock policy (:mod:`follower.policy`) turns the verified paths, the
   accumulated votes and the re-ranking into one action: lock a piece (at its path's position and tempo;
   the votes may name the piece, never the position), switch to another, go lost,
   come back, move the tracker after a jump or a repeat, or search again. States:
   ``searching``, ``following``, ``lost``; the engine applies the action;
7. once a piece is locked, :class:`follower.tracker.PieceTracker` follows the
   position continuously (an HMM over that piece's snippets) and estimates the tempo;
8. **fine position**: where the index carries the pieces' notes, a frame-level aligner
   (:mod:`follower.aligner`) follows the newest 50 ms frame through the locked piece's
   note templates, anchored to the tracker's position; it is reported while the two
   agree within ``fine.max_disagree_s``; beyond that the aligner keeps its place until the
   templates near the tracker's position match the audio better for long enough (a literal
   repeat never does, :mod:`follower.repeat_hold`; the frames heard before the dispute opened count
   at once), then the tracker's position is reported.

Windows with too few sounding frames (``min_sound_fraction``), or that end in silence,
are not embedded: they neither vote nor move the tracker. A sounding frame is loud
enough (``silence_level``) *and* not noise (``noise_flatness``, :mod:`follower.noise`):
applause, room tone and hiss between pieces count as silence, so they neither vote
nor feed the re-ranker, and a piece that ended is let go by the pause rule instead of
giving way to whichever piece the noise resembles. While searching, a silence longer
than ``pause_hold_s`` forgets the accumulated votes and the re-ranking: the music
after it is new music, and what came before (an unknown tune, say) must not name it. Literal repeats (the two
Stollen of a chorale) are ambiguous until the music differs: the follower may take
the other occurrence first and move over then. Once it follows one occurrence, a move of
the tracker to the other does not move the reported position (the fine aligner holds,
:mod:`follower.repeat_hold`).

Latency compensation. The window's centre lags the newest sample by 21 frames
(1.05 s): the snippet matched to the window describes the music of one second ago.
The reported position is that of the *newest audio*: the centre's position plus
``tempo`` times the sounding audio heard since the centre (so the extrapolation
stops when the player stops), clamped to the piece's length. The fine aligner needs
no extrapolation over the window: it aligns the newest frame itself, whose centre
lags the newest sample by half a frame (46 ms).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np

from .ann import make_search, searches_exactly
from . import ahead, policy
from .aligner import FineAligner, FineConfig, score_templates
from .jump_watch import JumpWatch
from .other_places import OtherPlaces
from .repeat_hold import RepeatHold
from .same_notes import copies_before
from .start_prior import StartPrior
from .confidence import FITTED, FITTED_EMBEDDINGS, FITTED_FULL_WINDOWS, Calibration
from .features import StreamingSpectrogram
from .noise import silent_lead, sounding
from .policy import FOLLOWING, LOST, SEARCHING, LockPolicy, Scores
from .recent import recently_used
from .rerank import Reranker
from .tracker import PieceTracker, TrackerConfig
from .tuning import TuningConfig, TuningTracker
from .verify import PathVerifier
from .votes import Evidence, OffsetVotes, PieceEvidence

__all__ = ["Engine", "EngineConfig", "Update", "templates_off", "SEARCHING", "FOLLOWING", "LOST"]

# A tracker and a fine aligner (its score templates) are kept for this many recently locked pieces, so
# that going back and forth between a few pieces does not rebuild them; keeping all would grow the process
# by every piece it ever locked (0.22 MB each, traced, for the chorales; an hour's soak whose music outside
# the corpus was "followed" as 17 new pieces after its warm-up grew 6.3 MB).
PIECES_KEPT = 8

# How well the music heard matches anything in the index at all: the mean best cosine of the sounding
# updates of the last this many seconds (Scores.match_cos). Every other view of the lock is relative
# (one candidate against the others); music outside the index scores low here (bundle v3: about 0.68
# for folk tunes against the chorale index, 0.87-0.90 for the real Bach10 recordings; docs/improvements.md (hh)).
MATCH_WINDOW_S = 2.0

# The jump watch's second view (Engine._tail_place): the snippets within TAIL_NEAR_S of the aligner's place
# (a snippet every 0.2-0.4 s, and the tempo uncertain by a few per cent over the half window taken forward)
# are its own
TAIL_NEAR_S = 1.0


@dataclass(frozen=True)
class EngineConfig:
    stride_frames: int = 1            # an update every frame (50 ms); 2 halves the work
    k: int = 25                       # neighbours per query
    vote_decay_s: float = 3.0
    offset_bin_s: float = 1.0
    hypotheses: int = 16              # best vote cells verified along their paths per update
    verify_window_s: float = 4.0      # audio the verification walks back over
    lock_score: float = 1.0           # z-score the best path must reach (a random path scores 0)
    lock_margin: float = 0.5          # ... above the best path of any other piece
    lock_s: float = 1.0               # ... for this long
    lost_margin: float = 0.1          # below this (while following) for lost_s -> lost
    lost_s: float = 3.0
    # ... unless the re-ranking still holds our piece (follower.policy: it leads, its alignment score
    # grew over the last lost_s, our path led all others within lost_timeout_s). In a large library
    # some distractor's few-second path beats ours on real recordings for seconds at a time while the
    # player plays on; False: the margin alone decides, as before 2026-12-03
    lost_rerank_hold: bool = True
    min_history_s: float = 2.0        # no lock on less audio than this (plus the 2.1 s window)
    switch_margin: float = 0.6        # another piece beats ours by this for switch_s -> switch
    switch_s: float = 2.0
    # the rival must also lead every third piece by this (0: not asked): once a piece has ended, its own
    # paths score near 0 and any chance path would otherwise beat it; a piece being played leads the rest
    switch_rival_margin: float = 0.5  # = lock_margin; chosen on validation renders (studies.outside_follow)
    relock_s: float = 1.0             # a path elsewhere in our piece beats the tracker's this long -> jump
    relock_distance_s: float = 3.0
    lost_timeout_s: float = 10.0
    silence_level: float = 0.05       # a frame whose loudest band (log1p) is below this is silent
    min_sound_fraction: float = 0.3   # windows with fewer sounding frames do not vote
    # a window whose first this-many seconds are silent (the music starting, or starting again after a
    # pause) is embedded, those frames set to 0, by the bundle's encoder for such windows where it has
    # one (training partial-audio); the full-window encoder finds little in them (docs/improvements.md (w))
    partial_min_silent_s: float = 0.25
    # weight of that encoder's embedding in the query of such a window, beside the full-window
    # encoder's (both in the one embedding space, so the normalised blend ranks the snippets by the
    # weighted mean of the two cosines); 1: that encoder alone
    partial_blend: float = 1.0
    # a loud frame whose detrended spectral flatness (follower.noise) reaches this is noise (applause,
    # room tone), not music: chosen on noise and the validation renders; >= 1 turns the test off
    noise_flatness: float = 0.85
    pause_hold_s: float = 4.0         # silence longer than this while following -> lost
    # accumulated order-free piece votes (follower.votes, follower.policy); evidence_ratio = inf turns the rule off
    evidence_decay_s: float = 30.0    # decay time constant of the piece vote totals, in s of voting audio
    evidence_min_s: float = 8.0       # sounding audio (s) that must have voted before the votes may lock
    evidence_ratio: float = 1.5       # leader's accumulated votes / the runner-up's needed to lock on it
    # ... unless the re-ranking (note templates over everything heard) ranks that piece this far (z-s)
    # below its own leader, or not at all: the votes are order-free and a wrong piece can gather them
    # while the re-ranking already names the right one (a validation piano excerpt followed a wrong
    # piece 7.15 s); inf: the votes never ask (docs/improvements.md (u))
    evidence_rerank_margin_zs: float = 0.5
    # re-ranking of candidate pieces by aligning everything heard (follower.rerank, follower.policy);
    # thresholds chosen on renders of validation-split chorales, never on the benchmark items
    rerank_candidates: int = 8        # pieces aligned at once; 0 turns the re-ranker off
    # verified-path leaders offered to the re-ranking each update (at most 2 new ones join per update;
    # 0: rerank_candidates // 2, the setting before 2026-12-02, night). The played piece often sits among
    # the verified paths' 5th-13th for a second before it reaches their top 4, and its note templates
    # name it as soon as it is a candidate (docs/improvements.md (t))
    rerank_offered: int = 8
    rerank_offset_z: float = 1.0      # subtracted from each step's z-score: random alignments drift down
    rerank_history_s: float = 30.0    # voting audio a newly considered piece is aligned over
    # the leader's alignment score needed to lock (z-seconds) ... 8 until 2026-12-04: with bundle v3 and
    # the recheck below, 6 names 116 of 152 validation renders sooner (none later) and adds no wrong
    # follow over 1 s (one render is followed wrong for 1.0 s before the recheck; docs/improvements.md (ii))
    rerank_min_zs: float = 6.0
    rerank_margin_zs: float = 0.5     # ... above the runner-up's; inf turns the rule off
    # ... held this long: 0 since the rule asks the calibrated P (rerank_min_p), which already
    # stands for a lasting lead; the 0.25 s hold cost 0.3 s on every validation set and kept no
    # wrong lock away (docs/improvements.md (t))
    rerank_lock_s: float = 0.0
    # ... and the calibrated P of that leader reaches this (0: not asked). With the note templates
    # the fused scores reach rerank_min_zs sooner, on piano also for wrong pieces (5 of 8 validation
    # excerpts locked wrong by this rule alone); chosen on validation renders (docs/improvements.md (n))
    rerank_min_p: float = 0.9
    # ... and the path and votes rules the same, where > 0: the calibrated P must name their piece at this
    # level (0: not asked, as shipped; --open-programme asks it, docs/improvements.md (hh))
    rules_min_p: float = 0.0
    # note-template evidence in the re-ranking (follower.note_evidence): score = embedding alignment +
    # weight * template alignment; 0 = off. It changes the scores the calibrated lock reads: the
    # calibration is fitted with it on (follower.confidence.FITTED); templates_off() below gives
    # the engine without it, with the calibration fitted for that (docs/improvements.md (n))
    rerank_template_weight: float = 0.5
    rerank_template_offset_z: float = 1.0
    # calibrated lock (follower.confidence, follower.policy): P(the re-ranking's leader is right) from
    # all views at once; fitted and thresholded on validation-split renders (studies.lock_calibration)
    calibration: Calibration | None = FITTED  # None turns the rule off
    calibrated_p: float = 0.97        # P needed to lock ...
    calibrated_s: float = 0.25        # ... held this long, the same leader
    calibrated_recheck_s: float = 10.0  # after a lock, for this long, the rule may switch to another piece
    # also after a switch (True); False: only after a lock from searching, because the re-ranking still
    # remembers the piece just left and would switch back to it (ping-pong at a change of piece)
    recheck_after_switch: bool = False
    # the recheck also takes the re-rank rule's evidence (its leader at rerank_min_zs and rerank_margin_zs,
    # backed by the calibrated P at rerank_min_p): what would have locked the other piece undoes a wrong
    # lock as soon, not only P >= calibrated_p (docs/improvements.md (ii))
    recheck_rerank: bool = True
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    # top-k search: "auto" = the index's approximate structure where it has one (follower.ann), else exact
    search: str = "auto"
    fine: FineConfig | None = field(default_factory=FineConfig)  # None: the tracker's position alone
    # music tuned away from A4 = 440 Hz heard as if it were at 440 (follower.tuning); None: always at 440
    tuning: TuningConfig | None = field(default_factory=TuningConfig)


def for_bundle(config: EngineConfig, has_partial_encoder: bool) -> EngineConfig:
    """``config`` as the engine runs it with a bundle that has (or lacks) an encoder for windows that
    are still filling: the shipped calibration reads the evidence of such a bundle; without one the
    first seconds look as they did when the earlier fit was made (follower.confidence)."""
    if config.calibration == FITTED and not has_partial_encoder:
        return replace(config, calibration=FITTED_FULL_WINDOWS)
    return config


def open_programme(config: EngineConfig | None = None) -> EngineConfig:
    """``config`` (default: the shipped one) for a programme that may hold music outside the index
    (``--open-programme``): the lock calibrated on such music too, and the path and votes rules backed by
    its P as the re-rank rule is (docs/improvements.md (hh))."""
    from .confidence import FITTED_OPEN

    config = config or EngineConfig()
    return replace(config, calibration=FITTED_OPEN, rules_min_p=config.rerank_min_p)


def templates_off(config: EngineConfig | None = None) -> EngineConfig:
    """``config`` (default: the shipped one) without the note templates in the re-ranking; where it
    has the shipped calibration, with the lock rules as fitted for the embeddings alone (the engine
    as it shipped before they came on). A calibration of its own (or none) is left as it is."""
    config = config or EngineConfig()
    if config.calibration != FITTED:
        return replace(config, rerank_template_weight=0.0)
    # the re-rank rule is then not backed by P: it holds its lead 0.25 s at 8 z-s, offered the top 4, as it shipped
    return replace(config, rerank_template_weight=0.0, calibration=FITTED_EMBEDDINGS, rerank_min_p=0.0,
                   rerank_lock_s=0.25, rerank_offered=4, rerank_min_zs=8.0)


@dataclass
class Update:
    """One engine update; the field names are those of the JSON lines log."""

    t: float                      # seconds of audio consumed
    piece: str | None
    title: str | None
    position_s: float | None      # MIDI timeline position of the newest audio
    position_beats: float | None
    tempo: float | None           # ratio to the MIDI's written tempo
    bpm: float | None
    confidence: float
    state: str
    latency_ms: float
    candidates: list              # [(piece_id, support)] best first, up to five
    reranked: list = field(default_factory=list)  # [(piece_id, alignment score z-s)] best first, up to five
    piece_changed: bool = False
    state_changed: bool = False
    # while following: the other places of the piece that play the notes heard since the follower last
    # placed itself (music written out twice; follower.other_places), MIDI s and beats, earliest first
    also_at_s: list = field(default_factory=list)
    also_at_beats: list = field(default_factory=list)
    # set by the runner (follower.runner) for live or real-time audio: how long ago the newest audio
    # this update covers arrived when it went out (None: not real time), and the updates skipped so
    # far to keep up with the audio
    lag_ms: float | None = None
    skipped: int = 0


class Engine:
    """Feed audio with :meth:`push`; get :class:`Update` objects back."""

    def __init__(self, bundle, index, *, input_rate_hz: float, config: EngineConfig | None = None,
                 speed: int = 1):
        """``speed`` > 1: the engine hears the audio that many times faster, each run of ``speed``
        spectrogram frames averaged into one (follower.two_speeds): a player at 0.4x of the written
        tempo then sounds at 0.8x, within what the encoders and the decoder's tempo range know.
        Its updates come every ``speed`` frames of audio, stamped and with tempo in real time."""
        from . import knn

        self.config = for_bundle(config or EngineConfig(), bundle.audio_partial is not None)
        self.bundle = bundle
        self.index = index
        fc, sc = bundle.config.features, bundle.config.snippets
        self.fps = fc.frame_rate_hz
        if int(speed) != speed or speed < 1:
            raise ValueError(f"speed={speed!r}: a whole number of frames averaged into one, >= 1")
        self.speed = int(speed)
        if self.speed > 1:  # a pause is silence in real seconds, whatever the clock the engine hears the music on
            self.config = replace(self.config, pause_hold_s=self.config.pause_hold_s / self.speed)
        self.width = sc.audio_frames
        self.n_bins = fc.n_bins
        self._partial_min_frames = max(1, round(self.config.partial_min_silent_s * self.fps))
        self.lag_s = (self.width - self.width // 2) / self.fps  # window centre -> newest sample
        self.update_s = self.config.stride_frames / self.fps
        tuning = self.config.tuning
        self._spec = StreamingSpectrogram(fc, input_rate_hz=input_rate_hz, tuning=None if tuning is None else
                                          TuningTracker(fc.sample_rate_hz, fc.frame_size_samples, fc.frame_rate_hz,
                                                        tuning))
        self._search = index.search_matrix
        self._exact = None  # whether audio embeddings may be computed ahead in batches (follower.ahead)
        self._knn = knn
        self._topk = make_search(index, self._search, self.config.search)
        # the exact kernel answers the queries computed ahead together, with the same bits (follower.knn;
        # checked once, at the first long block); faiss is not asked so: its batched search may order a
        # query's coarse lists otherwise
        self._many = None if searches_exactly(index, self.config.search) else False
        horizon = int(np.ceil(4 * self.config.vote_decay_s / self.update_s))
        self._votes = OffsetVotes(self.config.k, horizon, bin_s=self.config.offset_bin_s)
        self._verifier = PathVerifier(index, self._search, update_s=self.update_s,
                                      window_s=self.config.verify_window_s)
        self._trackers: dict = {}  # piece -> PieceTracker, least recently locked first
        self._aligners: dict = {}  # piece -> FineAligner, likewise
        self._fine_on = self.config.fine is not None and index.has_notes
        fine = self.config.fine
        self._hold = RepeatHold(margin=fine.hold_margin, evidence=fine.hold_evidence, leak_s=fine.hold_leak_s,
                                fps=self.fps) if fine is not None else None
        # (the same rule, to ask whether the frames heard prove the aligner's place against a settling move)
        self._settle_hold = RepeatHold(margin=fine.hold_margin, evidence=fine.hold_evidence, leak_s=fine.hold_leak_s,
                                       fps=self.fps) if fine is not None else None
        self._start = StartPrior(start_prior_s=fine.start_prior_s, pause_s=self.config.pause_hold_s, fps=self.fps,
                                 margin=fine.hold_margin, evidence=fine.hold_evidence,
                                 leak_s=fine.hold_leak_s) if self._fine_on else None
        # the other places of the followed piece that play what was heard (follower.other_places)
        self._others = OtherPlaces(window_s=self.width * self.speed / self.fps)
        self._noise_flatness = self.config.noise_flatness  # the MIDI engine's roll frames are never noise
        # frames kept: the audio window, or more where the settling check weighs further back
        self._kept = max(self.width, int(round(fine.settle_backfill_s * self.fps)) + self.config.stride_frames
                         if fine is not None else 0)
        self._frame_lag_s = fc.frame_size_samples / 2 / fc.sample_rate_hz
        self._evidence = PieceEvidence(index.n_pieces, self.config.evidence_decay_s)
        self._policy = LockPolicy(self.config)
        self._reranker = None
        if self.config.rerank_candidates > 0:
            self._reranker = Reranker(index, self._search, self._verifier.standardise, update_s=self.update_s,
                                      candidates=self.config.rerank_candidates,
                                      offset_z=self.config.rerank_offset_z, history_s=self.config.rerank_history_s,
                                      templates=self._note_templates(), template_weight=self.config.rerank_template_weight,
                                      template_offset_z=self.config.rerank_template_offset_z)
        # the re-ranking's template scorer builds the leader's 50 ms templates ahead, at the fine aligner's
        # settings, on its template thread, and a lock takes them where they are ready
        scorer = self._reranker._templates if self._reranker is not None else None
        self._ahead_scorer = scorer if self._fine_on and scorer is not None else None
        self.reset()

    def _note_templates(self):
        if self.config.rerank_template_weight <= 0 or not self.index.has_notes:
            return None
        from .note_evidence import TemplateScorer
        return TemplateScorer(self.index, self.bundle.config.features)

    # -- lifecycle -------------------------------------------------------------------
    def warm_up(self) -> None:
        """Compile the numba kernel and run the encoder once, before audio starts."""
        self._knn.warm_up(self._search.shape[1], self.config.k)
        self._topk(self._search[0], self.config.k)
        for loud in (True, False):  # both audio encoders, where the bundle has two
            self._embed(np.zeros((self.width, self.n_bins), np.float32), np.full(self.width, loud))
        self._batches_exact()
        if self._spec.tuning is not None:
            self._spec.tuning.warm_up()
        self._verifier.warm_up()
        self._votes.warm_up()
        if self._reranker is not None:
            self._reranker.warm_up()
        if self._fine_on:
            self._warm_up_lock()

    def _warm_up_lock(self) -> None:
        """Run the kernels that a lock brings in (the fine aligner's, the jump watch's, the look for earlier
        copies) on the first seconds of the index's first piece, so that they are compiled, or loaded from
        numba's cache, now: loading them at the first lock made that update 20-30 ms, compiling them (no
        cache yet) seconds."""
        notes, f = self.index.notes(0), self.config.fine
        if len(notes[0]):  # (ten seconds of it: a long piece's templates would cost the start-up 0.1 s)
            first = notes[0] < notes[0].min() + 10.0
            notes = tuple(np.ascontiguousarray(a[first]) for a in notes)
        aligner = FineAligner(score_templates(*notes, self.bundle.config.features, f), self.fps, f, onsets_s=notes[0])
        aligner.reset(0.0)
        frames = np.ones((2, self.n_bins), np.float32)
        aligner.step(frames, np.ones(2, bool), np.zeros(2), 1.0)
        JumpWatch.warm_up()
        end_s = float(notes[1].max()) if len(notes[1]) else 1.0
        copies_before(notes, end_s, 1.0, 1.0, earliest_s=0.0, latest_s=end_s - 0.2)

    def _searches_together(self) -> bool:
        if self._many is None:  # once per engine, and once per index and k (kept with the index)
            k = self.config.k
            self._many = self.index.kept(("many_as_one", k), lambda: self._knn.many_as_one(self._search, k))
        return self._many

    @property
    def tuning_cents(self) -> int:
        """How far from A4 = 440 Hz the front end now hears the music, in cents (follower.tuning)."""
        return 0 if self._spec.tuning is None else self._spec.tuning.applied_cents

    def _batches_exact(self) -> bool:
        if self._exact is None:  # once per engine, and once per encoder and window shape (follower.ahead)
            self._exact = all(ahead.batches_exact_once(e, self.width, self.n_bins)
                              for e in (self.bundle.audio, self.bundle.audio_partial) if e is not None)
        return self._exact

    def reset(self) -> None:
        self._spec.reset()
        # each frame is written twice, so the newest `width` frames are always one slice
        self._ring = np.zeros((2 * self._kept, self.n_bins), np.float32)
        self._loud = np.zeros(2 * self._kept, bool)
        self._pooling = np.zeros((0, self.n_bins), np.float32)  # frames waiting for a full run of `speed`
        self._n = 0
        self._ahead: dict = {}  # frame count -> audio embedding computed ahead (follower.ahead)
        self._found: dict = {}  # frame count -> its top k (rows, scores), searched ahead with them
        self._ahead_piece = None  # the piece whose 50 ms note templates were last asked for ahead
        self._votes.reset()
        self._verifier.reset()
        self._carried = None
        self._evidence.reset()
        self._policy.reset()
        if self._reranker is not None:
            self._reranker.reset()
        self._reranked = []
        self.state = SEARCHING
        self.piece = None
        self.tracker = None
        self.aligner = None
        self.watch = None
        self._fine_fresh = True
        self._fine_moved = False
        self._provisional_n = -1  # up to this frame count, the aligner's place is the jump watch's guess
        self._settle_n = -1  # up to this frame count, the coarse path settles after a far move (fine.settle_s)
        # the frame count from which the aligner's path is its own (the jump the watch moved it for), or -1:
        # the frames before it were played elsewhere and prove nothing about its place
        self._own_from_n = -1
        if self._start is not None:
            self._start.reset()
        self._others.reset()
        self._last_sound_t = None
        self._match: deque = deque()  # (t_s, best cosine in the index) of the recent sounding updates
        self._updated_n = 0          # frame count at the last update (the tracker steps by the audio since)
        self.skipped_updates = 0
        self.idle_updates = 0

    def restart(self) -> None:
        """Forget everything heard, as :meth:`reset` does, but keep the audio clock (``Update.t`` goes
        on): for input that comes back after a gap (``follower listen --reconnect``)."""
        n, skipped = self._n, self.skipped_updates
        self.reset()
        self._n = self._updated_n = n
        self.skipped_updates = skipped

    @property
    def evidence_on(self) -> bool:
        return self._policy.evidence_on

    def evidence(self) -> Evidence:
        """(leading piece, its accumulated votes / the runner-up's, seconds of audio that voted)."""
        return self._evidence.leader()

    # -- audio in --------------------------------------------------------------------
    def push(self, block, *, last: bool = False, max_updates: int | None = None, wanted=None) -> list[Update]:
        """Add an audio block (any length, mono or (n, channels)); return the updates it completes.

        ``max_updates``: compute at most this many of the updates the block completes, the
        newest ones (the others' frames still enter the window). The runner asks for this
        when it has fallen behind the audio; :attr:`skipped_updates` counts what was left out.
        ``wanted``: ``wanted(t_s)`` False leaves out the update due at ``t_s`` of audio (its frames
        still enter the window), as catching up does; :attr:`idle_updates` counts those. A second
        engine beside the first one updates only while it may be heard (follower.two_speeds).
        """
        t0 = time.perf_counter()
        return self.push_frames(self.frames_of(block, last=last), max_updates=max_updates, wanted=wanted,
                                since=t0)

    def frames_of(self, block, *, last: bool = False) -> np.ndarray:
        """The spectrogram frames an audio block completes (the engine's front end; nothing else moves)."""
        p = self.PIECE_SAMPLES
        if len(block) > p:  # the resampler's last bits depend on how the audio is cut: as paced replay cuts it
            return np.concatenate([self._spec.push(block[i:i + p], last=last and i + p >= len(block))
                                   for i in range(0, len(block), p)])
        return self._spec.push(block, last=last)

    def push_frames(self, frames: np.ndarray, *, max_updates: int | None = None, wanted=None,
                    since: float | None = None) -> list[Update]:
        """:meth:`push` from spectrogram frames (of :meth:`frames_of`, this engine's or another's with the
        same front end: follower.two_speeds feeds its slow engine the first one's). ``since``: the
        :func:`time.perf_counter` at which the frames' block arrived (their front end's time is then
        counted in the updates' ``latency_ms``)."""
        t0 = time.perf_counter() if since is None else since
        if self.speed > 1:
            frames = self._pool(frames)
        if len(frames) == 0:
            return []
        # (not when catching up: only the newest window will be needed)
        if (max_updates is None and wanted is None and len(frames) >= self.AHEAD_MIN_FRAMES
                and self._batches_exact()):
            self._ahead = ahead.embed_ahead(self.bundle.audio, *self._window(), frames, self._n, self.config,
                                            self.bundle.audio_partial, self._partial_min_frames,
                                            self.config.partial_blend)
            if self._ahead and self._searches_together():
                at = list(self._ahead)
                rows, scores = self._knn.topk_many(self._search, np.stack([self._ahead[n] for n in at]), self.config.k)
                self._found = dict(zip(at, zip(rows, scores)))
        front_ms = (time.perf_counter() - t0) * 1e3 / len(frames)
        stride = self.config.stride_frames
        due = (self._n + len(frames)) // stride - self._n // stride  # updates these frames complete
        skip = max(0, due - max_updates) if max_updates is not None else 0
        self.skipped_updates += skip
        out = []
        for frame in frames:
            self._write(frame)
            if self._n % stride == 0:
                if skip:
                    skip -= 1
                    continue
                if wanted is not None and not wanted(self._n * self.speed / self.fps):
                    self.idle_updates += 1
                    continue
                t1 = time.perf_counter()
                u = self._update()
                u.latency_ms = front_ms * self.config.stride_frames + (time.perf_counter() - t1) * 1e3
                out.append(u)
        return out

    def _pool(self, frames: np.ndarray) -> np.ndarray:
        """Each run of ``speed`` frames (with those left from the last block) averaged into one."""
        frames = np.concatenate([self._pooling, frames]) if len(self._pooling) else frames
        n = len(frames) // self.speed * self.speed
        self._pooling = frames[n:]
        return frames[:n].reshape(-1, self.speed, frames.shape[1]).mean(axis=1, dtype=np.float32)

    def _write(self, frame: np.ndarray) -> None:
        i = self._n % self._kept
        self._ring[i] = frame
        self._ring[i + self._kept] = frame
        loud = bool(sounding(frame, self.config.silence_level, self._noise_flatness))
        self._loud[i] = self._loud[i + self._kept] = loud
        self._n += 1
        if self._start is not None:
            self._start.add(frame, loud)
        if self._reranker is not None:
            self._reranker.add_frame(frame, loud)

    def _window(self):
        """The newest ``width`` frames (the audio window) and their sounding flags."""
        heard, loud = self._heard()
        return heard[-self.width:], loud[-self.width:]

    def _heard(self):
        """The newest ``_kept`` frames (the window and, for the settling check, the seconds before it)."""
        start = self._n % self._kept
        return self._ring[start:start + self._kept], self._loud[start:start + self._kept]

    # a block that completes this many frames or more (replay --fast reads long blocks) has its
    # windows embedded in batches before its updates run (follower.ahead)
    AHEAD_MIN_FRAMES = 8
    # longer blocks go to the spectrogram in pieces of the paced replay's block size
    # (follower.audio_io.FileSource), so that fast and paced replay compute the same frames
    PIECE_SAMPLES = 1024

    def _embed(self, window: np.ndarray, loud: np.ndarray) -> np.ndarray:
        q = self._ahead.pop(self._n, None) if self._ahead else None
        if q is not None:
            return q
        if self.bundle.audio_partial is not None:
            lead = silent_lead(loud)
            if lead >= self._partial_min_frames:
                quiet = window.copy()
                quiet[:lead] = 0.0
                q = self.bundle.audio_partial.embed_window(quiet)
                w = self.config.partial_blend
                return q if w >= 1.0 else ahead.blend(q, self._embed_full(window), w)
        return self._embed_full(window)

    def _embed_full(self, window: np.ndarray) -> np.ndarray:
        from .snippets import audio_input

        one = getattr(self.bundle.audio, "embed_window", None)  # the same bits, less copying (follower.bundle)
        if one is not None:
            return one(window)
        return self.bundle.audio(audio_input(window[None]))[0]

    # -- one update ------------------------------------------------------------------
    def _update(self) -> Update:
        c = self.config
        t_s = self._n / self.fps                      # audio consumed
        centre_s = t_s - self.lag_s                   # audio time of the window's centre
        window, loud = self._window()
        # counts, not mean()/sum(): the same values (whole numbers divided once), less overhead per update
        sounding = np.count_nonzero(loud) / len(loud) >= c.min_sound_fraction
        half = self.width // 2
        silent_now = not loud[-3:].any()
        centre_silent = not loud[half - 2:half + 2].any()
        ahead_s = np.count_nonzero(loud[half:]) / self.fps  # sounding audio between the centre and now
        if not silent_now:
            self._last_sound_t = t_s
        # a window that ends in silence (a pause starting) resembles the end of every piece:
        # it neither votes nor moves the tracker's belief by its similarities
        q = self._embed(window, loud) if sounding and not silent_now else None
        standard = None
        if q is not None:
            found = self._found.pop(self._n, None) if self._found else None
            rows, scores = found if found is not None else self._topk(q, c.k)
            self._match.append((t_s, float(scores.max())))
            pieces = self.index.piece[rows]
            offsets = self.index.position_s[rows] - centre_s
            w = np.maximum(scores, 0.0)
            mass = w / max(w.sum(), 1e-9)                   # one unit of mass per update
            self._votes.add(t_s, pieces, offsets, mass)
            hops = max(1, round((self._n - self._updated_n) / c.stride_frames))  # > 1 after skipped updates
            self._evidence.add(pieces, mass, hops * self.update_s)
            standard = self._verifier.standardise(q)  # once per query: the verifier, re-ranker, tracker use it
            self._verifier.add(centre_s, q, standard)
            if self._reranker is not None:
                self._reranker.add(q, hops, standard)
        hyp_piece, hyp_pos = self._hypotheses(t_s, centre_s)
        score, tempo, pos = self._verifier.score(hyp_piece, hyp_pos, centre_s)
        # the best paths carry over to the next update (advanced by their tempo), so a good
        # hypothesis is not forgotten when its votes fluctuate
        keep = np.argsort(-score, kind="stable")[: self.config.hypotheses // 2]
        self._carried = (hyp_piece[keep], pos[keep] + tempo[keep] * self.update_s)
        support, where = {}, {}
        for p, sc, r, x in zip(hyp_piece.tolist(), score.tolist(), tempo.tolist(), pos.tolist()):
            if p not in support or sc > support[p]:
                support[p], where[p] = sc, (x, r)
        tracker_score = float(score[-1]) if self.tracker is not None and len(score) else None
        ranked = sorted(support, key=support.get, reverse=True)
        evidence = self._evidence.leader()
        if self._reranker is not None:
            lead = evidence.leader
            offered = c.rerank_offered or max(1, c.rerank_candidates // 2)
            self._reranker.consider(ranked[:offered] + ([lead] if lead is not None else []),
                                    keep=self.piece)
            self._reranked = self._reranker.ranking()
            leader = self._reranked[0][0] if self._reranked else None
            if self._ahead_scorer is not None and leader not in (None, self.piece, self._ahead_piece):
                self._ahead_piece = leader  # the piece a lock would take next
                self._ahead_scorer.templates_ahead(leader, self.config.fine)
        if (self.state == SEARCHING and self._last_sound_t is not None and self._evidence.heard_s > 0
                and t_s - self._last_sound_t > c.pause_hold_s):
            # music that starts after a long silence (or applause) is new music: what was heard before
            # must not name it (the unknown tune, or the piece let go, would carry into its re-ranking)
            self._evidence.reset()
            if self._reranker is not None:
                self._reranker.reset()
                self._reranked = []
        while self._match and self._match[0][0] < t_s - MATCH_WINDOW_S:
            self._match.popleft()
        match_cos = sum(m for _, m in self._match) / len(self._match) if self._match else None
        old_state, old_piece = self.state, self.piece
        scores = Scores(state=self.state, piece=self.piece, ranked=ranked, support=support, where=where,
                        history_s=self._verifier.history_s(centre_s), last_sound_t_s=self._last_sound_t,
                        tracker_score=tracker_score,
                        tracker_position_s=self.tracker.position_s if self.tracker is not None else None,
                        reranked=tuple(self._reranked),
                        same_as=dict(self._reranker.duplicates) if self._reranker is not None else {},
                        match_cos=match_cos)
        self._apply(self._policy.step(scores, evidence, t_s))
        position = self._track(q, standard, centre_s, centre_silent)
        mine = self.piece if self.piece is not None else (ranked[0] if ranked else None)
        margin = support.get(mine, 0.0) - max((support[p] for p in ranked if p != mine), default=0.0)
        confidence = min(max(margin / (2 * c.lock_margin), 0.0), 1.0)  # 0.5 = just enough to lock
        return self._result(t_s, position, ahead_s, confidence, [(p, support[p]) for p in ranked[:5]],
                            old_state, old_piece)

    def _hypotheses(self, t_s: float, centre_s: float):
        """(piece, position of the window centre now) of the best vote cells, and the tracker's."""
        pieces, offsets = self._votes.best_cells(t_s, self.config.vote_decay_s, self.config.offset_bin_s,
                                                 self.config.hypotheses)
        positions = offsets + centre_s
        if self._carried is not None:
            pieces = np.concatenate([pieces, self._carried[0]])
            positions = np.concatenate([positions, self._carried[1]])
        if self.tracker is not None:  # last, so its score is score[-1]
            pieces = np.append(pieces, self.piece)
            positions = np.append(positions, self.tracker.position_s)
        return pieces.astype(np.int64), positions.astype(np.float64)

    def _apply(self, action) -> None:
        """Carry out the lock policy's decision (its timers are already set for it)."""
        kind = action.kind
        if kind in (policy.LOCK, policy.SWITCH):
            self._lock(action.piece, action.position_s, action.tempo)
        elif kind == policy.LOSE:
            self.state = LOST
        elif kind == policy.RESUME:
            self.state = FOLLOWING
            self._fine_fresh = True
            if action.position_s is not None:
                self.tracker.reset(action.position_s, tempo=action.tempo)
        elif kind == policy.JUMP:
            self.tracker.reset(action.position_s, tempo=action.tempo)
            self._fine_moved = True  # the fine aligner may dispute the move (follower.repeat_hold)
        elif kind == policy.SEARCH:
            self.state, self.piece, self.tracker, self.aligner, self.watch = SEARCHING, None, None, None, None
            self._evidence.reset()  # a new search starts from nothing
            if self._reranker is not None:
                self._reranker.reset()

    def _lock(self, piece: int, position_s: float, tempo: float) -> None:
        rows = self.index.rows(piece)
        self.tracker = recently_used(self._trackers, piece, keep=PIECES_KEPT, make=lambda: PieceTracker(
            self.index.position_s[rows], self.config.tracker, cell_s=self.index.cell_s))
        if self._fine_on:
            notes = self.index.notes(piece)
            self.aligner = recently_used(self._aligners, piece, keep=PIECES_KEPT, make=lambda: FineAligner(
                self._score_templates(piece), self.fps, self.config.fine, onsets_s=notes[0]))
            f = self.config.fine
            # (the aligner keeps a watched move against the coarse path by the dispute rule: none without it;
            # a lead the frames alone do not settle is settled by the newest audio's embedding, where the
            # bundle has the encoder for windows still filling: _tail_place)
            self.watch = None if f.watch_margin <= 0 or not self._hold.enabled else JumpWatch(
                self.aligner, frames=f.watch_frames, margin=f.watch_margin, far_s=f.max_disagree_s,
                updates=f.watch_updates, span_s=f.watch_span_s, confirm_margin=f.watch_confirm_margin,
                confirm=self._tail_place if f.watch_confirm_margin > 0 and self.bundle.audio_partial is not None
                else None)
            position_s = self._from_the_start(piece, position_s, tempo)
        self.tracker.reset(position_s, tempo=tempo)
        self._fine_fresh = True
        self._provisional_n = self._settle_n = self._own_from_n = -1
        self.piece = piece
        self.state = FOLLOWING

    def _score_templates(self, piece: int) -> np.ndarray:
        """The piece's 50 ms note templates for the fine aligner: those the template thread built while the
        piece led the re-ranking (``_ahead_scorer``, follower.note_evidence.BuiltCells), where they
        are ready, or built now; the same either way. Building a long piece's here held the lock's update
        up (34 ms for a piano piece of 8 minutes, 127 ms for one of 22)."""
        templates = self._ahead_scorer.templates(piece, self.config.fine) if self._ahead_scorer is not None else None
        return templates if templates is not None else score_templates(*self.index.notes(piece),
                                                                       self.bundle.config.features, self.config.fine)

    def _from_the_start(self, piece: int, centre_s: float, tempo: float) -> float:
        """A lock's window-centre position, or the piece's beginning's (or an earlier copy's of the notes
        heard) where the music started moments ago and the frames heard since do not prove the locked
        place (follower.start_prior)."""
        if self._start is None or not self._start.enabled:
            return centre_s
        notes = self.index.notes(piece)
        onsets = notes[0]
        lag_s = tempo * self._frame_lag_s  # the aligner's coordinates: the newest frame's centre
        now_s = centre_s + tempo * self.lag_s - lag_s
        start_s = self._start.place(self.aligner, now_s, float(onsets.min()) if len(onsets) else 0.0, tempo,
                                    self.config.fine.max_disagree_s,
                                    notes=notes if self.config.fine.earliest_copy else None)
        return centre_s if start_s is None else max(start_s + lag_s - tempo * self.lag_s, 0.0)

    def _track(self, q, standard, centre_s: float, centre_silent: bool):
        # the audio since the last update: update_s, or more after updates were skipped
        elapsed_s = max(self._n - self._updated_n, 1) / self.fps
        self._updated_n = self._n
        if self.tracker is None:
            return None
        if centre_silent:  # the music under the window centre paused: hold
            return self.tracker.step(None, elapsed_s, centre_s, silent=True)
        # z-scores: the tracker's sharpness then means the same for any model
        z = self._piece_z(q, standard) if q is not None else None
        return self.tracker.step(z, elapsed_s, centre_s)

    def _piece_z(self, q: np.ndarray, standard: tuple[float, float]) -> np.ndarray:
        """The z-scores of query ``q`` (``standard``: its verifier.standardise) against the locked piece's snippets."""
        scale, bias = standard
        return (self._search[self.index.rows(self.piece)] @ q) * scale - bias

    def _fine(self, coarse_s: float, tempo: float) -> float:
        """The fine aligner's position of the newest audio, or ``coarse_s`` where the coarse one has won.

        A disagreement of more than ``fine.max_disagree_s`` is a dispute (:mod:`follower.repeat_hold`):
        the aligner keeps its own place, anchored to itself, until the note templates near the coarse
        position have matched the audio better for long enough; a literal repeat never does.
        """
        fc, hold = self.config.fine, self._hold
        stride = self.config.stride_frames
        window, loud = self._window()
        lag_s = tempo * self._frame_lag_s  # the newest frame's centre is half a frame behind the newest sample
        moved = self._fine_moved or self.tracker.jumped
        self._fine_moved = False
        apart = abs(self.aligner.position_s + lag_s - coarse_s) > fc.max_disagree_s
        # the coarse path moved again while settling after a far move: its window now holds more of the music
        # since the jump than when it moved first. Followed unless the frames heard prove the aligner's place
        # (a move to where the music is not); between places that sound alike they prove neither
        settling = (apart and moved and self._n <= self._settle_n and not self._fine_fresh
                    and not self._weigh_back(*self._heard(), coarse_s - lag_s, tempo, self._settle_hold,
                                             coarse_first=False, backfill_s=fc.settle_backfill_s))
        proven = False  # the frames heard before the dispute opened may prove the coarse position already
        if (hold.enabled and apart and fc.hold_backfill_s > 0 and (moved or not hold.active) and not self._fine_fresh
                and not settling):
            proven = self._backfill(window, loud, coarse_s - lag_s, tempo)
        if apart and moved and self._n <= self._provisional_n:  # the coarse path moved off the watch's guess
            proven, self._provisional_n = True, -1
        if self._fine_fresh or proven or settling or (moved and not (hold.enabled and apart)):
            if apart and moved and not self._fine_fresh and self._n > self._settle_n and fc.settle_s > 0:
                self._settle_n = self._n + int(round(fc.settle_s * self.fps))
            self.aligner.reset(coarse_s - lag_s)
            hold.clear()
            self._fine_fresh, apart = False, False
            self._own_from_n = -1
        if hold.enabled and (hold.active or apart):  # disputed: the aligner follows its own place
            anchors = self.aligner.position_s + tempo * np.arange(1, stride + 1) / self.fps
        else:
            anchors = coarse_s - lag_s - tempo * np.arange(stride - 1, -1, -1) / self.fps
        fine_s = self.aligner.step(window[-stride:], loud[-stride:], anchors, tempo) + lag_s
        if self.watch is not None and self._jumped_to(window[-stride:], loud[-stride:], tempo):
            return self.aligner.reported_s + lag_s
        reported_s = self.aligner.reported_s + lag_s  # (eased into the next onset: FineConfig.ease_time)
        if abs(fine_s - coarse_s) <= fc.max_disagree_s:
            hold.clear()
            return reported_s
        if hold.enabled:
            back = np.arange(stride - 1, -1, -1) * tempo / self.fps
            for frame, is_loud, d in zip(window[-stride:], loud[-stride:], back):
                if not is_loud:
                    continue
                if hold.observe(self.aligner.match(frame, coarse_s - lag_s - d),
                                self.aligner.match(frame, fine_s - lag_s - d)):
                    break
            else:
                hold.active = True
                return reported_s
        self.aligner.reset(coarse_s - lag_s)
        hold.clear()
        self._own_from_n = -1
        return coarse_s

    def _jumped_to(self, frames, loud, tempo: float) -> bool:
        """Whether the newest frames show the player elsewhere in the piece (follower.jump_watch); if so,
        the aligner starts again there."""
        for k, (frame, is_loud) in enumerate(zip(frames, loud)):  # (the aligner's place of each, at the tempo)
            self.watch.listen(frame, bool(is_loud), self._n - len(frames) + 1 + k,
                              self.aligner.position_s - tempo * (len(frames) - 1 - k) / self.fps)
        to_s = self.watch.check(self.aligner.position_s, tempo, self._n)
        if to_s is None:
            return False
        self.aligner.reset(to_s)
        self._own_from_n = self.watch.since_n if self.config.fine.watch_own_frames else -1
        # the coarse path stays where it is, with its tempo, until its window has heard the move: the
        # two disagree, and the dispute rule (follower.repeat_hold) weighs the frames heard from now on,
        # not the older ones, which were played at the old place
        self._hold.open()
        # of places that sound alike (music written out twice) the watch took the nearest; until the coarse
        # path's window has heard only the music since, a move of its own to another is not disputed (the
        # dispute rule would keep the guess for good: copies never prove one another wrong)
        self._provisional_n = self._n + self.width if self.watch.tied else -1
        return True

    def _tail_place(self, own_s: float, tempo: float) -> float | None:
        """The place (score seconds of the newest frame, as the aligner's) that the newest ``fine.watch_tail_s``
        of audio, embedded alone, names in the locked piece, where it names it ``fine.watch_tail_z`` z-scores
        better than around ``own_s``; else None.

        The older frames of the window are silenced and the window embedded by the bundle's encoder for
        windows still filling, which was trained to match such a window with the full score snippet at the
        window's centre: a snippet's centre is taken forward by half a window at the tempo to its place."""
        f = self.config.fine
        window, _ = self._window()
        quiet = window.copy()
        quiet[:max(self.width - int(round(f.watch_tail_s * self.fps)), 0)] = 0.0
        q = self.bundle.audio_partial.embed_window(quiet)
        z = self._piece_z(q, self._verifier.standardise(q))
        forward_s = tempo * (self.lag_s - self._frame_lag_s)  # the window centre -> the newest frame, score s
        place = self.index.position_s[self.index.rows(self.piece)] + forward_s
        best = int(np.argmax(z))
        near = np.abs(place - own_s) <= TAIL_NEAR_S
        at_own = float(z[near].max()) if near.any() else -np.inf
        return float(place[best]) if z[best] - at_own >= f.watch_tail_z else None

    def _backfill(self, window, loud, coarse_s: float, tempo: float) -> bool:
        """A dispute opens: weigh the frames already heard (before the newest ``stride``), oldest first,
        at both places' positions extrapolated back at the tempo; True if the coarse position wins."""
        return self._weigh_back(window, loud, coarse_s, tempo, self._hold)

    def _weigh_back(self, window, loud, coarse_s: float, tempo: float, hold: RepeatHold, *,
                    coarse_first: bool = True, backfill_s: float | None = None) -> bool:
        """:meth:`_backfill` into ``hold`` (cleared, then active); with ``coarse_first`` False, True if the
        aligner's position wins instead (by the same rule, the two places' roles swapped). ``backfill_s``:
        how far back (``fine.hold_backfill_s`` unless given; ``window`` must hold that much). After a move of
        the jump watch, no further back than the jump it found."""
        stride = self.config.stride_frames
        hold.clear()
        hold.active = True
        backfill_s = self.config.fine.hold_backfill_s if backfill_s is None else backfill_s
        n = min(int(round(backfill_s * self.fps)), len(window) - stride)
        if self._own_from_n >= 0:  # (window[i] is the engine's frame count n - len(window) + 1 + i)
            n = min(n, self._n - stride + 1 - self._own_from_n)
        fine_s = self.aligner.position_s  # that of the frame before the newest block
        for k in range(n, 0, -1):  # k frames before the newest block's first frame
            i = len(window) - stride - k
            if not loud[i]:
                continue
            coarse_back, fine_back = (k + stride - 1) * tempo / self.fps, (k - 1) * tempo / self.fps
            at_coarse = self.aligner.match(window[i], coarse_s - coarse_back)
            at_fine = self.aligner.match(window[i], fine_s - fine_back)
            if hold.observe(at_coarse, at_fine) if coarse_first else hold.observe(at_fine, at_coarse):
                return True
        return False

    def _result(self, t_s, centre_pos_s, ahead_s, confidence, candidates, old_state, old_piece) -> Update:
        ids = self.index.piece_ids
        cands = [(str(ids[p]), round(float(s), 4)) for p, s in candidates]
        reranked = [(str(ids[p]), round(s, 3)) for p, s, _, _ in self._reranked[:5]]
        t_s *= self.speed  # (the audio's own clock; the engine's runs `speed` times faster)
        if self.piece is None or centre_pos_s is None:
            self._others.reset()
            return Update(t=t_s, piece=None, title=None, position_s=None, position_beats=None, tempo=None,
                          bpm=None, confidence=float(confidence), state=self.state, latency_ms=0.0,
                          candidates=cands, reranked=reranked, piece_changed=old_piece is not None,
                          state_changed=old_state != self.state)
        rows = self.index.rows(self.piece)
        tempo = float(self.tracker.tempo)
        duration = float(self.index.duration_s[self.piece])
        # extrapolate from the window centre over the audio heard since (none during a pause)
        lead = 0.0 if self.state == LOST else tempo * ahead_s
        position_s = float(min(max(centre_pos_s + lead, 0.0), duration))
        if self.aligner is not None and self.state == FOLLOWING:
            position_s = float(min(max(self._fine(position_s, tempo), 0.0), duration))
        pos, beats = self.index.position_s[rows], self.index.position_beats[rows]
        position_beats = float(np.interp(position_s, pos, beats))
        j = min(max(int(np.searchsorted(pos, position_s)), 1), len(pos) - 1) if len(pos) > 1 else 0
        written_bpm = (60.0 * (beats[j] - beats[j - 1]) / (pos[j] - pos[j - 1])) if len(pos) > 1 else 120.0
        tempo /= self.speed
        following = self.state == FOLLOWING
        also_at = self._others.places(t_s, self.piece if following else None,
                                      self.index.notes(self.piece) if following else None, position_s, tempo)
        return Update(t=t_s, piece=str(ids[self.piece]), title=str(self.index.titles[self.piece]),
                      position_s=position_s, position_beats=position_beats, tempo=tempo,
                      bpm=float(tempo * written_bpm), confidence=float(confidence), state=self.state,
                      latency_ms=0.0, candidates=cands, reranked=reranked, piece_changed=old_piece != self.piece,
                      state_changed=old_state != self.state, also_at_s=also_at,
                      also_at_beats=[float(b) for b in np.interp(also_at, pos, beats)] if also_at else [])

