package sdk

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/netguardian/netguardian/sdk/proto/netguardian/v1"
)

func sampleBatchPB(n int, frames bool) *pb.PacketBatch {
	w := NewPacketWriter(Runtime{BatchSize: n + 1, IncludeFrames: frames}, 42, func(*PacketBatch) error { return nil })
	for i := range n {
		p := Packet{Timestamp: 1e18 + int64(i)*1000, SrcPort: uint16(i), DstPort: 443, Protocol: ProtoTCP, TCPFlags: TCPSyn,
			Length: uint32(60 + i), Flags: PacketFlags(i % 3)}
		p.Src[15], p.Dst[15] = byte(i), byte(i+1)
		if frames {
			p.Frame = []byte{byte(i), 1, 2}
		}
		if err := w.Write(&p); err != nil {
			panic(err)
		}
	}
	w.cur.Counters = CaptureCounters{Packets: 7, BytesRead: 8, BytesTotal: 9, KernelDrops: 10, DecodeErrors: 11, NonIP: 12}
	return packetsToPB(w.cur)
}

// stdDecode is what protobuf's own unmarshal makes of data.
func stdDecode(data []byte) (*PacketBatch, error) {
	var m pb.PacketBatch
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return packetsFromPBShared(&m), nil
}

func sameBatch(t *testing.T, data []byte, got, want *PacketBatch) {
	t.Helper()
	norm := func(b *PacketBatch) PacketBatch {
		c := *b
		c.cols = nil
		for _, col := range []*[]byte{&c.SrcAddrs, &c.DstAddrs, &c.Protocols, &c.TCPFlags, &c.Flags} {
			if len(*col) == 0 {
				*col = nil
			}
		}
		if len(c.Timestamps) == 0 {
			c.Timestamps = nil
		}
		for _, col := range []*[]uint32{&c.SrcPorts, &c.DstPorts, &c.Lengths} {
			if len(*col) == 0 {
				*col = nil
			}
		}
		if len(c.Frames) == 0 {
			c.Frames = nil
		}
		return c
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("message % x\nhand parser: %+v\nprotobuf:    %+v", data, g, w)
	}
}

// The hand parser of the core's capture stream gives what protobuf gives,
// for well-formed batches and for anything else (errors included).
func FuzzPacketBatchDecode(f *testing.F) {
	for _, m := range []*pb.PacketBatch{sampleBatchPB(3, false), sampleBatchPB(1, true), {}} {
		data, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Unpacked repeated fields, a repeated singular field, an unknown
	// field and a known field with the wrong wire type are all valid.
	var odd []byte
	odd = protowire.AppendTag(odd, 2, protowire.Fixed64Type)
	odd = protowire.AppendFixed64(odd, 5)
	odd = protowire.AppendTag(odd, 5, protowire.Fixed32Type)
	odd = protowire.AppendFixed32(odd, 80)
	odd = protowire.AppendTag(odd, 7, protowire.BytesType)
	odd = protowire.AppendBytes(odd, []byte{1, 2})
	odd = protowire.AppendTag(odd, 7, protowire.BytesType)
	odd = protowire.AppendBytes(odd, []byte{6})
	odd = protowire.AppendTag(odd, 99, protowire.VarintType)
	odd = protowire.AppendVarint(odd, 1)
	odd = protowire.AppendTag(odd, 3, protowire.VarintType)
	odd = protowire.AppendVarint(odd, 1)
	f.Add(odd)
	f.Fuzz(func(t *testing.T, data []byte) {
		want, werr := stdDecode(data)
		got := pooledBatch()
		defer got.Recycle()
		gerr := decodePacketBatch(data, got)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("message % x: hand parser error %v, protobuf error %v", data, gerr, werr)
		}
		if gerr == nil {
			sameBatch(t, data, got, want)
		}
	})
}

// A recycled batch's columns are reused: decoding the next one allocates
// nothing, and Recycle hands it to the next batch received.
func TestRecycledBatchDecodesWithoutAllocating(t *testing.T) {
	data, err := proto.Marshal(sampleBatchPB(512, false))
	if err != nil {
		t.Fatal(err)
	}
	b := pooledBatch()
	if err := decodePacketBatch(data, b); err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(); err != nil || b.Len() != 512 || b.FirstIndex != 42 || b.Counters.NonIP != 12 {
		t.Fatalf("decoded %d packets from %d (%+v), err %v", b.Len(), b.FirstIndex, b.Counters, err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		b.emptyColumns()
		if err := decodePacketBatch(data, b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per recycled decode, want 0", allocs)
	}
	want, _ := stdDecode(data)
	sameBatch(t, data, b, want)

	// Recycle hands the storage to the next batch received.
	for len(freeBatches) > 0 {
		<-freeBatches
	}
	b.Recycle()
	if b.Len() != 0 {
		t.Fatalf("a recycled batch still holds %d packets", b.Len())
	}
	if next := pooledBatch(); next != b || cap(next.Timestamps) < 512 {
		t.Fatalf("the next batch did not reuse the recycled one (same: %v, capacity %d)", next == b, cap(next.Timestamps))
	}
}

// A batch with raw frames goes through protobuf's unmarshal and arrives
// whole; a truncated message is an error.
func TestPacketBatchDecodeFramesAndErrors(t *testing.T) {
	data, err := proto.Marshal(sampleBatchPB(4, true))
	if err != nil {
		t.Fatal(err)
	}
	b := pooledBatch()
	if err := decodePacketBatch(data, b); err != nil {
		t.Fatal(err)
	}
	if len(b.Frames) != 4 || b.Frames[3][0] != 3 || b.Len() != 4 {
		t.Fatalf("frames %v, %d packets", b.Frames, b.Len())
	}
	b.Recycle()
	b = pooledBatch()
	if err := decodePacketBatch(data[:len(data)-3], b); err == nil {
		t.Fatal("a truncated message decoded without error")
	}
}
