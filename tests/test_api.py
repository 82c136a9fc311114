"""The seed API surface: constructor signature, methods, return shapes, errors, plots."""

import inspect

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import rkm
from rkm.errors import ConfigError, DataError

SEED_SIGNATURE = [
    ("model_name", inspect.Parameter.empty), ("n_visible", inspect.Parameter.empty),
    ("n_hidden", inspect.Parameter.empty), ("k", 1), ("lr", 0.001), ("max_epochs", 200000),
    ("energy_type", "RKM"), ("optimizer", "SGD"), ("regularization", False), ("l1_factor", 0),
    ("l2_factor", 0.001), ("g_v", 0.5), ("g_h", 0.5), ("batch_size", 1), ("train_algo", "vRDM"),
    ("centering", False), ("average_data", None), ("model_beta", 1), ("mytype", torch.float32),
    ("min_W", -10), ("max_W", 10), ("offset", 0.0), ("sampling", "bernoulli"),
    ("distribution", "gaussian"), ("layer_scaled", True),
]
SEED_METHODS = [
    "v_to_h", "h_to_v", "Bernoulli_v_to_h", "Bernoulli_h_to_v", "Deterministic_v_to_h",
    "Deterministic_h_to_v", "delta_eh", "delta_ev", "forward", "generate", "reconstruct",
    "power_forward", "power_backward", "av_power_forward", "av_power_backward", "relaxation_times",
    "derivatives", "derivatives_hopfield", "clip_weights", "clip_bias", "after_step_keepup",
    "SGD_update", "Adam_update", "plot_weights", "plot_bias", "plot_visible_bias", "train", "pretrain",
]


def positional_parameters(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return [p for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD], [
        p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def test_rkm_constructor_is_the_seeds():
    positional, keyword_only = positional_parameters(rkm.RKM)
    assert [(p.name, p.default) for p in positional] == SEED_SIGNATURE
    assert all(p.default is not inspect.Parameter.empty for p in keyword_only)


def test_rbm_constructor_is_the_seeds_with_the_hopfield_energy():
    positional, _ = positional_parameters(rkm.RBM)
    expected = [(n, "hopfield" if n == "energy_type" else d) for n, d in SEED_SIGNATURE]
    assert [(p.name, p.default) for p in positional] == expected
    assert issubclass(rkm.RKM, rkm.RBM)


def test_seed_scripts_positional_call_works():
    model = rkm.RKM("m", 16, 4, 2, 0.01, 50, "RKM", "Adam", "l2", 0, 0.01, 0.5, 0.5, 8, "PCD", device="cpu")
    assert (model.k, model.lr, model.optimizer, model.train_algo, model.batch_size) == (2, 0.01, "Adam", "PCD", 8)


@pytest.mark.parametrize("name", SEED_METHODS)
def test_every_seed_method_exists(name):
    assert callable(getattr(rkm.RKM, name))


def test_documented_attributes_and_shapes():
    model = rkm.RKM("m", 12, 5, seed=0, device="cpu")
    assert model.W.shape == (5, 12) and model.v_bias.shape == (12,) and model.h_bias.shape == (5,)
    assert model.epoch == 0 and float(model.energy) == 0.0
    assert model.relax_t_f.shape == (5,) and model.relax_t_b.shape == (12,)
    assert model.device == torch.device("cpu")
    v = torch.randint(0, 2, (7, 12)).float()
    assert model.power_forward(v).shape == (7,)
    assert model.power_backward(torch.ones(7, 5)).shape == (7,)
    data, rec = model.reconstruct(v.numpy(), 2)
    assert isinstance(rec, np.ndarray) and rec.shape == data.shape == (7, 12)
    gen = model.generate(6, 3, from_visible=False, h_binarized=False)
    assert gen.shape == (6, 12) and set(np.unique(gen)) <= {0.0, 1.0}


def test_forward_with_k_zero_returns_the_input():
    model = rkm.RKM("m", 12, 5, seed=0, device="cpu")
    v = torch.randint(0, 2, (3, 12)).float()
    torch.testing.assert_close(model.forward(v, 0), v)
    assert model.forward(v, 3).shape == (3, 12)


def test_derivatives_are_batch_averaged_outer_products():
    model = rkm.RKM("m", 6, 4, seed=0, mytype=torch.float64, device="cpu")
    g = torch.Generator().manual_seed(5)
    v = torch.randint(0, 2, (9, 6), generator=g).double()
    h = torch.randint(0, 2, (9, 4), generator=g).double()
    dW, dv, dh = model.derivatives(v, h)
    expected = -sum(np.outer(h[n].numpy(), v[n].numpy()) for n in range(9)) / 9
    np.testing.assert_allclose(dW.numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(dv.numpy(), -v.numpy().mean(0))
    np.testing.assert_allclose(dh.numpy(), -h.numpy().mean(0))


def test_clipping_keeps_parameters_in_range():
    model = rkm.RKM("m", 6, 4, seed=0, min_W=-0.5, max_W=0.25, device="cpu")
    model.W = torch.full((4, 6), 3.0)
    model.v_bias = torch.full((6,), -3.0)
    model.after_step_keepup()
    assert float(model.W.max()) == 0.25 and float(model.v_bias.min()) == -0.5


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"sampling": "gibbs"}, "sampling"),
        ({"distribution": "cauchy"}, "distribution"),
        ({"energy_type": "ising"}, "energy_type"),
        ({"train_algo": "annealing"}, "train_algo"),
        ({"optimizer": "RMSprop"}, "optimizer"),
        ({"regularization": "l3"}, "regularization"),
        ({"centering": True}, "average_data"),
        ({"n_visible": -3}, "n_visible"),
        ({"n_hidden": 0}, "n_hidden"),
        ({"batch_size": 0}, "batch_size"),
        ({"k": 0}, "k"),
        ({"lr": float("nan")}, "lr"),
        ({"g_h": 0}, "g_h"),
        ({"min_W": 1, "max_W": -1}, "min_W"),
        ({"model_beta": -1}, "beta"),
        ({"mytype": torch.int32}, "mytype"),
    ],
)
def test_bad_constructor_arguments_raise_config_errors(kwargs, match):
    args = {"model_name": "m", "n_visible": 6, "n_hidden": 4, "device": "cpu", **kwargs}
    with pytest.raises(ConfigError, match=match):
        rkm.RKM(**args)


