#!/usr/bin/env bash
# Install what `python -m benchmarks.train_step` needs beyond rkm itself: pyrkm 0.1.0,
# the reference simulator, WITHOUT its declared dependencies.
#
#   bash benchmarks/setup.sh            # into .venv (created by `make setup`)
#   VENV=/path/to/venv bash benchmarks/setup.sh
#
# Why --no-deps: pyrkm declares torchvision (and pandas). PyPI's torchvision cannot load its
# compiled ops beside the pinned CPU build of torch that rkm uses, and pip would also try
# to replace that torch. pyrkm's import-time dependencies are torch, numpy, scipy and
# matplotlib (rkm's own dependencies, already in the venv) plus torchvision, which the
# benchmark replaces with a stub inside its pyrkm worker process (benchmarks/pyrkm_compat.py).
# pandas is declared but never imported; networkx is imported only by pyrkm.circuit_utils,
# which `import pyrkm` does not load. The sklearn comparison uses scikit-learn and
# threadpoolctl, which rkm already depends on. So no extra package is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "no $PY: create the environment first (make setup)" >&2
    exit 1
fi
"$PY" -m pip install --quiet --no-deps "pyrkm==0.1.0"
"$PY" - <<'PYEOF'
import importlib.util, sys
needed = ["torch", "numpy", "scipy", "matplotlib", "sklearn", "threadpoolctl", "rkm"]
missing = [m for m in needed if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"missing in {sys.executable}: {', '.join(missing)} (run `make setup` first)")
PYEOF
"$PY" -m benchmarks.pyrkm_compat
echo "ready: $PY -m benchmarks.train_step"
