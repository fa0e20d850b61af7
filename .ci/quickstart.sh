#!/usr/bin/env bash
# The README's quick start where people really run it: `npm run demo` and `npm test` (one small
# embedded-server test file) in a fresh clone of REPO's HEAD that lies in a 0700 directory,
#   (a) as root (or as the current user when not root), in a `mktemp -d` folder;
#   (b) as a throwaway unprivileged user in its own 0700 home, when `useradd` works.
# DATABASE_URL is unset and PGFX_TEST_TARGETS=pg18 (the embedded PostgreSQL only). Everything it
# creates (clones, the user, its home) is removed at the end, also on failure or interruption.
# Usage: .ci/quickstart.sh [REPO]   (default: the repository this script is in). Needs no stdin.
set -euo pipefail
exec </dev/null
export CI=true
repo=$(cd "${1:-$(dirname "$0")/..}" && pwd)
rev=$(git -C "$repo" rev-parse HEAD)
tests=(packages/testing/test/server.test.ts packages/testing/test/embedded.test.ts)

started=$(date +%s)
step() { printf '\n::: %s (t=%ss)\n' "$*" "$(($(date +%s) - started))"; }
timed() { # timed LABEL COMMAND...: run, print its duration (and its output's tail on failure)
  local label=$1 t0=$(date +%s) log status=0
  shift
  log=$(mktemp)
  "$@" >"$log" 2>&1 || status=$?
  if [ "$status" = 0 ]; then
    printf '  %-44s ok   %3ss\n' "$label" "$(($(date +%s) - t0))"
    tail -n 4 "$log" | sed 's/^/    | /'
  else
    printf '  %-44s FAIL %3ss (exit %s)\n' "$label" "$(($(date +%s) - t0))" "$status"
    tail -n 60 "$log" | sed 's/^/    | /'
  fi
  rm -f "$log"
  return "$status"
}

root_dir=""
ci_user=""
cleanup() {
  local status=$?
  if [ -n "$ci_user" ] && id "$ci_user" >/dev/null 2>&1; then
    # the throwaway user's leftovers (nothing of anybody else's), then the user and its home
    pkill -KILL -u "$ci_user" 2>/dev/null || true
    sleep 0.2
    userdel -r "$ci_user" >/dev/null 2>&1 || userdel "$ci_user" >/dev/null 2>&1 || true
    groupdel "$ci_user" >/dev/null 2>&1 || true
  fi
  [ -n "$ci_user_home" ] && rm -rf "$ci_user_home"
  [ -n "$root_dir" ] && rm -rf "$root_dir"
  printf '\n::: quickstart %s (t=%ss)\n' "$([ "$status" = 0 ] && echo passed || echo FAILED)" "$(($(date +%s) - started))"
  exit "$status"
}
ci_user_home=""
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# The README's two commands (package.json installs on first use), in directory $1.
quickstart() {
  local dir=$1
  shift # the rest: how to run a command there (e.g. runuser -u USER --)
  local env=(env -u DATABASE_URL CI=true NO_COLOR=1 PGFX_TEST_TARGETS=pg18 npm_config_prefer_offline=true pnpm_config_prefer_offline=true)
  timed "npm run demo" "$@" "${env[@]}" bash -c "cd '$dir' && npm run demo"
  timed "npm test -- ${tests[*]##*/}" "$@" "${env[@]}" bash -c "cd '$dir' && npm test -- ${tests[*]}"
}

echo "repository $repo at $rev; node $(node --version); $(id -un) (uid $(id -u))"

step "(a) $(id -un): clone into a 0700 mktemp -d folder"
root_dir=$(mktemp -d)
chmod 0700 "$root_dir"
ls -ld "$root_dir"
git clone -q --no-hardlinks "$repo" "$root_dir/pgfx"
git -C "$root_dir/pgfx" checkout -q --detach "$rev"
quickstart "$root_dir/pgfx"
rm -rf "$root_dir"
root_dir=""

step "(b) an unprivileged user in its 0700 home"
if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null 2>&1 || ! command -v runuser >/dev/null 2>&1; then
  echo "skipped: needs root, useradd and runuser"
  exit 0
fi
candidate="pgfxci$$"
ci_user_home="/home/$candidate"
if ! useradd -m -d "$ci_user_home" -s /bin/bash "$candidate" >/dev/null 2>&1; then
  ci_user_home=""
  echo "skipped: useradd $candidate failed"
  exit 0
fi
ci_user=$candidate
chmod 0700 "$ci_user_home"
ls -ld "$ci_user_home"
# the clone is made by root (reading REPO needs no permission of the user's) without hard links
# to REPO's objects, then given to the user
git clone -q --no-hardlinks "$repo" "$ci_user_home/pgfx"
git -C "$ci_user_home/pgfx" checkout -q --detach "$rev"
# the user's pnpm store starts as a copy of ours, so the install is from cache, not the registry
store=$(cd "$repo" && npx -y pnpm@12.4.2 store path 2>/dev/null || true)
if [ -n "$store" ] && [ -d "$store" ]; then
  mkdir -p "$ci_user_home/.local/share/pnpm/store"
  cp -a "$store" "$ci_user_home/.local/share/pnpm/store/"
fi
# and so does its npm cache (npx fetches pnpm itself)
[ -d "$HOME/.npm" ] && cp -a "$HOME/.npm" "$ci_user_home/.npm"
chown -R "$ci_user:" "$ci_user_home"
quickstart "$ci_user_home/pgfx" runuser -u "$ci_user" -- env -u XDG_DATA_HOME -u XDG_CACHE_HOME -u XDG_CONFIG_HOME \
  -u PNPM_HOME -u npm_config_cache HOME="$ci_user_home" USER="$ci_user" LOGNAME="$ci_user"
