#!/usr/bin/env bash
# Makes policy/venv, the policy pack's own virtualenv (Pulumi's layout for a Python pack). Idempotent: a
# venv whose stamp matches requirements.txt is left alone.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=$here/venv
stamp=$venv/.requirements.sha256
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
echo "$want" >"$stamp"
