package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go/micro"
)

// Which server each instance is connected to. micro's $SRV replies do not say, so the
// probe asks every server's HTTP monitoring endpoint: /varz for its server_name, and
// /connz?subs=1 for its client connections with their subscriptions. A micro instance
// subscribes to "$SRV.PING.<name>.<id>", so the connection holding that subscription is
// the instance's, on that server. (The system account's $SYS.REQ.SERVER.PING.CONNZ would
// answer for the whole cluster over NATS, but needs a system user the shop does not have.)

// serverOf maps an instance to the server_name of the server it is connected to.
type serverOf map[instanceKey]string

// locate reads every monitoring URL. A server that does not answer is skipped (its
// instances have no server this round); the error names it.
func (p *Probe) locate(ctx context.Context) (serverOf, error) {
	out := serverOf{}
	var errs []string
	for _, base := range p.cfg.MonitorURLs {
		if err := p.locateOn(ctx, strings.TrimRight(base, "/"), out); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("probe: monitoring: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

func (p *Probe) locateOn(ctx context.Context, base string, out serverOf) error {
	var varz struct {
		Name string `json:"server_name"`
	}
	if err := p.getJSON(ctx, base+"/varz", &varz); err != nil {
		return err
	}
	var connz struct {
		Conns []struct {
			Subs []string `json:"subscriptions_list"`
		} `json:"connections"`
	}
	// limit: every connection of the server (the default is 1024).
	if err := p.getJSON(ctx, base+"/connz?subs=1&limit=100000", &connz); err != nil {
		return err
	}
	prefix := "$SRV." + micro.PingVerb.String() + "."
	for _, c := range connz.Conns {
		for _, s := range c.Subs {
			rest, ok := strings.CutPrefix(s, prefix)
			if !ok {
				continue
			}
			if name, id, ok := strings.Cut(rest, "."); ok && !strings.Contains(id, ".") {
				out[instanceKey{name, id}] = varz.Name
			}
		}
	}
	return nil
}

func (p *Probe) getJSON(ctx context.Context, url string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
