// Package contracts is the wire contract of the shop: micro service names, endpoint
// subjects, JSON request and response types, error codes, JetStream and KeyValue names,
// and the product catalog the services seed and the load generator orders from.
//
// It is the only package the load generator (and any other client) needs to talk to the
// services, so it depends on nothing but the standard library.
package contracts
