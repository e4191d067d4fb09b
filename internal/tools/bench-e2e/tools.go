package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netguardian/netguardian/internal/pgtest"
)

// What a NetGuardian run stores in PostgreSQL.
const (
	pgNone = iota
	pgFeatures
	pgRaw
)

// tool is one row of the table.
type tool struct {
	name    string // as given to -tools
	label   string // in the table
	display string // the command as shown in the table
	pg      int    // NetGuardian: what the sink stores; pgNone without a sink
	ng      bool
	slow    bool   // skipped on large captures with -skip-slow
	missing string // why it cannot run
	version string // e.g. "nfpcapd 1.7.1"
	path    string // the binary
	// args are the command's arguments for a capture and a scratch
	// directory that is empty at the start of each run.
	args func(capture, scratch string) []string
	// check looks at what a peer wrote, so that a run that did nothing
	// does not pass for a fast one.
	check func(scratch string) error
}

// peer describes a flow meter: its Debian package and how to ask its version.
type peer struct {
	name, label, pkg string
	versionArgs      []string
	versionRe        *regexp.Regexp
	slow             bool
}

var peers = []peer{
	{"nfpcapd", "nfpcapd (nfdump)", "nfdump", []string{"-V"}, regexp.MustCompile(`Version:\s*([0-9][0-9.]*[0-9])`), false},
	{"softflowd", "softflowd", "softflowd", []string{"-h"}, regexp.MustCompile(`version\s+([0-9][0-9.]*[0-9])`), false},
	{"argus", "argus", "argus-server", []string{"-h"}, regexp.MustCompile(`Version\s+([0-9][0-9.]*[0-9])`), true},
	{"tshark", "tshark -z conv,ip", "tshark", []string{"--version"}, regexp.MustCompile(`([0-9]+\.[0-9]+\.[0-9]+)`), true},
}

func toolNames() []string {
	names := []string{"analyze", "analyze-pg-features", "analyze-pg-raw"}
	for _, p := range peers {
		names = append(names, p.name)
	}
	return names
}

// bench holds what the runs share: the tools, the scratch directory, the
// PostgreSQL cluster and softflowd's collector.
type bench struct {
	o          *options
	tools      []*tool
	scratch    string
	cluster    *pgtest.Cluster
	postmaster int // the cluster's server process, whose CPU time is counted
	pgVersion  string
	databases  int // created so far, to name the next one
	collector  *net.UDPConn
	datagrams  atomic.Int64
}

func newBench(ctx context.Context, o *options) (*bench, error) {
	b := &bench{o: o, scratch: filepath.Join(o.dir, "scratch")}
	if err := os.MkdirAll(b.scratch, 0o755); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	wantPG := false
	for _, name := range o.tools {
		var t *tool
		var err error
		switch name {
		case "analyze":
			t, err = b.ngTool(pgNone, "NetGuardian analyze, XGBoost, in memory")
		case "analyze-pg-features":
			t, err = b.ngTool(pgFeatures, "NetGuardian analyze, XGBoost, PostgreSQL features")
			wantPG = true
		case "analyze-pg-raw":
			t, err = b.ngTool(pgRaw, "NetGuardian analyze, XGBoost, PostgreSQL every frame")
			wantPG = true
		default:
			t, err = b.peerTool(name)
		}
		if err != nil {
			return nil, err
		}
		t.name = name
		b.tools = append(b.tools, t)
	}
	if wantPG {
		progress("starting a throwaway PostgreSQL cluster")
		c, err := pgtest.NewCluster()
		if err != nil {
			first, _, _ := strings.Cut(err.Error(), "\n")
			for _, t := range b.tools {
				if t.pg != pgNone {
					t.missing = "not installed: " + first
				}
			}
		} else {
			b.cluster = c
			if err := b.serverInfo(ctx); err != nil {
				return nil, err
			}
		}
	}
	ok = true
	return b, nil
}

func (b *bench) close() {
	if b.cluster != nil {
		b.cluster.Close()
		b.cluster = nil
	}
	if b.collector != nil {
		_ = b.collector.Close()
	}
}

