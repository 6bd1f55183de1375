"""Add the paper's CCA layer to a trained run, post hoc: ``training cca RUN -o RUN_CCA``.

The CCA is fitted on the embeddings of ``n_pairs`` training pairs and stored in
the model as fixed buffers (see :mod:`training.model.encoders`); RUN_CCA is a run folder
like any other (best.pt, run.json, log.csv, loss.png), so ``training evaluate``
and ``training export`` take it unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import torch

from follower.errors import ConfigError

from ..run_dir import BEST, LOG_CSV, LOSS_PNG, RUN_JSON, load_best
from ..data.split import load_split
from ..evaluate.protocols import TorchEmbedder, choose_pairs, embed_pairs, posthoc_cca, project
from ..evaluate.metrics import two_way_retrieval
from ..model.encoders import DualEncoder

REG = 1e-3


def fit_cca_run(run_dir, out_dir, *, dataset=None, n_pairs: int = 5000, seed: int = 0) -> dict:
    run, out = Path(run_dir), Path(out_dir)
    model, snip, feat, info = load_best(run)
    if model.config.cca:
        raise ConfigError(f"{run} already has a CCA layer; give the run it was fitted on")
    if dataset is None:
        dataset = json.loads((run / RUN_JSON).read_text()).get("info", {}).get("dataset")
    if not dataset:
        raise ConfigError(f"{run}/run.json names no dataset; pass --dataset")
    train = load_split(dataset, "train", snip)
    a, s = embed_pairs(TorchEmbedder(model), train, choose_pairs(len(train.pairs), n_pairs, seed + 11))
    del train
    fit = posthoc_cca(a, s, reg=REG)
    # the decision to keep the layer rests on held-out pairs: validation MRR with and without
    valid = load_split(dataset, "valid", snip)
    va, vs = embed_pairs(TorchEmbedder(model), valid, choose_pairs(len(valid.pairs), 2000, seed))
    without, _ = two_way_retrieval(va, vs)
    with_cca, _ = two_way_retrieval(project(va, fit["audio_mean"], fit["audio_matrix"]),
                                    project(vs, fit["score_mean"], fit["score_matrix"]))
    config = dataclasses.replace(model.config, cca=True)
    new = DualEncoder(config)
    missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.split(".")[-1].startswith("proj_") for k in missing):
        raise ConfigError(f"{run}/{BEST}: weights do not fit the model ({missing}, {unexpected})")
    with torch.no_grad():
        for enc, view in ((new.audio, "audio"), (new.score, "score")):
            enc.proj_mean.copy_(torch.from_numpy(fit[f"{view}_mean"].astype(np.float32)))
            enc.proj_matrix.copy_(torch.from_numpy(fit[f"{view}_matrix"].astype(np.float32)))
    cca_info = {"fit_pairs": int(len(a)), "reg": REG, "seed": seed, "from_run": str(run.resolve()),
                "canonical_correlations": [round(float(c), 4) for c in fit["correlations"]],
                "valid_mrr_without": {k: v["mrr"] for k, v in without.items()},
                "valid_mrr_with": {k: v["mrr"] for k, v in with_cca.items()}}
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model_config": config.to_dict(), "model_state": new.state_dict(),
                "snippet_config": snip.to_dict(), "feature_config": feat.to_dict(),
                "training_info": {**info, "cca": cca_info}}, out / BEST)
    for name in (RUN_JSON, LOG_CSV, LOSS_PNG):
        if (run / name).is_file():
            shutil.copy(run / name, out / name)
    return cca_info
