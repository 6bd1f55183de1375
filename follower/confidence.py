"""How likely is the piece the follower would lock now the right one? (a calibrated probability)

The lock rules of :mod:`follower.policy` each look at one view of the evidence against
a fixed threshold held for a while: the verified paths' margin, the accumulated votes'
ratio, the re-ranking's score and margin. Each waits until its own view alone is
sure. The views are correlated but not the same, and a lead that is modest in each
of them at once is already telling. This module combines them into one number: a
logistic model of "the re-ranking's leader is the piece being played", from features
the engine has every update anyway (so the cost does not grow with the corpus):

* the re-ranking leader's alignment score and its margin over the runner-up (z-s);
* the verified path z-score of that piece and its margin over every other piece's path
  (negative when another piece's path leads);
* the accumulated votes: log of the leader's ratio over the runner-up, signed + when the
  vote leader is our piece, - when it is another;
* the seconds of audio that voted (evidence needs time; a lead after 1 s means less);
* whether all three views (re-ranking, paths, votes) name the same piece: the sign of
  the margins above, as one 0/1 feature, because agreement of independent views is
  what a linear sum of their margins weighs too little;
* the re-ranking margin as a share of the leader's score (a 1 z-s lead means more at
  3 z-s than at 30);
* how well the music heard matches anything in the index at all (the mean best cosine of
  the last 2 s): every view above is relative, so music outside the index that resembles
  one piece more than the others looks like that piece to them, but not to this one.

A fit made before a feature existed has fewer weights; the features beyond them weigh
nothing (``zip`` stops at the shorter), so the earlier fits below read as they were fitted.

The coefficients are fitted offline (``python -m studies.lock_calibration``) on renders
of validation-split pieces only, never on the benchmark's items; the frozen
:class:`Calibration` below records the fit the engine ships with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

FEATURES = ("rerank_zs", "rerank_margin_zs", "path_z", "path_margin", "votes_log_ratio", "heard_s",
            "all_agree", "rerank_margin_share", "match_cos")

_MAX_LOG_RATIO = math.log(10.0)  # a runner-up with (almost) no votes: ratio inf, capped


def features(scores, evidence) -> tuple[int | None, tuple[float, ...]]:
    """(the piece a calibrated lock would take, its feature vector in ``FEATURES`` order).

    ``scores`` is a :class:`follower.policy.Scores`, ``evidence`` the (leader, ratio,
    heard_s) of the accumulated votes. The piece is the re-ranking's leader (the piece
    everything heard names), or the verified paths' leader where nothing is re-ranked
    yet; None before anything was heard.
    """
    reranked = scores.reranked
    if reranked:
        piece = reranked[0][0]
        lead_zs = float(reranked[0][1])
        margin_zs = lead_zs - (float(reranked[1][1]) if len(reranked) > 1 else 0.0)
    elif scores.ranked:
        piece, lead_zs, margin_zs = scores.ranked[0], 0.0, 0.0
    else:
        return None, (0.0,) * len(FEATURES)
    support = scores.support
    path = float(support.get(piece, 0.0))
    others = max((float(support[p]) for p in scores.ranked if not scores.same(p, piece)), default=0.0)
    leader, ratio, heard_s = evidence
    log_ratio = min(math.log(ratio), _MAX_LOG_RATIO) if ratio and ratio > 0 else 0.0
    if leader is None:
        signed = 0.0
    else:
        signed = log_ratio if scores.same(leader, piece) else -log_ratio
    agree = 1.0 if path - others > 0 and signed > 0 else 0.0
    return piece, (lead_zs, margin_zs, path, path - others, signed, float(heard_s), agree,
                   margin_zs / max(lead_zs, 1.0), float(scores.match_cos or 0.0))


@dataclass(frozen=True)
class Calibration:
    """Logistic model P(right piece) = 1 / (1 + exp(-(bias + sum(w_i * x_i)))) over ``FEATURES``.

    Fitted by ``python -m studies.lock_calibration`` on renders of validation-split
    chorales with the engine's lock rules held off, so every update of an item's first
    seconds is a sample; :data:`FITTED` is the shipped fit.
    """

    bias: float = 0.0
    weights: tuple[float, ...] = (0.0,) * len(FEATURES)

    def probability(self, x: Sequence[float]) -> float:
        a = self.bias + sum(w * float(v) for w, v in zip(self.weights, x))
        if a >= 0:
            return 1.0 / (1.0 + math.exp(-a))
        e = math.exp(a)
        return e / (1.0 + e)


# The fit for the re-ranking of embeddings alone (2026-12-02, bundle c0755936b499; the engine's
# default until the note templates came on): `python -m studies.lock_calibration --material
# TUNING,TUNING_S8,TUNING_S11 --corpus chorales --index exported/default/chorales.index.npz --template-weight 0`,
# i.e. 36 renders of the 12 validation-split chorales long enough for an excerpt (seeds 7, 8 and 11 of
# `python -m benchmarks.material --set tuning`), every update of their first 12 s (8,208 samples,
# each item weighing the same), with P >= 0.97 for 0.25 s (one step safer than the lowest threshold
# that never locked a wrong piece held out by piece); see docs/improvements.md, (l).
# :func:`follower.engine.templates_off` pairs it with the engine it was fitted on.
FITTED_EMBEDDINGS = Calibration(bias=-4.8768, weights=(0.083911, 0.1062, 0.86844, 0.84878, 1.786, 0.25545, 1.1121,
                                                       4.2807))

# The fit for the re-ranking with note templates (EngineConfig.rerank_template_weight 0.5) and the bundle's
# full-window audio encoder alone (2026-12-02, bundle c0755936b499; shipped until 2026-12-03): `python -m
# studies.lock_calibration --material TUNING,TUNING_S8,TUNING_S11P --index exported/default/chorales.index.npz
# --piano-index PIANO_HOP8_INDEX --traces T.json`: the same 36 chorale renders and the 8 piano excerpts of
# seed 11 (`--seed 11 --piano 8`), 10,016 samples, each item weighing the same. Held out by piece, it locked
# no wrong piece at EngineConfig's P >= 0.97 for 0.25 s, and it backs the re-rank rule (`rerank_min_p` 0.9,
# one step safer than 0.85, the lowest that locked no wrong piece; 0.8 locked a piano excerpt wrong); see
# docs/improvements.md, (n).
FITTED_FULL_WINDOWS = Calibration(bias=-3.7943, weights=(0.05871, 0.1107, 0.72354, -0.07214, 1.58591, 0.22626,
                                                         0.66432, 7.43261))

# The fit shipped with bundle f30c74d265c7 (2026-12-03: the encoders of bundle v2 plus
# audio_encoder.partial.onnx for the windows of the music starting) was made on the material below with
# that bundle: bias -1.7276, weights (0.05495, 0.10181, 0.5497, -0.13548, 1.06738, -0.0484, 0.26547,
# 9.15709); docs/improvements.md, (w).
#
# The fit shipped with bundle v3 (2026-12-04, 4db2c284d3e1: the encoders fine-tuned on dataset v2, its own
# partial encoder), made with the FITTED command below on the same material with that bundle, before the
# feature ``match_cos`` existed: bias -1.87466, weights (0.057468, 0.056932, 0.90874, 0.0395, 0.57555,
# 0.18428, 0.72638, 7.05559); its open-programme fit (docs/improvements.md (hh)): bias -7.51429, weights
# (0.083868, 0.096993, 0.63643, 0.031913, 0.37748, -0.26132, 0.47315, 7.17209, 7.41867).
#
# The shipped fit (2026-12-04, bundle v4, c15c3556ccb8: wider encoders trained on dataset v2, its own
# partial encoder): `python -m studies.lock_calibration --bundle exported/default --material TUNING,
# TUNING_S8,TUNING_S12,TUNING_S11P,TUNING_S13P,START_S8,START_S12 --index exported/default/chorales.index.npz
# --piano-index PIANO_HOP8_INDEX --traces T.json`: 60 mid-piece chorale renders (seeds 7, 8, 12, 11, 13), 24
# that begin at the piece's first note (`--seed 8 --from-start`, `--seed 12 --from-start`) and the 16 piano
# excerpts of seeds 11 and 13, 22,736 samples, each item weighing the same. Held out by piece it locks no
# wrong piece with EngineConfig's rules (P >= 0.97 for 0.25 s, the re-rank rule at `rerank_min_p` 0.9;
# P >= 0.9 for 0 s locked two wrong): first lock median 2.40 s, p90 3.00 s (bundle v3's fit, with the
# engine of its day: 2.90 / 3.60 s); see docs/results.md, "Bundle v4".
FITTED = Calibration(bias=-0.05351, weights=(0.040618, 0.027978, 0.87277, 0.097766, 0.38382, 0.17359, 0.43655,
                                             6.1095, -1.9156))

# The fit for a programme that may hold music outside the index (`follower listen/replay
# --open-programme`; 2026-12-04, bundle v4): the material of FITTED plus 24 Nottingham tunes of the
# validation split that the chorale index does not hold (`python -m benchmarks.material --set tuning
# --seed 8 --outside 24`), replayed against the chorale index, every update of theirs a wrong piece;
# `python -m studies.lock_calibration ... --outside-weight 0.1` (the FITTED command with that
# material added), each tune weighing a tenth of a corpus piece, with the feature ``match_cos`` (how
# well the audio matches the index at all; the weight and the feature were chosen with bundle v3,
# docs/improvements.md (hh)). Held out by piece: no wrong lock on the corpus; the path and vote rules,
# which the calibration does not gate unless EngineConfig.rules_min_p asks, lock 16 of the 24 tunes at
# some time; follower.engine.open_programme gates them at P >= 0.9 (docs/results.md, "Bundle v4").
FITTED_OPEN = Calibration(bias=-5.91209, weights=(0.049565, 0.052168, 0.56886, 0.36932, 0.23919, -0.22495, 0.53588,
                                                  6.3357, 5.8457))
