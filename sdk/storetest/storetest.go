package storetest

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// Harness gives the suite a fresh, empty store and a way to put records
// into it.
type Harness struct {
	// New returns an empty store and an appender for it; called once per
	// top-level subtest. Cleanup belongs in t.Cleanup.
	New func(t *testing.T) (sdk.Store, Appender)
}

// Appender puts records into the store under test, the way a sink receives
// them from the core.
type Appender interface {
	AppendFeatures(ctx context.Context, b *sdk.FeatureBatch) error
	AppendAlerts(ctx context.Context, alerts []sdk.Alert) error
	// Flush makes everything appended visible to queries.
	Flush(ctx context.Context) error
}

// Run runs the contract suite (see the package doc) against h's stores.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: Harness.New is nil")
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"Empty", testEmpty},
		{"InvalidInput", testInvalidInput},
		{"Features", testFeatures},
		{"FeatureNames", testFeatureNames},
		{"FeaturesIdempotent", testFeaturesIdempotent},
		{"ProtocolsByHand", testProtocolsByHand},
		{"TopSourcesByHand", testTopSourcesByHand},
		{"Alerts", testAlerts},
		{"AlertPagesWithAppends", testAlertPagesWithAppends},
		{"AlertsIdempotent", testAlertsIdempotent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func open(t *testing.T, h Harness) (sdk.Store, Appender) {
	t.Helper()
	st, ap := h.New(t)
	if st == nil || ap == nil {
		t.Fatal("storetest: Harness.New returned a nil store or appender")
	}
	return st, ap
}

func appendFeatures(t *testing.T, ap Appender, batches ...*sdk.FeatureBatch) {
	t.Helper()
	for i, b := range batches {
		if err := ap.AppendFeatures(t.Context(), b); err != nil {
			t.Fatalf("AppendFeatures(batch %d: %s %v, %d rows): %v", i, b.Sensor, b.Window, len(b.Rows), err)
		}
	}
}

func appendAlerts(t *testing.T, ap Appender, batches ...[]sdk.Alert) {
	t.Helper()
	for i, b := range batches {
		if err := ap.AppendAlerts(t.Context(), b); err != nil {
			t.Fatalf("AppendAlerts(batch %d, %d alerts): %v", i, len(b), err)
		}
	}
}

func flush(t *testing.T, ap Appender) {
	t.Helper()
	if err := ap.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// sameFloat is bit equality, except that any NaN equals any NaN: NaN means
// missing and its payload is not part of the contract.
func sameFloat(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Float64bits(a) == math.Float64bits(b)
}

func fmtRange(r sdk.TimeRange) string {
	f := func(t time.Time) string {
		if t.IsZero() {
			return "open"
		}
		return t.UTC().Format("15:04:05.000")
	}
	return "[" + f(r.From) + ", " + f(r.To) + ")"
}

func testEmpty(t *testing.T, h Harness) {
	st, _ := open(t, h)
	ctx := t.Context()
	src := netip.MustParseAddr("10.0.0.1")
	for _, q := range []sdk.FeatureQuery{
		{Window: 5 * time.Second},
		{Window: 30 * time.Second, Src: src},
		{Window: 180 * time.Second, Range: sdk.TimeRange{From: fixtureBase, To: fixtureBase.Add(time.Hour)}, Limit: 10},
	} {
		b, err := st.QueryFeatures(ctx, q)
		switch {
		case err != nil:
			t.Errorf("QueryFeatures(%v) on an empty store: %v", q.Window, err)
		case b == nil:
			t.Errorf("QueryFeatures(%v) on an empty store returned a nil batch", q.Window)
		case len(b.Rows) != 0:
			t.Errorf("QueryFeatures(%v) on an empty store: %d rows", q.Window, len(b.Rows))
		}
	}
	checkProtocols(t, st, sdk.TimeRange{}, protocolCounts([4][2]uint64{}))
	for _, by := range []string{"", "bytes", "packets"} {
		got, err := st.QueryTopSources(ctx, sdk.TopSourcesQuery{By: by, Limit: 10})
		if err != nil || len(got) != 0 {
			t.Errorf("QueryTopSources(by %q) on an empty store = %v, %v; want none", by, got, err)
		}
	}
	for _, q := range []sdk.AlertQuery{{}, {Limit: 5}, {Severity: sdk.SeverityHigh, Label: "ddos", Src: src}} {
		p, err := st.QueryAlerts(ctx, q)
		if err != nil || len(p.Alerts) != 0 || p.NextCursor != "" {
			t.Errorf("QueryAlerts(%+v) on an empty store = %d alerts, cursor %q, %v; want none", q, len(p.Alerts), p.NextCursor, err)
		}
	}
}

// garbageCursors are cursors no store issues: not base64 of anything, or
// decoding to text without any structure.
var garbageCursors = []string{"not a cursor!", "%%%%", "aGVsbG8", "\x00\xff"}

func testInvalidInput(t *testing.T, h Harness) {
	st, ap := open(t, h)
	ctx := t.Context()
	// Data first, so that no store can answer "nothing" before validating.
	fx := buildFeatures()
	appendFeatures(t, ap, fx.batches[:3]...)
	al := buildAlerts()
	appendAlerts(t, ap, al.batches...)
	flush(t, ap)

	for _, q := range []sdk.FeatureQuery{{Window: 0}, {Window: -5 * time.Second}, {Window: 5 * time.Second, Limit: -1}} {
		if _, err := st.QueryFeatures(ctx, q); err == nil {
			t.Errorf("QueryFeatures(window %v, limit %d): no error", q.Window, q.Limit)
		}
	}
	for _, q := range []sdk.TopSourcesQuery{{By: "flows"}, {By: "bytes", Limit: -1}} {
		if _, err := st.QueryTopSources(ctx, q); err == nil {
			t.Errorf("QueryTopSources(by %q, limit %d): no error", q.By, q.Limit)
		}
	}
	for _, q := range []sdk.AlertQuery{{Severity: "urgent"}, {Limit: -1}} {
		if _, err := st.QueryAlerts(ctx, q); err == nil {
			t.Errorf("QueryAlerts(severity %q, limit %d): no error", q.Severity, q.Limit)
		}
	}
	checkBadCursors(t, st)
}

func checkBadCursors(t *testing.T, st sdk.Store) {
	t.Helper()
	for _, c := range garbageCursors {
		_, err := st.QueryAlerts(t.Context(), sdk.AlertQuery{Limit: 5, Cursor: c})
		if !errors.Is(err, sdk.ErrBadCursor) {
			t.Errorf("QueryAlerts(cursor %q) = %v; want an error wrapping sdk.ErrBadCursor", c, err)
		}
	}
}

// fatalIf stops a test whose fixture does not exercise what the test is
// about, so a change to the generator cannot silently make a check vacuous.
func fatalIf(t *testing.T, cond bool, format string, args ...any) {
	t.Helper()
	if cond {
		t.Fatalf("storetest fixture: "+format, args...)
	}
}
