# One image for every caplab service; its command selects the service. Cloud Run passes
# `service <name>` as the container arguments (see infra/components/service.py), so the four
# services share one build, one vulnerability scan and one digest per release.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=0 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PATH=/app/.venv/bin:$PATH \
    PORT=8080

WORKDIR /app

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin caplab \
    && pip install uv==0.13.9

# Dependencies first, exactly as locked: the services' own, plus the `loadgen` extra so the
# same image runs `caplab load` shards as a Cloud Run Job (aiohttp, rich, google-cloud-storage;
# no plots, no Pulumi, nothing a service imports). This layer is rebuilt only when
# pyproject.toml or uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --extra loadgen --no-install-project

COPY README.md ./
COPY caplab ./caplab
COPY emulators ./emulators
COPY services ./services
COPY loadtest ./loadtest
RUN uv sync --locked --no-dev --extra loadgen --no-editable && rm -rf /app/build

USER 10001
EXPOSE 8080
ENTRYPOINT ["caplab"]
CMD ["service", "ledger"]
