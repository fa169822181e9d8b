#!/usr/bin/env bash
# Install Debian packages the tests need when they are missing and we are allowed to.
# Usage: scripts/ensure-debian.sh PATH=PACKAGE [PATH=PACKAGE ...]   e.g. /usr/bin/chromium=chromium
# Chromium drives the browser tests; faketime (libfaketime) moves the clock in the drill tests and
# in CI's pass a year ahead. Without root or sudo, the tests that need a missing one are skipped.
set -euo pipefail
missing=()
for pair in "$@"; do
  [ -e "${pair%%=*}" ] || missing+=("${pair#*=}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1; then
  sudo=(sudo)
else
  echo "Missing Debian packages (${missing[*]}) cannot be installed here; the tests that need them are skipped." >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No apt-get: install ${missing[*]} by hand; the tests that need them are skipped." >&2
  exit 0
fi
echo "Installing Debian packages for the tests: ${missing[*]}..."
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
