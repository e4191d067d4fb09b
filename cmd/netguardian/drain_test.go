package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/spool"
)

// drainSteps are the lines a stopping sensor logs, in the order it must
// log them.
var drainSteps = []string{
	`msg="drain 1/4: captures stopped"`,
	`msg="drain 2/4: windows flushed"`,
	`msg="drain 3/4: detectors finished"`,
	`msg="drain 4/4: sinks flushed"`,
	`msg="sensor stopped"`,
}

// drainLines checks that log holds each drain step once, in order, and
// returns their lines.
func drainLines(t *testing.T, log string) []string {
	t.Helper()
	var out []string
	at := -1
	for _, step := range drainSteps {
		if n := strings.Count(log, step); n != 1 {
			t.Fatalf("%s logged %d times, want once:\n%s", step, n, log)
		}
		i := strings.Index(log, step)
		if i < at {
			t.Fatalf("%s logged before the step that precedes it:\n%s", step, log)
		}
		at = i
		start := strings.LastIndexByte(log[:i], '\n') + 1
		end := strings.IndexByte(log[i:], '\n')
		if end < 0 {
			end = len(log) - i
		}
		out = append(out, log[start:i+end])
	}
	return out
}

var leftInSpoolRe = regexp.MustCompile(`left_in_spool=(\d+)`)

// SIGTERM drains in order — captures stop, windows flush, detectors
// finish, sinks flush — and -drain-timeout bounds the last step: what a
// sink that never answers did not acknowledge stays in its spool, where
// the next start finds it.
func TestStopDrainsInOrderAndKeepsUndeliveredInSpool(t *testing.T) {
	dir := t.TempDir()
	spoolDir, stored := filepath.Join(dir, "spool"), filepath.Join(dir, "stored.jsonl")
	path := filepath.Join(dir, "netguardian.hcl")
	src := fmt.Sprintf(`sensor {
  name       = "drain"
  plugin_dir = %q
  spool_dir  = %q
}
api {
  listen = "127.0.0.1:0"
}
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = 20
    loop  = true
  }
}
detector "portscan" {
  plugin = "detector-portscan"
}
# A database that is down for good: every batch is refused.
sink "down" {
  plugin = "testplugin"
  env = {
    NG_TEST_KIND = "sink"
  }
  config {
    mode       = "ok"
    out        = %q
    fail_first = 1000000000
  }
}
`, pluginDir, spoolDir, abs(t, "examples/pcaps/sample.pcap"), stored)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startLiveSensor(t, path, nil, "-drain-timeout", "2s")
	deadline := time.Now().Add(time.Minute)
	for {
		var h healthPayload
		s.getJSON("/api/health", &h)
		if h.Queues.Sinks["down"] >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink's spool never held 3 batches: %+v\n%s", h.Queues, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	signalled := len(s.log.String())
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, s.log.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("no exit within a minute of SIGTERM with -drain-timeout 2s:\n%s", s.log.String())
	}
	lines := drainLines(t, s.log.String()[signalled:])
	for _, l := range lines {
		t.Log(l)
	}
	sinks := lines[3]
	if !strings.Contains(sinks, "timed_out=true") || !strings.Contains(sinks, "acked_batches=0") {
		t.Errorf("the sink step should time out with nothing acknowledged: %s", sinks)
	}
	m := leftInSpoolRe.FindStringSubmatch(sinks)
	if m == nil {
		t.Fatalf("no left_in_spool in %s", sinks)
	}
	left, _ := strconv.Atoi(m[1])

	// What the sink did not acknowledge is in its spool, for the next start.
	sp, rec, err := spool.Open(spool.Options{Dir: filepath.Join(spoolDir, "down")})
	if err != nil {
		t.Fatal(err)
	}
	pending, bytes := sp.Pending()
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("spool after exit: %d batches, %d bytes pending (log said %d); recovery: %s", pending, bytes, left, rec)
	if left == 0 || pending != left || !rec.Clean() {
		t.Errorf("spool holds %d batches (recovery %s), the drain reported %d left; want the same, more than 0", pending, rec, left)
	}
	if b, err := os.ReadFile(stored); err == nil && len(b) > 0 {
		t.Errorf("a sink that refuses everything stored something:\n%s", b)
	}
}
