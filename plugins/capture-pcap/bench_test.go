package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/netguardian/netguardian/plugins/capture-pcap/internal/pcapfile"
	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/decode"
)

const benchPackets = 1_000_000

// genBenchPcap writes n Ethernet frames: 70% TCP, 25% UDP (a tenth of it
// DNS), 5% ICMP, from 4096 sources to 256 destinations.
func genBenchPcap(tb testing.TB, n int) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "bench.pcap")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		tb.Fatal(err)
	}
	frame := make([]byte, 74)
	copy(frame, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00})
	ip := frame[14:34]
	copy(ip, []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 0, 0, 0, 10, 0, 0, 0, 192, 168, 0, 0})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		l4 := frame[34:]
		var size int
		switch r := i % 20; {
		case r < 14: // TCP, 20-byte header + 20 bytes of options (SYN-like)
			ip[9] = 6
			binary.BigEndian.PutUint16(l4[0:], uint16(1024+i%50000))
			binary.BigEndian.PutUint16(l4[2:], []uint16{80, 443, 22, 8080}[i%4])
			l4[12], l4[13] = 10<<4, []byte{0x02, 0x12, 0x10, 0x18}[i%4]
			size = 40
		case r < 19: // UDP
			ip[9] = 17
			binary.BigEndian.PutUint16(l4[0:], uint16(30000+i%3000))
			dport := uint16(123)
			if r == 18 {
				dport = 53
				l4[8+2] = 0x01 // DNS query flags
			}
			binary.BigEndian.PutUint16(l4[2:], dport)
			binary.BigEndian.PutUint16(l4[4:], 20)
			size = 20
		default: // ICMP echo
			ip[9] = 1
			l4[0], l4[1] = 8, 0
			size = 16
		}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+size))
		ip[14], ip[15] = byte(i>>8&0x0f), byte(i)
		ip[19] = byte(i % 251)
		b := frame[:34+size]
		ci := gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 10 * time.Microsecond), CaptureLength: len(b), Length: len(b)}
		if err := w.WritePacket(ci, b); err != nil {
			tb.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return path
}

// BenchmarkReplay: reader + decoder + PacketWriter (batches of 1024 handed
// to a send function that discards them) over a 1M-packet pcap. One
// iteration is one whole replay.
func BenchmarkReplay(b *testing.B) {
	path := genBenchPcap(b, benchPackets)
	p := &pcapCapture{}
	js, _ := json.Marshal(map[string]any{"files": []string{path}})
	if err := p.Configure(context.Background(), sdk.Config{JSON: js}); err != nil {
		b.Fatal(err)
	}
	var got int
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		got = 0
		w := sdk.NewPacketWriter(sdk.Runtime{}, 0, func(pb *sdk.PacketBatch) error { got += pb.Len(); return nil })
		if err := p.Capture(context.Background(), 0, w); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got != benchPackets {
		b.Fatalf("%d packets delivered, want %d", got, benchPackets)
	}
	reportRates(b, cpu0)
}

// BenchmarkReadDecode: reader + decoder only, the part the capture target
// (≥ 5M packets/s on one core) is about.
func BenchmarkReadDecode(b *testing.B) {
	path := genBenchPcap(b, benchPackets)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		c, err := openCapture(path)
		if err != nil {
			b.Fatal(err)
		}
		dec := decode.NewDecoder(decode.LinkTypeEthernet)
		var (
			rec pcapfile.Record
			pkt sdk.Packet
			ci  gopacket.CaptureInfo
			n   int
		)
		for {
			if err := c.r.Next(&rec); err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
			ci.Timestamp = time.Unix(0, rec.Timestamp)
			ci.CaptureLength, ci.Length = len(rec.Data), rec.Length
			if dec.Decode(rec.Data, ci, &pkt) == nil {
				n++
			}
		}
		c.Close()
		if n != benchPackets {
			b.Fatalf("%d packets decoded", n)
		}
	}
	reportRates(b, cpu0)
}

// reportRates reports packets/s by wall time and, since a busy shared
// machine stretches wall time, also the process CPU time per packet
// (getrusage, user+system) and the packets/s one core would give at it.
func reportRates(b *testing.B, cpu0 time.Duration) {
	n := float64(benchPackets) * float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "packets/s")
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/packet")
	b.ReportMetric(n/cpu.Seconds(), "packets/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
