package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/netguardian/netguardian/core/config"
	"github.com/netguardian/netguardian/internal/pcapgen"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"50000": 50_000, "50k": 50_000, "1m": 1_000_000, "2.5M": 2_500_000, " 5m ": 5_000_000} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "m", "-1m", "0", "1g", "2000m", "x5k"} {
		if n, err := parseSize(bad); err == nil || !strings.Contains(err.Error(), "packet count") {
			t.Errorf("parseSize(%q) = %d, %v; want an error naming a packet count", bad, n, err)
		}
	}
	for n, want := range map[int]string{1_000_000: "1M", 5_000_000: "5M", 2_500_000: "2.5M", 50_000: "50k", 1230: "1.23k", 1234: "1234", 7: "7"} {
		if got := sizeLabel(n); got != want {
			t.Errorf("sizeLabel(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.command != "make bench-e2e" || o.runs != 5 || len(o.sizes) != 2 || len(o.tools) != len(toolNames()) || !o.skipSlow {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags([]string{"-sizes", "50k", "-runs", "2", "-tools", "analyze,nfpcapd,analyze"})
	if err != nil {
		t.Fatal(err)
	}
	if o.sizes[0] != 50_000 || o.runs != 2 || strings.Join(o.tools, ",") != "analyze,nfpcapd" {
		t.Errorf("parsed %+v", o)
	}
	if want := "make bench-e2e BENCH_E2E_FLAGS='-runs=2 -sizes=50k -tools=analyze,nfpcapd,analyze'"; o.command != want {
		t.Errorf("command %q; want %q", o.command, want)
	}
	for args, want := range map[string]string{
		"-tools ntopng":  `unknown tool "ntopng"`,
		"-runs 0":        "-runs",
		"-sizes 1q":      "-sizes",
		"-sources 4":     "-sources",
		"-payload 9000":  "-payload",
		"-sizes 1m junk": `unexpected argument "junk"`,
	} {
		if _, err := parseFlags(strings.Fields(args)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want an error with %q", args, err, want)
		}
	}
}

// The configs the benchmark writes are valid for the config package.
func TestAnalyzeConfigParses(t *testing.T) {
	for _, pg := range []int{pgNone, pgFeatures, pgRaw} {
		src := analyzeConfig("bin/plugins", pg)
		t.Setenv("NG_BENCH_DATABASE_URL", "postgres://localhost/x")
		cfg, diags := config.Parse("bench.hcl", []byte(src))
		if diags.HasErrors() {
			t.Fatalf("mode %d: %v\n%s", pg, diags, src)
		}
		if len(cfg.Detectors) != 1 || cfg.Detectors[0].Plugin != "detector-xgboost" {
			t.Errorf("mode %d: detectors %+v; want the XGBoost detector", pg, cfg.Detectors)
		}
		if wantSinks := map[int]int{pgNone: 0, pgFeatures: 1, pgRaw: 1}[pg]; len(cfg.Sinks) != wantSinks {
			t.Errorf("mode %d: %d sinks; want %d", pg, len(cfg.Sinks), wantSinks)
		}
		if raw := strings.Contains(src, "raw_packets = true"); raw != (pg == pgRaw) {
			t.Errorf("mode %d: raw_packets = true is %v in\n%s", pg, raw, src)
		}
	}
}

func TestReplaceBetweenMarkers(t *testing.T) {
	doc := "# Title\n\nintro\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\n## After\n"
	out, err := replaceBetweenMarkers([]byte(doc), "new table\n\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nintro\n\n" + beginMarker + "\nnew table\n" + endMarker + "\n\n## After\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	for _, bad := range []string{"no markers", endMarker + "\n" + beginMarker, beginMarker + beginMarker + endMarker} {
		if _, err := replaceBetweenMarkers([]byte(bad), "x"); err == nil || !strings.Contains(err.Error(), beginMarker) {
			t.Errorf("%q: %v; want an error naming the markers", bad, err)
		}
	}
}

func TestFormatting(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3,1,2 = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4,1,3,2 = %v", m)
	}
	for v, want := range map[float64]string{2_345_678: "2.35 M", 842_000: "842 k", 950: "950"} {
		if got := rate(v); got != want {
			t.Errorf("rate(%v) = %q; want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{12.4: "12×", 3.14: "3.1×", 0.456: "0.46×"} {
		if got := ratio(v); got != want {
			t.Errorf("ratio(%v) = %q; want %q", v, got, want)
		}
	}
	for v, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 5_000_000: "5,000,000", -1234: "-1,234"} {
		if got := commas(v); got != want {
			t.Errorf("commas(%d) = %q; want %q", v, got, want)
		}
	}
}

func TestProcStat(t *testing.T) {
	st, ok := procStat(os.Getpid())
	if !ok {
		t.Skip("no /proc")
	}
	if st.ppid != os.Getppid() || st.state != 'R' {
		t.Errorf("ppid %d, state %c; want %d, R (reading its own stat, it runs)", st.ppid, st.state, os.Getppid())
	}
	if _, ok := procStat(-1); ok {
		t.Error("procStat of no process succeeded")
	}
}

// A cached capture is reused only if today's pcapgen writes the same packets.
func TestCachedCaptureCheckedAgainstGenerator(t *testing.T) {
	dir := t.TempDir()
	o := &options{dir: dir, seed: 7, sources: 64, payload: 10}
	path, err := capturePath(o, 3000)
	if err != nil {
		t.Fatal(err)
	}
	gen := pcapgen.Options{Packets: 3000, Sources: 64, Seed: 7, PayloadBytes: 10}
	if same, err := sameGenerator(path, gen); err != nil || !same {
		t.Fatalf("fresh capture: same = %v, %v", same, err)
	}
	other := gen
	other.Seed = 8
	if same, _ := sameGenerator(path, other); same {
		t.Error("a capture of seed 7 passes for seed 8")
	}
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	if same, _ := sameGenerator(path, gen); same {
		t.Error("a truncated capture passes")
	}
	// capturePath regenerates it.
	if _, err := capturePath(o, 3000); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() < 3000*50 {
		t.Errorf("regenerated capture: %v, %v", st, err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.sample")); len(files) != 0 {
		t.Errorf("samples left behind: %v", files)
	}
}
