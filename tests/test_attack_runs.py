"""The third fresh attack (issue 22): run folders written over, renamed runs, readers that speak
Python, and Python values that still slipped through. Each finding replayed."""

import re
import shutil

import numpy as np
import pytest
import torch
from _capped import capped
from _oneline import one_line, run_cli

import rkm
from rkm.app._cli import main
from rkm.errors import ConfigError, DataError
from rkm.io.datasets import load_array

TINY = ["--dataset", "bars-and-stripes", "--size", "3", "--n-hidden", "6", "--batch-size", "8", "--max-epochs", "4",
        "--log-every", "2", "--generate-k", "5", "--n-generate", "4", "--n-eval", "8", "--no-progress"]
PYTHON_WORDS = re.compile(r"Error:|Errno|magic string|codec|BadZipFile|dtype \[|EOF")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("attack-runs") / "run"
    assert main(["train", *TINY, "--run-dir", str(run)]) == 0
    return run


def _contents(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ a command never writes over its run
@pytest.mark.parametrize("argv", [
    ["evaluate", "RUN", "-n", "2", "-k", "1", "--no-fid", "--json", "RUN/config.toml"],
    ["evaluate", "RUN", "-n", "2", "-k", "1", "--no-fid", "--json", "RUN/summary.json"],
    ["evaluate", "RUN", "-n", "2", "-k", "1", "--no-fid", "--json", "RUN/metrics.csv"],
    ["evaluate", "RUN", "-n", "2", "-k", "1", "--no-fid", "--json", "RUN/run.json"],
    ["evaluate", "RUN", "-n", "2", "-k", "1", "--no-fid", "--json", "RUN/model_states/rkm_t4.safetensors"],
    ["generate", "RUN", "-o", "RUN/model_states/extra.npy"],
    ["reconstruct", "RUN", "-o", "RUN/data.json.npy"],
])
def test_a_command_never_writes_over_the_files_of_its_run(trained, capsys, argv):
    argv = [a.replace("RUN", str(trained)) for a in argv]
    if argv[-1].endswith("data.json.npy"):  # a new name beside the run's files is fine
        assert run_cli(argv) == 0
        (trained / "data.json.npy").unlink()
        return
    before = _contents(trained)
    assert run_cli(argv) == 2
    assert "is one of the files of the run" in one_line(capsys)
    assert _contents(trained) == before


def test_a_new_file_in_the_run_folder_is_written(trained, tmp_path):
    out = trained / "evaluation.json"
    assert run_cli(["evaluate", str(trained), "-n", "2", "-k", "1", "--no-fid", "--json", str(out)]) == 0
    assert out.is_file()
    out.unlink()


# ------------------------------------------------------------------ a renamed run
def test_a_config_naming_another_model_is_named_by_resume_restart_and_generate(trained, tmp_path, capsys):
    run = tmp_path / "renamed"
    shutil.copytree(trained, run)
    config = run / "config.toml"
    config.write_text(re.sub(r"(?m)^name = .*$", "name = 'foo'", config.read_text()))
    before = _contents(run)
    for argv in (["train", "--resume", str(run), "--no-progress"], ["train", "--restart", str(run), "--no-progress"],
                 ["generate", str(run), "-o", str(tmp_path / "g.png")]):
        assert run_cli(argv) == 2
        line = one_line(capsys)
        assert "names the run 'foo', but" in line and "holds save points of 'rkm' only" in line, line
    assert _contents(run) == before


# ------------------------------------------------------------------ the Python API
def test_load_model_deletes_only_when_told_so_with_a_boolean(trained, tmp_path):
    states = tmp_path / "states"
    shutil.copytree(trained / "model_states", states)
    count = len(list(states.glob("*.safetensors")))
    with pytest.raises(ConfigError, match="delete_previous must be true or false"):
        rkm.load_model("rkm", delete_previous="maybe", model_state_path=states)
    found, _ = rkm.load_model("rkm", delete_previous="no", model_state_path=states)
    assert found and len(list(states.glob("*.safetensors"))) == count


@pytest.mark.parametrize("model", [None, "m"])
def test_save_model_of_something_that_is_not_a_model_is_a_config_error(tmp_path, model):
    with pytest.raises(ConfigError, match="model must be an rkm.RBM or rkm.RKM"):
        rkm.save_model(model, tmp_path)


def test_counts_given_as_0_d_integer_tensors_are_their_integers():
    model = rkm.RKM("m", 9, 4, k=torch.tensor(4), device="cpu", seed=0)
    assert model.k == 4
    assert model.generate(np.int64(2), torch.tensor(1)).shape == (2, 9)
    with pytest.raises(ConfigError, match="k must be an integer"):
        rkm.RKM("m", 9, 4, k=torch.tensor(4.5), device="cpu")


def test_reconstruct_takes_a_tensor_that_autograd_tracks():
    model = rkm.RKM("m", 9, 4, device="cpu", seed=0)
    data = torch.zeros(3, 9, requires_grad=True)
    _, recon = model.reconstruct(data, 1)
    assert recon.shape == (3, 9)


# ------------------------------------------------------------------ readers in rkm's words
def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name,make,words", [
    ("garbage.npy", lambda p: _write(p, bytes(range(256)) * 4), "it is not an .npy array"),
    ("empty.npy", lambda p: _write(p, b""), "it is not an .npy array"),
    ("binary.csv", lambda p: _write(p, b"\xc6\xff\x00\x81" * 50), "it is not text"),
    ("half.npz", lambda p: _write(p, b"PK\x03\x04" + bytes(40)), "it is not a complete .npz (zip) archive"),
    ("records.npy", lambda p: np.save(p, np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])),
     "records with named fields"),
])
def test_damaged_data_files_are_described_in_rkm_s_words(tmp_path, name, make, words):
    path = tmp_path / name
    make(path)
    with pytest.raises(DataError) as err:
        load_array(path)
    message = str(err.value)
    assert words in message and str(path) in message, message
    assert not PYTHON_WORDS.search(message), message


