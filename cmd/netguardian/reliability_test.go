package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/netguardian/netguardian/internal/syncbuf"
)

// These tests run `netguardian run` with its disk spool against the
// testplugin as a sink that records every batch it stores (seq, kind,
// count) in a JSON-lines file, so a test can count what arrived.

// sinkPlugin returns the testplugin under a name ending in -sink, which
// makes it a sink (the core starts plugins with a clean environment, so
// NG_TEST_KIND cannot say so).
var sinkPlugin = sync.OnceValues(func() (string, error) {
	path := filepath.Join(binDir, "sink", "testplugin-sink")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.Symlink(filepath.Join(pluginDir, "testplugin"), path)
})

// sensorConfig writes a config with a spool in spoolDir, the API on a free
// loopback port, and the given plugin blocks.
func sensorConfig(t *testing.T, spoolDir, sensorExtra, blocks string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "netguardian.hcl")
	src := fmt.Sprintf(`sensor {
  name       = "reliability"
  plugin_dir = %q
  spool_dir  = %q
%s}
api {
  listen = "127.0.0.1:0"
}
%s`, pluginDir, spoolDir, sensorExtra, blocks)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sinkBlock is a testplugin sink named "out" that appends what it stores to out.
func sinkBlock(t *testing.T, out string, extra string) string {
	t.Helper()
	path, err := sinkPlugin()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`sink "out" {
  plugin = %q
  config {
    mode        = "ok"
    out         = %q
    raw_packets = true
%s  }
}
`, path, out, extra)
}

func replayBlock(t *testing.T, speed float64) string {
	return fmt.Sprintf(`capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = %g
  }
}
`, abs(t, "examples/pcaps/sample.pcap"), speed)
}

// detectorBlock raises an alert for every 5 s window of 100 packets or more.
const detectorBlock = `detector "busy" {
  plugin = "testplugin"
  config {
    mode = "ok"
  }
}
`

// runningSensor is a `netguardian run` process.
type runningSensor struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	api  string // http://127.0.0.1:PORT/
	done chan error
}

var apiAddrRe = regexp.MustCompile(`msg="sensor started".* api=(\S+)`)

// startSensor runs the sensor and waits for its "sensor started" line,
// which names the API's address.
func startSensor(t *testing.T, config string, args ...string) *runningSensor {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "netguardian"), append([]string{"run", "-config", config}, args...)...)
	s := &runningSensor{t: t, cmd: cmd, log: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-s.done:
			s.done <- err
		default:
			_ = cmd.Process.Kill()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := apiAddrRe.FindStringSubmatch(s.log.String()); m != nil {
			s.api = m[1]
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("sensor exited before it started: %v\n%s", err, s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no \"sensor started\" line within 30s:\n%s", s.log.String())
		}
	}
}

// wait waits for the process to end and returns its exit error.
func (s *runningSensor) wait(limit time.Duration) error {
	s.t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(limit):
		_ = s.cmd.Process.Kill()
		s.t.Fatalf("sensor still running %s later:\n%s", limit, s.log.String())
		return nil
	}
}

// stop sends SIGTERM and requires a clean exit.
func (s *runningSensor) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	if err := s.wait(time.Minute); err != nil {
		s.t.Fatalf("sensor exit after SIGTERM: %v\n%s", err, s.log.String())
	}
}

func (s *runningSensor) get(path string) []byte {
	s.t.Helper()
	resp, err := http.Get(strings.TrimSuffix(s.api, "/") + path)
	if err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil || resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %s %v\n%s", path, resp.Status, err, b.String())
	}
	return b.Bytes()
}

// health is the part of /api/health these tests read.
type health struct {
	Status  string   `json:"status"`
	Reasons []string `json:"reasons"`
	Packets uint64   `json:"packets"`
	Drops   struct {
		Sink  uint64            `json:"sink"`
		Sinks map[string]uint64 `json:"sinks"`
	} `json:"drops"`
	Spools map[string]struct {
		PendingBatches int    `json:"pending_batches"`
		Bytes          int64  `json:"bytes"`
		MaxBytes       int64  `json:"max_bytes"`
		LostBatches    uint64 `json:"lost_batches"`
		LostBytes      int64  `json:"lost_bytes"`
	} `json:"spools"`
}

