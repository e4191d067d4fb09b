// Package decode turns captured frames into sdk.Packet summaries. It is
// shared by capture plugins and by tests that read crafted captures.
//
// A Decoder handles one link type:
//
//   - Ethernet (LINKTYPE_ETHERNET 1), with any number of 802.1Q / 802.1ad
//     (QinQ) tags;
//   - Linux cooked capture v1 (LINKTYPE_LINUX_SLL 113) and v2
//     (LINKTYPE_LINUX_SLL2 276);
//   - raw IP (LINKTYPE_RAW 101, DLT_RAW 12 and 14, LINKTYPE_IPV4 228,
//     LINKTYPE_IPV6 229);
//   - BSD loopback / null (LINKTYPE_NULL 0, host byte order) and OpenBSD
//     loopback (LINKTYPE_LOOP 108, network byte order).
//
// Layers are decoded with gopacket's DecodingLayerParser over preallocated
// layers (Ethernet, Dot1Q, IPv4, IPv6 and its extension headers, TCP, UDP,
// ICMPv4, ICMPv6); the cooked and loopback headers are read by hand. The
// commonest frame, untagged Ethernet with IPv4 without options, takes a
// direct path that gives the same result (fuzzed against the layers).
// Decode allocates nothing for well-formed frames.
//
// What ends up in the packet:
//
//   - Timestamp: CaptureInfo.Timestamp in ns; Length: CaptureInfo.Length
//     (the wire length; the captured length when Length is 0).
//   - Src, Dst: the outermost IP header's addresses (IPv4 as ::ffff:a.b.c.d).
//     Tunnels (IP in IP, GRE...) are not entered: Protocol is then 4, 41, 47...
//   - Protocol: the upper-layer protocol; for IPv6 the one after the
//     extension headers (hop-by-hop, routing, fragment, destination options).
//   - SrcPort, DstPort: TCP/UDP ports; ICMP and ICMPv6 type and code.
//   - TCPFlags: the TCP header's flag byte (FIN..CWR).
//   - Flags: PacketIPv6; PacketFragment for IPv4/IPv6 fragments other than
//     the first (they have no transport header: ports stay zero);
//     PacketDNSQuery / PacketDNSResponse for a DNS header (QR bit) on UDP
//     or TCP port 53 (TCP: only a segment that starts with the 2-byte length
//     prefix of a plausible message); PacketNonIP for frames without an IP
//     layer (ARP, LLDP, STP...), whose addresses stay zero.
//
// Errors and truncation: Decode returns an error only for a frame that
// cannot be summarised at the IP level: a link header cut short, an
// unreadable VLAN tag, or an IPv4/IPv6 header that is truncated or
// inconsistent (wrong version, bad header length). Such a packet is still
// filled in (timestamp, length, PacketNonIP, zero addresses) so callers may
// count it and pass it on; callers count these as decode errors. A frame
// whose transport header is cut short (a small snaplen) is NOT an error: it
// gets its IP-level summary (addresses, protocol) with zero ports and TCP
// flags. "Cut short" means the fixed part is missing (TCP 20 bytes, UDP 8,
// ICMP 2): TCP options cut by the snaplen still give ports and flags.
// Errors are static values (no allocation); the caller adds the position.
package decode

import (
	"encoding/binary"
	"errors"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/netguardian/netguardian/sdk"
)

// LinkType is a pcap LINKTYPE_ value. gopacket's layers.LinkType is a
// uint8 and cannot hold LINKTYPE_LINUX_SLL2 (276), hence this type.
type LinkType uint32

// The link types a Decoder handles.
const (
	LinkTypeNull      LinkType = 0   // BSD loopback, family in host byte order
	LinkTypeEthernet  LinkType = 1   // Ethernet, 802.1Q/QinQ tags included
	LinkTypeDLTRaw12  LinkType = 12  // raw IP (DLT_RAW on most systems)
	LinkTypeDLTRaw14  LinkType = 14  // raw IP (DLT_RAW on OpenBSD)
	LinkTypeRaw       LinkType = 101 // raw IPv4 or IPv6
	LinkTypeLoop      LinkType = 108 // OpenBSD loopback, family in network byte order
	LinkTypeLinuxSLL  LinkType = 113 // Linux cooked capture v1
	LinkTypeIPv4      LinkType = 228 // raw IPv4
	LinkTypeIPv6      LinkType = 229 // raw IPv6
	LinkTypeLinuxSLL2 LinkType = 276 // Linux cooked capture v2
)

