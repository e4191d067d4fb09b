package decode

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/gopacket"

	"github.com/netguardian/netguardian/sdk"
)

// The frames below are assembled byte by byte from the RFC header layouts
// (not with gopacket), so the expected values are hand-computed.

var (
	macA = []byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = []byte{0x02, 0, 0, 0, 0, 0x0b}
)

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func eth(etype uint16) []byte { return cat(macB, macA, be16(etype)) }

func vlan(vid, etype uint16) []byte { return cat(be16(vid), be16(etype)) }

// ipv4 header without options; total = 20 + payloadLen; fragField is the
// flags+offset word (offset in 8-byte units).
func ipv4(proto byte, src, dst string, payloadLen int, fragField uint16) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	h := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, proto, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+payloadLen))
	binary.BigEndian.PutUint16(h[6:], fragField)
	return cat(h, s[:], d[:])
}

func ipv6(next byte, src, dst string, payloadLen int) []byte {
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	h := []byte{0x60, 0, 0, 0, 0, 0, next, 64}
	binary.BigEndian.PutUint16(h[4:], uint16(payloadLen))
	return cat(h, s[:], d[:])
}

func tcp(sport, dport uint16, flags byte, payload []byte) []byte {
	h := cat(be16(sport), be16(dport), be32(1000), be32(0), []byte{5 << 4, flags}, be16(65535), be16(0), be16(0))
	return cat(h, payload)
}

func udp(sport, dport uint16, payload []byte) []byte {
	return cat(be16(sport), be16(dport), be16(uint16(8+len(payload))), be16(0), payload)
}

// dnsHeader: id, flags word, qd/an/ns/ar counts.
func dnsHeader(flags, qd, an uint16) []byte {
	return cat(be16(0xbeef), be16(flags), be16(qd), be16(an), be16(0), be16(0))
}

func mapped(s string) [16]byte { return netip.MustParseAddr(s).As16() }

var ts = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

type tc struct {
	name  string
	link  LinkType
	frame []byte
	wire  int // 0: len(frame)
	want  sdk.Packet
	err   error
}

