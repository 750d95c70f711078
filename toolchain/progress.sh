# progress WHAT CMD...: runs CMD; while it runs, prints what is being built and the time elapsed every
# MODELSHIP_PROGRESS_S seconds (default 30), so a cold build of many minutes never looks hung. Sourced, never run.
# shellcheck shell=bash
progress() {
  local what=$1 start=$SECONDS parent=$BASHPID ticker rc
  shift
  # The ticker stops with its parent too, should CMD be a function that exits the script.
  (
    while sleep "${MODELSHIP_PROGRESS_S:-30}" && kill -0 "$parent" 2>/dev/null; do
      printf '    ... %s: %dm%02ds elapsed\n' "$what" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)) >&2
    done
  ) &
  ticker=$!
  # Not `"$@" || rc=$?`: that would turn `set -e` off inside CMD. Under `set -e` a failing CMD ends the script
  # here (and the ticker with it); otherwise its status is returned.
  "$@"
  rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  return "$rc"
}