func (s *runningSensor) health() health {
	s.t.Helper()
	var h health
	if err := json.Unmarshal(s.get("/api/health"), &h); err != nil {
		s.t.Fatalf("/api/health: %v", err)
	}
	return h
}

// metric returns the value of the /metrics sample with that name and
// labels (`stage="sink",name="out"`, in any order), or -1 when absent.
func (s *runningSensor) metric(name string, labels ...string) float64 {
	s.t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(s.get("/metrics")))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			s.t.Fatalf("/metrics line %q: %v", line, err)
		}
		return v
	}
	return -1
}

// waitFor polls cond every 100 ms for up to limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

var (
	stoppedWindowsRe = regexp.MustCompile(`msg="sensor stopped".*windows="map\[180s:(\d+) 30s:(\d+) 5s:(\d+)\]" alerts=(\d+)`)
)

// stoppedCounts returns the feature rows (windows of every size) and
// alerts of the "sensor stopped" line.
func stoppedCounts(t *testing.T, log string) (windows, alerts int) {
	t.Helper()
	m := stoppedWindowsRe.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no \"sensor stopped\" line with windows and alerts:\n%s", log)
	}
	for _, v := range m[1:4] {
		n, _ := strconv.Atoi(v)
		windows += n
	}
	alerts, _ = strconv.Atoi(m[4])
	return windows, alerts
}

// sinkLine is one batch the test sink stored.
type sinkLine struct {
	Seq      uint64 `json:"seq"`
	At       int64  `json:"at"`
	Features *int   `json:"features"`
	Alerts   *int   `json:"alerts"`
	Packets  *int   `json:"packets"`
}

// sinkTotals is what the test sink stored, each sequence number counted once.
type sinkTotals struct {
	batches, duplicates       int
	features, alerts, packets int
	packetBatches             []sinkLine // in arrival order
	seqs                      []uint64   // distinct, sorted
}

func readSink(t *testing.T, path string) sinkTotals {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tot sinkTotals
	seen := map[uint64]bool{}
	for _, raw := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var l sinkLine
		if err := json.Unmarshal(raw, &l); err != nil {
			t.Fatalf("%s: %q: %v", path, raw, err)
		}
		if seen[l.Seq] {
			tot.duplicates++ // re-sent after an acknowledgement the core did not get
			continue
		}
		seen[l.Seq] = true
		tot.batches++
		tot.seqs = append(tot.seqs, l.Seq)
		switch {
		case l.Features != nil:
			tot.features += *l.Features
		case l.Alerts != nil:
			tot.alerts += *l.Alerts
		case l.Packets != nil:
			tot.packets += *l.Packets
			tot.packetBatches = append(tot.packetBatches, l)
		}
	}
	slices.Sort(tot.seqs)
	return tot
}

