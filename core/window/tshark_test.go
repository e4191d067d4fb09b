package window

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// TestTsharkPerSourceCounts: per-source 5 s packet and byte counts on
// public captures, read with sdk/decode and aggregated, equal an
// independent computation from tshark's fields (grouped here by
// floor(ts/5)·5 and the outermost IP source).
func TestTsharkPerSourceCounts(t *testing.T) {
	data := sharedData(t)
	if data == "" {
		t.Skip("../shared/data (beside the repository) is absent: no public captures to compare with")
	}
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark is not installed (apt-get install tshark)")
	}
	files, _ := filepath.Glob(filepath.Join(data, "public", "zeek", "*.pcap"))
	for _, f := range []string{
		"public/stopddos/amp.dns.RRSIG.fragmented.pcap", // IP fragments
		"public/chrissanders/icmp_traceroute.pcapng",    // ICMP errors quoting an inner IP header
		"public/chrissanders/synscan.pcapng",            // pcapng, SYN scan
		"public/lucaderi-sgr/hs-sh-IPscan.pcapng",       // pcapng
		"public/suricata-verify/tcp-session-syn-flood-drop-precedence.pcap",
		"public/esnet/udp_0_1000_20190821.pcap",
		"generated/port_scan.pcap",
	} {
		files = append(files, filepath.Join(data, f))
	}
	for _, f := range files {
		name, _ := filepath.Rel(data, f)
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(f); err != nil {
				t.Skipf("%s absent", f)
			}
			t.Parallel()
			want := tsharkCounts(t, f)
			got := windowCounts(t, f)
			var diffs []string
			for k, w := range want {
				if g := got[k]; g != w {
					diffs = append(diffs, fmt.Sprintf("%s @%d: ours %d pkts %d B, tshark %d pkts %d B", k.src, k.start, g.pkts, g.bytes, w.pkts, w.bytes))
				}
			}
			for k, g := range got {
				if _, ok := want[k]; !ok {
					diffs = append(diffs, fmt.Sprintf("%s @%d: ours %d pkts, not in tshark", k.src, k.start, g.pkts))
				}
			}
			if len(diffs) > 0 {
				t.Errorf("%d of %d windows differ, e.g.:\n%s", len(diffs), len(want), strings.Join(diffs[:min(10, len(diffs))], "\n"))
			}
			if len(want) == 0 {
				t.Error("tshark found no IP packets")
			}
		})
	}
}

type winKey struct {
	start int64 // seconds
	src   netip.Addr
}

type winCount struct{ pkts, bytes uint64 }

func tsharkCounts(t *testing.T, path string) map[winKey]winCount {
	cmd := exec.Command("tshark", "-n", "-r", path, "-T", "fields",
		"-e", "frame.time_epoch", "-e", "frame.protocols", "-e", "ip.src", "-e", "ipv6.src", "-e", "frame.len")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", path, err, stderr.String())
	}
	m := map[winKey]winCount{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 5 {
			t.Fatalf("tshark line %q", sc.Text())
		}
		// The outer IP header is the first "ip" or "ipv6" in the protocol
		// stack; tunnels and ICMP errors list a second (inner) address.
		var src string
		for _, p := range strings.Split(f[1], ":") {
			if p == "ip" {
				src = f[2]
				break
			}
			if p == "ipv6" {
				src = f[3]
				break
			}
		}
		if src == "" {
			continue // not IP
		}
		src, _, _ = strings.Cut(src, ",")
		a, err := netip.ParseAddr(src)
		if err != nil {
			t.Fatalf("tshark source %q: %v", src, err)
		}
		secStr, _, _ := strings.Cut(f[0], ".") // exact: no float rounding
		sec, err := strconv.ParseInt(secStr, 10, 64)
		if err != nil {
			t.Fatalf("tshark time %q: %v", f[0], err)
		}
		n, err := strconv.ParseUint(f[4], 10, 32)
		if err != nil {
			t.Fatalf("tshark frame.len %q: %v", f[4], err)
		}
		k := winKey{sec - sec%5, a}
		c := m[k]
		c.pkts++
		c.bytes += n
		m[k] = c
	}
	return m
}

func windowCounts(t *testing.T, path string) map[winKey]winCount {
	pkts := readCapture(t, path)
	m := map[winKey]winCount{}
	emit := func(b *sdk.FeatureBatch) error {
		for i, r := range b.Rows {
			p, _ := b.Value(i, sdk.FeaturePackets)
			by, _ := b.Value(i, sdk.FeatureBytes)
			if p > 0 {
				m[winKey{r.Start.Unix(), r.Src}] = winCount{uint64(p), uint64(by)}
			}
		}
		return nil
	}
	// A day of lateness: captures are not always in time order, and this
	// test compares counts, not lateness handling.
	a, err := New(Options{Sizes: []time.Duration{5 * time.Second}, Lateness: 24 * time.Hour, MaxSources: 1 << 22}, emit)
	if err != nil {
		t.Fatal(err)
	}
	b := &sdk.PacketBatch{}
	for i := range pkts {
		b.Append(&pkts[i])
		if b.Len() == 512 || i == len(pkts)-1 {
			if err := a.Add(b); err != nil {
				t.Fatal(err)
			}
			b.Reset()
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if s := a.Stats(); s.LatePackets+s.BadTimestamps+s.PacketsDropped > 0 {
		t.Fatalf("stats %+v: packets lost", s)
	}
	return m
}
