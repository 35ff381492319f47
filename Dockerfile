# syntax=docker/dockerfile:1
#
# Two images for docker-compose.yml:
#   target app (the default): /usr/local/bin/worker, enqueue and twilio-emulator
#   target s3: versitygw v1.8.0, the demo's S3 server, and the bucket-creation
#              script s3-init
#
# Both run on debian-slim rather than distroless: Docker health checks run a
# program inside the container, and distroless has no curl, wget or shell
# to probe /healthz and /_emulator/stats with. curl also signs the bucket
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
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/worker ./cmd/worker && \
    go build -trimpath -ldflags="-s -w" -o /out/enqueue ./cmd/enqueue && \
    go build -trimpath -ldflags="-s -w" -o /out/twilio-emulator ./cmd/twilio-emulator

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

# Last, so a plain `docker build .` makes the programs' image.
FROM runtime AS app
COPY --from=build /out/ /usr/local/bin/
EXPOSE 4010 4011 9090
ENTRYPOINT ["/usr/local/bin/worker"]
