"""Fine-tune the score encoder's last block for shared-trunk index builds (follower.score_trunk).

The bundle's score encoder is cut before its third pooling: the **trunk** (its
first layers, unchanged) runs once over a whole piece, and the **head** (the rest)
embeds each snippet from the trunk's columns. With the full encoder's own head
those embeddings drift from the windows' own (the trunk's edge columns see the
music beyond the window where the window alone saw zero padding). The head is
fine-tuned so that head(columns in context) reproduces the full encoder's
embedding of the window alone (cosine loss): the index stays in the space the
bundle's audio encoder was trained for, and only the head's weights change.

Windows come from the corpora's *train* pieces (validation pieces for the check;
test pieces never), ``windows_per_piece`` at random starts of each piece.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from follower.config import JsonConfig
from follower.errors import BadMidiError, ConfigError


@dataclass(frozen=True)
class SharedHeadConfig(JsonConfig):
    corpora: tuple = ()
    windows_per_piece: int = 60         # random starts per piece
    max_train_windows: int = 40_000
    max_valid_windows: int = 3_000
    epochs: int = 8
    lr: float = 1e-4                    # small: the head starts from the full encoder's weights
    batch: int = 128
    trunk_pools: int = 2                # the trunk ends before the encoder's third pooling (stride 4)
    seed: int = 0

    def __post_init__(self):
        for name in ("windows_per_piece", "max_train_windows", "max_valid_windows", "epochs", "batch", "trunk_pools"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be a positive integer")


def split_encoder(score_onnx, trunk_pools: int):
    """(trunk, head) ONNX models of a score encoder cut before its ``trunk_pools + 1``-th pooling.

    Both take any width on the time axis; their weights are the encoder's."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(score_onnx))
    nodes = list(model.graph.node)
    pools = [i for i, n in enumerate(nodes) if n.op_type == "MaxPool"]
    if len(pools) <= trunk_pools:
        raise ConfigError(f"{score_onnx}: {len(pools)} poolings, cannot cut before pooling {trunk_pools + 1}")
    cut = pools[trunk_pools]
    cut_name = nodes[cut].input[0]
    roll_in = model.graph.input[0]
    n_in = roll_in.type.tensor_type.shape.dim[1].dim_value
    n_pitch = roll_in.type.tensor_type.shape.dim[2].dim_value

    def sub(ns, inp, out, name):
        used = {x for n in ns for x in n.input}
        graph = helper.make_graph(ns, name, [inp], [out], [t for t in model.graph.initializer if t.name in used])
        return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)

    trunk_nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in nodes[:cut]]
    for n in trunk_nodes:
        n.output[:] = ["columns" if x == cut_name else x for x in n.output]
    trunk = sub(trunk_nodes, helper.make_tensor_value_info(roll_in.name, TensorProto.FLOAT, ["n", n_in, n_pitch, "t"]),
                helper.make_tensor_value_info("columns", TensorProto.FLOAT, ["n", "c", "p", "u"]), "score_trunk")
    head_nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in nodes[cut:]]
    for n in head_nodes:
        n.input[:] = ["columns" if x == cut_name else x for x in n.input]
    head = sub(head_nodes, helper.make_tensor_value_info("columns", TensorProto.FLOAT, ["n", "c", "p", "u"]),
               model.graph.output[0], "score_head")
    return trunk, head


