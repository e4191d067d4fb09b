package window

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/netguardian/netguardian/internal/pcapgen"
	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/decode"
)

var pcapgenOnce struct {
	sync.Once
	batches []*sdk.PacketBatch
	err     error
}

// pcapgenBatches returns the capture of the end-to-end benchmarks of
// cmd/netguardian (pcapgen, 1M packets, seed 1: 10 s of packet time, 4088
// flow-shaped sources and 8 scanners), decoded with sdk/decode into batches
// of 1024 packets as the capture-pcap plugin sends them.
func pcapgenBatches(tb testing.TB) []*sdk.PacketBatch {
	tb.Helper()
	o := &pcapgenOnce
	o.Do(func() {
		dir, err := os.MkdirTemp("", "window-pcapgen")
		if err != nil {
			o.err = err
			return
		}
		defer os.RemoveAll(dir)
		path := filepath.Join(dir, "bench.pcap")
		if o.err = pcapgen.Write(path, pcapgen.Options{Packets: 1_000_000, Seed: 1}); o.err != nil {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			o.err = err
			return
		}
		defer f.Close()
		r, err := pcapgo.NewReader(f)
		if err != nil {
			o.err = err
			return
		}
		d := decode.NewDecoder(decode.LinkType(r.LinkType()))
		b := &sdk.PacketBatch{}
		var p sdk.Packet
		for {
			data, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				o.err = err
				return
			}
			_ = d.Decode(data, ci, &p)
			p.Frame = nil
			b.Append(&p)
			if b.Len() == 1024 {
				o.batches = append(o.batches, b)
				b = &sdk.PacketBatch{}
			}
		}
		if b.Len() > 0 {
			o.batches = append(o.batches, b)
		}
	})
	if o.err != nil {
		tb.Fatal(o.err)
	}
	return o.batches
}

// BenchmarkAggregatorPcapgen: one op is the aggregator's part of
// cmd/netguardian's BenchmarkAnalyze: a fresh Aggregator (the analyze
// defaults: sizes 5 s/30 s/180 s, lateness 2 s) fed the 1M-packet pcapgen
// capture, then closed.
func BenchmarkAggregatorPcapgen(b *testing.B) {
	batches := pcapgenBatches(b)
	n := 0
	for _, pb := range batches {
		n += pb.Len()
	}
	for _, lateness := range []time.Duration{2 * time.Second, 0} {
		b.Run("lateness="+lateness.String(), func(b *testing.B) {
			rows := 0
			c0 := cpuTime()
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				a, err := New(Options{Lateness: lateness}, func(fb *sdk.FeatureBatch) error { rows += len(fb.Rows); return nil })
				if err != nil {
					b.Fatal(err)
				}
				for _, pb := range batches {
					if err := a.Add(pb); err != nil {
						b.Fatal(err)
					}
				}
				if err := a.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-c0)/float64(n)/float64(b.N), "cpu-ns/pkt")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n)/float64(b.N), "ns/pkt")
			if rows == 0 {
				b.Fatal("no rows")
			}
		})
	}
}

// cpuTime returns the process's user+system CPU time in ns (0 if unknown).
func cpuTime() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
