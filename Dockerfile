# syntax=docker/dockerfile:1
# aivenator container image, for users with a container engine: Debian bookworm with Debian's
# Python 3.11, a virtualenv with the hash-checked runtime lock and the aivenator wheel, run as
# the non-root user 65532. `make image` builds the same image without a daemon (mmdebstrap +
# umoci, hack/image/build.sh) from hack/image/spec.toml; `make test` checks that this file
# agrees with that spec (suite, packages, user, entrypoint, command, env, ports, labels).
#
# Build:   docker build -t ghcr.io/aivenator/aivenator:$(git describe --tags) .
# The base is pinned by tag here; release builds pin it by digest too
# (--build-arg DEBIAN_IMAGE=debian:bookworm-slim@sha256:...), see docs/release.md.
# Debian package versions are not pinned: bookworm's security updates replace them.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------- build stage
FROM ${DEBIAN_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first (own layer, cached while only the source changes). Binary wheels only and
# every one checked against the sha256 in requirements.lock: nothing is compiled in the build.
COPY requirements.lock ./
RUN python3 -m venv /opt/aivenator \
 && /opt/aivenator/bin/pip install --require-hashes --only-binary=:all: --no-deps -r requirements.lock

COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/aivenator/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/aivenator/bin/pip install --no-deps /wheels/*.whl \
 && /opt/aivenator/bin/pip check \
 && /opt/aivenator/bin/aivenator --help > /dev/null \
 && /opt/aivenator/bin/python -m pip uninstall --yes pip setuptools

# ---------------------------------------------------------------------------- runtime stage
FROM ${DEBIAN_IMAGE}

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="aivenator" \
      org.opencontainers.image.description="Kubernetes operator that gives workloads Aiven credentials through Secrets" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/aivenator/aivenator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# Same uid/gid as the Helm chart's securityContext (65532, the conventional "nonroot").
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 aivenator \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin aivenator

COPY --from=build /opt/aivenator /opt/aivenator

ENV PATH=/opt/aivenator/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Read-only root filesystem in the cluster: nothing is written outside /tmp (an emptyDir).
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080 8081

ENTRYPOINT ["aivenator"]
CMD ["run"]
