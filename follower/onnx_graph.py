"""The encoders' graphs rewritten into cheaper equivalents before onnxruntime loads them.

Profiled on one core (onnxruntime 1.32, the shipped int8 audio encoder, one window),
onnxruntime's ``Elu`` kernel took 350 of the 800 us of a call: more than the nine
convolutions (290 us). Two rewrites remove most of it without changing what the
encoders compute:

* **Max-pooling before the activation.** ``Elu`` is increasing, so ``MaxPool(Elu(x))``
  equals ``Elu(MaxPool(x))`` bit for bit, and the activation then runs on a quarter of
  the values (2 x 2 pools). In a quantised (QDQ) graph the pooling moves before the
  ``DequantizeLinear`` too: quantisation is non-decreasing, so pooling the 8-bit tensor
  picks the same values, and the pooled 8-bit tensor is what gets dequantised.
* **Elu from vectorised kernels, in quantised graphs only:** ``Max(x, Exp(Min(x, 0)) - 1)``
  (for x > 0 the exponential term is 0 < x; for x <= 0, e^x - 1 >= x). Its exponential
  is not onnxruntime's ``Elu`` exponential, so values can differ in the last bit; where the
  result is quantised to 8 bits right after (a ``DequantizeLinear -> Elu -> QuantizeLinear``
  chain), that never changed an output in the checks of ``tests/follower/test_onnx_graph.py``.
  Float graphs keep their ``Elu`` so that their outputs stay bit-identical.

On the shipped bundle the int8 audio encoder goes from ~0.69 to ~0.45 ms a window and
the float ones by 15-25 % (docs/improvements.md (uu)). The files on disk
are untouched: the bundle's checksums, its fingerprint and its indexes' stay what they were.
Needs the ``onnx`` package (its protobuf classes); a graph it cannot read or rewrite, or whose
rewrite onnxruntime refuses, is loaded as it is.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_FLOAT = 1  # TensorProto.FLOAT
_proto = None  # the module of onnx's generated protobuf classes, once loaded


def proto():
    """onnx's protobuf classes (``ModelProto``, ``NodeProto``, ...), without ``import onnx``.

    ``import onnx`` took 0.55 s here (onnx 1.23), nearly all of it
    importing ml_dtypes for the tensor types it maps, which the rewrite never uses: paid at
    every start of ``follower replay``. The classes themselves are one generated file of the
    package, loaded alone in 0.03 s; where that file is not found, the package is imported.
    """
    global _proto
    if _proto is None:
        spec = importlib.util.find_spec("onnx")  # (finds the package without importing it)
        path = Path(next(iter(spec.submodule_search_locations or []), "")) / "onnx_ml_pb2.py" if spec else None
        if path is not None and path.is_file():
            alone = importlib.util.spec_from_file_location("follower._onnx_ml_pb2", path)
            module = importlib.util.module_from_spec(alone)
            alone.loader.exec_module(module)
            _proto = module
        else:
            import onnx

            _proto = onnx
    return _proto


def _attrs(node) -> dict:
    """A node's integer, float and integer-list attributes by name (the only kinds looked at here)."""
    out = {}
    for a in node.attribute:
        if a.ints:
            out[a.name] = list(a.ints)
        elif a.type == a.FLOAT:
            out[a.name] = a.f
        elif a.type == a.INT:
            out[a.name] = a.i
    return out


def _node(op_type: str, inputs: list, outputs: list):
    return proto().NodeProto(op_type=op_type, input=inputs, output=outputs)


def _scalar(name: str, value: float):
    return proto().TensorProto(name=name, data_type=_FLOAT, raw_data=np.float32(value).tobytes())


def _links(nodes) -> tuple[dict, dict]:
    """(tensor name -> the node that makes it, tensor name -> the nodes that read it)."""
    made_by = {o: n for n in nodes for o in n.output}
    users: dict = {}
    for n in nodes:
        for i in n.input:
            users.setdefault(i, []).append(n)
    return made_by, users


def pool_before_elu(graph) -> int:
    """Move each ``Elu -> MaxPool`` pooling before the activation (and before the
    ``DequantizeLinear`` feeding it, if any); the number moved."""
    nodes = list(graph.node)
    made_by, users = _links(nodes)
    outputs = {o.name for o in graph.output}
    after: dict = {}  # id(node) -> the poolings to place right after it ("" key: before every node)
    for elu in [n for n in nodes if n.op_type == "Elu"]:
        nxt = users.get(elu.output[0], [])
        if len(nxt) != 1 or nxt[0].op_type != "MaxPool" or elu.output[0] in outputs:
            continue
        pool = nxt[0]
        a = _attrs(pool)
        if (len(pool.output) != 1 or any(a.get("pads", [])) or a.get("ceil_mode", 0)
                or any(d != 1 for d in a.get("dilations", []))):
            continue  # only plain pools: a padded one would pool its padding differently on 8 bits
        head, src = elu, elu.input[0]
        dq = made_by.get(src)
        if dq is not None and dq.op_type == "DequantizeLinear" and len(users[src]) == 1:
            head, src = dq, dq.input[0]  # pool the quantised tensor
        if len(users.get(src, [])) != 1 or src in outputs:
            continue
        pooled_out = pool.output[0]
        pool.input[0] = src
        pool.output[0] = src + "/pooled_first"
        head.input[0] = pool.output[0]
        elu.output[0] = pooled_out
        after.setdefault(id(made_by[src]) if src in made_by else "", []).append(pool)
    moved = {id(p) for pools in after.values() for p in pools}
    order = list(after.get("", []))
    for n in nodes:
        if id(n) not in moved:
            order.append(n)
            order += after.get(id(n), [])
    del graph.node[:]
    graph.node.extend(order)
    return len(moved)


def quantised_elu_from_exp(graph) -> int:
    """Each ``DequantizeLinear -> Elu(alpha=1) -> QuantizeLinear`` Elu as ``Max(x, Exp(Min(x, 0)) - 1)``;
    the number rewritten."""
    made_by, users = _links(graph.node)
    order, count = [], 0
    for n in graph.node:
        src = made_by.get(n.input[0]) if n.input else None
        dst = users.get(n.output[0], []) if n.output else []
        if (n.op_type != "Elu" or _attrs(n).get("alpha", 1.0) != 1.0 or src is None
                or src.op_type != "DequantizeLinear" or len(dst) != 1 or dst[0].op_type != "QuantizeLinear"):
            order.append(n)
            continue
        x, y = n.input[0], n.output[0]
        order += [_node("Min", [x, "elu/zero"], [y + "/neg"]),
                  _node("Exp", [y + "/neg"], [y + "/exp"]),
                  _node("Sub", [y + "/exp", "elu/one"], [y + "/expm1"]),
                  _node("Max", [x, y + "/expm1"], [y])]
        count += 1
    if count:
        graph.initializer.extend([_scalar("elu/zero", 0.0), _scalar("elu/one", 1.0)])
        del graph.node[:]
        graph.node.extend(order)
    return count


def cheaper(model_bytes: bytes) -> bytes | None:
    """``model_bytes`` rewritten as above, or None where nothing was rewritten (or it could not be)."""
    try:
        model = proto().ModelProto()
        model.ParseFromString(model_bytes)
        changed = pool_before_elu(model.graph) + quantised_elu_from_exp(model.graph)
        return model.SerializeToString() if changed else None
    except Exception:  # noqa: BLE001  (an unexpected graph runs as exported: slower, never wrong)
        return None
