package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sample is one observation of the running sensor.
type sample struct {
	at      time.Time
	minutes float64 // since the sensor started
	rssMB   map[string]float64
	pids    map[string]int
	// goroutines by process (processColumns); the plugins' live heap
	// (what their last GC found live), which RSS follows with a lag.
	goroutines map[string]float64
	heapLiveMB map[string]float64
	cpuSec     map[string]float64 // CPU time used so far, by process (cpuColumns)
	cpuPct     map[string]float64 // CPU use since the previous sample, % of one core
	// The whole machine's busy CPU time so far and its use since the
	// previous sample (% of one core): what is not the soak's is other work.
	machineSec, machinePct float64
	// CPU pressure: the share of the last 10 s in which some runnable
	// task waited for a CPU (/proc/pressure/cpu "some avg10"); -1 unknown.
	cpuPressure float64
	metrics     metrics
	spoolMB     float64
	pps         float64 // packets/s since the previous sample
	dropsPS     float64 // drops/s since the previous sample
	restarts    float64
}

// processColumns are the processes whose RSS is sampled: the core, then the
// plugins by binary name.
var processColumns = append([]string{"netguardian"}, pluginNames...)

// cpuColumns add PostgreSQL (the postmaster and its backends) to the
// processes whose CPU use is sampled: it explains a rate under the target.
var cpuColumns = append(append([]string{}, processColumns...), "postgres")

type sampler struct {
	core       int
	postgres   int
	metricsURL string
	spoolDir   string
	client     *http.Client
}

func (s *sampler) take(start time.Time) (sample, error) {
	m, err := s.scrape()
	if err != nil {
		return sample{}, err
	}
	// Stamped after the scrape, which a starved machine can make slow, so
	// that the CPU times read below match the stamp.
	now := time.Now()
	smp := newSample(now, now.Sub(start).Minutes())
	smp.metrics = m
	smp.goroutines["netguardian"] = m.goroutines()
	for _, n := range pluginNames {
		want := map[string]string{"plugin": blockNames[n]}
		if m.has("netguardian_plugin_goroutines", want) { // once the plugin has reported
			smp.goroutines[n] = m.sum("netguardian_plugin_goroutines", want)
			smp.heapLiveMB[n] = m.sum("netguardian_plugin_heap_live_bytes", want) / (1 << 20)
		}
	}
	procs := map[string]int{"netguardian": s.core}
	kids, err := childProcesses(s.core)
	if err != nil {
		return sample{}, err
	}
	for pid, name := range kids {
		procs[name] = pid
	}
	for name, pid := range procs {
		kb, err := vmRSSKB(pid)
		if err != nil {
			continue // a plugin restarting between the walk and the read
		}
		smp.rssMB[name] = kb / 1024
		smp.pids[name] = pid
		if st, err := readStat(pid); err == nil {
			smp.cpuSec[name] = st.cpu
		}
	}
	smp.machineSec, _ = machineBusy()
	smp.cpuPressure = cpuPressure()
	if s.postgres > 0 {
		smp.cpuSec["postgres"], smp.pids["postgres"] = postgresCPU(s.postgres), s.postgres
	}
	// The sensor's own figure when its /metrics has one, else the
	// segment files on disk.
	if _, ok := m["netguardian_sink_spool_bytes"]; ok {
		smp.spoolMB = m.sum("netguardian_sink_spool_bytes", nil) / (1 << 20)
	} else {
		smp.spoolMB = float64(dirBytes(s.spoolDir)) / (1 << 20)
	}
	smp.restarts = m.sum("netguardian_plugin_restarts_total", nil)
	return smp, nil
}

func newSample(at time.Time, minutes float64) sample {
	return sample{at: at, minutes: minutes, rssMB: map[string]float64{}, pids: map[string]int{}, cpuSec: map[string]float64{},
		cpuPct: map[string]float64{}, goroutines: map[string]float64{}, heapLiveMB: map[string]float64{}}
}

