# syntax=docker/dockerfile:1
#
# Three images for docker-compose.yml:
#   target app (the default, the production image): /usr/local/bin/worker and
#              enqueue; its HEALTHCHECK probes the worker's /livez
#   target emulator: /usr/local/bin/twilio-emulator, for the demo and tests
#              only, so the production image carries no fake Twilio
#   target s3: versitygw v1.8.0, the demo's S3 server, and the bucket-creation
#              script s3-init
#
# The programs are stamped with VERSION (their --version, the worker's
# mediasync_build_info, an export's export.json):
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) .
# (docker-compose.yml passes $MEDIASYNC_VERSION). .git is not in the build
# context, so without it they say devel.
#
# Both run on debian-slim rather than distroless: Docker health checks run a
# program inside the container, and distroless has no curl, wget or shell
# to probe /livez, /readyz and /_emulator/stats with. curl also signs the bucket
# creation request in s3-init (--aws-sigv4), so no AWS CLI image is needed.

ARG GO_VERSION=1.26
ARG DEBIAN_VERSION=trixie

# --- mediasync's programs, from this repository ---
FROM golang:${GO_VERSION}-${DEBIAN_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=devel
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w -X github.com/mediasync/mediasync/internal/version.version=${VERSION}" -o /out/worker ./cmd/worker && \
    go build -trimpath -ldflags="-s -w -X github.com/mediasync/mediasync/internal/version.version=${VERSION}" -o /out/enqueue ./cmd/enqueue && \
    go build -trimpath -ldflags="-s -w -X github.com/mediasync/mediasync/internal/version.version=${VERSION}" -o /out-emulator/twilio-emulator ./cmd/twilio-emulator

# --- versitygw, the S3 server ---
# Built from its module rather than taken from the versity/versitygw image:
# `go install …@v1.8.0` is the build the project's tests run
# (scripts/install-tools.sh pins the same version), the Go checksum database
# pins its content where a Docker tag can move, and it lands on the same base
# as the other images, curl included for its health check.
FROM golang:${GO_VERSION}-${DEBIAN_VERSION} AS versitygw
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go install -trimpath -ldflags="-s -w" github.com/versity/versitygw/cmd/versitygw@v1.8.0

# --- common runtime: CA certificates (Twilio and AWS over TLS) and curl ---
FROM debian:${DEBIAN_VERSION}-slim AS runtime
RUN apt-get update && \
    apt-get install -y --no-install-recommends ca-certificates curl && \
    rm -rf /var/lib/apt/lists/* && \
    useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin mediasync
USER 10001

FROM runtime AS s3
COPY --from=versitygw /go/bin/versitygw /usr/local/bin/versitygw
COPY --chmod=0755 deploy/s3-init.sh /usr/local/bin/s3-init
# Created here, owned by the runtime user, so a fresh named volume mounted
# on /data starts with this ownership.
USER root
RUN mkdir -p /data/objects /data/versions && chown -R 10001:10001 /data
USER 10001
EXPOSE 7070
ENTRYPOINT ["/usr/local/bin/versitygw"]

FROM runtime AS emulator
COPY --from=build /out-emulator/twilio-emulator /usr/local/bin/twilio-emulator
EXPOSE 4010 4011
ENTRYPOINT ["/usr/local/bin/twilio-emulator"]

# Last, so a plain `docker build .` makes the production image: worker and
# enqueue. The worker serves /livez, /readyz and /metrics on HTTP_ADDR. The
# image's health check is liveness (the process serves): a worker whose
# Postgres is down is not fixed by restarting it; docker-compose.yml waits on
# /readyz instead.
FROM runtime AS app
COPY --from=build /out/ /usr/local/bin/
ENV HTTP_ADDR=:9090
EXPOSE 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/livez"]
ENTRYPOINT ["/usr/local/bin/worker"]
