package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/natsotel/reference/natsotel"
	"github.com/natsotel/reference/services/contracts"
	"github.com/natsotel/reference/services/internal/jsutil"
	"github.com/natsotel/reference/services/internal/rpc"
)

// stateReserving marks a reservation whose lines are being taken. It is stored, never
// replied: reserve answers only once the reservation is held or released.
const stateReserving contracts.ReservationState = "reserving"

// reservation is the value stored in contracts.BucketReservations under the order id. It
// is the serialisation point of one order's reservation: every state change is a
// compare-and-set on its revision. Lines are sorted by SKU.
type reservation struct {
	contracts.Reservation
	UpdatedAt time.Time `json:"updated_at"`
}

// reservations is the reservations bucket.
type reservations struct {
	kv  *natsotel.KeyValue
	now func() time.Time
}

var errNoReservation = errors.New("no reservation")

func (r *reservations) get(ctx context.Context, order string) (reservation, uint64, error) {
	e, err := r.kv.Get(ctx, order)
	if jsutil.IsNotFound(err) {
		return reservation{}, 0, errNoReservation
	}
	if err != nil {
		return reservation{}, 0, fmt.Errorf("reading reservation %s: %w", order, err)
	}
	var res reservation
	if err := json.Unmarshal(e.Value(), &res); err != nil {
		return reservation{}, 0, fmt.Errorf("reservation %s: %w", order, err)
	}
	return res, e.Revision(), nil
}

// create stores res if no reservation exists for its order. exists is true (and err nil)
// when one does.
func (r *reservations) create(ctx context.Context, res reservation) (exists bool, err error) {
	res.UpdatedAt = r.now()
	data, err := json.Marshal(res)
	if err != nil {
		return false, err
	}
	_, err = r.kv.Create(ctx, res.OrderID, data)
	if jsutil.IsConflict(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("creating reservation %s: %w", res.OrderID, err)
	}
	return false, nil
}

// transition moves the order's reservation to state `to` if decide allows it from the
// current state, with compare-and-set; it retries when another writer got there first.
// decide returns (move, err): move false with a nil err leaves the record as is.
// A missing reservation is passed to decide as a zero record with found == false;
// moving it creates a record without lines (a tombstone, see release).
func (r *reservations) transition(ctx context.Context, order string, to contracts.ReservationState,
	decide func(res reservation, found bool) (bool, error)) (reservation, error) {
	for attempt := 1; ; attempt++ {
		res, rev, err := r.get(ctx, order)
		found := err == nil
		if err != nil && !errors.Is(err, errNoReservation) {
			return reservation{}, err
		}
		move, err := decide(res, found)
		if err != nil || !move {
			return res, err
		}
		if !found {
			res = reservation{Reservation: contracts.Reservation{OrderID: order, Lines: []contracts.Line{}}}
		}
		res.State = to
		res.UpdatedAt = r.now()
		data, err := json.Marshal(res)
		if err != nil {
			return reservation{}, err
		}
		if found {
			_, err = r.kv.Update(ctx, order, data, rev)
		} else {
			_, err = r.kv.Create(ctx, order, data)
		}
		if err == nil {
			return res, nil
		}
		if !jsutil.IsConflict(err) {
			return reservation{}, fmt.Errorf("updating reservation %s: %w", order, err)
		}
		if attempt >= 20 {
			return reservation{}, fmt.Errorf("reservation %s: %w", order, jsutil.ErrContention)
		}
	}
}

// sortedLines returns lines sorted by SKU (a stable order for taking and comparing).
func sortedLines(lines []contracts.Line) []contracts.Line {
	out := slices.Clone(lines)
	slices.SortFunc(out, func(a, b contracts.Line) int { return strings.Compare(a.SKU, b.SKU) })
	return out
}

func sameLines(a, b []contracts.Line) bool {
	return slices.Equal(sortedLines(a), sortedLines(b))
}

// Errors replied by the state machine.
func errReleased(order string) *rpc.Error {
	return rpc.Errorf(contracts.CodeConflict, "reservation for order %s was released", rpc.MaskDigits(order))
}

func errCommitted(order string) *rpc.Error {
	return rpc.Errorf(contracts.CodeConflict, "reservation for order %s is committed; its stock cannot be returned", rpc.MaskDigits(order))
}
