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
//	operation                  kind      name                        parent / links                           key attributes
//	-------------------------  --------  --------------------------  ---------------------------------------  -------------------------------------------
//	Conn.Request, RequestMsg   CLIENT    request <subject> (+)       caller's ctx                             messaging.operation.name=request, type=send
//	micro endpoint handler     SERVER    process <endpoint subject>  child of the requester's CLIENT span     type=process, consumer.group.name=queue group
//	Conn.Publish, PublishMsg   PRODUCER  send <subject> (+)          caller's ctx                             type=send, message.body.size
//	Subscribe, QueueSubscribe  CONSUMER  process <subscription>      child of the PRODUCER span (or link *)   type=process, consumer.group.name=queue
//	JetStream.Publish          PRODUCER  send <subject> (+)          caller's ctx                             messaging.nats.stream/.sequence, message.id
//	JetStream.Consume/Process  CONSUMER  process <stream>            child of the stored PRODUCER span (*)    subscription.name=consumer (#), .delivered
//	JetStream.Fetch            CLIENT    receive <stream>            caller's ctx; one link per message       batch.message_count, subscription.name (#)
//	Ack/Nak/Term/InProgress    CLIENT    <op> <stream>               child of the process span                type=settle, name=ack/nak/term/in_progress
//	KeyValue Get/Put/...       CLIENT    <op> <bucket>               caller's ctx                             db.system.name=nats, db.namespace=bucket
//
// (*) With WithConsumerLinks, subscribe and JetStream process spans are new roots that link to
// the producer instead.
//
// (+) With WithDestinationTemplate: the template its function returns for the subject.
//
// (#) The consumer is also messaging.consumer.group.name when it is durable (see below).
//
// Every messaging span has messaging.system=nats, messaging.operation.name and .type,
// messaging.destination.name (the concrete subject; see "Destinations and cardinality"),
// messaging.client.id (the connection name, or its client id) and server.address/server.port.
// No message content ever goes into an attribute: only its size.
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
//	messaging.destination.subscription.name  the JetStream consumer                never
//	messaging.consumer.group.name            queue group or durable consumer       the same
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
// only when it is durable (ConsumerInfo.Config.Durable set); every consumer's name is on the
// span as messaging.destination.subscription.name. natsotel reads durability from the cached
// info of the jetstream.Consumer given to Consume, Messages or Fetch, never with a server
// round trip: Process after Messages or Fetch knows it; messages read with cons.Messages()
// called directly get no group.
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
//	outcome                                        span status  error.type          Go error
//	---------------------------------------------  -----------  ------------------  ----------------------------------------------
//	reply with Nats-Service-Error-Code: 409        Error        409                 *ServiceError{Code: "409", ...} (+ reply)
//	no responders                                  Error        no_responders       errors.Is(err, nats.ErrNoResponders)
//	JetStream publish that no stream stores        Error        no_responders       errors.Is(err, jetstream.ErrNoStreamResponse)
//	deadline / nats timeout                        Error        timeout             errors.Is(err, context.DeadlineExceeded) and nats.ErrTimeout
//	context canceled                               Error        canceled            errors.Is(err, context.Canceled)
//	message too big (max_payload)                  Error        max_payload         errors.Is(err, nats.ErrMaxPayload)
//	anything else                                  Error        _OTHER              *OpError wrapping the nats.go error
//	micro handler req.Error("409", ...)            Unset        409                 (server side: 4xx is the caller's error)
//	micro handler req.Error("500", ...)            Error        500                 (server side)
//	micro handler returns without answering        Error        no_reply            (server side; the caller times out)
//	  ... a message without a reply subject        Unset        -                   (nobody waits: not answering is right)
//	  ... an answer that could not be sent         Error        max_payload/_OTHER  (server side; the error of the failed send)
//	micro handler panic                            Error        500                 answered "500 internal error"; exception event
//	subscribe / JetStream handler panic            Error        panic               recovered; exception event; JetStream message unacked
//	subscribe / JetStream handler runtime.Goexit   Error        _OTHER              span ended; the goroutine exits
//	KV Get of a missing key                        Unset        -                   errors.Is(err, jetstream.ErrKeyNotFound); nats.kv.found=false
//	KV Create of an existing key                   Error        key_exists          errors.Is(err, jetstream.ErrKeyExists)
//	KV Update with a stale revision                Error        revision_mismatch   errors.Is(err, jetstream.ErrKeyRevisionMismatch)
//
// Status follows otelhttp and otelgrpc: a SERVER span that answers a 4xx micro code (400,
// 402, 404, 409, ...: the request was wrong) keeps status Unset and its error.type, while
// the CLIENT span is Error, so the edge still counts as failed in a service graph; 5xx
// codes, no_reply, panics and every other failure are Error on the side they happen.
// Only short numeric micro codes are used as error.type; anything else is _OTHER. A handler
// panic never takes the service down: micro keeps serving and its stats count the error.
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
// A micro.Config.Endpoint is registered as a traced endpoint named "default". Like micro,
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
//	messaging.client.operation.duration  s   Request, Publish, JetStream Publish, Fetch and settlement
//	messaging.process.duration           s   micro handlers, Subscribe handlers, JetStream Consume/Process
//	messaging.client.sent.messages       {message}  Request, Publish, JetStream Publish: attempts (failed ones with error.type)
//	messaging.client.consumed.messages   {message}  handlers and Fetch (operation.name tells which)
//	db.client.operation.duration         s   KeyValue calls
//
// Attributes: messaging.system, messaging.operation.name and .type, messaging.destination.name
// (the template, see above), messaging.consumer.group.name where there is one (queue group,
// durable consumer), messaging.destination.temporary for "(temporary)", error.type on
// failure, server.address and server.port (not on KeyValue). Histograms use the advised
// buckets 5 ms .. 10 s, set explicitly. Span-only attributes (concrete subject, template,
// subscription name, client id, body size, sequence numbers, WithAttributes) are not metric
// labels.
//
// # Filter and performance
//
// WithFilter(f) skips spans and metrics for subjects where f returns false; the trace context
// still passes through and handler panics are still recovered. Span names and attribute sets are computed once per operation and
// destination and cached per Conn; attribute work is skipped for non-recording spans.
// BENCHMARKS.md has the numbers.
package natsotel