def trunk_geometry(trunk) -> dict:
    """The trunk's stride and receptive-field half-width in frames, from its poolings and kernels."""
    import onnx

    stride, reach = 1, 0
    for node in trunk.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Conv":
            reach += (attrs["kernel_shape"][-1] // 2) * stride
        elif node.op_type == "MaxPool":
            reach += (attrs["kernel_shape"][-1] - 1) * stride
            stride *= attrs["strides"][-1]
    return {"stride_frames": stride, "reach_frames": reach}


def head_module(head):
    """The head as a torch module (convolutions, ELU, max-pooling, mean, length normalisation)
    and the names of the ONNX initialisers its parameters come from, in order."""
    import torch
    from onnx import numpy_helper
    from torch import nn

    inits = {t.name: numpy_helper.to_array(t) for t in head.graph.initializer}
    layers, names = [], []
    for n in head.graph.node:
        if n.op_type == "Conv":
            w = inits[n.input[1]]
            conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=w.shape[2] // 2, bias=len(n.input) > 2)
            conv.weight.data.copy_(torch.from_numpy(w.copy()))
            names.append(n.input[1])
            if len(n.input) > 2:
                conv.bias.data.copy_(torch.from_numpy(inits[n.input[2]].copy()))
                names.append(n.input[2])
            layers.append(conv)
        elif n.op_type == "Elu":
            layers.append(nn.ELU())
        elif n.op_type == "MaxPool":
            layers.append(nn.MaxPool2d(2))
        elif n.op_type == "ReduceMean":
            break
        else:
            raise ConfigError(f"the score head holds a {n.op_type} layer, which training shared-head cannot train")

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)

        def forward(self, x):
            return nn.functional.normalize(self.features(x).mean(dim=(2, 3)), dim=1, eps=1e-8)

    return Head(), names


def head_to_onnx(head, module, names):
    """The head ONNX model with the module's trained weights in place of the encoder's."""
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto.FromString(head.SerializeToString())
    params = [p.detach().numpy().astype(np.float32) for p in module.parameters()]
    new = dict(zip(names, params))
    for i, t in enumerate(out.graph.initializer):
        if t.name in new:
            out.graph.initializer[i].CopyFrom(numpy_helper.from_array(new[t.name], t.name))
    onnx.checker.check_model(out)
    return out


