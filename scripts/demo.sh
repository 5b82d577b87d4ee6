#!/usr/bin/env bash
# The main job on the embedded default: the whole lesson on an offline lab cloud, end to end.
# Sets up what is missing first. Extra arguments go to `rolelab demo` (e.g. --config students=3).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/bootstrap.sh"
exec "$VENV/bin/rolelab" demo "$@"
