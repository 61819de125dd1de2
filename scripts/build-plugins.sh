#!/usr/bin/env bash
# Builds every built-in plugin (plugins/*/wasm) to a sandbox module at
# host/internal/builtin/wasm/<name>.wasm, where <name> is the config name
# given by the "moat:builtin <name>" line of the package's main.go.
#
# The .wasm files are build outputs (git-ignored); what the binary embeds
# are their compressed copies, <name>.wasm.gz, committed and written by
# scripts/pack-modules.sh (make modules). make test builds these modules
# and TestCommittedModulesMatchSource compares them with the committed ones.
# The build is reproducible (-trimpath, no VCS stamp, the same Go toolchain
# gives the same bytes): every module is rebuilt (Go's build cache makes
# that cheap) and replaced only when its bytes changed, so the binary is
# relinked only when one did. Two builds run at a time.
#
# Usage: scripts/build-plugins.sh [OUTDIR]   (default host/internal/builtin/wasm)
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-host/internal/builtin/wasm}
if [[ "$out" == "-f" ]]; then out=host/internal/builtin/wasm; fi # the old "rebuild all" flag: every run rebuilds
mkdir -p "$out"

jobs=()
for main in plugins/*/wasm/main.go; do
	dir=$(dirname "$main")
	name=$(sed -n 's|^// moat:builtin \([a-z0-9-]*\)$|\1|p' "$main")
	if [[ -z "$name" ]]; then
		echo "build-plugins: $main has no \"// moat:builtin <name>\" line" >&2
		exit 1
	fi
	jobs+=("$name ./$dir $out/$name.wasm")
done

build() {
	local name=$1 pkg=$2 target=$3
	local tmp="$target.tmp.$$"
	if ! GOOS=wasip1 GOARCH=wasm go build -trimpath -buildvcs=false -ldflags=-s -buildmode=c-shared -o "$tmp" "$pkg"; then
		rm -f "$tmp"
		echo "build-plugins: building $name failed" >&2
		return 1
	fi
	if [[ -f "$target" ]] && cmp -s "$tmp" "$target"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$target"
		echo "build-plugins: built $target"
	fi
}
export -f build

printf '%s\n' "${jobs[@]}" | xargs -P 2 -L 1 bash -c 'build "$@"' _
