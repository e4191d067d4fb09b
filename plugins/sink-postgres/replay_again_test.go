package main

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/netguardian/netguardian/internal/pgtest"
)

// alertIdentities returns every stored alert's id with its time, and the
// alerts whose time is not their window's aligned end (start + size).
func alertIdentities(t *testing.T, url string) (ids map[string]time.Time, misdated []string) {
	t.Helper()
	rows, err := db(t, url).Query(context.Background(), `SELECT id, time, time = window_start + window_size * interval '1 second' FROM detected_alerts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids = map[string]time.Time{}
	for rows.Next() {
		var id string
		var at time.Time
		var aligned bool
		if err := rows.Scan(&id, &at, &aligned); err != nil {
			t.Fatal(err)
		}
		ids[id] = at
		if !aligned {
			misdated = append(misdated, id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, misdated
}

// The same replay goes into one database again and again: once to the
// end, once killed with SIGKILL halfway (its spool holding what the sink
// had not acknowledged), and once more on that spool to the end. Windows
// and alerts are the same each time, IDs and times included, so the
// database ends with exactly the reference run's rows, each once.
func TestSameReplayAgainStoresEachRowOnce(t *testing.T) {
	t.Parallel()
	buildFault(t)
	ref := reference(t)
	srv := pgtest.Start(t)

	first := startSensor(t, faultConfig(t, faultCapture, filepath.Join(t.TempDir(), "spool")), srv.URL())
	first.wait(t, 2*time.Minute)
	once := readRows(t, srv.URL())
	onceIDs, _ := alertIdentities(t, srv.URL())

	spoolDir := filepath.Join(t.TempDir(), "spool")
	killed := startSensor(t, faultConfig(t, faultCapture, spoolDir), srv.URL())
	at := killed.waitHealth(t, "half of the capture", func(h sensorHealth) bool { return h.Packets >= ref.packets/2 && h.Alerts > 0 })
	killed.killAll()
	again := startSensor(t, faultConfig(t, faultCapture, spoolDir), srv.URL())
	d := again.wait(t, 2*time.Minute)
	got := readRows(t, srv.URL())
	ids, misdated := alertIdentities(t, srv.URL())

	t.Logf("reference: %d windows + %d alerts; after one replay %d + %d; after a second killed at packet %d (%d alerts raised by then) and a third on its spool (%s): %d + %d, %d distinct alert ids",
		len(ref.rows.features), len(ref.rows.alerts), once.nFeatures, once.nAlerts, at.Packets, at.Alerts, d.Round(time.Millisecond),
		got.nFeatures, got.nAlerts, len(ids))
	matchReference(t, ref.rows, once)
	matchReference(t, ref.rows, got)
	if got.nFeatures != len(ref.rows.features) || got.nAlerts != len(ref.rows.alerts) {
		t.Errorf("stored %d windows and %d alerts; the reference run %d and %d", got.nFeatures, got.nAlerts, len(ref.rows.features), len(ref.rows.alerts))
	}
	// The reference ran in a database of its own: the same ids there.
	refIDs := slices.Sorted(maps.Keys(ref.rows.alertIDs))
	gotIDs := make([]string, 0, len(ids))
	for id, at := range ids {
		gotIDs = append(gotIDs, id)
		if first, ok := onceIDs[id]; ok && !first.Equal(at) {
			t.Errorf("alert %s: time %v, the first replay stored %v", id, at, first)
		}
	}
	slices.Sort(gotIDs)
	if !slices.Equal(gotIDs, refIDs) {
		t.Errorf("alert ids differ from the reference run's: %d here, %d there", len(gotIDs), len(refIDs))
	}
	if len(misdated) > 0 {
		t.Errorf("%d alerts' time is not their window's aligned end, e.g. %s", len(misdated), misdated[0])
	}
	spoolDrained(t, filepath.Join(spoolDir, faultSink))
}
