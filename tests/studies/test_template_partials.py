"""studies.template_partials: how often a frame's own note template beats those 0.5-3 s from it."""

import numpy as np

from follower import aligner
from follower.aligner import FineConfig, pitch_templates
from follower.features import FeatureConfig
from follower.midi import NOTE_DTYPE
from studies.template_partials import margins, parse_variant, templates

FC = FeatureConfig()


def _notes(chords, length_s=0.5):
    rows = [(i * length_s, (i + 1) * length_s, p) for i, chord in enumerate(chords) for p in chord]
    notes = np.zeros(len(rows), NOTE_DTYPE)
    notes["start_s"], notes["end_s"], notes["pitch"] = zip(*rows)
    return notes


def test_variants_read_as_a_decay_and_an_optional_low_cut():
    assert parse_variant("0.7") == (0.7, 0.0) and parse_variant("0.6/120") == (0.6, 120.0)


def test_a_low_cut_weakens_low_fundamentals_and_leaves_the_followers_templates_alone():
    from studies.template_partials import pitch_templates as cut_templates

    config = FineConfig()
    plain = pitch_templates(FC, config)
    np.testing.assert_array_equal(cut_templates(FC, config, 0.0), plain)
    cut = cut_templates(FC, config, 200.0)
    f2, a5 = 41, 81  # 87 Hz and 880 Hz
    assert cut[f2].sum() < 0.7 * plain[f2].sum() and cut[a5].sum() > 0.95 * plain[a5].sum()
    before = dict(aligner._PITCH_CACHE)
    templates(_notes([(41, 60, 65, 69)]), FC, config.harmonic_decay, 200.0)
    assert aligner._PITCH_CACHE.keys() == before.keys()  # the aligner's own cache is as it was
    np.testing.assert_array_equal(aligner.pitch_templates(FC, config), plain)


def test_frames_are_placed_by_their_own_template_and_a_wrong_truth_shows_as_lost_frames():
    # an F-major chord over an F3 bass, other chords, then the same chord over an F2 bass, 2 s later
    chords = [(53, 60, 65, 69), (50, 62, 65, 69), (45, 60, 65, 72), (46, 62, 65, 70), (41, 60, 65, 69), (43, 62, 67, 71)]
    notes = _notes(chords)
    fps = FC.frame_rate_hz
    tmpl = templates(notes, FC, 0.7, 0.0)
    played = tmpl + np.random.default_rng(0).uniform(0, 0.02, tmpl.shape).astype(np.float32)
    truth_s = (np.arange(len(played)) + 0.5) / fps
    sounding = tmpl.any(axis=1)
    right = margins(played, truth_s, sounding, tmpl, fps)
    assert len(right) == sounding.sum() > 40 and (right > 0).all()  # every frame: its own template first
    late = margins(played, truth_s - 1.0, sounding, tmpl, fps)      # a truth 1 s behind the music
    assert len(late) < len(right) and (late < 0).mean() > 0.8
