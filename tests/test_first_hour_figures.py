"""Issue 24, point 11: `rkm energy`'s statistics say only what its sizes support.

A power law is fitted only to three sizes or more (two leave nothing to estimate an interval
from), so two sizes print their numbers and no interval; a crossover is reported only where
both fits are determined, their exponents differ beyond their 95% intervals and N* lies within
a factor 10 of the fitted sizes (labelled an extrapolation outside them), and nothing overflows;
a trained model of any shape is one size: no fit, a table of its numbers.
"""

import math

import numpy as np
import pytest

from rkm.app._cli import main
from rkm.circuits import energy

SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048)
FAST = ["--no-progress", "--min-time", "0.01", "--energy-window", "0.02", "--idle", "0.02"]


def _rows(system, prefactor, exponent, noise, seed, batch=1):
    """Rows of one system whose energy per sample follows ``prefactor N^exponent`` times log-normal noise."""
    g = np.random.default_rng(seed)
    return [{"system": system, "operation": "pass", "n": n, "n_visible": n, "n_hidden": n, "batch": batch,
             "energy_source": "circuit model" if system == energy.CIRCUIT else "rapl",
             "energy_per_sample_j": prefactor * n**exponent * math.exp(noise * g.standard_normal())}
            for n in SIZES]


def _fit(system, prefactor, exponent, half_width=0.0, n_min=16, n_max=2048):
    return energy.Fit(system, "pass", 1, "energy_per_sample_j", "x", exponent, exponent - half_width,
                      exponent + half_width, prefactor, n_min, n_max, 5)


@pytest.mark.parametrize("seed", range(5))
def test_a_crossover_of_almost_parallel_noisy_rows_never_raises_and_is_not_reported(seed):
    rows = _rows(energy.CIRCUIT, 1e-9, 1.0, 0.2, seed) + _rows("rbm-cpu", 1e-6, 1.0 + 1e-9, 0.2, seed + 100)
    fits = energy.fit_rows(rows, min_n=16)
    assert len(fits) == 2
    assert energy.crossovers(fits, rows) == []
    ((_, why),) = energy.comparisons(fits, rows)
    assert why.startswith("the exponents are not distinguishable")
    study = energy.Study(energy.Settings(), rows=rows, meters={})
    assert "not distinguishable" in energy.summary_text(study, fits, [])


def test_exact_fits_that_differ_in_the_13th_digit_do_not_overflow():
    circuit, cpu = _fit(energy.CIRCUIT, 1e-6, 1.0), _fit("rbm-cpu", 1e-9, 1.0 + 1e-13)
    with pytest.raises(OverflowError):  # the formula as written, N* = (a2 / a1)^(1 / (b1 - b2))
        math.exp((math.log(cpu.prefactor) - math.log(circuit.prefactor)) / (circuit.exponent - cpu.exponent))
    assert energy.crossovers([circuit, cpu]) == []
    why = energy.compare(circuit, cpu)
    assert why == "no crossover within a factor 10 of the fitted sizes 16..2048: the circuit's law is higher throughout"


def test_a_crossover_is_reported_inside_the_sizes_or_as_a_labelled_extrapolation():
    circuit = _fit(energy.CIRCUIT, 1e-9, 1.0, 0.05)
    (inside,) = energy.crossovers([circuit, _fit("rbm-cpu", 1e-12, 2.0, 0.1)])
    assert inside.n_cross == pytest.approx(1000.0) and inside.in_range and inside.circuit_lower_above
    (outside,) = energy.crossovers([circuit, _fit("rbm-cpu", 1e-13, 2.0, 0.1)])  # N* = 10^4, fitted to 2048
    assert outside.n_cross == pytest.approx(1e4) and not outside.in_range
    study = energy.Study(energy.Settings(), rows=[], meters={})
    text = energy.summary_text(study, [circuit, _fit("rbm-cpu", 1e-13, 2.0, 0.1)], [outside])
    assert "N* = 1e+04 (extrapolated beyond the fitted sizes)" in text
    far = _fit("rbm-cpu", 1e-15, 2.0, 0.1)  # N* = 10^6: 500 times the largest size
    assert energy.crossovers([circuit, far]) == []
    assert energy.compare(circuit, far).endswith("the circuit's law is higher throughout")
    undetermined = energy.Fit("rbm-cpu", "pass", 1, "energy_per_sample_j", "x", 2.0, math.nan, math.nan, 1e-12, 16,
                              32, 2)
    assert energy.compare(circuit, undetermined).startswith("not determined (a fit needs 3 sizes or more")


def test_two_sizes_fit_no_law_and_print_no_interval(tmp_path, capsys):
    assert main(["energy", "--sizes", "32,64", "--operations", "pass", "--out", str(tmp_path), *FAST]) == 0
    out = capsys.readouterr().out
    assert "no power-law fit: a fit needs 3 sizes or more in its range (see --fit-min-n); this study has 2 (32, 64)" \
        in out
    assert "interval" not in out and "N*" not in out and "exponent" not in out
    table = [line for line in out.splitlines() if line.startswith(("rkm-circuit ", "rbm-cpu "))]
    assert len(table) == 2 * 3  # circuit, cpu batch 1 and 64, at each size
    rows = energy.read_csv(tmp_path / "energy.csv")
    assert energy.fit_rows(rows) == []


def test_three_sizes_give_an_interval(tmp_path, capsys):
    assert main(["energy", "--sizes", "16,32,64", "--operations", "pass", "--devices", "cpu", "--out", str(tmp_path),
                 *FAST]) == 0
    out = capsys.readouterr().out
    circuit = [line for line in out.splitlines() if line.startswith("rkm-circuit  pass") and "power_w" in line]
    assert len(circuit) == 1 and "[" in circuit[0] and "16..64 (3)" in circuit[0]


def test_a_trained_non_square_model_is_one_size_with_a_table_of_its_numbers(tmp_path, capsys):
    run = tmp_path / "bars"
    assert main(["train", "--preset", "bars", "--max-epochs", "20", "--log-every", "10", "--generate-k", "2",
                 "--n-generate", "4", "--n-eval", "8", "--no-progress", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["energy", "--model", str(run), "--batches", "2", "--out", str(tmp_path / "study"), *FAST]) == 0
    out = capsys.readouterr().out
    assert "one size: no power law to fit; the numbers of each system and operation:" in out
    assert "exponent" not in out and "N*" not in out
    table = [line.split() for line in out.splitlines() if line.startswith(("rkm-circuit ", "rbm-cpu "))]
    assert [(t[0], t[1], " ".join(t[2:5]), t[5]) for t in table] == [
        (system, op, "16 x 32", batch) for op in energy.OPERATIONS
        for system, batch in ((energy.CIRCUIT, "1"), ("rbm-cpu", "2"))]
    circuit = [t for t in table if t[0] == energy.CIRCUIT]
    assert all(t[9] == "W" and t[11] == "J" for t in circuit)  # power and energy of the circuit, in SI
