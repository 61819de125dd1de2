#!/usr/bin/env bash
# Compresses the built-in modules that scripts/build-plugins.sh built
# (host/internal/builtin/wasm/<name>.wasm, git-ignored) into the committed,
# embedded host/internal/builtin/wasm/<name>.wasm.gz. A .gz is rewritten
# only when its content differs from the module, so an unchanged module
# leaves the tree unchanged. Run after changing a built-in or the SDK
# (make modules), and commit the result: TestCommittedModulesMatchSource
# fails until the committed modules are what the source builds to.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=host/internal/builtin/wasm
shopt -s nullglob
mods=("$dir"/*.wasm)
if [[ ${#mods[@]} -eq 0 ]]; then
	echo "pack-modules: no modules in $dir: run make plugins first" >&2
	exit 1
fi
for m in "${mods[@]}"; do
	gz="$m.gz"
	if [[ -f "$gz" ]] && gzip -dc "$gz" | cmp -s - "$m"; then
		continue
	fi
	gzip -9 -n -c "$m" >"$gz.tmp.$$"
	mv -f "$gz.tmp.$$" "$gz"
	echo "pack-modules: wrote $gz ($(stat -c %s "$gz") bytes)"
done
# The toolchain that built them: a different one builds different bytes,
# and TestCommittedModulesMatchSource says so instead of comparing.
go env GOVERSION >"$dir/TOOLCHAIN"
