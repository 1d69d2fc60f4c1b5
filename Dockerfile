# syntax=docker/dockerfile:1
# One image for every Cargo process: `cargoctl gateway`, `cargoctl worker`, `cargoctl bridge`,
# `cargoctl canary` (and the probes `cargoctl worker health`, `cargoctl bridge health`).
#
#   docker build -t cargo:0.1.0 .
#   docker run --rm cargo:0.1.0 gateway --host 0.0.0.0 --port 8000
#
# Two stages on the same pinned base (tag and digest): `build` installs the project and its
# dependencies into a virtualenv at /opt/cargo; the final stage copies only that virtualenv,
# so neither pip's cache, the sources, nor any build tool reaches it. Every dependency ships
# binary wheels for linux/amd64 and linux/arm64, so no compiler is needed even in `build`.
# Checked without a Docker engine by tests/deploy/test_dockerfile.py (hadolint, checkov).

FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5 AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/cargo
# The project's metadata first, then its packages (see .dockerignore: tests, ops data,
# terraform, helm, bench and the virtualenvs stay out of the build context).
COPY pyproject.toml README.md ./
COPY broker/ broker/
COPY gateway/ gateway/
COPY workers/ workers/
COPY bridge/ bridge/
COPY cargoctl/ cargoctl/
# A regular (not editable) install of the project itself: `cargoctl` lands in /opt/cargo/bin.
# Byte-code is compiled here, because the containers run with a read-only root filesystem.
RUN /opt/cargo/bin/pip install --no-cache-dir --no-compile . \
    && /opt/cargo/bin/python -m compileall -q /opt/cargo/lib \
    && /opt/cargo/bin/cargoctl --help >/dev/null

FROM python:3.11.11-slim-bookworm@sha256:081075da77b2b55c23c088251026fb69a7b2bf92471e491ff5fd75c192fd38e5

# checkov:skip=CKV_DOCKER_2:No HEALTHCHECK on purpose: one image runs four different processes, and Kubernetes ignores HEALTHCHECK; the chart gives each process its own probes (/healthz and /readyz for the gateway, `cargoctl worker health` and `cargoctl bridge health` for the others).
LABEL org.opencontainers.image.title="cargo" \
      org.opencontainers.image.description="Cargo: REST and WebSocket jobs on Celery and RabbitMQ (gateway, worker, bridge, canary)" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/cargo/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp

# A fixed, numeric non-root user (Kubernetes' runAsNonRoot can only verify a numeric one).
RUN groupadd --system --gid 10001 cargo \
    && useradd --system --uid 10001 --gid cargo --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin cargo

COPY --from=build /opt/cargo /opt/cargo

USER 10001:10001
WORKDIR /tmp
EXPOSE 8000 9540 9541
ENTRYPOINT ["cargoctl"]
CMD ["--help"]
