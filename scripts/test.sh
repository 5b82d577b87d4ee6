#!/usr/bin/env bash
# The test suite from nothing: system tools, .venv with the test extras, the import-linter
# contracts and ruff, then pytest.
# Extra arguments go to pytest (e.g. tests/unit -x).
set -euo pipefail
export ROLELAB_EXTRAS=test
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"
cd "$ROOT"
# Structure first (seconds): the layers of labs/ and no import cycles, then lint.
"$VENV/bin/lint-imports" --no-cache
"$VENV/bin/ruff" check .
# Test files spread over the machine's cores (a file's tests stay together: they share its lab).
# --no-loadscope-reorder: the longest files first (tests/conftest.py), not the files with the most tests.
exec "$VENV/bin/python" -m pytest -n "${ROLELAB_TEST_WORKERS:-auto}" --dist loadfile --no-loadscope-reorder "$@"
