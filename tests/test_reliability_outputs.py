"""Regression tests of the messages about the files rkm writes (issue 22, the readers and the messages about
files): an output file that is a folder, an output folder that is a file or a device, a folder that cannot be
created, each one line in the words of the command, before any work; nothing of the folder is lost."""

import os
from pathlib import Path

import pytest

from rkm.app._cli import main
from rkm.app.sweep import run_sweep
from rkm.compat.pickles import convert_each
from rkm.errors import ConfigError


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("rkm: error: ") and err.count("\n") == 1 and "Errno" not in err, err
    return err[len("rkm: error: "):].rstrip("\n")


@pytest.mark.parametrize(("name", "what"), [("metrics.csv", "metrics log"), ("summary.json", "summary"),
                                            ("config.toml", "settings"), ("data.json", "data record")])
def test_a_run_file_that_is_a_folder_is_refused_before_training(tmp_path, capsys, name, what):
    run = tmp_path / "run"
    (run / name / "kept").mkdir(parents=True)
    assert main(["train", "--preset", "bars", "--run-dir", str(run), "--no-progress"]) == 2
    assert one_line(capsys) == (f"{run / name} is a folder, not a regular file; the run writes its {what} there: "
                                "remove or rename it.")
    assert (run / name / "kept").is_dir() and sorted(p.name for p in run.iterdir()) == [name]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no folder can be made")
def test_a_run_dir_that_cannot_be_created_is_one_line(capsys):
    assert main(["train", "--preset", "bars", "--run-dir", "/proc/rkm-run", "--no-progress"]) == 2
    assert one_line(capsys).startswith("--run-dir /proc/rkm-run cannot be created (")


def test_a_run_dir_that_is_a_file_is_named_by_its_flag(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["train", "--preset", "bars", "--run-dir", str(tmp_path / "f"), "--no-progress"]) == 2
    assert one_line(capsys) == f"--run-dir {tmp_path / 'f'} is a file, not a folder; choose a folder."


@pytest.mark.parametrize("name", ["results.csv", "summary.png", "sweep.json"])
def test_a_sweep_file_that_is_a_folder_is_refused_before_any_run(tmp_path, capsys, name):
    (tmp_path / "out" / name).mkdir(parents=True)
    assert main(["sweep", "--preset", "bars", "--out", str(tmp_path / "out"), "--grid", "model.offset=0",
                 "--no-progress"]) == 2
    assert one_line(capsys) == (f"{tmp_path / 'out' / name} is a folder, not a regular file; rkm sweep writes {name} "
                                "there: remove or rename it.")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [name]


def test_a_sweep_out_that_is_a_file_is_refused_in_the_words_of_each_interface(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["sweep", "--preset", "bars", "--out", str(tmp_path / "f"), "--grid", "model.offset=0",
                 "--no-progress"]) == 2
    assert one_line(capsys) == f"--out {tmp_path / 'f'} is a file, not a folder; choose a folder."
    with pytest.raises(ConfigError, match=r"^out .* is a file, not a folder"):
        run_sweep({"model": {"max_epochs": 1}}, out=tmp_path / "f", seeds=1, progress=False)


def test_rkm_energy_refuses_its_outputs_before_the_study(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["energy", "--out", str(tmp_path / "f"), "--sizes", "4"]) == 2
    assert one_line(capsys) == f"--out {tmp_path / 'f'} is a file, not a folder; choose a folder."
    (tmp_path / "e" / "energy.csv").mkdir(parents=True)
    assert main(["energy", "--out", str(tmp_path / "e"), "--sizes", "4"]) == 2
    assert one_line(capsys) == (f"{tmp_path / 'e' / 'energy.csv'} is a folder, not a regular file; rkm energy writes "
                                "energy.csv there: remove or rename it.")


def test_convert_pyrkm_to_a_device_names_the_option(tmp_path, capsys):
    assert main(["convert-pyrkm", str(tmp_path), "-o", os.devnull]) == 2
    assert one_line(capsys) == f"-o {os.devnull} is not a folder; choose a folder."
    with pytest.raises(ConfigError, match="^output .* is not a folder"):
        convert_each(tmp_path, os.devnull)


def test_an_os_error_that_escapes_is_said_without_errno(tmp_path, capsys, monkeypatch):
    def refuse(args):
        raise IsADirectoryError(21, "Is a directory", str(tmp_path / "x"))

    monkeypatch.setitem(__import__("rkm.app._cli", fromlist=["COMMANDS"]).COMMANDS, "datasets", refuse)
    assert main(["datasets"]) == 2
    assert one_line(capsys) == f"{tmp_path / 'x'}: Is a directory."


def test_an_output_file_or_figure_that_is_a_folder_is_named_in_plain_words(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--preset", "bars", "--max-epochs", "10", "--log-every", "10", "--run-dir", str(run),
                 "--no-progress"]) == 0
    (tmp_path / "x.png").mkdir()
    capsys.readouterr()
    for argv, flag in ((["generate", str(run), "--out", str(tmp_path / "x.png")], "--out"),
                       (["evaluate", str(run), "--json", str(tmp_path / "x.png")], "--json")):
        assert main(argv) == 2
        assert one_line(capsys) == f"{flag} {tmp_path / 'x.png'} is a folder, not a regular file; give a new file name."
    (run / "figures" / "samples.png").unlink()
    (run / "figures" / "samples.png").mkdir()
    assert main(["plot", str(run)]) == 0
    assert (f"samples.png not drawn: {run / 'figures' / 'samples.png'} is a folder, not a regular file; remove or "
            "rename it.") in capsys.readouterr().out