func (s *sampler) scrape() (metrics, error) {
	resp, err := s.client.Get(s.metricsURL)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", s.metricsURL, resp.Status)
	}
	return parseMetrics(resp.Body)
}

func (smp *sample) deriveRates(prev sample) {
	dt := smp.at.Sub(prev.at).Seconds()
	if dt <= 0 {
		return
	}
	smp.pps = (smp.metrics.packets() - prev.metrics.packets()) / dt
	smp.dropsPS = (smp.metrics.drops("") - prev.metrics.drops("")) / dt
	smp.machinePct = 100 * (smp.machineSec - prev.machineSec) / dt
	for name, sec := range smp.cpuSec {
		if before, ok := prev.cpuSec[name]; ok && prev.pids[name] == smp.pids[name] {
			smp.cpuPct[name] = 100 * (sec - before) / dt
		}
	}
}

func (smp sample) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.2f min  %7.0f pkt/s  drops %.0f  goroutines %.0f  spool %.1f MB  RSS MB:",
		smp.minutes, smp.pps, smp.metrics.drops(""), smp.metrics.goroutines(), smp.spoolMB)
	for _, n := range processColumns {
		fmt.Fprintf(&b, " %s %.1f", n, smp.rssMB[n])
	}
	return b.String()
}

// ---- /metrics ----------------------------------------------------------------

// series is one line of the Prometheus text format.
type series struct {
	labels map[string]string
	value  float64
}

// metrics maps metric names to their series.
type metrics map[string][]series

// parseMetrics reads the Prometheus text exposition format (what
// client_golang serves without content negotiation).
func parseMetrics(r io.Reader) (metrics, error) {
	m := metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, labels := line, "", map[string]string{}
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			var err error
			if labels, rest, err = parseLabels(rest[1:]); err != nil {
				return nil, fmt.Errorf("/metrics line %d: %w", n, err)
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("/metrics line %d: %q has no value", n, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics line %d: value %q: %w", n, fields[0], err)
		}
		m[name] = append(m[name], series{labels: labels, value: v})
	}
	return m, sc.Err()
}

// parseLabels reads `a="x",b="y"}` and returns what follows the brace.
func parseLabels(s string) (map[string]string, string, error) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || len(s) < eq+2 || s[eq+1] != '"' {
			return nil, "", fmt.Errorf("bad label list near %q", s)
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		closed := false
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			if c == '"' {
				s, closed = s[i+1:], true
				break
			}
			val.WriteByte(c)
		}
		if !closed {
			return nil, "", fmt.Errorf("unterminated value of label %q", key)
		}
		labels[key] = val.String()
	}
}

// sum adds the series of name whose labels include want.
func (m metrics) sum(name string, want map[string]string) float64 {
	t, _ := m.find(name, want)
	return t
}

// has tells whether a series of name has labels that include want.
func (m metrics) has(name string, want map[string]string) bool {
	_, n := m.find(name, want)
	return n > 0
}

// find adds the series of name whose labels include want, and counts them.
func (m metrics) find(name string, want map[string]string) (total float64, n int) {
next:
	for _, s := range m[name] {
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		total += s.value
		n++
	}
	return total, n
}

func (m metrics) packets() float64    { return m.sum("netguardian_packets_total", nil) }
func (m metrics) goroutines() float64 { return m.sum("go_goroutines", nil) }
func (m metrics) heapMB() float64     { return m.sum("go_memstats_heap_inuse_bytes", nil) / (1 << 20) }

// drops counts lost packets of one stage, or of all with "".
func (m metrics) drops(stage string) float64 {
	if stage == "" {
		return m.sum("netguardian_dropped_packets_total", nil)
	}
	return m.sum("netguardian_dropped_packets_total", map[string]string{"stage": stage})
}

// ---- /proc -------------------------------------------------------------------

