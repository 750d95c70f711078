# Environment for every modelship script, test and make target: sourced, never run.
# shellcheck shell=bash
MODELSHIP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export MODELSHIP_ROOT
# Outside the clone on purpose: CI clones anew, and Go builds and images must survive that.
export MODELSHIP_CACHE=${MODELSHIP_CACHE:-$HOME/.cache/modelship}
# shellcheck source=versions.env
set -a; . "$MODELSHIP_ROOT/toolchain/versions.env"; set +a

export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$MODELSHIP_ROOT/.modelship/state}
# A local passphrase for the local backend; set your own (or use a KMS secrets provider) for shared state.
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE-modelship-local}
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true

if ! command -v pulumi >/dev/null 2>&1 || [ -n "${MODELSHIP_PULUMI_BIN:-}" ]; then
  # No Pulumi from the official installer: use the one toolchain/pulumi.sh built.
  export MODELSHIP_PULUMI_BIN=$MODELSHIP_CACHE/pulumi/$PULUMI_VERSION/bin
  export PULUMI_HOME=$MODELSHIP_CACHE/pulumi/$PULUMI_VERSION/home
  export PATH=$MODELSHIP_PULUMI_BIN:$PATH
fi
export PATH=$MODELSHIP_ROOT/venv/bin:$PATH
# The default local backend's directory must exist before `pulumi stack select` on a fresh clone.
case $PULUMI_BACKEND_URL in file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;; esac