// Errors Decode returns. They are static values so that a flood of bad
// frames costs no allocation; callers add the position themselves.
var (
	ErrShortLink     = errors.New("frame shorter than its link-layer header")
	ErrBadLink       = errors.New("malformed link-layer header")
	ErrBadVLAN       = errors.New("truncated or malformed VLAN tag")
	ErrShortIP       = errors.New("IP header truncated")
	ErrBadIP         = errors.New("malformed IP header")
	ErrUnknownIPVer  = errors.New("raw IP frame with unknown IP version")
	ErrUnsupportLink = errors.New("unsupported link type")
)

// Supported reports whether NewDecoder can decode frames of link type lt.
func Supported(lt LinkType) bool {
	switch lt {
	case LinkTypeEthernet, LinkTypeLinuxSLL, LinkTypeLinuxSLL2, LinkTypeRaw, LinkTypeDLTRaw12,
		LinkTypeDLTRaw14, LinkTypeIPv4, LinkTypeIPv6, LinkTypeNull, LinkTypeLoop:
		return true
	}
	return false
}

// Decoder decodes frames of one link type. It is not safe for concurrent
// use; use one per goroutine.
type Decoder struct {
	link LinkType

	eth   layers.Ethernet
	dot1q layers.Dot1Q
	ip4   ipv4Layer
	ip6   ipv6Layer
	ext   ipv6Ext
	frag  ipv6Frag
	tcp   tcpLayer
	udp   udpLayer
	icmp4 icmpLayer
	icmp6 icmp6Layer

	fromEth, fromIPv4, fromIPv6 *gopacket.DecodingLayerParser
	decoded                     []gopacket.LayerType
}

// NewDecoder returns a decoder for frames of link type lt. Frames of an
// unsupported link type decode to ErrUnsupportLink (see Supported).
func NewDecoder(lt LinkType) *Decoder {
	d := &Decoder{link: lt, decoded: make([]gopacket.LayerType, 0, 16)}
	mk := func(first gopacket.LayerType) *gopacket.DecodingLayerParser {
		p := gopacket.NewDecodingLayerParser(first)
		// A sparse container is a slice indexed by layer type: the fastest
		// lookup. The extension skipper goes before the fragment layer so
		// that the fragment layer wins LayerTypeIPv6Fragment.
		p.SetDecodingLayerContainer(gopacket.DecodingLayerSparse(nil))
		for _, l := range []gopacket.DecodingLayer{&d.eth, &d.dot1q, &d.ip4, &d.ip6, &d.ext, &d.frag, &d.tcp, &d.udp, &d.icmp4, &d.icmp6} {
			p.AddDecodingLayer(l)
		}
		p.IgnoreUnsupported = true // stop quietly at ARP, payloads, tunnels...
		return p
	}
	d.fromEth = mk(layers.LayerTypeEthernet)
	d.fromIPv4 = mk(layers.LayerTypeIPv4)
	d.fromIPv6 = mk(layers.LayerTypeIPv6)
	return d
}

// LinkType returns the link type the decoder was made for.
func (d *Decoder) LinkType() LinkType { return d.link }

// Decode fills p from one frame. See the package documentation for what is
// an error. p.Frame is set to data (not copied).
func (d *Decoder) Decode(data []byte, ci gopacket.CaptureInfo, p *sdk.Packet) error {
	*p = sdk.Packet{Timestamp: ci.Timestamp.UnixNano(), Length: uint32(ci.Length), Frame: data}
	if ci.Length == 0 {
		p.Length = uint32(len(data))
	}
	if d.link == LinkTypeEthernet && decodeEthIPv4(data, p) {
		return nil
	}
	return d.decodeLayers(data, p)
}

