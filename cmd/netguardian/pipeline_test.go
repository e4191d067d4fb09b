package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// samplePackets is what `capinfos -c examples/pcaps/sample.pcap` reports.
const samplePackets = 17882

// A capture plugin killed with SIGKILL in the middle of a replay is
// restarted, resumes after the last packet the core received, and the run
// ends with every packet counted once: a file replay loses nothing.
func TestCaptureCrashLosesNothing(t *testing.T) {
	cfg := parseConfig(t, fmt.Sprintf(`
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = 8
  }
}`, abs(t, "examples/pcaps/sample.pcap")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := newSensor(ctx, cfg, quietLogger(), sensorHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.plugins.stop()
	done := make(chan error, 1)
	go func() { done <- s.pipeline.Run(ctx, time.Minute) }()

	capture := s.plugins.captures[0]
	for s.pipeline.Stats().Packets < 2000 {
		time.Sleep(20 * time.Millisecond)
	}
	pid := capture.Health().PID
	before := s.pipeline.Stats().Packets
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := s.pipeline.Stats()
	t.Logf("killed capture-pcap (pid %d) after %d packets; restarts=%d packets=%d lost=%d", pid, before, capture.Restarts(), st.Packets, st.CaptureLost)
	if before >= samplePackets {
		t.Fatal("the replay finished before the kill; the test proves nothing")
	}
	if capture.Restarts() != 1 {
		t.Fatalf("restarts = %d, want 1", capture.Restarts())
	}
	if st.Packets != samplePackets || st.CaptureLost != 0 {
		t.Fatalf("packets = %d (lost %d), want all %d exactly once", st.Packets, st.CaptureLost, samplePackets)
	}
	if st.Windows["5s"] == 0 || st.Windows["30s"] == 0 || st.Windows["180s"] == 0 {
		t.Fatalf("windows = %v", st.Windows)
	}
}

// The same file replayed in real time and as fast as possible gives the
// same window records: windows follow packet time, never the wall clock.
func TestReplaySpeedDoesNotChangeWindows(t *testing.T) {
	short := filepath.Join(t.TempDir(), "short.pcap")
	// The first 2,500 packets of the sample: about 3 s of packet time.
	if out, err := exec.Command("editcap", "-r", abs(t, "examples/pcaps/sample.pcap"), short, "1-2500").CombinedOutput(); err != nil {
		t.Skipf("editcap (Debian package tshark) is needed to cut the capture: %v %s", err, out)
	}
	csvFor := func(speed string) []byte {
		cfg := parseConfig(t, fmt.Sprintf(`
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = %s
  }
}`, short, speed))
		out := filepath.Join(t.TempDir(), "features.csv")
		start := time.Now()
		if err := analyze(context.Background(), cfg, quietLogger(), analyzeOptions{csvPath: out}, new(bytes.Buffer)); err != nil {
			t.Fatal(err)
		}
		t.Logf("speed %s took %s", speed, time.Since(start).Round(time.Millisecond))
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	realTime, fast := csvFor("1.0"), csvFor("0")
	if len(fast) < 200 || bytes.Count(fast, []byte("\n")) < 4 {
		t.Fatalf("too few windows to compare:\n%s", fast)
	}
	if !bytes.Equal(realTime, fast) {
		t.Fatalf("window records differ between speed 1.0 and as fast as possible:\n--- real time\n%s\n--- fast\n%s", realTime, fast)
	}
}
