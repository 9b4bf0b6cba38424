#!/usr/bin/env bash
# The `make demo` tour: a short sequence of real nvlm commands on CPU.
#
#   make demo                  # MODEL=bert
#   make demo MODEL=electra
#   MODEL=transformer-xl bash tools/demo.sh    # with .venv/bin on PATH (make demo does that)
#
# Everything it writes goes to demo-run/<model>/ (gitignored; DEMO_DIR overrides demo-run),
# emptied at the start so that every run starts from the same state.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
model=${MODEL:-bert}
case $model in
    bert | electra | transformer-xl | transformer_xl) ;;
    *)
        echo "demo: unknown MODEL '$model'; use bert, electra or transformer-xl" >&2
        exit 2
        ;;
esac

# Prefer the project's venv when the caller has not put one on PATH.
if ! command -v nvlm >/dev/null && [[ -x $root/.venv/bin/nvlm ]]; then
    PATH=$root/.venv/bin:$PATH
fi
command -v nvlm >/dev/null || {
    echo "demo: nvlm is not installed; run: make demo" >&2
    exit 1
}

run_dir=${DEMO_DIR:-$root/demo-run}/$model
rm -rf -- "$run_dir"
mkdir -p -- "$run_dir"
cd -- "$run_dir"

step() { printf '\n$ %s\n' "$*" >&2; "$@"; }

echo "nvlm demo: model=$model, working in $run_dir" >&2
step nvlm --version
step nvlm presets list
