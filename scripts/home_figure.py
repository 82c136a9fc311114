"""The figure of the README and of the documentation's home page: the circuit, and digits it generated.

Left: the resistor network of a small RKM in its forward pass (four visible nodes clamped, each
with its inverted copy; three hidden nodes floating, each read by a comparator). Each resistor
is drawn from a hidden node to the visible node or to its inverted copy, as the sign of its
weight says. Right: 40 digits generated from random noise, in the model's own number of Gibbs
steps, by the latest save point of a run folder trained with the demo preset (``make demo``).

Usage (writes ``docs/_static/home.png``, about 1 minute after training)::

    make demo                                   # or any run of `rkm train --preset demo`
    python scripts/home_figure.py runs/demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Circle, Polygon  # noqa: E402

import tomllib  # noqa: E402

import rkm  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "docs" / "_static" / "home.png"
N_DIGITS = 40


def resistor(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], color: str) -> None:
    """A zigzag resistor in the middle third of the segment from ``start`` to ``end``."""
    p, q = np.asarray(start, float), np.asarray(end, float)
    d = q - p
    normal = np.array([-d[1], d[0]]) / np.hypot(*d)
    t = np.linspace(0.35, 0.65, 9)
    zig = p + np.outer(t, d) + np.outer([0, 1, -1, 1, -1, 1, -1, 1, 0], normal) * 0.045
    path = np.vstack([p, zig, q])
    ax.plot(path[:, 0], path[:, 1], color=color, lw=1.1, solid_joinstyle="miter")


def draw_circuit(ax: plt.Axes, W: np.ndarray) -> None:
    """Hidden nodes on top, visible nodes and their inverted copies below, a resistor per weight."""
    n_h, n_v = W.shape
    hx = np.linspace(0.9, 4.1, n_h)
    vx = np.linspace(0.3, 4.7, 2 * n_v)
    for j in range(n_h):
        for i in range(n_v):
            if W[j, i] == 0:
                continue
            target = (vx[2 * i], 0.0) if W[j, i] > 0 else (vx[2 * i + 1], 0.0)
            resistor(ax, (hx[j], 2.0), target, "C0" if W[j, i] > 0 else "C3")
    for i in range(n_v):
        ax.add_patch(Circle((vx[2 * i], 0.0), 0.13, fc="white", ec="black", lw=1.2, zorder=3))
        ax.text(vx[2 * i], -0.38, f"$v_{i + 1}$", ha="center", va="top", fontsize=11)
        ax.add_patch(Circle((vx[2 * i + 1], 0.0), 0.13, fc="0.85", ec="black", lw=1.2, zorder=3))
        ax.text(vx[2 * i + 1], -0.38, rf"$c-v_{i + 1}$", ha="center", va="top", fontsize=9)
    for j in range(n_h):
        ax.add_patch(Circle((hx[j], 2.0), 0.13, fc="white", ec="black", lw=1.2, zorder=3))
        ax.plot([hx[j], hx[j]], [2.13, 2.45], color="black", lw=1.1)
        ax.add_patch(Polygon([[hx[j] - 0.2, 2.45], [hx[j] + 0.2, 2.45], [hx[j], 2.8]], closed=True,
                             fc="white", ec="black", lw=1.1, zorder=3))
        ax.text(hx[j], 2.95, f"$h_{j + 1}$", ha="center", va="bottom", fontsize=11)
    ax.text(2.5, -0.95, "visible nodes clamped (grey: inverted copies)", ha="center", fontsize=9)
    ax.text(4.75, 2.3, "hidden nodes\nfloat, then\ncomparators\nbinarise", ha="left", va="center", fontsize=9)
    ax.plot([], [], color="C0", label=r"$W_{ji} > 0$: to $v_i$")
    ax.plot([], [], color="C3", label=r"$W_{ji} < 0$: to $c - v_i$")
    ax.legend(loc="center left", fontsize=8, frameon=False, bbox_to_anchor=(0.77, 0.3))
    ax.set_xlim(-0.1, 6.0)
    ax.set_ylim(-1.15, 3.35)
    ax.set_aspect("equal")
    ax.axis("off")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder trained with the demo preset")
    parser.add_argument("--seed", type=int, default=0, help="seed of the digits' chains")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    config = tomllib.loads((Path(args.run) / "config.toml").read_text())
    found, model = rkm.load_model(config["run"]["name"], model_state_path=Path(args.run) / "model_states")
    if not found:
        parser.error(f"no save point in {args.run}/model_states: train it first (make demo)")
    k = int(config["run"]["generate_k"])
    model.generator.manual_seed(args.seed)
    digits = model.generate(N_DIGITS, k)

    rng = np.random.default_rng(3)
    W = np.round(rng.normal(size=(3, 4)), 2)
    W[0, 2] = W[2, 0] = 0.0

    fig = plt.figure(figsize=(9.6, 3.4))
    left = fig.add_axes((0.0, 0.02, 0.5, 0.96))
    right = fig.add_axes((0.53, 0.08, 0.46, 0.8))
    draw_circuit(left, W)
    right.imshow(rkm.make_grid(digits, nrow=8, padding=1), cmap="gray", interpolation="nearest")
    right.set_title(f"{N_DIGITS} digits generated from noise in {k} Gibbs steps\n"
                    f"(RKM of {model.n_hidden} hidden units trained by make demo)", fontsize=10)
    right.axis("off")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