def collect(cfg: SharedHeadConfig, split: str, shared, teacher, snippet_config, frame_rate_hz: float,
            limit: int, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(trunk columns float16, the full encoder's embeddings of the same windows alone) for ``split``."""
    from tqdm import tqdm

    from follower.snippets import cut, roll_input, score_roll

    from ..data.corpus import iter_corpus, load_piece

    rng = np.random.default_rng([cfg.seed, ["train", "valid"].index(split)])
    pieces = [p for spec in cfg.corpora for p in iter_corpus(spec) if p.split == split]
    rng.shuffle(pieces)
    width, n = snippet_config.roll_frames, 0
    cols, emb = [], []
    bar = tqdm(total=limit, desc=f"{split} windows", disable=not progress, dynamic_ncols=True)
    for piece in pieces:
        try:
            roll = score_roll(load_piece(piece), snippet_config, frame_rate_hz)
        except (BadMidiError, ValueError, OSError):
            continue
        if len(roll) < 2:
            continue
        centres = np.sort(rng.integers(0, len(roll), min(cfg.windows_per_piece, len(roll))))
        x = roll_input(roll[None], snippet_config)[0]
        cols.append(shared.window_columns(x, centres - width // 2, width).astype(np.float16))
        emb.append(teacher(roll_input(cut(roll, centres, width), snippet_config)))
        n += len(centres)
        bar.update(len(centres))
        if n >= limit:
            break
    bar.close()
    if not cols:
        raise ConfigError(f"no {split} pieces in {', '.join(map(str, cfg.corpora))}")
    return np.concatenate(cols)[:limit], np.concatenate(emb)[:limit].astype(np.float32)


def cosines(module, cols: np.ndarray, target: np.ndarray, batch: int = 512) -> np.ndarray:
    import torch

    with torch.no_grad():
        z = np.concatenate([module(torch.from_numpy(cols[i:i + batch].astype(np.float32))).numpy()
                            for i in range(0, len(cols), batch)])
    return (z * target).sum(1)


def train_head(cfg: SharedHeadConfig, score_onnx, snippet_config, frame_rate_hz: float, *, log=print,
               progress: bool = True) -> dict:
    """Split the encoder, fine-tune its head; returns the trunk and head ONNX models and what was measured."""
    import onnx
    import torch

    from follower.bundle import Encoder
    from follower.score_trunk import SharedScoreEncoder

    torch.manual_seed(cfg.seed)
    trunk, head = split_encoder(score_onnx, cfg.trunk_pools)
    with tempfile.TemporaryDirectory() as tmp:
        onnx.save(trunk, f"{tmp}/trunk.onnx")
        onnx.save(head, f"{tmp}/head.onnx")
        shared = SharedScoreEncoder(f"{tmp}/trunk.onnx", f"{tmp}/head.onnx", trunk_geometry(trunk), spinning=False)
        teacher = Encoder(score_onnx, spinning=False)
        data = {split: collect(cfg, split, shared, teacher, snippet_config, frame_rate_hz, limit, progress)
                for split, limit in (("train", cfg.max_train_windows), ("valid", cfg.max_valid_windows))}
    module, names = head_module(head)
    (xt, yt), (xv, yv) = data["train"], data["valid"]
    before = cosines(module, xv, yv)
    log(f"{len(xt)} train / {len(xv)} valid windows; the encoder's own head on shared columns: "
        f"valid cosine mean {before.mean():.4f}, 1st percentile {np.percentile(before, 1):.4f}")
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(cfg.seed)
    curve = []
    for epoch in range(cfg.epochs):
        t0, total = time.time(), 0.0
        module.train()
        for i, idx in enumerate(np.array_split(rng.permutation(len(xt)), max(1, len(xt) // cfg.batch))):
            z = module(torch.from_numpy(xt[idx].astype(np.float32)))
            loss = (1 - (z * torch.from_numpy(yt[idx])).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        module.eval()
        c = cosines(module, xv, yv)
        curve.append({"epoch": epoch + 1, "train_loss": round(total / len(xt), 6),
                      "valid_cosine_mean": round(float(c.mean()), 5)})
        log(f"epoch {epoch + 1}: train loss {total / len(xt):.5f}, valid cosine mean {c.mean():.4f}, "
            f"1st percentile {np.percentile(c, 1):.4f} ({time.time() - t0:.0f} s)")
    after = cosines(module, xv, yv)
    measured = {"valid_cosine_mean_before": round(float(before.mean()), 5),
                "valid_cosine_mean": round(float(after.mean()), 5),
                "valid_cosine_p01": round(float(np.percentile(after, 1)), 5),
                "train_windows": len(xt), "valid_windows": len(xv), "curve": curve, "config": cfg.to_dict()}
    return {"trunk": trunk, "head": head_to_onnx(head, module, names), "measured": measured,
            "check": (module, xv[:64].astype(np.float32))}


def add_to_bundle(bundle_dir, out_dir, result: dict) -> dict:
    """Write ``out_dir``: ``bundle_dir`` plus the trunk and the fine-tuned head (``out_dir`` may be
    ``bundle_dir``). The other files are copied unchanged, so every index of the bundle stays valid."""
    import onnx
    import onnxruntime as ort
    import torch

    from follower.bundle import SCORE_HEAD_ONNX, SCORE_ONNX, SCORE_TRUNK_ONNX, copy_bundle, sha256_file, write_config

    out_dir = Path(out_dir)
    cfg = copy_bundle(bundle_dir, out_dir)
    for name, model in ((SCORE_TRUNK_ONNX, result["trunk"]), (SCORE_HEAD_ONNX, result["head"])):
        tmp = out_dir / (name + ".tmp")
        onnx.save(model, str(tmp))
        tmp.replace(out_dir / name)
    module, x = result["check"]
    session = ort.InferenceSession(str(out_dir / SCORE_HEAD_ONNX), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        err = float(np.abs(session.run(None, {"columns": x})[0] - module(torch.from_numpy(x)).numpy()).max())
    info = {**result["measured"], "max_abs_diff_onnx_vs_torch": err, "source_bundle": cfg.fingerprint,
            "trunk": f"{SCORE_ONNX} up to its pooling {result['measured']['config']['trunk_pools'] + 1}"}
    sha = {**cfg.sha256, SCORE_TRUNK_ONNX: sha256_file(out_dir / SCORE_TRUNK_ONNX),
           SCORE_HEAD_ONNX: sha256_file(out_dir / SCORE_HEAD_ONNX)}
    new = type(cfg).from_dict({**cfg.to_dict(), "sha256": sha, "score_from": cfg.score_from or cfg.fingerprint,
                               "shared_trunk": trunk_geometry(result["trunk"]),
                               "training": {**cfg.training, "score_shared": info}})
    write_config(out_dir, new)
    return {**info, "fingerprint": new.fingerprint, "shared_index_fingerprint": new.index_fingerprint_for("shared")}
