package sdk

import (
	"net/netip"
	"testing"
	"time"
)

// A batch with raw frames is sent once its frames reach MaxBatchFrameBytes,
// however many packets BatchSize allows; without frames only BatchSize
// counts.
func TestPacketWriterBoundsFrameBytes(t *testing.T) {
	frame := make([]byte, 1500)
	for _, frames := range []bool{true, false} {
		var sizes []int
		w := NewPacketWriter(Runtime{BatchSize: 100000, FlushInterval: time.Hour, IncludeFrames: frames}, 0, func(b *PacketBatch) error {
			if err := b.Validate(); err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, b.Len())
			return nil
		})
		p := Packet{Src: netip.MustParseAddr("10.0.0.1").As16(), Dst: netip.MustParseAddr("10.0.0.2").As16()}
		for range 2000 {
			p.Frame = frame
			if err := w.Write(&p); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		perBatch := (MaxBatchFrameBytes + len(frame) - 1) / len(frame) // the frame that reaches the bound is in
		want := []int{perBatch, perBatch, 2000 - 2*perBatch}
		if !frames {
			want = []int{2000}
		}
		if len(sizes) != len(want) || sizes[0] != want[0] || sizes[len(sizes)-1] != want[len(want)-1] {
			t.Errorf("frames %v: batches of %v packets, want %v", frames, sizes, want)
		}
	}
}

// BenchmarkPacketWriter: the per-packet cost a capture plugin pays to hand
// a packet to the core, batching included (sending excluded).
func BenchmarkPacketWriter(b *testing.B) {
	w := NewPacketWriter(Runtime{}, 0, func(*PacketBatch) error { return nil })
	p := Packet{Timestamp: 1, Src: [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}, Dst: [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 2},
		SrcPort: 40000, DstPort: 443, Protocol: ProtoTCP, TCPFlags: TCPAck, Length: 1500}
	b.ReportAllocs()
	for b.Loop() {
		p.Timestamp++
		if err := w.Write(&p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
