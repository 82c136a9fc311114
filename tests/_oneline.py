"""The command line as a test calls it: ``run_cli(argv)`` (argparse's exits as statuses) and
``one_line(capsys)``, the single ``rkm: error:`` line a mistake must give."""

from rkm.app._cli import main


def run_cli(argv):
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


def one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkm: error: "), err
    return err[0]
