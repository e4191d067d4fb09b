// Package pcapgen writes reproducible synthetic captures for benchmarks:
// Ethernet/IPv4 frames, mostly TCP with UDP (some DNS) and ICMP, 10 µs
// apart in packet time. Like real traffic it is flow-shaped: each source
// talks to a few peers on a few ports; a small share of packets comes from
// scanners that probe random destinations and ports (the attack traffic).
package pcapgen

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// Options shape the traffic.
type Options struct {
	Packets int
	Sources int // distinct source addresses (default 4096)
	Dests   int // distinct destination addresses (default 256)
	Seed    uint64
	// Start is the first packet's time (default 2026-01-01 UTC).
	Start time.Time
	// Gap is the packet-time distance between packets (default 10µs).
	Gap time.Duration
	// PayloadBytes pads TCP segments to this payload size (default 0).
	PayloadBytes int
	// ScanPermille is the share of packets, in thousandths, sent by the
	// scanners (default 10; negative = none).
	ScanPermille int
}

const scanners = 8 // the scanners are the last sources

// Write writes the capture to path.
func Write(path string, o Options) error {
	if o.Sources <= 0 {
		o.Sources = 4096
	}
	if o.Dests <= 0 {
		o.Dests = 256
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Gap <= 0 {
		o.Gap = 10 * time.Microsecond
	}
	if o.ScanPermille == 0 {
		o.ScanPermille = 10
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriterNanos(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	frame := make([]byte, 14+20+40+o.PayloadBytes)
	copy(frame, []byte{2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00})
	ip := frame[14:34]
	copy(ip, []byte{0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 0, 0, 0, 10, 0, 0, 0, 192, 168, 0, 0})
	for i := 0; i < o.Packets; i++ {
		src := rng.IntN(o.Sources - scanners)
		// A source's peers: 4 destinations derived from its number.
		dst := (src*31 + rng.IntN(4)*7) % o.Dests
		scan := rng.IntN(1000) < o.ScanPermille
		if scan {
			src = o.Sources - 1 - rng.IntN(scanners)
			dst = rng.IntN(o.Dests)
		}
		l4 := frame[34:]
		var size int
		r := rng.IntN(20)
		if scan {
			r = 0
		}
		switch {
		case r < 14: // TCP with 20 bytes of options
			ip[9] = 6
			// Each source talks from a few ports to a few services, as real flows do.
			binary.BigEndian.PutUint16(l4[0:], uint16(1024+src*7+rng.IntN(4)))
			binary.BigEndian.PutUint16(l4[2:], []uint16{80, 443, 22, 8080}[rng.IntN(4)])
			l4[12], l4[13] = 10<<4, []byte{0x02, 0x12, 0x10, 0x18, 0x11, 0x04}[rng.IntN(6)]
			if scan { // a SYN to a random port
				binary.BigEndian.PutUint16(l4[2:], uint16(1+rng.IntN(65535)))
				l4[13] = 0x02
			}
			size = 40 + o.PayloadBytes
		case r < 19: // UDP, a fifth of it DNS queries
			ip[9] = 17
			binary.BigEndian.PutUint16(l4[0:], uint16(30000+src%3000))
			dport := uint16(123)
			if r == 18 {
				dport = 53
				l4[8+2] = 0x01
			}
			binary.BigEndian.PutUint16(l4[2:], dport)
			binary.BigEndian.PutUint16(l4[4:], 20)
			size = 20
		default: // ICMP echo request
			ip[9] = 1
			l4[0], l4[1] = 8, 0
			size = 16
		}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+size))
		ip[13], ip[14], ip[15] = byte(src>>16), byte(src>>8), byte(src)
		ip[18], ip[19] = byte(dst>>8), byte(dst)
		b := frame[:34+size]
		ci := gopacket.CaptureInfo{Timestamp: o.Start.Add(time.Duration(i) * o.Gap), CaptureLength: len(b), Length: len(b)}
		if err := w.WritePacket(ci, b); err != nil {
			return fmt.Errorf("pcapgen: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}
