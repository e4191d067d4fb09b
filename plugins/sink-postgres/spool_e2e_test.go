package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/internal/pgtest"
)

// databaseOutage is how long PostgreSQL is down in the middle of a replay.
const databaseOutage = 30 * time.Second

// The sensor (`netguardian run`, with its disk spool) keeps every window
// and alert while PostgreSQL is down for 30 s in the middle of a replay:
// the replay ends during the outage, and once the database is back the
// spool drains and the database holds exactly the reference run's rows,
// none twice.
func TestRunSurvivesDatabaseOutage(t *testing.T) {
	t.Parallel()
	buildFault(t)
	ref := reference(t)
	srv := pgtest.StartCluster(t)
	if srv.External() {
		t.Skip("needs a cluster of its own to stop and start")
	}
	spoolDir := filepath.Join(t.TempDir(), "spool")
	s := startSensor(t, faultConfig(t, faultCapture, spoolDir), srv.URL())
	at := s.waitHealth(t, "the first fifth of the capture", func(h sensorHealth) bool { return h.Packets >= ref.packets/5 })
	srv.Stop()
	stopped := time.Now()
	// While it is down, watch the spool grow.
	maxSpooled := 0
	var last sensorHealth
	for time.Since(stopped) < databaseOutage {
		if h, err := s.health(); err == nil {
			maxSpooled = max(maxSpooled, h.Queues.Sinks[faultSink])
			last = h
		}
		if !s.running() {
			t.Fatalf("the sensor ended while the database was down: %v\n%s", s.err, s.log)
		}
		time.Sleep(250 * time.Millisecond)
	}
	srv.Start()
	restarted := time.Now()
	d := s.wait(t, 2*time.Minute)
	log := s.log.String()
	packets, windows, alerts := finalStats(t, log)
	got := readRows(t, srv.URL())
	t.Logf("database down from packet %d for %s (at its end the sensor had %d of %d packets, %d alerts); spool peak %d batches; drained %s after the restart; run took %s",
		at.Packets, databaseOutage, last.Packets, ref.packets, last.Alerts, maxSpooled, (d - restarted.Sub(s.started)).Round(time.Millisecond), d.Round(time.Millisecond))
	t.Logf("windows closed %d, alerts raised %d; rows expected %d windows + %d alerts, found %d + %d",
		windows, alerts, len(ref.rows.features), len(ref.rows.alerts), got.nFeatures, got.nAlerts)
	if !strings.Contains(log, "could not store batch") && !strings.Contains(log, "sink delivery interrupted") {
		t.Fatalf("the outage was never noticed; the test proves nothing:\n%s", log)
	}
	if maxSpooled == 0 {
		t.Errorf("/api/health never showed a batch waiting in the spool during the outage")
	}
	if packets != ref.packets {
		t.Errorf("the sensor counted %d packets, the reference %d", packets, ref.packets)
	}
	matchReference(t, ref.rows, got)
	spoolDrained(t, filepath.Join(spoolDir, faultSink))
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