// ngTool is `netguardian analyze` with the XGBoost detector and, for the
// PostgreSQL modes, sink-postgres.
func (b *bench) ngTool(pg int, label string) (*tool, error) {
	ng := filepath.Join(b.o.bin, "netguardian")
	plugins := filepath.Join(b.o.bin, "plugins")
	need := []string{ng, filepath.Join(plugins, "capture-pcap"), filepath.Join(plugins, "detector-xgboost")}
	if pg != pgNone {
		need = append(need, filepath.Join(plugins, "sink-postgres"))
	}
	for _, p := range need {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make build` first (or give -bin)", p)
		}
	}
	absPlugins, err := filepath.Abs(plugins)
	if err != nil {
		return nil, err
	}
	name := map[int]string{pgNone: "memory.hcl", pgFeatures: "pg-features.hcl", pgRaw: "pg-raw.hcl"}[pg]
	cfg := filepath.Join(b.o.dir, name)
	if err := os.WriteFile(cfg, []byte(analyzeConfig(absPlugins, pg)), 0o644); err != nil {
		return nil, err
	}
	return &tool{
		label: label, ng: true, pg: pg, path: ng,
		display: "netguardian analyze -quiet -json -config " + name + " FILE",
		args: func(capture, _ string) []string {
			return []string{"analyze", "-quiet", "-json", "-config", cfg, capture}
		},
	}, nil
}

// analyzeConfig is the config analyze runs with: the bundled XGBoost
// detector, and sink-postgres in the PostgreSQL modes. analyze replaces the
// captures by its files and keeps its report in memory.
func analyzeConfig(pluginDir string, pg int) string {
	s := fmt.Sprintf(`sensor {
  name       = "bench-e2e"
  plugin_dir = %q
}
detector "xgboost" {
  plugin = "detector-xgboost"
}
`, pluginDir)
	if pg != pgNone {
		s += fmt.Sprintf(`sink "postgres" {
  plugin = "sink-postgres"
  config {
    url         = env("NG_BENCH_DATABASE_URL")
    raw_packets = %v
  }
}
`, pg == pgRaw)
	}
	return s
}

// lookPeer finds a peer's binary on PATH or in the sbin directories, which
// a non-root PATH may lack (softflowd and argus live there).
func lookPeer(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func (b *bench) peerTool(name string) (*tool, error) {
	var pr peer
	for _, p := range peers {
		if p.name == name {
			pr = p
		}
	}
	t := &tool{label: pr.label, slow: pr.slow, path: lookPeer(name)}
	if t.path == "" {
		t.missing = fmt.Sprintf("not installed (Debian package %s; scripts/install-deps.sh installs it)", pr.pkg)
	} else {
		t.version = pr.name + " " + peerVersion(t.path, pr)
	}
	switch name {
	case "nfpcapd":
		t.display = "nfpcapd -r FILE -w DIR"
		t.args = func(capture, scratch string) []string { return []string{"-r", capture, "-w", scratch} }
		t.check = func(scratch string) error {
			// nfpcapd writes nfcapd.* flow files into DIR.
			files, _ := filepath.Glob(filepath.Join(scratch, "nfcapd.*"))
			for _, f := range files {
				if st, err := os.Stat(f); err == nil && st.Size() > 0 {
					return nil
				}
			}
			return errors.New("nfpcapd wrote no flow file")
		}
	case "softflowd":
		if t.path != "" {
			// softflowd exports NetFlow over UDP: a socket of ours receives
			// and discards it, and counts the datagrams to prove export.
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, fmt.Errorf("softflowd's collector: %w", err)
			}
			_ = c.SetReadBuffer(8 << 20)
			b.collector = c
			go func() {
				buf := make([]byte, 65536)
				for {
					if _, _, err := c.ReadFromUDP(buf); err != nil {
						return
					}
					b.datagrams.Add(1)
				}
			}()
		}
		// No -c: with -r softflowd opens no control socket, and one given
		// after -r makes 1.1.0 wait on it forever once the file is read.
		t.display = "softflowd -d -r FILE -n 127.0.0.1:PORT"
		t.args = func(capture, _ string) []string {
			return []string{"-d", "-r", capture, "-n", b.collector.LocalAddr().String()}
		}
	case "argus":
		t.display = "argus -r FILE -w DIR/out.argus"
		t.args = func(capture, scratch string) []string {
			return []string{"-r", capture, "-w", filepath.Join(scratch, "out.argus")}
		}
		t.check = func(scratch string) error {
			if st, err := os.Stat(filepath.Join(scratch, "out.argus")); err != nil || st.Size() == 0 {
				return errors.New("argus wrote no flow records")
			}
			return nil
		}
	case "tshark":
		t.display = "tshark -r FILE -q -z conv,ip"
		t.args = func(capture, _ string) []string { return []string{"-r", capture, "-q", "-z", "conv,ip"} }
		t.check = func(scratch string) error {
			out, _ := os.ReadFile(filepath.Join(scratch, "stdout"))
			if !strings.Contains(string(out), "IPv4 Conversations") {
				return errors.New("tshark printed no IPv4 conversation table")
			}
			return nil
		}
	}
	return t, nil
}

func peerVersion(path string, p peer) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, p.versionArgs...).CombinedOutput()
	if m := p.versionRe.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return "(version unknown)"
}

// serverInfo asks the cluster its version and finds its postmaster: the
// parent of our backend.
func (b *bench) serverInfo(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, b.cluster.AdminURL())
	if err != nil {
		return fmt.Errorf("connect to the benchmark's PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var backend int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version'), pg_backend_pid()").Scan(&b.pgVersion, &backend); err != nil {
		return err
	}
	b.pgVersion, _, _ = strings.Cut(b.pgVersion, " ")
	if st, ok := procStat(backend); ok {
		b.postmaster = st.ppid
	}
	return nil
}

// procTimes are the fields of /proc/PID/stat the benchmark reads.
type procTimes struct {
	state                        byte // R, S, Z...
	ppid                         int
	utime, stime, cutime, cstime int64 // in clock ticks
}

func procStat(pid int) (procTimes, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procTimes{}, false
	}
	// The command name, in parentheses, may hold spaces: fields start
	// after its closing one, with the state (field 3).
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 15 {
		return procTimes{}, false
	}
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k-3], 10, 64); return v }
	return procTimes{state: f[0][0], ppid: int(n(4)), utime: n(14), stime: n(15), cutime: n(16), cstime: n(17)}, true
}

// settle waits, 10 s at most, until the backends that served database db
// have exited and been reaped, so that their CPU time is in the
// postmaster's count of its children.
func (b *bench) settle(db string) {
	if b.postmaster == 0 {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		busy := false
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			st, ok := procStat(pid)
			if !ok || st.ppid != b.postmaster {
				continue
			}
			// A backend's title is "postgres: USER DATABASE HOST(PORT) STATE".
			title, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if st.state == 'Z' || strings.Contains(string(title), " "+db+" ") {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
	}
}

// pgCPU is the CPU time the PostgreSQL server has used so far: the
// postmaster, the children it has reaped, and those still there (running
// or exited). /proc counts in USER_HZ ticks, 100 a second on Linux.
func (b *bench) pgCPU() time.Duration {
	if b.postmaster == 0 {
		return 0
	}
	pm, ok := procStat(b.postmaster)
	if !ok {
		return 0
	}
	ticks := pm.utime + pm.stime + pm.cutime + pm.cstime
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStat(pid); ok && st.ppid == b.postmaster {
			ticks += st.utime + st.stime
		}
	}
	return time.Duration(ticks) * (time.Second / 100)
}

// analyzeReport is what the benchmark reads of `analyze -json`.
type analyzeReport struct {
	Packets      uint64            `json:"packets"`
	Bytes        uint64            `json:"bytes"`
	Sources      int               `json:"sources"`
	Elapsed      float64           `json:"elapsed_seconds"`
	Windows      map[string]uint64 `json:"windows"`
	DecodeErrors uint64            `json:"decode_errors"`
	Protocols    []struct {
		Protocol string
		Packets  uint64
	} `json:"protocols"`
	Alerts []struct {
		Label string `json:"label"`
		Src   string `json:"src"`
		Count int    `json:"count"`
	} `json:"alerts"`
	Detectors []struct {
		Name     string `json:"name"`
		Calls    uint64 `json:"calls"`
		Failures uint64 `json:"failures"`
	} `json:"detectors"`
}

func (r *analyzeReport) windows() (n uint64) {
	for _, c := range r.Windows {
		n += c
	}
	return n
}

func (r *analyzeReport) alerts() (n int) {
	for _, a := range r.Alerts {
		n += a.Count
	}
	return n
}

// pgRows are the rows found in the database after a run.
type pgRows struct {
	raw, features, alerts int64
}

// runResult is one timed run.
type runResult struct {
	wall, cpu time.Duration
	pgCPU     time.Duration  // the PostgreSQL server's CPU time during the run
	analyze   *analyzeReport // NetGuardian runs
	rows      *pgRows        // PostgreSQL runs
}

// runOnce times one run of t on capture (packets long) and checks its work.
func (b *bench) runOnce(ctx context.Context, t *tool, capture string, packets int) (*runResult, error) {
	scratch := filepath.Join(b.scratch, "run")
	if err := os.RemoveAll(scratch); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	var env []string
	var dbName, dbURL string
	if t.pg != pgNone {
		var err error
		b.databases++
		dbName = fmt.Sprintf("bench_e2e_%d", b.databases)
		if dbURL, err = b.createDatabase(ctx, dbName); err != nil {
			return nil, err
		}
		defer b.dropDatabase(dbName)
		env = append(env, "NG_BENCH_DATABASE_URL="+dbURL)
	}
	sent := b.datagrams.Load()
	pgBefore := b.pgCPU()
	res, err := b.timed(ctx, t.path, t.args(capture, scratch), env, scratch)
	if err != nil {
		return nil, err
	}
	if t.pg != pgNone {
		b.settle(dbName)
		res.pgCPU = b.pgCPU() - pgBefore
	}
	if t.ng {
		if err := b.checkAnalyze(ctx, t, res, scratch, dbURL, packets); err != nil {
			return nil, err
		}
		return res, nil
	}
	if t.name == "softflowd" {
		// The datagrams were sent before softflowd exited; give our reader
		// a moment to count them.
		for i := 0; i < 100 && b.datagrams.Load() == sent; i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if b.datagrams.Load() == sent {
			return nil, errors.New("softflowd exported no NetFlow datagram")
		}
	}
	if t.check != nil {
		if err := t.check(scratch); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// timed runs a command with stdout and stderr in files of scratch and
// returns its wall time and the CPU time of it and its children.
func (b *bench) timed(ctx context.Context, path string, args, env []string, scratch string) (*runResult, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.timeout)
	defer cancel()
	stdout, err := os.Create(filepath.Join(scratch, "stdout"))
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(scratch, "stderr"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so that a kill reaches the plugins too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	if err != nil {
		msg := tail(filepath.Join(scratch, "stderr"))
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("killed after -timeout %s", b.o.timeout)
		}
		return nil, fmt.Errorf("%s: %v: %s", filepath.Base(path), err, msg)
	}
	st := cmd.ProcessState
	return &runResult{wall: wall, cpu: st.UserTime() + st.SystemTime()}, nil
}

// checkAnalyze reads analyze's report and, for the PostgreSQL modes,
// counts what the sink committed: analyze returns only once its sinks have
// acknowledged everything, so every row must be there now.
func (b *bench) checkAnalyze(ctx context.Context, t *tool, res *runResult, scratch, dbURL string, packets int) error {
	out, err := os.ReadFile(filepath.Join(scratch, "stdout"))
	if err != nil {
		return err
	}
	var rep analyzeReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return fmt.Errorf("analyze's JSON report: %w", err)
	}
	res.analyze = &rep
	if rep.Packets != uint64(packets) || rep.DecodeErrors != 0 {
		return fmt.Errorf("analyze counted %d packets (%d decode errors) of %d", rep.Packets, rep.DecodeErrors, packets)
	}
	if len(rep.Detectors) != 1 || rep.Detectors[0].Calls == 0 || rep.Detectors[0].Failures != 0 {
		return fmt.Errorf("the XGBoost detector did not score every window: %+v", rep.Detectors)
	}
	if t.pg == pgNone {
		return nil
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to count rows: %w", err)
	}
	defer conn.Close(context.Background())
	var rows pgRows
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM raw_packets), (SELECT count(*) FROM aggregated_features),
		(SELECT count(*) FROM detected_alerts)`).Scan(&rows.raw, &rows.features, &rows.alerts); err != nil {
		return fmt.Errorf("count rows: %w", err)
	}
	res.rows = &rows
	wantRaw := int64(0)
	if t.pg == pgRaw {
		wantRaw = int64(packets)
	}
	if rows.raw != wantRaw || rows.features != int64(rep.windows()) || rows.alerts != int64(rep.alerts()) {
		return fmt.Errorf("rows lost: PostgreSQL holds %d raw packets, %d feature rows, %d alerts; want %d, %d, %d",
			rows.raw, rows.features, rows.alerts, wantRaw, rep.windows(), rep.alerts())
	}
	return nil
}

