#!/usr/bin/env bash
# Runs every native Go fuzz target in the repository (every `func FuzzXxx`
# in a _test.go file) for a bounded time, one after the other, and stops at
# the first failure. A target without a committed seed corpus under its
# package's testdata/fuzz/FuzzXxx/ is an error, reported before any run.
#
# Usage: scripts/fuzz.sh [FUZZTIME]     (default 30s; any go test -fuzztime value)
# A failing input is saved by go test under the package's
# testdata/fuzz/FuzzXxx/; re-run it with: go test -run '^FuzzXxx$' ./pkg
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:-30s}

# "dir name" per target, from the Go files of the module (not node_modules,
# testdata or caches).
mapfile -t targets < <(
	grep -rHE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
		grep -vE '/(node_modules|testdata|\.cache|vendor)/' |
		sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*$|\1 \2|' |
		sort -u
)
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

missing=0
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	corpus="$dir/testdata/fuzz/$name"
	if [[ ! -d "$corpus" ]] || [[ -z "$(ls -A "$corpus")" ]]; then
		echo "fuzz: $name in $dir has no seed corpus (want files in $corpus)" >&2
		missing=1
	fi
done
if [[ $missing -ne 0 ]]; then
	exit 1
fi

echo "fuzz: ${#targets[@]} targets, $fuzztime each"
n=0
for t in "${targets[@]}"; do
	read -r dir name <<<"$t"
	n=$((n + 1))
	echo "fuzz: [$n/${#targets[@]}] $name ($dir)"
	if ! (cd "$dir" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" .); then
		echo "fuzz: $name in $dir FAILED; the failing input is under $dir/testdata/fuzz/$name/" >&2
		exit 1
	fi
done
echo "fuzz: all ${#targets[@]} targets passed ($fuzztime each)"
