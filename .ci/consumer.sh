#!/usr/bin/env bash
# The packages as a user gets them: build, `pnpm pack` the four packages, and in a fresh
# `mktemp -d` project outside the workspace `npm install` the tarballs plus effect & co. from the
# registry, then type-check (NodeNext and Bundler), run a program with plain node, run a vitest
# file using PgTest.layer, and lint every tarball with publint and attw. Removes what it creates.
# Usage: .ci/consumer.sh   (needs Node 20+, network access to the npm registry; no stdin)
set -euo pipefail
exec </dev/null
export CI=true
repo=$(cd "$(dirname "$0")/.." && pwd)
PNPM=(npx -y pnpm@12.4.2)
started=$(date +%s)
step() { printf '\n::: consumer: %s (t=%ss)\n' "$*" "$(($(date +%s) - started))"; }

work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
tarballs="$work/tarballs"
app="$work/app"
mkdir -p "$tarballs" "$app"
# the consumer tests use the embedded server, not whatever database the CI environment names
unset DATABASE_URL PGFX_TEST_TARGETS

step "build (tsc -b tsconfig.build.json, from clean)"
cd "$repo"
rm -rf packages/*/dist packages/*/tsconfig.build.tsbuildinfo
"${PNPM[@]}" run --silent build

step "pack"
for pkg in core pool copy testing; do
  (cd "packages/$pkg" && "${PNPM[@]}" pack --pack-destination "$tarballs" >/dev/null)
done
ls -l "$tarballs"/*.tgz | awk '{ printf "  %-28s %7.1f kB\n", $NF, $5 / 1024 }' | sed "s#$tarballs/##"

# the versions the workspace is tested with
version_of() { node -e 'const p = require(process.argv[1]); const v = { ...p.dependencies, ...p.devDependencies }[process.argv[2]]; if (!v) process.exit(1); console.log(v)' "$repo/package.json" "$1"; }
registry=()
for dep in effect @effect/sql-pg @effect/platform-node @effect/vitest vitest typescript; do
  registry+=("$dep@$(version_of "$dep")")
done
registry+=("@types/node@^22") # vitest 5 wants 22+ types (an optional peer npm enforces)

step "npm install (outside the workspace: $app)"
cp -R "$repo/.ci/consumer/." "$app/"
cd "$app"
npm install --no-audit --no-fund --loglevel=error "$tarballs"/*.tgz "${registry[@]}"
npm ls --depth=0 2>/dev/null | sed 's/^/  /'
# one copy of effect: pgfx's packages take the consumer's as a peer
[ "$(find . -path '*/node_modules/effect/package.json' | wc -l)" = 1 ] ||
  { echo "more than one copy of effect installed:" >&2; find . -path '*/node_modules/effect/package.json' >&2; exit 1; }

step "tsc (NodeNext, emits out/) and tsc (Bundler, --noEmit)"
npx tsc -p tsconfig.nodenext.json
npx tsc -p tsconfig.bundler.json --noEmit

step "node out/main.js"
timeout --signal=TERM --kill-after=15 180 node out/main.js

step "vitest run (PgTest.layer)"
timeout --signal=TERM --kill-after=15 300 npx vitest run

step "publint and attw on each tarball"
for tarball in "$tarballs"/*.tgz; do
  echo "  $(basename "$tarball")"
  npx -y publint@0.3.25 --strict "$tarball"
  npx -y @arethetypeswrong/cli@0.18.5 --profile esm-only "$tarball"
done

step "done in $(($(date +%s) - started)) s"
