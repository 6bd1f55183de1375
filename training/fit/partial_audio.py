"""An audio encoder for partly filled windows, in the bundle's embedding space.

When music starts, the follower's window fills from silence, and the bundle's audio
encoder, trained on full windows, finds little in one that is half silent (test
chorales, audio -> score MRR among 2,000 snippets: 0.80 full, 0.06 with half of the
window sounding, 0.01 with 30 %; ``python -m studies.partial_windows``). This module
fine-tunes a copy of the audio encoder on such windows only (the first frames of each
training snippet silenced, 30-100 % of it kept; :mod:`training.augment.partial`)
against the bundle's **fixed** score embeddings (InfoNCE): the score encoder, the
index and the full-window encoder stay as they are, and the engine embeds a window
with the copy only while its first frames are silent (``EngineConfig.partial_min_silent_s``).
Half of the windows stand for a piece's start (``p_piece_start``): their score snippet
is silenced where the audio is, as the index's first snippets of each piece are
zero-padded; trained on mid-piece windows alone, the copy lost what the full-window
encoder did well at a piece's first notes (docs/improvements.md (w)).

Pairs come from a built dataset's train split (validation split for the check and the
choice of the best epoch; test never). Resumable: a checkpoint after every epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.config import JsonConfig
from follower.errors import ConfigError

from ..augment import AugmentsTrainingAudio, checked_tempo_range
from ..augment.partial import keep_last as fixed_partial  # (the name the trainer and its tests use)
from ..model.losses import TEMPERATURE

VALID_SHARES = (0.3, 0.5, 0.7)   # sounding shares the validation MRR averages (mid-piece) ...
START_SHARES = (0.5, 0.7)        # ... and at a piece's start (the score snippet as silent as the audio)


@dataclass(frozen=True)
class PartialAudioConfig(AugmentsTrainingAudio, JsonConfig):
    min_sounding: float = 0.3       # the engine's min_sound_fraction: emptier windows never vote
    # share of the windows that are a piece's start: the score snippet is silent where the audio is (the
    # index's first snippets of a piece are zero-padded so); the rest enter the music mid-piece
    p_piece_start: float = 0.5
    epochs: int = 12
    patience: int = 3               # epochs without a better validation MRR before stopping
    lr: float = 1e-4                # small: the copy starts from the full-window encoder
    batch: int = 100
    temperature: float = TEMPERATURE  # of the InfoNCE loss (the training default)
    seed: int = 0
    # played / rendered tempo of the stretched training snippets (training.augment.tempo), None: no
    # stretch. Real players start slower or faster than the MIDI (Bach10: 0.6-0.8 of it), and the
    # first windows of a piece are the ones the lock waits on
    tempo_range: tuple | None = None
    augment_audio: bool = False     # rooms, microphones and noise (training.augment.acoustic)

    def __post_init__(self):
        for name in ("epochs", "patience", "batch"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a positive integer")
        if not 0 < self.min_sounding <= 1:
            raise ConfigError(f"min_sounding={self.min_sounding!r} must be in (0, 1]")
        if not 0 <= self.p_piece_start <= 1:
            raise ConfigError(f"p_piece_start={self.p_piece_start!r} must be a probability in [0, 1]")
        if self.tempo_range is not None:
            object.__setattr__(self, "tempo_range", checked_tempo_range(self.tempo_range))


def silent_frames(x: np.ndarray) -> np.ndarray:
    """Per snippet of an audio batch (n, 1, bins, frames): how many of its first frames are all 0."""
    sounding = (x[:, 0] != 0).any(axis=1)                          # (n, frames)
    return np.where(sounding.any(axis=1), sounding.argmax(axis=1), x.shape[3])


def silence_rolls(roll: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """Copy of a roll batch (n, channels, pitches, frames) with the first ``lead[i]`` frames of each set to 0."""
    out = np.array(roll, dtype=np.float32, copy=True)
    for i, k in enumerate(lead):
        out[i, ..., :k] = 0.0
    return out


def embed_batches(encoder, x: np.ndarray, device="cpu", batch: int = 500) -> np.ndarray:
    """``encoder``'s embeddings of ``x`` (numpy), in batches, on ``device``."""
    import torch

    with torch.no_grad():
        return np.concatenate([encoder(torch.from_numpy(x[i:i + batch]).to(device)).cpu().numpy()
                               for i in range(0, len(x), batch)])


