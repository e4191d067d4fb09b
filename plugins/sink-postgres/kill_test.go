package main

// Fault tests of the whole sensor: `netguardian run` replays a capture
// with two detectors and this sink (through its disk spool) while the
// tests kill processes with SIGKILL, then compare what PostgreSQL holds
// with a reference run that nothing disturbed.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/internal/syncbuf"
	"github.com/netguardian/netguardian/sdk"
)

const (
	faultSensor  = "fault"
	faultCapture = "../../examples/pcaps/sample.pcap" // 17.7 s, 17,882 packets, an nmap SYN scan from 4 s on
	faultSpeed   = 2.5                                // a replay takes about 7 s
	faultSink    = "pg"
)

var (
	faultOnce  sync.Once
	faultBuilt = make(chan struct{})
	faultErr   error
)

// buildFault builds what buildE2E builds plus the two detectors of the
// fault tests into the same plugin directory (alongside buildE2E's builds).
func buildFault(t testing.TB) {
	t.Helper()
	faultOnce.Do(func() {
		plugs := filepath.Join(buildDir, "plugins")
		if err := os.MkdirAll(plugs, 0o755); err != nil {
			faultErr = err
			close(faultBuilt)
			return
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, b := range [][2]string{
			{"detector-xgboost", "../../plugins/detector-xgboost"},
			{"detector-portscan", "../../examples/detector-portscan"},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := exec.Command("go", "build", "-o", filepath.Join(plugs, b[0]), b[1]).CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("build %s: %v\n%s", b[1], err, out)
				}
			}()
		}
		go func() {
			wg.Wait()
			faultErr = errors.Join(errs...)
			close(faultBuilt)
		}()
	})
	buildE2E(t)
	<-faultBuilt
	if faultErr != nil {
		t.Fatal(faultErr)
	}
}

