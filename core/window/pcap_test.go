package window

import (
	"math"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/netguardian/netguardian/sdk"
)

func timeOf(ns int64) time.Time { return time.Unix(0, ns) }

// TestPcapRoundTrip writes crafted frames to a real pcap file, reads them
// back through sdk/decode, and checks the window features computed by hand.
func TestPcapRoundTrip(t *testing.T) {
	macA, macB := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	ipA, ipB, ipC := net.IP{10, 0, 0, 1}, net.IP{10, 0, 0, 2}, net.IP{10, 0, 0, 3}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	ser := func(ls ...gopacket.SerializableLayer) []byte {
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
			t.Fatal(err)
		}
		return append([]byte(nil), buf.Bytes()...)
	}
	eth4 := func(src, dst net.HardwareAddr) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	}
	ip4 := func(src, dst net.IP, proto layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto, SrcIP: src, DstIP: dst}
	}
	tcpFrame := func(src, dst net.IP, sp, dp layers.TCPPort, set func(*layers.TCP), payload int) []byte {
		ip := ip4(src, dst, layers.IPProtocolTCP)
		tcp := &layers.TCP{SrcPort: sp, DstPort: dp, Seq: 1, Window: 65535}
		set(tcp)
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		return ser(eth4(macA, macB), ip, tcp, gopacket.Payload(make([]byte, payload)))
	}
	udpDNS := func() []byte {
		ip := ip4(ipA, ipC, layers.IPProtocolUDP)
		udp := &layers.UDP{SrcPort: 5353, DstPort: 53}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		dns := &layers.DNS{ID: 7, RD: true, Questions: []layers.DNSQuestion{{Name: []byte("example.com"), Type: layers.DNSTypeA, Class: layers.DNSClassIN}}}
		return ser(eth4(macA, macB), ip, udp, dns)
	}
	unreachable := func() []byte {
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 3)}
		return ser(eth4(macB, macA), ip4(ipC, ipA, layers.IPProtocolICMPv4), icmp, gopacket.Payload(make([]byte, 28)))
	}
	arp := func() []byte {
		return ser(&layers.Ethernet{SrcMAC: macA, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
			&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
				Operation: layers.ARPRequest, SourceHwAddress: macA, SourceProtAddress: ipA, DstHwAddress: make([]byte, 6), DstProtAddress: ipB})
	}
	syn6 := func() []byte {
		ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolTCP, HopLimit: 64,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
		tcp := &layers.TCP{SrcPort: 6000, DstPort: 443, SYN: true, Window: 65535}
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		return ser(&layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6}, ip, tcp)
	}
	frames := []struct {
		at    float64 // ms after t0
		frame []byte
		len   int // hand-computed wire length
	}{
		// 14+20+20 = 54 bytes, padded to Ethernet's 60-byte minimum.
		{100, tcpFrame(ipA, ipB, 40000, 80, func(p *layers.TCP) { p.SYN = true }, 0), 60},
		{130, tcpFrame(ipB, ipA, 80, 40000, func(p *layers.TCP) { p.SYN, p.ACK = true, true }, 0), 60},
		{140, tcpFrame(ipA, ipB, 40000, 80, func(p *layers.TCP) { p.ACK = true }, 0), 60},
		{200, tcpFrame(ipA, ipB, 40000, 80, func(p *layers.TCP) { p.PSH, p.ACK = true, true }, 100), 54 + 100},
		{400, tcpFrame(ipB, ipA, 80, 40000, func(p *layers.TCP) { p.ACK = true }, 1000), 54 + 1000},
		{1000, udpDNS(), 14 + 20 + 8 + 12 + 13 + 4}, // DNS header, name 7example3com0, type+class
		{1100, unreachable(), 14 + 20 + 8 + 28},
		{1500, arp(), 60}, // 14+28 = 42, padded
		{2000, syn6(), 14 + 40 + 20},
		{6000, tcpFrame(ipA, ipB, 40000, 80, func(p *layers.TCP) { p.FIN, p.ACK = true, true }, 0), 60},
	}
	var raw [][]byte
	var ts []int64
	for i, f := range frames {
		if len(f.frame) != f.len {
			t.Fatalf("frame %d serialized to %d bytes, want %d", i+1, len(f.frame), f.len)
		}
		raw = append(raw, f.frame)
		ts = append(ts, ms(f.at))
	}
	path := filepath.Join(t.TempDir(), "crafted.pcap")
	writePcap(t, path, raw, ts)

	pkts := readCapture(t, path)
	if len(pkts) != len(frames) {
		t.Fatalf("read %d packets, want %d", len(pkts), len(frames))
	}
	b := &sdk.PacketBatch{}
	for i := range pkts {
		b.Append(&pkts[i])
	}
	c := &collector{}
	a, err := New(Options{}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(b); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// A in [0,5): frames 1, 3, 4, 6 at 100, 140, 200, 1000 ms, lengths
	// 60, 60, 154, 71.
	//   bytes 345; Σlen² = 3600+3600+23716+5041 = 35957;
	//   var = (4·35957 − 345²)/16 = (143828 − 119025)/16 = 24803/16
	//   gaps 40, 60, 800: mean 300; var = (1600+3600+640000)/3 − 300² = 375200/3
	//   handshake 130 − 100 = 30 ms
	//   inbound frames 2, 5, 7: 60 + 1054 + 70 = 1184 B, one ICMP unreachable
	expect(t, c.row(t, 5*time.Second, 0, A), map[string]float64{
		sdk.FeaturePackets: 4, sdk.FeatureBytes: 345, sdk.FeaturePacketSizeMean: 345.0 / 4,
		sdk.FeaturePacketSizeStd: math.Sqrt(24803.0 / 16), sdk.FeaturePacketSizeMin: 60, sdk.FeaturePacketSizeMax: 154,
		sdk.FeatureIATMean: 300, sdk.FeatureIATStd: math.Sqrt(375200.0 / 3),
		sdk.FeatureHandshakeLatency: 30, sdk.FeatureHandshakes: 1,
		sdk.FeatureTCPPackets: 3, sdk.FeatureTCPBytes: 60 + 60 + 154, sdk.FeatureUDPPackets: 1, sdk.FeatureUDPBytes: 71,
		sdk.FeatureSYN: 1, sdk.FeatureACK: 2, sdk.FeaturePSH: 1, sdk.FeatureFIN: 0,
		sdk.FeatureDistinctDstIPs: 2, sdk.FeatureDistinctDstPorts: 2, sdk.FeatureDistinctSrcPorts: 2,
		sdk.FeatureDNSQueries: 1,
		sdk.FeatureInPackets:  3, sdk.FeatureInBytes: 1184, sdk.FeatureInICMPUnreach: 1, sdk.FeatureInRST: 0,
	})
	expect(t, c.row(t, 5*time.Second, 0, B), map[string]float64{
		sdk.FeaturePackets: 2, sdk.FeatureBytes: 60 + 1054, sdk.FeatureSYNACK: 1, sdk.FeatureACK: 2,
		sdk.FeatureInPackets: 3, sdk.FeatureInBytes: 60 + 60 + 154,
	})
	expect(t, c.row(t, 5*time.Second, 0, "2001:db8::1"), map[string]float64{
		sdk.FeaturePackets: 1, sdk.FeatureBytes: 74, sdk.FeatureSYN: 1, sdk.FeatureTCPPackets: 1,
	})
	expect(t, c.row(t, 5*time.Second, 5*time.Second, A), map[string]float64{
		sdk.FeaturePackets: 1, sdk.FeatureFIN: 1, sdk.FeatureACK: 1,
	})
	if s := a.Stats(); s.NonIPPackets != 1 || s.Packets != 9 {
		t.Errorf("non-IP %d packets %d, want 1 (ARP) and 9", s.NonIPPackets, s.Packets)
	}
}
