// Package helm checks the Helm chart in shop/ (the services, the load generator and the
// probe on Kubernetes, beside the official NATS chart configured by nats-values.yaml)
// without a cluster: the chart is rendered with Helm's own Go library (helm.sh/helm/v4,
// the code `helm template` runs), every rendered object is decoded strictly into its
// Kubernetes API type (k8s.io/api; an unknown or misspelt field fails), and the wiring is
// checked: environment, ports, probes, Secrets, grace period, resources.
//
// It is a module of its own, outside go.work: Helm's and Kubernetes' dependencies would
// otherwise join the workspace's build list. Run it with GOWORK=off (make test does):
//
//	cd deploy/helm && GOWORK=off go test ./...
package helm