// clockTicks is USER_HZ, the unit of CPU times in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procStat is what the soak reads of /proc/PID/stat.
type procStat struct {
	ppid int
	cpu  float64 // utime+stime, seconds
	dead float64 // cutime+cstime: CPU of children already waited for, seconds
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 { // f[0] is field 3 (state)
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var st procStat
	st.ppid, _ = strconv.Atoi(f[1])
	ticks := func(k int) float64 { v, _ := strconv.ParseFloat(f[k], 64); return v / clockTicks }
	st.cpu = ticks(11) + ticks(12)  // fields 14, 15
	st.dead = ticks(13) + ticks(14) // fields 16, 17
	return st, nil
}

// machineBusy is the CPU time all CPUs spent on anything but idle and
// iowait since boot (the first line of /proc/stat), in seconds.
func machineBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var busy float64
	for k, v := range f[1:] {
		if k == 3 || k == 4 || k >= 7 { // idle, iowait; guest time is already in user
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / clockTicks, nil
}

// cpuPressure is "some avg10" of /proc/pressure/cpu (percent), or -1 when
// the kernel has no PSI.
func cpuPressure() float64 {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return -1
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				return x
			}
			break
		}
	}
	return -1
}

// postgresCPU is the CPU time of the postmaster, of its live children and
// of the children it has reaped (backends come and go).
func postgresCPU(postmaster int) float64 {
	st, err := readStat(postmaster)
	if err != nil {
		return 0
	}
	total := st.cpu + st.dead
	kids, _ := childProcesses(postmaster)
	for pid := range kids {
		if k, err := readStat(pid); err == nil {
			total += k.cpu
		}
	}
	return total
}

// childProcesses returns the direct children of pid by the base name of
// their executable (argv[0]): the core starts each plugin as a child.
func childProcesses(pid int) (map[int]string, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(child)
		if err != nil || st.ppid != pid {
			continue // exited meanwhile, or another's child
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		out[child] = filepath.Base(string(argv0))
	}
	return out, nil
}

// vmRSSKB reads VmRSS (kB) from /proc/PID/status.
func vmRSSKB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmRSS line", pid)
}

// dirBytes is the total size of the regular files under dir.
func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // files come and go as segments are acknowledged
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// ---- CSV ---------------------------------------------------------------------

type recorder struct {
	f *os.File
	w *csv.Writer
}

func newRecorder(path string) (*recorder, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	r := &recorder{f: f, w: csv.NewWriter(f)}
	head := []string{"time", "minutes", "packets_total", "packets_per_s", "drops_total", "drops_sink_raw", "drops_per_s",
		"goroutines", "core_heap_inuse_mb", "spool_mb", "sink_queue_batches", "alerts_total", "plugin_restarts"}
	for _, n := range processColumns {
		head = append(head, "rss_mb_"+n)
	}
	for _, n := range cpuColumns {
		head = append(head, "cpu_pct_"+n)
	}
	head = append(head, "cpu_pct_machine", "cpu_pressure_pct")
	for _, n := range pluginNames {
		head = append(head, "goroutines_"+n, "heap_live_mb_"+n)
	}
	if err := r.w.Write(head); err != nil {
		return nil, err
	}
	r.w.Flush()
	return r, r.w.Error()
}

func (r *recorder) write(s sample) error {
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	m := s.metrics
	row := []string{s.at.UTC().Format(time.RFC3339), f(s.minutes, 3), f(m.packets(), 0), f(s.pps, 0),
		f(m.drops(""), 0), f(m.drops("sink"), 0), f(s.dropsPS, 0), f(m.goroutines(), 0), f(m.heapMB(), 1),
		f(s.spoolMB, 1), f(m.sum("netguardian_queue_depth", map[string]string{"stage": "sink"}), 0),
		f(m.sum("netguardian_alerts_total", nil), 0), f(s.restarts, 0)}
	for _, n := range processColumns {
		v, ok := s.rssMB[n]
		if !ok {
			row = append(row, "")
			continue
		}
		row = append(row, f(v, 1))
	}
	for _, n := range cpuColumns {
		v, ok := s.cpuPct[n]
		if !ok {
			row = append(row, "")
			continue
		}
		row = append(row, f(v, 0))
	}
	row = append(row, f(s.machinePct, 0), f(s.cpuPressure, 1))
	for _, n := range pluginNames {
		g, ok := s.goroutines[n]
		if !ok {
			row = append(row, "", "")
			continue
		}
		row = append(row, f(g, 0), f(s.heapLiveMB[n], 1))
	}
	if err := r.w.Write(row); err != nil {
		return err
	}
	r.w.Flush() // every row reaches the disk: an interrupted soak keeps its CSV
	return r.w.Error()
}

