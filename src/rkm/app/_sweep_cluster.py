"""The Dask cluster a sweep runs on: an embedded LocalCluster, or an existing scheduler checked first.

A ``--scheduler`` is an address (``tcp://HOST:PORT``, or ``HOST:PORT``) or the path of a scheduler
file (the JSON that ``dask scheduler --scheduler-file`` writes). It is parsed with Dask's own
address parser and then probed: a Dask ``identity`` request under :func:`asyncio.wait_for`, whose
deadline holds whatever answers (a web server, a closed port, a silent one), within Dask's own
connect timeout (``distributed.comm.timeouts.connect``, 30 s unless configured, e.g.
``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=10s``). Every way this fails is one
:class:`~rkm.errors.ConfigError` that says what was found and what to give instead. The embedded
cluster keeps Dask's warnings (a worker killed as the cluster closes...) to debug logging
(``rkm -v``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import _files

logger = logging.getLogger("rkm.app.sweep")

SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
"""The address schemes of a Dask scheduler (``inproc`` is one process's own)."""


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _fix() -> str:
    return ("give the scheduler's address (tcp://HOST:PORT) or the path of the scheduler file that `dask scheduler "
            "--scheduler-file FILE` wrote")


def scheduler_address(scheduler: Any) -> str:
    """The address ``scheduler`` names (itself, or the ``address`` of the scheduler file it names), parsed."""
    from distributed.comm.addressing import parse_address, parse_host_port

    text = str(scheduler).strip() if isinstance(scheduler, (str, os.PathLike)) else ""
    if not text:
        raise ConfigError(f"--scheduler {scheduler!r} names no scheduler; {_fix()}.")
    address = text
    if "://" not in text and (os.path.lexists(text) or ":" not in text):
        if not os.path.lexists(text):
            raise ConfigError(f"--scheduler {text!r} is neither an address (it has no :PORT) nor an existing "
                              f"scheduler file; {_fix()}.")
        info = _files.read_json(Path(text), "scheduler file", ConfigError, limit=1 << 20)
        recorded = info.get("address")
        if not isinstance(recorded, str):
            raise ConfigError(f"the scheduler file {text} has no \"address\" string, so it is not the file `dask "
                              f"scheduler --scheduler-file` writes; {_fix()}.")
        address = recorded
    try:
        scheme, location = parse_address(address)
        if scheme not in SCHEMES:
            raise ValueError(f"the scheme {scheme!r} is not one of a Dask scheduler ({', '.join(SCHEMES)})")
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except ValueError as err:
        raise ConfigError(f"--scheduler {address!r} is not a Dask scheduler address ({err}); {_fix()}.") from None
    return address


async def _identity(address: str, seconds: float) -> dict:
    from distributed.core import rpc

    async with rpc(address, timeout=seconds) as remote:
        return await remote.identity()


def probe(address: str) -> None:
    """Ask ``address`` who it is, within Dask's connect timeout; a ConfigError unless a Dask scheduler answers."""
    import dask
    from dask.utils import parse_timedelta

    seconds = float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds"))
    try:
        answer = asyncio.run(asyncio.wait_for(_identity(address, seconds), seconds))
    except (asyncio.TimeoutError, TimeoutError):
        raise ConfigError(f"no Dask scheduler answered at {address} within {seconds:g} s (Dask's "
                          "distributed.comm.timeouts.connect); start it with `dask scheduler`, or check the address."
                          ) from None
    except OSError as err:
        raise ConfigError(f"cannot reach the Dask scheduler at {address} ({_first_line(err)}); start it with `dask "
                          "scheduler`, or check the address.") from None
    except Exception as err:  # noqa: BLE001 - whatever listens there spoke something else than Dask
        raise ConfigError(f"{address} did not answer as a Dask scheduler ({type(err).__name__}: {_first_line(err)}); "
                          f"{_fix()}.") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        kind = answer.get("type") if isinstance(answer, dict) else type(answer).__name__
        raise ConfigError(f"{address} is a Dask {kind}, not a scheduler; {_fix()}.")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def checked_scheduler(scheduler: Any) -> str:
    """The address of ``scheduler`` (an address or a scheduler file), once a Dask scheduler answered there."""
    address = scheduler_address(scheduler)
    probe(address)
    return address


@contextlib.contextmanager
def cluster_client(client: Any, address: str | None, workers: int | None) -> Iterator:
    """The given client, a client of the scheduler at ``address`` (see :func:`checked_scheduler`), or an
    embedded LocalCluster of ``workers`` one-thread processes."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if address is not None:
        try:
            remote = Client(address)
        except (OSError, TimeoutError) as err:
            raise ConfigError(f"cannot reach the Dask scheduler at {address} ({_first_line(err)}); start it with "
                              "`dask scheduler`, or check the address.") from None
        with remote:
            yield remote
        return
    n = default_workers() if workers is None else workers
    most = 4 * (os.cpu_count() or 1)
    if not 1 <= n <= most:
        raise ConfigError(f"--workers {n}: the embedded cluster takes 1 to {most} worker processes here (4 per core; "
                          "each runs one training at a time); give --workers between them, or --scheduler ADDRESS "
                          "for a larger cluster.")
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    quiet = logging.WARNING if logger.isEnabledFor(logging.DEBUG) else logging.ERROR
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                      env=threads, silence_logs=quiet) as cluster, Client(cluster) as local:
        yield local
