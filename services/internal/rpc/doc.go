// Package rpc is the request plumbing every endpoint of the shop shares:
//
//   - Decode turns a request body into a typed value, strictly: the size limit
//     (contracts.MaxRequestBytes, CodeTooLarge before any decoding), valid UTF-8, exactly
//     one JSON value, no unknown fields, no trailing data. Every failure is an *Error with
//     a code from contracts and a description that says what is wrong without echoing
//     payload values.
//   - Typed adapts a func(ctx, *Req) (Resp, error) to a natsotel.Handler: it decodes,
//     calls, replies JSON or a micro error, recovers panics (500, recorded on the span),
//     applies the drop fault, and counts in-flight requests so that a service can wait for
//     them when it stops.
//   - Error is the one error type handlers return to choose the micro code.
package rpc
