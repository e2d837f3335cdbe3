#!/usr/bin/env bash
# Install the project with its test extras into .venv and run the default (non-slow) test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v espeak-ng >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq espeak-ng >/dev/null) || echo "warning: espeak-ng not installed; speech tests will skip"
fi
# The web page's browser tests drive Debian's headless Chromium through Playwright (no browser download).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null) || echo "warning: chromium not installed; browser tests will skip"
fi
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test]"
# The explicit-imagery screen: nudenet declares opencv-python-headless, which would clash with
# opencv-python (both install cv2), so it goes in without its (already present) dependencies.
python -m pip install -q --no-deps "nudenet==3.4.2"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
python -m pytest -q "$@"
