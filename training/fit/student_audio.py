"""A narrower audio encoder trained into a bundle's embedding space, for cheaper updates.

The follower embeds one audio window per update, and that CNN is most of an update's
cost (docs/benchmarks.md, "Speed"): about as the square of its width. This module
trains a student of the same architecture at fewer filters (``base_filters``, from
random weights) against the bundle's **fixed** score encoder: InfoNCE to the score
embeddings of the pair, as the encoders were trained, plus ``distill_weight`` times
``1 - cos`` to the bundle's own audio embedding of the same (augmented) window, which
passes on what the wide encoder learned about snippets the score side cannot tell
apart. The score encoder, every index built with it and the partial-window encoder
stay as they are; only ``audio_encoder.onnx`` is replaced (:func:`write_bundle`).

Schedule as ``training train``: epochs of ``epoch_pairs`` random training pairs, early
stopping on the validation MRR (audio -> score and back, the same seeded validation
pairs as ``training train`` uses, so the two logs compare), learning-rate halvings from
the best weights. Resumable: RUN/checkpoint.pt after every epoch, on any device.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.config import JsonConfig
from follower.errors import ConfigError

from ..augment import AugmentsTrainingAudio, checked_tempo_range
from ..model.losses import TEMPERATURE
from .partial_audio import embed_batches as _embed

LOG_FIELDS = ["epoch", "round", "lr", "train_loss", "valid_loss", "valid_mrr", "valid_a2s_mrr", "cos_to_teacher",
              "seconds", "best"]


@dataclass(frozen=True)
class StudentAudioConfig(AugmentsTrainingAudio, JsonConfig):
    base_filters: int = 16          # first block's filters; later blocks 2x, 4x, 4x (the bundle's: 32)
    distill_weight: float = 1.0     # of 1 - cos(student, bundle's audio embedding), beside the InfoNCE
    lr: float = 0.002
    batch: int = 100
    epoch_pairs: int = 10_000
    valid_pairs: int = 2_000
    patience: int = 4               # epochs without a better validation MRR before halving the rate
    refinements: int = 3
    max_epochs: int = 200
    temperature: float = TEMPERATURE
    seed: int = 0
    augment_audio: bool = False     # rooms, microphones and noise (training.augment.acoustic)
    tempo_range: tuple | None = None  # played / rendered tempo of stretched snippets; None: no stretch

    def __post_init__(self):
        for name in ("base_filters", "batch", "epoch_pairs", "valid_pairs", "patience", "max_epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a positive integer")
        if self.batch < 2:
            raise ConfigError(f"batch={self.batch} must be >= 2 (in-batch negatives)")
        if self.distill_weight < 0 or self.refinements < 0:
            raise ConfigError("distill_weight and refinements must not be negative")
        if not (self.lr > 0 and self.temperature > 0):
            raise ConfigError("lr and temperature must be positive")
        if self.tempo_range is not None:
            object.__setattr__(self, "tempo_range", checked_tempo_range(self.tempo_range))





def _validate(student, audio: np.ndarray, score_emb: np.ndarray, teacher_emb: np.ndarray, cfg, device) -> dict:
    import torch

    from ..evaluate.metrics import two_way_retrieval
    from ..model.losses import make_loss

    student.eval()
    a = _embed(student, audio, device)
    metrics, _ = two_way_retrieval(a, score_emb)
    loss_fn = make_loss("infonce", temperature=cfg.temperature)
    losses = [float(loss_fn(torch.from_numpy(a[i:i + cfg.batch]), torch.from_numpy(score_emb[i:i + cfg.batch])))
              for i in range(0, len(a) - cfg.batch + 1, cfg.batch)] or \
        [float(loss_fn(torch.from_numpy(a), torch.from_numpy(score_emb)))]
    return {"valid_loss": float(np.mean(losses)),
            "valid_mrr": (metrics["audio2score"]["mrr"] + metrics["score2audio"]["mrr"]) / 2,
            "valid_a2s_mrr": metrics["audio2score"]["mrr"],
            "cos_to_teacher": float(np.mean(np.sum(a * teacher_emb, axis=1)))}


def train_student_audio(cfg: StudentAudioConfig, bundle_dir, train, valid, run_dir, *, device: str = "cpu",
                        max_minutes: float = 0.0, progress: bool = True, log=print) -> dict:
    """Train (or resume) RUN; returns {"best_epoch", "best", "teacher", "epochs", "stopped"}.

    ``train``/``valid``: ``SplitData`` of the bundle's snippet settings. ``max_minutes`` (0: none)
    ends the call at an epoch boundary; calling again goes on."""
    import torch
    from tqdm import tqdm

    from follower.bundle import read_config

    from ..model.encoders import Encoder
    from ..model.from_onnx import model_from_bundle
    from ..model.losses import make_loss
    from .loop import _atomic_save, _cl, _write_log

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    config = read_config(bundle_dir)
    if len(train.pairs) < cfg.batch or len(valid.pairs) < 2:
        raise ConfigError(f"{len(train.pairs)} train / {len(valid.pairs)} valid pairs; "
                          f"need at least {cfg.batch} (a batch) and 2")
    try:
        dev = torch.device(device)
        torch.empty(1, device=dev)
    except (RuntimeError, AssertionError) as e:
        raise ConfigError(f"device {device!r} is not usable here ({str(e).splitlines()[0]}); use --device cpu") \
            from None
    teacher, _, _, _ = model_from_bundle(bundle_dir)   # eval mode: exactly the bundle's functions
    teacher = teacher.to(dev).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    train = cfg.augmented(train, config.features.frame_rate_hz)   # validation stays as rendered
    # the validation pairs training.fit.loop.train draws, so that the logs compare
    v_idx = np.sort(np.random.default_rng(cfg.seed + 1).permutation(len(valid.pairs))[:cfg.valid_pairs])
    v_audio = valid.audio_batch(v_idx)
    v_score = _embed(teacher.score, valid.roll_batch(v_idx), dev)
    v_teacher = _embed(teacher.audio, v_audio, dev)

    torch.manual_seed(cfg.seed)
    student = Encoder(1, teacher.audio.input_shape, config.embed_dim, cfg.base_filters, "audio").to(dev)
    student = student.to(memory_format=torch.channels_last)
    state = {"epoch": 0, "round": 0, "lr": cfg.lr, "best": None, "best_epoch": None, "bad": 0, "stopped": None,
             "rows": [], "rng": np.random.default_rng(cfg.seed).bit_generator.state}
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    ckpt = run / "checkpoint.pt"
    if ckpt.is_file():
        ck = torch.load(ckpt, map_location="cpu", weights_only=True)   # tensors, numbers and names only
        caps = ("max_epochs",)   # may change between calls, as training train's caps
        if {k: v for k, v in ck["config"].items() if k not in caps} != \
                {k: v for k, v in cfg.to_dict().items() if k not in caps} or ck["bundle"] != config.fingerprint:
            raise ConfigError(f"{ckpt} was written for other settings or another bundle; use the same options "
                              "to resume, or remove the run folder to start over")
        student.load_state_dict(ck["student_state"])
        state = ck["state"]
        if state["stopped"] in caps:
            state["stopped"] = None
        opt = torch.optim.Adam(student.parameters(), lr=state["lr"])
        opt.load_state_dict(ck["optimizer_state"])
        log(f"resuming {run} after epoch {state['epoch']} (best: epoch {state['best_epoch']}, "
            f"validation MRR {state['best'] or 0:.3f})")
    teacher_v = _validate(teacher.audio, v_audio, v_score, v_teacher, cfg, dev)
    if state["epoch"] == 0:
        log(f"the bundle's own audio encoder: validation MRR {teacher_v['valid_mrr']:.3f} "
            f"(audio -> score {teacher_v['valid_a2s_mrr']:.3f}); student of {cfg.base_filters} filters from "
            f"random weights, {len(train.pairs)} training pairs")
    loss_fn = make_loss("infonce", temperature=cfg.temperature)
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    steps = cfg.epoch_pairs // cfg.batch
    t_start = time.monotonic()

    def save(path, payload):
        _atomic_save(payload, path)

    while state["stopped"] is None:
        if state["epoch"] >= cfg.max_epochs:
            state["stopped"] = "max_epochs"
            break
        if max_minutes and (time.monotonic() - t_start) / 60 > max_minutes:
            break   # not a stop of the run: the next call goes on
        t0 = time.monotonic()
        student.train()
        order = rng.choice(len(train.pairs), size=steps * cfg.batch, replace=len(train.pairs) < steps * cfg.batch)
        losses = []
        for b in tqdm(range(steps), desc=f"epoch {state['epoch'] + 1} (lr {state['lr']:.2g})", leave=False,
                      disable=not progress, unit="batch"):
            idx = np.sort(order[b * cfg.batch:(b + 1) * cfg.batch])
            x = _cl(train.audio_batch(idx), dev)
            with torch.no_grad():
                target = teacher.score(_cl(train.roll_batch(idx), dev))
                wide = teacher.audio(x)
            z = student(x)
            loss = loss_fn(z, target)
            if cfg.distill_weight:
                loss = loss + cfg.distill_weight * (1 - (z * wide).sum(dim=1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        v = _validate(student, v_audio, v_score, v_teacher, cfg, dev)
        state["epoch"] += 1
        better = state["best"] is None or v["valid_mrr"] > state["best"]
        if better:
            state.update(best=v["valid_mrr"], best_epoch=state["epoch"], bad=0)
            save(run / "best.pt", {"config": cfg.to_dict(), "bundle": config.fingerprint,
                                   "student_state": student.state_dict(), "measured": {**v, "epoch": state["epoch"]},
                                   "teacher": teacher_v})
        else:
            state["bad"] += 1
        row = {"epoch": state["epoch"], "round": state["round"], "lr": state["lr"],
               "train_loss": float(np.mean(losses)), **v, "seconds": round(time.monotonic() - t0, 1),
               "best": int(better)}
        state["rows"].append(row)
        log(f"epoch {state['epoch']:3d}  round {state['round']}  lr {state['lr']:.2g}  train loss "
            f"{row['train_loss']:.3f}  valid MRR {v['valid_mrr']:.3f} (a->s {v['valid_a2s_mrr']:.3f}, cos to the "
            f"bundle's {v['cos_to_teacher']:.3f}){'  *best*' if better else ''}  ({row['seconds']} s)")
        if state["bad"] >= cfg.patience:
            if state["round"] >= cfg.refinements:
                state["stopped"] = "early_stopping"
            else:   # back to the best weights at half the rate
                best = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
                student.load_state_dict(best["student_state"])
                state.update(round=state["round"] + 1, lr=state["lr"] * 0.5, bad=0)
                opt = torch.optim.Adam(student.parameters(), lr=state["lr"])
                log(f"no better validation MRR for {cfg.patience} epochs: back to epoch {state['best_epoch']}, "
                    f"learning rate {state['lr']:.2g}")
        state["rng"] = rng.bit_generator.state
        _write_log(run, state["rows"], LOG_FIELDS)
        _plot(run, state["rows"], state["best_epoch"], teacher_v["valid_mrr"])
        save(ckpt, {"config": cfg.to_dict(), "bundle": config.fingerprint, "student_state": student.state_dict(),
                    "optimizer_state": opt.state_dict(), "state": state})
    save(ckpt, {"config": cfg.to_dict(), "bundle": config.fingerprint, "student_state": student.state_dict(),
                "optimizer_state": opt.state_dict(), "state": state})
    return {"best_epoch": state["best_epoch"], "best": state["best"], "teacher": teacher_v["valid_mrr"],
            "epochs": state["epoch"], "stopped": state["stopped"]}


def _plot(run: Path, rows: list, best_epoch, teacher_mrr: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(ep, [r["train_loss"] for r in rows], label="train loss (InfoNCE + distillation)")
    ax.plot(ep, [r["valid_loss"] for r in rows], label="validation InfoNCE")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(ep, [r["valid_mrr"] for r in rows], color="tab:green", ls="--", label="validation MRR")
    ax2.axhline(teacher_mrr, color="tab:green", alpha=0.4, label=f"the bundle's encoder ({teacher_mrr:.3f})")
    ax2.set_ylabel("validation MRR")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", ls=":", label=f"best epoch {best_epoch}")
    for prev, row in zip(rows, rows[1:]):   # a refinement round starts where the round number changes
        if int(row["round"]) != int(prev["round"]):
            ax.axvline(int(row["epoch"]) - 0.5, color="tab:red", alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="center right", fontsize=8)
    ax.set_title("student audio encoder against the bundle's fixed score encoder\n"
                 "(red lines: learning rate halved from the best weights)", fontsize=9)
    fig.tight_layout()
    fig.savefig(run / "loss.png", dpi=110)
    plt.close(fig)


def write_bundle(bundle_dir, run_dir, out_dir) -> dict:
    """``out_dir``: ``bundle_dir`` with RUN's best student as ``audio_encoder.onnx`` (float; quantise it
    with ``training quantize``). Score encoder, indexes and partial-window encoder unchanged."""
    import torch

    from follower.bundle import AUDIO_FLOAT_ONNX, AUDIO_ONNX, copy_bundle, read_config, write_config
    from follower.errors import BundleError

    from ..export import replace_audio_encoder
    from ..model.encoders import Encoder

    src = read_config(bundle_dir)
    path = Path(run_dir) / "best.pt"
    if not path.is_file():
        raise BundleError(f"{path} does not exist; train the student first "
                          "(training student-audio BUNDLE -o RUN --dataset DATA)")
    best = torch.load(path, map_location="cpu", weights_only=True)
    if best["bundle"] != src.fingerprint:
        raise BundleError(f"{run_dir} was trained against bundle {best['bundle']}, not {bundle_dir} "
                          f"({src.fingerprint}); give the bundle it was trained against")
    cfg = StudentAudioConfig.from_dict(best["config"])
    shape = (1, src.features.n_bins, src.snippets.audio_frames)
    student = Encoder(1, shape, src.embed_dim, cfg.base_filters, "audio")
    student.load_state_dict(best["student_state"])
    student.eval()
    out_dir = Path(out_dir)
    copy_bundle(bundle_dir, out_dir)
    check = np.random.default_rng(0).gamma(1.0, 0.5, (16,) + shape).astype(np.float32)
    # the wide encoder's float original would be what `training quantize` starts from: not this model's
    err, sha = replace_audio_encoder(student, check, out_dir, AUDIO_ONNX, AUDIO_FLOAT_ONNX, src.sha256)
    measured = {**best["measured"], "teacher": best["teacher"], "config": cfg.to_dict(),
                "source_bundle": src.fingerprint, "max_abs_diff_onnx_vs_torch": err}
    model = {**(src.training.get("model") or {}), "audio_base_filters": cfg.base_filters}
    new = type(src).from_dict({**src.to_dict(), "sha256": sha, "score_from": src.score_from or src.fingerprint,
                               "training": {**src.training, "model": model, "audio_student": measured}})
    write_config(out_dir, new)
    return {**measured, "fingerprint": new.fingerprint}
