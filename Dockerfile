# nvlm for NVIDIA GPUs: TensorFlow 2.21 (CUDA, cuDNN and NCCL from the tensorflow[and-cuda]
# wheels), Open MPI, and Horovod 0.28.1 built with NCCL + MPI + Gloo. How to build and run it:
# docs/docker.md.
#
#   docker build -t nvlm:gpu .
#   docker run --gpus all --rm --ipc=host -v /data:/data nvlm:gpu \
#       nvlm pretrain --model bert --preset dgxa100-amp --data /data/shards --out /data/runs/bert --gpus 8
#
# Two stages: `build` has the CUDA toolkit (nvcc compiles Horovod's CUDA kernels); the final image
# starts from the small CUDA `base` image and takes only the finished venv.

ARG CUDA_VERSION=12.8.1
ARG UBUNTU=ubuntu24.04

# ---------------------------------------------------------------------------------------------
FROM nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU} AS build

ARG TF_VERSION=2.21.0
ARG HOROVOD_VERSION=0.28.1
# Native kernels for V100 (DGX-1, DGX-2), T4, A100 (DGX A100), A10/A40, L4/L40 and H100; the last
# entry also gets PTX, which newer GPUs compile at load time.
ARG CUDA_CC_LIST=70,75,80,86,89,90

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 python3-venv g++ make libopenmpi-dev openmpi-bin openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/nvlm/venv && /opt/nvlm/venv/bin/pip install -q --upgrade pip
ENV PATH=/opt/nvlm/venv/bin:$PATH

WORKDIR /src

# Dependencies first, so that code changes do not rebuild TensorFlow's layer or Horovod.
# pyproject's base dependencies name tensorflow-cpu (the CPU default); here the CUDA build
# replaces it, so that only one package provides `tensorflow`.
COPY pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; print('\n'.join(d for d in deps if not d.startswith('tensorflow-cpu')))" \
        > /tmp/requirements.txt \
    && pip install -q -r /tmp/requirements.txt "tensorflow[and-cuda]==${TF_VERSION}" cmake

# Horovod from the patched sdist, by the same script `make horovod` uses. NCCL comes from the
# nvidia-nccl-cu12 wheel that TensorFlow loads too (one NCCL in the process): the wheel ships
# include/nccl.h and lib/libnccl.so.2 but no libnccl.so for the linker, hence the symlink.
COPY tools/build_horovod.sh tools/
RUN set -eu; \
    nccl=$(python -c "import importlib.util as u; print(u.find_spec('nvidia.nccl').submodule_search_locations[0])"); \
    test -f "$nccl/include/nccl.h"; \
    test -f "$nccl/lib/libnccl.so.2"; \
    ln -sf libnccl.so.2 "$nccl/lib/libnccl.so"; \
    echo "$nccl/lib" > /etc/ld.so.conf.d/nvlm-nccl.conf; \
    ldconfig; \
    HOROVOD_GPU_OPERATIONS=NCCL \
    HOROVOD_NCCL_INCLUDE="$nccl/include" \
    HOROVOD_NCCL_LIB="$nccl/lib" \
    HOROVOD_NCCL_LINK=SHARED \
    HOROVOD_CUDA_HOME=/usr/local/cuda \
    HOROVOD_BUILD_CUDA_CC_LIST="$CUDA_CC_LIST" \
    NVLM_PYTHON=/opt/nvlm/venv/bin/python \
    NVLM_HOROVOD_VERSION="$HOROVOD_VERSION" \
    NVLM_HOROVOD_MPI=1 \
    NVLM_APT=0 \
    NVLM_WHEEL_CACHE=/tmp/wheels \
        bash tools/build_horovod.sh; \
    rm -rf /tmp/wheels; \
    horovodrun --check-build

# The project itself (not editable: the image has no source tree to edit).
COPY . .
RUN pip install -q --no-deps . && nvlm --version

# ---------------------------------------------------------------------------------------------
FROM nvidia/cuda:${CUDA_VERSION}-base-${UBUNTU}

ENV DEBIAN_FRONTEND=noninteractive

# Runtime only: Python, Open MPI (mpirun, libmpi for Horovod), ssh for multi-node launches, and
# the verbs providers NCCL uses for InfiniBand / RoCE when the host passes the devices in.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        python3 openmpi-bin openssh-client ibverbs-providers ca-certificates \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/nvlm /opt/nvlm
COPY --from=build /etc/ld.so.conf.d/nvlm-nccl.conf /etc/ld.so.conf.d/
RUN ldconfig

# Containers run as root; Open MPI refuses that unless told it is intended.
ENV PATH=/opt/nvlm/venv/bin:$PATH \
    OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    TF_CPP_MIN_LOG_LEVEL=1

RUN nvlm --version && horovodrun --check-build

WORKDIR /workspace
CMD ["nvlm", "--help"]
