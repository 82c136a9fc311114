"""Regression tests of the data readers (issue 22, the readers and the messages about files): no silent
wrong data (a BOM or an odd first row of a CSV, float IDX images, thresholds that make constant data,
non-binary data for the AIS), and the container libraries' messages said in rkm's words, naming the file."""

import gzip
import io
import re
import struct
import zipfile

import numpy as np
import pytest

import rkm
from rkm.app._cli import main
from rkm.app.config import read_config_file
from rkm.errors import ConfigError, DataError
from rkm.evaluation import ais
from rkm.io.datasets import binarize, load_array, load_dataset, load_mnist, read_idx

LIBRARY_WORDS = re.compile(r"Errno|allow_pickle|max_header_size|usecols|ast\.|<ast|ZipInfo|BadGzipFile|CRC check|"
                           r"ValueError|RuntimeError|ndarray")

ROWS = "1,0,1,0\n0,1,0,1\n1,1,0,0\n"


def refused(error, call, *args, **kwargs) -> str:
    """The message of the ``error`` that ``call`` raises; it names no library's words."""
    with pytest.raises(error) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert not LIBRARY_WORDS.search(message), message
    return message


# ------------------------------------------------------------------ CSV: the header rule
def test_a_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + ROWS.encode())
    (tmp_path / "bom_header.csv").write_bytes(b"\xef\xbb\xbfa,b,c,d\n" + ROWS.encode())
    expected = [[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]]
    assert load_array(tmp_path / "bom.csv").tolist() == expected
    assert load_array(tmp_path / "bom_header.csv").tolist() == expected


@pytest.mark.parametrize("first", ["0x1,0,1,0", "1,0,1,\0", "1+1j,0,1,0"])
def test_a_first_row_with_a_number_is_data_so_a_bad_value_in_it_is_refused_not_dropped(tmp_path, first):
    (tmp_path / "x.csv").write_text(first + "\n" + ROWS)
    message = refused(DataError, load_array, tmp_path / "x.csv")
    assert message.startswith(f"{tmp_path / 'x.csv'}, line 1, value ") and "is not a number" in message


def test_a_ragged_csv_names_its_line_in_rkm_words(tmp_path):
    (tmp_path / "r.csv").write_text("1,0,1,0\n0,1\n")
    message = refused(DataError, load_array, tmp_path / "r.csv")
    assert message == (f"{tmp_path / 'r.csv'}, line 2 has 2 values but line 1 has 4; every row needs the same "
                       "number of values.")


# ------------------------------------------------------------------ IDX
def idx(code: int, array: np.ndarray) -> bytes:
    dtype = {0x08: "u1", 0x0D: ">f4"}[code]
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(dtype).tobytes()


def test_float_idx_images_in_0_1_are_taken_as_they_are(tmp_path):
    images = (np.random.default_rng(0).random((30, 4, 4)) > 0.5).astype(np.float32)
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / name).write_bytes(idx(0x0D, images))
    ds = load_mnist(tmp_path)
    assert ds.train.tolist() == images.reshape(30, 16).tolist() and ds.train.any()


def test_float_idx_images_outside_0_1_are_refused(tmp_path):
    images = np.full((30, 4, 4), 200.0)
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / name).write_bytes(idx(0x0D, images))
    message = refused(DataError, load_mnist, tmp_path)
    assert "values from 200.0 to 200.0" in message and "scale them to [0, 1]" in message


def test_byte_idx_images_are_still_grey_levels_0_255(tmp_path):
    images = np.array([[[0, 127], [128, 255]]] * 3, dtype=np.uint8)
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / name).write_bytes(idx(0x08, images))
    assert load_mnist(tmp_path).train.tolist() == [[0, 0, 1, 1]] * 3


def test_an_idx_file_of_more_than_3_dimensions_is_refused_saying_what_a_data_file_holds(tmp_path):
    (tmp_path / "d.idx").write_bytes(bytes([0, 0, 0x08, 255]) + struct.pack(">255I", *[1] * 255) + b"\1")
    message = refused(DataError, read_idx, tmp_path / "d.idx")
    assert "declares 255 dimensions" in message and "samples x height x width" in message
    (tmp_path / "d4.idx").write_bytes(idx(0x08, np.ones((2, 1, 1, 1))))
    assert "declares 4 dimensions" in refused(DataError, read_idx, tmp_path / "d4.idx")


