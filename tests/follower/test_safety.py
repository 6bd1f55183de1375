"""What the follower loads and serves cannot run code or write where a file says.

* Every ``np.load`` in the project passes ``allow_pickle=False`` (a crafted .npz
  index would otherwise run code when loaded); nothing imports pickle (or its
  relatives); ``torch.load`` with ``weights_only=False`` only reads the trainer's
  own checkpoints in the user's run folder (listed below), never a bundle or an index.
* Every server socket the code opens binds to loopback unless the user names a
  host: no literal ``0.0.0.0`` / ``""`` / ``::`` bind addresses.
* Paths stored in an index (its ``sources``, ``bundle``, skipped files) are only
  read or shown: loading, inspecting and following with an index whose header
  points at other files leaves those files untouched.

The scans read the source with ``ast``, so they see every call however it is
formatted.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("follower", "training", "benchmarks", "studies", "examples", "tests")
# the trainer's own checkpoints (optimizer state, RNG state): written and read back by training/ only
TORCH_FULL_LOAD_ALLOWED = {"training/fit/loop.py", "training/run_dir.py", "tests/training/test_pipeline_smoke.py"}


def python_files():
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            if ".venv" not in path.parts:
                yield path, ast.parse(path.read_text(), filename=str(path))


def calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def dotted(func) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def keyword(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_const(node, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def test_the_scan_sees_the_project():
    files = dict((str(p.relative_to(REPO)), t) for p, t in python_files())
    assert "follower/index.py" in files and "training/data/render.py" in files
    loads = [c for t in files.values() for c in calls(t) if dotted(c.func) in ("np.load", "numpy.load")]
    assert len(loads) >= 5


def test_every_np_load_refuses_pickles():
    bad = []
    for path, tree in python_files():
        for c in calls(tree):
            if dotted(c.func) in ("np.load", "numpy.load") and not is_const(keyword(c, "allow_pickle"), False):
                bad.append(f"{path.relative_to(REPO)}:{c.lineno}")
    assert bad == [], f"np.load without allow_pickle=False: {bad}"


def test_nothing_unpickles():
    bad = []
    for path, tree in python_files():
        rel = str(path.relative_to(REPO))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "shelve", "cloudpickle")
                       for n in names):
                    bad.append(f"{rel}:{node.lineno} imports a pickle module")
        for c in calls(tree):
            name = dotted(c.func)
            if name.endswith("read_pickle"):
                bad.append(f"{rel}:{c.lineno} {name}")
            if name == "torch.load" and not is_const(keyword(c, "weights_only"), True) \
                    and rel not in TORCH_FULL_LOAD_ALLOWED:
                bad.append(f"{rel}:{c.lineno} torch.load without weights_only=True")
    assert bad == []


def binds_everywhere(tree, rel: str) -> list:
    any_host = {"0.0.0.0", "", "::"}
    bad = []
    for c in calls(tree):
        name = dotted(c.func)
        if name.endswith(".bind") or name.endswith("Server"):
            for arg in c.args[:1]:
                if isinstance(arg, ast.Tuple) and arg.elts and isinstance(arg.elts[0], ast.Constant) \
                        and arg.elts[0].value in any_host:
                    bad.append(f"{rel}:{c.lineno} {name} on all interfaces")
    for node in ast.walk(tree):  # a server's default host constant
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant) \
                and node.value.value in ("0.0.0.0", "::"):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id if isinstance(t, ast.Name) else getattr(t, "attr", "") for t in targets]
            if any("HOST" in n.upper() for n in names):
                bad.append(f"{rel}:{node.lineno} {names} = {node.value.value!r}")
    return bad


def test_the_bind_scan_finds_a_server_on_all_interfaces():
    code = "s = ThreadingHTTPServer(('0.0.0.0', 8000), H)\nsock.bind(('', 9000))\nDEFAULT_VIEW_HOST = '0.0.0.0'\n"
    assert len(binds_everywhere(ast.parse(code), "x.py")) == 3
    assert binds_everywhere(ast.parse("s = ThreadingHTTPServer(('127.0.0.1', 0), H)\n"), "x.py") == []


def test_servers_bind_to_loopback_by_default():
    bad = []
    for path, tree in python_files():
        rel = str(path.relative_to(REPO))
        if not rel.startswith("tests/"):
            bad += binds_everywhere(tree, rel)
    assert bad == []


def test_paths_inside_an_index_are_never_written(corpus_index, chroma_bundle, rendered, tmp_path):
    """An index whose header names other files (as a crafted one could) is loaded, inspected and
    followed; those files, and the folder they are in, stay as they were."""
    from follower.index import content_sha256

    victims = tmp_path / "victims"
    victims.mkdir()
    for name in ("source.mid", "bundle", "skipped.mid", "out.jsonl"):
        (victims / name).write_text("keep me\n")
    with np.load(corpus_index, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["header"]))
    header.update(sources=[str(victims / "source.mid")], bundle=str(victims / "bundle"),
                  skipped=[{"file": str(victims / "skipped.mid"), "reason": f"{victims / 'out.jsonl'}: x"}])
    header["sha256"] = content_sha256({k: v for k, v in arrays.items() if k != "header"})  # a valid checksum
    arrays["header"] = np.array(json.dumps(header))
    crafted = tmp_path / "crafted.index.npz"
    with open(crafted, "wb") as f:
        np.savez(f, **arrays)
    before = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in victims.iterdir()}
    for args in (["index", "info", crafted],
                 ["replay", rendered["path"], "--fast", "--quiet", "--bundle", chroma_bundle, "--index", crafted,
                  "--osc", "127.0.0.1:9", "--jsonl", tmp_path / "log.jsonl"]):
        r = subprocess.run([sys.executable, "-m", "follower.cli", *map(str, args)], capture_output=True, text=True,
                           timeout=120, cwd=REPO)
        assert r.returncode == 0, r.stderr
    after = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in victims.iterdir()}
    assert after == before
    assert (tmp_path / "log.jsonl").stat().st_size > 0  # it did follow


@pytest.mark.parametrize("payload", ["object array"])
def test_a_pickled_array_in_an_index_is_refused_not_run(payload, corpus_index, tmp_path):
    from follower.errors import BundleError
    from follower.index import load_index

    with np.load(corpus_index, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    marker = tmp_path / "ran"
    arrays["titles"] = np.array([_Boom(str(marker))], dtype=object)  # saved as a pickle inside the .npz
    bad = tmp_path / "pickled.index.npz"
    with open(bad, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(BundleError, match="not a follower index"):
        load_index(bad)
    assert not marker.exists()


class _Boom:
    """Unpickling this would create a file: the proof that a pickle ran."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))
