// Command bench-e2e times NetGuardian's analyze against the flow meters a
// user might pick instead (nfpcapd, softflowd, argus, tshark) on the same
// synthetic captures, and writes the table into docs/benchmarks.md.
//
// It is run by `make bench-e2e` from the repository root, after `make
// build`. Captures come from internal/pcapgen with a seed and are cached in
// -dir, keyed by seed, size and shape, so reruns skip generation. Runs
// alternate between the tools (run 1 of each, then run 2 of each...) and the
// order rotates every round, so slow drifts of a shared machine spread over
// all of them. The PostgreSQL modes ingest into a fresh database of a
// throwaway cluster each run, and the rows stored are checked against what
// analyze reported.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netguardian/netguardian/internal/pcapgen"
)

// options are the command-line flags.
type options struct {
	sizes     []int
	runs      int
	seed      uint64
	sources   int
	payload   int
	tools     []string
	skipSlow  bool
	slowLimit int
	dir       string
	bin       string
	doc       string
	timeout   time.Duration
	command   string // how to run this again, for the report
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("bench-e2e", flag.ContinueOnError)
	sizes := fs.String("sizes", "1m,5m", "capture sizes in packets, comma-separated (k and m suffixes)")
	runs := fs.Int("runs", 5, "timed runs of each tool per size")
	seed := fs.Uint64("seed", 1, "seed of the synthetic captures")
	sources := fs.Int("sources", 4096, "distinct source addresses in the captures (8 of them scan)")
	payload := fs.Int("payload", 500, "TCP payload bytes per segment (500: a 1M-packet capture is 433 MB)")
	tools := fs.String("tools", strings.Join(toolNames(), ","), "tools to time, comma-separated")
	skipSlow := fs.Bool("skip-slow", true, "run argus and tshark only on captures up to -slow-limit packets (20-60 s per million)")
	slowLimit := fs.String("slow-limit", "1m", "largest capture the slow tools run on with -skip-slow")
	dir := fs.String("dir", "var/bench-e2e", "cache of generated captures and scratch space for the runs")
	bin := fs.String("bin", "bin", "directory of netguardian and plugins/ (make build)")
	doc := fs.String("doc", "docs/benchmarks.md", "file whose bench-e2e markers receive the report (\"\" = stdout only)")
	timeout := fs.Duration("timeout", 30*time.Minute, "longest single run before it is killed and reported as failed")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: bench-e2e [flags]\n\nTimes netguardian analyze against nfpcapd, softflowd, argus and tshark on the same\nsynthetic captures and writes the table into docs/benchmarks.md.\n\nTools: %s\n\n", strings.Join(toolNames(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags only)", fs.Arg(0))
	}
	o := &options{runs: *runs, seed: *seed, sources: *sources, payload: *payload, skipSlow: *skipSlow,
		dir: *dir, bin: *bin, doc: *doc, timeout: *timeout}
	var err error
	if o.sizes, err = parseSizes(*sizes); err != nil {
		return nil, fmt.Errorf("-sizes: %w", err)
	}
	if o.slowLimit, err = parseSize(*slowLimit); err != nil {
		return nil, fmt.Errorf("-slow-limit: %w", err)
	}
	if o.runs < 1 {
		return nil, fmt.Errorf("-runs: %d, want at least 1", o.runs)
	}
	if o.sources < 16 {
		return nil, fmt.Errorf("-sources: %d, want at least 16 (8 of them are scanners)", o.sources)
	}
	if o.payload < 0 || o.payload > 1400 {
		return nil, fmt.Errorf("-payload: %d, want 0 to 1400 bytes", o.payload)
	}
	for _, t := range strings.Split(*tools, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(toolNames(), t) {
			return nil, fmt.Errorf("-tools: unknown tool %q; known: %s", t, strings.Join(toolNames(), ", "))
		}
		if !slices.Contains(o.tools, t) {
			o.tools = append(o.tools, t)
		}
	}
	if len(o.tools) == 0 {
		return nil, errors.New("-tools: none given")
	}
	// The command that reproduces this run: the flags given, through make.
	var given []string
	fs.Visit(func(f *flag.Flag) { given = append(given, "-"+f.Name+"="+f.Value.String()) })
	o.command = "make bench-e2e"
	if len(given) > 0 {
		o.command += " BENCH_E2E_FLAGS='" + strings.Join(given, " ") + "'"
	}
	return o, nil
}

// parseSizes parses "1m,5m,50k" into packet counts.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := parseSize(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no size given")
	}
	return out, nil
}

