package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

func fmtAQ(q sdk.AlertQuery) string {
	var s []string
	if q.Severity != "" {
		s = append(s, "severity "+string(q.Severity))
	}
	if q.Label != "" {
		s = append(s, "label "+q.Label)
	}
	if q.Src.IsValid() {
		s = append(s, "src "+q.Src.String())
	}
	if q.Range != (sdk.TimeRange{}) {
		s = append(s, "range "+fmtRange(q.Range))
	}
	s = append(s, fmt.Sprintf("limit %d", q.Limit))
	return strings.Join(s, " ")
}

func matchAlert(a sdk.Alert, q sdk.AlertQuery) bool {
	return (q.Severity == "" || a.Severity == q.Severity) &&
		(q.Label == "" || a.Label == q.Label) &&
		(!q.Src.IsValid() || a.Src == q.Src) &&
		q.Range.Contains(a.End)
}

// wantAlerts filters sorted (newest first) by q, ignoring limit and cursor.
func wantAlerts(sorted []sdk.Alert, q sdk.AlertQuery) []sdk.Alert {
	var out []sdk.Alert
	for _, a := range sorted {
		if matchAlert(a, q) {
			out = append(out, a)
		}
	}
	return out
}

func ids(as []sdk.Alert) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

// compareAlerts checks got against want: same alerts in the same order,
// every field round-tripped.
func compareAlerts(t *testing.T, what string, got, want []sdk.Alert) {
	t.Helper()
	if !slices.Equal(ids(got), ids(want)) {
		t.Errorf("%s: got IDs\n  %v\nwant\n  %v", what, ids(got), ids(want))
		return
	}
	bad := 0
	for i := range want {
		if d := diffAlert(got[i], want[i]); d != "" {
			if bad++; bad > 5 {
				t.Errorf("%s: more alerts differ", what)
				return
			}
			t.Errorf("%s: alert %s: %s", what, want[i].ID, d)
		}
	}
}

// diffAlert describes how g differs from w, Row excepted ("" when it does not).
func diffAlert(g, w sdk.Alert) string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	str("ID", g.ID, w.ID)
	str("Sensor", g.Sensor, w.Sensor)
	str("Detector", g.Detector, w.Detector)
	str("Label", g.Label, w.Label)
	str("Severity", string(g.Severity), string(w.Severity))
	str("RunnerUp", g.RunnerUp, w.RunnerUp)
	if g.Src != w.Src {
		d = append(d, fmt.Sprintf("Src %v, want %v", g.Src, w.Src))
	}
	if g.Window != w.Window {
		d = append(d, fmt.Sprintf("Window %v, want %v", g.Window, w.Window))
	}
	for _, tt := range []struct {
		name string
		g, w time.Time
	}{{"Start", g.Start, w.Start}, {"End", g.End, w.End}, {"Time", g.Time, w.Time}} {
		if !tt.g.Equal(tt.w) {
			d = append(d, fmt.Sprintf("%s %v, want %v", tt.name, tt.g, tt.w))
		}
	}
	if !sameFloat(g.Score, w.Score) {
		d = append(d, fmt.Sprintf("Score %v, want %v", g.Score, w.Score))
	}
	if !sameFloat(g.RunnerUpScore, w.RunnerUpScore) {
		d = append(d, fmt.Sprintf("RunnerUpScore %v, want %v", g.RunnerUpScore, w.RunnerUpScore))
	}
	if len(g.TopFeatures) != len(w.TopFeatures) {
		d = append(d, fmt.Sprintf("TopFeatures %v, want %v", g.TopFeatures, w.TopFeatures))
	} else {
		for i, f := range w.TopFeatures {
			gf := g.TopFeatures[i]
			if gf.Name != f.Name || !sameFloat(gf.Value, f.Value) || !sameFloat(gf.Weight, f.Weight) {
				d = append(d, fmt.Sprintf("TopFeatures[%d] %+v, want %+v", i, gf, f))
			}
		}
	}
	if !sameJSON(g.Details, w.Details) {
		d = append(d, fmt.Sprintf("Details %s, want %s", g.Details, w.Details))
	}
	return strings.Join(d, "; ")
}

