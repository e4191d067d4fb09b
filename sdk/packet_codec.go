package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/netguardian/netguardian/sdk/proto/netguardian/v1"
)

// A capture plugin's batch used to be unmarshalled by protobuf's generic
// code into fresh slices, handed to the aggregator and dropped: ~9 % of
// the core's CPU in analyze's profile, plus the collector's work on the
// garbage. The core's end of the capture stream now parses PacketBatch by
// hand into the columns of a recycled batch, and the pipeline hands the
// batch back (Recycle) once nothing holds it. The bytes on the wire are
// plain protobuf: plugins are unchanged, and a message this parser does
// not expect (raw frames) goes through the standard unmarshal.
// FuzzPacketBatchDecode checks that both parsers agree on any input.

// packetCodec is the gRPC codec of the core's capture streams.
type packetCodec struct{ std encoding.CodecV2 }

var capturePacketCodec = packetCodec{std: encoding.GetCodecV2("proto")}

// Name keeps the standard content-subtype: the plugin sees plain protobuf.
func (packetCodec) Name() string { return "proto" }

func (c packetCodec) Marshal(v any) (mem.BufferSlice, error) { return c.std.Marshal(v) }

func (c packetCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*PacketBatch)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decodePacketBatch(buf.ReadOnlyData(), b)
}

// batchColumns are the full-capacity column slices of a pooled batch
// (a batch's own columns may have been resliced, e.g. trimmed).
type batchColumns struct {
	ts                         []int64
	src, dst                   []byte
	sports, dports, lengths    []uint32
	protocols, tcpFlags, flags []byte
}

// freeBatches holds recycled batches. It is bounded, unlike a sync.Pool
// (which kept every batch of a full queue alive across a collection): a
// few batches cover what the core has in hand between receiving and
// recycling; more are left to the collector.
var freeBatches = make(chan *PacketBatch, 8)

// pooledBatch returns an empty batch, with recycled columns when one is free.
func pooledBatch() *PacketBatch {
	select {
	case b := <-freeBatches:
		b.emptyColumns()
		return b
	default:
		return &PacketBatch{cols: &batchColumns{}}
	}
}

// Recycle hands a batch received from a capture plugin back for reuse by a
// later one. The core calls it once nothing refers to the batch or its
// columns any more; the batch is empty afterwards. Batches made any other
// way are only emptied.
func (b *PacketBatch) Recycle() {
	if b.cols == nil {
		*b = PacketBatch{}
		return
	}
	b.emptyColumns()
	select {
	case freeBatches <- b:
	default:
	}
}

// emptyColumns empties a pooled batch, keeping the larger of each column's
// pooled storage and what it grew to (append may have moved it).
func (b *PacketBatch) emptyColumns() {
	c := b.cols
	c.ts, c.src, c.dst = grown(c.ts, b.Timestamps), grown(c.src, b.SrcAddrs), grown(c.dst, b.DstAddrs)
	c.sports, c.dports, c.lengths = grown(c.sports, b.SrcPorts), grown(c.dports, b.DstPorts), grown(c.lengths, b.Lengths)
	c.protocols, c.tcpFlags, c.flags = grown(c.protocols, b.Protocols), grown(c.tcpFlags, b.TCPFlags), grown(c.flags, b.Flags)
	*b = PacketBatch{
		cols: c, Timestamps: c.ts, SrcAddrs: c.src, DstAddrs: c.dst, SrcPorts: c.sports, DstPorts: c.dports,
		Protocols: c.protocols, Lengths: c.lengths, TCPFlags: c.tcpFlags, Flags: c.flags,
	}
}

// grown returns whichever of the pooled column and the batch's column has
// the larger backing array, as an empty slice.
func grown[T any](pooled, cur []T) []T {
	if cap(cur) > cap(pooled) {
		return cur[:0]
	}
	return pooled[:0]
}

// errNotColumnar marks a message the hand parser leaves to protobuf.
var errNotColumnar = errors.New("packet batch with raw frames")

// decodePacketBatch parses a PacketBatch message into b's columns
// (reused); the caller validates the result. Field semantics are protobuf's: repeated
// scalars packed or not, the last occurrence of a singular field wins,
// embedded messages merge, unknown fields and known fields of an
// unexpected wire type are skipped.
func decodePacketBatch(data []byte, b *PacketBatch) error {
	err := decodeColumns(data, b)
	if errors.Is(err, errNotColumnar) {
		var m pb.PacketBatch
		if err := proto.Unmarshal(data, &m); err != nil {
			return err
		}
		cols := b.cols
		*b = *packetsFromPBShared(&m)
		b.cols = cols
		return nil
	}
	return err
}

