"""Training loop of Dorfer et al. (2018, §3.3), as in the authors' code.

Adam (lr 0.002), batches of 100 pairs, L2 weight decay 1e-5 on the convolution
weights, an epoch = 10,000 pairs drawn from the training pairs. Early stopping on
validation MRR: after ``patience`` epochs without a new best, the best weights are
restored and the learning rate halved (a *refinement round*), up to
``refinements`` rounds; then training stops. ``max_minutes`` caps the wall time
(CPU budget), ending the run at an epoch boundary with the best weights kept.

Files in RUN/ (see :mod:`training.run_dir`): log.csv (one row per epoch),
loss.png, checkpoint.pt (resume), best.pt (export/evaluate), run.json.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from follower.config import JsonConfig
from follower.errors import ConfigError

from ..evaluate.metrics import two_way_retrieval
from ..evaluate.protocols import TorchEmbedder, embed_pairs
from ..model.encoders import DualEncoder, ModelConfig
from ..model.losses import LOSSES, MARGIN, TEMPERATURE, make_loss
from ..run_dir import BEST, CHECKPOINT, LOG_CSV, RUN_JSON
from .curves import plot_losses

LOG_FIELDS = ["epoch", "round", "lr", "train_loss", "valid_loss", "valid_mrr", "valid_r@1",
              "seconds", "best"]


@dataclass(frozen=True)
class TrainConfig(JsonConfig):
    lr: float = 0.002
    batch_size: int = 100
    weight_decay: float = 1e-5
    loss: str = "hinge"            # "hinge": the paper's ranking loss; "infonce" (training.model.losses)
    margin: float = MARGIN         # of the hinge loss
    temperature: float = TEMPERATURE  # of the InfoNCE loss
    epoch_pairs: int = 10_000
    valid_pairs: int = 2_000       # fixed, seeded subset: MRR ranks each against all of them
    patience: int = 5              # epochs without a new best before a refinement round
    refinements: int = 3           # learning-rate halvings from the best weights
    lr_factor: float = 0.5
    max_epochs: int = 200
    max_minutes: float = 0.0       # 0 = no wall-time cap
    seed: int = 0
    threads: int = 2

    def __post_init__(self):
        positive = ("lr", "batch_size", "epoch_pairs", "valid_pairs", "patience", "max_epochs", "threads")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be positive")
        if self.batch_size < 2:
            raise ConfigError(f"batch_size={self.batch_size} must be >= 2 (in-batch negatives)")
        if not 0 < self.lr_factor < 1:
            raise ConfigError(f"lr_factor={self.lr_factor} must be in (0, 1)")
        if self.weight_decay < 0 or self.refinements < 0 or self.max_minutes < 0:
            raise ConfigError("weight_decay, refinements and max_minutes must not be negative")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss={self.loss!r}; expected one of {', '.join(LOSSES)}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature={self.temperature!r} must be positive")



def _optimizer(model: torch.nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    # as lasagne's regularize_network_params: decay the convolution weights only,
    # not the BatchNorm scales and shifts
    decay = [p for n, p in model.named_parameters() if p.dim() == 4]
    rest = [p for n, p in model.named_parameters() if p.dim() != 4]
    return torch.optim.Adam([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=lr)


def make_config_loss(cfg: TrainConfig):
    """The training loss ``loss(audio, score)`` that ``cfg`` names."""
    return make_loss(cfg.loss, margin=cfg.margin, temperature=cfg.temperature)


def validate(model: DualEncoder, split, pair_idx: np.ndarray, cfg: TrainConfig) -> dict:
    """Validation loss (batches of ``batch_size``) and two-way MRR over the fixed subset."""
    loss_fn = make_config_loss(cfg)
    a, s = embed_pairs(TorchEmbedder(model), split, pair_idx)
    losses = []
    for start in range(0, len(a) - cfg.batch_size + 1, cfg.batch_size):
        sl = slice(start, start + cfg.batch_size)
        losses.append(float(loss_fn(torch.from_numpy(a[sl]), torch.from_numpy(s[sl]))))
    if not losses:  # fewer valid pairs than a batch
        losses.append(float(loss_fn(torch.from_numpy(a), torch.from_numpy(s))))
    metrics, _ = two_way_retrieval(a, s)
    mrr = (metrics["audio2score"]["mrr"] + metrics["score2audio"]["mrr"]) / 2
    r1 = (metrics["audio2score"]["r@1"] + metrics["score2audio"]["r@1"]) / 2
    return {"valid_loss": float(np.mean(losses)), "valid_mrr": mrr, "valid_r@1": r1}


def _recorded_train_config(checkpoint: dict, run: Path) -> dict:
    """The TrainConfig a checkpoint was written with, as a dict of today's fields.

    Checkpoints from before the loss was a TrainConfig field name it in run.json's
    ``info.variant`` (absent: the paper's hinge loss at the default temperature).
    """
    recorded = dict(checkpoint["train_config"])
    if "loss" not in recorded:
        variant = {}
        if (run / RUN_JSON).is_file():
            variant = json.loads((run / RUN_JSON).read_text()).get("info", {}).get("variant") or {}
        recorded["loss"] = variant.get("loss") or "hinge"
        recorded["temperature"] = variant.get("temperature") or TEMPERATURE
    return recorded


def _cl(x: np.ndarray, device=None) -> torch.Tensor:
    t = torch.from_numpy(x)
    if device is not None and device.type != "cpu":
        t = t.to(device, non_blocking=True)
    return t.contiguous(memory_format=torch.channels_last)


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _read_log(run: Path) -> list:
    path = run / LOG_CSV
    if not path.is_file():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _write_log(run: Path, rows: list, fields=LOG_FIELDS) -> None:
    tmp = run / (LOG_CSV + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, run / LOG_CSV)


def train(train_split, valid_split, run_dir, cfg: TrainConfig, *, model_config: ModelConfig,
          snippet_config, feature_config, info: dict | None = None, progress: bool = True,
          restart: bool = False, init_model=None, device: str = "cpu") -> dict:
    """Train (or resume) a run; returns {"best_epoch", "best_valid_mrr", "epochs", "stopped"}.

    ``init_model``: a DualEncoder (same ModelConfig) to start from instead of random
    weights (warm start; used only when the run starts, not when it resumes). Its
    validation MRR is measured first and counts as epoch 0: the run keeps it as
    best.pt until an epoch beats it, so fine-tuning can never ship worse weights.
    ``device``: where the model trains ("cpu", "cuda"); not a setting of the run, so a run
    started on a GPU machine resumes on a CPU and the other way round.
    """
    from tqdm import tqdm

    loss_fn = make_config_loss(cfg)

    torch.set_num_threads(cfg.threads)
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    n_train = len(train_split.pairs)
    if n_train < cfg.batch_size:
        raise ConfigError(f"{n_train} training pairs; need at least batch_size={cfg.batch_size}")
    if len(valid_split.pairs) < 2:
        raise ConfigError(f"{len(valid_split.pairs)} validation pairs; need at least 2")
    valid_idx = np.sort(np.random.default_rng(cfg.seed + 1).permutation(len(valid_split.pairs))[:cfg.valid_pairs])

    torch.manual_seed(cfg.seed)
    # channels_last: oneDNN's convolutions run faster in that layout on CPUs (docs/benchmarks.md)
    model = DualEncoder(model_config).to(memory_format=torch.channels_last)
    state = {"epoch": 0, "round": 0, "lr": cfg.lr, "best_mrr": -1.0, "best_epoch": None, "bad_epochs": 0,
             "rng": np.random.default_rng(cfg.seed).bit_generator.state, "stopped": None}
    opt = _optimizer(model, cfg, cfg.lr)
    ckpt_path = run / CHECKPOINT
    rows = []
    try:
        dev = torch.device(device)
        torch.empty(1, device=dev)
    except (RuntimeError, AssertionError) as e:
        raise ConfigError(f"device {device!r} is not usable here ({str(e).splitlines()[0]}); "
                          "use --device cpu") from None
    if ckpt_path.is_file() and not restart:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        # the caps may change between sessions (resume a capped run with more time)
        caps = ("max_minutes", "max_epochs")
        same = {k: v for k, v in _recorded_train_config(ck, run).items() if k not in caps} == \
            {k: v for k, v in cfg.to_dict().items() if k not in caps}
        if not same or ModelConfig.from_dict(ck["model_config"]) != model_config:
            raise ConfigError(f"{ckpt_path} was written with other settings; use the same options "
                              "to resume, or --restart to start over")
        model.load_state_dict(ck["model_state"])
        model.to(dev)
        state = ck["state"]
        if state["stopped"] in caps:
            state["stopped"] = None
        opt = _optimizer(model, cfg, state["lr"])
        opt.load_state_dict(ck["optimizer_state"])  # follows the parameters' device
        torch.set_rng_state(ck["torch_rng"])
        rows = _read_log(run)[: state["epoch"]]
        print(f"resuming {run} after epoch {state['epoch']} (best so far: epoch {state['best_epoch']}, "
              f"validation MRR {state['best_mrr']:.3f})")
    elif init_model is not None:
        if init_model.config != model_config:
            raise ConfigError(f"the starting weights are of model {init_model.config.to_dict()}, "
                              f"the run trains {model_config.to_dict()}; they must match")
        model.load_state_dict(init_model.state_dict())
        model = model.to(memory_format=torch.channels_last)
    if not ckpt_path.is_file() or restart:
        model.to(dev)
        opt = _optimizer(model, cfg, cfg.lr)
    (run / RUN_JSON).write_text(json.dumps({"train_config": cfg.to_dict(), "model_config": model_config.to_dict(),
                                            "snippet_config": snippet_config.to_dict(),
                                            "feature_config": feature_config.to_dict(), "info": info or {}},
                                           indent=2) + "\n")
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    t_start = time.monotonic()
    steps = cfg.epoch_pairs // cfg.batch_size

    def save_best():
        _atomic_save({"model_config": model_config.to_dict(), "model_state": model.state_dict(),
                      "snippet_config": snippet_config.to_dict(), "feature_config": feature_config.to_dict(),
                      "training_info": {**(info or {}), "train_config": cfg.to_dict(),
                                        "best_epoch": state["best_epoch"],
                                        "best_valid_mrr": state["best_mrr"]}}, run / BEST)

    if init_model is not None and state["epoch"] == 0 and state["best_epoch"] is None:
        v = validate(model, valid_split, valid_idx, cfg)
        state.update(best_mrr=v["valid_mrr"], best_epoch=0)
        save_best()
        print(f"epoch   0  (starting weights)  valid loss {v['valid_loss']:.3f}  valid MRR {v['valid_mrr']:.3f}",
              flush=True)

    while state["stopped"] is None:
        if state["epoch"] >= cfg.max_epochs:
            state["stopped"] = "max_epochs"
            break
        if cfg.max_minutes and (time.monotonic() - t_start) / 60 > cfg.max_minutes:
            state["stopped"] = "max_minutes"
            break
        t0 = time.monotonic()
        model.train()
        order = rng.choice(n_train, size=steps * cfg.batch_size, replace=n_train < steps * cfg.batch_size)
        losses = []
        bar = tqdm(range(steps), desc=f"epoch {state['epoch'] + 1} (lr {state['lr']:.2g})", leave=False,
                   disable=not progress, unit="batch")
        for b in bar:
            idx = np.sort(order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
            a, s = model(_cl(train_split.audio_batch(idx), dev), _cl(train_split.roll_batch(idx), dev))
            loss = loss_fn(a, s)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.2f}")
        v = validate(model, valid_split, valid_idx, cfg)
        state["epoch"] += 1
        is_best = v["valid_mrr"] > state["best_mrr"]
        if is_best:
            state.update(best_mrr=v["valid_mrr"], best_epoch=state["epoch"], bad_epochs=0)
            save_best()
        else:
            state["bad_epochs"] += 1
        rows.append({"epoch": state["epoch"], "round": state["round"], "lr": state["lr"],
                     "train_loss": float(np.mean(losses)), **v, "seconds": round(time.monotonic() - t0, 1),
                     "best": int(is_best)})
        print(f"epoch {state['epoch']:3d}  round {state['round']}  lr {state['lr']:.2g}  "
              f"train loss {rows[-1]['train_loss']:.3f}  valid loss {v['valid_loss']:.3f}  "
              f"valid MRR {v['valid_mrr']:.3f}{'  *best*' if is_best else ''}  ({rows[-1]['seconds']} s)",
              flush=True)
        if state["bad_epochs"] >= cfg.patience:
            if state["round"] >= cfg.refinements:
                state["stopped"] = "early_stopping"
            else:  # refinement round: back to the best weights, halved learning rate
                best = torch.load(run / BEST, map_location=dev, weights_only=False)
                model.load_state_dict(best["model_state"])
                state.update(round=state["round"] + 1, lr=state["lr"] * cfg.lr_factor, bad_epochs=0)
                opt = _optimizer(model, cfg, state["lr"])
                print(f"no better validation MRR for {cfg.patience} epochs: back to epoch "
                      f"{state['best_epoch']}, learning rate {state['lr']:.2g}")
        state["rng"] = rng.bit_generator.state
        _write_log(run, rows)
        plot_losses(run, rows, state["best_epoch"], loss=cfg.loss, epoch_pairs=cfg.epoch_pairs)
        _atomic_save({"train_config": cfg.to_dict(), "model_config": model_config.to_dict(),
                      "model_state": model.state_dict(), "optimizer_state": opt.state_dict(),
                      "torch_rng": torch.get_rng_state(), "state": state}, ckpt_path)
    # record why training ended, so that a resumed finished run stays finished
    _atomic_save({"train_config": cfg.to_dict(), "model_config": model_config.to_dict(),
                  "model_state": model.state_dict(), "optimizer_state": opt.state_dict(),
                  "torch_rng": torch.get_rng_state(), "state": state}, ckpt_path)
    summary = {"best_epoch": state["best_epoch"], "best_valid_mrr": state["best_mrr"],
               "epochs": state["epoch"], "stopped": state["stopped"]}
    print(f"best epoch: {state['best_epoch']} (validation MRR {state['best_mrr']:.3f}); "
          f"{state['epoch']} epochs, stopped by {state['stopped']}")
    return summary
