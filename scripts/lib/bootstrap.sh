# Sourced by the project's scripts: installs what is missing, from nothing, then returns.
#   - OpenSSH (server + client) and curl: apt-get when root, else says exactly what to install
#   - chromium (the browser tests' headless browser) too when ROLELAB_EXTRAS has "test"
#   - .venv (Python >= 3.10) with this project and the extras named in ROLELAB_EXTRAS
# Re-runs are cheap: pip runs only when pyproject.toml or the extras changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
EXTRAS="${ROLELAB_EXTRAS:-}"

say() { printf 'rolelab setup: %s\n' "$*" >&2; }

missing_system_tools() {
  local missing=()
  command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  # Debian's python3 makes venvs only with python3-venv (ensurepip)
  "${PYTHON:-python3}" -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  case ",$EXTRAS," in
    *,test,*) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;  # the path the browser tests use
  esac
  echo "${missing[@]:-}"
}

install_system_tools() {
  local missing
  missing="$(missing_system_tools)"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing $missing (apt-get)"
    apt-get update -qq >/dev/null
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    say "missing: $missing. Install it, e.g.: sudo apt-get install $missing  (Fedora: sudo dnf install openssh-server openssh-clients curl)"
    exit 2
  fi
}

install_python_env() {
  local python="${PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "Python 3.10 or newer is needed as '$python' (set PYTHON=/path/to/python3.x)"
    exit 2
  fi
  if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then  # absent, or half-made by a failed run
    say "creating $VENV"
    "$python" -m venv --clear "$VENV"
  fi
  local want have stamp="$VENV/.rolelab-installed"
  want="$(cat "$ROOT/pyproject.toml" "$ROOT/requirements.txt" | sha256sum | cut -c1-16)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  # Up to date when the project files are unchanged and the extras installed are ours, or when
  # ours are none (a venv made by test.sh serves demo.sh as it is).
  if [ "${have%%\[*}" != "$want" ] || { [ -n "$EXTRAS" ] && [[ "$have" != *"[$EXTRAS]"* ]]; }; then
    say "installing the project into .venv${EXTRAS:+ with [$EXTRAS]} (first run takes a minute)"
    local log="$VENV/rolelab-pip.log"
    if ! { "$VENV/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
           "$VENV/bin/python" -m pip install --disable-pip-version-check -e "$ROOT${EXTRAS:+[$EXTRAS]}"; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      say "pip could not install the project; the full log is $log"
      exit 2
    fi
    echo "$want[$EXTRAS]" > "$stamp"
  fi
}

install_system_tools
install_python_env
