#!/usr/bin/env bash
# redis.sh starts and stops a throwaway redis-server for tests.
#
#   scripts/redis.sh start PORT DIR   install redis-server if missing, start it
#                                     daemonized on 127.0.0.1:PORT with no
#                                     persistence (pidfile and log in DIR), and
#                                     wait until it answers PING
#   scripts/redis.sh stop DIR         stop the server started with that DIR
#
# Exit status is non-zero, with a message on stderr, when a step fails.
set -euo pipefail

die() {
	echo "redis.sh: $*" >&2
	exit 1
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

install_redis() {
	command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
	echo "redis.sh: installing redis-server from Debian packages" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y -q redis-server >/dev/null; then
		as_root apt-get update -q >/dev/null || die "apt-get update failed"
		as_root apt-get install -y -q redis-server >/dev/null || die "apt-get install redis-server failed"
	fi
	# The package starts a system service on 6379; tests use their own ports,
	# so leave it be unless it was started by this install.
	command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after install"
}

start() {
	local port="$1" dir="$2"
	case "$port" in '' | *[!0-9]*) die "start: PORT must be a number, got '$port'" ;; esac
	[ -n "$dir" ] || die "start: DIR is required"
	install_redis
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	if [ -f "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
		if [ "$(cat "$dir/redis.port" 2>/dev/null)" = "$port" ] &&
			[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
			echo "redis.sh: already running on 127.0.0.1:$port" >&2
			return 0
		fi
		die "start: a redis-server from $dir is already running (pid $(cat "$dir/redis.pid")) on another port"
	fi
	redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
		--daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
		--dir "$dir" --save '' --appendonly no ||
		die "start: redis-server failed; see $dir/redis.log"
	local i
	for i in $(seq 1 100); do
		if [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = "PONG" ]; then
			echo "$port" >"$dir/redis.port"
			return 0
		fi
		sleep 0.05
	done
	tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
	die "start: redis-server on 127.0.0.1:$port did not answer PING within 5s"
}

stop() {
	local dir="$1"
	[ -n "$dir" ] || die "stop: DIR is required"
	[ -f "$dir/redis.pid" ] || return 0
	local pid
	pid="$(cat "$dir/redis.pid")"
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		# redis-server removes its pidfile on a clean exit. (kill -0 alone
		# can see a zombie where nothing reaps the daemon.)
		local i
		for i in $(seq 1 100); do
			[ -f "$dir/redis.pid" ] && kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		if [ -f "$dir/redis.pid" ] && kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$dir/redis.pid" "$dir/redis.port"
}

case "${1:-}" in
start) start "${2:-}" "${3:-}" ;;
stop) stop "${2:-}" ;;
*) die "usage: $0 start PORT DIR | stop DIR" ;;
esac
