package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/netguardian/netguardian/core/config"
	"github.com/netguardian/netguardian/core/host"
	"github.com/netguardian/netguardian/internal/pcapgen"
	"github.com/netguardian/netguardian/sdk"
)

func sharedData(t testing.TB, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(repoRoot, "..", "shared", "data", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared capture %s not available (%v); it lives beside the repository in shared/data", rel, err)
	}
	return p
}

func needTshark(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (scripts/install-deps.sh installs it)")
	}
}

// tsharkSent returns, per source address, the frames it sent according to
// tshark's IPv4 conversation statistics (the "->" column for A, "<-" for B).
func tsharkSent(t *testing.T, file string) map[string]uint64 {
	out, err := exec.Command("tshark", "-r", file, "-q", "-z", "conv,ip").Output()
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^(\S+)\s+<->\s+(\S+)\s+(\d+)\s+\d+\s+\S+\s+(\d+)\s+\d+`)
	sent := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		toA, _ := strconv.ParseUint(m[3], 10, 64)
		fromA, _ := strconv.ParseUint(m[4], 10, 64)
		sent[m[1]] += fromA
		sent[m[2]] += toA
	}
	return sent
}

// tsharkProtocols returns frames and bytes per protocol from tshark's
// protocol hierarchy (io,phs), for tcp, udp and icmp directly under ip.
func tsharkProtocols(t *testing.T, file string) map[string][2]uint64 {
	out, err := exec.Command("tshark", "-r", file, "-q", "-z", "io,phs").Output()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^    (tcp|udp|icmp)\s+frames:(\d+) bytes:(\d+)`)
	res := map[string][2]uint64{}
	for _, l := range strings.Split(string(out), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			f, _ := strconv.ParseUint(m[2], 10, 64)
			b, _ := strconv.ParseUint(m[3], 10, 64)
			res[m[1]] = [2]uint64{f, b}
		}
	}
	return res
}

// analyze's report on mixed.pcap agrees with tshark's conversation and
// protocol statistics on the same file.
func TestAnalyzeReportMatchesTshark(t *testing.T) {
	needTshark(t)
	file := sharedData(t, "generated/mixed.pcap")
	stdout, stderr, code := run(t, "analyze", "-no-detectors", "-json", "-config", writeConfig(t, ""), file)
	if code != 0 {
		t.Fatalf("analyze exit %d: %s", code, stderr)
	}
	var rep Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, stdout)
	}
	sent := tsharkSent(t, file)
	if len(rep.TopSources) == 0 {
		t.Fatal("no top sources")
	}
	for _, s := range rep.TopSources {
		if want := sent[s.Src]; s.Packets != want {
			t.Errorf("source %s: %d packets, tshark conv,ip says %d", s.Src, s.Packets, want)
		}
	}
	// The top talker by bytes is the SSH server answering the brute force
	// and the downloads; tshark's ranking of senders must agree on the top.
	var top string
	var topPackets uint64
	for src, n := range sent {
		if n > topPackets {
			top, topPackets = src, n
		}
	}
	if rep.TopSources[0].Src != top && rep.TopSources[1].Src != top {
		t.Errorf("tshark's busiest sender %s is not among our top two %v", top, rep.TopSources[:2])
	}
	phs := tsharkProtocols(t, file)
	got := map[string][2]uint64{}
	for _, p := range rep.Protocols {
		got[p.Protocol] = [2]uint64{p.Packets, p.Bytes}
	}
	for _, proto := range []string{"tcp", "udp", "icmp"} {
		if got[proto] != phs[proto] {
			t.Errorf("%s: we count %v (packets, bytes), tshark io,phs %v", proto, got[proto], phs[proto])
		}
	}
	t.Logf("protocols %v; top %s with %d packets", got, rep.TopSources[0].Src, rep.TopSources[0].Packets)
}

