"""Order-free voting against the engine's temporal decoding (studies/decoders.py).

Uses the follower tests' hand-made chroma bundle and random-chord corpus (real ONNX,
real FluidSynth render), so no trained model is needed.
"""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "follower" / "conftest.py"


def helpers():
    spec = importlib.util.spec_from_file_location("follower_test_helpers", CONFTEST)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    pytest.importorskip("onnx", reason="the test bundle is written with the onnx package (training extra)")
    h = helpers()
    if not h.have_fluidsynth():
        pytest.skip("FluidSynth or the TimGM6mb soundfont is absent (apt-get install fluidsynth timgm6mb-soundfont)")
    import soundfile as sf

    from benchmarks.warp import TimeMap
    from follower.bundle import load_bundle
    from follower.index import build_index, save_index

    root = tmp_path_factory.mktemp("fv")
    bundle_dir = h.make_chroma_bundle(root / "bundle")
    corpus = root / "corpus"
    for i in range(4):
        h.write_piece(corpus / f"piece{i}.mid", seed=200 + i, n_chords=30)
    index_path = save_index(build_index([corpus], load_bundle(bundle_dir), hop_frames=2, progress=False),
                            root / "corpus.index.npz")
    ratio, start_s = 1.1, 4.0
    audio = h.render(corpus / "piece2.mid", tempo_ratio=ratio, rate_hz=22050)[int(start_s / ratio * 22050):]
    sf.write(root / "piece2.wav", audio, 22050)
    t = np.array([0.0, len(audio) / 22050])
    TimeMap(t, start_s + ratio * t).save(root / "piece2.truth.json")
    items = [{"name": "piece2_excerpt", "kind": "chorale", "audio": str(root / "piece2.wav"),
              "truth": str(root / "piece2.truth.json"), "piece": "piece2", "duration_s": float(t[1])}]
    (root / "material").mkdir()
    (root / "material" / "manifest.json").write_text(json.dumps(items))
    return {"root": root, "bundle": bundle_dir, "index": index_path}


def test_both_systems_identify_and_the_engine_follows(material, capsys):
    from studies.decoders import main

    out = material["root"] / "result.json"
    assert main(["--bundle", str(material["bundle"]), "--index", str(material["index"]),
                 "--material", str(material["root"] / "material"), "-o", str(out),
                 "--logs", str(material["root"] / "logs")]) == 0
    table = capsys.readouterr().out
    assert "| engine | chorale | 1 |" in table and "| voting | chorale | 1 |" in table
    summary = json.loads(out.read_text())["summary"]
    for system in ("engine", "voting", "voting_all"):
        assert summary[system]["chorale"]["acc_end"] == 1.0, system
    assert summary["engine"]["chorale"]["pos_median_s"] < 0.5
    # both systems update on the same 50 ms grid
    logs = material["root"] / "logs"
    t_engine = [json.loads(x)["t"] for x in (logs / "engine-piece2_excerpt.jsonl").read_text().splitlines()]
    t_voting = [json.loads(x)["t"] for x in (logs / "voting-piece2_excerpt.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(t_engine[:len(t_voting)], t_voting[:len(t_engine)], atol=1e-6)


def test_missing_material_is_one_line(material, tmp_path, capsys):
    from studies.decoders import main

    assert main(["--bundle", str(material["bundle"]), "--index", str(material["index"]),
                 "--material", str(tmp_path), "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no benchmark material" in err


def test_chosen_systems_only(material, capsys):
    from studies.decoders import main

    out = material["root"] / "chosen.json"
    assert main(["--bundle", str(material["bundle"]), "--index", str(material["index"]),
                 "--material", str(material["root"] / "material"), "-o", str(out),
                 "--systems", "engine_no_evidence,engine_evidence"]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert set(summary) == {"engine_no_evidence", "engine_evidence"}
    for system in summary:
        assert summary[system]["chorale"]["acc_end"] == 1.0, system
    capsys.readouterr()
    assert main(["--bundle", str(material["bundle"]), "--index", str(material["index"]),
                 "--material", str(material["root"] / "material"), "-o", str(out), "--systems", "engine,nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope" in err
