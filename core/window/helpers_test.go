package window

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// t0 is a test epoch aligned to 180 s (1699999920 = 180 × 9444444), so the
// 5 s, 30 s and 180 s windows of the tests all start at t0 + k·size.
const t0 = int64(1699999920) * int64(time.Second)

func ms(v float64) int64 { return t0 + int64(v*float64(time.Millisecond)) }

// collector keeps every emitted batch.
type collector struct {
	batches []*sdk.FeatureBatch
}

func (c *collector) emit(b *sdk.FeatureBatch) error {
	c.batches = append(c.batches, b)
	return nil
}

// row returns the row of src in the window of size starting at t0+off.
func (c *collector) row(t *testing.T, size time.Duration, off time.Duration, src string) sdk.FeatureRow {
	t.Helper()
	want := netip.MustParseAddr(src)
	start := time.Unix(0, t0).Add(off)
	for _, b := range c.batches {
		if b.Window != size {
			continue
		}
		for _, r := range b.Rows {
			if r.Src == want && r.Start.Equal(start) {
				return r
			}
		}
	}
	t.Fatalf("no %v row for %s at +%v", size, src, off)
	return sdk.FeatureRow{}
}

func (c *collector) count(size time.Duration) int {
	n := 0
	for _, b := range c.batches {
		if b.Window == size {
			n += len(b.Rows)
		}
	}
	return n
}

// get returns feature name of row r.
func get(r sdk.FeatureRow, name string) float64 {
	i := slices.Index(sdk.Features, name)
	if i < 0 || i >= len(r.Values) {
		return math.NaN()
	}
	return r.Values[i]
}

// expect compares features of a row; want maps names to values (NaN means
// "must be NaN"). Relative tolerance 1e-12 unless the value is an integer.
func expect(t *testing.T, r sdk.FeatureRow, want map[string]float64) {
	t.Helper()
	for name, w := range want {
		got := get(r, name)
		switch {
		case math.IsNaN(w):
			if !math.IsNaN(got) {
				t.Errorf("%s %v: %s = %v, want NaN", r.Src, r.Start.Sub(time.Unix(0, t0)), name, got)
			}
		case math.Abs(got-w) > 1e-12*math.Max(1, math.Abs(w)):
			t.Errorf("%s %v: %s = %v, want %v", r.Src, r.Start.Sub(time.Unix(0, t0)), name, got, w)
		}
	}
}

func addr(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// P is a compact packet description for tests.
type P struct {
	ts           int64
	src, dst     string
	proto        uint8
	sport, dport uint16
	tcp          uint8
	length       uint32
	flags        sdk.PacketFlags
}

func (p P) packet() sdk.Packet {
	q := sdk.Packet{
		Timestamp: p.ts, SrcPort: p.sport, DstPort: p.dport, Protocol: p.proto,
		TCPFlags: p.tcp, Flags: p.flags, Length: p.length,
	}
	if p.src != "" {
		q.Src = addr(p.src)
	}
	if p.dst != "" {
		q.Dst = addr(p.dst)
	}
	return q
}

func batchOf(ps []P) *sdk.PacketBatch {
	b := &sdk.PacketBatch{}
	for _, p := range ps {
		q := p.packet()
		b.Append(&q)
	}
	return b
}

// run feeds ps (one batch) into a new aggregator and closes it.
func run(t *testing.T, opts Options, ps []P) (*collector, *Aggregator) {
	t.Helper()
	c := &collector{}
	a, err := New(opts, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(batchOf(ps)); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return c, a
}

// sameBatches reports the first difference between two emission
// sequences, comparing floats bit for bit (NaN equals NaN).
func sameBatches(x, y []*sdk.FeatureBatch) error {
	if len(x) != len(y) {
		return fmt.Errorf("%d batches vs %d", len(x), len(y))
	}
	for i := range x {
		a, b := x[i], y[i]
		if a.Window != b.Window || len(a.Rows) != len(b.Rows) || !slices.Equal(a.Names, b.Names) {
			return fmt.Errorf("batch %d: window %v/%v rows %d/%d", i, a.Window, b.Window, len(a.Rows), len(b.Rows))
		}
		for j := range a.Rows {
			if err := sameRow(a.Rows[j], b.Rows[j], 0); err != nil {
				return fmt.Errorf("batch %d (%v) row %d: %w", i, a.Window, j, err)
			}
		}
	}
	return nil
}

// sameRow compares two rows; tol is the relative tolerance for floats.
func sameRow(a, b sdk.FeatureRow, tol float64) error {
	if a.Src != b.Src || !a.Start.Equal(b.Start) || !a.End.Equal(b.End) || a.Flags != b.Flags {
		return fmt.Errorf("key %s %v %v flags %d vs %s %v %v flags %d", a.Src, a.Start, a.End, a.Flags, b.Src, b.Start, b.End, b.Flags)
	}
	if len(a.Values) != len(b.Values) {
		return fmt.Errorf("%d values vs %d", len(a.Values), len(b.Values))
	}
	for k := range a.Values {
		u, v := a.Values[k], b.Values[k]
		if math.IsNaN(u) || math.IsNaN(v) {
			if math.IsNaN(u) != math.IsNaN(v) {
				return fmt.Errorf("%s %s: %v vs %v", a.Src, sdk.Features[k], u, v)
			}
			continue
		}
		if u != v && math.Abs(u-v) > tol*math.Max(math.Abs(u), math.Abs(v)) {
			return fmt.Errorf("%s %v %s: %v vs %v", a.Src, a.Start, sdk.Features[k], u, v)
		}
	}
	return nil
}
