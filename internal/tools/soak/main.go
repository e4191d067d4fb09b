// Command soak runs the sensor for a long time at a steady packet rate with
// every plugin on, and shows whether its memory and goroutines stay flat.
//
// It does not build anything (`make soak` builds first). In a work directory
// (default var/soak) it
//
//   - generates a capture with internal/pcapgen (flow-shaped traffic with a
//     few port scanners, 10 µs apart in packet time), unless already there;
//   - starts a throwaway PostgreSQL cluster (initdb and postgres from
//     /usr/lib/postgresql/*/bin, a free 127.0.0.1 port, the socket in the
//     work directory; as root they run as the `postgres` or `nobody` user);
//   - writes netguardian.hcl: capture-pcap replaying the capture in a loop at
//     the speed that gives -rate packets/s, detector-xgboost,
//     detector-portscan, and sink-postgres with raw_packets on and a
//     one-minute retention so the disk does not fill;
//   - runs `bin/netguardian run` and, every -interval, samples the RSS of the
//     core and of each plugin process (/proc/PID/status VmRSS; plugins are
//     the core's child processes), the core's goroutines and heap, packets/s
//     and drops (from /metrics), the size of the sink spool, and the CPU use
//     of each process, of PostgreSQL and of the machine, into soak.csv;
//   - at the end (or on Ctrl-C / SIGTERM: the sensor gets SIGTERM and drains,
//     the cluster stops, and what was sampled is kept) plots RSS, goroutines,
//     packets/s and the spool against minutes to -out (docs/soak.png) and
//     prints a verdict: the least-squares growth per 10 minutes of each
//     series after -warmup, "flat" under the thresholds explained in
//     docs/soak.md.
//
// It exits 1 when a series is not shown flat (growing, or inconclusive: too
// few or too noisy samples after the warm-up), when the sensor dies, or when
// setup fails. With -replot FILE
// it runs nothing and reports and plots a soak.csv again.
//
//	go run ./internal/tools/soak -duration 30m -rate 100000 -out docs/soak.png
//	go run ./internal/tools/soak -replot var/soak/soak.csv -out soak-again.png
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netguardian/netguardian/internal/pcapgen"
)

// Packet-time spacing of the generated capture: at speed 1 it replays at
// 100 000 packets/s.
const captureGap = 10 * time.Microsecond

// captureLoopGap is how far apart in packet time capture-pcap puts two
// passes over its files (its README, "Loop"). The replay waits it out
// (scaled by the speed), so the speed accounts for it: a capture of
// several seconds keeps the pause short.
const captureLoopGap = time.Second

type options struct {
	duration, interval, warmup time.Duration
	rate                       float64
	packets                    int
	out, workdir, bin, plugins string
	drainTimeout               time.Duration
	replot                     string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 30*time.Minute, "how long the sensor runs")
	flag.Float64Var(&o.rate, "rate", 100000, "target packets/s of the replay")
	flag.StringVar(&o.out, "out", "docs/soak.png", "PNG plot to write")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "sampling period")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Minute, "samples before this are left out of the verdict (a third of -duration when that is shorter than 2×warmup)")
	flag.IntVar(&o.packets, "packets", 3000000, "packets in the generated capture (replayed in a loop; 3M = 30 s of packet time)")
	flag.StringVar(&o.workdir, "workdir", "var/soak", "work directory: capture, config, cluster, spool, logs, soak.csv")
	flag.StringVar(&o.bin, "bin", "bin/netguardian", "the netguardian binary")
	flag.StringVar(&o.plugins, "plugin-dir", "bin/plugins", "directory of the plugin binaries")
	flag.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "the sensor's -drain-timeout at the end")
	flag.StringVar(&o.replot, "replot", "", "run nothing: read this soak.csv, print the verdict and write the plot again")
	flag.Parse()
	if o.replot != "" {
		ok, err := replot(o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
			os.Exit(1)
		}
		if !ok {
			os.Exit(1)
		}
		return
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func (o *options) check() error {
	switch {
	case o.duration <= 0:
		return fmt.Errorf("-duration %v: want a positive duration", o.duration)
	case o.interval <= 0 || o.interval > o.duration:
		return fmt.Errorf("-interval %v: want a positive duration no longer than -duration", o.interval)
	case o.rate <= 0:
		return fmt.Errorf("-rate %v: want packets/s > 0", o.rate)
	case o.packets < 1000:
		return fmt.Errorf("-packets %d: want at least 1000", o.packets)
	case o.warmup < 0:
		return fmt.Errorf("-warmup %v: want 0 or more", o.warmup)
	}
	if o.duration < 2*o.warmup {
		o.warmup = o.duration / 3
	}
	for _, p := range append([]string{o.bin}, pluginPaths(o.plugins)...) {
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("%s: not an executable file (run `make build` first)", p)
		}
	}
	return nil
}

