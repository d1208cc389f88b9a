#!/bin/sh
# Runs inside the Dockerfile.amazonlinux image: the SAME pack pipeline as the
# native builder (the installed lambdapack package is mounted at /src/lambdapack), with this image's
# interpreter, so .pyc and the smoke run are the target's own. Arguments are
# passed to `lambdapack pack` unchanged; outputs go to /outputs.
set -eu
export HOME=${HOME:-/tmp}
export PYTHONPATH=/src

# The interpreter Lambda base images run functions with, else the system one.
PYTHON=$(ls /var/lang/bin/python3.* 2>/dev/null | grep -E 'python3\.[0-9]+$' | head -n1 || true)
PYTHON=${PYTHON:-$(command -v python3)}
VERSION=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# lambdapack's own dependencies, one a line, as its installed metadata names them (the
# host passes LAMBDAPACK_REQUIREMENTS: one home, pyproject.toml), installed once per Python,
# machine and list into the mounted cache, and only then renamed into place.
: "${LAMBDAPACK_REQUIREMENTS:?the host passes lambdapack's requirements}"
KEY=$(printf '%s\n' "$LAMBDAPACK_REQUIREMENTS" | cksum | cut -d' ' -f1)
VENV=/cache/builder-venv/python$VERSION-$(uname -m)-$KEY
if [ ! -e "$VENV/.ready" ]; then
    rm -rf "$VENV.partial"
    "$PYTHON" -m venv "$VENV.partial"
    # shellcheck disable=SC2086  # one word per requirement
    printf '%s\n' "$LAMBDAPACK_REQUIREMENTS" > "$VENV.partial/requirements.txt"
    "$VENV.partial/bin/pip" install --quiet --disable-pip-version-check "pip>=24.2"
    "$VENV.partial/bin/pip" install --quiet --disable-pip-version-check -r "$VENV.partial/requirements.txt"
    touch "$VENV.partial/.ready"
    rm -rf "$VENV"
    mv "$VENV.partial" "$VENV"
fi
exec "$VENV/bin/python" -m lambdapack pack "$@"
