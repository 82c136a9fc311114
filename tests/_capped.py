"""Run a reader in a forked child under an address-space cap, so a hang or a huge allocation shows as a result.

``capped(function, *args)`` returns ``"ok"``, ``"typed: ErrorClass: message"`` (an ``RKMError``) or
``"UNTYPED ErrorClass: message"`` (anything else, a MemoryError past the cap included). The child
may use 512 MB of address space beyond what it holds at the fork; a child still running after
``timeout`` seconds is killed and reported as a hang (the limit only catches a reader that blocks
for ever: none of these reads takes more than a fraction of a second).
"""

import multiprocessing
import resource

from rkm.errors import RKMError

BUDGET = 512 * 2**20


def _child(function, args, conn):
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + BUDGET, resource.RLIM_INFINITY))
    try:
        function(*args)
        conn.send("ok")
    except RKMError as err:
        conn.send(f"typed: {type(err).__name__}: {err}")
    except BaseException as err:  # noqa: BLE001 - the caller reports anything else
        conn.send(f"UNTYPED {type(err).__name__}: {err}")


def capped(function, *args, timeout=120):
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(function, args, child))
    proc.start()
    ready = parent.poll(timeout)
    if not ready:
        proc.kill()
    proc.join(10)
    if not ready:
        return f"HANG after {timeout} s"
    return parent.recv()
