"""Parallel tempering over the comparator noise (issue 12, item 4): train_algo='PT'."""

import copy
import json

import numpy as np
import pytest
import torch

import rkm
from rkm.app._cli import main
from rkm.app.metrics_log import read_metrics
from rkm.core import hopfield
from rkm.core.network import Network
from rkm.io.datasets import bars_and_stripes
from rkm.training._accounting import PassRecorder
from rkm.training.phases import PT

BAS = torch.tensor(bars_and_stripes(4))


def model(cls=rkm.RKM, **kwargs):
    settings = dict(max_epochs=60, batch_size=8, lr=0.05, k=2, seed=5, device="cpu", train_algo="PT")
    settings.update(kwargs)
    return cls("pt", 16, 6, **settings)


def final_state(m):
    return {**m.network.state_dict(), **m.trainer.state_dict()}


@pytest.mark.parametrize("cls", [rkm.RKM, rkm.RBM])
def test_one_rung_is_pcd_draw_for_draw(cls):
    pcd = model(cls, train_algo="PCD", n_chains=5)
    pt = model(cls, n_temperatures=1, n_chains=5)
    pcd.train(BAS, save=False)
    pt.train(BAS, save=False)
    a, b = final_state(pcd), final_state(pt)
    for name in ("W", "v_bias", "h_bias", "rng_state", "energy", "power_f", "power_b", "energy_settled",
                 "comparator_decisions"):
        assert torch.equal(a[name], b[name]), name
    assert torch.equal(a["persistent_chains"], b["pt_chains"][0])
    assert b["pt_swaps_attempted"].numel() == 0 and pt.trainer.phase.readings() == {}


def test_the_ladder_is_geometric_up_to_model_beta():
    betas = PT.ladder(0.2, 5, 0.25)
    assert betas[-1] == 0.2 and betas[0] == pytest.approx(0.05)
    np.testing.assert_allclose(np.diff(np.log(betas)), np.log(4) / 4)
    assert PT.ladder(0.7, 1, 0.5) == [0.7]
    with pytest.raises(rkm.ConfigError, match="finite model_beta"):
        PT.ladder(float("inf"), 3, 0.5)


def test_swaps_accept_with_the_metropolis_probability_of_the_rbm_energy():
    m = model(rkm.RBM, n_temperatures=3, pt_beta_ratio=0.3, mytype=torch.float64)
    m.train(BAS[:8], save=False)  # some learned weights
    phase = m.trainer.phase
    betas = PT.ladder(m.model_beta, 3, 0.3)
    g = torch.Generator().manual_seed(11)
    n = 4000
    v = torch.randint(0, 2, (3, n, 16), generator=g).double()
    h = torch.randint(0, 2, (3, n, 6), generator=g).double()
    before = (phase.accepted.clone(), phase.attempted.clone())
    state = m.generator.get_state()
    u = torch.rand((2, n), generator=torch.Generator().set_state(state), dtype=torch.float64)
    got_v, got_h = phase.swap(PassRecorder(m.network, m.model_beta), v, h, betas)

    W, a, b = m.realised_parameters()
    want_v, want_h, accepted = v.clone(), h.clone(), []
    for r in range(2):  # the hottest pair first, each on the states the previous swap left
        e_low = hopfield.energy(want_v[r], want_h[r], W, a, b)
        e_high = hopfield.energy(want_v[r + 1], want_h[r + 1], W, a, b)
        p = torch.exp((betas[r] - betas[r + 1]) * (e_low - e_high)).clamp(max=1.0)
        accept = u[r] < p
        for s in (want_v, want_h):
            low, high = s[r].clone(), s[r + 1].clone()
            s[r][accept], s[r + 1][accept] = high[accept], low[accept]
        accepted.append(int(accept.sum()))
        assert 0.05 < float(p.mean()) < 0.95  # a case where the rule decides
        assert abs(accept.double().mean() - p.mean()) < 4 * (0.25 / n) ** 0.5
    assert torch.equal(got_v, want_v) and torch.equal(got_h, want_h)
    assert (phase.accepted - before[0]).tolist() == accepted
    assert (phase.attempted - before[1]).tolist() == [n, n]