func cases() []tc {
	syn := tcp(40000, 80, sdk.TCPSyn, nil)
	dnsQ := udp(5353, 53, cat(dnsHeader(0x0100, 1, 0), []byte{0})) // RD set, QR=0
	dnsR := udp(53, 5353, cat(dnsHeader(0x8180, 1, 1), []byte{0})) // QR=1
	dnsTCPQ := tcp(40001, 53, sdk.TCPPsh|sdk.TCPAck, cat(be16(13), dnsHeader(0x0100, 1, 0), []byte{0}))
	icmpEcho := []byte{8, 0, 0xf7, 0xff, 0, 1, 0, 0} // type 8 code 0
	icmp6Unreach := []byte{1, 4, 0, 0, 0, 0, 0, 0}   // type 1 code 4 (port unreachable)
	tsNS := ts.UnixNano()
	v4 := func(src, dst string, sp, dp uint16, proto, flags byte, f sdk.PacketFlags, length uint32) sdk.Packet {
		return sdk.Packet{Timestamp: tsNS, Src: mapped("::ffff:" + src), Dst: mapped("::ffff:" + dst), SrcPort: sp, DstPort: dp, Protocol: proto, TCPFlags: flags, Flags: f, Length: length}
	}
	v6 := func(src, dst string, sp, dp uint16, proto byte, f sdk.PacketFlags, length uint32) sdk.Packet {
		return sdk.Packet{Timestamp: tsNS, Src: mapped(src), Dst: mapped(dst), SrcPort: sp, DstPort: dp, Protocol: proto, Flags: f | sdk.PacketIPv6, Length: length}
	}
	v6tcp := func(src, dst string, sp, dp uint16, flags byte, length uint32) sdk.Packet {
		p := v6(src, dst, sp, dp, 6, 0, length)
		p.TCPFlags = flags
		return p
	}
	nonIP := func(length uint32) sdk.Packet {
		return sdk.Packet{Timestamp: tsNS, Flags: sdk.PacketNonIP, Length: length}
	}
	arp := cat(eth(0x0806), be16(1), be16(0x0800), []byte{6, 4}, be16(1), macA, []byte{10, 0, 0, 1}, make([]byte, 6), []byte{10, 0, 0, 2})
	hbh := []byte{44, 0, 5, 2, 0, 0, 1, 0}             // next=fragment, len 0 (8 bytes), router alert + PadN
	fragFirst := []byte{17, 0, 0x00, 0x01, 0, 0, 0, 7} // next=UDP, offset 0, M=1
	fragLater := []byte{17, 0, 0x00, 0xb8, 0, 0, 0, 7} // offset 23 (x8 = 184 bytes), M=0
	dst6 := []byte{6, 0, 1, 4, 0, 0, 0, 0}             // destination options, next=TCP, PadN
	return []tc{
		{name: "eth ipv4 tcp syn", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(6, "10.1.2.3", "10.9.8.7", len(syn), 0), syn),
			want: v4("10.1.2.3", "10.9.8.7", 40000, 80, 6, sdk.TCPSyn, 0, 54)},
		{name: "wire length from capture info", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(6, "10.1.2.3", "10.9.8.7", len(syn), 0), syn), wire: 1514,
			want: v4("10.1.2.3", "10.9.8.7", 40000, 80, 6, sdk.TCPSyn, 0, 1514)},
		{name: "ethernet padding ignored", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(17, "192.0.2.1", "192.0.2.2", 8, 0), udp(1, 2, nil), make([]byte, 18)),
			want: v4("192.0.2.1", "192.0.2.2", 1, 2, 17, 0, 0, 60)},
		{name: "vlan", link: LinkTypeEthernet, frame: cat(eth(0x8100), vlan(100, 0x0800), ipv4(17, "10.0.0.1", "10.0.0.2", len(dnsQ), 0), dnsQ),
			want: v4("10.0.0.1", "10.0.0.2", 5353, 53, 17, 0, sdk.PacketDNSQuery, 14+4+20+21)},
		{name: "qinq", link: LinkTypeEthernet, frame: cat(eth(0x88a8), vlan(10, 0x8100), vlan(20, 0x0800), ipv4(17, "10.0.0.2", "10.0.0.1", len(dnsR), 0), dnsR),
			want: v4("10.0.0.2", "10.0.0.1", 53, 5353, 17, 0, sdk.PacketDNSResponse, 14+8+20+21)},
		{name: "dns over tcp query", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(6, "10.0.0.1", "10.0.0.53", len(dnsTCPQ), 0), dnsTCPQ),
			want: v4("10.0.0.1", "10.0.0.53", 40001, 53, 6, sdk.TCPPsh|sdk.TCPAck, sdk.PacketDNSQuery, 14+20+20+15)},
		{name: "tcp port 53 continuation is not dns", link: LinkTypeEthernet,
			frame: cat(eth(0x0800), ipv4(6, "10.0.0.53", "10.0.0.1", 20+16, 0), tcp(53, 40001, sdk.TCPAck, cat(be16(0x1234), be16(0x7fff), be16(0x7fff), make([]byte, 10)))),
			want:  v4("10.0.0.53", "10.0.0.1", 53, 40001, 6, sdk.TCPAck, 0, 14+20+20+16)},
		{name: "udp 53 short payload is not dns", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(17, "10.0.0.1", "10.0.0.2", 8+4, 0), udp(1000, 53, []byte{1, 2, 3, 4})),
			want: v4("10.0.0.1", "10.0.0.2", 1000, 53, 17, 0, 0, 14+20+12)},
		{name: "ipv4 options (record route) then udp", link: LinkTypeEthernet, frame: func() []byte {
			h := ipv4(17, "10.0.0.3", "10.0.0.4", 8+8, 0)
			h[0] = 0x47 // IHL 7: 8 bytes of options
			binary.BigEndian.PutUint16(h[2:], 28+8+8)
			return cat(eth(0x0800), h, []byte{7, 7, 4, 0, 0, 0, 0, 0}, udp(6000, 6001, make([]byte, 8)))
		}(), want: v4("10.0.0.3", "10.0.0.4", 6000, 6001, 17, 0, 0, 58)},
		{name: "icmp echo", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(1, "10.0.0.1", "10.0.0.2", 8, 0), icmpEcho),
			want: v4("10.0.0.1", "10.0.0.2", 8, 0, 1, 0, 0, 42)},
		{name: "ipv4 first fragment has ports", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(17, "10.0.0.1", "10.0.0.2", 16, 0x2000), udp(7, 9, make([]byte, 8))),
			want: v4("10.0.0.1", "10.0.0.2", 7, 9, 17, 0, 0, 50)},
		{name: "ipv4 later fragment", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(17, "10.0.0.1", "10.0.0.2", 16, 0x0002), udp(7, 9, make([]byte, 8))),
			want: v4("10.0.0.1", "10.0.0.2", 0, 0, 17, 0, sdk.PacketFragment, 50)},
		{name: "ipv4 tunnel not entered", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(4, "10.0.0.1", "10.0.0.2", 28, 0), ipv4(17, "172.16.0.1", "172.16.0.2", 8, 0), udp(1, 2, nil)),
			want: v4("10.0.0.1", "10.0.0.2", 0, 0, 4, 0, 0, 62)},
		{name: "tcp options cut by snaplen keep ports and flags", link: LinkTypeEthernet,
			frame: cat(eth(0x0800), ipv4(6, "10.0.0.1", "10.0.0.2", 40, 0), func() []byte {
				h := tcp(40000, 80, sdk.TCPSyn, []byte{2, 4, 5, 0xb4})
				h[12] = 10 << 4 // 40-byte header, 20 bytes of options, only 4 captured
				return h
			}()), wire: 74,
			want: v4("10.0.0.1", "10.0.0.2", 40000, 80, 6, sdk.TCPSyn, 0, 74)},
		{name: "truncated tcp header gives ip summary", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(6, "10.0.0.1", "10.0.0.2", 20, 0), syn[:10]), wire: 54,
			want: v4("10.0.0.1", "10.0.0.2", 0, 0, 6, 0, 0, 54)},
		{name: "ipv4 header only (snaplen 34)", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(6, "10.0.0.1", "10.0.0.2", 20, 0)), wire: 54,
			want: v4("10.0.0.1", "10.0.0.2", 0, 0, 6, 0, 0, 54)},
		{name: "arp is non-ip", link: LinkTypeEthernet, frame: arp, want: nonIP(42)},
		{name: "ipv6 udp dns", link: LinkTypeEthernet, frame: cat(eth(0x86dd), ipv6(17, "2001:db8::1", "2001:db8::53", len(dnsQ)), dnsQ),
			want: v6("2001:db8::1", "2001:db8::53", 5353, 53, 17, sdk.PacketDNSQuery, 14+40+21)},
		{name: "ipv6 icmpv6", link: LinkTypeEthernet, frame: cat(eth(0x86dd), ipv6(58, "fe80::1", "fe80::2", 8), icmp6Unreach),
			want: v6("fe80::1", "fe80::2", 1, 4, 58, 0, 62)},
		{name: "ipv6 hop-by-hop + first fragment", link: LinkTypeEthernet, frame: cat(eth(0x86dd), ipv6(0, "2001:db8::1", "2001:db8::2", 8+8+16), hbh, fragFirst, udp(1111, 2222, make([]byte, 8))),
			want: v6("2001:db8::1", "2001:db8::2", 1111, 2222, 17, 0, 14+40+32)},
		{name: "ipv6 later fragment", link: LinkTypeEthernet, frame: cat(eth(0x86dd), ipv6(44, "2001:db8::1", "2001:db8::2", 8+16), fragLater, make([]byte, 16)),
			want: v6("2001:db8::1", "2001:db8::2", 0, 0, 17, sdk.PacketFragment, 14+40+24)},
		{name: "ipv6 destination options then tcp", link: LinkTypeEthernet, frame: cat(eth(0x86dd), ipv6(60, "2001:db8::1", "2001:db8::2", 8+20), dst6, tcp(1, 443, sdk.TCPRst, nil)),
			want: v6tcp("2001:db8::1", "2001:db8::2", 1, 443, sdk.TCPRst, 14+40+28)},
		{name: "linux sll", link: LinkTypeLinuxSLL, frame: cat(be16(0), be16(1), be16(6), macA, []byte{0, 0}, be16(0x0800), ipv4(6, "10.0.0.1", "10.0.0.2", 20, 0), syn),
			want: v4("10.0.0.1", "10.0.0.2", 40000, 80, 6, sdk.TCPSyn, 0, 56)},
		{name: "linux sll2", link: LinkTypeLinuxSLL2, frame: cat(be16(0x86dd), be16(0), be32(3), be16(1), []byte{4, 6}, macA, []byte{0, 0}, ipv6(6, "::1", "::2", 20), syn),
			want: v6tcp("::1", "::2", 40000, 80, sdk.TCPSyn, 80)},
		{name: "linux sll arp", link: LinkTypeLinuxSLL, frame: cat(be16(0), be16(1), be16(6), macA, []byte{0, 0}, be16(0x0806), arp[14:]), want: nonIP(44)},
		{name: "raw ipv4", link: LinkTypeRaw, frame: cat(ipv4(17, "10.0.0.1", "10.0.0.2", 8, 0), udp(5, 6, nil)),
			want: v4("10.0.0.1", "10.0.0.2", 5, 6, 17, 0, 0, 28)},
		{name: "raw ipv6 (dlt 12)", link: LinkTypeDLTRaw12, frame: cat(ipv6(17, "::1", "::2", 8), udp(5, 6, nil)),
			want: v6("::1", "::2", 5, 6, 17, 0, 48)},
		{name: "linktype ipv4", link: LinkTypeIPv4, frame: cat(ipv4(1, "10.0.0.1", "10.0.0.2", 8, 0), icmpEcho),
			want: v4("10.0.0.1", "10.0.0.2", 8, 0, 1, 0, 0, 28)},
		{name: "null little endian ipv4", link: LinkTypeNull, frame: cat(le32(2), ipv4(6, "127.0.0.1", "127.0.0.1", 20, 0), syn),
			want: v4("127.0.0.1", "127.0.0.1", 40000, 80, 6, sdk.TCPSyn, 0, 44)},
		{name: "null big endian ipv6 (macOS 30)", link: LinkTypeNull, frame: cat(be32(30), ipv6(17, "::1", "::1", 8), udp(9, 10, nil)),
			want: v6("::1", "::1", 9, 10, 17, 0, 52)},
		{name: "loop ipv4", link: LinkTypeLoop, frame: cat(be32(2), ipv4(17, "10.0.0.1", "10.0.0.2", 8, 0), udp(5, 6, nil)),
			want: v4("10.0.0.1", "10.0.0.2", 5, 6, 17, 0, 0, 32)},

		// Errors: the packet is still filled in as non-IP.
		{name: "short ethernet", link: LinkTypeEthernet, frame: macA, want: nonIP(6), err: ErrShortLink},
		{name: "truncated ipv4 header", link: LinkTypeEthernet, frame: cat(eth(0x0800), ipv4(6, "10.0.0.1", "10.0.0.2", 20, 0)[:12]), wire: 54, want: nonIP(54), err: ErrShortIP},
		{name: "ipv4 ihl beyond total length", link: LinkTypeEthernet, frame: func() []byte {
			h := ipv4(6, "10.0.0.1", "10.0.0.2", 0, 0)
			h[0] = 0x4f // IHL 15 = 60 bytes > total length 20
			return cat(eth(0x0800), h, make([]byte, 40))
		}(), want: nonIP(74), err: ErrBadIP},
		{name: "ethertype ipv4 carrying version 6", link: LinkTypeEthernet, frame: cat(eth(0x0800), func() []byte {
			h := ipv4(6, "10.0.0.1", "10.0.0.2", 20, 0)
			h[0] = 0x65
			return h
		}(), syn), want: nonIP(54), err: ErrBadIP},
		{name: "truncated vlan tag", link: LinkTypeEthernet, frame: cat(eth(0x8100), []byte{0, 100}), want: nonIP(16), err: ErrBadVLAN},
		{name: "short sll", link: LinkTypeLinuxSLL, frame: make([]byte, 15), want: nonIP(15), err: ErrShortLink},
		{name: "raw with version 5", link: LinkTypeRaw, frame: []byte{0x50, 0, 0, 0}, want: nonIP(4), err: ErrUnknownIPVer},
		{name: "ipv6 truncated", link: LinkTypeRaw, frame: ipv6(17, "::1", "::2", 8)[:30], want: nonIP(30), err: ErrShortIP},
		{name: "unsupported link type", link: 147, frame: make([]byte, 20), want: nonIP(20), err: ErrUnsupportLink},
	}
}