func TestAnalyzeWritesFeaturesCSV(t *testing.T) {
	csvPath := filepath.Join(t.TempDir(), "f.csv")
	noCapture := writeConfig(t, "")
	_, stderr, code := run(t, "analyze", "-no-detectors", "-quiet", "-config", noCapture, "-features-csv", csvPath, abs(t, "examples/pcaps/sample.pcap"))
	if code != 0 {
		t.Fatalf("analyze exit %d: %s", code, stderr)
	}
	// analyze brings its own capture: a config without one is not a
	// sensor with nothing to observe, as it is for run and validate.
	if strings.Contains(stderr, config.SummaryNothingToObserve) {
		t.Errorf("analyze warns about its capture-less config:\n%s", stderr)
	}
	if _, stderr, _ := run(t, "validate", "-config", noCapture); !strings.Contains(stderr, config.SummaryNothingToObserve) {
		t.Errorf("validate of a config without captures or sinks does not warn:\n%s", stderr)
	}
	b, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	header := strings.Split(lines[0], ",")
	if len(header) != 7+len(sdk.Features) || header[7] != sdk.Features[0] {
		t.Fatalf("header = %v", header)
	}
	// The scanner's 5s windows must be there with its SYNs counted.
	var scanSYN float64
	syn := 7 + indexOf(sdk.Features, sdk.FeatureSYN)
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != len(header) {
			t.Fatalf("row has %d fields, header %d: %s", len(f), len(header), l)
		}
		if f[1] == "5" && f[2] == "10.99.0.28" {
			v, _ := strconv.ParseFloat(f[syn], 64)
			scanSYN += v
		}
	}
	// tshark -r examples/pcaps/sample.pcap -Y 'ip.src==10.99.0.28 &&
	// tcp.flags.syn==1 && tcp.flags.ack==0' | wc -l  →  8743
	if scanSYN != 8743 {
		t.Fatalf("scanner SYNs over its 5s windows = %v, want 8743", scanSYN)
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func TestAnalyzeRejectsMissingAndMalformedFiles(t *testing.T) {
	_, stderr, code := run(t, "analyze", "-config", writeConfig(t, ""), "/nonexistent.pcap")
	if code == 0 || !strings.Contains(stderr, "/nonexistent.pcap") {
		t.Fatalf("missing file: exit %d, %s", code, stderr)
	}
	junk := filepath.Join(t.TempDir(), "junk.pcap")
	os.WriteFile(junk, bytes.Repeat([]byte("not a capture "), 100), 0o644)
	_, stderr, code = run(t, "analyze", "-no-detectors", "-config", writeConfig(t, ""), junk)
	if code == 0 || !strings.Contains(stderr, junk) || strings.Contains(stderr, "panic") {
		t.Fatalf("junk file: exit %d, %s", code, stderr)
	}
}

var benchPcap string

// genBenchCapture writes (once per test binary) the 1M-packet synthetic
// capture the end-to-end benchmarks replay.
func genBenchCapture(b *testing.B) string {
	if benchPcap == "" {
		benchPcap = filepath.Join(binDir, "bench-1m.pcap")
		if err := pcapgen.Write(benchPcap, pcapgen.Options{Packets: 1_000_000, Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	return benchPcap
}

// BenchmarkCaptureToCore: pcap → capture-pcap plugin process → core, in
// batches of the default size over go-plugin; no windows. Batches are
// recycled as the pipeline does. The plugin is started once: this is the
// steady-state rate of the path.
func BenchmarkCaptureToCore(b *testing.B) {
	file := genBenchCapture(b)
	ctx := context.Background()
	env := pluginEnv()
	if prof := os.Getenv("NG_BENCH_PLUGIN_PROFILE"); prof != "" {
		env = append(env, "NETGUARDIAN_PLUGIN_CPUPROFILE="+prof)
	}
	p, err := host.Start(ctx, host.Spec{Name: "bench", Kind: sdk.KindCapture, Path: filepath.Join(pluginDir, "capture-pcap"), Env: env}, quietLogger())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	js, _ := json.Marshal(map[string]any{"files": []string{file}})
	if err := p.Configure(ctx, sdk.Config{JSON: js, Runtime: sdk.Runtime{BatchSize: config.DefaultBatchSize, FlushInterval: 100 * time.Millisecond}}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var total uint64
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := p.RunCapture(ctx, func(pb *sdk.PacketBatch) error { total += uint64(pb.Len()); pb.Recycle(); return nil }, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)/time.Since(start).Seconds(), "packets/s")
}

// BenchmarkAnalyze: `analyze` end to end on 1M packets (capture plugin
// process, windows 5s/30s/180s), with no detector and no sink.
func BenchmarkAnalyze(b *testing.B) {
	defer setGCDefault()() // as the netguardian command runs
	file := genBenchCapture(b)
	cfg, err := analyzeConfig("", []string{file}, true)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Sensor.PluginDir = pluginDir
	b.ResetTimer()
	start := time.Now()
	var packets uint64
	for i := 0; i < b.N; i++ {
		var out bytes.Buffer
		if err := analyze(context.Background(), cfg, quietLogger(), analyzeOptions{json: true}, &out); err != nil {
			b.Fatal(err)
		}
		var rep Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			b.Fatal(err)
		}
		packets += rep.Packets
	}
	b.ReportMetric(float64(packets)/time.Since(start).Seconds(), "packets/s")
}

// BenchmarkAnalyzeRSS100kSources: analyze on 1M packets from 100,000
// sources (all active in the same 180s window), reporting the core's peak
// resident memory. The target is < 300 MB.
func BenchmarkAnalyzeRSS100kSources(b *testing.B) {
	defer setGCDefault()() // as the netguardian command runs
	file := filepath.Join(b.TempDir(), "100k.pcap")
	if err := pcapgen.Write(file, pcapgen.Options{Packets: 1_000_000, Sources: 100_000, Dests: 4096, Seed: 2}); err != nil {
		b.Fatal(err)
	}
	cfg, err := analyzeConfig("", []string{file}, true)
	if err != nil {
		b.Fatal(err)
	}
	cfg.Sensor.PluginDir = pluginDir
	b.ResetTimer()
	var rep Report
	for i := 0; i < b.N; i++ {
		var out bytes.Buffer
		if err := analyze(context.Background(), cfg, quietLogger(), analyzeOptions{json: true}, &out); err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			b.Fatal(err)
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(rep.Sources), "sources")
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
}

// The third-party port-scan detector and the bundled XGBoost detector, both
// in one config, flag the same scanner in the same run.
func TestBothDetectorsFlagTheScanner(t *testing.T) {
	path := writeConfig(t, `
detector "portscan" {
  plugin = "detector-portscan"
}
detector "xgboost" {
  plugin = "detector-xgboost"
}`)
	stdout, stderr, code := run(t, "analyze", "-json", "-config", path, sharedData(t, "generated/port_scan.pcap"))
	if code != 0 {
		t.Fatalf("analyze exit %d: %s", code, stderr)
	}
	var rep Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, a := range rep.Alerts {
		if a.Src == "10.99.0.28" && a.Label == "port_scan" {
			for d, n := range a.Detectors {
				by[d] += n
			}
		} else if a.Src != "10.99.0.28" {
			t.Errorf("alert for a source other than the scanner: %+v", a)
		}
	}
	if by["portscan"] == 0 || by["xgboost"] == 0 {
		t.Fatalf("port_scan alerts for 10.99.0.28 by detector = %v, want both detectors; report alerts: %+v", by, rep.Alerts)
	}
	t.Logf("port_scan alerts for 10.99.0.28: %v", by)
}

// -cpuprofile writes the core's profile and one per plugin, named after
// its block (analyze's own capture block is "analyze").
func TestAnalyzeCPUProfile(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	_, stderr, code := run(t, "analyze", "-no-detectors", "-quiet", "-cpuprofile", prof, "-config", writeConfig(t, ""), abs(t, "examples/pcaps/sample.pcap"))
	if code != 0 {
		t.Fatalf("analyze exit %d: %s", code, stderr)
	}
	for _, p := range []string{prof, prof + ".analyze"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b { // pprof profiles are gzipped protobuf
			t.Errorf("%s: %d bytes, not a pprof profile", filepath.Base(p), len(b))
		}
	}
	_, stderr, code = run(t, "analyze", "-cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.prof"), "-config", writeConfig(t, ""), abs(t, "examples/pcaps/sample.pcap"))
	if code == 0 || !strings.Contains(stderr, "-cpuprofile") {
		t.Errorf("unwritable profile: exit %d, stderr %q", code, stderr)
	}
}
