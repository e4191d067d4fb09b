package window

import (
	"math"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

const (
	A = "10.0.0.1"
	B = "10.0.0.2"
	C = "10.0.0.3"
	D = "10.0.0.4"
)

func TestFeatureNamesMatchSDK(t *testing.T) {
	if !slices.Equal(featureNames, sdk.Features) {
		t.Fatalf("featureNames %v\n!= sdk.Features %v", featureNames, sdk.Features)
	}
}

// scenario is one small conversation inside the 5 s window [t0, t0+5s),
// followed by a packet of D at 5.5 s so that window closes by watermark.
var scenario = []P{
	{ts: ms(100), src: A, dst: B, proto: sdk.ProtoTCP, sport: 40000, dport: 80, tcp: sdk.TCPSyn, length: 60},
	{ts: ms(150), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 40000, tcp: sdk.TCPSyn | sdk.TCPAck, length: 60},
	{ts: ms(300), src: A, dst: B, proto: sdk.ProtoTCP, sport: 40000, dport: 80, tcp: sdk.TCPAck, length: 54},
	{ts: ms(600), src: A, dst: B, proto: sdk.ProtoTCP, sport: 40000, dport: 80, tcp: sdk.TCPPsh | sdk.TCPAck, length: 200},
	{ts: ms(1600), src: A, dst: C, proto: sdk.ProtoUDP, sport: 5353, dport: 53, length: 80, flags: sdk.PacketDNSQuery},
	{ts: ms(2000), src: A, dst: C, proto: sdk.ProtoICMP, sport: 8, dport: 0, length: 98},
	{ts: ms(2100), src: C, dst: A, proto: sdk.ProtoICMP, sport: 3, dport: 3, length: 70},
	{ts: ms(3000), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 40000, tcp: sdk.TCPRst, length: 54},
	{ts: ms(4000), src: A, dst: B, proto: 47, length: 100}, // GRE: "other"
	{ts: ms(5500), src: D, dst: B, proto: sdk.ProtoUDP, sport: 1000, dport: 2000, length: 42},
}

func TestFeaturesHandComputed(t *testing.T) {
	c, a := run(t, Options{}, scenario)
	nan := math.NaN()

	// A sends packets 1,3,4,5,6,9 at 0.1, 0.3, 0.6, 1.6, 2.0, 4.0 s with
	// lengths 60, 54, 200, 80, 98, 100.
	//   bytes = 60+54+200+80+98+100 = 592
	//   Σlen² = 3600+2916+40000+6400+9604+10000 = 72520
	//   var = (6·72520 − 592²)/6² = (435120 − 350464)/36 = 84656/36
	//   gaps = 200, 300, 1000, 400, 2000 ms: mean 3900/5 = 780
	//   var = (40000+90000+1000000+160000+4000000)/5 − 780² = 1058000 − 608400 = 449600
	//   handshake: SYN 0.100, SYN/ACK 0.150 → 50 ms, attributed to A
	//   inbound: packets 2 (60 B), 7 (70 B, ICMP 3/3), 8 (54 B, RST) → 3, 184 B
	wantA := map[string]float64{
		sdk.FeaturePackets: 6, sdk.FeatureBytes: 592,
		sdk.FeaturePacketRate: 6.0 / 5, sdk.FeatureBandwidth: 592.0 * 8 / 5,
		sdk.FeaturePacketSizeMean: 592.0 / 6, sdk.FeaturePacketSizeStd: math.Sqrt(84656.0 / 36),
		sdk.FeaturePacketSizeMin: 54, sdk.FeaturePacketSizeMax: 200,
		sdk.FeatureIATMean: 780, sdk.FeatureIATStd: math.Sqrt(449600),
		sdk.FeatureHandshakeLatency: 50, sdk.FeatureHandshakes: 1,
		sdk.FeatureTCPPackets: 3, sdk.FeatureUDPPackets: 1, sdk.FeatureICMPPackets: 1, sdk.FeatureOtherPackets: 1,
		sdk.FeatureTCPBytes: 60 + 54 + 200, sdk.FeatureUDPBytes: 80, sdk.FeatureICMPBytes: 98, sdk.FeatureOtherBytes: 100,
		sdk.FeatureSYN: 1, sdk.FeatureSYNACK: 0, sdk.FeatureFIN: 0, sdk.FeatureRST: 0, sdk.FeaturePSH: 1, sdk.FeatureACK: 2,
		sdk.FeatureDistinctDstIPs: 2, sdk.FeatureDistinctDstPorts: 2, sdk.FeatureDistinctSrcPorts: 2, // {B,C} {80,53} {40000,5353}
		sdk.FeatureDNSQueries: 1,
		sdk.FeatureInPackets:  3, sdk.FeatureInBytes: 60 + 70 + 54, sdk.FeatureInRST: 1, sdk.FeatureInICMPUnreach: 1,
	}
	rA := c.row(t, 5*time.Second, 0, A)
	expect(t, rA, wantA)
	if rA.Flags != 0 {
		t.Errorf("A 5s flags = %b, want 0 (closed by the watermark at 5.5 s)", rA.Flags)
	}
	if !rA.End.Equal(time.Unix(0, t0+5e9)) {
		t.Errorf("A 5s end = %v", rA.End)
	}

	// B sends packets 2 (SYN/ACK, 60 B) and 8 (RST, 54 B) at 0.15 and 3.0 s:
	//   1 gap of 2850 ms, std 0; sizes mean 57, var ((60−57)²+(54−57)²)/2 = 9
	//   inbound: 1, 3, 4 from A (60+54+200) and 9 (100) → 4, 414 B; D's 5.5 s packet is in the next window
	rB := c.row(t, 5*time.Second, 0, B)
	expect(t, rB, map[string]float64{
		sdk.FeaturePackets: 2, sdk.FeatureBytes: 114, sdk.FeaturePacketSizeMean: 57, sdk.FeaturePacketSizeStd: 3,
		sdk.FeatureIATMean: 2850, sdk.FeatureIATStd: 0,
		sdk.FeatureHandshakeLatency: nan, sdk.FeatureHandshakes: 0,
		sdk.FeatureSYN: 0, sdk.FeatureSYNACK: 1, sdk.FeatureRST: 1, sdk.FeatureACK: 1,
		sdk.FeatureDistinctDstIPs: 1, sdk.FeatureDistinctDstPorts: 1, sdk.FeatureDistinctSrcPorts: 1,
		sdk.FeatureInPackets: 4, sdk.FeatureInBytes: 414, sdk.FeatureInRST: 0,
	})

	// C: one ICMP packet (70 B); IAT undefined; inbound 80+98.
	rC := c.row(t, 5*time.Second, 0, C)
	expect(t, rC, map[string]float64{
		sdk.FeaturePackets: 1, sdk.FeaturePacketSizeStd: 0, sdk.FeaturePacketSizeMin: 70,
		sdk.FeatureIATMean: nan, sdk.FeatureIATStd: nan,
		sdk.FeatureICMPPackets: 1, sdk.FeatureICMPBytes: 70, sdk.FeatureOtherPackets: 0,
		sdk.FeatureDistinctDstIPs: 1, sdk.FeatureDistinctDstPorts: 0, sdk.FeatureDistinctSrcPorts: 0,
		sdk.FeatureInPackets: 2, sdk.FeatureInBytes: 178, sdk.FeatureInICMPUnreach: 0,
	})

	// The 30 s and 180 s windows of A hold the same packets: counts equal,
	// rates divided by the longer window; they end after the last packet
	// (5.5 s) so Close flushes them as partial.
	for _, size := range []time.Duration{30 * time.Second, 180 * time.Second} {
		r := c.row(t, size, 0, A)
		w := map[string]float64{}
		for k, v := range wantA {
			w[k] = v
		}
		w[sdk.FeaturePacketRate] = 6 / size.Seconds()
		w[sdk.FeatureBandwidth] = 592 * 8 / size.Seconds()
		expect(t, r, w)
		if r.Flags != sdk.WindowPartial {
			t.Errorf("A %v flags = %b, want partial", size, r.Flags)
		}
	}

	// D's window [5, 10) is still open at Close → partial. B's record there
	// is inbound-only: packets 0, size and IAT features missing (NaN).
	rD := c.row(t, 5*time.Second, 5*time.Second, D)
	if rD.Flags != sdk.WindowPartial {
		t.Errorf("D flags = %b, want partial", rD.Flags)
	}
	rB2 := c.row(t, 5*time.Second, 5*time.Second, B)
	expect(t, rB2, map[string]float64{
		sdk.FeaturePackets: 0, sdk.FeatureBytes: 0, sdk.FeaturePacketRate: 0, sdk.FeatureBandwidth: 0,
		sdk.FeaturePacketSizeMean: nan, sdk.FeaturePacketSizeStd: nan, sdk.FeaturePacketSizeMin: nan, sdk.FeaturePacketSizeMax: nan,
		sdk.FeatureIATMean: nan, sdk.FeatureIATStd: nan, sdk.FeatureDistinctDstIPs: 0,
		sdk.FeatureInPackets: 1, sdk.FeatureInBytes: 42,
	})
	// B's 30 s record sums its two 5 s records: inbound 4+1 packets.
	expect(t, c.row(t, 30*time.Second, 0, B), map[string]float64{
		sdk.FeaturePackets: 2, sdk.FeatureInPackets: 5, sdk.FeatureInBytes: 414 + 42, sdk.FeatureIATMean: 2850,
	})

	s := a.Stats()
	// 5 s rows: A, B, C in [0,5); B, D in [5,10) → 5. 30 s and 180 s: A, B, C, D → 4 each.
	if !slices.Equal(s.Windows, []uint64{5, 4, 4}) || !slices.Equal(s.Partial, []uint64{2, 4, 4}) {
		t.Errorf("windows %v partial %v, want [5 4 4] [2 4 4]", s.Windows, s.Partial)
	}
	if s.Packets != 10 || s.Handshakes != 1 || s.LatePackets != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestBatchShape checks the batch metadata, row order and emission order.
func TestBatchShape(t *testing.T) {
	c, _ := run(t, Options{}, append(slices.Clone(scenario),
		P{ts: ms(6000), src: "2001:db8::1", dst: A, proto: sdk.ProtoUDP, length: 100},
		P{ts: ms(6000), src: "::1", dst: A, proto: sdk.ProtoUDP, length: 100},
	))
	type key struct {
		size  time.Duration
		start time.Duration
	}
	var got []key
	for _, b := range c.batches {
		if b.SchemaVersion != sdk.FeatureSchemaVersion || !slices.Equal(b.Names, sdk.Features) {
			t.Fatalf("batch schema %d names %v", b.SchemaVersion, b.Names)
		}
		got = append(got, key{b.Window, b.Rows[0].Start.Sub(time.Unix(0, t0))})
		for i := 1; i < len(b.Rows); i++ {
			if b.Rows[i-1].Src.Compare(b.Rows[i].Src) >= 0 || !b.Rows[i].Start.Equal(b.Rows[0].Start) {
				t.Errorf("rows not sorted by start then address: %v", b.Rows)
			}
		}
		for _, r := range b.Rows {
			if len(r.Values) != len(sdk.Features) || r.End.Sub(r.Start) != b.Window {
				t.Errorf("row %s: %d values, span %v", r.Src, len(r.Values), r.End.Sub(r.Start))
			}
		}
	}
	want := []key{{5 * time.Second, 0}, {5 * time.Second, 5 * time.Second}, {30 * time.Second, 0}, {180 * time.Second, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("emission order %v, want %v", got, want)
	}
	// [5,10) holds A (inbound), B, D, ::1 and 2001:db8::1: IPv4 first.
	b := c.batches[1]
	var srcs []string
	for _, r := range b.Rows {
		srcs = append(srcs, r.Src.String())
	}
	if !slices.Equal(srcs, []string{A, B, D, "::1", "2001:db8::1"}) {
		t.Errorf("row order %v", srcs)
	}
}

func TestHandshakes(t *testing.T) {
	syn, synack := sdk.TCPSyn, sdk.TCPSyn|sdk.TCPAck
	ps := []P{
		// A:1000 → B:80: SYN at 0, retransmitted at 1000; SYN/ACK at 1200
		// → latency 1200 − 1000 = 200 ms (latest SYN). The retransmitted
		// SYN/ACK at 1300 matches nothing.
		{ts: ms(0), src: A, dst: B, proto: sdk.ProtoTCP, sport: 1000, dport: 80, tcp: syn, length: 60},
		{ts: ms(1000), src: A, dst: B, proto: sdk.ProtoTCP, sport: 1000, dport: 80, tcp: syn, length: 60},
		{ts: ms(1200), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 1000, tcp: synack, length: 60},
		{ts: ms(1300), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 1000, tcp: synack, length: 60},
		// A:1001 → B:80 SYN at 1500, answered at 1510 → 10 ms. Mean over
		// A's two handshakes in [0,5): (200 + 10)/2 = 105 ms.
		{ts: ms(1500), src: A, dst: B, proto: sdk.ProtoTCP, sport: 1001, dport: 80, tcp: syn, length: 60},
		{ts: ms(1510), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 1001, tcp: synack, length: 60},
		// A SYN/ACK whose ports do not match a SYN: no handshake.
		{ts: ms(1600), src: B, dst: A, proto: sdk.ProtoTCP, sport: 81, dport: 1001, tcp: synack, length: 60},
		// A:1002 → C:443 SYN at 4900, SYN/ACK at 5150 → 250 ms, counted in
		// A's window [5,10), the one holding the SYN/ACK.
		{ts: ms(4900), src: A, dst: C, proto: sdk.ProtoTCP, sport: 1002, dport: 443, tcp: syn, length: 60},
		{ts: ms(5150), src: C, dst: A, proto: sdk.ProtoTCP, sport: 443, dport: 1002, tcp: synack, length: 60},
		// IPv6: 2001:db8::a:5000 → 2001:db8::b:22 SYN 6000, SYN/ACK 6001.5 → 1.5 ms.
		{ts: ms(6000), src: "2001:db8::a", dst: "2001:db8::b", proto: sdk.ProtoTCP, sport: 5000, dport: 22, tcp: syn, length: 80},
		{ts: ms(6001.5), src: "2001:db8::b", dst: "2001:db8::a", proto: sdk.ProtoTCP, sport: 22, dport: 5000, tcp: synack, length: 80},
	}
	c, a := run(t, Options{}, ps)
	expect(t, c.row(t, 5*time.Second, 0, A), map[string]float64{
		sdk.FeatureHandshakes: 2, sdk.FeatureHandshakeLatency: 105, sdk.FeatureSYN: 4, // SYNs at 0, 1000, 1500, 4900
	})
	expect(t, c.row(t, 5*time.Second, 0, B), map[string]float64{
		sdk.FeatureHandshakes: 0, sdk.FeatureHandshakeLatency: math.NaN(), sdk.FeatureSYNACK: 4,
	})
	expect(t, c.row(t, 5*time.Second, 5*time.Second, A), map[string]float64{
		sdk.FeatureHandshakes: 1, sdk.FeatureHandshakeLatency: 250, sdk.FeaturePackets: 0,
	})
	expect(t, c.row(t, 5*time.Second, 5*time.Second, "2001:db8::a"), map[string]float64{
		sdk.FeatureHandshakes: 1, sdk.FeatureHandshakeLatency: 1.5,
	})
	// 30 s: three handshakes of A: (200 + 10 + 250)/3 = 153.33… ms.
	expect(t, c.row(t, 30*time.Second, 0, A), map[string]float64{
		sdk.FeatureHandshakes: 3, sdk.FeatureHandshakeLatency: 460.0 / 3,
	})
	if s := a.Stats(); s.Handshakes != 4 || s.PendingHandshakes != 0 || s.HandshakesEvicted != 0 {
		t.Errorf("stats: handshakes %d pending %d evicted %d", s.Handshakes, s.PendingHandshakes, s.HandshakesEvicted)
	}
}

func TestHandshakeTableBound(t *testing.T) {
	syn, synack := sdk.TCPSyn, sdk.TCPSyn|sdk.TCPAck
	ps := []P{
		{ts: ms(0), src: A, dst: B, proto: sdk.ProtoTCP, sport: 1, dport: 80, tcp: syn, length: 60},
		{ts: ms(10), src: A, dst: B, proto: sdk.ProtoTCP, sport: 2, dport: 80, tcp: syn, length: 60},
		{ts: ms(20), src: A, dst: B, proto: sdk.ProtoTCP, sport: 1, dport: 80, tcp: syn, length: 60}, // refresh port 1: port 2 is now oldest
		{ts: ms(30), src: A, dst: B, proto: sdk.ProtoTCP, sport: 3, dport: 80, tcp: syn, length: 60}, // evicts port 2
		{ts: ms(40), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 2, tcp: synack, length: 60},
		{ts: ms(50), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 1, tcp: synack, length: 60}, // 50 − 20 = 30 ms
		{ts: ms(70), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 3, tcp: synack, length: 60}, // 70 − 30 = 40 ms
	}
	c, a := run(t, Options{MaxPendingHandshakes: 2}, ps)
	expect(t, c.row(t, 5*time.Second, 0, A), map[string]float64{
		sdk.FeatureHandshakes: 2, sdk.FeatureHandshakeLatency: 35, // (30+40)/2
	})
	if s := a.Stats(); s.HandshakesEvicted != 1 || s.Handshakes != 2 || s.PendingHandshakes != 0 {
		t.Errorf("evicted %d handshakes %d pending %d, want 1 2 0", s.HandshakesEvicted, s.Handshakes, s.PendingHandshakes)
	}
}

func TestInboundCounters(t *testing.T) {
	const v6a, v6b = "2001:db8::a", "2001:db8::b"
	ps := []P{
		// RST (with ACK) received by A: in_rst. A RST inside a non-first
		// fragment has no TCP header and does not count.
		{ts: ms(100), src: B, dst: A, proto: sdk.ProtoTCP, sport: 80, dport: 1000, tcp: sdk.TCPRst | sdk.TCPAck, length: 54},
		{ts: ms(200), src: B, dst: A, proto: sdk.ProtoTCP, tcp: sdk.TCPRst, length: 54, flags: sdk.PacketFragment},
		// ICMP: type 3 (any code) counts, type 11 does not.
		{ts: ms(300), src: C, dst: A, proto: sdk.ProtoICMP, sport: 3, dport: 1, length: 70},
		{ts: ms(400), src: C, dst: A, proto: sdk.ProtoICMP, sport: 11, dport: 0, length: 70},
		// ICMPv6 type 1 counts; ICMPv6 type 3 (time exceeded) does not.
		{ts: ms(500), src: v6b, dst: v6a, proto: sdk.ProtoICMPv6, sport: 1, dport: 4, length: 90, flags: sdk.PacketIPv6},
		{ts: ms(600), src: v6b, dst: v6a, proto: sdk.ProtoICMPv6, sport: 3, dport: 0, length: 90, flags: sdk.PacketIPv6},
	}
	c, _ := run(t, Options{}, ps)
	expect(t, c.row(t, 5*time.Second, 0, A), map[string]float64{
		sdk.FeaturePackets: 0, sdk.FeatureInPackets: 4, sdk.FeatureInBytes: 54 + 54 + 70 + 70,
		sdk.FeatureInRST: 1, sdk.FeatureInICMPUnreach: 1,
	})
	expect(t, c.row(t, 5*time.Second, 0, v6a), map[string]float64{
		sdk.FeatureInPackets: 2, sdk.FeatureInBytes: 180, sdk.FeatureInICMPUnreach: 1,
	})
	// B sent the fragment: a TCP packet (IP protocol 6) without flags or ports.
	expect(t, c.row(t, 5*time.Second, 0, B), map[string]float64{
		sdk.FeatureTCPPackets: 2, sdk.FeatureRST: 1, sdk.FeatureACK: 1,
		sdk.FeatureDistinctDstPorts: 1, sdk.FeatureDistinctSrcPorts: 1,
	})
	expect(t, c.row(t, 5*time.Second, 0, v6b), map[string]float64{
		sdk.FeatureICMPPackets: 2, sdk.FeatureICMPBytes: 180, sdk.FeatureDistinctDstIPs: 1,
	})
}

func TestLatePackets(t *testing.T) {
	c := &collector{}
	a, err := New(Options{Lateness: time.Second}, c.emit)
	if err != nil {
		t.Fatal(err)
	}
	add := func(ps ...P) {
		t.Helper()
		if err := a.Add(batchOf(ps)); err != nil {
			t.Fatal(err)
		}
	}
	p := func(off float64) P {
		return P{ts: ms(off), src: A, dst: B, proto: sdk.ProtoUDP, sport: 1, dport: 2, length: 100}
	}
	add(p(10000), p(12000)) // newest 12.0 s → watermark 11.0 s
	add(p(10500))           // 10.5 < 11.0: late
	add(p(11500))           // 11.5 ≥ 11.0: accepted, processed before 12.0
	add(p(11000))           // exactly at the watermark: accepted
	if s := a.Stats(); s.LatePackets != 1 || s.Buffered != 2 {
		t.Fatalf("late %d buffered %d, want 1 and 2 (11.5 and 12.0 wait for the watermark)", s.LatePackets, s.Buffered)
	}
	add(p(16500))                              // watermark 15.5: [10,15) closes
	if n := c.count(5 * time.Second); n != 2 { // A and B
		t.Fatalf("%d rows after the watermark passed 15 s, want 2", n)
	}
	add(p(14900)) // its window closed: late
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// A's [10,15): packets at 10.0, 11.0, 11.5, 12.0 in time order; gaps
	// 1000, 500, 500 ms: mean 2000/3, var = (1e6+2.5e5+2.5e5)/3 − (2000/3)²
	//   = 500000 − 444444.44 = 55555.56 = 500000/9.
	expect(t, c.row(t, 5*time.Second, 10*time.Second, A), map[string]float64{
		sdk.FeaturePackets: 4, sdk.FeatureIATMean: 2000.0 / 3, sdk.FeatureIATStd: math.Sqrt(500000.0 / 9),
	})
	if s := a.Stats(); s.LatePackets != 2 || s.Packets != 5 || s.Buffered != 0 {
		t.Errorf("late %d packets %d buffered %d, want 2 5 0", s.LatePackets, s.Packets, s.Buffered)
	}
}

func TestPartialAtClose(t *testing.T) {
	// Newest packet at 37 s. Close: [0,5) and [35,40)... [0,5) ended long
	// before (closed by watermark), [35,40) is partial, [0,30) complete,
	// [30,60) and [0,180) partial.
	c, _ := run(t, Options{}, []P{
		{ts: ms(1000), src: A, dst: B, proto: sdk.ProtoUDP, length: 100},
		{ts: ms(37000), src: A, dst: B, proto: sdk.ProtoUDP, length: 100},
	})
	cases := []struct {
		size, off time.Duration
		flags     sdk.WindowFlags
	}{
		{5 * time.Second, 0, 0},
		{5 * time.Second, 35 * time.Second, sdk.WindowPartial},
		{30 * time.Second, 0, 0},
		{30 * time.Second, 30 * time.Second, sdk.WindowPartial},
		{180 * time.Second, 0, sdk.WindowPartial},
	}
	for _, k := range cases {
		if r := c.row(t, k.size, k.off, A); r.Flags != k.flags {
			t.Errorf("%v at %v: flags %b, want %b", k.size, k.off, r.Flags, k.flags)
		}
	}
	// A window ending exactly at the newest timestamp is complete.
	c, _ = run(t, Options{}, []P{
		{ts: ms(1000), src: A, dst: B, proto: sdk.ProtoUDP, length: 100},
		{ts: ms(5000), src: C, dst: B, proto: sdk.ProtoUDP, length: 100},
	})
	if r := c.row(t, 5*time.Second, 0, A); r.Flags != 0 {
		t.Errorf("[0,5) with newest packet at 5.0: flags %b, want 0", r.Flags)
	}
}

func TestMaxSources(t *testing.T) {
	c, a := run(t, Options{MaxSources: 2}, []P{
		{ts: ms(0), src: A, dst: B, proto: sdk.ProtoUDP, length: 100},
		{ts: ms(10), src: C, dst: A, proto: sdk.ProtoUDP, length: 50},  // C refused as source; A's inbound counts
		{ts: ms(20), src: A, dst: C, proto: sdk.ProtoUDP, length: 100}, // C refused as destination
		{ts: ms(30), src: D, dst: C, proto: sdk.ProtoUDP, length: 100}, // both refused
		// After the 180 s window closes every address is released.
		{ts: ms(180500), src: C, dst: D, proto: sdk.ProtoUDP, length: 70},
	})
	expect(t, c.row(t, 5*time.Second, 0, A), map[string]float64{
		sdk.FeaturePackets: 2, sdk.FeatureInPackets: 1, sdk.FeatureInBytes: 50,
		sdk.FeatureDistinctDstIPs: 2, // B and C: distinct sets hold addresses, not tracked sources
	})
	expect(t, c.row(t, 5*time.Second, 180*time.Second, C), map[string]float64{sdk.FeaturePackets: 1, sdk.FeatureBytes: 70})
	expect(t, c.row(t, 5*time.Second, 180*time.Second, D), map[string]float64{sdk.FeatureInPackets: 1})
	s := a.Stats()
	// Source refused: C (10 ms), D (30 ms) → 2 packets. Destination
	// refused: C (20 ms), C (30 ms) → 2. Distinct refused addresses: C, D.
	if s.PacketsDropped != 2 || s.InboundDropped != 2 || s.SourcesDropped != 2 {
		t.Errorf("dropped packets %d inbound %d sources %d, want 2 2 2", s.PacketsDropped, s.InboundDropped, s.SourcesDropped)
	}
	if s.ActiveSources != 0 {
		t.Errorf("active sources after Close = %d, want 0", s.ActiveSources)
	}
	if n := c.count(5 * time.Second); n != 4 { // A, B, then C, D
		t.Errorf("%d 5s rows, want 4", n)
	}
}

func TestNonIPAndBadTimestamps(t *testing.T) {
	c, a := run(t, Options{}, []P{
		{ts: ms(0), length: 60, flags: sdk.PacketNonIP},
		{ts: ms(1), src: A, dst: B, proto: sdk.ProtoUDP, length: 100},
		{ts: -5, src: A, dst: B, proto: sdk.ProtoUDP, length: 100},
		{ts: math.MaxInt64, src: A, dst: B, proto: sdk.ProtoUDP, length: 100},
		{ts: ms(2), length: 42, flags: sdk.PacketNonIP},
	})
	s := a.Stats()
	if s.NonIPPackets != 2 || s.BadTimestamps != 2 || s.Packets != 1 {
		t.Errorf("non-IP %d bad ts %d packets %d, want 2 2 1", s.NonIPPackets, s.BadTimestamps, s.Packets)
	}
	expect(t, c.row(t, 5*time.Second, 0, A), map[string]float64{sdk.FeaturePackets: 1})
	if n := c.count(5 * time.Second); n != 2 { // A and B; no record for the zero address
		t.Errorf("%d rows, want 2", n)
	}
}

func TestDistinctCounts(t *testing.T) {
	// One source sends, in [0,5): 1024 distinct destinations (exactly the
	// bound: exact), 20000 distinct destination ports (ports are always
	// exact) and 3 source ports.
	var ps []P
	for i := 0; i < 20000; i++ {
		dst := netipAddrFrom4(10, 1, byte(i%1024>>8), byte(i%1024))
		ps = append(ps, P{ts: ms(float64(i) / 10), src: A, dst: dst, proto: sdk.ProtoTCP,
			sport: uint16(50000 + i%3), dport: uint16(i + 1), length: 60})
	}
	c, _ := run(t, Options{Sizes: []time.Duration{5 * time.Second}}, ps)
	r := c.row(t, 5*time.Second, 0, A)
	expect(t, r, map[string]float64{
		sdk.FeatureDistinctDstIPs: 1024, sdk.FeatureDistinctDstPorts: 20000, sdk.FeatureDistinctSrcPorts: 3,
	})
	if r.Flags != sdk.WindowPartial { // input ends at 2 s
		t.Errorf("flags %b, want partial only (1024 is within the exact bound)", r.Flags)
	}
	// One more destination passes the bound: estimated, and never below
	// bound+1.
	ps = append(ps, P{ts: ms(2000), src: A, dst: "10.2.0.0", proto: sdk.ProtoUDP, length: 60})
	c, _ = run(t, Options{Sizes: []time.Duration{5 * time.Second}}, ps)
	r = c.row(t, 5*time.Second, 0, A)
	if r.Flags&sdk.WindowEstimated == 0 {
		t.Errorf("1025 destinations: flags %b, want estimated", r.Flags)
	}
	if v := get(r, sdk.FeatureDistinctDstIPs); v < 1025 || v > 1025*1.05 {
		t.Errorf("1025 destinations estimated as %v", v)
	}
}

func netipAddrFrom4(a, b, c, d byte) string {
	return netip.AddrFrom4([4]byte{a, b, c, d}).String()
}

func TestDistinctEstimate(t *testing.T) {
	// HyperLogLog with 4096 registers: standard error 1.6 %; these fixed
	// inputs must land within 5 % (3 standard errors).
	for _, n := range []int{2000, 10000, 100000} {
		var ps []P
		for i := 0; i < n; i++ {
			// IPv4 and IPv6 destinations (IPv6 keys are fingerprints).
			dst := netipAddrFrom4(172, byte(16+i>>16), byte(i>>8), byte(i))
			if i%2 == 1 {
				dst = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}).String()
			}
			ps = append(ps, P{ts: ms(float64(i) * 4000 / float64(n)), src: A, dst: dst, proto: sdk.ProtoICMP, sport: 8, length: 60})
		}
		c, _ := run(t, Options{Sizes: []time.Duration{5 * time.Second, 30 * time.Second}}, ps)
		for _, size := range []time.Duration{5 * time.Second, 30 * time.Second} {
			r := c.row(t, size, 0, A)
			v := get(r, sdk.FeatureDistinctDstIPs)
			if r.Flags&sdk.WindowEstimated == 0 || math.Abs(v-float64(n)) > 0.05*float64(n) {
				t.Errorf("n=%d %v: estimate %v flags %b", n, size, v, r.Flags)
			}
		}
	}
}

// TestSketchAccuracy checks the sketch alone over a wide range, including
// the small range where plain HyperLogLog is biased.
func TestSketchAccuracy(t *testing.T) {
	s := make([]uint64, sketchWords)
	if e := sketchEstimate(s); e != 0 {
		t.Fatalf("empty sketch estimates %v", e)
	}
	next := 0
	for _, n := range []int{1, 10, 100, 1000, 3000, 10000, 30000, 100000, 1000000} {
		for ; next < n; next++ {
			sketchAdd(s, mix64(uint64(next)+1))
		}
		e := sketchEstimate(s)
		tol := math.Max(0.05*float64(n), 1) // 3 standard errors, ±1 for tiny n
		if math.Abs(e-float64(n)) > tol {
			t.Errorf("n=%d: estimate %.1f", n, e)
		}
	}
	// Merge is the union: two halves merged equal the whole.
	x, y, all := make([]uint64, sketchWords), make([]uint64, sketchWords), make([]uint64, sketchWords)
	for i := 0; i < 50000; i++ {
		h := mix64(uint64(i) + 7)
		sketchAdd(all, h)
		if i%2 == 0 {
			sketchAdd(x, h)
		} else {
			sketchAdd(y, h)
		}
	}
	sketchMerge(x, y)
	if !slices.Equal(x, all) {
		t.Error("merged sketch differs from the sketch of the union")
	}
}

func TestDistinctSet(t *testing.T) {
	// Walk a port set and an IP set through every representation and check
	// the exact count at each step, and that union equals inserting.
	p := &setPool{limit: 100}
	var ports, ips dset
	for i := 1; i <= 3000; i++ {
		p.add(&ports, portKey(uint16(i*7)), false)
		p.add(&ports, portKey(uint16(i*7)), false) // duplicate
		if got, est := p.count(&ports); got != float64(i) || est {
			t.Fatalf("port set: %d inserted, count %v est %v", i, got, est)
		}
		if i <= 100 {
			a4 := [16]byte{10: 0xff, 11: 0xff, 12: 10, 14: byte(i >> 8), 15: byte(i)}
			p.add(&ips, ipKey(&a4), true)
			p.add(&ips, ipKey(&a4), true)
			if got, est := p.count(&ips); got != float64(i) || est {
				t.Fatalf("ip set: %d inserted, count %v est %v", i, got, est)
			}
		}
	}
	if ports.mode != modeBitmap {
		t.Fatal("3000 ports should be a bitmap")
	}
	// Union of table + bitmap; of inline + table; reset returns storage.
	var u dset
	p.add(&u, portKey(7), false)      // already in ports
	p.add(&u, portKey(7*3001), false) // new (wraps modulo 65536 → still a uint16)
	p.union(&u, &ports, false)
	want := 3001.0
	if (7*3001)%65536 == 0 || uint16(7*3001)%7 == 0 && int(uint16(7*3001))/7 <= 3000 {
		want = 3000
	}
	if got, _ := p.count(&u); got != want {
		t.Errorf("union count %v, want %v", got, want)
	}
	p.reset(&u)
	p.reset(&ports)
	if u.tab != nil || u.n != 0 || u.mode != modeInline || len(p.blocks[10]) != 2 {
		t.Errorf("reset left %+v, pooled bitmaps %d", u, len(p.blocks[10]))
	}
	// The 101st address turns the IP set into a sketch: estimated.
	a4 := [16]byte{10: 0xff, 11: 0xff, 12: 11}
	p.add(&ips, ipKey(&a4), true)
	if got, est := p.count(&ips); !est || got < 101 {
		t.Errorf("past the limit: count %v est %v", got, est)
	}
}