// decodeLayers is the general decoder: every link type, VLAN tags, IPv6,
// IPv4 options, and the errors. p holds the timestamp and length.
func (d *Decoder) decodeLayers(data []byte, p *sdk.Packet) error {
	parser, payload, err := d.link2parser(data)
	if err != nil || parser == nil {
		p.Flags = sdk.PacketNonIP
		return err
	}
	perr := parser.DecodeLayers(payload, &d.decoded)
	var ip bool
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv4:
			if d.ip4.Version != 4 {
				p.Flags = sdk.PacketNonIP
				return ErrBadIP
			}
			ip = true
			copy(p.Src[:], v4prefix[:])
			copy(p.Dst[:], v4prefix[:])
			copy(p.Src[12:], d.ip4.SrcIP)
			copy(p.Dst[12:], d.ip4.DstIP)
			p.Protocol = uint8(d.ip4.Protocol)
			if d.ip4.FragOffset != 0 {
				p.Flags |= sdk.PacketFragment
			}
		case layers.LayerTypeIPv6:
			ip = true
			copy(p.Src[:], d.ip6.src)
			copy(p.Dst[:], d.ip6.dst)
			p.Flags |= sdk.PacketIPv6
			p.Protocol = d.ip6.next
		case layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination, layers.LayerTypeIPv6HopByHop:
			p.Protocol = uint8(d.ext.NextHeader)
		case layers.LayerTypeIPv6Fragment:
			p.Protocol = d.frag.next
			if d.frag.offset != 0 {
				p.Flags |= sdk.PacketFragment
			}
		case layers.LayerTypeTCP:
			p.SrcPort, p.DstPort, p.TCPFlags = d.tcp.sport, d.tcp.dport, d.tcp.flags
			if p.SrcPort == 53 || p.DstPort == 53 {
				p.Flags |= dnsTCP(d.tcp.payload)
			}
		case layers.LayerTypeUDP:
			p.SrcPort, p.DstPort = d.udp.sport, d.udp.dport
			if p.SrcPort == 53 || p.DstPort == 53 {
				p.Flags |= dnsUDP(d.udp.payload)
			}
		case layers.LayerTypeICMPv4:
			p.SrcPort, p.DstPort = uint16(d.icmp4.typ), uint16(d.icmp4.code)
		case layers.LayerTypeICMPv6:
			p.SrcPort, p.DstPort = uint16(d.icmp6.typ), uint16(d.icmp6.code)
		}
	}
	if ip {
		// An error after the IP layer is a truncated or malformed transport
		// header: keep the IP-level summary.
		return nil
	}
	p.Protocol = 0
	p.Flags = sdk.PacketNonIP
	if perr == nil {
		return nil // ARP, LLDP, STP...: not an error
	}
	// Which layer failed? The one after the last decoded.
	n := len(d.decoded)
	if n == 0 {
		if parser == d.fromEth {
			return ErrShortLink
		}
		return ipErr(payload)
	}
	et, rest := d.eth.EthernetType, d.eth.Payload
	if d.decoded[n-1] == layers.LayerTypeDot1Q {
		et, rest = d.dot1q.Type, d.dot1q.Payload
	}
	switch et {
	case layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ:
		return ErrBadVLAN
	case layers.EthernetTypeIPv4, layers.EthernetTypeIPv6:
		return ipErr(rest)
	}
	return ErrBadLink
}

// ipErr tells a truncated IP header from an inconsistent one. It only runs
// for frames that already failed.
func ipErr(b []byte) error {
	need := 20
	if len(b) > 0 && b[0]>>4 == 6 {
		need = 40
	}
	if len(b) < need {
		return ErrShortIP
	}
	return ErrBadIP
}

var v4prefix = [12]byte{10: 0xff, 11: 0xff}

