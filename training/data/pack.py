"""A built dataset's train and valid splits in one small file, to train where the renders cannot be made.

A GPU machine lent for a long training run has no FluidSynth, no soundfonts and no
corpora, and takes at most 64 MiB of files along. ``pack`` shrinks what training reads:

* spectrograms (float16 log-magnitudes) -> uint8 on one scale for the whole file
  (``round(x / scale * 255)``; the quantisation step, about 0.4 % of the largest value,
  is far below the snippets' own render-to-render variation);
* piano rolls (uint8 0/1, two channels x 88 pitches) -> bits (``np.packbits``);
* then zip compression (``np.savez_compressed``).

If the result is larger than ``max_mb``, whole training renders are left out, the
same ones on every run (smallest hash of the render id kept first), until it fits;
validation is always kept whole, so model selection stays comparable.
``unpack`` writes an ordinary dataset folder (train.npz, valid.npz, dataset.json)
that ``training train`` reads as any other.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from follower.errors import ConfigError

from .corpus import hash_unit

PACKED_SPLITS = ("train", "valid")
FORMAT = 1


def _subset(z: dict, keep: np.ndarray) -> dict:
    """Split arrays restricted to the renders ``keep`` (sorted indices)."""
    so, ro = z["spec_offsets"], z["roll_offsets"]
    specs = [z["spectrograms"][so[r]:so[r + 1]] for r in keep]
    rolls = [z["rolls"][ro[r]:ro[r + 1]] for r in keep]
    remap = np.full(len(so) - 1, -1, np.int64)
    remap[keep] = np.arange(len(keep))
    pairs = z["pairs"][np.isin(z["pairs"][:, 0], keep)].copy()
    pairs[:, 0] = remap[pairs[:, 0]]
    out = dict(z)
    out.update(spectrograms=np.concatenate(specs) if specs else z["spectrograms"][:0],
               rolls=np.concatenate(rolls) if rolls else z["rolls"][:0],
               spec_offsets=np.concatenate([[0], np.cumsum([len(s) for s in specs])]).astype(np.int64),
               roll_offsets=np.concatenate([[0], np.cumsum([len(r) for r in rolls])]).astype(np.int64),
               render_piece=z["render_piece"][keep], render_ids=z["render_ids"][keep],
               tempo_ratio=z["tempo_ratio"][keep], transpose=z["transpose"][keep],
               soundfont=z["soundfont"][keep], pairs=pairs)
    return out


def _encode(split: str, z: dict, scale: float) -> dict:
    out = {}
    for key, value in z.items():
        if key == "spectrograms":
            q = np.round(np.clip(value.astype(np.float32) / scale, 0, 1) * 255).astype(np.uint8)
            out[f"{split}/spectrograms_u8"] = q
        elif key == "rolls":
            out[f"{split}/rolls_bits"] = np.packbits(value.astype(bool), axis=-1)
            out[f"{split}/rolls_shape"] = np.array(value.shape, np.int64)
        else:
            out[f"{split}/{key}"] = value
    return out


def _write(path: Path, arrays: dict) -> int:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    os.replace(tmp, path)
    return path.stat().st_size


def pack(dataset_dir, out_file, *, max_mb: float = 60.0, skip_renders: int = 0) -> dict:
    """Write ``out_file``; returns {"bytes", "renders": {split: (kept, total)}, "pairs": {...}}.

    ``skip_renders``: leave out the first N training renders of the fixed order, i.e. those
    an earlier pack of the same dataset kept when it reported "train renders N of ...": so a
    dataset too large for one carry travels in parts with no render in two of them
    (validation is in every part)."""
    dataset = Path(dataset_dir)
    info_path = dataset / "dataset.json"
    if not info_path.is_file():
        raise ConfigError(f"{dataset}: not a dataset (no dataset.json); build one with `training dataset build`")
    splits = {}
    for split in PACKED_SPLITS:
        path = dataset / f"{split}.npz"
        if not path.is_file():
            raise ConfigError(f"{path} does not exist; the dataset must have train and valid splits")
        with np.load(path, allow_pickle=False) as z:
            splits[split] = {k: z[k] for k in z.files}
    scale = max(float(np.max(s["spectrograms"], initial=0.0)) for s in splits.values()) or 1.0
    train = splits["train"]
    order = np.argsort([hash_unit(f"pack:{r}") for r in train["render_ids"]], kind="stable")
    if not 0 <= skip_renders < len(order):
        raise ConfigError(f"--skip-renders {skip_renders}: the dataset has {len(order)} training renders; "
                          "give a number from 0 to one less than that")
    order = order[skip_renders:]
    n_train = len(order)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    keep_n = n_train
    while True:
        keep = np.sort(order[:keep_n])
        arrays = {"format": np.array(FORMAT), "scale": np.array(scale, np.float64),
                  "dataset_json": np.array(info_path.read_text())}
        arrays.update(_encode("train", _subset(train, keep) if keep_n < len(train["render_ids"]) else train, scale))
        arrays.update(_encode("valid", splits["valid"], scale))
        size = _write(out, arrays)
        if size <= max_mb * 2 ** 20 or keep_n == 0:
            break
        # shrink in proportion to the excess, and by at least one render
        keep_n = min(keep_n - 1, int(keep_n * max_mb * 2 ** 20 / size * 0.97))
        keep_n = max(keep_n, 0)
    if size > max_mb * 2 ** 20:
        out.unlink()
        raise ConfigError(f"{dataset}: even the validation split alone packs to {size / 2 ** 20:.0f} MB "
                          f"(> --max-mb {max_mb}); pack a smaller dataset")
    return {"bytes": size, "renders": {"train": (int(keep_n), n_train),
                                       "valid": (len(splits["valid"]["render_ids"]),) * 2},
            "pairs": {"train": int(len(arrays["train/pairs"])), "valid": int(len(arrays["valid/pairs"]))}}


def unpack(packed_file, out_dir) -> dict:
    """Write DATASET (train.npz, valid.npz, dataset.json) from a packed file; returns pair counts."""
    packed = Path(packed_file)
    if not packed.is_file():
        raise ConfigError(f"{packed}: no such packed dataset; make one with `training dataset pack`")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    with np.load(packed, allow_pickle=False) as z:
        if "format" not in z.files or int(z["format"]) != FORMAT:
            raise ConfigError(f"{packed}: not a packed dataset of format {FORMAT}; repack it with this version")
        scale = float(z["scale"])
        for split in PACKED_SPLITS:
            arrays = {}
            for key in z.files:
                if not key.startswith(split + "/"):
                    continue
                name = key.split("/", 1)[1]
                if name == "spectrograms_u8":
                    arrays["spectrograms"] = (z[key].astype(np.float32) * (scale / 255)).astype(np.float16)
                elif name == "rolls_bits":
                    shape = tuple(z[f"{split}/rolls_shape"])
                    arrays["rolls"] = np.unpackbits(z[key], axis=-1, count=shape[-1]).reshape(shape)
                elif name != "rolls_shape":
                    arrays[name] = z[key]
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            (out / f"{split}.npz").write_bytes(buf.getvalue())
            counts[split] = int(len(arrays["pairs"]))
        info = json.loads(str(z["dataset_json"]))
    info["packed_from"] = {"file": str(packed.resolve()), "spectrogram_scale": scale}
    (out / "dataset.json").write_text(json.dumps(info, indent=2, default=str))
    return counts
