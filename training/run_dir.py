"""What a training run leaves in RUN/: the files and how to read them back.

``RUN/checkpoint.pt`` holds everything needed to resume (latest weights, optimiser,
random states, history, early-stopping state). ``RUN/best.pt`` holds the weights of
the best validation MRR so far with the settings the bundle needs; export and
evaluation read it.
"""

from __future__ import annotations

from pathlib import Path

from follower.errors import ConfigError
from follower.features import FeatureConfig
from follower.snippets import SnippetConfig

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
LOG_CSV = "log.csv"
LOSS_PNG = "loss.png"
RUN_JSON = "run.json"
METRICS_JSON = "metrics.json"          # training evaluate RUN
COMPARE_METRICS_JSON = "compare_metrics.json"  # training evaluate RUN RUN ... (learned model only)


def load_best(run_dir, *, file_name: str = BEST):
    """(model in eval mode, snippet config, feature config, training info) of a run."""
    import torch

    from .model.encoders import DualEncoder, ModelConfig

    path = Path(run_dir) / file_name
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {file_name}; give a folder written by `training train` "
                          "(it appears after the first epoch)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = DualEncoder(ModelConfig.from_dict(state["model_config"]))
        model.load_state_dict(state["model_state"])
    except (KeyError, RuntimeError, EOFError) as e:
        raise ConfigError(f"{path}: not a readable training checkpoint ({e}); retrain or pick another run") from e
    return (model.eval(), SnippetConfig.from_dict(state["snippet_config"]),
            FeatureConfig.from_dict(state["feature_config"]), dict(state.get("training_info", {})))


def write_run(out, model, snippets: SnippetConfig, features: FeatureConfig, info: dict, state=None) -> Path:
    """RUN/best.pt and RUN/run.json of weights made outside the training loop (an imported bundle,
    a blend): ``model``'s settings with ``state`` (default: its own weights)."""
    import json

    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"model_config": model.config.to_dict(), "snippet_config": snippets.to_dict(),
                "feature_config": features.to_dict()}
    torch.save({**settings, "model_state": model.state_dict() if state is None else state, "training_info": info},
               out / BEST)
    (out / RUN_JSON).write_text(json.dumps({**settings, "info": info}, indent=2, default=str) + "\n")
    return out / BEST