// link2parser strips the link header of the non-Ethernet link types and
// picks the parser for what follows. A nil parser with a nil error means a
// non-IP frame.
func (d *Decoder) link2parser(b []byte) (*gopacket.DecodingLayerParser, []byte, error) {
	switch d.link {
	case LinkTypeEthernet:
		if len(b) < 14 {
			return nil, nil, ErrShortLink
		}
		return d.fromEth, b, nil
	case LinkTypeRaw, LinkTypeDLTRaw12, LinkTypeDLTRaw14:
		if len(b) == 0 {
			return nil, nil, ErrShortIP
		}
		switch b[0] >> 4 {
		case 4:
			return d.fromIPv4, b, nil
		case 6:
			return d.fromIPv6, b, nil
		}
		return nil, nil, ErrUnknownIPVer
	case LinkTypeIPv4:
		return d.fromIPv4, b, nil
	case LinkTypeIPv6:
		return d.fromIPv6, b, nil
	case LinkTypeLinuxSLL:
		// packet type(2) ARPHRD(2) addr len(2) addr(8) protocol(2)
		if len(b) < 16 {
			return nil, nil, ErrShortLink
		}
		return d.byEtherType(binary.BigEndian.Uint16(b[14:16]), b[16:])
	case LinkTypeLinuxSLL2:
		// protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) addr len(1) addr(8)
		if len(b) < 20 {
			return nil, nil, ErrShortLink
		}
		return d.byEtherType(binary.BigEndian.Uint16(b[0:2]), b[20:])
	case LinkTypeNull, LinkTypeLoop:
		if len(b) < 4 {
			return nil, nil, ErrShortLink
		}
		var fam uint32
		if d.link == LinkTypeLoop {
			fam = binary.BigEndian.Uint32(b)
		} else {
			// Host byte order of the capturing machine: the family is
			// small, so whichever end holds it is the right one.
			fam = binary.LittleEndian.Uint32(b)
			if fam > 0xffff {
				fam = binary.BigEndian.Uint32(b)
			}
		}
		switch fam {
		case 2: // AF_INET everywhere
			return d.fromIPv4, b[4:], nil
		case 10, 24, 28, 30: // AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD, macOS
			return d.fromIPv6, b[4:], nil
		}
		if fam > 0xffff {
			return nil, nil, ErrBadLink
		}
		return nil, nil, nil
	}
	return nil, nil, ErrUnsupportLink
}

func (d *Decoder) byEtherType(et uint16, rest []byte) (*gopacket.DecodingLayerParser, []byte, error) {
	switch layers.EthernetType(et) {
	case layers.EthernetTypeIPv4:
		return d.fromIPv4, rest, nil
	case layers.EthernetTypeIPv6:
		return d.fromIPv6, rest, nil
	}
	return nil, nil, nil
}

// dnsUDP reads the QR bit of a DNS header at the start of a UDP payload.
func dnsUDP(b []byte) sdk.PacketFlags {
	if len(b) < 12 {
		return 0
	}
	return qr(b)
}

// dnsTCP reads the QR bit of a DNS message that starts a TCP segment
// (2-byte length prefix, then the header). To keep continuation segments
// of long messages out, the prefix must be at least a header long, the
// opcode one of the assigned ones (0-6) and the question count 0 or 1.
func dnsTCP(b []byte) sdk.PacketFlags {
	if len(b) < 14 {
		return 0
	}
	n := binary.BigEndian.Uint16(b)
	h := b[2:]
	if n < 12 || (h[2]>>3)&0x0f > 6 || binary.BigEndian.Uint16(h[4:6]) > 1 {
		return 0
	}
	return qr(h)
}

func qr(h []byte) sdk.PacketFlags {
	if h[2]&0x80 != 0 {
		return sdk.PacketDNSResponse
	}
	return sdk.PacketDNSQuery
}

// transportType maps the protocols whose headers are decoded to their layer
// types; everything else (tunnels, SCTP, ESP...) ends decoding at IP level.
func transportType(proto layers.IPProtocol) gopacket.LayerType {
	switch proto {
	case layers.IPProtocolTCP:
		return layers.LayerTypeTCP
	case layers.IPProtocolUDP:
		return layers.LayerTypeUDP
	case layers.IPProtocolICMPv4:
		return layers.LayerTypeICMPv4
	case layers.IPProtocolICMPv6:
		return layers.LayerTypeICMPv6
	case layers.IPProtocolIPv6HopByHop:
		return layers.LayerTypeIPv6HopByHop
	case layers.IPProtocolIPv6Routing:
		return layers.LayerTypeIPv6Routing
	case layers.IPProtocolIPv6Fragment:
		return layers.LayerTypeIPv6Fragment
	case layers.IPProtocolIPv6Destination:
		return layers.LayerTypeIPv6Destination
	}
	return gopacket.LayerTypeZero
}

// ipv4Layer is gopacket's IPv4 with the next layer chosen here: the
// transport header of an unfragmented packet or of a first fragment (gopacket
// stops at every fragment), nothing for a later fragment, and no tunnels.
type ipv4Layer struct{ layers.IPv4 }