def _read_a_compressed_bomb(path):
    load_array(path)


def test_a_small_compressed_file_of_much_data_is_refused_before_it_is_unpacked(tmp_path):
    # 200 MB of zeros compress to about 200 kB; reading them as rows takes 1.8 GB (the float64 copy)
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, train=np.zeros((2000, 100_000), np.uint8))
    outcome = capped(_read_a_compressed_bomb, path)
    assert outcome.startswith("typed: ConfigError") and "needs about" in outcome, outcome


# ------------------------------------------------------------------ a damaged metrics.csv on resume
@pytest.mark.parametrize("damage,words", [
    (lambda text: None, "is missing; it is written anew from update 4 on"),
    (lambda text: text.replace(b"\r\n2,", b"\r\nnot a number,", 1), "had 1 damaged, repeated or unordered rows"),
])
def test_a_damaged_metrics_log_is_said_on_resume(trained, tmp_path, caplog, damage, words):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    text = damage((run / "metrics.csv").read_bytes())
    if text is None:
        (run / "metrics.csv").unlink()
    else:
        (run / "metrics.csv").write_bytes(text)
    with caplog.at_level("WARNING", logger="rkm"):
        assert run_cli(["train", "--resume", str(run), "--max-epochs", "6", "--no-progress"]) == 0
    assert words in caplog.text, caplog.text


def test_an_empty_run_folder_argument_is_one_line(capsys):
    for argv in (["train", *TINY, "--run-dir", ""], ["generate", "", "-o", "g.png"], ["train", "--resume", " "]):
        assert run_cli(argv) == 2
        assert "is empty; name a folder" in one_line(capsys)


def test_an_empty_config_is_named_on_resume_too(trained, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "config.toml").write_text("")
    assert run_cli(["train", "--resume", str(run), "--no-progress"]) == 2
    assert "config.toml is empty" in one_line(capsys)


@pytest.mark.parametrize("measure", ["covariance_error", "third_moment_error"])
def test_the_moments_of_one_sample_are_refused_not_a_perfect_score(measure):
    from rkm.evaluation import metrics

    one, many = np.array([[0.0, 1.0, 1.0]]), np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    for real, synthetic in ((one, many), (many, one)):
        with pytest.raises(DataError, match="needs at least 2 samples per set"):
            getattr(metrics, measure)(real, synthetic)
    assert measure not in metrics.evaluate_samples(one, one, include_fid=False)


def test_the_likelihood_at_another_beta_than_the_model_s_is_refused_not_mislabelled(trained, capsys):
    # the likelihood is the model's at its own beta; a --beta beside it was printed but not used
    assert run_cli(["evaluate", str(trained), "-n", "2", "-k", "1", "--no-fid", "--log-likelihood", "--beta",
                    "0"]) == 2
    assert "--log-likelihood is the likelihood of the model at its own beta" in one_line(capsys)
