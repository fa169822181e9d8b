#!/usr/bin/env bash
# Install Debian packages the tests need when they are missing and we are allowed to.
# Usage: scripts/ensure-debian.sh PATH=PACKAGE [PATH=PACKAGE ...]   e.g. /usr/bin/chromium=chromium
# Chromium drives the browser tests; faketime (libfaketime) moves the clock in the drill tests and
# in CI's pass a year ahead; nginx runs the shipped site in tests/test_production_stack.py (the tests
# start it themselves on loopback ports, so its system service is not started on install). Without
# root or sudo, the tests that need a missing one are skipped.
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
# Installed for the tests only: no service (nginx on port 80) may start. Debian's way to say so is a
# policy-rc.d answering 101; one is put in place for this install unless the machine has its own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
  trap '"${sudo[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
