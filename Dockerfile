# One image for every caplab service; its command selects the service. Cloud Run passes
# `service <name>` as the container arguments (see infra/components/service.py), so the four
# services share one build, one vulnerability scan and one digest per release.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080

WORKDIR /app

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin caplab

# Dependencies first: this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY README.md ./
COPY caplab ./caplab
COPY emulators ./emulators
COPY services ./services
COPY loadtest ./loadtest
RUN pip install --no-deps . && rm -rf /app/build

USER 10001
EXPOSE 8080
ENTRYPOINT ["caplab"]
CMD ["service", "ledger"]
