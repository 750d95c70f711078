#!/usr/bin/env bash
# Creates the virtualenv that Pulumi.yaml names (venv/) from the pinned requirements; no-op when they are unchanged.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/env.sh"
cd "$MODELSHIP_ROOT"
stamp=venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "venv up to date" >&2
  exit 0
fi
python3 -m venv venv
progress "installing the python virtualenv (requirements.txt, requirements-dev.txt)" \
  venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
echo "$want" > "$stamp"
