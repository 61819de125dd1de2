#!/usr/bin/env bash
# Builds every built-in plugin (plugins/*/wasm) to a sandbox module at
# host/internal/builtin/wasm/<name>.wasm, where <name> is the config name
# given by the "moat:builtin <name>" line of the package's main.go. A module
# newer than every Go file of the module tree it depends on (plugins/, sdk/,
# go.mod, go.sum) is not rebuilt. Two builds run at a time.
#
# Usage: scripts/build-plugins.sh [-f]   (-f rebuilds everything)
set -euo pipefail
cd "$(dirname "$0")/.."

force=0
if [[ "${1:-}" == "-f" ]]; then force=1; fi

out=host/internal/builtin/wasm
mkdir -p "$out"

# The newest input of any plugin: a change in plugins/ or sdk/ (the shared
# packages) or in the module files rebuilds what is older than it.
newest=$(find plugins sdk go.mod go.sum -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) \
	-not -name '*_test.go' -printf '%T@\n' | sort -n | tail -1)

jobs=()
for main in plugins/*/wasm/main.go; do
	dir=$(dirname "$main")
	name=$(sed -n 's|^// moat:builtin \([a-z0-9-]*\)$|\1|p' "$main")
	if [[ -z "$name" ]]; then
		echo "build-plugins: $main has no \"// moat:builtin <name>\" line" >&2
		exit 1
	fi
	target="$out/$name.wasm"
	if [[ $force == 0 && -f "$target" ]]; then
		built=$(stat -c %Y "$target")
		if awk -v b="$built" -v n="$newest" 'BEGIN { exit !(b >= n) }'; then
			continue
		fi
	fi
	jobs+=("$name ./$dir $target")
done

if [[ ${#jobs[@]} -eq 0 ]]; then
	echo "build-plugins: all modules up to date"
	exit 0
fi

build() {
	local name=$1 pkg=$2 target=$3
	local tmp="$target.tmp.$$"
	if GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags=-s -buildmode=c-shared -o "$tmp" "$pkg"; then
		mv -f "$tmp" "$target"
		echo "build-plugins: built $target"
	else
		rm -f "$tmp"
		echo "build-plugins: building $name failed" >&2
		return 1
	fi
}
export -f build

printf '%s\n' "${jobs[@]}" | xargs -P 2 -L 1 bash -c 'build "$@"' _
