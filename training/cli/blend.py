"""``training blend A B -o RUN``: a run whose weights lie between two runs of one architecture."""

from __future__ import annotations

import argparse

EPILOG = """\
Fine-tuning on rendered audio keeps improving the rendered tests long after the real
recordings stop gaining; averaging the fine-tuned weights with their starting point
(Wortsman et al. 2022, "Robust fine-tuning of zero-shot models", WiSE-FT) is the
standard way to keep some of both. docs/improvements.md (gg) measured it:

  training import exported/default -o runs/shipped
  training blend runs/shipped runs/gA --weight 0.5 -o runs/wA50
  training evaluate runs/shipped runs/wA50 --compare --dataset data/v2-test-chorales3 --bach10-scales 1.0
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "blend", help="average two runs' weights (a fine-tune with its starting point)",
        description="Write RUN/best.pt with every weight (1 - W) * A + W * B, the BatchNorm statistics "
                    "too; A and B must be runs of the same model settings (a run fine-tuned with "
                    "--init-from from the other, typically). `training evaluate` and `training export` "
                    "then read RUN like any run.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="first run folder (weight 1 - W), e.g. the starting point")
    p.add_argument("b", help="second run folder (weight W), e.g. the fine-tuned run")
    p.add_argument("--weight", type=float, default=0.5, help="W, the share of B (default 0.5)")
    p.add_argument("-o", "--out", required=True, help="run folder to write")
    p.set_defaults(func=run)


def blend_states(a: dict, b: dict, weight: float) -> dict:
    """``(1 - weight) * a + weight * b`` for floating tensors; integer ones (counters) are B's."""
    if set(a) != set(b):
        raise ValueError(f"the runs hold different layers ({sorted(set(a) ^ set(b))[:3]} ...)")
    out = {}
    for name, wb in b.items():
        wa = a[name]
        if wa.shape != wb.shape:
            raise ValueError(f"layer {name} has shape {tuple(wa.shape)} in one run and {tuple(wb.shape)} in the other")
        out[name] = ((1.0 - weight) * wa.double() + weight * wb.double()).to(wb.dtype) if wb.is_floating_point() else wb
    return out


def run(args) -> int:
    from follower.errors import ConfigError

    from ..run_dir import load_best, write_run

    if not 0.0 <= args.weight <= 1.0:
        raise ConfigError(f"--weight {args.weight}: give a share of B between 0 and 1")
    (ma, sa, fa, ia), (mb, sb, fb, ib) = load_best(args.a), load_best(args.b)
    if (ma.config, sa, fa) != (mb.config, sb, fb):
        raise ConfigError(f"{args.a} and {args.b} differ in model, snippet or feature settings; "
                          "blend only runs of one architecture (a fine-tune and its starting point)")
    try:
        state = blend_states(ma.state_dict(), mb.state_dict(), args.weight)
    except ValueError as e:
        raise ConfigError(f"{args.a} and {args.b} cannot be blended: {e}") from e
    info = dict(ib, blend={"a": str(args.a), "b": str(args.b), "weight_b": args.weight, "a_info": ia})
    best = write_run(args.out, mb, sb, fb, info, state=state)
    print(f"wrote {best}: {1 - args.weight:g} x {args.a} + {args.weight:g} x {args.b}")
    return 0
