#!/bin/sh
# Create .venv on Debian's python3, install the pinned packages and this
# project, and load the eventlet compatibility module at interpreter start.
# A second run with unchanged requirements does nothing.
set -eu
. "$(dirname "$0")/common.sh"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/.venv"
PYTHON=/usr/bin/python3
STAMP="$VENV/.tmip-installed"

[ -x "$PYTHON" ] ||
    die "$PYTHON not found; run scripts/install-debian-packages.sh first."

# The stamp records the requirement files' contents: a change reinstalls.
wanted=$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" \
    "$ROOT/setup.cfg" | md5sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$wanted" ] &&
        [ -x "$VENV/bin/ryu-manager" ]; then
    exit 0
fi

echo "creating the virtual environment in $VENV"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" ||
    die "python3 -m venv failed; install Debian's python3-venv."
PIP="$VENV/bin/pip --disable-pip-version-check -q"

# Ryu 4.34's setup.py uses an API that setuptools 68 removed, and PyPI has
# only its source, so it is built with an older setuptools and no isolation.
$PIP install -c "$ROOT/constraints.txt" setuptools wheel pbr ||
    die "pip could not install setuptools, wheel and pbr."
$PIP install -c "$ROOT/constraints.txt" --no-build-isolation ryu ||
    die "pip could not install ryu 4.34."
$PIP install -c "$ROOT/constraints.txt" -r "$ROOT/requirements.txt" ||
    die "pip could not install requirements.txt."
$PIP install -c "$ROOT/constraints.txt" --no-build-isolation \
    --no-deps -e "$ROOT" ||
    die "pip could not install this project into $VENV."

# Python runs 'import' lines of .pth files in site-packages at start-up, so
# every interpreter of the environment, ryu-manager included, gets the fix.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import tmip_ryu.eventlet_compat" >"$site/tmip_ryu_eventlet_compat.pth"

"$VENV/bin/python" -c 'import ryu.app.wsgi' ||
    die "ryu.app.wsgi does not import in $VENV."
echo "$wanted" >"$STAMP"
echo "virtual environment ready: $VENV"