func (r *recorder) close() { _ = r.f.Close() }

// readCSV reads what recorder wrote back into samples (for -replot). The
// start is the first sample's time less its minutes.
func readCSV(path string) ([]sample, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) == 0 {
		return nil, time.Time{}, fmt.Errorf("%s: empty", path)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, need := range []string{"time", "minutes", "packets_total", "packets_per_s", "drops_total", "drops_sink_raw",
		"drops_per_s", "goroutines", "core_heap_inuse_mb", "spool_mb"} {
		if _, ok := col[need]; !ok {
			return nil, time.Time{}, fmt.Errorf("%s: no column %q", path, need)
		}
	}
	var out []sample
	var start time.Time
	for n, row := range rows[1:] {
		line := n + 2
		num := func(name string) (float64, bool, error) {
			i, ok := col[name]
			if !ok || i >= len(row) || row[i] == "" {
				return 0, false, nil
			}
			v, err := strconv.ParseFloat(row[i], 64)
			if err != nil {
				return 0, false, fmt.Errorf("%s line %d: column %s: %w", path, line, name, err)
			}
			return v, true, nil
		}
		must := func(name string) float64 {
			v, _, e := num(name)
			if e != nil && err == nil {
				err = e
			}
			return v
		}
		at, perr := time.Parse(time.RFC3339, row[col["time"]])
		if perr != nil {
			return nil, time.Time{}, fmt.Errorf("%s line %d: time: %w", path, line, perr)
		}
		s := newSample(at, must("minutes"))
		s.pps, s.dropsPS, s.spoolMB, s.restarts, s.machinePct = must("packets_per_s"), must("drops_per_s"), must("spool_mb"), must("plugin_restarts"), must("cpu_pct_machine")
		s.goroutines["netguardian"] = must("goroutines")
		for _, p := range pluginNames { // absent from CSVs of older soaks
			if v, ok, e := num("goroutines_" + p); e == nil && ok {
				s.goroutines[p] = v
				s.heapLiveMB[p] = must("heap_live_mb_" + p)
			}
		}
		drops, sinkDrops := must("drops_total"), must("drops_sink_raw")
		s.metrics = metrics{
			"netguardian_packets_total": {{value: must("packets_total")}},
			"netguardian_dropped_packets_total": {
				{labels: map[string]string{"stage": "sink"}, value: sinkDrops},
				{labels: map[string]string{"stage": "other"}, value: drops - sinkDrops}},
			"go_goroutines":                {{value: must("goroutines")}},
			"go_memstats_heap_inuse_bytes": {{value: must("core_heap_inuse_mb") * (1 << 20)}},
			"netguardian_alerts_total":     {{value: must("alerts_total")}},
		}
		s.cpuPressure = -1
		if v, ok, e := num("cpu_pressure_pct"); e == nil && ok {
			s.cpuPressure = v
		}
		for _, p := range processColumns {
			if v, ok, e := num("rss_mb_" + p); e == nil && ok {
				s.rssMB[p] = v
			}
		}
		for _, p := range cpuColumns {
			if v, ok, e := num("cpu_pct_" + p); e == nil && ok {
				s.cpuPct[p] = v
			}
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		if n == 0 {
			start = at.Add(-time.Duration(s.minutes * float64(time.Minute)))
		}
		out = append(out, s)
	}
	return out, start, nil
}
