# GPU image that runs the loop: `docker run --gpus all selftrain` (NVIDIA container toolkit).
# torch's and DALI's wheels carry their CUDA 13 libraries; the base image brings the
# CUDA runtime environment the driver is mounted into.
FROM nvidia/cuda:13.0.1-runtime-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    DO_NOT_TRACK=1 \
    DVC_NO_ANALYTICS=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common git make \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
 && apt-get purge -y software-properties-common && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 selftrain
WORKDIR /home/selftrain/app

# Dependencies first, so code changes do not reinstall them.
COPY --chown=selftrain:selftrain requirements.lock pyproject.toml ./
RUN python3.11 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip==26.3 \
 && /opt/venv/bin/pip install --no-cache-dir -r requirements.lock
ENV PATH=/opt/venv/bin:$PATH

COPY --chown=selftrain:selftrain . .
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
 && chown -R selftrain:selftrain /home/selftrain

USER selftrain
# DVC needs a git repository; a mounted checkout brings its own, a bare image makes one.
RUN git config --global user.email selftrain@localhost && git config --global user.name selftrain \
 && (git rev-parse --git-dir >/dev/null 2>&1 || (git init -q && git add -A && git commit -qm image))
# augment.device: auto picks DALI's GPU operators when CUDA is visible.
CMD ["selftrain", "run"]
