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
RUN pip install ./ ./plugins/stash_source/ ./plugins/path_regex/ ./plugins/plex/ ./plugins/plex_push/ ./plugins/gap_scheduler/

FROM ${PYTHON_IMAGE} AS runtime
# No STASH2PLEX_<SECTION>__<KEY> here: the environment overrides the TOML file, so an
# image default would silently beat the user's mounted configuration. The defaults
# (host 0.0.0.0, port 8787, data_dir ./data) already suit a container: see WORKDIR.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH="/opt/venv/bin:${PATH}"
RUN groupadd --system --gid 10001 stash2plex \
 && useradd --system --uid 10001 --gid stash2plex --no-create-home \
        --shell /usr/sbin/nologin stash2plex \
 && mkdir /data \
 && chown 10001:10001 /data
COPY --from=builder /opt/venv /opt/venv
# Any uid may run it (docker run --user, compose user:) as long as it owns /data: the
# venv is world-readable and nothing else is written.
USER 10001:10001
# The default data_dir, ./data, is /data from here (the volume), with or without a TOML.
WORKDIR /
VOLUME ["/data"]
EXPOSE 8787
# Asks /healthz at the host and port the configuration names (503 while the first index
# is built); Python only, no curl in slim images.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["stash2plex", "healthcheck"]
# Python is PID 1 and handles SIGTERM itself: it stops in under 8 s (shutdown_timeout_s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["stash2plex"]
CMD ["serve"]
