package systemtest

import (
	"encoding/json"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/order"
)

// TestMicroDiscovery reads $SRV.INFO as `nats micro info` does: names, SemVer versions,
// descriptions, and endpoints on the contract subjects, each with metadata.
func TestMicroDiscovery(t *testing.T) {
	s := startSystem(t, sizes{inventory: 2, billing: 1, order: 1}, order.Config{})
	want := map[string][]string{
		contracts.OrderService:     {contracts.SubjectOrderCreate, contracts.SubjectOrderGet, contracts.ControlSubject(contracts.OrderService)},
		contracts.InventoryService: {contracts.SubjectInventoryReserve, contracts.SubjectInventoryRelease, contracts.SubjectInventoryCommit, contracts.SubjectInventoryStock, contracts.ControlSubject(contracts.InventoryService)},
		contracts.BillingService:   {contracts.SubjectBillingCharge, contracts.SubjectBillingRefund, contracts.SubjectBillingPayment, contracts.ControlSubject(contracts.BillingService)},
	}
	semver := regexp.MustCompile(`^\d+\.\d+\.\d+$`)
	for name, subjects := range want {
		subj, _ := micro.ControlSubject(micro.InfoVerb, name, "")
		msg, err := s.client.NC.Request(subj, nil, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subj, err)
		}
		var info micro.Info
		if err := json.Unmarshal(msg.Data, &info); err != nil {
			t.Fatal(err)
		}
		if info.Name != name || !semver.MatchString(info.Version) || info.Description == "" || len(info.Metadata) == 0 {
			t.Errorf("%s info: %+v", name, info.ServiceIdentity)
		}
		var got []string
		for _, ep := range info.Endpoints {
			got = append(got, ep.Subject)
			if ep.Metadata["description"] == "" || ep.Metadata["errors"] == "" {
				t.Errorf("%s endpoint %s lacks metadata: %v", name, ep.Name, ep.Metadata)
			}
			isControl := ep.Subject == contracts.ControlSubject(name)
			if isControl != (ep.QueueGroup == "") {
				t.Errorf("%s endpoint %s queue group %q (control endpoints reach every replica)", name, ep.Name, ep.QueueGroup)
			}
		}
		sort.Strings(got)
		sort.Strings(subjects)
		if len(got) != len(subjects) {
			t.Fatalf("%s endpoints %v, want %v", name, got, subjects)
		}
		for i := range got {
			if got[i] != subjects[i] {
				t.Errorf("%s endpoints %v, want %v", name, got, subjects)
				break
			}
		}
	}
	// A control request reaches every inventory replica.
	s.control(t, contracts.InventoryService, `{"nak_share":0.5}`)
	pingSubj, _ := micro.ControlSubject(micro.PingVerb, contracts.InventoryService, "")
	inbox := s.client.NC.NewRespInbox()
	sub, err := s.client.NC.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.client.NC.PublishRequest(pingSubj, inbox, nil); err != nil {
		t.Fatal(err)
	}
	replicas := 0
	for {
		if _, err := sub.NextMsg(500 * time.Millisecond); err != nil {
			break
		}
		replicas++
	}
	if replicas != 2 {
		t.Fatalf("%d inventory replicas answered PING, want 2", replicas)
	}
	// An empty control request reads the faults in force, on every replica.
	for i, cfg := range s.faults(t, contracts.InventoryService, nil) {
		if cfg.NakShare != 0.5 {
			t.Fatalf("replica %d config %+v", i, cfg)
		}
	}
}