// dirSize is the total size of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// rssBytes reads a process's resident set size from /proc.
func rssBytes(pid int) (int64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// A sink ten times slower than the input: the spool fills to its bound
// and no further, raw packets are then dropped and counted (in /metrics
// and /api/health), memory stays bounded, and no feature or alert is
// lost: what the slow sink had not stored when the sensor stopped stays
// in the spool, and the next start delivers it.
func TestSlowSinkSpoolsAndDropsOnlyRawPackets(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("needs /proc to sample memory")
	}
	const (
		speed      = 4.0
		batchSize  = 128
		spoolMiB   = 1
		spoolBytes = spoolMiB << 20
		rssCeiling = 300 << 20
	)
	sensorExtra := fmt.Sprintf("  spool_max_mib = %d\n", spoolMiB)
	pipelineBlock := fmt.Sprintf("pipeline {\n  batch_size = %d\n}\n", batchSize)
	dir := t.TempDir()

	// Calibration: the same replay with a sink that keeps up gives the
	// rate raw-packet batches arrive at.
	calOut := filepath.Join(dir, "calibration.jsonl")
	cal := startSensor(t, sensorConfig(t, filepath.Join(dir, "calibration-spool"), sensorExtra,
		pipelineBlock+replayBlock(t, speed)+sinkBlock(t, calOut, "")))
	if err := cal.wait(time.Minute); err != nil {
		t.Fatalf("calibration run: %v\n%s", err, cal.log.String())
	}
	calTotals := readSink(t, calOut)
	pb := calTotals.packetBatches
	if len(pb) < 20 {
		t.Fatalf("calibration: only %d raw-packet batches", len(pb))
	}
	replay := time.Duration(pb[len(pb)-1].At - pb[0].At)
	interval := replay / time.Duration(len(pb)-1)
	delay := 10 * interval
	t.Logf("input: %d raw-packet batches (%d packets) in %s at speed %g: one every %s (%.1f batches/s); slow sink: %s per batch (%.1f batches/s)",
		len(pb), calTotals.packets, replay.Round(time.Millisecond), speed, interval.Round(time.Microsecond), float64(time.Second)/float64(interval),
		delay.Round(time.Millisecond), float64(time.Second)/float64(delay))

	// The slow run, sampled every 250 ms until the replay has ended.
	spoolDir := filepath.Join(dir, "spool")
	out := filepath.Join(dir, "out.jsonl")
	slow := startSensor(t, sensorConfig(t, spoolDir, sensorExtra,
		pipelineBlock+replayBlock(t, speed)+detectorBlock+sinkBlock(t, out, fmt.Sprintf("    write_delay = %q\n", delay.String()))),
		"-drain-timeout", "5s")
	var maxRSS, maxSpool int64
	var rssSeries []string
	var metricDrops float64
	var h health
	for deadline := time.Now().Add(time.Minute); h.Packets < samplePackets; time.Sleep(250 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replay did not end within a minute:\n%s", slow.log.String())
		}
		rss, ok := rssBytes(slow.cmd.Process.Pid)
		if !ok {
			t.Fatalf("the sensor is gone:\n%s", slow.log.String())
		}
		maxRSS = max(maxRSS, rss)
		maxSpool = max(maxSpool, dirSize(filepath.Join(spoolDir, "out")))
		rssSeries = append(rssSeries, fmt.Sprintf("%.0f", float64(rss)/(1<<20)))
		metricDrops = slow.metric("netguardian_dropped_packets_total", `stage="sink"`, `name="out"`)
		h = slow.health()
	}
	spoolMetric := slow.metric("netguardian_sink_spool_bytes", `sink="out"`)
	spoolMax := slow.metric("netguardian_sink_spool_max_bytes", `sink="out"`)
	slow.stop()
	log1 := slow.log.String()
	windows, alerts := stoppedCounts(t, log1)
	first := readSink(t, out)
	t.Logf("slow run: RSS MiB every 250 ms [%s], max %.1f MiB; spool dir max %d bytes (bound %d; metric %.0f of %.0f at the end)",
		strings.Join(rssSeries, " "), float64(maxRSS)/(1<<20), maxSpool, spoolBytes, spoolMetric, spoolMax)
	t.Logf("slow run: raw packets dropped %.0f (metrics) / %d (health); windows %d, alerts %d; the slow sink stored %d batches (%d feature rows, %d alerts, %d packets)",
		metricDrops, h.Drops.Sinks["out"], windows, alerts, first.batches, first.features, first.alerts, first.packets)

	if metricDrops <= 0 || h.Drops.Sinks["out"] == 0 || h.Drops.Sink == 0 {
		t.Errorf("raw-packet drops: /metrics %v, /api/health sinks %v (sink total %d); want them counted in both", metricDrops, h.Drops.Sinks, h.Drops.Sink)
	}
	if float64(h.Drops.Sinks["out"]) < metricDrops {
		t.Errorf("/api/health drops %d, behind the earlier /metrics figure %.0f", h.Drops.Sinks["out"], metricDrops)
	}
	if maxSpool < spoolBytes/2 {
		t.Errorf("the spool grew to %d bytes only; a sink 10x slower should fill its %d", maxSpool, spoolBytes)
	}
	// Acknowledgement logs (12 bytes per batch) and the lock file come on
	// top of the segment files the bound applies to.
	if maxSpool > spoolBytes+64<<10 || spoolMax != spoolBytes || spoolMetric > spoolMax {
		t.Errorf("the spool passed its bound: dir max %d, metric %.0f, bound %.0f (configured %d)", maxSpool, spoolMetric, spoolMax, spoolBytes)
	}
	if maxRSS > rssCeiling {
		t.Errorf("the core's RSS reached %d MiB (ceiling %d MiB)", maxRSS>>20, rssCeiling>>20)
	}
	if alerts == 0 || windows == 0 {
		t.Fatalf("windows %d, alerts %d: the test proves nothing about them", windows, alerts)
	}

	// A second start, with a fast sink on the same spool, delivers the rest.
	fast := startSensor(t, sensorConfig(t, spoolDir, sensorExtra, sinkBlock(t, out, "")))
	waitFor(t, 30*time.Second, "the spool to drain", func() bool { return fast.health().Spools["out"].PendingBatches == 0 })
	fast.stop()
	all := readSink(t, out)
	t.Logf("after the second run: %d batches stored, %d of them from the spool the first run left (%d re-sent ones ignored): %d feature rows of %d windows, %d of %d alerts, %d packets",
		all.batches, all.batches-first.batches, all.duplicates, all.features, windows, all.alerts, alerts, all.packets)
	if all.batches == first.batches {
		t.Fatal("the first run's slow sink got everything: the test proves nothing about the spool")
	}
	if all.features != windows || all.alerts != alerts {
		t.Fatalf("the sink stored %d feature rows and %d alerts; the sensor made %d and %d", all.features, all.alerts, windows, alerts)
	}
	// Every raw packet of the replay is stored or counted as dropped.
	if dropped := int(h.Drops.Sinks["out"]); all.packets+dropped != samplePackets {
		t.Errorf("raw packets: %d stored + %d dropped, of %d replayed", all.packets, dropped, samplePackets)
	}
	if segs, _ := filepath.Glob(filepath.Join(spoolDir, "out", "*.seg")); len(segs) > 1 {
		t.Errorf("spool not drained: %v", segs)
	}
}