def valid_mrr(encoder, sets: dict) -> dict:
    """Audio -> score MRR of each validation set {label: (partial audio windows, their score embeddings)}."""
    from ..evaluate.metrics import two_way_retrieval

    encoder.eval()
    out = {label: two_way_retrieval(embed_batches(encoder, a), s)[0]["audio2score"]["mrr"] for label, (a, s) in sets.items()}
    out["mean"] = float(np.mean(list(out.values())))
    return out


def train_partial_audio(cfg: PartialAudioConfig, bundle_dir, train, valid, checkpoint: Path, *,
                        log=print, progress: bool = True) -> dict:
    """Fine-tune the copy on the pairs of the ``train`` split, choosing the epoch on ``valid``
    (``SplitData`` of the bundle's snippet settings: :func:`training.data.split.load_split`);
    returns {"encoder": the best torch audio encoder, "measured": ...}."""
    import torch
    from tqdm import tqdm

    from follower.bundle import SCORE_ONNX, Encoder, read_config

    from ..augment.partial import PartialWindowConfig, silence_start
    from ..model.from_onnx import model_from_bundle
    from ..model.losses import make_loss

    config = read_config(bundle_dir)
    train = cfg.augmented(train, config.features.frame_rate_hz)  # validation stays as rendered
    if len(train.pairs) < cfg.batch or len(valid.pairs) < 2:
        raise ConfigError(f"{len(train.pairs)} train / {len(valid.pairs)} valid pairs; "
                          f"need at least {cfg.batch} (a batch) and 2")
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    partial = PartialWindowConfig(p_partial=1.0, min_sounding=cfg.min_sounding)
    calib = np.sort(rng.choice(len(train.pairs), min(500, len(train.pairs)), replace=False))
    model, _, _, _ = model_from_bundle(bundle_dir, calibration={
        "audio": silence_start(train.audio_batch(calib), rng, partial), "roll": train.roll_batch(calib)})
    audio = model.audio
    # the fixed targets: the bundle's own score embeddings (its ONNX encoder, as the index holds them)
    score = Encoder(Path(bundle_dir) / SCORE_ONNX)
    every = np.arange(len(train.pairs))
    target = np.concatenate([score(train.roll_batch(every[i:i + 1000])) for i in range(0, len(every), 1000)])
    v_idx = np.arange(len(valid.pairs))
    v_roll = valid.roll_batch(v_idx)
    v_all = valid.audio_batch(v_idx)
    mid = score(v_roll)
    v_sets = {f"{s:g}": (fixed_partial(v_all, np.full(len(v_idx), s)), mid) for s in VALID_SHARES}
    for s in START_SHARES:  # a piece's start: the score snippet as silent as the audio
        a = fixed_partial(v_all, np.full(len(v_idx), s))
        v_sets[f"{s:g} start"] = (a, score(silence_rolls(v_roll, silent_frames(a))))
    loss_fn = make_loss("infonce", temperature=cfg.temperature)
    opt = torch.optim.Adam(audio.parameters(), lr=cfg.lr)
    state = {"epoch": 0, "best": None, "best_epoch": 0, "bad": 0, "curve": []}
    if checkpoint.is_file():
        ck = torch.load(checkpoint, map_location="cpu", weights_only=True)  # tensors, numbers and names only
        cap = ("epochs",)   # a stopped run may be given more epochs; any other change is another run
        if {k: v for k, v in ck["config"].items() if k not in cap} != \
                {k: v for k, v in cfg.to_dict().items() if k not in cap} or ck["bundle"] != config.fingerprint:
            raise ConfigError(f"{checkpoint} was written for other settings or another bundle; remove it "
                              "to start over (only --epochs may change)")
        audio.load_state_dict(ck["audio_state"])
        opt.load_state_dict(ck["optimizer_state"])
        state = ck["state"]
        rng.bit_generator.state = ck["rng"]
        log(f"resuming after epoch {state['epoch']} (best: epoch {state['best_epoch']}, "
            f"validation MRR {state['best']['mean']:.3f})")
    else:
        before = valid_mrr(audio, v_sets)
        state.update(best=before, best_epoch=0, best_state={k: v.clone() for k, v in audio.state_dict().items()})
        state["curve"].append({"epoch": 0, **before})
        log(f"epoch 0 (the full-window encoder): validation MRR with "
            + ", ".join(f"{k} sounding {v:.3f}" for k, v in before.items() if k != "mean"))
    while state["epoch"] < cfg.epochs and state["bad"] < cfg.patience:
        t0, total = time.time(), 0.0
        audio.train()
        order = rng.permutation(len(train.pairs))
        batches = [np.sort(order[i:i + cfg.batch]) for i in range(0, len(order) - cfg.batch + 1, cfg.batch)]
        for idx in tqdm(batches, desc=f"epoch {state['epoch'] + 1}", leave=False, disable=not progress):
            x = silence_start(train.audio_batch(idx), rng, partial)
            y = target[idx].copy()
            start = np.flatnonzero(rng.random(len(idx)) < cfg.p_piece_start)
            if len(start):  # a piece's start: the score snippet is silent where the audio is
                y[start] = score(silence_rolls(train.roll_batch(idx[start]), silent_frames(x[start])))
            loss = loss_fn(audio(torch.from_numpy(x)), torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        m = valid_mrr(audio, v_sets)
        state["epoch"] += 1
        better = m["mean"] > state["best"]["mean"]
        if better:
            state.update(best=m, best_epoch=state["epoch"], bad=0,
                         best_state={k: v.clone() for k, v in audio.state_dict().items()})
        else:
            state["bad"] += 1
        state["curve"].append({"epoch": state["epoch"], "train_loss": total / (len(batches) * cfg.batch), **m})
        log(f"epoch {state['epoch']}: train loss {total / (len(batches) * cfg.batch):.3f}, validation MRR "
            + ", ".join(f"{k} sounding {v:.3f}" for k, v in m.items() if k != "mean")
            + f"{'  *best*' if better else ''} ({time.time() - t0:.0f} s)")
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"config": cfg.to_dict(), "bundle": config.fingerprint, "audio_state": audio.state_dict(),
                    "optimizer_state": opt.state_dict(), "state": state, "rng": rng.bit_generator.state}, tmp)
        tmp.replace(checkpoint)
    audio.load_state_dict(state["best_state"])
    audio.eval()
    measured = {"best_epoch": state["best_epoch"], "valid_mrr": state["best"],
                "valid_mrr_full_window_encoder": state["curve"][0], "curve": state["curve"],
                "train_pairs": int(len(train.pairs)), "valid_pairs": int(len(valid.pairs)), "config": cfg.to_dict(),
                "check": v_sets[f"{VALID_SHARES[1]:g}"][0][:16]}
    return {"encoder": audio, "measured": measured}


