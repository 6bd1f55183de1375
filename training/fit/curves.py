"""RUN/loss.png: the training curves of a run, redrawn after every epoch from RUN/log.csv rows."""

from __future__ import annotations

from pathlib import Path

from ..model.losses import LOSSES
from ..run_dir import LOSS_PNG


def loss_figure(rows: list, best_epoch: int | None, *, loss: str = "hinge", epoch_pairs: int = 10_000):
    """Train and validation loss per epoch (axis named after ``loss``), validation MRR on a
    second axis, the best epoch and the starts of the refinement rounds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(ep, [float(r["train_loss"]) for r in rows], label="train loss")
    ax.plot(ep, [float(r["valid_loss"]) for r in rows], label="validation loss")
    ax.set_xlabel(f"epoch ({epoch_pairs:,} pairs)")
    ax.set_ylabel(LOSSES[loss])
    ax2 = ax.twinx()
    ax2.plot(ep, [float(r["valid_mrr"]) for r in rows], color="tab:green", ls="--", label="validation MRR")
    ax2.set_ylabel("validation MRR")
    if best_epoch is not None:
        ax.axvline(best_epoch, color="grey", ls=":", label=f"best epoch {best_epoch}")
    for r in rows:  # refinement rounds start where the round number changes
        if int(r["round"]) > 0 and int(r["epoch"]) > 1 and rows[int(r["epoch"]) - 2]["round"] != r["round"]:
            ax.axvline(int(r["epoch"]) - 0.5, color="tab:red", alpha=0.3)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=8)
    ax.set_title("training curves (red lines: learning rate halved from the best weights)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_losses(run, rows: list, best_epoch: int | None, *, loss: str = "hinge", epoch_pairs: int = 10_000) -> None:
    import matplotlib.pyplot as plt

    fig = loss_figure(rows, best_epoch, loss=loss, epoch_pairs=epoch_pairs)
    fig.savefig(Path(run) / LOSS_PNG, dpi=110)
    plt.close(fig)
