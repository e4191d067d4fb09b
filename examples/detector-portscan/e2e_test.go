package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The end-to-end tests run `netguardian analyze` with this detector, as a
// user would: TestMain builds netguardian, capture-pcap and this plugin.
var (
	binDir     string
	pluginPath string
	repoRoot   = filepath.Join("..", "..")
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ng-portscan")
	if err != nil {
		panic(err)
	}
	binDir = dir
	pluginPath = filepath.Join(dir, "detector-portscan")
	builds := [][2]string{
		{filepath.Join(dir, "netguardian"), filepath.Join(repoRoot, "cmd", "netguardian")},
		{filepath.Join(dir, "plugins", "capture-pcap"), filepath.Join(repoRoot, "plugins", "capture-pcap")},
		{pluginPath, "."},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := exec.Command("go", "build", "-o", b[0], "./"+filepath.ToSlash(b[1])).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("build %s: %v\n%s", b[1], err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// report is the part of analyze's JSON report the tests read.
type report struct {
	Packets uint64 `json:"packets"`
	Alerts  []struct {
		Label    string  `json:"label"`
		Src      string  `json:"src"`
		Count    int     `json:"count"`
		MaxScore float64 `json:"max_score"`
	} `json:"alerts"`
	Detectors []struct {
		Name     string `json:"name"`
		Calls    uint64 `json:"calls"`
		Failures uint64 `json:"failures"`
	} `json:"detectors"`
}

// analyze runs `netguardian analyze -json` over file with this detector
// loaded from a config, and checks the detector was called without failing.
func analyze(t *testing.T, file string) report {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "netguardian.hcl")
	src := fmt.Sprintf("sensor {\n  name = \"e2e\"\n  plugin_dir = %q\n}\n\ndetector \"portscan\" {\n  plugin = %q\n}\n",
		filepath.Join(binDir, "plugins"), pluginPath)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "netguardian"), "analyze", "-config", cfg, "-json", "-quiet", file)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("netguardian analyze %s: %v\n%s", file, err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("analyze report: %v\n%s", err, out)
	}
	if r.Packets == 0 || len(r.Detectors) != 1 || r.Detectors[0].Name != "portscan" || r.Detectors[0].Calls == 0 || r.Detectors[0].Failures != 0 {
		t.Fatalf("%s: packets %d, detectors %+v: want the portscan detector called without failures", file, r.Packets, r.Detectors)
	}
	return r
}

// sharedData returns the path of a capture of the project's shared data
// (../shared/data next to the repository), or skips the test.
func sharedData(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(repoRoot, "..", "shared", "data", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s is not available (the shared data folder is ../shared/data next to the repository): %v", rel, err)
	}
	return p
}

func TestAnalyzeFlagsTheScanner(t *testing.T) {
	cases := []struct {
		file, attacker, label string
		shared                bool
	}{
		{"examples/pcaps/sample.pcap", "10.99.0.28", LabelPortScan, false},
		{"generated/port_scan.pcap", "10.99.0.28", LabelPortScan, true},
		{"generated/mixed.pcap", "10.99.0.28", LabelPortScan, true},                     // a slow scan among brute force and slowloris
		{"public/chrissanders/synscan.pcapng", "172.16.0.8", LabelPortScan, true},       // nmap -sS, 1000 ports
		{"public/esnet/tcp_0_1000_20190821.pcap", "172.31.15.102", LabelPortScan, true}, // masscan TCP
		{"public/esnet/udp_0_1000_20190821.pcap", "172.31.15.102", LabelPortScan, true}, // masscan UDP
		{"public/lucaderi-sgr/hs-tcp_synPingSweepRand.pcapng", "10.0.0.128", LabelHostSweep, true},
		{"public/lucaderi-sgr/hs-icmpScan.pcap", "10.0.0.128", LabelHostSweep, true},
		{"public/lucaderi-sgr/hs-udpScan.pcap", "246.237.45.150", LabelHostSweep, true},
	}
	for _, c := range cases {
		t.Run(filepath.Base(c.file), func(t *testing.T) {
			t.Parallel()
			path, err := filepath.Abs(filepath.Join(repoRoot, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if c.shared {
				path = sharedData(t, c.file)
			}
			r := analyze(t, path)
			if len(r.Alerts) == 0 {
				t.Fatalf("no alert; want %s for %s", c.label, c.attacker)
			}
			for _, a := range r.Alerts {
				if a.Src != c.attacker || a.Label != c.label || a.Count < 1 || a.MaxScore <= 0 || a.MaxScore > 1 {
					t.Errorf("alert %+v; want only %s for %s, scored in (0, 1]", a, c.label, c.attacker)
				}
			}
		})
	}
}

// No alert on benign traffic: the lab's normal capture and every capture
// the public manifest classes as normal.
func TestAnalyzeQuietOnNormalTraffic(t *testing.T) {
	files := []string{sharedData(t, "generated/normal.pcap")}
	if f, err := os.Open(filepath.Join(repoRoot, "..", "shared", "data", "public", "MANIFEST.tsv")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			cols := strings.Split(sc.Text(), "\t")
			if len(cols) > 7 && cols[7] == "normal" {
				files = append(files, sharedData(t, "public/"+cols[0]))
			}
		}
		f.Close()
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			if r := analyze(t, file); len(r.Alerts) != 0 {
				t.Fatalf("alerts on benign traffic: %+v", r.Alerts)
			}
		})
	}
}
