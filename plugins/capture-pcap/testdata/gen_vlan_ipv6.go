//go:build ignore

// gen writes testdata/vlan-ipv6.pcap: VLAN-tagged, QinQ and IPv6 traffic
// (with extension headers and fragments) serialised by gopacket. Run from
// plugins/capture-pcap:  go run testdata/gen_vlan_ipv6.go
package main

import (
	"log"
	"net"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func main() {
	f, err := os.Create("testdata/vlan-ipv6.pcap")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		log.Fatal(err)
	}
	t := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	macA, _ := net.ParseMAC("02:00:00:00:00:0a")
	macB, _ := net.ParseMAC("02:00:00:00:00:0b")
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	n := 0
	write := func(ls ...gopacket.SerializableLayer) {
		buf := gopacket.NewSerializeBuffer()
		for _, l := range ls {
			if nl, ok := l.(interface {
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}); ok {
				for _, x := range ls {
					if ip, ok := x.(gopacket.NetworkLayer); ok {
						_ = nl.SetNetworkLayerForChecksum(ip)
					}
				}
			}
		}
		if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
			log.Fatal(err)
		}
		b := buf.Bytes()
		n++
		ci := gopacket.CaptureInfo{Timestamp: t.Add(time.Duration(n) * 1500 * time.Microsecond), CaptureLength: len(b), Length: len(b)}
		if err := w.WritePacket(ci, b); err != nil {
			log.Fatal(err)
		}
	}
	eth := func(et layers.EthernetType) *layers.Ethernet {
		return &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et}
	}
	v4 := func(src, dst string, p layers.IPProtocol) *layers.IPv4 {
		return &layers.IPv4{Version: 4, TTL: 64, Protocol: p, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	}
	v6 := func(src, dst string, p layers.IPProtocol) *layers.IPv6 {
		return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: p, SrcIP: net.ParseIP(src), DstIP: net.ParseIP(dst)}
	}
	dnsQuery := gopacket.Payload([]byte{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1})
	dnsResp := gopacket.Payload([]byte{0xab, 0xcd, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1})

	// 1-3: VLAN 100: TCP SYN, SYN/ACK, ACK
	for i, fl := range []struct{ syn, ack bool }{{true, false}, {true, true}, {false, true}} {
		src, dst, sp, dp := "10.20.0.1", "10.20.0.2", layers.TCPPort(40000), layers.TCPPort(80)
		if i == 1 {
			src, dst, sp, dp = dst, src, dp, sp
		}
		write(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4},
			v4(src, dst, layers.IPProtocolTCP), &layers.TCP{SrcPort: sp, DstPort: dp, SYN: fl.syn, ACK: fl.ack, Window: 1024})
	}
	// 4-5: QinQ 10/20: DNS query and response over UDP
	write(eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv4},
		v4("10.20.0.1", "10.20.0.53", layers.IPProtocolUDP), &layers.UDP{SrcPort: 33333, DstPort: 53}, dnsQuery)
	write(eth(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 10, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 20, Type: layers.EthernetTypeIPv4},
		v4("10.20.0.53", "10.20.0.1", layers.IPProtocolUDP), &layers.UDP{SrcPort: 53, DstPort: 33333}, dnsResp)
	// 6: VLAN ICMP echo
	write(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4},
		v4("10.20.0.1", "10.20.0.2", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 1, Seq: 1}, gopacket.Payload("pingpingpingping"))
	// 7-8: IPv6 TCP SYN and UDP DNS query
	write(eth(layers.EthernetTypeIPv6), v6("2001:db8::1", "2001:db8::2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 50000, DstPort: 443, SYN: true, Window: 1024})
	write(eth(layers.EthernetTypeIPv6), v6("2001:db8::1", "2001:db8::53", layers.IPProtocolUDP), &layers.UDP{SrcPort: 50001, DstPort: 53}, dnsQuery)
	// 9: IPv6 ICMPv6 echo request inside VLAN 200
	write(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 200, Type: layers.EthernetTypeIPv6},
		v6("2001:db8::1", "2001:db8::2", layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}, gopacket.Payload([]byte{0, 1, 0, 1}))
	// 10-11: IPv6 UDP split in two fragments (fragment header written by hand)
	udpPayload := make([]byte, 40)
	for i := range udpPayload {
		udpPayload[i] = byte(i)
	}
	udpHdr := []byte{0xc3, 0x50, 0x1f, 0x90, 0, 48, 0, 0} // 50000 -> 8080, length 48, checksum 0 (not checked)
	whole := append(udpHdr, udpPayload...)
	frag1 := append([]byte{17, 0, 0x00, 0x01, 0, 0, 0, 42}, whole[:24]...) // offset 0, M=1
	frag2 := append([]byte{17, 0, 0x00, 0x18, 0, 0, 0, 42}, whole[24:]...) // offset 3 (24 bytes), M=0
	write(eth(layers.EthernetTypeIPv6), v6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Fragment), gopacket.Payload(frag1))
	write(eth(layers.EthernetTypeIPv6), v6("2001:db8::1", "2001:db8::2", layers.IPProtocolIPv6Fragment), gopacket.Payload(frag2))
	// 12-13: IPv4 UDP in two fragments (VLAN 100)
	ip := v4("10.20.0.1", "10.20.0.2", layers.IPProtocolUDP)
	ip.Flags = layers.IPv4MoreFragments
	ip.Id = 7
	write(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, ip, gopacket.Payload(whole[:24]))
	ip2 := v4("10.20.0.1", "10.20.0.2", layers.IPProtocolUDP)
	ip2.FragOffset, ip2.Id = 3, 7
	write(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeIPv4}, ip2, gopacket.Payload(whole[24:]))
	// 14: ARP inside VLAN 100
	write(eth(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 100, Type: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: macA, SourceProtAddress: []byte{10, 20, 0, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 20, 0, 2}})
}
