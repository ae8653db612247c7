#!/usr/bin/env bash
# Make .venv/ with everything the SOC and its tests need. Idempotent.
# Installs Debian packages only when something is missing (needs root, as on the
# project's machines); Python packages come from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Python 3.11 or newer is needed (found {sys.version.split()[0]}) / Cần Python 3.11 trở lên")
PY

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages / cài gói Debian: $*"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing system packages (install them as root): $*" >&2
    exit 1
  fi
}

# Debian splits venv/ensurepip out of the interpreter package.
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  apt_install python3-venv
fi
# The TLS syslog tests make a throw-away certificate with the openssl CLI.
command -v openssl >/dev/null || apt_install openssl
# The service tests run on SQLite and on a real PostgreSQL server they start on loopback.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  apt_install postgresql
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "environment ready / môi trường đã sẵn sàng: .venv"
