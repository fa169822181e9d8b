#!/usr/bin/env bash
# `make run`: the web app on http://127.0.0.1:5000 plus the background worker, stopped together.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi:app
.venv/bin/flask worker &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
echo
echo "Skin Clinic is running at http://127.0.0.1:5000  (Ctrl+C stops the app and the worker)"
echo
.venv/bin/flask run --host 127.0.0.1 --port 5000