def add_to_bundle(bundle_dir, out_dir, result: dict) -> dict:
    """Write ``out_dir``: ``bundle_dir`` plus ``audio_encoder.partial.onnx`` (``out_dir`` may be
    ``bundle_dir``). The score encoder is untouched, so the bundle's indexes stay valid; the
    bundle's fingerprint changes, since the follower's decisions do."""
    from follower.bundle import AUDIO_PARTIAL_FLOAT_ONNX, AUDIO_PARTIAL_ONNX, copy_bundle, write_config

    from ..export import replace_audio_encoder

    out_dir = Path(out_dir)
    cfg = copy_bundle(bundle_dir, out_dir)
    measured = dict(result["measured"])
    check = measured.pop("check")
    encoder = result["encoder"].eval()
    # the float original of an earlier encoder's int8 copy is stale now (training quantize starts from it)
    err, sha = replace_audio_encoder(encoder, check, out_dir, AUDIO_PARTIAL_ONNX, AUDIO_PARTIAL_FLOAT_ONNX, cfg.sha256)
    new = type(cfg).from_dict({**cfg.to_dict(), "sha256": sha, "score_from": cfg.score_from or cfg.fingerprint,
                               "training": {**cfg.training, "audio_partial": {**measured,
                                                                              "max_abs_diff_onnx_vs_torch": err,
                                                                              "source_bundle": cfg.fingerprint}}})
    write_config(out_dir, new)
    return {**measured, "fingerprint": new.fingerprint, "max_abs_diff_onnx_vs_torch": err}
