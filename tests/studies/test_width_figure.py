"""studies.width_figure draws every compared run at its width, from what `training evaluate --compare` writes."""

import json

from studies.width_figure import main, mrr


def _run(folder, width):
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"model_config": {"base_filters": width}}))
    return str(folder)


def test_the_figure_is_drawn_from_compare_tables(tmp_path):
    ranks = {"test": {"audio2score": [1, 2, 4]}, "bach10": {"audio2score": [1, 1, 2]}}
    chorales = {_run(tmp_path / "shipped", 24): {"pair_ranks": ranks},
                _run(tmp_path / "w32", 32): {"pair_ranks": ranks, "variant": {"augment_audio": {"p": 1}}}}
    piano = {k: {"pair_ranks": {"test": {"audio2score": [1, 3]}}} for k in chorales}
    (tmp_path / "c.json").write_text(json.dumps(chorales))
    (tmp_path / "p.json").write_text(json.dumps(piano))
    out = tmp_path / "fig" / "width.png"
    assert main([str(tmp_path / "c.json"), str(tmp_path / "p.json"), "-o", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert mrr([1, 2, 4]) == (1 + 0.5 + 0.25) / 3
