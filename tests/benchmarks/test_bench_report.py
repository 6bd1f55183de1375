from benchmarks.report import block_body, keep_absent_rows, replace_block
from benchmarks.run_all import KEPT_MARK, kept_setup, recorded_args

HEAD = "| material | system | x |\n|---|---|---|"


def test_rows_of_systems_without_logs_here_are_kept_in_their_places():
    old = "\n".join([HEAD, "| A | ours | 1 |", "| A | peer | 2 |", "| B | ours | 3 |", "| B | peer | 4 |",
                     "| B | gone | 5 |"])
    new = "\n".join([HEAD, "| A | ours | 10 |", "| B | ours | 30 |", "| C | ours | 50 |"])
    out = keep_absent_rows(old, new, {"peer"})
    assert out.splitlines() == HEAD.splitlines() + ["| A | ours | 10 |", "| A | peer | 2 |", "| B | ours | 30 |",
                                                    "| B | peer | 4 |", "| C | ours | 50 |"]
    # nothing absent, or no table before: the new table as it is
    assert keep_absent_rows(old, new, set()) == new and keep_absent_rows("", new, {"peer"}) == new


def test_a_system_named_in_the_first_cell_is_kept_too():
    old = "| system | corpus | x |\n|---|---|---|\n| ours | c | 1 |\n| peer | c | 2 |"
    new = "| system | corpus | x |\n|---|---|---|\n| ours | c | 9 |"
    assert keep_absent_rows(old, new, {"peer"}).splitlines()[2:] == ["| ours | c | 9 |", "| peer | c | 2 |"]


def test_the_kept_rows_setup_does_not_nest_over_reruns():
    page = replace_block("text", "setup", "- Machine: M1\n- Run: R1")
    first = kept_setup(block_body(page, "setup"))
    assert first == ["  - Machine: M1", "  - Run: R1"]
    rerun = "\n".join(["- Machine: M2", f"- {KEPT_MARK} peer. As the page had them:"] + first)
    assert kept_setup(rerun) == first


def test_bundles_that_differ_in_their_audio_side_alone_share_the_cached_indexes(tmp_path):
    # the benchmark's index cache is keyed by the score side: a new audio encoder (int8, partial,
    # a narrower student) must not rebuild the piano index (minutes), a new score encoder must
    import json
    import shutil
    from pathlib import Path

    from benchmarks.runners import bundle_fingerprint, index_path

    shipped = Path(__file__).resolve().parents[2] / "exported" / "default"
    bundles = {}
    for name, key in (("audio", "audio_encoder.onnx"), ("score", "score_encoder.onnx")):
        b = tmp_path / name
        b.mkdir()
        shutil.copy(shipped / "config.json", b / "config.json")
        cfg = json.loads((b / "config.json").read_text())
        cfg["sha256"][key] = "0" * 64
        (b / "config.json").write_text(json.dumps(cfg))
        bundles[name] = b
    assert bundle_fingerprint(bundles["audio"]) != bundle_fingerprint(shipped)
    same = index_path("piano", bundles["audio"], tmp_path, 8)
    assert same == index_path("piano", shipped, tmp_path, 8) and same.name.endswith("-hop8.index.npz")
    assert index_path("piano", bundles["score"], tmp_path, 8) != same


def test_the_recorded_command_remakes_the_page_not_the_copy():
    argv = ["--systems", "follower", "--doc", "/tmp/copy.md", "--fresh", "--report-only", "--doc=/tmp/other.md",
            "--piano-hop-frames", "8"]
    assert recorded_args(argv) == ["--systems", "follower", "--fresh", "--piano-hop-frames", "8"]
