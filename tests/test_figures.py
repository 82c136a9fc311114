"""Every figure rkm writes, as a physicist would show it: each drawn axes has data and labels with units.

The figures are caught where rkm writes them (``rkm.plots.save``) while the commands run: a
training run's five figures (bars-and-stripes without quality during training, MNIST digits
with it), ``rkm plot``, ``rkm energy`` (a scaling study and a trained model's one size), a
sweep's ``summary.png``, and the seed API's ``plot_weights`` / ``plot_visible_bias`` /
``plot_bias``. For each: every axes has data; a plot's axes has an x and a y label; a power,
energy, time or parameter is labelled with its unit, one unit per quantity in a figure; a colour
bar is labelled; log axes have at least two labelled major ticks, unlabelled minor ticks and no
overlapping labels. A grid of images needs no axis labels (its axes count pixels).
"""

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

import rkm
from rkm import plots
from rkm.app import sweep
from rkm.app._cli import main
from rkm.app._sweep_results import PLOTTED

UNITS = {"power": "W", "energy": "J", "time": "s"}
"""Quantities with an SI unit (rkm.core.units): a label naming one ends with its unit, or '(code units)'."""
PARAMETERS = ("weight", "bias")
"""Circuit parameters rkm shows in code units: a label naming one says so."""
BARS = ["--preset", "bars", "--max-epochs", "30", "--log-every", "10", "--generate-k", "3", "--n-generate", "8",
        "--n-eval", "8", "--no-progress"]


def _recorder(figures, save):
    def record(fig, path):
        figures.setdefault(str(path).rsplit("/", 1)[-1], []).append(fig)
        save(fig, path)

    return record


@pytest.fixture
def written(monkeypatch):
    """The figures rkm writes while the test runs, by file name (drawn and checked after the command)."""
    figures: dict[str, list] = {}
    monkeypatch.setattr(plots, "save", _recorder(figures, plots.save))
    return figures


@pytest.fixture(scope="module")
def bars(tmp_path_factory):
    """A bars-and-stripes run (16 visible x 32 hidden units, quality on its last row only) and the figures it wrote."""
    run = tmp_path_factory.mktemp("figures") / "bars"
    figures: dict[str, list] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plots, "save", _recorder(figures, plots.save))
        assert main(["train", *BARS, "--run-dir", str(run)]) == 0
    return run, figures


def _has_data(ax) -> bool:
    lines = any(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any() for line in ax.get_lines())
    points = any(len(c.get_offsets()) for c in ax.collections)
    return lines or points or bool(ax.images) or bool(ax.patches)


def _unit(label: str) -> str | None:
    found = re.search(r"\(([^()]*)\)$", label)
    return found.group(1) if found else None


def _tick_labels(axis, which):
    return [t for t in axis.get_ticklabels(which=which) if t.get_visible() and t.get_text()]


def check_figure(fig, name):
    """Assert the rules above for ``fig`` (``name`` says which figure failed); returns its axis labels."""
    canvas = FigureCanvasAgg(fig)  # a figure rkm.plots.save has closed has lost its pyplot canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    labels = []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            label = ax.get_ylabel() or ax.get_xlabel()
            assert label, f"{name}: a colour bar without a label"
            labels.append(label)
            continue
        assert _has_data(ax), f"{name}: an empty axes ({ax.get_title()!r})"
        if ax.images:  # a grid of images: its axes are pixels, not quantities
            continue
        for axis, label in ((ax.xaxis, ax.get_xlabel()), (ax.yaxis, ax.get_ylabel())):
            assert label, f"{name}: an axis without a label in the panel {ax.get_title()!r}"
            labels.append(label)
            if axis.get_scale() == "log":
                major = _tick_labels(axis, "major")
                assert len(major) >= 2, f"{name}: log axis {label!r} labels {[t.get_text() for t in major]}"
                assert not _tick_labels(axis, "minor"), f"{name}: labelled minor ticks on {label!r}"
                boxes = [t.get_window_extent(renderer) for t in major]
                for a, b in zip(boxes, boxes[1:]):
                    assert not a.overlaps(b), f"{name}: overlapping tick labels on {label!r}"
    units: dict[str, set] = {}
    for label in labels:
        words = label.lower()
        for word, unit in UNITS.items():
            if re.search(rf"(?<![\w-]){word}(?![\w-])", words.split("(")[0]):
                assert _unit(label) in (unit, "code units"), f"{name}: {label!r} needs its unit ({unit})"
                units.setdefault(word, set()).add(_unit(label))
        if any(word in words for word in PARAMETERS):
            assert _unit(label) == "code units", f"{name}: {label!r} needs its unit"
    assert all(len(found) == 1 for found in units.values()), f"{name}: one quantity in two units: {units}"
    return labels


def check_all(figures, expected):
    assert sorted(figures) == sorted(expected)
    for name, figs in figures.items():
        for fig in figs:
            check_figure(fig, name)
    plt.close("all")


def test_the_figures_of_a_run_without_quality_during_training_and_of_rkm_plot(bars, written):
    run, figures = bars
    run_figures = ["biases.png", "reconstructions.png", "samples.png", "training_curves.png", "weights.png"]
    (curves,) = figures["training_curves.png"]
    titles = [ax.get_ylabel() for ax in curves.axes]
    assert titles == ["reconstruction error (fraction of pixels)", "power per update (W)", "cumulative energy (J)",
                      "mean relaxation time (s)"]  # quality only on the last row: no quality panel
    assert all(len(ax.get_lines()[0].get_xdata()) == 3 for ax in curves.axes)  # updates 10, 20, 30
    check_all(figures, run_figures)
    assert main(["plot", str(run)]) == 0
    check_all(written, run_figures)