// faultConfig writes the config of every fault-test run: capture replays
// at faultSpeed; the bundled XGBoost detector; the example port-scan
// detector on 5 s windows as well, so that alerts are raised during the
// replay and not only when it ends; this sink, spooled in spoolDir.
func faultConfig(t *testing.T, capture, spoolDir string) string {
	t.Helper()
	cfg := fmt.Sprintf(`sensor {
  name       = %q
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
    speed = %v
  }
}
detector "xgboost" {
  plugin = "detector-xgboost"
}
detector "portscan" {
  plugin = "detector-portscan"
  config {
    windows = [5, 30]
  }
}
sink %q {
  plugin = %q
  config {
    url = env("NG_E2E_DATABASE_URL")
  }
}
`, faultSensor, e2ePlugs, spoolDir, mustAbs(t, capture), faultSpeed, faultSink, pluginPath)
	path := filepath.Join(t.TempDir(), "netguardian.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// ---- the sensor process ----------------------------------------------------------

// sensorProc is a running `netguardian run`.
type sensorProc struct {
	cmd     *exec.Cmd
	log     *syncbuf.Buffer
	api     string // base URL of its API
	started time.Time
	done    chan struct{}
	err     error // of Wait, once done is closed
}

// startSensor starts `netguardian run -config cfgPath` against the database
// at dbURL and waits until it serves its API. The sensor and its plugins
// are killed when t ends, if they are still running.
func startSensor(t *testing.T, cfgPath, dbURL string) *sensorProc {
	t.Helper()
	s := &sensorProc{log: &syncbuf.Buffer{}, done: make(chan struct{}), started: time.Now()}
	s.cmd = exec.Command(e2eNG, "run", "-config", cfgPath, "-drain-timeout", "90s")
	s.cmd.Env = append(os.Environ(), "NG_E2E_DATABASE_URL="+dbURL)
	s.cmd.Stderr = s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(s.killAll)
	apiRE := regexp.MustCompile(`msg="sensor started".* api=(http://\S+/)`)
	deadline := time.Now().Add(time.Minute)
	for {
		if m := apiRE.FindStringSubmatch(s.log.String()); m != nil {
			s.api = m[1]
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("the sensor exited before it started: %v\n%s", s.err, s.log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sensor did not start within a minute:\n%s", s.log)
		}
	}
}

func (s *sensorProc) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// killAll kills the sensor and the plugins it started (a killed core
// leaves its plugins running: they are not its process group's, and
// nothing tells them the core is gone).
func (s *sensorProc) killAll() {
	if !s.running() {
		return
	}
	kids := childProcesses(s.cmd.Process.Pid, "")
	_ = s.cmd.Process.Kill()
	<-s.done
	for _, pid := range kids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// wait waits for the sensor to end by itself (the capture ended and
// everything drained) and fails t if it did not, or failed.
func (s *sensorProc) wait(t *testing.T, timeout time.Duration) time.Duration {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(timeout):
		s.killAll()
		t.Fatalf("the sensor did not finish within %s:\n%s", timeout, s.log)
	}
	if s.err != nil {
		t.Fatalf("netguardian run: %v\n%s", s.err, s.log)
	}
	return time.Since(s.started)
}

// sensorHealth is the part of /api/health the tests read.
type sensorHealth struct {
	Packets uint64 `json:"packets"`
	Alerts  uint64 `json:"alerts"`
	Plugins []struct {
		Name     string `json:"name"`
		PID      int    `json:"pid"`
		Restarts uint64 `json:"restarts"`
	} `json:"plugins"`
	Queues struct {
		Sinks map[string]int `json:"sinks"`
	} `json:"queues"`
}

func (s *sensorProc) health() (sensorHealth, error) {
	var h sensorHealth
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.api + "api/health")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("/api/health: %s", resp.Status)
	}
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// waitHealth polls /api/health until cond holds, and fails t if the
// sensor ends first or a minute passes.
func (s *sensorProc) waitHealth(t *testing.T, what string, cond func(sensorHealth) bool) sensorHealth {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		h, err := s.health()
		if err == nil && cond(h) {
			return h
		}
		if !s.running() {
			t.Fatalf("the sensor ended before %s (%v):\n%s", what, s.err, s.log)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute (last health %+v, %v):\n%s", what, h, err, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finalStats reads the sensor's closing log line.
func finalStats(t *testing.T, log string) (packets, windows, alerts uint64) {
	t.Helper()
	m := regexp.MustCompile(`msg="sensor stopped" packets=(\d+) .*windows="map\[180s:(\d+) 30s:(\d+) 5s:(\d+)\]" alerts=(\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no final stats in the log:\n%s", log)
	}
	n := make([]uint64, len(m))
	for i := 1; i < len(m); i++ {
		n[i], _ = strconv.ParseUint(m[i], 10, 64)
	}
	return n[1], n[2] + n[3] + n[4], n[5]
}

// restartsLogged counts the sensor's "plugin restarted" lines for a block.
func restartsLogged(log, block string) int {
	return len(regexp.MustCompile(`msg="plugin restarted" plugin=`+regexp.QuoteMeta(block)+` `).FindAllStringIndex(log, -1))
}

// childProcesses walks /proc for the children of ppid running the binary
// exe ("" for any).
func childProcesses(ppid int, exe string) []int {
	if exe != "" {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
	}
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(stat), ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(ppid) {
			continue
		}
		if exe != "" {
			if link, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err != nil || link != exe {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// killPlugin kills -9 the one child of the sensor running binary and
// returns its PID.
func (s *sensorProc) killPlugin(t *testing.T, binary string) int {
	t.Helper()
	pids := childProcesses(s.cmd.Process.Pid, binary)
	if len(pids) != 1 {
		t.Fatalf("%d processes of %s under the sensor (pid %d), want 1", len(pids), binary, s.cmd.Process.Pid)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s (pid %d): %v", binary, pids[0], err)
	}
	return pids[0]
}

// ---- what PostgreSQL holds ---------------------------------------------------------

// dbRows is what the sink stored. Feature rows are keyed by their unique
// key; alerts by what makes an alert (sensor, detector, label, source,
// window), since their IDs and receive times differ between runs.
type dbRows struct {
	features           map[string]string // key -> the row's other columns, as JSON
	alerts             map[string]string // key -> the alert's columns but id and time, as JSON
	alertIDs           map[string]int    // id -> rows with it
	dups               []string          // keys stored more than once
	nFeatures, nAlerts int
}

func faultFeatureKey(sensor string, windowSeconds int64, src string, start time.Time) string {
	return fmt.Sprintf("%s %ds %s %s", sensor, windowSeconds, src, start.UTC().Format(time.RFC3339Nano))
}

func faultAlertKey(sensor, detector, label, src string, windowSeconds int64, start time.Time) string {
	return fmt.Sprintf("%s %s %s %s %ds %s", sensor, detector, label, src, windowSeconds, start.UTC().Format(time.RFC3339Nano))
}

func readRows(t *testing.T, url string) dbRows {
	t.Helper()
	c := db(t, url)
	ctx := context.Background()
	r := dbRows{features: map[string]string{}, alerts: map[string]string{}, alertIDs: map[string]int{}}
	rows, err := c.Query(ctx, `SELECT sensor, window_size, host(src_ip), window_start,
		(to_jsonb(f) - 'sensor' - 'window_size' - 'src_ip' - 'window_start')::text FROM aggregated_features f`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var sensor, src, rest string
		var size int64
		var start time.Time
		if err := rows.Scan(&sensor, &size, &src, &start, &rest); err != nil {
			t.Fatal(err)
		}
		k := faultFeatureKey(sensor, size, src, start)
		if _, dup := r.features[k]; dup {
			r.dups = append(r.dups, "window "+k)
		}
		r.features[k] = rest
		r.nFeatures++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = c.Query(ctx, `SELECT id, sensor, detector, label, coalesce(host(src), ''), window_size, window_start,
		(to_jsonb(a) - 'id' - 'time')::text FROM detected_alerts a`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, sensor, detector, label, src, rest string
		var size int64
		var start time.Time
		if err := rows.Scan(&id, &sensor, &detector, &label, &src, &size, &start, &rest); err != nil {
			t.Fatal(err)
		}
		k := faultAlertKey(sensor, detector, label, src, size, start)
		if _, dup := r.alerts[k]; dup {
			r.dups = append(r.dups, "alert "+k)
		}
		r.alerts[k] = rest
		r.alertIDs[id]++
		r.nAlerts++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return r
}

// diffRows reports, for rows of one kind, those of want that got lacks,
// those of got that want lacks, and those whose columns differ; it
// returns how many there were.
func diffRows(t *testing.T, kind string, want, got map[string]string) int {
	t.Helper()
	var msgs []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			msgs = append(msgs, fmt.Sprintf("%s %s missing", kind, k))
		case g != w:
			msgs = append(msgs, fmt.Sprintf("%s %s differs: %s", kind, k, columnDiff(g, w)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			msgs = append(msgs, fmt.Sprintf("%s %s not in the reference", kind, k))
		}
	}
	slices.Sort(msgs)
	for i, m := range msgs {
		if i == 5 {
			t.Errorf("... and %d more", len(msgs)-5)
			break
		}
		t.Error(m)
	}
	return len(msgs)
}

// columnDiff names the columns of two rows (JSON objects) that differ.
func columnDiff(got, want string) string {
	var g, w map[string]any
	if json.Unmarshal([]byte(got), &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
		return fmt.Sprintf("got %s, want %s", got, want)
	}
	var d []string
	for k, wv := range w {
		if gv, ok := g[k]; !ok || fmt.Sprint(gv) != fmt.Sprint(wv) {
			d = append(d, fmt.Sprintf("%s %v (want %v)", k, g[k], wv))
		}
	}
	for k, gv := range g {
		if _, ok := w[k]; !ok {
			d = append(d, fmt.Sprintf("%s %v (not in the reference)", k, gv))
		}
	}
	slices.Sort(d)
	return strings.Join(d, ", ")
}

// matchReference checks that got holds exactly the reference's rows,
// each once, field by field.
func matchReference(t *testing.T, ref, got dbRows) {
	t.Helper()
	if len(got.dups) > 0 {
		t.Errorf("stored more than once: %v", got.dups)
	}
	diffRows(t, "window", ref.features, got.features)
	diffRows(t, "alert", ref.alerts, got.alerts)
}

// ---- the reference run -------------------------------------------------------------

// faultReference is a run that nothing disturbed, shared by the tests.
type faultReference struct {
	rows     dbRows
	packets  uint64
	duration time.Duration
}

var (
	refOnce sync.Once
	refRun  *faultReference
)

// reference runs the sensor once over the capture, with nothing killed.
func reference(t *testing.T) *faultReference {
	t.Helper()
	refOnce.Do(func() {
		srv := pgtest.Start(t)
		s := startSensor(t, faultConfig(t, faultCapture, filepath.Join(t.TempDir(), "spool")), srv.URL())
		d := s.wait(t, 2*time.Minute)
		packets, windows, alerts := finalStats(t, s.log.String())
		rows := readRows(t, srv.URL())
		t.Logf("reference run: %d packets, %d windows and %d alerts closed, %d feature rows and %d alerts stored, %s",
			packets, windows, alerts, rows.nFeatures, rows.nAlerts, d.Round(time.Millisecond))
		switch {
		case len(rows.dups) > 0:
			t.Fatalf("reference run stored rows twice: %v", rows.dups)
		case uint64(rows.nFeatures) != windows || uint64(rows.nAlerts) != alerts:
			t.Fatalf("reference run stored %d windows and %d alerts; the sensor closed %d and raised %d", rows.nFeatures, rows.nAlerts, windows, alerts)
		case alerts == 0:
			t.Fatalf("the reference run raised no alerts: the tests would prove nothing about alerts")
		}
		refRun = &faultReference{rows: rows, packets: packets, duration: d}
	})
	if refRun == nil {
		t.Fatal("the reference run failed (see the test that ran it)")
	}
	return refRun
}

// ---- the spool ---------------------------------------------------------------------

// spooled is what a sink's spool holds, unacknowledged.
type spooled struct {
	batches, featureBatches, alertBatches int
	features                              map[string]bool   // window keys
	alerts                                map[string]string // alert id -> key
	recovery                              string
}

// readSpool opens the spool in dir (it must not be open elsewhere) and
// reads every unacknowledged batch. A torn last record (a write the
// process died in, never accepted) is allowed; other damage fails t.
func readSpool(t *testing.T, dir string) spooled {
	t.Helper()
	sp, rec, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatalf("open spool %s: %v", dir, err)
	}
	defer sp.Close()
	out := spooled{features: map[string]bool{}, alerts: map[string]string{}, recovery: rec.String()}
	for _, l := range rec.Losses {
		if !l.Torn {
			t.Errorf("spool %s recovered with damage: %s", dir, rec)
		}
	}
	r := sp.Reader(0)
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read spool %s: %v", dir, err)
		}
		b, err := sdk.UnmarshalRecords(rec.Payload)
		if err != nil {
			t.Fatalf("spooled batch %d: %v", rec.Seq, err)
		}
		out.batches++
		if f := b.Features; f != nil {
			out.featureBatches++
			for _, row := range f.Rows {
				out.features[faultFeatureKey(cmp.Or(row.Sensor, f.Sensor), int64(f.Window/time.Second), row.Src.Unmap().String(), row.Start)] = true
			}
		}
		if len(b.Alerts) > 0 {
			out.alertBatches++
			for _, a := range b.Alerts {
				src := ""
				if a.Src.IsValid() {
					src = a.Src.Unmap().String()
				}
				out.alerts[a.ID] = faultAlertKey(a.Sensor, a.Detector, a.Label, src, int64(a.Window/time.Second), a.Start)
			}
		}
	}
	return out
}

// peekSpool reads a copy of a spool the sensor has open: segments only
// grow while the sink is down, so the copy holds a prefix of it.
func peekSpool(t *testing.T, dir string) spooled {
	t.Helper()
	cp := t.TempDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".seg") || strings.HasSuffix(e.Name(), ".ack") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue // acknowledged and deleted meanwhile
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cp, e.Name()), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A record being appended may be cut in the copy: that is the copy's
	// tail, not a loss of the spool.
	sp, _, err := spool.Open(spool.Options{Dir: cp})
	if err != nil {
		t.Fatalf("open a copy of spool %s: %v", dir, err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	return readSpool(t, cp)
}

// spoolDrained checks that the spool in dir holds nothing unacknowledged
// and has freed its segments (the newest one stays, for reuse).
func spoolDrained(t *testing.T, dir string) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) > 1 {
		t.Errorf("spool keeps %d segments: %v", len(segs), segs)
	}
	sp, _, err := spool.Open(spool.Options{Dir: dir})
	if err != nil {
		t.Fatalf("open spool %s: %v", dir, err)
	}
	defer sp.Close()
	if n, bytes := sp.Pending(); n != 0 {
		t.Errorf("spool still holds %d unacknowledged batches (%d bytes)", n, bytes)
	}
}

// ---- the tests ---------------------------------------------------------------------

// Each plugin kind is killed with SIGKILL in the middle of a replay: the
// host restarts it (the capture resumes after the last packet it
// delivered, the detector gets its batch again, the sink gets every
// unacknowledged batch again from the spool) and PostgreSQL ends with
// exactly the reference run's feature rows and alerts, each once.
func TestKillPluginsDuringReplay(t *testing.T) {
	t.Parallel()
	buildFault(t)
	ref := reference(t)
	cases := []struct {
		name   string
		blocks []string // config blocks killed
		bins   []string // their binaries
	}{
		{"capture", []string{"replay"}, []string{filepath.Join(e2ePlugs, "capture-pcap")}},
		{"detectors", []string{"xgboost", "portscan"}, []string{filepath.Join(e2ePlugs, "detector-xgboost"), filepath.Join(e2ePlugs, "detector-portscan")}},
		{"sink", []string{faultSink}, []string{pluginPath}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := pgtest.Start(t)
			spoolDir := filepath.Join(t.TempDir(), "spool")
			s := startSensor(t, faultConfig(t, faultCapture, spoolDir), srv.URL())
			// A third of the way in: windows and alerts are on their way.
			at := s.waitHealth(t, "a third of the capture", func(h sensorHealth) bool { return h.Packets >= ref.packets/3 })
			var killed []int
			for _, bin := range c.bins {
				killed = append(killed, s.killPlugin(t, bin))
			}
			d := s.wait(t, 2*time.Minute)
			log := s.log.String()
			var restarts []int
			for _, b := range c.blocks {
				n := restartsLogged(log, b)
				restarts = append(restarts, n)
				if n == 0 {
					t.Errorf("plugin %q was killed but never restarted:\n%s", b, log)
				}
			}
			packets, _, _ := finalStats(t, log)
			got := readRows(t, srv.URL())
			t.Logf("killed %v (pids %v) at packet %d of %d; restarts %v; rows expected %d windows + %d alerts, found %d + %d; run took %s (reference %s)",
				c.blocks, killed, at.Packets, ref.packets, restarts, len(ref.rows.features), len(ref.rows.alerts),
				got.nFeatures, got.nAlerts, d.Round(time.Millisecond), ref.duration.Round(time.Millisecond))
			if packets != ref.packets {
				t.Errorf("the sensor counted %d packets, the reference %d", packets, ref.packets)
			}
			matchReference(t, ref.rows, got)
			spoolDrained(t, filepath.Join(spoolDir, faultSink))
		})
	}
}

// The core itself is killed with SIGKILL while PostgreSQL is down and the
// spool holds windows and alerts the sink never acknowledged. The sensor
// is started again on the same spool with a capture that has nothing left
// to replay (an empty file), so whatever reaches the database after the
// restart comes from the spool: every window and alert spooled at the
// kill arrives, once, equal to the reference run's, and the spool ends
// empty. (Windows still open in the killed core's memory were never
// accepted, so they are not expected; re-running the replay would
// recompute them.)
func TestKillCoreWithUndeliveredSpool(t *testing.T) {
	t.Parallel()
	buildFault(t)
	ref := reference(t)
	srv := pgtest.StartCluster(t)
	if srv.External() {
		t.Skip("needs a cluster of its own to stop and start")
	}
	spoolDir := filepath.Join(t.TempDir(), "spool")
	sinkSpool := filepath.Join(spoolDir, faultSink)
	s := startSensor(t, faultConfig(t, faultCapture, spoolDir), srv.URL())
	// A third of the way in, after the first windows and alerts are stored.
	s.waitHealth(t, "a third of the capture", func(h sensorHealth) bool { return h.Packets >= ref.packets/3 })
	srv.Stop()

	// Kill once the spool holds windows and alerts (of both detectors,
	// when they close together) that the sink never got.
	deadline := time.Now().Add(time.Minute)
	for p := peekSpool(t, sinkSpool); p.alertBatches < 2 || p.featureBatches == 0; p = peekSpool(t, sinkSpool) {
		if !s.running() {
			t.Fatalf("the sensor ended while the database was down: %v\n%s", s.err, s.log)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert batch spooled within a minute of stopping the database:\n%s", s.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	h, _ := s.health()
	plugins := childProcesses(s.cmd.Process.Pid, "")
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	// The killed core's plugins exit on their own (sdk: the parent's death
	// ends them, cmd/netguardian's orphan test checks that); any still
	// there at this instant are ended here, so the restarted core starts
	// from a clean slate, and counted for the log.
	orphans := 0
	for _, pid := range plugins {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			orphans++
		}
	}
	atKill := readSpool(t, sinkSpool)
	if atKill.featureBatches == 0 || atKill.alertBatches == 0 {
		t.Fatalf("the spool held %d feature and %d alert batches at the kill; the test needs both", atKill.featureBatches, atKill.alertBatches)
	}

	srv.Start()
	before := readRows(t, srv.URL())
	empty := filepath.Join(t.TempDir(), "empty.pcap")
	// A classic pcap header (microsecond times, Ethernet) and no packets.
	if err := os.WriteFile(empty, []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0}, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := startSensor(t, faultConfig(t, empty, spoolDir), srv.URL())
	d := s2.wait(t, 2*time.Minute)
	after := readRows(t, srv.URL())
	spoolDrained(t, sinkSpool)

	// What must be there: what was stored before the kill, and what was spooled.
	wantF, wantA := map[string]string{}, map[string]string{}
	spooledOnlyF, spooledOnlyA := 0, 0
	for k := range before.features {
		wantF[k] = ref.rows.features[k]
	}
	for k := range atKill.features {
		if _, ok := before.features[k]; !ok {
			spooledOnlyF++
		}
		wantF[k] = ref.rows.features[k]
	}
	for k := range before.alerts {
		wantA[k] = ref.rows.alerts[k]
	}
	for id, k := range atKill.alerts {
		if _, ok := before.alerts[k]; !ok {
			spooledOnlyA++
		}
		wantA[k] = ref.rows.alerts[k]
		if n := after.alertIDs[id]; n != 1 {
			t.Errorf("spooled alert %s (%s) stored %d times", id, k, n)
		}
	}
	for k, v := range wantF {
		if v == "" {
			t.Errorf("window %s is not in the reference run", k)
		}
	}
	for k, v := range wantA {
		if v == "" {
			t.Errorf("alert %s is not in the reference run", k)
		}
	}
	t.Logf("killed the core at packet %d of %d with the database down, %d plugins not yet gone; spool at the kill: %d batches (%d of windows, %d of alerts: %d windows, %d alerts), recovery %q",
		h.Packets, ref.packets, orphans, atKill.batches, atKill.featureBatches, atKill.alertBatches, len(atKill.features), len(atKill.alerts), atKill.recovery)
	t.Logf("stored before the restart %d windows + %d alerts; only in the spool %d + %d; after the restart expected %d + %d, found %d + %d (reference %d + %d); restart took %s",
		before.nFeatures, before.nAlerts, spooledOnlyF, spooledOnlyA, len(wantF), len(wantA), after.nFeatures, after.nAlerts,
		len(ref.rows.features), len(ref.rows.alerts), d.Round(time.Millisecond))
	if spooledOnlyF == 0 || spooledOnlyA == 0 {
		t.Fatalf("nothing was only in the spool (%d windows, %d alerts): the test proves nothing", spooledOnlyF, spooledOnlyA)
	}
	if len(after.dups) > 0 {
		t.Errorf("stored more than once: %v", after.dups)
	}
	diffRows(t, "window", wantF, after.features)
	diffRows(t, "alert", wantA, after.alerts)
	if !strings.Contains(s2.log.String(), fmt.Sprintf("%d records to replay", atKill.batches)) {
		t.Errorf("the restarted sensor did not report the %d spooled batches:\n%s", atKill.batches, s2.log)
	}
}
