# syntax=docker/dockerfile:1
# aivenator container image: a virtualenv with the locked runtime dependencies and the aivenator
# wheel, on the slim Debian Python base, run as a non-root user with no shell entry needed.
#
# Build:   docker build -t ghcr.io/aivenator/aivenator:$(git describe --tags) .
# The base is pinned by tag here; release builds pin it by digest too
# (--build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...), see docs/release.md.
# hack/dry-build.sh runs the same install steps without a container engine.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first (own layer, cached while only the source changes). Binary wheels only:
# nothing is compiled in the image build, so the result does not depend on a toolchain.
COPY requirements.lock ./
RUN python -m venv /opt/aivenator \
 && /opt/aivenator/bin/pip install --only-binary=:all: --no-deps -r requirements.lock

COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/aivenator/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/aivenator/bin/pip install --no-deps /wheels/*.whl \
 && /opt/aivenator/bin/pip check \
 && /opt/aivenator/bin/aivenator --help > /dev/null \
 && /opt/aivenator/bin/python -m pip uninstall --yes pip

# ---------------------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="aivenator" \
      org.opencontainers.image.description="Kubernetes operator that gives workloads Aiven credentials through Secrets" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/aivenator/aivenator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# Same uid/gid as the Helm chart's securityContext (65532, the conventional "nonroot").
RUN groupadd --system --gid 65532 aivenator \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin aivenator

COPY --from=build /opt/aivenator /opt/aivenator

ENV PATH=/opt/aivenator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Read-only root filesystem in the cluster: nothing is written outside /tmp (an emptyDir).
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080 8081

ENTRYPOINT ["aivenator"]
CMD ["run"]
