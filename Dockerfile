# tgmon as a long-running service. Build: docker build -t tgmon .   Run: see docker-compose.yml.
# The base image is a build argument; everything the service needs (morphology dictionaries
# included) is installed at build time, nothing is downloaded when it runs.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY config ./config
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin tgmon \
    && mkdir -p /data && chown tgmon /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels tgmon && rm -rf /wheels
COPY config /app/config
ENV TGMON_DATA_DIR=/data \
    TGMON_CONFIG_DIR=/app/config \
    TGMON_LOG_FORMAT=json \
    PYTHONUNBUFFERED=1
VOLUME /data
WORKDIR /data
USER tgmon
# Exec form: SIGTERM reaches tgmon, which drains and commits before exiting.
ENTRYPOINT ["tgmon"]
CMD ["run"]