def test_wrong_average_data_size_is_a_data_error():
    with pytest.raises(DataError, match="average_data"):
        rkm.RKM("m", 6, 4, centering=True, average_data=torch.ones(5), device="cpu")


def test_bad_inputs_raise_data_errors_that_say_what_to_do():
    model = rkm.RKM("m", 6, 4, seed=0, device="cpu")
    with pytest.raises(DataError, match=r"\(batch, 6\)"):
        model.v_to_h(torch.ones(2, 7))
    with pytest.raises(DataError, match="NaN"):
        model.v_to_h(torch.tensor([[0, 1, float("nan"), 0, 1, 0]]))
    with pytest.raises(DataError, match="NaN or inf"):
        model.v_to_h(torch.tensor([[0, 1, float("-inf"), 0, 1, 0]]))
    huge = torch.tensor([[3e38, 3e38, 0, 0, 1, 0]])  # finite, but its sum overflows
    assert model.v_to_h(huge)[0].shape == (1, 4)
    with pytest.raises(DataError, match=r"\(batch, 4\)"):
        model.h_to_v(np.ones((2, 6)))
    with pytest.raises(DataError, match="shape"):
        model.W = torch.ones(6, 4)
    bad = model.W.clone()
    bad[0, 0] = float("inf")
    model.W = bad
    with pytest.raises(DataError, match="NaN or inf"):
        model.v_to_h(torch.ones(1, 6))
    with pytest.raises(ConfigError, match="beta"):
        rkm.RKM("m", 6, 4, device="cpu").v_to_h(torch.ones(1, 6), beta=-2)


def test_errors_are_catchable_as_builtins_and_as_rkm_errors():
    with pytest.raises(ValueError):
        rkm.RKM("m", 6, 4, sampling="nope", device="cpu")
    with pytest.raises(rkm.RKMError):
        rkm.RKM("m", 6, 4, sampling="nope", device="cpu")


def test_one_dimensional_inputs_are_single_samples():
    model = rkm.RKM("m", 6, 4, seed=0, device="cpu")
    p, h = model.v_to_h(torch.ones(6))
    assert p.shape == h.shape == (4,)


# ------------------------------------------------------------------- plots
@pytest.fixture
def no_show(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plt.show() must never be called by the library")

    monkeypatch.setattr(plt, "show", refuse)


@pytest.mark.parametrize("n_visible,shape", [(16, None), (784, None), (12, (3, 4)), (20, (4, 5))])
def test_plots_return_figures_for_any_visible_size(no_show, n_visible, shape):
    model = rkm.RKM("m", n_visible, 7, seed=0, device="cpu")
    for fig in (model.plot_weights(3, image_shape=shape), model.plot_visible_bias(3, image_shape=shape), model.plot_bias(3)):
        assert isinstance(fig, matplotlib.figure.Figure)
        plt.close(fig)


def test_non_square_visible_layer_without_shape_is_a_clear_error():
    model = rkm.RKM("m", 12, 3, seed=0, device="cpu")
    with pytest.raises(DataError, match="image_shape"):
        model.plot_weights(0)


def test_to_changes_dtype_of_every_tensor():
    model = rkm.RKM("m", 6, 4, seed=0, train_algo="PCD", optimizer="Adam", device="cpu")
    model.to(dtype=torch.float64)
    assert model.W.dtype == model.persistent_chains.dtype == model.m_dW.dtype == torch.float64
    p, h = model.v_to_h(np.ones((2, 6)))
    assert p.dtype == torch.float64
    assert model.energy.dtype == torch.float64
    with pytest.raises(ConfigError):
        model.to(dtype=torch.int64)
