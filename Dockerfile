# GPU image that runs the loop: `docker run --gpus all -v selftrain-project:/home/selftrain/app selftrain`
# (NVIDIA container toolkit). torch's and DALI's wheels carry their CUDA 13 libraries; the
# base image brings the CUDA runtime environment the driver is mounted into.
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

# The dependency layer: only requirements.lock goes in, so an edit of the code or of
# pyproject.toml's metadata does not reinstall torch and DALI. The test-only packages
# (pyproject's `test` extra, and iniconfig which only pytest needs) stay out of the image.
ARG TEST_ONLY_PACKAGES="pytest hypothesis iniconfig"
COPY requirements.lock ./
RUN python3.11 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip==26.3 \
 && grep -v -E "^($(echo $TEST_ONLY_PACKAGES | tr ' ' '|'))==" requirements.lock > /tmp/runtime.lock \
 && /opt/venv/bin/pip install --no-cache-dir -r /tmp/runtime.lock \
 && rm /tmp/runtime.lock
ENV PATH=/opt/venv/bin:$PATH

# The project: code (an editable install, so a mounted checkout's code is the code
# that runs), dvc.yaml, params.yaml. .dockerignore keeps tests, benchmarks and
# results out.
COPY --chown=selftrain:selftrain . .
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
 && chown -R selftrain:selftrain /home/selftrain

USER selftrain
# DVC needs a git repository; a mounted checkout brings its own, a bare image makes one.
RUN git config --global user.email selftrain@localhost && git config --global user.name selftrain \
 && (git rev-parse --git-dir >/dev/null 2>&1 || (git init -q && git add -A && git commit -qm image))

# The results live in the project directory: models/, metrics/, reports/, plots/,
# data/gen*/, the DVC cache (.dvc/cache) and the run history (dvc.lock, DVC experiments
# in .git). Mount a named volume (filled from this image on first use) or a checkout
# owned by uid 1000 here, so that they outlive the container and a rerun is cached.
VOLUME ["/home/selftrain/app"]

# `docker run ... selftrain inspect --gen 2`, `... selftrain report`; without arguments: run.
# augment.device: auto picks DALI's GPU operators when CUDA is visible.
ENTRYPOINT ["selftrain"]
CMD ["run"]
