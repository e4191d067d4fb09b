package window

import (
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// synthFlows makes n packets of flow-structured traffic: 16384 live flows
// between 4096 clients and 512 servers, packets in trains (a new train
// every 8 packets on average), a third of them answers, and one train in
// 16 starting a fresh connection (new source port, SYN). This is closer to
// real traffic than synth, where every packet is a new set element.
func synthFlows(n int, span time.Duration, seed int64) []*sdk.PacketBatch {
	rng := rand.New(rand.NewSource(seed))
	type flow struct {
		c, s   int
		cp, sp uint16
		proto  uint8
	}
	newFlow := func() flow {
		f := flow{c: rng.Intn(4096), s: rng.Intn(512), cp: uint16(32768 + rng.Intn(28000))}
		switch r := rng.Intn(10); {
		case r < 7:
			f.proto, f.sp = sdk.ProtoTCP, []uint16{80, 443, 22, 8080}[rng.Intn(4)]
		case r < 9:
			f.proto, f.sp = sdk.ProtoUDP, 53
		default:
			f.proto, f.sp = sdk.ProtoICMP, 8
		}
		return f
	}
	flows := make([]flow, 16384)
	for i := range flows {
		flows[i] = newFlow()
	}
	var out []*sdk.PacketBatch
	b := &sdk.PacketBatch{}
	var p sdk.Packet
	step := int64(span) / int64(n)
	cur := 0
	for i := 0; i < n; i++ {
		fresh := false
		if rng.Intn(8) == 0 {
			cur = rng.Intn(len(flows))
			if rng.Intn(16) == 0 {
				flows[cur], fresh = newFlow(), true
			}
		}
		f := flows[cur]
		p = sdk.Packet{Timestamp: t0 + int64(i)*step, Length: uint32(60 + rng.Intn(1400)), Protocol: f.proto,
			SrcPort: f.cp, DstPort: f.sp}
		p.Src = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: byte(f.c >> 16), 14: byte(f.c >> 8), 15: byte(f.c)}
		p.Dst = [16]byte{10: 0xff, 11: 0xff, 12: 172, 13: 16, 14: byte(f.s >> 8), 15: byte(f.s)}
		switch {
		case fresh && f.proto == sdk.ProtoTCP:
			p.TCPFlags = sdk.TCPSyn
		case f.proto == sdk.ProtoTCP:
			p.TCPFlags = sdk.TCPAck | sdk.TCPPsh
		case f.proto == sdk.ProtoUDP:
			p.Flags = sdk.PacketDNSQuery
		}
		if !fresh && rng.Intn(3) == 0 {
			p.Src, p.Dst = p.Dst, p.Src
			p.SrcPort, p.DstPort = p.DstPort, p.SrcPort
			if f.proto == sdk.ProtoICMP {
				p.SrcPort, p.DstPort = 0, 0
			}
		}
		b.Append(&p)
		if b.Len() == 1024 {
			out = append(out, b)
			b = &sdk.PacketBatch{}
		}
	}
	if b.Len() > 0 {
		out = append(out, b)
	}
	return out
}

// synth makes n packets from `sources` IPv4 clients to 512 servers, with a
// protocol and flag mix, timestamps spread over span (packet time). When
// shuffle > 0 arrival order is perturbed by up to shuffle.
func synth(n, sources int, span, shuffle time.Duration, seed int64) []*sdk.PacketBatch {
	rng := rand.New(rand.NewSource(seed))
	var out []*sdk.PacketBatch
	b := &sdk.PacketBatch{}
	var p sdk.Packet
	step := int64(span) / int64(n)
	for i := 0; i < n; i++ {
		s := rng.Intn(sources)
		d := rng.Intn(512)
		p = sdk.Packet{Timestamp: t0 + int64(i)*step, Length: uint32(60 + rng.Intn(1400))}
		p.Src = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: byte(s >> 16), 14: byte(s >> 8), 15: byte(s)}
		p.Dst = [16]byte{10: 0xff, 11: 0xff, 12: 172, 13: 16, 14: byte(d >> 8), 15: byte(d)}
		if shuffle > 0 {
			p.Timestamp -= rng.Int63n(int64(shuffle))
		}
		switch r := rng.Intn(10); {
		case r < 6:
			p.Protocol = sdk.ProtoTCP
			p.SrcPort, p.DstPort = uint16(32768+rng.Intn(64)), []uint16{80, 443, 22}[rng.Intn(3)]
			p.TCPFlags = []uint8{sdk.TCPSyn, sdk.TCPAck, sdk.TCPPsh | sdk.TCPAck, sdk.TCPFin | sdk.TCPAck}[rng.Intn(4)]
			if rng.Intn(4) == 0 { // the server answers
				p.Src, p.Dst = p.Dst, p.Src
				p.SrcPort, p.DstPort = p.DstPort, p.SrcPort
				p.TCPFlags = sdk.TCPSyn | sdk.TCPAck
			}
		case r < 9:
			p.Protocol = sdk.ProtoUDP
			p.SrcPort, p.DstPort = uint16(32768+rng.Intn(64)), 53
			p.Flags = sdk.PacketDNSQuery
		default:
			p.Protocol = sdk.ProtoICMP
			p.SrcPort = 8
		}
		b.Append(&p)
		if b.Len() == 1024 {
			out = append(out, b)
			b = &sdk.PacketBatch{}
		}
	}
	if b.Len() > 0 {
		out = append(out, b)
	}
	return out
}