func TestDecode(t *testing.T) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(c.link)
			ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(c.frame), Length: len(c.frame)}
			if c.wire != 0 {
				ci.Length = c.wire
			}
			var p sdk.Packet
			// Pre-fill p with junk: Decode must reset every field.
			p = sdk.Packet{SrcPort: 99, DstPort: 99, Protocol: 99, TCPFlags: 99, Flags: 0xff, Src: [16]byte{1}, Dst: [16]byte{1}}
			err := d.Decode(c.frame, ci, &p)
			if !errors.Is(err, c.err) {
				t.Fatalf("error = %v, want %v", err, c.err)
			}
			if len(p.Frame) != len(c.frame) {
				t.Errorf("Frame has %d bytes, want the %d-byte input", len(p.Frame), len(c.frame))
			}
			p.Frame = nil
			if !reflect.DeepEqual(p, c.want) {
				t.Errorf("got  %+v\nwant %+v", p, c.want)
			}
		})
	}
}

// Decoding the same frames twice in a row with one decoder must give the
// same results: no state leaks from one frame to the next.
func TestDecoderReuse(t *testing.T) {
	dec := map[LinkType]*Decoder{}
	for round := 0; round < 2; round++ {
		for _, c := range cases() {
			d := dec[c.link]
			if d == nil {
				d = NewDecoder(c.link)
				dec[c.link] = d
			}
			ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(c.frame), Length: len(c.frame)}
			if c.wire != 0 {
				ci.Length = c.wire
			}
			var p sdk.Packet
			err := d.Decode(c.frame, ci, &p)
			p.Frame = nil
			if !errors.Is(err, c.err) || !reflect.DeepEqual(p, c.want) {
				t.Errorf("round %d %s: got %+v, %v; want %+v, %v", round, c.name, p, err, c.want, c.err)
			}
		}
	}
}

