package sdk

import (
	"fmt"
	"net/netip"
)

// TCP flag bits as they appear in the TCP header.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
	TCPUrg uint8 = 0x20
	TCPEce uint8 = 0x40
	TCPCwr uint8 = 0x80
)

// IP protocol numbers the features distinguish.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
)

// PacketFlags carries facts about a packet that the decoder saw beyond its
// header fields.
type PacketFlags uint8

const (
	PacketIPv6        PacketFlags = 1 << iota // network layer is IPv6
	PacketDNSQuery                            // a DNS message with QR=0
	PacketDNSResponse                         // a DNS message with QR=1
	PacketFragment                            // an IP fragment other than the first
	PacketNonIP                               // no IP layer (ARP, LLDP...); addresses are zero
)

// Packet is one decoded packet summary. Capture plugins fill one (reused)
// Packet per frame and hand it to PacketWriter.Write.
type Packet struct {
	// Timestamp is the capture time in nanoseconds since the Unix epoch.
	Timestamp int64
	// Src and Dst are 16-byte addresses; IPv4 is stored as ::ffff:a.b.c.d.
	Src, Dst [16]byte
	// SrcPort and DstPort are TCP/UDP ports; for ICMP they hold type and code.
	SrcPort, DstPort uint16
	Protocol         uint8
	TCPFlags         uint8
	Flags            PacketFlags
	// Length is the frame's length on the wire.
	Length uint32
	// Frame is the raw frame; only copied when a sink asked for frames.
	Frame []byte
}

// SetAddrs stores src and dst in their 16-byte form.
func (p *Packet) SetAddrs(src, dst netip.Addr) {
	p.Src = src.As16()
	p.Dst = dst.As16()
}

// PacketBatch is a columnar batch of packet summaries: index i of every
// column describes packet FirstIndex+i of the input.
type PacketBatch struct {
	// FirstIndex is the input index of the batch's first packet.
	FirstIndex uint64
	Timestamps []int64 // ns since the epoch
	SrcAddrs   []byte  // 16 bytes per packet
	DstAddrs   []byte  // 16 bytes per packet
	SrcPorts   []uint32
	DstPorts   []uint32
	Protocols  []byte
	Lengths    []uint32
	TCPFlags   []byte
	Flags      []byte
	// Frames holds raw frames when they were asked for, else it is empty.
	Frames [][]byte
	// Counters are the capture's cumulative counters when the batch was sent.
	Counters CaptureCounters

	cols *batchColumns // pooled storage of a received batch (see Recycle)
}

// CaptureCounters are a capture plugin's cumulative counters.
type CaptureCounters struct {
	Packets      uint64 // packets read from the source
	BytesRead    uint64 // bytes of input consumed (files: compressed offset)
	BytesTotal   uint64 // size of the input when known (files), else 0
	KernelDrops  uint64 // packets the kernel dropped before we saw them
	DecodeErrors uint64 // frames that could not be decoded
	NonIP        uint64 // frames without an IP layer
}

// Len returns the number of packets in the batch.
func (b *PacketBatch) Len() int { return len(b.Timestamps) }

// Src returns packet i's source address (IPv4 unmapped).
func (b *PacketBatch) Src(i int) netip.Addr { return addrAt(b.SrcAddrs, i) }

// Dst returns packet i's destination address (IPv4 unmapped).
func (b *PacketBatch) Dst(i int) netip.Addr { return addrAt(b.DstAddrs, i) }

func addrAt(col []byte, i int) netip.Addr {
	return netip.AddrFrom16([16]byte(col[i*16 : i*16+16])).Unmap()
}

// Append adds p as the batch's last row. The frame is referenced, not copied.
func (b *PacketBatch) Append(p *Packet) {
	b.Timestamps = append(b.Timestamps, p.Timestamp)
	b.SrcAddrs = append16(b.SrcAddrs, &p.Src)
	b.DstAddrs = append16(b.DstAddrs, &p.Dst)
	b.SrcPorts = append(b.SrcPorts, uint32(p.SrcPort))
	b.DstPorts = append(b.DstPorts, uint32(p.DstPort))
	b.Protocols = append(b.Protocols, p.Protocol)
	b.Lengths = append(b.Lengths, p.Length)
	b.TCPFlags = append(b.TCPFlags, p.TCPFlags)
	b.Flags = append(b.Flags, byte(p.Flags))
	if p.Frame != nil {
		b.Frames = append(b.Frames, p.Frame)
	}
}

// append16 appends a 16-byte address as one word copy; append's
// variadic form calls memmove for every address.
func append16(col []byte, a *[16]byte) []byte {
	n := len(col)
	if cap(col)-n < 16 {
		return append(col, a[:]...)
	}
	col = col[:n+16]
	*(*[16]byte)(col[n:]) = *a
	return col
}

// Packet copies row i into p (frame included when present).
func (b *PacketBatch) Packet(i int, p *Packet) {
	p.Timestamp = b.Timestamps[i]
	copy(p.Src[:], b.SrcAddrs[i*16:])
	copy(p.Dst[:], b.DstAddrs[i*16:])
	p.SrcPort = uint16(b.SrcPorts[i])
	p.DstPort = uint16(b.DstPorts[i])
	p.Protocol = b.Protocols[i]
	p.Length = b.Lengths[i]
	p.TCPFlags = b.TCPFlags[i]
	p.Flags = PacketFlags(b.Flags[i])
	p.Frame = nil
	if i < len(b.Frames) {
		p.Frame = b.Frames[i]
	}
}

// Reset empties the batch, keeping its capacity.
func (b *PacketBatch) Reset() {
	b.FirstIndex = 0
	b.Timestamps = b.Timestamps[:0]
	b.SrcAddrs = b.SrcAddrs[:0]
	b.DstAddrs = b.DstAddrs[:0]
	b.SrcPorts = b.SrcPorts[:0]
	b.DstPorts = b.DstPorts[:0]
	b.Protocols = b.Protocols[:0]
	b.Lengths = b.Lengths[:0]
	b.TCPFlags = b.TCPFlags[:0]
	b.Flags = b.Flags[:0]
	b.Frames = b.Frames[:0]
	b.Counters = CaptureCounters{}
}

// Validate checks that every column has the batch's length, so a plugin
// that sends a malformed batch is caught at the boundary.
func (b *PacketBatch) Validate() error {
	n := len(b.Timestamps)
	switch {
	case len(b.SrcAddrs) != 16*n, len(b.DstAddrs) != 16*n:
		return errBatch("address columns", n)
	case len(b.SrcPorts) != n, len(b.DstPorts) != n:
		return errBatch("port columns", n)
	case len(b.Protocols) != n, len(b.Lengths) != n, len(b.TCPFlags) != n, len(b.Flags) != n:
		return errBatch("protocol/length/flag columns", n)
	case len(b.Frames) != 0 && len(b.Frames) != n:
		return errBatch("frames column", n)
	}
	return nil
}

func errBatch(what string, n int) error {
	return fmt.Errorf("malformed packet batch: %s do not match %d timestamps", what, n)
}