// pluginNames are the plugins the soak runs, in the order of the plot.
var pluginNames = []string{"capture-pcap", "detector-xgboost", "detector-portscan", "sink-postgres"}

// blockNames are the config blocks (sensorConfig) of the plugins: /metrics
// labels plugins by block.
var blockNames = map[string]string{"capture-pcap": "replay", "detector-xgboost": "xgboost", "detector-portscan": "portscan", "sink-postgres": "postgres"}

func pluginPaths(dir string) []string {
	var out []string
	for _, n := range pluginNames {
		out = append(out, filepath.Join(dir, n))
	}
	return out
}

// run does the soak; ok is false when the verdict is "growing" or the
// sensor died before the end.
func run(ctx context.Context, o options) (ok bool, err error) {
	wd, err := filepath.Abs(o.workdir)
	if err != nil {
		return false, err
	}
	// Each run starts from an empty database and spool; the capture is kept
	// (it is deterministic).
	for _, d := range []string{"pg", "spool"} {
		if err := os.RemoveAll(filepath.Join(wd, d)); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return false, err
	}
	capPath := filepath.Join(wd, fmt.Sprintf("capture-%d.pcap", o.packets))
	if _, err := os.Stat(capPath); err != nil {
		fmt.Printf("soak: generating %s (%d packets)\n", capPath, o.packets)
		if err := pcapgen.Write(capPath+".tmp", pcapgen.Options{Packets: o.packets, Seed: 8, Gap: captureGap}); err != nil {
			return false, fmt.Errorf("generate capture: %w", err)
		}
		if err := os.Rename(capPath+".tmp", capPath); err != nil {
			return false, err
		}
	}
	// One pass is packets in (packets-1)·gap of packet time, then the loop
	// gap; the replay speed scales that rate to the target.
	captureRate := float64(o.packets) / (float64(o.packets-1)*captureGap.Seconds() + captureLoopGap.Seconds())
	speed := o.rate / captureRate

	fmt.Println("soak: starting PostgreSQL")
	pg, err := startCluster(filepath.Join(wd, "pg"))
	if err != nil {
		return false, err
	}
	defer func() {
		if err := pg.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "soak: stop PostgreSQL:", err)
		} else {
			fmt.Println("soak: PostgreSQL stopped")
		}
	}()
	apiPort, err := freePort()
	if err != nil {
		return false, err
	}
	cfgPath := filepath.Join(wd, "netguardian.hcl")
	if err := os.WriteFile(cfgPath, []byte(sensorConfig(wd, o, capPath, speed, apiPort)), 0o644); err != nil {
		return false, err
	}

	logPath := filepath.Join(wd, "sensor.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return false, err
	}
	defer logf.Close()
	cmd := exec.Command(o.bin, "run", "-config", cfgPath, "-drain-timeout", o.drainTimeout.String())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "SOAK_DATABASE_URL="+pg.url("soak"))
	// Its own process group: a Ctrl-C in the terminal reaches only this
	// tool, which then stops the sensor in order. The parent-death signal
	// stops it if this tool is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	fmt.Printf("soak: %s run -config %s (target %.0f packets/s: speed %.4g of a %d-packet capture, %.0f packets/s within a pass; log %s)\n",
		o.bin, cfgPath, o.rate, speed, o.packets, speed/captureGap.Seconds(), logPath)
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start %s: %w", o.bin, err)
	}
	start := time.Now()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", apiPort)
	s := &sampler{core: cmd.Process.Pid, postgres: pg.cmd.Process.Pid, metricsURL: metricsURL, spoolDir: filepath.Join(wd, "spool"),
		client: &http.Client{Timeout: 5 * time.Second}}
	csvPath := filepath.Join(wd, "soak.csv")
	rec, err := newRecorder(csvPath)
	if err != nil {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		return false, err
	}
	defer rec.close()

	died, interrupted := false, false
	var exitErr error
	if err := waitForAPI(ctx, s, exited, 2*time.Minute); err != nil {
		exitErr = err
		died = true
	}
	var series []sample
	if !died {
		series, died, interrupted, exitErr = sampleLoop(ctx, o, s, rec, start, exited)
	}
	if !died {
		fmt.Println("soak: stopping the sensor (SIGTERM)")
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				fmt.Fprintf(os.Stderr, "soak: sensor exited with %v at the stop (see %s)\n", err, logPath)
			}
		case <-time.After(o.drainTimeout + 30*time.Second):
			fmt.Fprintln(os.Stderr, "soak: the sensor did not stop in time: killed")
			_ = cmd.Process.Kill()
			<-exited
		}
	} else {
		fmt.Fprintf(os.Stderr, "soak: the sensor stopped before the end: %v\n%s\n", exitErr, tail(logPath, 3000))
	}

	r := analyze(series, o, start)
	r.print(os.Stdout, csvPath)
	if len(series) >= 2 {
		if err := plotSoak(o.out, r, series); err != nil {
			return false, fmt.Errorf("plot: %w", err)
		}
		fmt.Println("soak: plot written to", o.out)
	}
	if interrupted {
		fmt.Println("soak: interrupted: the figures cover what was sampled")
	}
	return !died && r.flat(), nil
}

