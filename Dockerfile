# tgmon as a long-running service (see docker-compose.yml and the README's "Deploying with Docker").
#
# Build: `make wheelhouse && docker compose build`, or `make image-test` on a machine without a Docker
# engine. The build reaches no package index: `make wheelhouse` fills build/wheelhouse/ on the host
# with the project and every runtime dependency as wheels for the image's Python (3.11), and the image
# installs from there alone, so a build is repeatable from the same wheelhouse. The morphology
# dictionaries are wheels too: nothing is downloaded when the service runs.
#
# The base image is a build argument: the official slim image by default; `make image-test` passes one
# made from Debian's own packages (python3 in /usr/bin rather than /usr/local/bin), so the commands
# below only assume `python3` on the PATH, `groupadd` and `useradd`.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# A virtualenv, not the base's site-packages: it is one self-contained folder to copy into the final
# stage, and Debian's python3 refuses system-wide pip installs (PEP 668) where the official one allows them.
RUN python3 -m venv /opt/tgmon
COPY build/wheelhouse /wheels
# The wheelhouse is the pin: it holds exactly one version of each requirement, chosen by `make wheelhouse`.
# The Apprise extra is included so ALERT_APPRISE_URLS works without rebuilding the image. pip and
# setuptools leave the final venv: nothing installs at run time, and they would only add known CVEs.
RUN /opt/tgmon/bin/pip install --no-index --find-links /wheels 'tgmon[apprise]' \
    && /opt/tgmon/bin/pip check \
    && /opt/tgmon/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
# A fixed uid/gid (10001) so the owner of the data volume is known outside the image as well.
RUN groupadd --gid 10001 tgmon \
    && useradd --uid 10001 --gid tgmon --home-dir /data --no-create-home --shell /usr/sbin/nologin tgmon \
    && mkdir -p /data \
    && chown tgmon:tgmon /data \
    && chmod 0700 /data
COPY --from=build /opt/tgmon /opt/tgmon
COPY config /app/config
ENV PATH=/opt/tgmon/bin:$PATH \
    TGMON_DATA_DIR=/data \
    TGMON_CONFIG_DIR=/app/config \
    TGMON_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
# Database, search index, Telegram session, media, alerts.jsonl and the heartbeat file.
VOLUME /data
WORKDIR /data
USER 10001:10001
# `tgmon health` reads the heartbeat file `tgmon run` rewrites every 10 s in /data: exit 1 with the reason
# when the service is gone, stuck, cannot write its database or has lost Telegram. The start period
# gives `tgmon run` time to connect to Telegram and write its first heartbeat.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["tgmon", "health"]
# Exec form: no shell between Docker and tgmon, so `docker stop`'s SIGTERM reaches it (as PID 1, or through
# Docker's init with compose's `init: true`); it commits what it has read before exiting.
ENTRYPOINT ["tgmon"]
CMD ["run"]
