#!/usr/bin/env bash
# Build Horovod once per (Horovod, TensorFlow, Python, transport) and install it into a venv.
#
#   tools/build_horovod.sh                                   # into ./.venv (what `make horovod` runs)
#   NVLM_PYTHON=/opt/nvlm/venv/bin/python HOROVOD_GPU_OPERATIONS=NCCL tools/build_horovod.sh  # Dockerfile
#
# Why not `pip install horovod==0.28.1`: 0.28.1 is the last release and fails to compile against
# TensorFlow >= 2.20, because horovod/tensorflow/xla_mpi_ops.cc includes XLA headers that TF no
# longer ships. That file only backs the optional XLA ops (HOROVOD_ENABLE_XLA_OPS), which nvlm does
# not use (Horovod ops stay outside XLA), so we build the sdist without it. The build takes about
# 2.5 minutes on 2 cores, hence the wheel cache: later set-ups, fresh clones included, reuse it.
#
# Environment (all optional):
#   NVLM_PYTHON           python of the target venv               (default: <repo>/.venv/bin/python)
#   NVLM_HOROVOD_VERSION  Horovod release                          (default: 0.28.1)
#   NVLM_WHEEL_CACHE      where built wheels are kept              (default: ~/.cache/nvlm/wheels)
#   NVLM_HOROVOD_MPI      auto | 1 | 0: build with MPI             (default: auto = if mpicc exists
#                         or can be installed with apt-get as root; otherwise Gloo only)
#   NVLM_APT              0 forbids apt-get (never touch system packages)
#   NVLM_BUILD_JOBS       parallel compile jobs                    (default: number of cores)
#   HOROVOD_GPU_OPERATIONS=NCCL (+ HOROVOD_NCCL_*, HOROVOD_BUILD_CUDA_CC_LIST): GPU build, as in
#                         the Dockerfile; the cache key then ends in -nccl.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=${NVLM_PYTHON:-$root/.venv/bin/python}
version=${NVLM_HOROVOD_VERSION:-0.28.1}
cache_root=${NVLM_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nvlm/wheels}
want_mpi=${NVLM_HOROVOD_MPI:-auto}
use_apt=${NVLM_APT:-auto}
jobs=${NVLM_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}
gpu_ops=${HOROVOD_GPU_OPERATIONS:-}

say() { printf '==> horovod: %s\n' "$*" >&2; }
die() {
    printf 'build_horovod: error: %s\n' "$*" >&2
    exit 1
}

[[ -x $py ]] || die "no python at $py (create the venv first: make venv)"
# Absolute, but not resolved: the venv's python is a symlink that must stay inside the venv.
py=$(cd "$(dirname "$py")" && pwd)/$(basename "$py")

# --- system packages ------------------------------------------------------------------------

apt_updated=0
# apt_install PKG...: install with apt-get when we are root on a Debian-like system; else fail.
apt_install() {
    [[ $use_apt != 0 && $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 1
    if [[ $apt_updated == 0 ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# Decide MPI or Gloo-only. The runtime needs libmpi too, so this also runs when a cached wheel
# is reused.
flavour=gloo
case $want_mpi in
    0) ;;
    1 | auto)
        if command -v mpicc >/dev/null; then
            flavour=mpi
        elif apt_install libopenmpi-dev openmpi-bin && command -v mpicc >/dev/null; then
            flavour=mpi
        elif [[ $want_mpi == 1 ]]; then
            die "NVLM_HOROVOD_MPI=1 but mpicc is missing; install Open MPI (libopenmpi-dev openmpi-bin)"
        else
            say "no MPI (mpicc not found, and installing Open MPI needs root and apt-get):" \
                "building Gloo only; launch with horovodrun --gloo"
        fi
        ;;
    *) die "NVLM_HOROVOD_MPI must be auto, 1 or 0, not '$want_mpi'" ;;
esac

# --- what to build ----------------------------------------------------------------------------

# Read versions from package metadata: importing TensorFlow just for this costs seconds.
versions=$(
    "$py" - <<'EOF'
import importlib.metadata as md
import sys

for name in ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu"):
    try:
        tf = md.version(name)
        break
    except md.PackageNotFoundError:
        pass
else:
    tf = "none"
print(tf, "%d.%d" % sys.version_info[:2])
EOF
)
read -r tf_version py_version <<<"$versions"
[[ $tf_version != none ]] || die "TensorFlow is not installed in $py's environment (make install)"

suffix=$flavour
case ${gpu_ops^^} in
    "") ;;
    NCCL) suffix+=-nccl ;;
    *) die "HOROVOD_GPU_OPERATIONS='$gpu_ops' is not supported here (use NCCL or leave it unset)" ;;
esac
key=horovod-$version-tf$tf_version-py$py_version-$suffix
dest=$cache_root/$key

# installed_ok: exit 0 when the venv already has this exact build (version, TensorFlow it was
# compiled against, transports).
installed_ok() {
    "$py" - "$version" "$flavour" "$gpu_ops" 2>/dev/null <<'EOF'
import json
import os
import sys

version, flavour, gpu_ops = sys.argv[1:4]
import horovod  # noqa: E402
import horovod.tensorflow as hvd  # noqa: E402
import tensorflow as tf  # noqa: E402

meta_file = os.path.join(os.path.dirname(horovod.__file__), "metadata.json")
with open(meta_file) as f:
    built_for = json.load(f).get("tensorflow")
ok = (
    horovod.__version__ == version
    and built_for == tf.__version__
    and hvd.gloo_built()
    and hvd.mpi_built() == (flavour == "mpi")
    and (not gpu_ops or bool(hvd.nccl_built()))
)
sys.exit(0 if ok else 1)
EOF
}

