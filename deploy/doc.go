// Package deploy holds what `docker compose up` runs besides the Go code: the NATS server
// configuration (nats/nats.conf), Grafana's dashboards and provisioning (grafana/), the files
// that replace otel-lgtm's Tempo config and datasources (lgtm/), OBI's configuration for the
// compose profile obi (obi/), and the tests that prove them without a Docker engine:
//
//   - compose_test.go loads compose.yaml with compose-go, exactly as `docker compose` does,
//     and checks the wiring: builds, OTLP endpoint, NATS credentials that exist in
//     nats.conf, healthy dependencies, scale-safe services, pinned images, mounts.
//   - nats_config_test.go starts a real nats-server from nats/nats.conf, runs every
//     service with its own user, places real orders through them, and shows that each
//     user is refused every subject outside its rights; with the nats-hops bridge running
//     under its user, it also shows that the server's message trace events arrive
//     (nats_hops_test.go).
//   - obi_test.go loads compose.yaml with the obi profile and checks OBI's wiring and
//     configuration (the one thing here that needs eBPF to run).
//   - dashboards_test.go parses every dashboard and checks datasources, uids, queries.
//   - lgtm_test.go checks the files compose mounts over otel-lgtm's own (lgtm/): the Tempo
//     configuration and the datasources (otel-lgtm's uids, every datasourceUid link,
//     traces to profiles), /tmp on a tmpfs, no start_interval, the database/dup opt-in.
//   - image_build_test.go runs the Dockerfile's `go build` line for every image compose
//     builds.
//
// The package has no code of its own; this file exists for its documentation.
package deploy
