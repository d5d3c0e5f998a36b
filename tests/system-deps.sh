#!/bin/sh
# Debian packages that only the browser (chromium) and OCI (skopeo) tests need. As root on
# Debian, as CI runs, install the missing ones; elsewhere say which tests will be skipped.
set -eu
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v skopeo >/dev/null 2>&1 || missing="$missing skopeo"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
	echo "installing Debian packages for the browser and OCI tests:$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	exit 0
fi
echo "NOTE: missing$missing (not root on Debian, so not installed):"
case "$missing" in *chromium*) echo "  browser tests (tests/e2e) will be skipped; install: apt-get install chromium" ;; esac
case "$missing" in *skopeo*) echo "  skopeo OCI tests will be skipped; install: apt-get install skopeo" ;; esac