if installed_ok; then
    say "$key is already installed in $(dirname "$(dirname "$py")")"
    exit 0
fi

# --- build (unless cached) ------------------------------------------------------------------

find_wheel() { compgen -G "$dest/horovod-$version-*.whl" | head -n 1; }

mkdir -p "$cache_root"
# Two set-ups on one machine (a developer and CI) must not build into the same place at once.
if command -v flock >/dev/null; then
    exec 9>"$cache_root/.$key.lock"
    flock 9
fi

wheel=$(find_wheel || true)
if [[ -n $wheel ]]; then
    say "reusing cached wheel $wheel"
else
    command -v "${CXX:-g++}" >/dev/null || { apt_install g++ && command -v g++ >/dev/null; } ||
        die "Horovod needs a C++ compiler: install g++ (apt-get install g++) or set CXX"
    command -v make >/dev/null || apt_install make || die "Horovod's build needs make"

    work=$(mktemp -d "${TMPDIR:-/tmp}/nvlm-horovod.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    log=$cache_root/$key.build.log

    say "building $key (about 2.5 minutes on 2 cores); log: $log"
    "$py" -m pip download -q --no-deps --no-binary :all: "horovod==$version" -d "$work" >&2
    tar -xzf "$work/horovod-$version.tar.gz" -C "$work"
    src=$work/horovod-$version

    # The one source change: drop xla_mpi_ops.cc from the TensorFlow extension (see top).
    cml=$src/horovod/tensorflow/CMakeLists.txt
    n=$(grep -c 'xla_mpi_ops\.cc' "$cml" || true)
    [[ $n == 1 ]] || die "expected 1 line naming xla_mpi_ops.cc in $cml, found $n: update this recipe for horovod $version"
    sed -i '/xla_mpi_ops\.cc/d' "$cml"

    if [[ -n $gpu_ops ]]; then
        # GPU builds only: TF >= 2.18's stream_executor has no gpu::AsGpuStreamValue any more; the
        # CUDA stream is Stream::platform_specific_handle().stream. Define a local helper and call
        # it instead of the missing symbol (else mpi_lib.so fails to load: undefined symbol).
        ops=$src/horovod/tensorflow/mpi_ops.cc
        anchor='#endif // TENSORFLOW_VERSION >= 2011000000'
        grep -qF "$anchor" "$ops" || die "anchor for the GPU stream patch not found in $ops"
        sed -i 's/stream_executor::gpu::AsGpuStreamValue(/nvlm_gpu_stream(/g' "$ops"
        sed -i "0,\|^$anchor\$|s||$anchor\\
static inline GpuStreamHandle nvlm_gpu_stream(stream_executor::Stream* stream) {\\
  return static_cast<GpuStreamHandle>(stream->platform_specific_handle().stream);\\
}|" "$ops"
        grep -q 'nvlm_gpu_stream(stream_executor::Stream' "$ops" || die "GPU stream patch did not apply"
    fi

    # setup.py imports these at build time; without build isolation they must be in the venv.
    "$py" -m pip install -q setuptools wheel packaging cloudpickle psutil pyyaml >&2

    build_env=(
        PATH="$(dirname "$py"):$PATH" # cmake from PyPI lives in the venv
        HOROVOD_WITH_TENSORFLOW=1
        HOROVOD_WITH_GLOO=1
        HOROVOD_WITHOUT_PYTORCH=1
        HOROVOD_WITHOUT_MXNET=1
        # cmake >= 4 (PyPI) refuses Horovod's cmake_minimum_required() without this.
        CMAKE_POLICY_VERSION_MINIMUM=3.5
        # setup.py hands the build to make; drop our caller's make state, keep our job count.
        "MAKEFLAGS=-j$jobs"
    )
    if [[ $flavour == mpi ]]; then
        build_env+=(HOROVOD_WITH_MPI=1)
    else
        build_env+=(HOROVOD_WITHOUT_MPI=1)
    fi

    if ! (cd "$src" && env -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES "${build_env[@]}" \
        "$py" -m pip wheel -v --no-build-isolation --no-deps -w "$work/dist" . >"$log" 2>&1); then
        tail -n 40 "$log" >&2
        die "building Horovod failed; full log: $log"
    fi
    built=$(compgen -G "$work/dist/horovod-$version-*.whl" | head -n 1) || die "no wheel in $work/dist"

    # Publish atomically: a half-copied wheel must never look like a cache hit.
    rm -rf "$dest" "$dest.partial"
    mkdir -p "$dest.partial"
    cp "$built" "$dest.partial/"
    mv "$dest.partial" "$dest"
    wheel=$(find_wheel)
    say "cached $wheel"
fi

# --- install --------------------------------------------------------------------------------

# Uninstall first: a different build with the same version number would count as "satisfied".
"$py" -m pip uninstall -q -y horovod >/dev/null 2>&1 || true
"$py" -m pip install -q "$wheel" >&2
installed_ok || die "Horovod from $wheel does not import with the expected build in $py (run: $py -c 'import horovod.tensorflow')"
say "installed $key"