def test_the_rkm_swap_energy_reads_both_directions_comparator_inputs():
    m = model(n_temperatures=2, mytype=torch.float64)
    m.train(BAS[:8], save=False)
    g = torch.Generator().manual_seed(3)
    v = torch.randint(0, 2, (2, 50, 16), generator=g).double()
    h = torch.randint(0, 2, (2, 50, 6), generator=g).double()
    got = m.trainer.phase.energy(PassRecorder(m.network, m.model_beta), v, h)
    zero_v, zero_h = torch.zeros(1, 16, dtype=torch.float64), torch.zeros(1, 6, dtype=torch.float64)
    for r in range(2):
        want = -0.5 * ((h[r] * m.delta_eh(v[r])).sum(1) + (v[r] * m.delta_ev(h[r])).sum(1)
                       + h[r] @ m.delta_eh(zero_v)[0] + v[r] @ m.delta_ev(zero_h)[0])
        torch.testing.assert_close(got[r], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", [rkm.RKM, rkm.RBM])
def test_the_energy_of_an_update_counts_every_pass_of_every_rung(cls, monkeypatch):
    rungs, k, chains, batch = 3, 2, 5, 8
    m = model(cls, n_temperatures=rungs, k=k, n_chains=chains, mytype=torch.float64)
    before = copy.deepcopy(m)
    calls = []
    original_pass, original_read = Network.pass_, Network.read

    def recording_pass(self, clamped, forward, beta, power=False, binary=False):
        calls.append((clamped.clone(), forward))
        return original_pass(self, clamped, forward, beta, power, binary)

    def recording_read(self, clamped, forward):
        calls.append((clamped.clone(), forward))
        return original_read(self, clamped, forward)

    monkeypatch.setattr(Network, "pass_", recording_pass)
    monkeypatch.setattr(Network, "read", recording_read)
    m.trainer.update(BAS[:batch].double())
    # the data pass, k steps (2 passes each) per rung, a forward and a backward read per rung, two grounded reads
    assert len(calls) == 1 + rungs * 2 * k + 2 * rungs + 2
    assert sum(c.shape[0] for c, _ in calls) == batch + chains * rungs * (2 * k + 2) + 2
    explicit = sum(float((before.power_forward(c) if f else before.power_backward(c)).sum()) for c, f in calls)
    assert float(m.energy) == pytest.approx(explicit, rel=1e-10)
    mean_f = sum(float(before.power_forward(c).mean()) for c, f in calls if f)
    assert float(m.power_f) == pytest.approx(mean_f, rel=1e-10)


class Crash(Exception):
    pass


@pytest.mark.parametrize("settings", [dict(), dict(cls=rkm.RBM, optimizer="Adam", n_chains=3, pt_beta_ratio=0.2)])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, settings):
    settings = dict(n_temperatures=4, max_epochs=200, **settings)
    full = model(**settings)
    full.train(BAS, model_state_path=str(tmp_path / "full"))
    broken = model(**settings)

    def stop(m):
        if m.epoch == 130:
            raise Crash

    with pytest.raises(Crash):
        broken.train(BAS, model_state_path=str(tmp_path / "part"), callback=stop)
    found, resumed = rkm.load_model("pt", model_state_path=str(tmp_path / "part"))
    assert found and 100 < resumed.epoch <= 130
    assert (resumed.train_algo, resumed.n_temperatures) == ("PT", 4)
    resumed.train(BAS, model_state_path=str(tmp_path / "part"))
    a, b = final_state(full), final_state(resumed)
    assert set(a) == set(b) and {"pt_chains", "pt_swaps_accepted", "pt_swaps_attempted"} <= set(a)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert int(a["pt_swaps_attempted"][0]) == 200 * full.trainer.chains


def test_a_changed_ladder_size_is_refused_mid_training():
    m = model(n_temperatures=3, max_epochs=5)
    m.train(BAS, save=False)
    m.n_temperatures = 4
    with pytest.raises(rkm.ConfigError, match="pt_chains has shape"):
        m.trainer.update(BAS[:8])


def test_pt_is_a_config_key_and_a_flag_with_its_ladder_recorded(tmp_path):
    run = tmp_path / "pt"
    argv = ["train", "--dataset", "bars-and-stripes", "--size", "3", "--n-hidden", "6", "--batch-size", "8",
            "--train-algo", "PT", "--n-temperatures", "3", "--pt-beta-ratio", "0.4", "--max-epochs", "30",
            "--log-every", "10", "--generate-k", "5", "--n-generate", "4", "--n-eval", "8", "--name", "pt",
            "--seed", "2", "--no-progress", "--run-dir", str(run)]
    assert main(argv) == 0
    assert 'train_algo = "PT"' in (run / "config.toml").read_text()
    assert "n_temperatures = 3" in (run / "config.toml").read_text()
    rows = read_metrics(run / "metrics.csv")
    assert [r["update"] for r in rows] == [10, 20, 30]
    assert all(0.0 <= r["swap_acceptance"] <= 1.0 for r in rows)
    summary = json.loads((run / "summary.json").read_text())
    assert len(summary["swap_acceptance"]) == 2
    found, m = rkm.load_model("pt", model_state_path=run / "model_states")
    assert found and (m.train_algo, m.n_temperatures, m.pt_beta_ratio) == ("PT", 3, 0.4)
    assert m.trainer.phase.chains.shape == (3, 8, 9)
    config = rkm.app.config.resolve_config(overrides={"model": {"train_algo": "PT", "n_temperatures": "2"}})
    assert config["model"]["n_temperatures"] == 2
    with pytest.raises(rkm.ConfigError, match="pt_beta_ratio"):
        rkm.app.config.resolve_config(overrides={"model": {"pt_beta_ratio": "1.5"}})