// parseSize parses a packet count: 50000, 50k, 1m, 2.5m.
func parseSize(s string) (int, error) {
	mult := 1.0
	num := strings.ToLower(strings.TrimSpace(s))
	switch {
	case strings.HasSuffix(num, "k"):
		mult, num = 1e3, strings.TrimSuffix(num, "k")
	case strings.HasSuffix(num, "m"):
		mult, num = 1e6, strings.TrimSuffix(num, "m")
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 || v*mult < 1 || v*mult > 1e9 {
		return 0, fmt.Errorf("%q is not a packet count between 1 and 1000m (e.g. 50k, 1m)", s)
	}
	return int(v * mult), nil
}

// sizeLabel writes a packet count short: 1M, 50k, 2.5M.
func sizeLabel(n int) string {
	switch {
	case n >= 1e6 && n%10_000 == 0:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n >= 1e3 && n%10 == 0:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.Itoa(n)
}

// capturePath returns the cached capture for a size, generating it first
// when it is not there. The name carries everything that shapes the file.
func capturePath(o *options, packets int) (string, error) {
	gen := pcapgen.Options{Packets: packets, Sources: o.sources, Seed: o.seed, PayloadBytes: o.payload}
	name := fmt.Sprintf("pcapgen-seed%d-%s-src%d-payload%d.pcap", o.seed, sizeLabel(packets), o.sources, o.payload)
	path := filepath.Join(o.dir, name)
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		same, err := sameGenerator(path, gen)
		if err != nil {
			return "", err
		}
		if same {
			progress("capture %s: cached", path)
			return path, nil
		}
		progress("capture %s: made by another version of pcapgen", path)
	}
	progress("capture %s: generating %d packets (seed %d)", path, packets, o.seed)
	start := time.Now()
	// Written aside and renamed, so an interrupted generation leaves no
	// truncated file in the cache.
	tmp := path + ".partial"
	if err := pcapgen.Write(tmp, gen); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("generate %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	progress("capture %s: generated in %.1fs", path, time.Since(start).Seconds())
	return path, nil
}

// sameGenerator tells whether the cached capture starts as pcapgen writes
// it today: its packets come one after the other from the seeded generator,
// so a short sample written now must be the file's beginning.
func sameGenerator(path string, gen pcapgen.Options) (bool, error) {
	gen.Packets = min(gen.Packets, 1000)
	sample := path + ".sample"
	defer os.Remove(sample)
	if err := pcapgen.Write(sample, gen); err != nil {
		return false, err
	}
	want, err := os.ReadFile(sample)
	if err != nil {
		return false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(f, got); err != nil {
		return false, nil // shorter than the sample: not what we would write
	}
	return bytes.Equal(got, want), nil
}

// warm reads the file once so that every tool reads it from the page
// cache, the first included.
func warm(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench-e2e: "+format+"\n", args...)
}

// run is the whole benchmark: every size, every round, every tool.
func run(ctx context.Context, o *options, stdout io.Writer) error {
	started := time.Now()
	if o.doc != "" {
		// Checked now rather than after half an hour of runs.
		doc, err := os.ReadFile(o.doc)
		if err == nil {
			_, err = replaceBetweenMarkers(doc, "")
		}
		if err != nil {
			return fmt.Errorf("-doc %s: %w", o.doc, err)
		}
	}
	b, err := newBench(ctx, o)
	if err != nil {
		return err
	}
	defer b.close()
	rep := &report{opts: o, date: started, machine: machineInfo(o.bin), loadStart: loadAverage()}
	if l, err := strconv.ParseFloat(rep.loadStart, 64); err == nil && l > float64(runtime.NumCPU()) {
		progress("load average %s on %d cores: other jobs are running, the figures will be noisy", rep.loadStart, runtime.NumCPU())
	}
	for _, t := range b.tools {
		if t.version != "" {
			rep.versions = append(rep.versions, t.version)
		}
	}
	if b.pgVersion != "" {
		rep.versions = append(rep.versions, "PostgreSQL "+b.pgVersion)
	}
	failed := false
	for _, n := range o.sizes {
		path, err := capturePath(o, n)
		if err != nil {
			return err
		}
		size, err := warm(path)
		if err != nil {
			return err
		}
		sr, err := b.runSize(ctx, n, path, size)
		if err != nil {
			return err
		}
		rep.sizes = append(rep.sizes, sr)
		for _, tr := range sr.tools {
			failed = failed || tr.failed != ""
		}
	}
	rep.loadEnd = loadAverage()
	rep.took = time.Since(started)
	md := rep.markdown()
	if _, err := io.WriteString(stdout, md); err != nil {
		return err
	}
	if o.doc != "" {
		if err := writeBetweenMarkers(o.doc, md); err != nil {
			return err
		}
		progress("wrote %s", o.doc)
	}
	progress("done in %s", rep.took.Round(time.Second))
	if failed {
		return errors.New("some runs failed: see the table")
	}
	return nil
}
