"""The training package's layout: imports run one way, cli -> fit -> evaluate -> data -> model/augment.

A module may import its own package's modules and any package on a lower level,
never one above it; nothing in the library imports the checkout's benchmarks/ or
studies/ (they import the library, not the other way round).
"""

import ast
from pathlib import Path

import training

ROOT = Path(training.__file__).resolve().parent
# level of each part of training/; a part imports only parts of a lower level (or itself)
LEVELS = {"cli": 6, "fit": 5, "evaluate": 4, "export": 4, "data": 3, "run_dir": 2, "model": 1, "augment": 1,
          "paths": 0, "__init__": 0}


def part_of(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0] if len(rel) > 1 else Path(rel[0]).stem


def imported_parts(path: Path):
    """(line, part of training/ or a foreign top-level name) of every import in the file."""
    tree = ast.parse(path.read_text())
    package = ["training", *path.relative_to(ROOT).parts[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                names = base + (node.module.split(".") if node.module else [])
                targets = [names] if node.module else [names + [a.name] for a in node.names]
            else:
                targets = [node.module.split(".")]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".") for a in node.names]
        else:
            continue
        for t in targets:
            if t[0] == "training" and len(t) > 1:
                yield node.lineno, t[1]
            elif t[0] in ("benchmarks", "studies"):
                yield node.lineno, t[0]


def test_imports_run_one_way():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        me = part_of(path)
        for line, other in imported_parts(path):
            if other in ("benchmarks", "studies"):
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports {other}/")
            elif other != me and LEVELS[other] >= LEVELS[me]:
                wrong.append(f"{path.relative_to(ROOT)}:{line} ({me}) imports {other}")
    assert not wrong, "\n".join(wrong)


def test_every_part_has_a_level_and_the_top_level_stays_small():
    parts = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))}
    assert parts == set(LEVELS)
    assert len(parts) <= 10


def test_training_help_lists_every_step_from_corpus_to_export(capsys):
    import pytest

    from training.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for step in ("training corpus", "training dataset build", "training train", "training evaluate RUN",
                 "training export", "follower index build"):
        assert step in out, step
    commands = out.split("positional arguments:")[1]
    for command in ("corpus", "dataset", "train", "cca", "evaluate", "export"):
        assert f"    {command} " in commands, command