// sameJSON compares JSON values, not text: a store may reformat (jsonb
// reorders keys and respaces). nil, empty and null are all "no details".
func sameJSON(a, b json.RawMessage) bool {
	norm := func(m json.RawMessage) (any, bool) {
		m = bytes.TrimSpace(m)
		if len(m) == 0 || string(m) == "null" {
			return nil, true
		}
		var v any
		if err := json.Unmarshal(m, &v); err != nil {
			return nil, false
		}
		return v, true
	}
	va, oka := norm(a)
	vb, okb := norm(b)
	return oka && okb && reflect.DeepEqual(va, vb)
}

// checkPage runs q (Limit > 0, no cursor) and compares the one page with the
// head of all, the alerts q matches.
func checkPage(t *testing.T, st sdk.Store, q sdk.AlertQuery, all []sdk.Alert) {
	t.Helper()
	p, err := st.QueryAlerts(t.Context(), q)
	if err != nil {
		t.Errorf("QueryAlerts(%s): %v", fmtAQ(q), err)
		return
	}
	want := all[:min(q.Limit, len(all))]
	compareAlerts(t, "QueryAlerts("+fmtAQ(q)+")", p.Alerts, want)
	if more := len(all) > q.Limit; more != (p.NextCursor != "") {
		t.Errorf("QueryAlerts(%s): NextCursor %q with %d of %d matching alerts on the page", fmtAQ(q), p.NextCursor, len(p.Alerts), len(all))
	}
}

// pageAll follows NextCursor from q's first page to the last, calling
// between after every page but the last.
func pageAll(t *testing.T, st sdk.Store, q sdk.AlertQuery, between func()) []sdk.Alert {
	t.Helper()
	var got []sdk.Alert
	for page := 0; ; page++ {
		if page > 1000 {
			t.Errorf("QueryAlerts(%s): still a NextCursor after %d pages", fmtAQ(q), page)
			return got
		}
		p, err := st.QueryAlerts(t.Context(), q)
		if err != nil {
			t.Errorf("QueryAlerts(%s) page %d: %v", fmtAQ(q), page, err)
			return got
		}
		if q.Limit > 0 && len(p.Alerts) > q.Limit {
			t.Errorf("QueryAlerts(%s) page %d: %d alerts", fmtAQ(q), page, len(p.Alerts))
		}
		if len(p.Alerts) == 0 && (page > 0 || p.NextCursor != "") {
			// NextCursor promised more alerts than there were.
			t.Errorf("QueryAlerts(%s) page %d: empty page (next cursor %q)", fmtAQ(q), page, p.NextCursor)
		}
		got = append(got, p.Alerts...)
		if p.NextCursor == "" {
			return got
		}
		q.Cursor = p.NextCursor
		if between != nil {
			between()
		}
	}
}

// checkAlertFixture makes sure the generated alerts exercise what the alert
// checks claim to check.
func checkAlertFixture(t *testing.T, fx *alertFixture) {
	t.Helper()
	fatalIf(t, len(fx.byID) != fixtureAlerts, "%d distinct IDs for %d alerts", len(fx.byID), fixtureAlerts)
	sev, lab, sensors := map[sdk.Severity]int{}, map[string]int{}, map[string]int{}
	var v4, v6, ties, nanTop, details, noDetails int
	for i, a := range fx.sorted {
		sev[a.Severity]++
		lab[a.Label]++
		sensors[a.Sensor]++
		if a.Src.Is4() {
			v4++
		} else {
			v6++
		}
		if i > 0 && a.Time.Equal(fx.sorted[i-1].Time) {
			ties++
		}
		for _, f := range a.TopFeatures {
			if math.IsNaN(f.Value) {
				nanTop++
			}
		}
		if len(a.Details) > 0 {
			details++
		} else {
			noDetails++
		}
	}
	fatalIf(t, len(sev) != len(severities) || len(lab) != len(labels) || len(sensors) != 2,
		"severities %v, labels %v, sensors %v: want every one", sev, lab, sensors)
	fatalIf(t, v4 == 0 || v6 == 0 || ties == 0 || nanTop == 0 || details == 0 || noDetails == 0,
		"IPv4 %d, IPv6 %d, tied times %d, NaN top features %d, with details %d, without %d: want some of each",
		v4, v6, ties, nanTop, details, noDetails)
}