// spooledRecord is one record of a spool segment, read with the format
// documented in core/spool: a 32-byte header, then per record a 4-byte
// length, a CRC32C, an 8-byte sequence number and the payload.
type spooledRecord struct {
	offset int64
	seq    uint64
	size   int64 // frame: 16 + payload
}

func segmentRecords(t *testing.T, path string) []spooledRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []spooledRecord
	for off := int64(32); off+16 <= int64(len(b)); {
		n := int64(binary.LittleEndian.Uint32(b[off:]))
		if off+16+n > int64(len(b)) {
			t.Fatalf("%s: record at %d runs past the end", path, off)
		}
		out = append(out, spooledRecord{offset: off, seq: binary.LittleEndian.Uint64(b[off+8:]), size: 16 + n})
		off += 16 + n
	}
	return out
}

// copyDir copies a spool directory (flat: segments, ack logs, LOCK).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var recoveryLossRe = regexp.MustCompile(`msg="sink spool recovered with losses" sink=out recovery=".*LOST (\d+) records, (\d+) bytes cut \((.*)\)"`)

// A spool whose newest segment ends in a damaged record (cut short, or
// with bytes flipped) is recovered at start: the sensor runs, the log
// names the segment and what was lost, the sink gets every record before
// the damaged one, and /api/health and /metrics count the loss.
func TestCorruptSpoolTailIsRecoveredAndReported(t *testing.T) {
	dir := t.TempDir()
	// A sink that refuses every batch leaves them all in the spool.
	spool := filepath.Join(dir, "spool")
	down := startSensor(t, sensorConfig(t, spool, "",
		"pipeline {\n  batch_size = 512\n}\n"+replayBlock(t, 0)+detectorBlock+sinkBlock(t, filepath.Join(dir, "refused.jsonl"), "    fail_first = 1000000000\n")),
		"-drain-timeout", "2s")
	waitFor(t, time.Minute, "the replay to end", func() bool { return down.health().Packets == samplePackets })
	down.stop()
	windows, alerts := stoppedCounts(t, down.log.String())
	segs, _ := filepath.Glob(filepath.Join(spool, "out", "*.seg"))
	if len(segs) == 0 {
		t.Fatalf("no spool segments in %s", filepath.Join(spool, "out"))
	}
	slices.Sort(segs)
	newest := filepath.Base(segs[len(segs)-1])
	var recs []spooledRecord
	for _, seg := range segs {
		recs = append(recs, segmentRecords(t, seg)...)
	}
	newestRecs := segmentRecords(t, segs[len(segs)-1])
	if len(newestRecs) < 3 {
		t.Fatalf("%s holds %d records; too few to damage the last", newest, len(newestRecs))
	}
	last := newestRecs[len(newestRecs)-1]
	t.Logf("the refusing sink left %d records (seq %d..%d) in %d segment(s), for %d windows and %d alerts; %s ends with seq %d at offset %d (%d bytes)",
		len(recs), recs[0].seq, last.seq, len(segs), windows, alerts, newest, last.seq, last.offset, last.size)

	cases := []struct {
		name string
		// damage breaks the segment file at path, whose last record is last,
		// and returns how many bytes recovery must cut.
		damage func(path string) int64
	}{
		{"truncated mid-record", func(path string) int64 {
			keep := last.offset + last.size/2
			if err := os.Truncate(path, keep); err != nil {
				t.Fatal(err)
			}
			return keep - last.offset
		}},
		{"bytes flipped in the last record", func(path string) int64 {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := make([]byte, 4)
			at := last.offset + 16 + (last.size-16)/2
			if _, err := f.ReadAt(b, at); err != nil {
				t.Fatal(err)
			}
			for i := range b {
				b[i] ^= 0xff
			}
			if _, err := f.WriteAt(b, at); err != nil {
				t.Fatal(err)
			}
			return last.size
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spoolCopy := filepath.Join(t.TempDir(), "spool")
			copyDir(t, filepath.Join(spool, "out"), filepath.Join(spoolCopy, "out"))
			cut := c.damage(filepath.Join(spoolCopy, "out", newest))

			out := filepath.Join(t.TempDir(), "out.jsonl")
			s := startSensor(t, sensorConfig(t, spoolCopy, "", sinkBlock(t, out, "")))
			waitFor(t, 30*time.Second, "the spool to drain", func() bool { return s.health().Spools["out"].PendingBatches == 0 })
			h := s.health()
			lostMetric := s.metric("netguardian_sink_spool_lost_batches_total", `sink="out"`)
			lostBytesMetric := s.metric("netguardian_sink_spool_lost_bytes_total", `sink="out"`)
			s.stop()
			log := s.log.String()

			m := recoveryLossRe.FindStringSubmatch(log)
			if m == nil {
				t.Fatalf("the log does not report the loss:\n%s", log)
			}
			t.Logf("log: LOST %s records, %s bytes cut (%s); health: status %s, lost %d batches, %d bytes %q; metrics: %.0f batches, %.0f bytes",
				m[1], m[2], m[3], h.Status, h.Spools["out"].LostBatches, h.Spools["out"].LostBytes, h.Reasons, lostMetric, lostBytesMetric)
			if m[1] != "1" || m[2] != strconv.FormatInt(cut, 10) || !strings.Contains(m[3], fmt.Sprintf("%s@%d", newest, last.offset)) {
				t.Errorf("the log reports %s records and %s bytes lost at %q; want 1 record, %d bytes, at %s@%d", m[1], m[2], m[3], cut, newest, last.offset)
			}
			if sp := h.Spools["out"]; sp.LostBatches != 1 || sp.LostBytes != cut || h.Status != "degraded" {
				t.Errorf("/api/health: status %s, spool %+v; want degraded with 1 batch and %d bytes lost", h.Status, sp, cut)
			}
			if lostMetric != 1 || lostBytesMetric != float64(cut) {
				t.Errorf("/metrics: %.0f batches, %.0f bytes lost; want 1 and %d", lostMetric, lostBytesMetric, cut)
			}
			var want []uint64
			for _, r := range recs[:len(recs)-1] {
				want = append(want, r.seq)
			}
			got := readSink(t, out)
			if !slices.Equal(got.seqs, want) {
				t.Fatalf("the sink stored batches %v; want every one before the damaged one: %v", got.seqs, want)
			}
			t.Logf("the sink stored the %d batches before the damaged one (%d feature rows, %d alerts, %d packets)", got.batches, got.features, got.alerts, got.packets)
		})
	}
}
