# syntax=docker/dockerfile:1
# stash2plex: the provider with every plugin of this repository, as a non-root service.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"
COPY pyproject.toml README.md ./
COPY core/ ./core/
COPY plugins/ ./plugins/
# The host and every plugin folder (tests/test_docker.py keeps this list complete).
RUN pip install ./ ./plugins/stash_source/ ./plugins/path_regex/ ./plugins/plex/ ./plugins/plex_push/

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH="/opt/venv/bin:${PATH}" \
    STASH2PLEX_SERVER__HOST=0.0.0.0 \
    STASH2PLEX_SERVER__PORT=8787 \
    STASH2PLEX_SERVER__DATA_DIR=/data
RUN groupadd --system --gid 10001 stash2plex \
 && useradd --system --uid 10001 --gid stash2plex --no-create-home \
        --shell /usr/sbin/nologin stash2plex \
 && mkdir /data \
 && chown 10001:10001 /data
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8787
# No curl in slim images: Python asks /healthz (503 while the first index is built).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('STASH2PLEX_SERVER__PORT', '8787'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]
# Python is PID 1 and handles SIGTERM itself: it stops in under 8 s (shutdown_timeout_s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["stash2plex"]
CMD ["serve"]