// scribbleAlerts overwrites appended alerts' slices, which the store must
// have copied.
func scribbleAlerts(batches [][]sdk.Alert) {
	for _, b := range batches {
		for i := range b {
			for j := range b[i].TopFeatures {
				b[i].TopFeatures[j] = sdk.FeatureValue{Name: "scribbled", Value: -7}
			}
			for j := range b[i].Details {
				b[i].Details[j] = ' '
			}
		}
	}
}

func loadAlerts(t *testing.T, h Harness) (sdk.Store, Appender, *alertFixture) {
	t.Helper()
	st, ap := open(t, h)
	fx := buildAlerts()
	checkAlertFixture(t, fx)
	appendAlerts(t, ap, fx.batches...)
	flush(t, ap)
	scribbleAlerts(fx.batches)
	return st, ap, fx
}

func testAlerts(t *testing.T, h Harness) {
	st, _, fx := loadAlerts(t, h)
	all := fx.sorted
	// ends are the distinct window ends, oldest first, for range bounds that
	// fall exactly on an alert's End.
	var ends []time.Time
	for _, a := range all {
		ends = append(ends, a.End)
	}
	slices.SortFunc(ends, time.Time.Compare)
	ends = slices.CompactFunc(ends, time.Time.Equal)

	t.Run("All", func(t *testing.T) {
		checkPage(t, st, sdk.AlertQuery{Limit: 1000}, all)
	})
	t.Run("Severity", func(t *testing.T) {
		for _, s := range severities {
			q := sdk.AlertQuery{Severity: s, Limit: 1000}
			checkPage(t, st, q, wantAlerts(all, q))
		}
	})
	t.Run("Label", func(t *testing.T) {
		for _, l := range append(slices.Clone(labels), "no-such-label") {
			q := sdk.AlertQuery{Label: l, Limit: 1000}
			checkPage(t, st, q, wantAlerts(all, q))
		}
	})
	t.Run("Src", func(t *testing.T) {
		for _, src := range addrs("10.0.0.1", "2001:db8::2", "172.16.0.9", "10.9.9.9") {
			q := sdk.AlertQuery{Src: src, Limit: 1000}
			checkPage(t, st, q, wantAlerts(all, q))
		}
	})
	t.Run("Range", func(t *testing.T) {
		mid := sdk.TimeRange{From: ends[len(ends)/4], To: ends[3*len(ends)/4]}
		// On End, not on Time: the fixture must tell the two apart here.
		byTime := 0
		for _, a := range all {
			if mid.Contains(a.Time) != mid.Contains(a.End) {
				byTime++
			}
		}
		fatalIf(t, byTime == 0, "range %s selects the same alerts by Time and by End", fmtRange(mid))
		for _, r := range []sdk.TimeRange{
			mid,
			{From: ends[len(ends)/2]},
			{To: ends[len(ends)/3]},
			{From: ends[5], To: ends[5]},
			{From: fixtureBase.Add(-time.Hour), To: fixtureBase},
		} {
			q := sdk.AlertQuery{Range: r, Limit: 1000}
			checkPage(t, st, q, wantAlerts(all, q))
		}
	})
	t.Run("Combined", func(t *testing.T) {
		for _, q := range []sdk.AlertQuery{
			{Severity: sdk.SeverityHigh, Label: labels[0], Limit: 1000},
			{Severity: sdk.SeverityCritical, Range: sdk.TimeRange{From: ends[len(ends)/3]}, Limit: 1000},
			{Src: sourcesA[0], Label: labels[1], Range: sdk.TimeRange{To: ends[2*len(ends)/3]}, Limit: 1000},
		} {
			checkPage(t, st, q, wantAlerts(all, q))
		}
	})
	t.Run("Limit", func(t *testing.T) {
		checkPage(t, st, sdk.AlertQuery{Limit: 5}, all)
		checkPage(t, st, sdk.AlertQuery{Limit: 1}, all)
		q := sdk.AlertQuery{Severity: sdk.SeverityCritical, Limit: 3}
		checkPage(t, st, q, wantAlerts(all, q))
		// A page holding exactly the last matching alerts has no NextCursor.
		q = sdk.AlertQuery{Label: labels[2]}
		exact := wantAlerts(all, q)
		q.Limit = len(exact)
		checkPage(t, st, q, exact)
	})
	t.Run("Pages", func(t *testing.T) {
		split := false
		for i := 2; i < len(all); i += 2 {
			split = split || all[i-1].Time.Equal(all[i].Time)
		}
		fatalIf(t, !split, "no page of 2 ends between alerts of equal Time")
		for _, q := range []sdk.AlertQuery{
			{Limit: 7},
			{Limit: 2},
			{Limit: 0},
			{Label: labels[0], Limit: 2},
			{Severity: sdk.SeverityLow, Range: sdk.TimeRange{From: ends[len(ends)/4]}, Limit: 3},
		} {
			compareAlerts(t, "pages of "+fmtAQ(q), pageAll(t, st, q, nil), wantAlerts(all, q))
		}
	})
	t.Run("BadCursor", func(t *testing.T) {
		checkBadCursors(t, st)
	})
}

