"""The ablation benchmark: its variants are real engine settings, and its table reads the scores."""

from dataclasses import replace

import numpy as np
import pytest

from benchmarks.ablation import VARIANTS, ablation_table, slug
from benchmarks.material import Item
from benchmarks.metrics import score_item
from benchmarks.warp import TimeMap
from follower.engine import EngineConfig

TRUTH = TimeMap(np.array([0.0, 20.0]), np.array([10.0, 30.0]))


@pytest.mark.parametrize("name", [n for n, o in VARIANTS.items() if o is not None])
def test_every_engine_variant_is_an_engine_config(name):
    config = replace(EngineConfig(), **VARIANTS[name])
    for field, value in VARIANTS[name].items():
        assert getattr(config, field) == value


def test_variant_folders_are_distinct():
    assert len({slug(n) for n in VARIANTS}) == len(VARIANTS)


def test_table_has_a_row_per_variant_and_material():
    def rec(t, piece, pos):
        return {"t": t, "piece": piece, "position_s": pos, "state": "following", "latency_ms": 1.0}

    items = [Item("c1", "chorale", "c1.flac", "c1.json", "chorales", "a", "a.mid", "f", 20.0),
             Item("b1", "bach10", "b1.wav", "b1.json", "chorales", "a", "a.mid", "f", 20.0)]
    good = score_item([rec(1.0, "a", 11.0), rec(3.0, "a", 13.1)], "a", TRUTH)
    late = score_item([rec(1.0, "b", 1.0), rec(2.5, "b", 1.5), rec(4.0, "a", 14.0)], "a", TRUTH)
    table = ablation_table({"shipped": {"c1": good, "b1": good}, "paths only": {"c1": late}}, items)
    rows = table.splitlines()[2:]
    assert len(rows) == 3  # chorales x 2 variants, Bach10 x 1 (paths only has no Bach10 record)
    assert "| Synthetic chorales | paths only | 4.0 s / 4.0 s | 100 % | 1.5 s |" in table
    assert rows[-1].startswith("| Bach10 (real) | shipped | 1.0 s / 1.0 s | 100 % | 0.0 s | 100 % |")


def test_the_no_templates_variant_is_the_engine_templates_off_gives():
    from follower.engine import templates_off

    assert replace(EngineConfig(), **VARIANTS["no note templates"]) == templates_off()
    assert EngineConfig().rerank_template_weight > 0  # (the shipped engine has them on)


def test_the_open_programme_variant_is_the_engine_the_option_gives():
    from follower.confidence import FITTED_OPEN
    from follower.engine import open_programme

    assert replace(EngineConfig(), **VARIANTS["open programme"]) == open_programme()  # (runner: --open-programme)
    assert open_programme().calibration == FITTED_OPEN != EngineConfig().calibration
    assert open_programme().rules_min_p == EngineConfig().rerank_min_p > EngineConfig().rules_min_p == 0.0


def test_a_fresh_ablation_reads_the_follower_run_for_the_shipped_variant_and_never_rewrites_it(tmp_path, monkeypatch):
    import json

    import benchmarks.ablation as ablation
    import follower.bundle
    import follower.index

    TRUTH.save(tmp_path / "c1.json")
    item = Item("c1", "chorale", "c1.flac", str(tmp_path / "c1.json"), "chorales", "a", "a.mid", "f", 20.0)
    follower_run = tmp_path / "follower"
    follower_run.mkdir()
    full = {"t": 1.0, "piece": "a", "position_s": 11.0, "state": "following", "tempo": 1.0, "confidence": 0.9,
            "latency_ms": 1.0}
    (follower_run / "c1.jsonl").write_text(json.dumps(full) + "\n")
    replayed = []

    def run_variant(name, bundle, index, it):
        replayed.append(name)
        return [{"t": 1.0, "piece": "a", "position_s": 11.0, "state": "following", "latency_ms": 1.0}]

    monkeypatch.setattr(ablation, "run_variant", run_variant)
    monkeypatch.setattr(follower.bundle, "load_bundle", lambda *a, **k: None)
    monkeypatch.setattr(follower.index, "load_index", lambda *a, **k: None)
    scores = ablation.run([item], tmp_path, {"chorales": "x.npz"}, tmp_path / "ablation", fresh=True,
                          variants=("shipped", "one engine"), progress=False, shipped_dir=follower_run)
    assert replayed == ["one engine"]
    assert json.loads((follower_run / "c1.jsonl").read_text()) == full
    assert set(scores["shipped"]) == set(scores["one engine"]) == {"c1"}