def test_a_gzipped_idx_file_with_a_bad_checksum_is_one_rkm_error(tmp_path):
    data = bytearray(gzip.compress(idx(0x08, np.ones((2, 2, 2)))))
    data[-8] ^= 0xFF  # the CRC-32 of the trailer
    (tmp_path / "x.idx.gz").write_bytes(bytes(data))
    assert "is a damaged gzip file" in refused(DataError, read_idx, tmp_path / "x.idx.gz")
    (tmp_path / "cut.idx.gz").write_bytes(bytes(data[:-12]))
    assert "is a damaged gzip file" in refused(DataError, read_idx, tmp_path / "cut.idx.gz")


# ------------------------------------------------------------------ .npy and .npz
def npy(header: str) -> bytes:
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + np.ones((3, 4)).tobytes()


@pytest.mark.parametrize("header", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }" + " " * 12000,
    "{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (3, 4), }",
])
def test_a_damaged_npy_header_is_said_in_rkm_words(tmp_path, header):
    (tmp_path / "x.npy").write_bytes(npy(header))
    assert refused(DataError, load_array, tmp_path / "x.npy").startswith(f"{tmp_path / 'x.npy'} has a damaged .npy")


def test_an_encrypted_npz_member_is_named(tmp_path):
    buffer = io.BytesIO()
    np.savez(buffer, train=np.ones((3, 4)))
    data = bytearray(buffer.getvalue())
    data[data.find(b"PK\3\4") + 6] |= 1  # the encrypted flag, in the local header and the central directory
    data[data.find(b"PK\1\2") + 8] |= 1
    (tmp_path / "x.npz").write_bytes(bytes(data))
    assert zipfile.ZipFile(tmp_path / "x.npz").getinfo("train.npy").flag_bits & 1
    message = refused(DataError, load_array, tmp_path / "x.npz")
    assert message.startswith(f"{tmp_path / 'x.npz'}: its array 'train' is encrypted")


# ------------------------------------------------------------------ thresholds
@pytest.mark.parametrize("threshold", [5, 1e300, -1, 1.0])
def test_a_threshold_outside_0_1_is_refused_everywhere(tmp_path, threshold):
    np.save(tmp_path / "g.npy", np.array([[0.2, 0.8]]))
    for call in (lambda: load_array(tmp_path / "g.npy", threshold=threshold),
                 lambda: load_dataset(str(tmp_path / "g.npy"), threshold=threshold),
                 lambda: load_mnist(tmp_path, threshold=threshold),
                 lambda: binarize(np.array([0.2, 0.8]), threshold)):
        assert refused(ConfigError, call).startswith("threshold must lie in [0, 1)")
    assert binarize(np.array([3, 9]), threshold=5, scale=1).tolist() == [0, 1]  # raw values with a scale of one's own


def test_rkm_train_names_the_flag_or_the_key_of_a_bad_threshold(tmp_path, capsys):
    np.save(tmp_path / "g.npy", np.array([[0.2, 0.8]]))
    (tmp_path / "c.toml").write_text("[data]\nthreshold = -1\n")
    assert main(["train", "--dataset", str(tmp_path / "g.npy"), "--threshold", "5", "--show-config"]) == 2
    assert capsys.readouterr().err.startswith("rkm: error: --threshold must lie in [0, 1), got 5.0")
    assert main(["train", "--config", str(tmp_path / "c.toml"), "--show-config"]) == 2
    assert capsys.readouterr().err.startswith(f"rkm: error: data.threshold ({tmp_path / 'c.toml'}) must lie in [0, 1)")


# ------------------------------------------------------------------ AIS
@pytest.mark.parametrize(("data", "diagnosis"), [(np.where(np.eye(4, 10) > 0, 1, -1), "spins"),
                                                 (np.arange(40).reshape(4, 10) * 6, "0-255")])
def test_ais_refuses_data_that_is_not_binary(data, diagnosis):
    message = refused(DataError, ais.log_partition, rkm.RBM("m", 10, 6, device="cpu"), 10, 20, data=data)
    assert "values other than 0 and 1" in message and diagnosis in message


# ------------------------------------------------------------------ TOML
def test_a_configuration_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "c.toml").write_bytes(b"\xef\xbb\xbf[model]\nn_hidden = 4\n")
    assert read_config_file(tmp_path / "c.toml") == {"model": {"n_hidden": 4}}
