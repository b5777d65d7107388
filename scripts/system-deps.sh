#!/usr/bin/env bash
# Install the Debian packages pibridge's demo and tests need, where they are missing
# and this machine can install them (root, or passwordless sudo, with apt-get).
# Without them `pibridge sim` cannot start its broker; everything else still works.
set -euo pipefail

want=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || want+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || want+=(mosquitto-clients)
if [ "${1:-}" = "--test" ]; then
    command -v shellcheck >/dev/null 2>&1 || want+=(shellcheck)
    command -v systemd-analyze >/dev/null 2>&1 || want+=(systemd)
    # The web page's browser tests drive Debian's chromium (tests/web/test_browser.py).
    [ -x /usr/bin/chromium ] || want+=(chromium fonts-dejavu-core)
    # The demo's live terminal view is tested in a real terminal emulator.
    command -v tmux >/dev/null 2>&1 || want+=(tmux)
    /usr/bin/python3 -c 'import ensurepip, setuptools, wheel' >/dev/null 2>&1 ||
        want+=(python3-venv python3-setuptools python3-wheel)
fi

[ ${#want[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "pibridge: missing ${want[*]}; install them with your package manager" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "pibridge: missing ${want[*]}; run: sudo apt-get install ${want[*]}" >&2
    exit 0
fi
echo "pibridge: installing ${want[*]} from Debian's packages"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null
