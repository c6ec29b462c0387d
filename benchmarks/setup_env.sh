#!/usr/bin/env bash
# Creates .venv-bench: the project's .venv plus torch-pruning 1.6.1, for the comparison benchmarks.
#
# torch-pruning is not a dependency of prunekit, so it lives in its own environment. The bench
# environment reuses the main environment's packages (torch, torchvision, prunekit...) through a
# .pth file, so both tools run on exactly the same torch build; torch-pruning is installed with
# --no-deps so that pip never pulls a second torch.
#
# Usage: bash benchmarks/setup_env.sh            (from the repository root, after the main .venv exists)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MAIN="$ROOT/.venv"
BENCH="$ROOT/.venv-bench"
TP_VERSION="1.6.1"

if [ ! -x "$MAIN/bin/python" ]; then
    echo "error: $MAIN/bin/python not found; create the main environment first (make venv or python -m venv .venv)" >&2
    exit 1
fi

"$MAIN/bin/python" -m venv "$BENCH"
MAIN_SITE="$("$MAIN/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
BENCH_SITE="$("$BENCH/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# site.addsitedir appends the main site-packages after the bench environment's own and also runs
# its .pth files (the editable install of prunekit is one), so a package installed in .venv-bench
# wins over the same package in .venv.
echo "import site; site.addsitedir('$MAIN_SITE')" > "$BENCH_SITE/_prunekit_main_venv.pth"
"$BENCH/bin/python" -m pip install --quiet --no-deps "torch-pruning==$TP_VERSION"
"$BENCH/bin/python" -c "import importlib.metadata as md, torch, prunekit; print('bench env ready: torch', torch.__version__, '| torch-pruning', md.version('torch-pruning'), '| prunekit', prunekit.__version__)"
