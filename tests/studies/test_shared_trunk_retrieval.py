"""The shared-trunk study needs the benchmark material and says so in one line when it is absent."""

from studies import shared_trunk_retrieval


def test_without_material_it_says_what_to_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SCOREFOLLOW_BENCH", str(tmp_path))
    (tmp_path / "material").mkdir()
    (tmp_path / "material" / "manifest.json").write_text("[]")
    assert shared_trunk_retrieval.main(["--kinds", "bach10"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["no bach10 items: run python -m benchmarks.material first"]
