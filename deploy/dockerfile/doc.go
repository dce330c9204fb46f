// Package dockerfile checks the repository's Dockerfile with BuildKit's own Dockerfile
// frontend, the code `docker build` runs, without a Docker engine: for every image
// compose.yaml builds, the Dockerfile must convert to a BuildKit build graph (LLB) with the
// image's build argument, run the expected `go build` with its cache mounts, produce the
// image config compose relies on (entrypoint, non-root user), and pass BuildKit's lint
// rules (`docker build --check`) without a warning.
//
// Base images are not pulled (there is no registry here): an offline resolver answers
// with an empty image config, so what stays unchecked is that the tags exist.
//
// It is a module of its own, outside go.work: BuildKit's dependencies would otherwise
// join the workspace's build list and change the versions every other module builds
// with. Run it with GOWORK=off (make test does):
//
//	cd deploy/dockerfile && GOWORK=off go test ./...
package dockerfile
