#!/usr/bin/env bash
# chromium.sh installs Debian's headless-capable Chromium for the browser
# tests (host/internal/console), when /usr/bin/chromium is missing.
#
#   scripts/chromium.sh        install chromium if missing, then print its version
#
# It uses apt-get (with sudo when not root) and only Debian's packages: no
# browser build is downloaded from anywhere else. Exit status is non-zero,
# with a message on stderr, when the install fails.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

die() {
	echo "chromium.sh: $*" >&2
	exit 1
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

if [ ! -x "$CHROMIUM" ]; then
	echo "chromium.sh: installing chromium from Debian packages" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y -q --no-install-recommends chromium >/dev/null; then
		as_root apt-get update -q >/dev/null || die "apt-get update failed"
		as_root apt-get install -y -q --no-install-recommends chromium >/dev/null || die "apt-get install chromium failed"
	fi
	[ -x "$CHROMIUM" ] || die "$CHROMIUM still missing after install"
fi
"$CHROMIUM" --version 2>/dev/null || die "$CHROMIUM is installed but does not run"
