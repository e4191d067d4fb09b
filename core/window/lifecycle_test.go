package window

import (
	"errors"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

func TestTickIdleTimeout(t *testing.T) {
	c := &collector{}
	a, err := New(Options{Lateness: time.Second, IdleTimeout: 10 * time.Second}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // unrelated to packet time
	tick := func(d time.Duration) {
		t.Helper()
		if err := a.Tick(wall.Add(d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Tick(wall); err != nil { // before any packet: nothing
		t.Fatal(err)
	}
	p := func(off float64) P { return P{ts: ms(off), src: A, dst: B, proto: sdk.ProtoUDP, length: 100} }
	if err := a.Add(batchOf([]P{p(1000), p(3000)})); err != nil { // newest 3 s, watermark 2 s
		t.Fatal(err)
	}
	if st := a.Stats(); st.Buffered != 1 { // 3.0 waits for the watermark
		t.Fatalf("buffered %d, want 1", st.Buffered)
	}
	tick(0)               // anchors: newest 3 s seen at wall+0
	tick(9 * time.Second) // idle 9 s < 10 s: nothing
	if n := c.count(5 * time.Second); n != 0 {
		t.Fatalf("%d rows before the idle timeout", n)
	}
	// Idle 10 s: watermark = 3 s + 10 s − 1 s lateness = 12 s: [0,5) and
	// [5,10) end before it; only [0,5) has packets.
	tick(10 * time.Second)
	if n := c.count(5 * time.Second); n != 2 { // A and B
		t.Fatalf("%d rows after the idle timeout, want 2", n)
	}
	if r := c.row(t, 5*time.Second, 0, A); r.Flags != 0 || get(r, sdk.FeaturePackets) != 2 {
		t.Errorf("row %v flags %b", r.Values, r.Flags)
	}
	// Watermark is now 12 s: a packet at 11.9 s is late, 12.5 s counts.
	if err := a.Add(batchOf([]P{p(11900), p(12500)})); err != nil {
		t.Fatal(err)
	}
	tick(20 * time.Second) // newest changed (12.5 s): re-anchor, no advance
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if st.LatePackets != 1 || st.Packets != 3 {
		t.Errorf("late %d packets %d, want 1 and 3", st.LatePackets, st.Packets)
	}
	if r := c.row(t, 5*time.Second, 10*time.Second, A); r.Flags != sdk.WindowPartial {
		t.Errorf("[10,15) flags %b, want partial", r.Flags)
	}
	if err := a.Tick(wall); !errors.Is(err, ErrClosed) {
		t.Errorf("Tick after Close: %v", err)
	}

	// IdleTimeout 0 disables Tick.
	c = &collector{}
	a, _ = New(Options{}, c.emit)
	_ = a.Add(batchOf([]P{p(1000)}))
	_ = a.Tick(wall)
	_ = a.Tick(wall.Add(time.Hour))
	if n := c.count(5 * time.Second); n != 0 {
		t.Errorf("Tick without idle timeout emitted %d rows", n)
	}
}

func TestEmitErrorStops(t *testing.T) {
	boom := errors.New("sink full")
	calls := 0
	a, err := New(Options{}, func(*sdk.FeatureBatch) error { calls++; return boom })
	if err != nil {
		t.Fatal(err)
	}
	p := func(off float64) P { return P{ts: ms(off), src: A, dst: B, proto: sdk.ProtoUDP, length: 100} }
	if err := a.Add(batchOf([]P{p(0)})); err != nil {
		t.Fatal(err)
	}
	err = a.Add(batchOf([]P{p(6000), p(7000)})) // closes [0,5): emit fails
	if !errors.Is(err, boom) {
		t.Fatalf("Add returned %v, want the emit error", err)
	}
	if calls != 1 {
		t.Errorf("emit called %d times after failing, want 1", calls)
	}
	if err := a.Add(batchOf([]P{p(8000)})); !errors.Is(err, boom) {
		t.Errorf("later Add returned %v", err)
	}
	if err := a.Close(); !errors.Is(err, boom) {
		t.Errorf("Close returned %v", err)
	}
}

func TestOptionsValidation(t *testing.T) {
	emit := func(*sdk.FeatureBatch) error { return nil }
	s := time.Second
	for _, o := range []Options{
		{Sizes: []time.Duration{5 * s, 7 * s}},
		{Sizes: []time.Duration{30 * s, 5 * s}},
		{Sizes: []time.Duration{0}},
		{Sizes: []time.Duration{1 << 62}},
		{Sizes: []time.Duration{5 * s, 5 * s}},
		{Lateness: -1},
		{IdleTimeout: -1},
		{MaxSources: -1},
		{DistinctExactLimit: -1},
		{MaxPendingHandshakes: -1},
	} {
		if _, err := New(o, emit); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	if _, err := New(Options{}, nil); err == nil {
		t.Error("nil emit accepted")
	}
	a, err := New(DefaultOptions(), emit)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Sizes(); len(got) != 3 || got[0] != 5*s || got[2] != 180*s {
		t.Errorf("default sizes %v", got)
	}
}

func TestMalformedBatch(t *testing.T) {
	c := &collector{}
	a, _ := New(Options{}, c.emit)
	b := batchOf([]P{{ts: ms(0), src: A, dst: B, proto: sdk.ProtoUDP, length: 1}})
	b.Lengths = nil
	if err := a.Add(b); err == nil {
		t.Fatal("malformed batch accepted")
	}
	if st := a.Stats(); st.Packets != 0 {
		t.Errorf("malformed batch processed %d packets", st.Packets)
	}
	// Still usable afterwards.
	if err := a.Add(batchOf([]P{{ts: ms(0), src: A, dst: B, proto: sdk.ProtoUDP, length: 1}})); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Add(&sdk.PacketBatch{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := c.count(5 * time.Second); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
}

// TestEmptyAndNonIPOnly: nothing to emit, nothing emitted.
func TestEmptyAndNonIPOnly(t *testing.T) {
	c, a := run(t, Options{}, []P{{ts: ms(0), length: 60, flags: sdk.PacketNonIP}})
	if len(c.batches) != 0 || a.Stats().NonIPPackets != 1 {
		t.Errorf("batches %d stats %+v", len(c.batches), a.Stats())
	}
}
