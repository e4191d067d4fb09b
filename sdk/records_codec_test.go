package sdk

import (
	"bytes"
	"encoding/json"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func codecPackets() *PacketBatch {
	b := &PacketBatch{FirstIndex: 1 << 40, Counters: CaptureCounters{Packets: 7, BytesRead: 1234, BytesTotal: 99999, KernelDrops: 3, DecodeErrors: 2, NonIP: 1}}
	v6 := netip.MustParseAddr("2001:db8::dead:beef")
	for i := range 3 {
		p := Packet{Timestamp: 1_700_000_000_000_000_000 + int64(i), SrcPort: 443, DstPort: uint16(50000 + i), Protocol: ProtoTCP, TCPFlags: TCPSyn | TCPAck, Length: uint32(60 + i)}
		if i == 1 {
			p.SetAddrs(v6, netip.MustParseAddr("fe80::1"))
			p.Flags = PacketIPv6
		} else {
			p.SetAddrs(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.168.1.200"))
		}
		p.Frame = bytes.Repeat([]byte{byte(i), 0xff, 0x00}, 20+i) // raw frames, with zero bytes
		b.Append(&p)
	}
	return b
}

func TestRecordsCodecPackets(t *testing.T) {
	in := codecPackets()
	buf, err := MarshalRecords(Records{Seq: 42, Packets: in})
	if err != nil {
		t.Fatal(err)
	}
	out, err := UnmarshalRecords(buf)
	if err != nil {
		t.Fatal(err)
	}
	if out.Seq != 42 || out.Features != nil || out.Alerts != nil || out.Packets == nil {
		t.Fatalf("decoded %+v", out)
	}
	if !reflect.DeepEqual(out.Packets, in) {
		t.Fatalf("packets differ:\n got %+v\nwant %+v", out.Packets, in)
	}
	if got := out.Packets.Src(1); got != netip.MustParseAddr("2001:db8::dead:beef") {
		t.Fatalf("IPv6 source decoded as %v", got)
	}
	if got := out.Packets.Dst(0); got != netip.MustParseAddr("192.168.1.200") {
		t.Fatalf("IPv4 destination decoded as %v", got)
	}
	// The decoded batch owns its memory: scribbling on the input must not change it.
	for i := range buf {
		buf[i] = 0
	}
	if !reflect.DeepEqual(out.Packets, codecPackets()) {
		t.Fatal("decoded packets share memory with the encoded bytes")
	}
}

func TestRecordsCodecFeatures(t *testing.T) {
	start := time.Unix(1_700_000_010, 0).UTC()
	in := &FeatureBatch{Sensor: "edge-1", Window: 30 * time.Second, SchemaVersion: FeatureSchemaVersion, Names: []string{"a", "b", "c"}, Rows: []FeatureRow{
		{Src: netip.MustParseAddr("2001:db8::1"), Start: start, End: start.Add(30 * time.Second), Flags: 1, Values: []float64{math.NaN(), math.Inf(1), math.Copysign(0, -1)}},
		{Src: netip.MustParseAddr("10.1.2.3"), Start: start, End: start.Add(30 * time.Second), Values: []float64{1.5, math.Inf(-1), math.MaxFloat64}, Sensor: "other"},
	}}
	buf, err := MarshalRecords(Records{Seq: 7, Features: in})
	if err != nil {
		t.Fatal(err)
	}
	out, err := UnmarshalRecords(buf)
	if err != nil {
		t.Fatal(err)
	}
	f := out.Features
	if out.Seq != 7 || f == nil || out.Packets != nil || out.Alerts != nil {
		t.Fatalf("decoded %+v", out)
	}
	if f.Sensor != in.Sensor || f.Window != in.Window || f.SchemaVersion != in.SchemaVersion || !reflect.DeepEqual(f.Names, in.Names) || len(f.Rows) != len(in.Rows) {
		t.Fatalf("batch header differs: %+v", f)
	}
	for i, r := range f.Rows {
		w := in.Rows[i]
		if r.Src != w.Src || !r.Start.Equal(w.Start) || !r.End.Equal(w.End) || r.Flags != w.Flags || r.Sensor != w.Sensor {
			t.Fatalf("row %d: got %+v want %+v", i, r, w)
		}
		for j, v := range r.Values {
			if math.Float64bits(v) != math.Float64bits(w.Values[j]) { // NaN and -0 bit for bit
				t.Fatalf("row %d value %d: got %v (%x) want %v (%x)", i, j, v, math.Float64bits(v), w.Values[j], math.Float64bits(w.Values[j]))
			}
		}
	}
	if !f.Rows[0].Src.Is6() || !f.Rows[1].Src.Is4() {
		t.Fatalf("address families changed: %v %v", f.Rows[0].Src, f.Rows[1].Src)
	}
}

func TestRecordsCodecAlerts(t *testing.T) {
	at := time.Unix(1_700_000_100, 123).UTC()
	in := []Alert{
		{Row: 3, Label: "portscan", Score: 0.97, Severity: SeverityHigh, RunnerUp: "benign", RunnerUpScore: math.NaN(),
			TopFeatures: []FeatureValue{{Name: "dst_ports", Value: 1024, Weight: 0.5}, {Name: "syn", Value: math.NaN(), Weight: -1}},
			Details:     json.RawMessage(`{"model":"x","n":[1,2]}`), ID: "run-1", Sensor: "s", Detector: "xgb",
			Src: netip.MustParseAddr("2001:db8:ffff::42"), Window: 180 * time.Second, Start: at.Add(-180 * time.Second), End: at, Time: at},
		{Label: "benign", Src: netip.MustParseAddr("172.16.0.9")},
	}
	buf, err := MarshalRecords(Records{Seq: 1, Alerts: in})
	if err != nil {
		t.Fatal(err)
	}
	out, err := UnmarshalRecords(buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Alerts) != 2 || out.Packets != nil || out.Features != nil {
		t.Fatalf("decoded %+v", out)
	}
	a, w := out.Alerts[0], in[0]
	if a.Row != w.Row || a.Label != w.Label || a.Score != w.Score || a.Severity != w.Severity || a.RunnerUp != w.RunnerUp ||
		!math.IsNaN(a.RunnerUpScore) || string(a.Details) != string(w.Details) || a.ID != w.ID || a.Sensor != w.Sensor ||
		a.Detector != w.Detector || a.Src != w.Src || a.Window != w.Window || !a.Start.Equal(w.Start) || !a.End.Equal(w.End) || !a.Time.Equal(w.Time) {
		t.Fatalf("alert differs:\n got %+v\nwant %+v", a, w)
	}
	if len(a.TopFeatures) != 2 || a.TopFeatures[0] != w.TopFeatures[0] || a.TopFeatures[1].Name != "syn" || !math.IsNaN(a.TopFeatures[1].Value) || a.TopFeatures[1].Weight != -1 {
		t.Fatalf("top features %+v", a.TopFeatures)
	}
	if b := out.Alerts[1]; b.Label != "benign" || b.Src != in[1].Src || !b.Time.IsZero() || b.Details != nil {
		t.Fatalf("second alert %+v", b)
	}
}

func TestRecordsCodecRejects(t *testing.T) {
	if _, err := MarshalRecords(Records{Packets: &PacketBatch{}, Alerts: []Alert{{}}}); err == nil {
		t.Fatal("two record kinds in one batch were accepted")
	}
	bad := codecPackets()
	bad.Lengths = bad.Lengths[:1]
	if _, err := MarshalRecords(Records{Packets: bad}); err == nil || !strings.Contains(err.Error(), "malformed packet batch") {
		t.Fatalf("malformed packet batch: %v", err)
	}
	if _, err := MarshalRecords(Records{Features: &FeatureBatch{Names: []string{"a"}, Rows: []FeatureRow{{Values: []float64{1, 2}}}}}); err == nil {
		t.Fatal("feature row wider than its names was accepted")
	}
	// An empty message carries no record kind.
	if _, err := UnmarshalRecords(nil); err == nil || !strings.Contains(err.Error(), "empty record batch") {
		t.Fatalf("empty message: %v", err)
	}
	if _, err := UnmarshalRecords([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Fatal("garbage decoded")
	}
	// A Records with nothing set is an empty alert batch, as Send treats it.
	buf, err := MarshalRecords(Records{Seq: 9})
	if err != nil {
		t.Fatal(err)
	}
	out, err := UnmarshalRecords(buf)
	if err != nil || out.Seq != 9 || out.Alerts == nil || len(out.Alerts) != 0 {
		t.Fatalf("empty records decoded as %+v, %v", out, err)
	}
}
