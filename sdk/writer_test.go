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