func (i *ipv4Layer) NextLayerType() gopacket.LayerType {
	if i.FragOffset != 0 {
		return gopacket.LayerTypeZero
	}
	switch i.Protocol {
	case layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv4:
		return transportType(i.Protocol)
	}
	return gopacket.LayerTypeZero
}

// ipv6Ext skips routing, destination options (and misplaced hop-by-hop)
// extension headers.
type ipv6Ext struct{ layers.IPv6ExtensionSkipper }

func (i *ipv6Ext) NextLayerType() gopacket.LayerType { return transportType(i.NextHeader) }

// ipv6Frag decodes the IPv6 fragment header. A later fragment (offset != 0)
// ends decoding: its payload is the middle of the upper-layer packet.
type ipv6Frag struct {
	payload []byte
	next    uint8
	offset  uint16
}

func (f *ipv6Frag) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6Fragment }
func (f *ipv6Frag) LayerPayload() []byte           { return f.payload }
func (f *ipv6Frag) SetTruncated()                  {}
func (f *ipv6Frag) LayerType() gopacket.LayerType  { return layers.LayerTypeIPv6Fragment }
func (f *ipv6Frag) LayerContents() []byte          { return nil }
func (f *ipv6Frag) NextLayerType() gopacket.LayerType {
	if f.offset != 0 {
		return gopacket.LayerTypeZero
	}
	return transportType(layers.IPProtocol(f.next))
}

var errShortFrag = errors.New("IPv6 fragment header truncated")

func (f *ipv6Frag) DecodeFromBytes(b []byte, df gopacket.DecodeFeedback) error {
	if len(b) < 8 {
		df.SetTruncated()
		return errShortFrag
	}
	f.next = b[0]
	f.offset = binary.BigEndian.Uint16(b[2:4]) >> 3
	f.payload = b[8:]
	return nil
}

// The layers below are small DecodingLayers of our own: they read only the
// fields a Packet needs, never allocate (their errors are static values),
// and accept a header whose options are cut short by the snaplen, since
// the fixed part carries everything we use.

var (
	errShortIPv6 = errors.New("IPv6 header truncated")
	errIPv6Ver   = errors.New("IPv6 header with version other than 6")
	errShortTCP  = errors.New("TCP header truncated")
	errShortUDP  = errors.New("UDP header truncated")
	errShortICMP = errors.New("ICMP header truncated")
)

// ipv6Layer decodes the fixed IPv6 header; extension headers (hop-by-hop
// included) are separate layers, and tunnels are not entered.
type ipv6Layer struct {
	src, dst []byte
	payload  []byte
	next     uint8
}

func (i *ipv6Layer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6 }
func (i *ipv6Layer) LayerPayload() []byte           { return i.payload }
func (i *ipv6Layer) NextLayerType() gopacket.LayerType {
	return transportType(layers.IPProtocol(i.next))
}

func (i *ipv6Layer) DecodeFromBytes(b []byte, df gopacket.DecodeFeedback) error {
	if len(b) < 40 {
		df.SetTruncated()
		return errShortIPv6
	}
	if b[0]>>4 != 6 {
		return errIPv6Ver
	}
	i.next = b[6]
	i.src, i.dst = b[8:24], b[24:40]
	i.payload = b[40:]
	// Trim link-layer padding; a zero length is a jumbogram (RFC 2675,
	// hop-by-hop option) or junk: take what is there.
	if n := int(binary.BigEndian.Uint16(b[4:6])); n != 0 && n < len(i.payload) {
		i.payload = i.payload[:n]
	}
	return nil
}

type tcpLayer struct {
	sport, dport uint16
	flags        uint8
	payload      []byte
}

