"""Distil a bundle's score encoder into a small one (:mod:`training.model.student`) and add it to the bundle.

The student is trained to reproduce the teacher's unit-length embeddings of the same
roll windows (loss ``1 - cos``, plus an in-batch contrastive term at ``temperature``
that keeps each student embedding nearer its own teacher embedding than the other
windows' ones: retrieval ranks, so the relative geometry is what must survive).
It never sees audio, so it lives in the teacher's space and works with the bundle's
audio encoder unchanged; indexes it builds say so in their header
(``score_encoder: small``).

Adam with a cosine-decayed learning rate over a wall-clock budget (``minutes``),
batches drawn from the training windows of :mod:`training.fit.distill_data`; the
weights with the best mean cosine on the validation windows are kept. The export
folds BatchNorm away and is checked against torch like the bundle's other graphs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from follower.config import JsonConfig
from follower.errors import ConfigError

from ..model.student import StudentConfig, StudentScoreEncoder


@dataclass(frozen=True)
class DistillConfig(JsonConfig):
    minutes: float = 20.0
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-5
    temperature: float = 0.05
    contrastive_weight: float = 0.1
    eval_every: int = 200        # steps
    seed: int = 0

    def __post_init__(self):
        if not self.minutes > 0 or self.batch < 2 or not self.lr > 0 or not self.temperature > 0:
            raise ConfigError("minutes, lr and temperature must be positive and batch at least 2")


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, cfg: DistillConfig) -> torch.Tensor:
    cos = (student * teacher).sum(dim=1)
    loss = (1.0 - cos).mean()
    if cfg.contrastive_weight > 0:
        logits = student @ teacher.T / cfg.temperature
        loss = loss + cfg.contrastive_weight * F.cross_entropy(logits, torch.arange(len(student)))
    return loss


def embed(model: StudentScoreEncoder, x: np.ndarray, snippet_config, batch: int = 1024) -> np.ndarray:
    from follower.snippets import roll_input

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            out.append(model(torch.from_numpy(roll_input(x[start:start + batch], snippet_config))).numpy())
    return np.concatenate(out)


def train_student(train: dict, valid: dict, snippet_config, student_config: StudentConfig,
                  cfg: DistillConfig, log=print, init_state: dict | None = None) -> tuple:
    """(model with the best validation weights, log rows). ``train``/``valid``: {"rolls", "teacher"}.

    ``init_state``: weights of an earlier run to go on from (a new learning-rate cycle).
    """
    from follower.snippets import roll_input

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = StudentScoreEncoder(student_config)
    if init_state is not None:
        model.load_state_dict(init_state)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    budget = cfg.minutes * 60.0
    t0 = time.time()
    best, best_state, rows, step, losses = -1.0, None, [], 0, []
    teacher = torch.from_numpy(train["teacher"])
    while True:
        elapsed = time.time() - t0
        done = elapsed >= budget
        if step % cfg.eval_every == 0 or done:
            cos = float((embed(model, valid["rolls"], snippet_config) * valid["teacher"]).sum(1).mean())
            rows.append({"step": step, "seconds": round(elapsed, 1), "train_loss": float(np.mean(losses or [np.nan])),
                         "valid_cosine": cos})
            log(json.dumps(rows[-1]))
            losses = []
            if cos > best:
                best, best_state = cos, {k: v.clone() for k, v in model.state_dict().items()}
        if done:
            break
        for group in opt.param_groups:  # cosine decay over the time budget
            group["lr"] = cfg.lr * 0.5 * (1 + np.cos(np.pi * min(elapsed / budget, 1.0)))
        model.train()
        idx = rng.integers(0, len(train["rolls"]), cfg.batch)
        x = torch.from_numpy(roll_input(train["rolls"][idx], snippet_config))
        loss = distill_loss(model(x), teacher[idx], cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
    model.load_state_dict(best_state)
    return model.eval(), rows


def export_student(model: StudentScoreEncoder, path, check_inputs: np.ndarray) -> float:
    """Write the ONNX graph (input "roll", output "embedding"); returns max |onnx - torch| on the inputs."""
    from ..export import _export_one, check_onnx

    model.eval()
    example = torch.zeros((1,) + model.config.roll_shape)
    _export_one(model, example, "roll", Path(path))
    return check_onnx(Path(path), model, np.ascontiguousarray(check_inputs, dtype=np.float32))


def add_to_bundle(bundle_dir, out_dir, model: StudentScoreEncoder, measured: dict, check_inputs: np.ndarray) -> dict:
    """Write ``out_dir``: ``bundle_dir`` plus ``score_encoder.small.onnx`` (``out_dir`` may be ``bundle_dir``).

    The other files are copied unchanged, so indexes of the full score encoder stay valid
    (``score_from`` names the bundle they were built with); config.json records the small
    encoder's checksum, architecture and what was measured.
    """
    from follower.bundle import SCORE_ONNX, SCORE_SMALL_ONNX, copy_bundle, sha256_file, write_config

    out_dir = Path(out_dir)
    cfg = copy_bundle(bundle_dir, out_dir)
    tmp = out_dir / (SCORE_SMALL_ONNX + ".tmp.onnx")
    err = export_student(model, tmp, check_inputs)
    tmp.replace(out_dir / SCORE_SMALL_ONNX)
    info = {**measured, "architecture": model.config.to_dict(), "max_abs_diff_onnx_vs_torch": err,
            "teacher": SCORE_ONNX, "source_bundle": cfg.fingerprint}
    sha = {**cfg.sha256, SCORE_SMALL_ONNX: sha256_file(out_dir / SCORE_SMALL_ONNX)}
    new = type(cfg).from_dict({**cfg.to_dict(), "sha256": sha, "score_from": cfg.score_from or cfg.fingerprint,
                               "training": {**cfg.training, "score_small": info}})
    write_config(out_dir, new)
    return {**info, "fingerprint": new.fingerprint, "small_index_fingerprint": new.index_fingerprint_for("small")}
