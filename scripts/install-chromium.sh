#!/bin/sh
# Debian's chromium and chromium-driver, which the /ui page's browser test drives through
# selenium (tests/browser.py); `make test` runs this. Nothing is done when both are installed.
set -e
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "chromium and chromium-driver are missing: run as root, or" \
         "sudo apt-get install chromium chromium-driver" >&2
    exit 1
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
