package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/spool"
	"github.com/netguardian/netguardian/internal/syncbuf"
)

// liveSensor is a `netguardian run` process started by a test, with its
// log (stderr) kept for assertions.
type liveSensor struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	api  string // http://127.0.0.1:PORT
	done chan error
}

var sensorAPIRe = regexp.MustCompile(`msg="sensor started".* api=(http://127\.0\.0\.1:\d+)/`)

// startLiveSensor runs `netguardian run -config path args...` with env added
// to the test's environment, and waits until it serves its API. The
// process is stopped (SIGTERM) at the end of the test if still running.
func startLiveSensor(t *testing.T, path string, env []string, args ...string) *liveSensor {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "netguardian"), append([]string{"run", "-config", path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	s := &liveSensor{t: t, cmd: cmd, log: &syncbuf.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
	})
	m := s.waitLog(sensorAPIRe, 0)
	s.api = m[1]
	return s
}

// waitLog waits until the log, from byte offset from on, matches re, and
// returns the submatches. It fails the test if the process exits first or
// after a minute (a guard against hanging, not a timing assertion).
func (s *liveSensor) waitLog(re *regexp.Regexp, from int) []string {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		log := s.log.String()
		if from > len(log) {
			from = len(log)
		}
		if m := re.FindStringSubmatch(log[from:]); m != nil {
			return m
		}
		select {
		case err := <-s.done:
			s.done <- err
			s.t.Fatalf("netguardian exited (%v) before logging %q:\n%s", err, re, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("no log line matching %q within a minute:\n%s", re, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiClient bounds each request, so a wedged sensor fails the test
// instead of hanging it.
var apiClient = &http.Client{Timeout: 30 * time.Second}

func (s *liveSensor) getJSON(path string, v any) {
	s.t.Helper()
	resp, err := apiClient.Get(s.api + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		s.t.Fatalf("GET %s: %v", path, err)
	}
}

type healthPayload struct {
	Plugins []struct {
		Name  string `json:"name"`
		Kind  string `json:"kind"`
		State string `json:"state"`
		PID   int    `json:"pid"`
	} `json:"plugins"`
	Queues struct {
		Sinks map[string]int `json:"sinks"`
	} `json:"queues"`
	Reload *struct {
		Succeeded      uint64   `json:"succeeded"`
		Failed         uint64   `json:"failed"`
		LastOK         bool     `json:"last_ok"`
		PendingRestart []string `json:"pending_restart"`
	} `json:"reload"`
}

// pids returns the plugins' process ids by block name, from /api/health,
// once every plugin is running.
func (s *liveSensor) pids() map[string]int {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var h healthPayload
		s.getJSON("/api/health", &h)
		out := map[string]int{}
		running := true
		for _, p := range h.Plugins {
			out[p.Name] = p.PID
			running = running && p.State == "running" && p.PID > 0
		}
		if running {
			return out
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("plugins not all running: %+v", h.Plugins)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pluginWindows returns each plugin's subscribed windows from /api/plugins.
func (s *liveSensor) pluginWindows() map[string][]string {
	s.t.Helper()
	var out struct {
		Plugins []struct {
			Name    string   `json:"name"`
			Windows []string `json:"windows"`
		} `json:"plugins"`
	}
	s.getJSON("/api/plugins", &out)
	m := map[string][]string{}
	for _, p := range out.Plugins {
		m[p.Name] = p.Windows
	}
	return m
}

// hup sends SIGHUP and waits for the reload's outcome line, which it returns.
func (s *liveSensor) hup() string {
	s.t.Helper()
	from := len(s.log.String())
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		s.t.Fatal(err)
	}
	return s.waitLog(regexp.MustCompile(`(?m)^.*msg=(?:reloaded|"reload rejected[^"]*").*$`), from)[0]
}

// environ reads a process's environment from /proc.
func procEnviron(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// gone reports whether pid has exited (and was reaped) within a few seconds.
func processGone(pid int) bool {
	for i := 0; i < 100; i++ {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

const reloadConfig = `
api {
  listen = "127.0.0.1:0"
}
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = 1
    loop  = true
  }
}
detector "portscan" {
  plugin = "detector-portscan"
  config {
    windows = [30]
  }
}
detector "probe" {
  plugin = "testplugin"
  config {
    mode = "ok"
  }
}
`

// SIGHUP reloads the config: a broken file changes nothing; a changed
// block restarts only its plugin; added and removed blocks start and stop
// theirs. The other plugins keep their process throughout.
func TestReloadRestartsOnlyChangedPlugins(t *testing.T) {
	path := writeConfig(t, fmt.Sprintf(reloadConfig, abs(t, "examples/pcaps/sample.pcap")))
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(from, to string) {
		t.Helper()
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(src, []byte(from)) {
			t.Fatalf("config lacks %q", from)
		}
		if err := os.WriteFile(path, bytes.Replace(src, []byte(from), []byte(to), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := startLiveSensor(t, path, nil)
	start := s.pids()
	t.Logf("started: pids %v", start)
	if len(start) != 3 {
		t.Fatalf("want 3 plugins, got %v", start)
	}

	// (a) A syntax error: logged at file:line:col, nothing restarted.
	edit("windows = [30]", "windows = [30")
	line := s.hup()
	if !strings.Contains(line, "reload rejected") {
		t.Fatalf("a broken config was not rejected: %s", line)
	}
	if want := regexp.MustCompile(regexp.QuoteMeta(path) + `:\d+:\d+: error: `); !want.MatchString(s.log.String()) {
		t.Errorf("no diagnostic with %s:line:col in the log:\n%s", path, s.log.String())
	}
	afterBad := s.pids()
	t.Logf("(a) syntax error: %s; pids %v", line, afterBad)
	if !maps.Equal(afterBad, start) {
		t.Errorf("pids changed after a rejected reload: %v, were %v", afterBad, start)
	}
	if w := s.pluginWindows()["portscan"]; !slices.Equal(w, []string{"30s"}) {
		t.Errorf("portscan windows = %v after a rejected reload, want [30s]", w)
	}

	// A config the plugin itself refuses (7s windows do not exist) is
	// rejected the same way, and the process started to try it is gone.
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	edit("windows = [30]", "windows = [7]")
	line = s.hup()
	refused := regexp.MustCompile(`msg="plugin started" plugin=portscan path=\S+ pid=(\d+)`).FindAllStringSubmatch(s.log.String(), -1)
	t.Logf("(a) refused config: %s; pids %v", line, s.pids())
	if !strings.Contains(line, "reload rejected: a plugin refused its config") || !maps.Equal(s.pids(), start) {
		t.Errorf("a config the plugin refuses: %s; pids %v, were %v", line, s.pids(), start)
	}
	if pid, _ := strconv.Atoi(refused[len(refused)-1][1]); pid == start["portscan"] || !processGone(pid) {
		t.Errorf("the process started for the refused config (pid %d) is still running", pid)
	}

	// (b) One detector's config changes: only it restarts, and its new
	// setting is what the API reports.
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	edit("windows = [30]", "windows = [5, 30] # scan 5s windows too")
	line = s.hup()
	afterChange := s.pids()
	t.Logf("(b) portscan config changed: %s; pids %v", line, afterChange)
	if !strings.Contains(line, `restarted="detector portscan"`) || !strings.Contains(line, "unchanged=2") {
		t.Errorf("summary: %s", line)
	}
	if afterChange["portscan"] == start["portscan"] {
		t.Errorf("portscan kept pid %d after its config changed", start["portscan"])
	}
	for _, name := range []string{"replay", "probe"} {
		if afterChange[name] != start[name] {
			t.Errorf("%s restarted (pid %d -> %d) though its block did not change", name, start[name], afterChange[name])
		}
	}
	if w := s.pluginWindows()["portscan"]; !slices.Equal(w, []string{"5s", "30s"}) {
		t.Errorf("portscan windows = %v after the reload, want [5s 30s]", w)
	}
	if !processGone(start["portscan"]) {
		t.Errorf("the replaced portscan process %d is still running", start["portscan"])
	}

	// A reload of an unchanged file (comments aside) restarts nothing.
	edit("# scan 5s windows too", "# comment only")
	line = s.hup()
	if !strings.Contains(line, "restarted=none") || !strings.Contains(line, "unchanged=3") || !maps.Equal(s.pids(), afterChange) {
		t.Errorf("a comment-only edit: %s; pids %v, were %v", line, s.pids(), afterChange)
	}

	// (c) Remove a detector and add another.
	edit(`detector "probe" {
  plugin = "testplugin"
  config {
    mode = "ok"
  }
}`, `detector "sweep" {
  plugin = "detector-portscan"
  config {
    min_distinct_dst_ips = 10
  }
}`)
	line = s.hup()
	afterSwap := s.pids()
	t.Logf("(c) probe removed, sweep added: %s; pids %v", line, afterSwap)
	if !strings.Contains(line, `added="detector sweep"`) || !strings.Contains(line, `removed="detector probe"`) || !strings.Contains(line, "unchanged=2") {
		t.Errorf("summary: %s", line)
	}
	var names []string
	for name := range s.pluginWindows() {
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"portscan", "replay", "sweep"}) {
		t.Errorf("/api/plugins lists %v, want [portscan replay sweep]", names)
	}
	if afterSwap["replay"] != start["replay"] || afterSwap["portscan"] != afterChange["portscan"] {
		t.Errorf("unchanged plugins restarted: %v, were %v", afterSwap, afterChange)
	}
	if !processGone(start["probe"]) {
		t.Errorf("the removed probe process %d is still running", start["probe"])
	}

	// A core setting that needs a restart is named in the log and kept.
	edit(`listen = "127.0.0.1:0"`, `listen = "127.0.0.1:1"`)
	line = s.hup()
	if !strings.Contains(line, "needs_restart=api.listen") || !strings.Contains(s.log.String(), "setting=api.listen") {
		t.Errorf("api.listen change not reported: %s", line)
	}
	var h healthPayload
	s.getJSON("/api/health", &h) // still served on the old address
	t.Logf("health reload status: %+v", h.Reload)
	if h.Reload == nil || h.Reload.Succeeded != 4 || h.Reload.Failed != 2 || !h.Reload.LastOK || !slices.Equal(h.Reload.PendingRestart, []string{"api.listen"}) {
		t.Errorf("health reload status %+v, want 4 succeeded, 2 failed, last ok, api.listen pending", h.Reload)
	}
	if final := s.pids(); final["replay"] != start["replay"] {
		t.Errorf("the capture restarted during the reloads: pid %d -> %d", start["replay"], final["replay"])
	}
}

// A plugin's environment is PATH and its block's env, never the core's:
// a secret in the core's environment does not reach it, and env values
// never reach the log. Changing env restarts the plugin with the new one.
func TestPluginEnvIsOnlyItsBlocks(t *testing.T) {
	path := writeConfig(t, fmt.Sprintf(`
api {
  listen = "127.0.0.1:0"
}
capture "replay" {
  plugin = "capture-pcap"
  config {
    files = [%q]
    speed = 1
    loop  = true
  }
}
detector "probe" {
  plugin = "testplugin"
  env = {
    NG_PASSED   = env("NG_TEST_PASSED_THROUGH")
    NG_LITERAL  = "literal-value-9f3a"
  }
  config {
    mode = "ok"
  }
}
`, abs(t, "examples/pcaps/sample.pcap")))
	s := startLiveSensor(t, path, []string{"NG_TEST_CORE_SECRET=core-secret-77d1", "NG_TEST_PASSED_THROUGH=passed-value-c2e8"})
	pid := s.pids()["probe"]
	env := procEnviron(t, pid)
	t.Logf("probe (pid %d) environment: %d variables: %v", pid, len(env), varNames(env))
	for _, want := range []string{"NG_PASSED=passed-value-c2e8", "NG_LITERAL=literal-value-9f3a", "PATH=" + os.Getenv("PATH")} {
		if !slices.Contains(env, want) {
			t.Errorf("plugin environment lacks %s", want)
		}
	}
	for _, v := range env {
		name, _, _ := strings.Cut(v, "=")
		if strings.HasPrefix(name, "NG_TEST_") || strings.Contains(v, "core-secret") {
			t.Errorf("the core's variable %s reached the plugin", name)
		}
		// What else is there: go-plugin's handshake, nothing of the core's.
		if !slices.Contains([]string{"PATH", "NG_PASSED", "NG_LITERAL", "NETGUARDIAN_PLUGIN"}, name) && !strings.HasPrefix(name, "PLUGIN_") {
			t.Errorf("unexpected variable %s in the plugin's environment", name)
		}
	}
	if capturePID := s.pids()["replay"]; slices.ContainsFunc(procEnviron(t, capturePID), func(v string) bool { return strings.HasPrefix(v, "NG_") }) {
		t.Errorf("another block's env reached the capture: %v", varNames(procEnviron(t, capturePID)))
	}

	src, _ := os.ReadFile(path)
	if err := os.WriteFile(path, bytes.Replace(src, []byte("literal-value-9f3a"), []byte("changed-value-51b0"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	line := s.hup()
	after := s.pids()["probe"]
	t.Logf("env changed: %s; probe pid %d -> %d", line, pid, after)
	if after == pid || !slices.Contains(procEnviron(t, after), "NG_LITERAL=changed-value-51b0") {
		t.Errorf("changing env did not restart the plugin with the new value (pid %d -> %d)", pid, after)
	}
	if !strings.Contains(s.log.String(), "changed=env") {
		t.Errorf("the restart does not say env changed:\n%s", s.log.String())
	}
	for _, secret := range []string{"passed-value-c2e8", "literal-value-9f3a", "changed-value-51b0", "core-secret-77d1"} {
		if strings.Contains(s.log.String(), secret) {
			t.Errorf("the log shows the value %q", secret)
		}
	}
}

func varNames(env []string) []string {
	var out []string
	for _, v := range env {
		n, _, _ := strings.Cut(v, "=")
		out = append(out, n)
	}
	return out
}

// A sink's spool outlives a reload: a changed sink gets every batch the
// old one had not acknowledged, and a removed sink leaves its batches in
// spool_dir/NAME for the next sink of that name.
func TestReloadKeepsSinkSpool(t *testing.T) {
	dir := t.TempDir()
	spoolDir, stored := filepath.Join(dir, "spool"), filepath.Join(dir, "stored.jsonl")
	path := filepath.Join(dir, "netguardian.hcl")
	sink := func(failFirst int) string {
		return fmt.Sprintf(`
sink "db" {
  plugin = "testplugin"
  env = {
    NG_TEST_KIND = "sink"
  }
  config {
    mode       = "ok"
    out        = %q
    fail_first = %d
  }
}
`, stored, failFirst)
	}
	head := fmt.Sprintf(`sensor {
  name       = "reload"
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
`, pluginDir, spoolDir, abs(t, "examples/pcaps/sample.pcap"))
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const never = 1000000000 // the sink refuses every batch: a database that is down
	write(head + sink(never))
	s := startLiveSensor(t, path, nil, "-drain-timeout", "1s")
	spooled := func(min int) int {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			var h healthPayload
			s.getJSON("/api/health", &h)
			if n := h.Queues.Sinks["db"]; n >= min {
				return n
			}
			if time.Now().After(deadline) {
				t.Fatalf("the spool never held %d batches: %+v", min, h.Queues)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	before := spooled(3)

	// The database is back: a changed sink takes over the spool.
	write(head + sink(0))
	line := s.hup()
	if !strings.Contains(line, `restarted="sink db"`) {
		t.Fatalf("summary: %s", line)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		seqs := storedSeqs(t, stored)
		missing := 0
		for seq := 1; seq <= before; seq++ {
			if !seqs[uint64(seq)] {
				missing++
			}
		}
		if missing == 0 {
			t.Logf("changed sink: the %d batches spooled before the reload were all stored after it (%d stored so far)", before, len(seqs))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d batches spooled before the reload never reached the new sink", missing, before)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Down again, then removed: what it holds stays on disk.
	write(head + sink(never))
	s.hup()
	spooled(3)
	write(head)
	line = s.hup()
	if !strings.Contains(line, `removed="sink db"`) {
		t.Fatalf("summary: %s", line)
	}
	m := regexp.MustCompile(`msg="sink removed" sink=db left_in_spool=(\d+)`).FindStringSubmatch(s.log.String())
	if m == nil {
		t.Fatalf("no sink removed line:\n%s", s.log.String())
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("exit: %v", err)
	}
	sp, rec, err := spool.Open(spool.Options{Dir: filepath.Join(spoolDir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	pending, _ := sp.Pending()
	sp.Close()
	t.Logf("removed sink: left_in_spool=%s logged, %d batches in spool_dir/db after exit (%s)", m[1], pending, rec)
	if strconv.Itoa(pending) != m[1] || pending == 0 {
		t.Errorf("spool holds %d batches; the removal reported %s; want the same, more than 0", pending, m[1])
	}
}

// storedSeqs reads the sequence numbers a testplugin sink stored.
func storedSeqs(t *testing.T, path string) map[uint64]bool {
	t.Helper()
	out := map[uint64]bool{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec struct {
			Seq uint64 `json:"seq"`
		}
		if l != "" && json.Unmarshal([]byte(l), &rec) == nil {
			out[rec.Seq] = true
		}
	}
	return out
}

// Reloads while traffic flows, in process (so -race sees the swaps):
// detectors and the sink are replaced, removed and added again, and the
// sink still receives every spooled batch, its sequence numbers without
// a gap.
func TestReloadUnderTrafficLosesNoBatch(t *testing.T) {
	dir := t.TempDir()
	spoolDir, stored := filepath.Join(dir, "spool"), filepath.Join(dir, "stored.jsonl")
	path := filepath.Join(dir, "netguardian.hcl")
	write := func(detectorWindows string, sinkMode string, withSink bool) {
		t.Helper()
		src := fmt.Sprintf(`sensor {
  name       = "reload"
  plugin_dir = %q
  spool_dir  = %q
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
  config {
    windows = %s
  }
}
`, pluginDir, spoolDir, abs(t, "examples/pcaps/sample.pcap"), detectorWindows)
		if withSink {
			src += fmt.Sprintf(`sink "db" {
  plugin = "testplugin"
  env = {
    NG_TEST_KIND = "sink"
  }
  config {
    mode = %q
    out  = %q
  }
}
`, sinkMode, stored)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("[30]", "ok", true)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := newSensor(ctx, cfg, log, sensorHooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.current().stop() }()
	done := make(chan error, 1)
	go func() { done <- s.pipeline.Run(ctx, 10*time.Second) }()

	waitStored := func(min int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for len(storedSeqs(t, stored)) < min {
			if time.Now().After(deadline) {
				t.Fatalf("the sink stored fewer than %d batches:\n%s", min, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	steps := []struct {
		name, windows, mode string
		sink                bool
		want                string
	}{
		{"detector changed", "[5, 30]", "ok", true, `restarted="detector portscan"`},
		{"sink changed", "[5, 30]", "ok ", true, `restarted="sink db"`},
		{"both changed", "[30]", "ok", true, `restarted="detector portscan, sink db"`},
		{"sink removed", "[30]", "ok", false, `removed="sink db"`},
		{"sink added back", "[30]", "ok", true, `added="sink db"`},
	}
	sinkOn := true
	for _, st := range steps {
		if sinkOn { // traffic reached the sink since the last reload
			waitStored(len(storedSeqs(t, stored)) + 2)
		}
		sinkOn = st.sink
		write(st.windows, st.mode, st.sink)
		from := len(logs.String())
		if _, err := s.reload(ctx, path, 10*time.Second); err != nil {
			t.Fatalf("%s: %v\n%s", st.name, err, logs.String())
		}
		line := regexp.MustCompile(`msg=reloaded .*`).FindString(logs.String()[from:])
		t.Logf("%s: %s", st.name, line)
		if !strings.Contains(line, st.want) {
			t.Errorf("%s: want %s in %s", st.name, st.want, line)
		}
	}
	waitStored(len(storedSeqs(t, stored)) + 2)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	seqs := storedSeqs(t, stored)
	var max uint64
	for seq := range seqs {
		if seq > max {
			max = seq
		}
	}
	var missing []uint64
	for seq := uint64(1); seq <= max; seq++ {
		if !seqs[seq] {
			missing = append(missing, seq)
		}
	}
	t.Logf("sink stored %d distinct batches, sequence 1..%d, across %d reloads", len(seqs), max, len(steps))
	if len(missing) > 0 {
		t.Errorf("batches %v never reached the sink", missing)
	}
}