// replot reads a soak.csv and reports and plots it as the run did.
func replot(o options) (bool, error) {
	series, start, err := readCSV(o.replot)
	if err != nil {
		return false, err
	}
	if len(series) < 2 {
		return false, fmt.Errorf("%s: %d samples, want at least 2", o.replot, len(series))
	}
	span := time.Duration(series[len(series)-1].minutes * float64(time.Minute))
	o.duration = span.Round(time.Minute)
	if o.duration < 2*o.warmup {
		o.warmup = o.duration / 3
	}
	r := analyze(series, o, start)
	r.print(os.Stdout, o.replot)
	if err := plotSoak(o.out, r, series); err != nil {
		return false, fmt.Errorf("plot: %w", err)
	}
	fmt.Println("soak: plot written to", o.out)
	return r.flat(), nil
}

// sampleLoop samples every interval until the duration is over, the
// context ends (interrupted) or the sensor exits (died).
func sampleLoop(ctx context.Context, o options, s *sampler, rec *recorder, start time.Time, exited <-chan error) (
	series []sample, died, interrupted bool, exitErr error) {
	t := time.NewTicker(o.interval)
	defer t.Stop()
	take := func() {
		smp, err := s.take(start)
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak: sample:", err)
			return
		}
		if n := len(series); n > 0 {
			smp.deriveRates(series[n-1])
		}
		series = append(series, smp)
		if err := rec.write(smp); err != nil {
			fmt.Fprintln(os.Stderr, "soak: csv:", err)
		}
		fmt.Println(smp.line())
	}
	take()
	for {
		select {
		case <-ctx.Done():
			return series, false, true, nil
		case err := <-exited:
			if err == nil {
				err = errors.New("exited with status 0")
			}
			return series, true, false, err
		case <-t.C:
			take()
			if time.Since(start) >= o.duration {
				return series, false, false, nil
			}
		}
	}
}

// waitForAPI waits until /metrics answers: the plugins are started and
// configured by then.
func waitForAPI(ctx context.Context, s *sampler, exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if _, err := s.scrape(); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within %v: %w", s.metricsURL, limit, err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("sensor exited at start: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sensorConfig is the soak's netguardian.hcl. The database URL (with its
// password) stays in the environment.
func sensorConfig(wd string, o options, capPath string, speed float64, apiPort int) string {
	plugins, _ := filepath.Abs(o.plugins)
	return fmt.Sprintf(`# Written by internal/tools/soak; rewritten at every run.
sensor {
  name       = "soak"
  plugin_dir = %q
  spool_dir  = %q
}

api {
  listen = "127.0.0.1:%d"
}

capture "replay" {
  plugin = "capture-pcap"
  config {
    files       = [%q]
    loop        = true
    speed       = %s
    rebase_time = true
  }
}

detector "portscan" {
  plugin = "detector-portscan"
  config {
    min_distinct_dst_ports = 100
    min_distinct_dst_ips   = 50
  }
}

detector "xgboost" {
  plugin = "detector-xgboost"
}

sink "postgres" {
  plugin = "sink-postgres"
  config {
    url         = env("SOAK_DATABASE_URL")
    raw_packets = true
    # One-minute partitions, dropped a minute after the newest data: at
    # 100k packets/s that keeps 6-12 million packet rows on disk.
    partition = "1m"
    retention = "1m"
  }
}
`, plugins, filepath.Join(wd, "spool"), apiPort, capPath, strconv.FormatFloat(speed, 'g', 6, 64))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
