#!/usr/bin/env bash
# Set up (first time) and start a class server: N page servers behind HAProxy, a Ray head for the
# jobs, one shared workspace store. Settings: class.toml (see class.example.toml). Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --class
exec .venv/bin/python -m classserver "$@"
