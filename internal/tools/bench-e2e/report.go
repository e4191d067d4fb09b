package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	beginMarker = "<!-- bench-e2e:begin -->"
	endMarker   = "<!-- bench-e2e:end -->"
)

// report is what the benchmark prints and writes into the doc.
type report struct {
	opts               *options
	date               time.Time
	machine            string
	versions           []string
	loadStart, loadEnd string
	sizes              []*sizeResult
	took               time.Duration
}

func (r *report) markdown() string {
	o := r.opts
	var b strings.Builder
	fmt.Fprintf(&b, "_Written by `make bench-e2e` (`internal/tools/bench-e2e`) on %s; rerun it to refresh this section._\n\n",
		r.date.UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "**Machine**: %s. Load average %s when it started, %s when it ended.\n", r.machine, r.loadStart, r.loadEnd)
	if len(r.versions) > 0 {
		fmt.Fprintf(&b, "**Versions**: %s.\n", strings.Join(r.versions, ", "))
	}
	var sizes []string
	for _, n := range o.sizes {
		sizes = append(sizes, sizeLabel(n))
	}
	runs := fmt.Sprintf("%d runs", o.runs)
	if o.runs == 1 {
		runs = "1 run"
	}
	fmt.Fprintf(&b, "\n**Reproduce**: `%s` (seed %d, %s of each tool, captures of %s packets; this run took %s).\n\n",
		o.command, o.seed, runs, strings.Join(sizes, " and "), r.took.Round(time.Second))
	fmt.Fprintf(&b, `How it runs:

- The captures come from `+"`internal/pcapgen`"+` (seed %d): Ethernet/IPv4 frames 10 µs apart in
  packet time, 70 %% TCP (%d payload bytes a segment), 25 %% UDP (a fifth DNS), 5 %% ICMP, from
  %s sources that each talk to 4 peers on a few ports; 8 of them scan (1 %% of the packets,
  SYNs to random destinations and ports). They are cached in `+"`%s`"+` and read once before
  the first run, so every tool reads them from the page cache.
- Runs alternate: run 1 of every tool, then run 2, each round starting one tool later.
- Wall time runs from process start to exit: NetGuardian's plugin processes and, with
  PostgreSQL, the schema migrations are included. Packets/s is the file's packets over it.
  CPU is user + system time of the process and its children, then the PostgreSQL server's.
- PostgreSQL: a throwaway cluster on the same machine (the test suite's settings, fsync off),
  a fresh database each run. `+"`analyze`"+` exits only once the sink has committed everything;
  the rows are then counted against analyze's own report.
- The peers run with their defaults. softflowd exports NetFlow to a UDP socket of the benchmark
  that discards it; argus writes its records to a file.
- argus and tshark take 20–60 s per million packets: with `+"`-skip-slow`"+` (the default) they
  run only on captures up to %s packets, which keeps `+"`make bench-e2e`"+` to about half an hour
  on 2 cores. `+"`-skip-slow=false`"+` runs them everywhere; `+"`BENCH_E2E_FLAGS='-sizes 1m -runs 3 -tools analyze,nfpcapd'`"+`
  picks sizes, runs and tools.
`, o.seed, o.payload, commas(int64(o.sources)), o.dir, sizeLabel(o.slowLimit))
	for _, s := range r.sizes {
		b.WriteString("\n")
		r.writeSize(&b, s)
	}
	return b.String()
}