func decodeColumns(data []byte, b *PacketBatch) error {
	for len(data) > 0 {
		num, typ, v, rest, err := nextField(data)
		if err != nil {
			return err
		}
		data = rest
		switch {
		case num == 1 && typ == protowire.VarintType:
			b.FirstIndex, _ = protowire.ConsumeVarint(v)
		case num == 2 && typ == protowire.BytesType:
			if len(v)%8 != 0 {
				return errPacked
			}
			for i := 0; i < len(v); i += 8 {
				b.Timestamps = append(b.Timestamps, int64(binary.LittleEndian.Uint64(v[i:])))
			}
		case num == 2 && typ == protowire.Fixed64Type:
			b.Timestamps = append(b.Timestamps, int64(binary.LittleEndian.Uint64(v)))
		case num == 3 && typ == protowire.BytesType:
			b.SrcAddrs = append(b.SrcAddrs[:0], v...)
		case num == 4 && typ == protowire.BytesType:
			b.DstAddrs = append(b.DstAddrs[:0], v...)
		case (num == 5 || num == 6 || num == 8) && typ == protowire.BytesType:
			if len(v)%4 != 0 {
				return errPacked
			}
			col := fixed32Column(b, num)
			for i := 0; i < len(v); i += 4 {
				*col = append(*col, binary.LittleEndian.Uint32(v[i:]))
			}
		case (num == 5 || num == 6 || num == 8) && typ == protowire.Fixed32Type:
			col := fixed32Column(b, num)
			*col = append(*col, binary.LittleEndian.Uint32(v))
		case num == 7 && typ == protowire.BytesType:
			b.Protocols = append(b.Protocols[:0], v...)
		case num == 9 && typ == protowire.BytesType:
			b.TCPFlags = append(b.TCPFlags[:0], v...)
		case num == 10 && typ == protowire.BytesType:
			b.Flags = append(b.Flags[:0], v...)
		case num == 11 && typ == protowire.BytesType:
			return errNotColumnar
		case num == 12 && typ == protowire.BytesType:
			if err := decodeCounters(v, &b.Counters); err != nil {
				return err
			}
		}
	}
	return nil
}

// nextField splits off data's first field: its number, its wire type, its
// value (for BytesType the bytes after the length; otherwise the encoded
// value) and what follows. Field numbers past the largest valid one are
// refused, as protobuf's unmarshal does (protowire.ConsumeTag takes them).
func nextField(data []byte) (num protowire.Number, typ protowire.Type, val, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(data)
	switch {
	case n < 0:
		return 0, 0, nil, nil, protowire.ParseError(n)
	case num > protowire.MaxValidNumber:
		return 0, 0, nil, nil, fmt.Errorf("invalid field number %d", num)
	}
	data = data[n:]
	if typ == protowire.BytesType {
		val, n = protowire.ConsumeBytes(data)
	} else {
		n = protowire.ConsumeFieldValue(num, typ, data)
		if n >= 0 {
			val = data[:n]
		}
	}
	if n < 0 {
		return 0, 0, nil, nil, protowire.ParseError(n)
	}
	return num, typ, val, data[n:], nil
}

var errPacked = errors.New("packed field length is not a multiple of its element size")

func fixed32Column(b *PacketBatch, num protowire.Number) *[]uint32 {
	switch num {
	case 5:
		return &b.SrcPorts
	case 6:
		return &b.DstPorts
	}
	return &b.Lengths
}

// decodeCounters merges a CaptureCounters message into c.
func decodeCounters(data []byte, c *CaptureCounters) error {
	for len(data) > 0 {
		num, typ, v, rest, err := nextField(data)
		if err != nil {
			return err
		}
		data = rest
		if typ == protowire.VarintType && num >= 1 && num <= 6 {
			x, _ := protowire.ConsumeVarint(v)
			*[...]*uint64{&c.Packets, &c.BytesRead, &c.BytesTotal, &c.KernelDrops, &c.DecodeErrors, &c.NonIP}[num-1] = x
		}
	}
	return nil
}

// recvPacketBatch reads the next message of a capture stream into a pooled
// batch.
func recvPacketBatch(recv func(any) error) (*PacketBatch, error) {
	b := pooledBatch()
	if err := recv(b); err != nil {
		b.Recycle()
		return nil, err
	}
	return b, nil
}
