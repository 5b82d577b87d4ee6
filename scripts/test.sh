#!/usr/bin/env bash
# The test suite from nothing: system tools, .venv with the test extras, then pytest.
# Extra arguments go to pytest (e.g. tests/unit -x).
set -euo pipefail
export ROLELAB_EXTRAS=test
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
