# syntax=docker/dockerfile:1
#
# One Dockerfile for every Go command in this repo. The build context is the repo root so
# the Go workspace (go.work) ties the modules together exactly as in `make build`; the
# build argument CMD picks the main package:
#
#   docker build --build-arg CMD=services/cmd/order  -t natsotel/order .
#   docker build --build-arg CMD=loadgen/cmd/loadgen -t natsotel/loadgen .
#
# compose.yaml builds each service this way. deploy/image_build_test.go runs the same
# `go build` line (flags, target, environment) for every image compose builds, so a broken
# command is caught without a Docker engine.

ARG GO_VERSION=1.27.0

FROM golang:${GO_VERSION}-trixie AS build

# Use the Go of this image, never download another toolchain; static binaries only.
ENV GOTOOLCHAIN=local \
    CGO_ENABLED=0 \
    GOFLAGS=-mod=readonly

WORKDIR /src

# Module files first: this layer (and the download below) is reused until a go.mod or
# go.sum changes, whatever happens to the sources.
COPY go.work go.work.sum* ./
COPY natsotel/go.mod natsotel/go.sum* natsotel/
COPY services/go.mod services/go.sum* services/
COPY loadgen/go.mod loadgen/go.sum* loadgen/
COPY demo/go.mod demo/go.sum* demo/
COPY deploy/go.mod deploy/go.sum* deploy/
COPY e2e/go.mod e2e/go.sum* e2e/
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .

# Which main package to build, relative to the repo root.
ARG CMD=services/cmd/order
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/app ./${CMD}

# Distroless static: no shell, no package manager, runs as uid 65532 ("nonroot").
FROM gcr.io/distroless/static-debian12:nonroot

ARG CMD
LABEL org.opencontainers.image.title="natsotel ${CMD}" \
      org.opencontainers.image.description="NATS micro + OpenTelemetry reference: ${CMD}"

COPY --from=build /out/app /app
USER nonroot:nonroot
ENTRYPOINT ["/app"]
