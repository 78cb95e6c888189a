#!/usr/bin/env bash
# Set up (first time) and run every test: cvcore's unit tests, the pages' AppTest
# tests and the real-browser test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
exec .venv/bin/python -m pytest "$@"