func (b *bench) createDatabase(ctx context.Context, name string) (string, error) {
	admin := b.cluster.AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// dropDatabase drops a run's database and checkpoints, so that the next
// run does not pay for writing this one's pages back.
func (b *bench) dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, b.cluster.AdminURL())
	if err != nil {
		progress("drop database %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		progress("drop database %s: %v", name, err)
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		progress("checkpoint: %v", err)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// toolResult is a tool's runs on one capture.
type toolResult struct {
	tool    *tool
	runs    []*runResult
	skipped string // why it did not run
	failed  string // the error that stopped its runs
}

// sizeResult is every tool on one capture.
type sizeResult struct {
	packets int
	bytes   int64
	path    string
	tools   []*toolResult
}

// runSize runs the rounds on one capture: in round r every tool runs once,
// starting from the r-th, so no tool always follows the same one.
func (b *bench) runSize(ctx context.Context, packets int, capture string, bytes int64) (*sizeResult, error) {
	sr := &sizeResult{packets: packets, bytes: bytes, path: capture}
	var active []*toolResult
	for _, t := range b.tools {
		tr := &toolResult{tool: t}
		switch {
		case t.missing != "":
			tr.skipped = t.missing
		case t.slow && b.o.skipSlow && packets > b.o.slowLimit:
			tr.skipped = fmt.Sprintf("skipped above %s packets (-skip-slow)", sizeLabel(b.o.slowLimit))
		default:
			active = append(active, tr)
		}
		sr.tools = append(sr.tools, tr)
	}
	for r := 0; r < b.o.runs; r++ {
		for i := range active {
			tr := active[(i+r)%len(active)]
			if tr.failed != "" {
				continue
			}
			tag := fmt.Sprintf("[%s run %d/%d] %s", sizeLabel(packets), r+1, b.o.runs, tr.tool.name)
			progress("%s ...", tag)
			res, err := b.runOnce(ctx, tr.tool, capture, packets)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err != nil {
				tr.failed = err.Error()
				progress("%s FAILED: %v", tag, err)
				continue
			}
			tr.runs = append(tr.runs, res)
			extra := ""
			if res.rows != nil {
				extra = fmt.Sprintf(", stored %d raw packets, %d feature rows, %d alerts", res.rows.raw, res.rows.features, res.rows.alerts)
			}
			if res.pgCPU > 0 {
				extra = fmt.Sprintf(" + %.2fs PostgreSQL", res.pgCPU.Seconds()) + extra
			}
			progress("%s: %.2fs wall, %s packets/s, %.2fs CPU%s", tag, res.wall.Seconds(),
				rate(float64(packets)/res.wall.Seconds()), res.cpu.Seconds(), extra)
		}
	}
	return sr, nil
}
