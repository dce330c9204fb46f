package contracts

// FaultConfig is the body of a service's ControlSubject request: failure scenarios that
// can be switched on at runtime, without restarts. A zero value switches everything off.
// The reply is the FaultConfig now in force.
type FaultConfig struct {
	// DeclineShare (billing) declines this share (0..1) of otherwise valid charges.
	DeclineShare float64 `json:"decline_share,omitempty"`
	// DelayShare and Delay (inventory): add Delay plus up to DelayJitter of latency to
	// this share of reservations. Durations are Go duration strings ("150ms").
	DelayShare  float64 `json:"delay_share,omitempty"`
	Delay       string  `json:"delay,omitempty"`
	DelayJitter string  `json:"delay_jitter,omitempty"`
	// DropShare (any service): do not reply to this share of requests, so callers time out.
	DropShare float64 `json:"drop_share,omitempty"`
	// NakShare (inventory's order-event consumer): fail this share of messages so they
	// are redelivered.
	NakShare float64 `json:"nak_share,omitempty"`
}
