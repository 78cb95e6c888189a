#!/usr/bin/env bash
# Set up ConvNet Explorer's Python environment in .venv (idempotent, quick when done).
#   scripts/setup.sh          runtime packages (requirements.txt)
#   scripts/setup.sh --class  plus Debian's haproxy, for a class server (scripts/serve.sh)
#   scripts/setup.sh --dev    test tools (requirements-dev.txt) and, where apt-get works,
#                             Debian's chromium, haproxy and dataset-fashion-mnist
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, installed with apt-get where it works (as root, or with sudo).
apt_install() {
  [ $# -gt 0 ] || return 0
  local SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; }; then
    echo "Installing $* with apt-get ..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
  else
    echo "Note: could not install $* (no apt-get or no root)." >&2
  fi
}
haproxy_missing() { ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; }

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv 2>/dev/null; then
    # Debian and Ubuntu ship venv separately.
    rm -rf .venv
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv .venv
    else
      echo "Python's venv module is missing: install python3-venv (e.g. sudo apt-get install python3-venv)." >&2
      exit 1
    fi
  fi
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip

if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  # System packages the tests use: a browser for the real-browser test (Playwright drives
  # Debian's chromium; no browser is downloaded), HAProxy for the class server's tests and
  # Fashion-MNIST's original files.
  need=()
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  haproxy_missing && need+=(haproxy)
  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
  apt_install "${need[@]}"
else
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  if [ "${1:-}" = "--class" ] && haproxy_missing; then
    apt_install haproxy
  fi
fi
# imgaug 0.4.0 (the seed's augmentation library) declares a dependency on opencv-python, the
# desktop build, which would shadow the headless cv2 a server needs. Its real imports (numpy,
# scipy, scikit-image, imageio, six, cv2) are in requirements.txt, so it goes in without deps;
# cvcore/imgaug_compat.py makes it import on NumPy 2.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps imgaug==0.4.0