def test_the_quality_panels_are_curves_when_quality_is_recorded_during_training(tmp_path, written):
    digits = ["--dataset", "mnist-5k", "--n-hidden", "8", "--batch-size", "16", "--train-algo", "PCD",
              "--max-epochs", "30", "--log-every", "10", "--quality-every", "10", "--generate-k", "3",
              "--n-generate", "4", "--n-eval", "20", "--n-quality", "20", "--no-progress"]
    assert main(["train", *digits, "--run-dir", str(tmp_path / "digits")]) == 0
    (curves,) = written["training_curves.png"]
    quality = [ax for ax in curves.axes if ax.get_xlabel() == "cumulative energy (J)"]
    assert [ax.get_ylabel() for ax in quality] == ["label entropy (nats)", "FID, shipped classifier"]
    assert all(len(ax.get_lines()[0].get_xdata()) == 3 for ax in quality)
    check_all(written, ["biases.png", "reconstructions.png", "samples.png", "training_curves.png", "weights.png"])
    tiny = ["--preset", "bars", "--n-hidden", "6", "--max-epochs", "20", "--log-every", "10", "--quality-every", "10",
            "--generate-k", "2", "--n-generate", "4", "--n-eval", "8", "--no-progress"]
    assert main(["train", *tiny, "--run-dir", str(tmp_path / "tiny")]) == 0
    (curves,) = written["training_curves.png"][1:]
    (kl,) = [ax for ax in curves.axes if ax.get_xlabel() == "cumulative energy (J)"]
    assert kl.get_ylabel() == "KL(training data || model) (nats)" and len(kl.get_lines()[0].get_xdata()) == 2
    check_figure(curves, "training_curves.png of bars with 6 hidden units")


def test_training_curves_lay_out_only_the_quantities_a_log_has(tmp_path):
    rows = read_metrics_rows(updates=(10, 20), power_f_w=(1e-3, 2e-3))
    fig = plots.training_curves(rows)
    assert [ax.get_ylabel() for ax in fig.axes] == ["power per update (W)"]
    check_figure(fig, "one quantity")
    old = read_metrics_rows(updates=(10, 20, 30), energy=(1.0, 2.0, 3.0), swap_acceptance=(0.2, 0.3, 0.3))
    fig = plots.training_curves(old)  # a log of an older rkm: no SI column, the code units said
    assert [ax.get_ylabel() for ax in fig.axes] == ["cumulative energy (code units)",
                                                    "swap acceptance since the start (fraction of swaps)"]
    check_figure(fig, "older log")
    plt.close("all")


def read_metrics_rows(updates, **columns):
    return [{"update": float(u), **{k: float(v[i]) for k, v in columns.items()}} for i, u in enumerate(updates)]


def test_rkm_energy_figures_of_a_scaling_study_and_of_one_trained_model(bars, tmp_path, written):
    fast = ["--no-progress", "--min-time", "0.01", "--energy-window", "0.02", "--idle", "0.02"]
    assert main(["energy", "--sizes", "4,8,16,32,64", "--out", str(tmp_path / "study"), *fast]) == 0
    (study,) = written["energy.png"]
    assert all(ax.get_xscale() == "log" for ax in study.axes)  # 4..64 spans more than a decade
    assert main(["energy", "--model", str(bars[0]), "--out", str(tmp_path / "model"), "--batches", "2", *fast]) == 0
    (model,) = written["energy.png"][1:]
    assert [ax.get_xlabel() for ax in model.axes] == ["operation"] * 3
    assert "16 visible x 32 hidden" in model.get_suptitle()
    check_figure(study, "energy.png of sizes 4..64")
    check_figure(model, "energy.png of a model")
    plt.close("all")


def test_the_sweep_summary_names_its_metrics_in_words_with_units_and_has_one_legend(tmp_path):
    g = np.random.default_rng(0)
    rows = [{"run": f"r{i}", "model.offset": offset, "model.sampling": sampling, "seed": seed, "status": "ok",
             "test_reconstruction_error_k1": g.random(), "energy_j": 1e-4 * (1 + g.random()), "train_seconds": 3.0,
             **{key: g.random() for key in rkm.evaluation.metrics.METRIC_KEYS}}
            for i, (offset, sampling, seed) in enumerate((o, s, seed) for o in (0.0, 0.5, 1.0)
                                                         for s in ("bernoulli", "multi-threshold") for seed in (0, 1))]
    fig = sweep.summary_figure(rows, ["model.sampling", "model.offset"])
    labels = check_figure(fig, "summary.png")
    assert len(fig.axes) == len(PLOTTED) and not any(ax.get_legend() for ax in fig.axes)
    assert len(fig.legends) == 1 and [t.get_text() for t in fig.legends[0].get_texts()] == [
        "model.sampling=bernoulli", "model.sampling=multi-threshold"]  # the numeric key along x
    assert "energy (J)" in labels and "time (s)" in labels and "model.offset (code units)" in labels
    assert not any(key in labels for key in PLOTTED)  # words, not column names
    plt.close("all")


def test_the_seed_apis_figures(tmp_path):
    model = rkm.RKM("m", 16, 5, seed=0, device="cpu", max_epochs=20, batch_size=4)
    model.train(torch.tensor(rkm.io.datasets.bars_and_stripes(4)).float(), save=False)
    for name, fig in (("plot_weights", model.plot_weights(model.epoch)),
                      ("plot_visible_bias", model.plot_visible_bias(model.epoch)),
                      ("plot_bias", model.plot_bias(model.epoch))):
        labels = check_figure(fig, name)
        assert any("(code units)" in label for label in labels)
        path = tmp_path / f"{name}.png"
        plots.save(fig, path)
        assert path.stat().st_size > 0