func TestSupported(t *testing.T) {
	for _, lt := range []LinkType{0, 1, 12, 14, 101, 108, 113, 228, 229, 276} {
		if !Supported(lt) {
			t.Errorf("Supported(%d) = false", lt)
		}
	}
	for _, lt := range []LinkType{105, 127, 147, 195} {
		if Supported(lt) {
			t.Errorf("Supported(%d) = true", lt)
		}
	}
}

// Every truncation of every test frame must decode without a panic.
func TestTruncationsNeverPanic(t *testing.T) {
	for _, c := range cases() {
		d := NewDecoder(c.link)
		for n := 0; n <= len(c.frame); n++ {
			var p sdk.Packet
			_ = d.Decode(c.frame[:n], gopacket.CaptureInfo{Timestamp: ts, CaptureLength: n, Length: len(c.frame)}, &p)
			if p.Length != uint32(len(c.frame)) {
				t.Fatalf("%s cut at %d: Length %d", c.name, n, p.Length)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range cases() {
		f.Add(uint16(c.link), c.frame)
	}
	f.Fuzz(func(t *testing.T, link uint16, frame []byte) {
		d := NewDecoder(LinkType(link))
		var p sdk.Packet
		err := d.Decode(frame, gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}, &p)
		if err != nil && p.Flags != sdk.PacketNonIP {
			t.Fatalf("error %v but flags %v", err, p.Flags)
		}
	})
}

func typical() []tc {
	var out []tc
	for _, c := range cases() {
		if c.err == nil {
			out = append(out, c)
		}
	}
	return out
}

func TestZeroAllocs(t *testing.T) {
	for _, c := range typical() {
		d := NewDecoder(c.link)
		ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(c.frame), Length: len(c.frame)}
		var p sdk.Packet
		allocs := testing.AllocsPerRun(200, func() { _ = d.Decode(c.frame, ci, &p) })
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per frame, want 0", c.name, allocs)
		}
	}
}