func (r *report) writeSize(b *strings.Builder, s *sizeResult) {
	fmt.Fprintf(b, "### %s packets (%s, %s MB)\n\n", sizeLabel(s.packets), filepath.Base(s.path), commas(int64(math.Round(float64(s.bytes)/1e6))))
	for _, tr := range s.tools {
		if len(tr.runs) > 0 && tr.runs[0].analyze != nil {
			a := tr.runs[0].analyze
			var mix []string
			for _, p := range a.Protocols {
				if p.Packets == 0 {
					continue
				}
				mix = append(mix, fmt.Sprintf("%s %.1f %%", strings.ToUpper(p.Protocol), 100*float64(p.Packets)/float64(a.Packets)))
			}
			labels := map[string]int{}
			for _, al := range a.Alerts {
				labels[al.Label] += al.Count
			}
			var ls []string
			for l, n := range labels {
				ls = append(ls, fmt.Sprintf("%s ×%d", l, n))
			}
			sort.Strings(ls)
			alerts := "none"
			if len(ls) > 0 {
				alerts = strings.Join(ls, ", ")
			}
			fmt.Fprintf(b, "analyze saw %s sources, %s; %s windows; XGBoost alerts: %s.\n\n",
				commas(int64(a.Sources)), strings.Join(mix, ", "), commas(int64(a.windows())), alerts)
			break
		}
	}
	b.WriteString("| tool | command | runs | median wall | median packets/s | wall min–max | CPU, median |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, tr := range s.tools {
		t := tr.tool
		if len(tr.runs) == 0 {
			why := tr.skipped
			if tr.failed != "" {
				why = "failed: " + oneLine(tr.failed)
			}
			fmt.Fprintf(b, "| %s | `%s` | %s | | | | |\n", t.label, t.display, why)
			continue
		}
		walls, cpus := tr.walls(), tr.cpus()
		runs := strconv.Itoa(len(tr.runs))
		if tr.failed != "" {
			runs += " (then failed: " + oneLine(tr.failed) + ")"
		}
		cpu := fmt.Sprintf("%.2f s", median(cpus))
		if pg := tr.pgCPUs(); slices.Max(pg) > 0 {
			cpu += fmt.Sprintf(" + %.2f s PostgreSQL", median(pg))
		}
		fmt.Fprintf(b, "| %s | `%s` | %s | %.2f s | %s | %.2f–%.2f s | %s |\n", t.label, t.display, runs,
			median(walls), rate(float64(s.packets)/median(walls)), slices.Min(walls), slices.Max(walls), cpu)
	}
	// Ratios: NetGuardian's median packets/s over each peer's.
	var ngs, ps []*toolResult
	for _, tr := range s.tools {
		if len(tr.runs) == 0 {
			continue
		}
		if tr.tool.ng {
			ngs = append(ngs, tr)
		} else {
			ps = append(ps, tr)
		}
	}
	if len(ngs) > 0 && len(ps) > 0 {
		b.WriteString("\n| NetGuardian's packets/s ÷ the peer's |")
		for _, p := range ps {
			b.WriteString(" " + p.tool.name + " |")
		}
		b.WriteString("\n| --- |" + strings.Repeat(" ---: |", len(ps)) + "\n")
		for _, n := range ngs {
			fmt.Fprintf(b, "| %s |", strings.TrimPrefix(n.tool.label, "NetGuardian "))
			for _, p := range ps {
				fmt.Fprintf(b, " %s |", ratio(median(p.walls())/median(n.walls())))
			}
			b.WriteString("\n")
		}
	}
	var stored []string
	for _, tr := range s.tools {
		var seen []string
		for _, run := range tr.runs {
			if run.rows == nil {
				continue
			}
			d := fmt.Sprintf("%s raw packets, %s feature rows, %s alerts", commas(run.rows.raw), commas(run.rows.features), commas(run.rows.alerts))
			if !slices.Contains(seen, d) {
				seen = append(seen, d)
			}
		}
		if len(seen) > 0 {
			stored = append(stored, fmt.Sprintf("%s: %s", strings.TrimPrefix(tr.tool.label, "NetGuardian analyze, XGBoost, "), strings.Join(seen, "; ")))
		}
	}
	if len(stored) > 0 {
		fmt.Fprintf(b, "\nRows in PostgreSQL after each run, equal to analyze's own counts every time (zero loss): %s.\n", strings.Join(stored, "; "))
	}
}

func (tr *toolResult) walls() []float64 {
	var v []float64
	for _, r := range tr.runs {
		v = append(v, r.wall.Seconds())
	}
	return v
}

func (tr *toolResult) cpus() []float64 {
	var v []float64
	for _, r := range tr.runs {
		v = append(v, r.cpu.Seconds())
	}
	return v
}

func (tr *toolResult) pgCPUs() []float64 {
	var v []float64
	for _, r := range tr.runs {
		v = append(v, r.pgCPU.Seconds())
	}
	return v
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// rate writes packets per second with three significant digits.
func rate(pps float64) string {
	switch {
	case pps >= 1e6:
		return fmt.Sprintf("%.3g M", pps/1e6)
	case pps >= 1e3:
		return fmt.Sprintf("%.3g k", pps/1e3)
	}
	return fmt.Sprintf("%.3g", pps)
}

func ratio(x float64) string {
	switch {
	case x >= 10:
		return fmt.Sprintf("%.0f×", x)
	case x >= 1:
		return fmt.Sprintf("%.1f×", x)
	}
	return fmt.Sprintf("%.2f×", x)
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// machineInfo describes the machine: CPU, cores, memory, kernel, OS, and
// the Go that built netguardian.
func machineInfo(bin string) string {
	cpu, virt := "unknown CPU", false
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if ok && k == "model name" && cpu == "unknown CPU" {
				cpu = v
			}
			if ok && k == "flags" && slices.Contains(strings.Fields(v), "hypervisor") {
				virt = true
			}
		}
		f.Close()
	}
	parts := []string{fmt.Sprintf("%s, %d cores", cpu, runtime.NumCPU())}
	if virt {
		parts[0] += " (virtual machine)"
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				parts = append(parts, fmt.Sprintf("%.1f GiB RAM", kb/(1<<20)))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		parts = append(parts, "Linux "+strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				parts = append(parts, strings.Trim(v, `"`))
			}
		}
	}
	goVersion := runtime.Version()
	if bi, err := buildinfo.ReadFile(filepath.Join(bin, "netguardian")); err == nil {
		goVersion = bi.GoVersion
	}
	parts = append(parts, strings.Replace(goVersion, "go", "Go ", 1))
	return strings.Join(parts, ", ")
}

// loadAverage is the 1-minute load average: the machine may be shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

// writeBetweenMarkers replaces what lies between the bench-e2e markers of
// the file at path, leaving the rest as it is.
func writeBetweenMarkers(path, content string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := replaceBetweenMarkers(old, content)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, out, 0o644)
}

func replaceBetweenMarkers(doc []byte, content string) ([]byte, error) {
	i := bytes.Index(doc, []byte(beginMarker))
	j := bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < 0 || j < i || bytes.Count(doc, []byte(beginMarker)) != 1 || bytes.Count(doc, []byte(endMarker)) != 1 {
		return nil, fmt.Errorf("want one %s line followed by one %s line, where the report goes", beginMarker, endMarker)
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(beginMarker)])
	out.WriteString("\n")
	out.WriteString(strings.TrimSpace(content))
	out.WriteString("\n")
	out.Write(doc[j:])
	return out.Bytes(), nil
}
