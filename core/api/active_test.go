package api

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

func TestActiveSet(t *testing.T) {
	s := newActiveSet(5*time.Minute, 3)
	mk := func(id, src, label string, end time.Duration) sdk.Alert {
		return sdk.Alert{ID: id, Src: netip.MustParseAddr(src), Label: label, End: base.Add(end), Score: 0.9}
	}
	ids := func() []string {
		as, _, _ := s.list(100)
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	s.add(mk("1", "10.0.0.1", "scan", time.Minute))
	s.add(mk("2", "10.0.0.1", "scan", 2*time.Minute))  // newer window, same pair: replaces 1
	s.add(mk("3", "10.0.0.1", "scan", 90*time.Second)) // older window, late: ignored
	s.add(mk("4", "10.0.0.1", "dos", 2*time.Minute))   // other label: its own entry
	// Same window end and score: ordered by source, then label.
	if got := ids(); !slices.Equal(got, []string{"4", "2"}) {
		t.Fatalf("active %v, want [4 2]", got)
	}

	// Packet time moves on without alerts: the present is the newest
	// packet, and alerts older than five minutes before it are gone.
	s.observe(base.Add(6*time.Minute + 59*time.Second))
	if got := ids(); len(got) != 2 {
		t.Fatalf("4m59s after their windows: %v", got)
	}
	s.observe(base.Add(7*time.Minute + time.Second))
	if got := ids(); len(got) != 0 {
		t.Fatalf("past active_for: %v", got)
	}
	// An alert already too old for the present is not shown.
	s.add(mk("5", "10.0.0.2", "scan", time.Minute))
	if got := ids(); len(got) != 0 {
		t.Fatalf("stale alert shown: %v", got)
	}
	// The set is bounded: the oldest windows go first.
	for i, src := range []string{"10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.4"} {
		s.add(mk(src, src, "scan", 7*time.Minute+time.Duration(i)*time.Second))
	}
	as, total, asOf := s.list(2)
	if total != 3 || len(as) != 2 || as[0].ID != "10.0.1.4" || as[1].ID != "10.0.1.3" || !asOf.Equal(base.Add(7*time.Minute+3*time.Second)) {
		t.Fatalf("bounded: total %d, first %v, as of %v", total, as, asOf)
	}
}

func TestObservePackets(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *tuning) { c.ActiveFor = time.Minute })
	f.srv.PublishAlert(fixtureAlert(0)) // window ends base+30s
	b := &sdk.PacketBatch{Timestamps: []int64{base.Add(80 * time.Second).UnixNano(), base.Add(95 * time.Second).UnixNano(), base.Add(85 * time.Second).UnixNano()}}
	f.srv.ObservePackets(b)
	if _, total, asOf := f.srv.active.list(10); total != 0 || !asOf.Equal(base.Add(95*time.Second)) {
		t.Fatalf("after packets at base+95s: %d active, as of %v", total, asOf)
	}
}
