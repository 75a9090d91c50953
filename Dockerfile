# syntax=docker/dockerfile:1
#
# msgworker image: `msgworker worker` by default; `serve` runs the HTTP API (port 8080);
# `sandbox --host 0.0.0.0` runs the fake Gateway. The lock holds the worker and serve extras.
#   docker build -t msgworker:0.1.0 .
#   docker run --rm -e MSGWORKER_BROKER_URL=redis://redis:6379/0 -e MSGWORKER_API_KEY=... msgworker:0.1.0
#
# The base image is pinned by tag: Python 3.11 on Debian bookworm (patch releases and Debian
# security fixes arrive on rebuild). For byte-for-byte reproducible builds, pin the digest too
# (python:3.11-slim-bookworm@sha256:...), resolved by your registry or Renovate.

# ---------------------------------------------------------------- build: wheel, then a venv
FROM python:3.11-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# The dependencies first, from the lock, each file checked against its hash: this layer is
# rebuilt only when requirements.lock changes, and the image ships exactly what was tested.
COPY requirements.lock ./
RUN python -m venv /opt/msgworker \
 && /opt/msgworker/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
# Only what the wheel is built from: the layer cache survives edits to tests/, deploy/, docs.
COPY pyproject.toml README.md ./
COPY config ./config
COPY docs/runbooks.md ./docs/runbooks.md
COPY worker ./worker

# Every dependency ships binary wheels for CPython 3.11 (linux amd64/arm64), so no compiler
# is needed even here; the wheel carries config/routing.toml as worker/send/routing.toml.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && /opt/msgworker/bin/pip install --no-cache-dir --no-deps /wheels/*.whl

# ---------------------------------------------------------------- runtime: no build tools
FROM python:3.11-slim-bookworm

LABEL org.opencontainers.image.title="msgworker" \
      org.opencontainers.image.description="Resilient WhatsApp message-sending worker for the Connexease Gateway"

ENV PATH=/opt/msgworker/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# The venv keeps its path (/opt/msgworker): its scripts' shebangs point there.
COPY --from=build /opt/msgworker /opt/msgworker
WORKDIR /app
# config/routing.toml and example.env next to the working directory, for operators to read or
# to point MSGWORKER_ROUTING_FILE at; the code itself reads the copy inside the wheel.
COPY config ./config

# A numeric user and group, so Kubernetes can check runAsNonRoot without /etc/passwd.
# Nothing in the image is writable by it; prometheus multiprocess files go to /tmp.
USER 10001:10001

# Prometheus metrics of `msgworker worker` (MSGWORKER_METRICS_PORT); the HTTP API of
# `msgworker serve` (MSGWORKER_SERVE_PORT), whose own /metrics is on that port.
EXPOSE 9808 8080
# Celery's warm shutdown: stop taking jobs, finish the sends in flight, then exit.
STOPSIGNAL SIGTERM

# One HTTP GET of the worker's own /metrics: no Celery client (no `celery inspect ping`,
# which would open a broker connection and broadcast per probe). A failure exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('MSGWORKER_METRICS_PORT', '9808'), timeout=4).read()"]

ENTRYPOINT ["msgworker"]
CMD ["worker"]