// BenchmarkAggregator: one op is 1M packets (about 4600 addresses) over
// 20 s of packet time (50k packets/s; four 5 s windows close per op, 30 s
// and 180 s ones every few ops). The same aggregator runs on across
// iterations (timestamps shifted) after an untimed warm-up op, so the
// figures are steady state even with -benchtime 1x.
func BenchmarkAggregator(b *testing.B) {
	const n = 1 << 20
	span := 20 * time.Second
	for _, bc := range []struct {
		name     string
		flows    bool
		lateness time.Duration
		shuffle  time.Duration
	}{
		{"flows/lateness=0", true, 0, 0},
		{"flows/lateness=1s", true, time.Second, 0},
		{"uniform/lateness=0", false, 0, 0},
		{"uniform/lateness=1s/disordered", false, time.Second, 900 * time.Millisecond},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var batches []*sdk.PacketBatch
			if bc.flows {
				batches = synthFlows(n, span, 1)
			} else {
				batches = synth(n, 4096, span, bc.shuffle, 1)
			}
			rows := 0
			a, err := New(Options{Lateness: bc.lateness}, func(fb *sdk.FeatureBatch) error { rows += len(fb.Rows); return nil })
			if err != nil {
				b.Fatal(err)
			}
			pass := func() {
				for _, pb := range batches {
					if err := a.Add(pb); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				for _, pb := range batches {
					for i := range pb.Timestamps {
						pb.Timestamps[i] += int64(span)
					}
				}
				b.StartTimer()
			}
			pass() // warm-up: map, slab and pools reach their steady size
			runtime.GC()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				pass()
			}
			b.StopTimer()
			runtime.ReadMemStats(&m1)
			pk := float64(n) * float64(b.N)
			b.ReportMetric(pk/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/pk, "allocs/pkt")
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/pk, "B/pkt")
			if s := a.Stats(); s.LatePackets != 0 || rows == 0 {
				b.Fatalf("late %d rows %d", s.LatePackets, rows)
			}
		})
	}
}

// activeSourceHeap feeds `sources` clients (each: 3 packets to 2 of 1000
// servers, 2 destination ports, 3 source ports) into one open 180 s window
// and returns the live heap per tracked address.
func activeSourceHeap(sources int) (perAddr float64, addrs int) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	a, _ := New(Options{}, func(*sdk.FeatureBatch) error { return nil })
	b := &sdk.PacketBatch{}
	var p sdk.Packet
	for s := 0; s < sources; s++ {
		for k := 0; k < 3; k++ {
			d := (s*7 + k%2) % 1000
			p = sdk.Packet{Timestamp: t0 + int64(s)*1000 + int64(k), Protocol: sdk.ProtoTCP, Length: 100,
				SrcPort: uint16(40000 + k), DstPort: uint16(80 + k%2), TCPFlags: sdk.TCPAck}
			p.Src = [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: byte(s >> 16), 14: byte(s >> 8), 15: byte(s)}
			p.Dst = [16]byte{10: 0xff, 11: 0xff, 12: 172, 13: 16, 14: byte(d >> 8), 15: byte(d)}
			b.Append(&p)
		}
		if b.Len() >= 3000 {
			_ = a.Add(b)
			b.Reset()
		}
	}
	_ = a.Add(b)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	addrs = a.Stats().ActiveSources
	runtime.KeepAlive(a)
	return float64(m1.HeapAlloc-m0.HeapAlloc) / float64(addrs), addrs
}

// BenchmarkMemoryPerSource reports the live heap per tracked address with
// 100k active sources, the aggregator's total, and the test process's
// resident set afterwards (Linux; the sensor's target is RSS < 300 MB at
// 100k active sources).
func BenchmarkMemoryPerSource(b *testing.B) {
	for i := 0; i < b.N; i++ {
		per, n := activeSourceHeap(100000)
		b.ReportMetric(per, "B/source")
		b.ReportMetric(per*float64(n)/1e6, "heap-MB")
		if rss := residentMB(); rss > 0 {
			b.ReportMetric(rss, "RSS-MB")
		}
	}
}

// residentMB reads the process's resident set size from /proc, or 0.
func residentMB() float64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return 0
	}
	return pages * float64(os.Getpagesize()) / 1e6
}

// TestMemoryPerSource guards the per-source budget: 300 MB / 100k sources
// leaves 3000 bytes per source for everything.
func TestMemoryPerSource(t *testing.T) {
	per, n := activeSourceHeap(20000)
	if n != 21000 { // 20000 clients + 1000 servers
		t.Fatalf("%d tracked addresses, want 21000", n)
	}
	t.Logf("%.0f bytes per tracked address", per)
	if per > 3000 {
		t.Errorf("%.0f bytes per tracked address, budget 3000", per)
	}
}