// testAlertPagesWithAppends appends newer alerts between pages: keyset
// cursors must neither repeat nor skip anything.
func testAlertPagesWithAppends(t *testing.T, h Harness) {
	st, ap, fx := loadAlerts(t, h)
	stored := slices.Clone(fx.sorted)
	newest := fx.sorted[0].Time
	n := 0
	arrive := func(label string) func() {
		return func() {
			var batch []sdk.Alert
			for range 2 {
				n++
				a := cloneAlert(fx.sorted[n%len(fx.sorted)])
				a.ID = fmt.Sprintf("new-%04d", n)
				a.Time = newest.Add(time.Duration(n) * time.Second)
				if label != "" {
					a.Label = label
				}
				batch = append(batch, a)
			}
			appendAlerts(t, ap, batch)
			flush(t, ap)
			stored = append(stored, batch...)
		}
	}
	for _, q := range []sdk.AlertQuery{
		{Limit: 7},
		{Label: labels[1], Limit: 2},
		{Severity: sdk.SeverityMedium, Limit: 1},
	} {
		slices.SortFunc(stored, cmpAlertsNewestFirst)
		want := wantAlerts(stored, q)
		got := pageAll(t, st, q, arrive(q.Label))
		compareAlerts(t, "pages of "+fmtAQ(q)+" with appends", got, want)
	}
	// The appends must have landed, or the above proved nothing.
	slices.SortFunc(stored, cmpAlertsNewestFirst)
	fatalIf(t, n == 0, "no alerts appended between pages")
	checkPage(t, st, sdk.AlertQuery{Limit: 1000}, stored)
}

// testAlertsIdempotent re-sends alerts, as and regrouped: each is stored once.
func testAlertsIdempotent(t *testing.T, h Harness) {
	st, ap := open(t, h)
	fx := buildAlerts()
	appendAlerts(t, ap, fx.batches...)
	flush(t, ap)
	again := make([]sdk.Alert, len(fx.sorted))
	for i, a := range fx.sorted {
		again[i] = cloneAlert(a)
	}
	appendAlerts(t, ap, fx.batches[0], again)
	flush(t, ap)
	compareAlerts(t, "pages after re-sending", pageAll(t, st, sdk.AlertQuery{Limit: 25}, nil), fx.sorted)
	// Filtered queries see each alert once too.
	src := netip.MustParseAddr("10.0.0.1")
	q := sdk.AlertQuery{Src: src, Limit: 1000}
	checkPage(t, st, q, wantAlerts(fx.sorted, q))
}
