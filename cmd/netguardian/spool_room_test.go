package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/sdk"
)

// spoolHealth is a sink's spool in /api/health, with the counters of
// feature and alert batches that waited for room.
type spoolHealth struct {
	Bytes       int64  `json:"bytes"`
	MaxBytes    int64  `json:"max_bytes"`
	FullWaits   uint64 `json:"full_waits"`
	WriteErrors uint64 `json:"write_errors"`
}

type roomHealth struct {
	Packets uint64 `json:"packets"`
	Drops   struct {
		Sinks map[string]uint64 `json:"sinks"`
	} `json:"drops"`
	Spools map[string]spoolHealth `json:"spools"`
}

// batchCounts are the rows of one batch, by kind.
type batchCounts struct{ features, alerts, packets int }

// spoolContents returns what a spool holds unacknowledged, by sequence
// number (the Seq a sink gets).
func spoolContents(t *testing.T, dir string) map[uint64]batchCounts {
	t.Helper()
	sp, rec, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if !rec.Clean() {
		t.Errorf("spool %s: %s", dir, rec)
	}
	r := sp.Reader(0)
	defer r.Close()
	out := map[uint64]batchCounts{}
	for {
		raw, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := sdk.UnmarshalRecords(raw.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var c batchCounts
		switch {
		case b.Features != nil:
			c.features = len(b.Features.Rows)
		case b.Packets != nil:
			c.packets = b.Packets.Len()
		default:
			c.alerts = len(b.Alerts)
		}
		out[raw.Seq] = c
	}
}

// storedBatches returns what the test sink stored, by sequence number.
func storedBatches(t *testing.T, path string) map[uint64]batchCounts {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]batchCounts{}
	for _, raw := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var l sinkLine
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("%s: %q: %v", path, raw, err)
		}
		var c batchCounts
		switch {
		case l.Features != nil:
			c.features = *l.Features
		case l.Alerts != nil:
			c.alerts = *l.Alerts
		case l.Packets != nil:
			c.packets = *l.Packets
		}
		out[l.Seq] = c
	}
	return out
}

func sumBatches(m map[uint64]batchCounts) (c batchCounts) {
	for _, b := range m {
		c.features += b.features
		c.alerts += b.alerts
		c.packets += b.packets
	}
	return c
}

// Raw packets for a slow sink fill its spool only to the high-water mark
// (75 %): past it they are dropped and counted, and the rest of the
// spool is room for features and alerts, which therefore never wait
// behind raw packets. At the stop every window and alert the sensor
// counted is in the sink or in its spool.
func TestRawPacketsLeaveRoomInTheSpoolForFeaturesAndAlerts(t *testing.T) {
	const spoolBytes = 1 << 20
	dir := t.TempDir()
	spoolDir, out := filepath.Join(dir, "spool"), filepath.Join(dir, "out.jsonl")
	s := startSensor(t, sensorConfig(t, spoolDir, "  spool_max_mib = 1\n",
		"pipeline {\n  batch_size = 128\n}\n"+replayBlock(t, 4)+detectorBlock+sinkBlock(t, out, "    write_delay = \"60ms\"\n")),
		"-drain-timeout", "2s")
	var h roomHealth
	var maxSpool int64
	samples := 0
	for deadline := time.Now().Add(time.Minute); h.Packets < samplePackets; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replay did not end within a minute:\n%s", s.log.String())
		}
		if err := json.Unmarshal(s.get("/api/health"), &h); err != nil {
			t.Fatalf("/api/health: %v", err)
		}
		maxSpool = max(maxSpool, h.Spools["out"].Bytes)
		samples++
	}
	waitsMetric := s.metric("netguardian_sink_spool_full_waits_total", `sink="out"`)
	s.stop()
	windows, alerts := stoppedCounts(t, s.log.String())
	// A batch the sink stored but had not acknowledged when the drain
	// timed out is also still in the spool: count each sequence number once.
	stored, spooled := storedBatches(t, out), spoolContents(t, filepath.Join(spoolDir, "out"))
	all := maps.Clone(stored)
	maps.Copy(all, spooled)
	st, sp, total := sumBatches(stored), sumBatches(spooled), sumBatches(all)
	sh, dropped := h.Spools["out"], h.Drops.Sinks["out"]
	t.Logf("%d samples: spool max %d bytes of %d (high-water mark %d); raw packets dropped %d; feature/alert batches that waited for room: %d (metric %.0f); spool write errors %d",
		samples, maxSpool, sh.MaxBytes, spoolBytes*3/4, dropped, sh.FullWaits, waitsMetric, sh.WriteErrors)
	t.Logf("the sensor counted %d windows and %d alerts; the sink stored %+v, the spool keeps %+v: together %+v",
		windows, alerts, st, sp, total)
	if dropped == 0 {
		t.Fatalf("no raw packet was dropped: the sink kept up, the test proves nothing")
	}
	if sh.FullWaits != 0 || waitsMetric != 0 {
		t.Errorf("%d feature/alert batches (metric %.0f) waited for room in a spool raw packets filled", sh.FullWaits, waitsMetric)
	}
	// This replay's windows and alerts take a few KiB: the spool peaks at
	// the high-water mark, not at its bound.
	if highWater := int64(spoolBytes * 3 / 4); maxSpool > highWater+64<<10 || maxSpool < spoolBytes/2 {
		t.Errorf("the spool peaked at %d bytes; want it near the high-water mark %d, not the bound %d", maxSpool, highWater, spoolBytes)
	}
	if total.features != windows || total.alerts != alerts || windows == 0 || alerts == 0 {
		t.Errorf("stored or spooled %d feature rows of %d windows and %d of %d alerts", total.features, windows, total.alerts, alerts)
	}
	if got := total.packets + int(dropped); got != samplePackets {
		t.Errorf("raw packets: %d stored or spooled + %d dropped = %d, of %d replayed", total.packets, dropped, got, samplePackets)
	}
}
