// Package natsotel adds OpenTelemetry tracing and metrics to nats.go, its micro framework and
// JetStream, so that a trace crosses NATS hops and Tempo (or the Collector's servicegraph
// connector) draws an edge for every request, message and KeyValue call.
//
// Wrap a *nats.Conn once and use the returned *Conn for requests, publishes, subscriptions,
// micro services, JetStream and KeyValue:
//
//	conn, err := natsotel.Wrap(nc,
//		natsotel.WithTracerProvider(tp), // default: otel.GetTracerProvider()
//		natsotel.WithMeterProvider(mp),  // default: otel.GetMeterProvider()
//		natsotel.WithPropagators(prop),  // default: otel.GetTextMapPropagator()
//	)
//	svc, err := conn.AddService(micro.Config{Name: "inventory", Version: "1.0.0"})
//	err = svc.AddEndpoint("reserve", func(ctx context.Context, req micro.Request) { ... })
//	reply, err := conn.Request(ctx, "inventory.reserve", data)
//
// Defaults are read from the otel globals when Wrap is called. natsotel keeps no package
// state: several Conns with different providers (one service.name each) work in one process.
// At run time it depends only on nats.go and the OpenTelemetry API (otel, trace, metric,
// propagation, semconv), never on the SDK.
//
// # Span model
//
//	operation                  kind      span name            parent
//	-------------------------  --------  -------------------  ----------------------------------
//	Conn.Request, RequestMsg   CLIENT    request <subject> +  caller's ctx
//	micro endpoint handler     SERVER    process <endpoint>   the requester's CLIENT span
//	Conn.Publish, PublishMsg   PRODUCER  send <subject> +     caller's ctx
//	Subscribe, QueueSubscribe  CONSUMER  process <sub>        the PRODUCER span (or a link *)
//	JetStream.Publish          PRODUCER  send <subject> +     caller's ctx
//	JetStream.Consume/Process  CONSUMER  process <stream>     the stored PRODUCER span (*)
//	JetStream.Fetch            CLIENT    receive <stream>     caller's ctx; links every message
//	msg.Ack/Nak/Term/...       CLIENT    <op> <stream>        the process span
//	KeyValue Get/Put/...       CLIENT    <op> <bucket>        caller's ctx
//
// The operation type (messaging.operation.type) is send for Request and the publishes,
// process for handlers, receive for Fetch, settle for Ack (ack), DoubleAck (ack), Nak and
// NakWithDelay (nak), Term and TermWithReason (term) and InProgress (in_progress), each its
// messaging.operation.name. Besides the attributes every messaging span has (below):
//
//   - micro handler: messaging.consumer.group.name = the endpoint's queue group.
//   - QueueSubscribe: messaging.consumer.group.name = the queue.
//   - JetStream publish: messaging.nats.sequence (PubAck), messaging.message.id (Nats-Msg-Id)
//     and messaging.nats.duplicate=true for a duplicate. The stream is not repeated: the
//     subject decides it, and the consumer's process span names it.
//   - JetStream process: messaging.consumer.group.name = the durable consumer (#), in
//     place of messaging.client.id; messaging.message.id (Nats-Msg-Id); after the first
//     delivery messaging.nats.delivered (the delivery count), messaging.nats.redelivered=true
//     and a "redelivered" event. The stream sequence is on the producer's send span (the
//     parent, or the link with WithConsumerLinks) when the producer uses natsotel.
//   - Fetch: messaging.batch.message_count, messaging.destination.subscription.name = the
//     consumer (#).
//   - settle: messaging.destination.name is the stream and messaging.consumer.group.name
//     the durable consumer, as in its metric; the message's subject is on its parent
//     process span.
//   - KeyValue: db.system.name=nats, db.namespace and db.collection.name = the bucket,
//     db.operation.name; nats.kv.revision, nats.kv.found on Get (see KeyValue).
//
// (*) With WithConsumerLinks, subscribe and JetStream process spans are new roots that link to
// the producer instead.
//
// + With WithDestinationTemplate: the template its function returns for the subject.
//
// (#) A durable consumer is messaging.consumer.group.name in the metrics (see below); a
// Fetch names any consumer, durable or not, as its subscription.
//
// Settlement spans have no server side and no peer attribute: they make no service-graph
// edge and no virtual node; they show where a message was acknowledged, refused (nak, with
// its redelivery as the next process span) or terminated.
//
// Every messaging span has messaging.system=nats, messaging.operation.name and .type,
// messaging.destination.name (the concrete subject but on settle spans; see "Destinations and cardinality"),
// messaging.client.id (the connection name, or its client id; not on a durable consumer's
// process span, see below) and server.address/server.port.
// No message content ever goes into an attribute, and neither does its size:
// messaging.message.body.size is Opt-In in the conventions.
//
// A plain JetStream publish and its processing have 8 span attributes each, the most the
// OpenTelemetry SDK deduplicates at End in its smallest map (past 8 it takes three more
// allocations and about 600 bytes per span): the process span the conventions' (1.44)
// required and conditionally required ones, the durable consumer included, and of the
// recommended ones server.address and server.port (messaging.client.id gives way to the
// consumer); the send span the same 7 (no template, the client id, no consumer) and the
// PubAck sequence. A Nats-Msg-Id adds messaging.message.id, a WithDestinationTemplate template
// messaging.destination.template on the send span; NATS's other attributes appear only when
// they tell something (a duplicate, a redelivery).
//
// # Why CLIENT/SERVER for request/reply and PRODUCER/CONSUMER for events
//
// Tempo's service graph only counts CLIENT, SERVER, PRODUCER and CONSUMER spans, and makes an
// edge where a CLIENT or PRODUCER span is the parent of a SERVER or CONSUMER span. Span links
// make no edge. A request/reply call is an RPC: the caller waits for the answer and its
// latency includes the handler's, so CLIENT/SERVER gives it an RPC edge with client and
// server latency, and the micro endpoints show RED metrics in Grafana's service graph table
// (which reads SERVER spans). The messaging conventions do not define request/reply.
// Published events are fire and forget: PRODUCER/CONSUMER gives a messaging_system edge.
//
// The messaging conventions prefer consumer spans that link to the producer. natsotel parents
// them to the producer by default, because only a parent makes a service-graph edge and one
// message has one creation context; WithConsumerLinks switches to links for fan-out-heavy
// systems that want separate traces. For JetStream the producer context stored in the
// message headers is the creation context of that message, so parenting is correct even for
// messages consumed long after they were published; a batch Fetch links each message instead.
//
// A trace context found on a reply, on a KeyValue entry or on any message a client call reads
// back is never used as a parent: the stored traceparent belongs to whoever wrote the value.
//
// # Semantic conventions
//
// natsotel uses the newest semconv package the OpenTelemetry Go API ships (v1.43.0 in otel
// v1.47.0; conventions 1.44 define the same operation types natsotel uses: send, receive,
// process, settle). The messaging conventions are still in Development status.
//
// "nats" is what the OpenTelemetry Java agent, nats.net and eBPF instrumentation use for
// messaging.system, but it is not yet a registered value (semantic-conventions issues #2266
// and #2297). messaging.system is planned to become messaging.system.name
// (semantic-conventions#1892); when a release renames it, natsotel will switch and emit
// both names under OTEL_SEMCONV_STABILITY_OPT_IN=messaging/dup.
//
// OTEL_SEMCONV_STABILITY_OPT_IN (a comma-separated list, read once by Wrap) with
// database/dup adds the attributes of the older database conventions to KeyValue spans:
// db.system=nats, db.name (the bucket) and db.operation next to db.system.name, db.namespace
// and db.operation.name. Grafana's "View traces" on a database node searches span.db.name.
//
// # Sampling
//
// The conventions ask for the sampling-relevant attributes (system, operation, destination,
// consumer group, server) when a span is created, so that a sampler can use them. natsotel
// sets them just after: with the Go SDK, start options copy every attribute once more, into
// the start configuration, for sampled and unsampled spans alike. Given at start, they cost
// 8 to 9 % more CPU per acknowledged JetStream message, sampled or not, measured as in
// BENCHMARKS.md's comparison, and 4 to 5 % given to trace roots alone (the only spans the
// parent-based samplers, the SDK's default, decide on). A sampler decides on what it does
// see: the span's kind and name, which carry the operation and the low-cardinality
// destination ("send order.get.{id}", "process ORDER_EVENTS", "ack ORDER_EVENTS"), its
// parent and its links. The WithTracerProvider example drops settle spans that way.
//
// # Destinations and cardinality
//
// Every operation has a low-cardinality destination, its template: the endpoint or
// subscription subject (wildcards included) on the receiving side, the stream on the
// JetStream consuming side, the bucket for KeyValue, and on the sending side the subject
// itself or, with WithDestinationTemplate, the template its function returns for the subject
// ("order.get.4711" -> "order.get.{id}"). The template names the span and is the
// messaging.destination.name metric label. The span itself carries the concrete subject:
//
//	attribute                                span                                  metrics
//	---------------------------------------  ------------------------------------  -------------
//	messaging.destination.name               the message's concrete subject        the template
//	messaging.destination.template           the template, when it differs         never
//	messaging.destination.subscription.name  the JetStream consumer (Fetch)        never
//	messaging.consumer.group.name            queue group or durable consumer (+)   queue group or durable consumer
//
// (+) the durable consumer on process and settle spans (a settle span's attributes are
// those of its metric), not on Fetch's receive span.
//
// A message published to "orders.created" and received by a subscription to "orders.*"
// gives a CONSUMER span "process orders.*" with messaging.destination.name=orders.created and
// messaging.destination.template=orders.*, and metrics labelled
// messaging.destination.name=orders.*. A JetStream message on "events.order.created" read
// from stream ORDER_EVENTS gives "process ORDER_EVENTS" with
// destination.name=events.order.created and destination.template=ORDER_EVENTS, and metrics
// labelled ORDER_EVENTS. Dashboards grouping by messaging_destination_name keep seeing
// endpoints, subscriptions and streams; Tempo's trace search finds the concrete subject.
//
// Inbox subjects (_INBOX.*, the connection's custom inbox prefix (nats.CustomInboxPrefix),
// and the per-user inboxes _INBOX_<user>.* that a reply to a peer's request goes to) and
// $JS.ACK.* are temporary: named "(temporary)" with messaging.destination.temporary=true,
// and the subject itself appears nowhere, neither on the span nor in a label (the
// WithDestinationTemplate function is not asked about them).
//
// Ephemeral and ordered JetStream consumers have generated names (an ordered consumer gets a
// new one on every reset), so a consumer is messaging.consumer.group.name, a metric label,
// only when it is durable (ConsumerInfo.Config.Durable set), and then also on the process
// and settle spans; a Fetch span names every consumer as
// messaging.destination.subscription.name.
// natsotel reads durability from the cached info of the jetstream.Consumer given to
// Consume, Messages or Fetch, never with a server round trip: Process after Messages or
// Fetch knows it; messages read with cons.Messages() called directly get no group.
//
// Without WithDestinationTemplate, request and publish span names and metrics use the subject
// the caller passed: keep ids out of subjects, or give WithDestinationTemplate a rule.
//
// # Headers
//
// HeaderCarrier writes lowercase keys ("traceparent", "tracestate", "baggage") and reads
// case-insensitively, exact match first. Code using propagation.HeaderCarrier over an
// http.Header writes "Traceparent", and some nats-server versions change header case in
// transit; both are read. A malformed traceparent yields no parent (the span is a new root),
// never a panic. Headers count toward the server's max_payload: a message that only exceeds
// it because of trace headers (large baggage) fails with an error that errors.Is
// nats.ErrMaxPayload and says how many bytes were headers.
//
// Request, RequestMsg, Publish, PublishMsg and JetStream.PublishMsg never modify the caller's
// message or header map: they send a copy with the trace context added.
//
// # Errors
//
//	outcome                                       status  error.type
//	--------------------------------------------  ------  -----------------
//	reply with Nats-Service-Error-Code 409        Error   409
//	no responders (JetStream: no stream stores)   Error   no_responders
//	deadline / nats timeout                       Error   timeout
//	context canceled                              Error   canceled
//	message too big (max_payload)                 Error   max_payload
//	anything else                                 Error   _OTHER
//	handler req.Error("409", ...) (SERVER span)   Unset   409
//	handler req.Error("500", ...) (SERVER span)   Error   500
//	handler returns without answering             Error   no_reply
//	  ... an answer that could not be sent        Error   max_payload/_OTHER
//	request with no reply subject, or no inbox    Error   reply_refused
//	micro handler panic (answered 500)            Error   500
//	subscribe / JetStream handler panic           Error   panic
//	subscribe / JetStream handler Goexit          Error   _OTHER
//	KV Get of a missing key                       Unset   -
//	KV Create of an existing key                  Error   key_exists
//	KV Update with a stale revision               Error   revision_mismatch
//
// ErrorType(err) returns the error.type of any error natsotel returns, so callers can use
// the same vocabulary. The Go errors: a micro error reply is a *ServiceError (with the reply
// message); other failures are an *OpError wrapping the nats.go or context error, so
// errors.Is works with nats.ErrNoResponders, jetstream.ErrNoStreamResponse,
// nats.ErrMaxPayload, context.Canceled, and a timeout matches both context.DeadlineExceeded
// and nats.ErrTimeout. KeyValue errors are jetstream's own (ErrKeyNotFound, ErrKeyExists,
// ErrKeyRevisionMismatch); a missing key also sets nats.kv.found=false. A panic is recorded
// as an exception event; a JetStream message whose handler panicked stays unacknowledged.
//
// Status follows otelhttp and otelgrpc: a SERVER span that answers a 4xx micro code (400,
// 402, 404, 409, ...: the request was wrong) keeps status Unset and its error.type, while
// the CLIENT span is Error, so the edge still counts as failed in a service graph; 5xx
// codes, no_reply, panics and every other failure are Error on the side they happen.
// Only short numeric micro codes are used as error.type; anything else is _OTHER. A handler
// panic never takes the service down: the service keeps serving and the endpoint's stats
// count the error.
// Panics are recovered in every handler natsotel runs (micro, Subscribe, JetStream), also
// for subjects WithFilter excludes (without a span then). natsotel logs nothing:
// WithPanicHandler receives each recovered panic as a *PanicError (value, stack, subject).
//
// A micro handler must answer before it returns (see Handler): the span ends when it
// returns, and micro is not safe for an answer sent later from another goroutine. If it
// answers twice, the caller gets the first answer and the span reflects that one.
//
// # micro
//
// Conn.AddService returns a *Service embedding micro.Service (Info, Stats, Stop, ...).
// Service.AddEndpoint, AddGroup and Group.AddEndpoint take a Handler, func(ctx, req), whose
// ctx carries the SERVER span; req wraps micro.Request so that Respond, RespondJSON and Error
// are observed. The endpoint's subject and queue group are read back from Service.Info after
// registration (endpoint options are opaque). Discovery ($SRV.PING, $SRV.INFO, $SRV.STATS,
// used by "nats micro ls/info/stats") is answered by micro itself and stays untraced.
// A micro.Config.Endpoint is registered as a traced endpoint named "default".
//
// Each endpoint handles up to WithConcurrency requests at once (default 64), each on a
// worker goroutine of its own; micro alone handles one at a time. Beyond that the endpoint's
// delivery waits and requests queue in its pending buffer (micro.WithEndpointPendingLimits);
// past that limit nats.go drops them as a slow consumer and their callers time out.
// Service.Shutdown stops the service and waits until every request received has been
// answered. micro's $SRV.STATS then times only the hand-off to the goroutine and sees no
// answer: each endpoint's stats data carries the handler's figures instead
// ({"concurrency","in_flight","num_requests","num_errors","last_error",
// "processing_time","average_processing_time"}; see stats.go).
//
// Endpoints answer only reply subjects that are inboxes ("_INBOX.", "_INBOX_<user>.", the
// connection's own prefix, service imports' "_R_.", WithReplyPrefixes): a request naming
// any other reply subject would make the service publish there with its own permissions
// (a confused deputy), and a message with none is what JetStream sends when a user names
// the endpoint as the reply subject of its own API request. Neither is handled; the span
// gets error.type=reply_refused. (Fire-and-forget messages are for Subscribe.) micro's own
// discovery handlers cannot be wrapped: serve on a connection whose NATS user may publish
// only into inboxes.
//
// Like micro,
// AddEndpoint does not wait for the server to register the subscription: call
// conn.Raw().Flush() before announcing readiness if requests may arrive from other
// connections right away (otherwise they can fail with no responders).
//
// Request and RequestMsg honour ctx's deadline and cancellation; when ctx has no deadline the
// Conn's default request timeout applies (10 s unless changed with WithDefaultRequestTimeout),
// because nats.go would otherwise wait forever for a reply that never comes.
//
// # Metrics
//
// Recorded through the metric API whether or not the span is sampled:
//
//	messaging.client.operation.duration  s          Request, publishes, Fetch, settlement
//	messaging.process.duration           s          micro, Subscribe and JetStream handlers
//	messaging.client.sent.messages       {message}  Request and publishes: attempts
//	messaging.client.consumed.messages   {message}  handlers and Fetch
//	db.client.operation.duration         s          KeyValue calls
//
// Failed attempts count with error.type; messaging.operation.name tells handlers from
// Fetch.
//
// Attributes: messaging.system, messaging.operation.name and .type, messaging.destination.name
// (the template, see above), messaging.consumer.group.name where there is one (queue group,
// durable consumer), messaging.destination.temporary for "(temporary)", error.type on
// failure, server.address and server.port (not on KeyValue). Histograms use buckets
// 0.1 ms .. 10 s (the advised 5 ms .. 10 s and five below), set explicitly. Span-only
// attributes (concrete subject, template, subscription name, client id, message id,
// sequence and delivery numbers) are not metric labels.
//
// # Filter and performance
//
// WithFilter(f) skips spans and metrics for subjects where f returns false; the trace
// context still passes through and handler panics are still recovered. Span names and
// attribute sets are computed once per operation and destination and cached per Conn;
// attribute work is skipped for non-recording spans, and a span's attributes are set in one
// call. BENCHMARKS.md has the numbers.
package natsotel