func (t *tcpLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeTCP }
func (t *tcpLayer) LayerPayload() []byte              { return t.payload }
func (t *tcpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

func (t *tcpLayer) DecodeFromBytes(b []byte, df gopacket.DecodeFeedback) error {
	if len(b) < 20 {
		df.SetTruncated()
		return errShortTCP
	}
	t.sport = binary.BigEndian.Uint16(b[0:2])
	t.dport = binary.BigEndian.Uint16(b[2:4])
	t.flags = b[13]
	t.payload = tcpPayload(b)
	return nil
}

// tcpPayload is what follows a TCP header (b holds at least its fixed
// part), or nil when the data offset is impossible or cut short.
func tcpPayload(b []byte) []byte {
	if off := int(b[12]>>4) * 4; off >= 20 && off <= len(b) {
		return b[off:]
	}
	return nil
}

type udpLayer struct {
	sport, dport uint16
	payload      []byte
}

func (u *udpLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeUDP }
func (u *udpLayer) LayerPayload() []byte              { return u.payload }
func (u *udpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

func (u *udpLayer) DecodeFromBytes(b []byte, df gopacket.DecodeFeedback) error {
	if len(b) < 8 {
		df.SetTruncated()
		return errShortUDP
	}
	u.sport = binary.BigEndian.Uint16(b[0:2])
	u.dport = binary.BigEndian.Uint16(b[2:4])
	u.payload = udpPayload(b)
	return nil
}

// udpPayload is what follows a UDP header (b holds at least its 8 bytes),
// without link-layer padding past the UDP length.
func udpPayload(b []byte) []byte {
	payload := b[8:]
	if n := int(binary.BigEndian.Uint16(b[4:6])); n >= 8 && n-8 < len(payload) {
		payload = payload[:n-8]
	}
	return payload
}

// icmpLayer reads type and code (the first two bytes; the checksum and the
// rest are not needed).
type icmpLayer struct{ typ, code uint8 }

func (i *icmpLayer) CanDecode() gopacket.LayerClass    { return layers.LayerTypeICMPv4 }
func (i *icmpLayer) LayerPayload() []byte              { return nil }
func (i *icmpLayer) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }

func (i *icmpLayer) DecodeFromBytes(b []byte, df gopacket.DecodeFeedback) error {
	if len(b) < 2 {
		df.SetTruncated()
		return errShortICMP
	}
	i.typ, i.code = b[0], b[1]
	return nil
}

type icmp6Layer struct{ icmpLayer }

func (i *icmp6Layer) CanDecode() gopacket.LayerClass { return layers.LayerTypeICMPv6 }

// decodeEthIPv4 decodes the frame most traffic is made of, untagged
// Ethernet carrying IPv4 without options, in one pass without gopacket's
// per-layer dispatch (a third of the replay plugin's CPU went there). It
// reports false, leaving p alone, for any other frame; the general decoder
// then handles it. Both must give the same packet for every frame the fast
// path takes: FuzzFastPathMatchesLayers checks that.
func decodeEthIPv4(b []byte, p *sdk.Packet) bool {
	if len(b) < 14+20 || b[12] != 0x08 || b[13] != 0x00 || b[14] != 0x45 {
		return false
	}
	ip := b[14:]
	total := int(binary.BigEndian.Uint16(ip[2:4]))
	if total < 20 {
		return false // 0 (segmentation offload) or inconsistent: the general path decides
	}
	end := min(total, len(ip)) // drop Ethernet padding; a snaplen may cut the packet short
	p.Src, p.Dst = v4mapped(ip[12:16]), v4mapped(ip[16:20])
	p.Protocol = ip[9]
	if binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		p.Flags |= sdk.PacketFragment // a later fragment: no transport header
		return true
	}
	t := ip[20:end]
	switch p.Protocol {
	case sdk.ProtoTCP:
		if len(t) < 20 {
			return true
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(t[0:2]), binary.BigEndian.Uint16(t[2:4])
		p.TCPFlags = t[13]
		if p.SrcPort == 53 || p.DstPort == 53 {
			p.Flags |= dnsTCP(tcpPayload(t))
		}
	case sdk.ProtoUDP:
		if len(t) < 8 {
			return true
		}
		p.SrcPort, p.DstPort = binary.BigEndian.Uint16(t[0:2]), binary.BigEndian.Uint16(t[2:4])
		if p.SrcPort == 53 || p.DstPort == 53 {
			p.Flags |= dnsUDP(udpPayload(t))
		}
	case sdk.ProtoICMP:
		if len(t) < 2 {
			return true
		}
		p.SrcPort, p.DstPort = uint16(t[0]), uint16(t[1])
	}
	return true
}

func v4mapped(a []byte) [16]byte {
	return [16]byte{10: 0xff, 11: 0xff, 12: a[0], 13: a[1], 14: a[2], 15: a[3]}
}