// BenchmarkDecode decodes a mix of typical frames: Ethernet/IPv4/TCP (with
// and without options), UDP DNS, ICMP, VLAN, IPv6.
func BenchmarkDecode(b *testing.B) {
	var frames [][]byte
	for _, c := range cases() {
		if c.err == nil && c.link == LinkTypeEthernet {
			frames = append(frames, c.frame)
		}
	}
	d := NewDecoder(LinkTypeEthernet)
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: 60, Length: 60}
	var p sdk.Packet
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = d.Decode(frames[i%len(frames)], ci, &p)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}

// The Ethernet/IPv4 fast path must give exactly what the general decoder
// gives for every frame it accepts (and the general decoder must not call
// such a frame an error).
func FuzzFastPathMatchesLayers(f *testing.F) {
	for _, c := range cases() {
		if c.link == LinkTypeEthernet {
			f.Add(c.frame)
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkFastPath(t, frame)
	})
}

func checkFastPath(t *testing.T, frame []byte) bool {
	t.Helper()
	base := sdk.Packet{Timestamp: ts.UnixNano(), Length: uint32(len(frame)), Frame: frame}
	fast := base
	if !decodeEthIPv4(frame, &fast) {
		return false
	}
	slow := base
	if err := NewDecoder(LinkTypeEthernet).decodeLayers(frame, &slow); err != nil {
		t.Fatalf("fast path took a frame the general decoder rejects (%v): % x", err, frame)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("frame % x\nfast path: %+v\ngeneral:   %+v", frame, fast, slow)
	}
	return true
}

// The fast path takes the common frames (so the fuzz target above tests
// something) and leaves the rest to the general decoder; on every
// truncation of every test frame both agree.
func TestFastPathCoversCommonFrames(t *testing.T) {
	took := map[string]bool{}
	for _, c := range cases() {
		if c.link != LinkTypeEthernet {
			continue
		}
		for n := 0; n <= len(c.frame); n++ {
			if checkFastPath(t, c.frame[:n]) && n == len(c.frame) {
				took[c.name] = true
			}
		}
	}
	for _, name := range []string{"eth ipv4 tcp syn", "ethernet padding ignored", "dns over tcp query", "icmp echo", "ipv4 later fragment", "udp 53 short payload is not dns"} {
		if !took[name] {
			t.Errorf("fast path did not take %q (took %v)", name, took)
		}
	}
	for _, name := range []string{"vlan", "ipv6 udp dns", "ipv4 options (record route) then udp", "arp is non-ip", "ipv4 ihl beyond total length"} {
		if took[name] {
			t.Errorf("fast path took %q, which needs the general decoder", name)
		}
	}
}
