package spool

import (
	"math"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// TestSpoolCarriesSinkBatches is the intended use: sink batches encoded
// with sdk.MarshalRecords, spooled, the core killed, and the batches
// replayed with the spool's sequence numbers, decoded intact.
func TestSpoolCarriesSinkBatches(t *testing.T) {
	dir := t.TempDir()
	s, _, err := Open(Options{Dir: dir, SegmentBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	pk := &sdk.PacketBatch{FirstIndex: 10}
	for i := range 20 {
		p := sdk.Packet{Timestamp: int64(1e18) + int64(i), Protocol: sdk.ProtoUDP, Length: 90, SrcPort: 53, DstPort: uint16(1000 + i), Frame: make([]byte, 90)}
		p.SetAddrs(netip.MustParseAddr("2001:db8::5"), netip.MustParseAddr("10.9.8.7"))
		pk.Append(&p)
	}
	start := time.Unix(1_700_000_000, 0).UTC()
	fb := &sdk.FeatureBatch{Sensor: "s1", Window: 5 * time.Second, Names: []string{"x", "y"}, Rows: []sdk.FeatureRow{
		{Src: netip.MustParseAddr("fe80::1"), Start: start, End: start.Add(5 * time.Second), Values: []float64{math.NaN(), 3}},
	}}
	alerts := []sdk.Alert{{Label: "scan", Score: 0.9, Severity: sdk.SeverityHigh, Src: netip.MustParseAddr("10.0.0.1"), Window: 30 * time.Second, Start: start, End: start.Add(30 * time.Second)}}
	batches := []sdk.Records{{Packets: pk}, {Features: fb}, {Alerts: alerts}}
	var seqs []uint64
	for _, b := range batches {
		payload, err := sdk.MarshalRecords(b)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := s.Append(payload)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	// The sink acknowledged the packets before the core was killed.
	if err := s.Ack(seqs[0]); err != nil {
		t.Fatal(err)
	}
	s.crash()

	s2, rec := openT(t, Options{Dir: dir, SegmentBytes: 4 << 10})
	if rec.Records != 2 || !rec.Clean() {
		t.Fatalf("recovery %s", rec)
	}
	got := readAll(t, s2.Reader(0))
	if len(got) != 2 || got[0].Seq != seqs[1] || got[1].Seq != seqs[2] {
		t.Fatalf("replayed %v, want %v", seqsOf(got), seqs[1:])
	}
	f, err := sdk.UnmarshalRecords(got[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if f.Features == nil || len(f.Features.Rows) != 1 || !math.IsNaN(f.Features.Rows[0].Values[0]) || f.Features.Rows[0].Src != fb.Rows[0].Src || !f.Features.Rows[0].End.Equal(fb.Rows[0].End) {
		t.Fatalf("features decoded as %+v", f.Features)
	}
	a, err := sdk.UnmarshalRecords(got[1].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Alerts) != 1 || a.Alerts[0].Label != "scan" || a.Alerts[0].Src != alerts[0].Src || !a.Alerts[0].Start.Equal(start) {
		t.Fatalf("alerts decoded as %+v", a.Alerts)
	}
	// The packet batch, had it been replayed, decodes to the same columns.
	payload, _ := sdk.MarshalRecords(batches[0])
	p, err := sdk.UnmarshalRecords(payload)
	if err != nil || !reflect.DeepEqual(p.Packets, pk) {
		t.Fatalf("packets round trip: %v", err)
	}
}
