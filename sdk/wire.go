package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	pb "github.com/netguardian/netguardian/sdk/proto/netguardian/v1"
)

// Conversions between the SDK's types and the wire messages. Packet batches
// share their column slices with the message (no copy): both sides use the
// same columnar layout on purpose.

func infoToPB(i Info) (*pb.PluginInfo, error) {
	out := &pb.PluginInfo{
		Name: i.Name, Version: i.Version, Kind: string(i.Kind),
		FeatureSchemaVersion: i.FeatureSchemaVersion, Features: i.Features, Labels: i.Labels,
		WantsFrames: i.WantsFrames, ServesStore: i.ServesStore, SdkVersion: i.SDKVersion,
	}
	for _, w := range i.Windows {
		out.WindowSeconds = append(out.WindowSeconds, int64(w/time.Second))
	}
	for _, r := range i.Records {
		out.Records = append(out.Records, string(r))
	}
	for _, a := range i.Config {
		pa := &pb.Attribute{Name: a.Name, Type: string(a.Type), Required: a.Required, Description: a.Description, Sensitive: a.Sensitive}
		if a.Default != nil {
			b, err := json.Marshal(a.Default)
			if err != nil {
				return nil, fmt.Errorf("default of %q: %w", a.Name, err)
			}
			pa.DefaultJson = string(b)
		}
		out.ConfigSchema = append(out.ConfigSchema, pa)
	}
	return out, nil
}

// infoFromPB converts a Describe answer; defaults are decoded from JSON.
func infoFromPB(p *pb.PluginInfo) (Info, error) {
	i := Info{
		Name: p.Name, Version: p.Version, Kind: Kind(p.Kind),
		FeatureSchemaVersion: p.FeatureSchemaVersion, Features: p.Features, Labels: p.Labels,
		WantsFrames: p.WantsFrames, ServesStore: p.ServesStore, SDKVersion: p.SdkVersion,
	}
	for _, s := range p.WindowSeconds {
		i.Windows = append(i.Windows, time.Duration(s)*time.Second)
	}
	for _, r := range p.Records {
		i.Records = append(i.Records, RecordKind(r))
	}
	for _, a := range p.ConfigSchema {
		sa := Attribute{Name: a.Name, Type: AttrType(a.Type), Required: a.Required, Description: a.Description, Sensitive: a.Sensitive}
		if a.DefaultJson != "" {
			if err := json.Unmarshal([]byte(a.DefaultJson), &sa.Default); err != nil {
				return i, fmt.Errorf("plugin %s: default of %q is not JSON: %w", p.Name, a.Name, err)
			}
		}
		i.Config = append(i.Config, sa)
	}
	return i, nil
}

func runtimeToPB(r Runtime) *pb.RuntimeOptions {
	return &pb.RuntimeOptions{Sensor: r.Sensor, BatchSize: uint32(r.BatchSize), FlushIntervalMs: r.FlushInterval.Milliseconds(),
		IncludeFrames: r.IncludeFrames, FrameSnaplen: uint32(r.FrameSnaplen)}
}

func runtimeFromPB(r *pb.RuntimeOptions) Runtime {
	if r == nil {
		return Runtime{}
	}
	return Runtime{Sensor: r.Sensor, BatchSize: int(r.BatchSize), FlushInterval: time.Duration(r.FlushIntervalMs) * time.Millisecond,
		IncludeFrames: r.IncludeFrames, FrameSnaplen: int(r.FrameSnaplen)}
}

// packetsToPB shares b's columns with the message.
func packetsToPB(b *PacketBatch) *pb.PacketBatch {
	c := b.Counters
	return &pb.PacketBatch{
		FirstIndex: b.FirstIndex, TimestampNs: b.Timestamps, SrcAddrs: b.SrcAddrs, DstAddrs: b.DstAddrs,
		SrcPorts: b.SrcPorts, DstPorts: b.DstPorts, Protocols: b.Protocols, Lengths: b.Lengths,
		TcpFlags: b.TCPFlags, Flags: b.Flags, Frames: b.Frames,
		Counters: &pb.CaptureCounters{Packets: c.Packets, BytesRead: c.BytesRead, BytesTotal: c.BytesTotal,
			KernelDrops: c.KernelDrops, DecodeErrors: c.DecodeErrors, NonIp: c.NonIP},
	}
}

// packetsFromPB shares the message's columns and validates their lengths.
func packetsFromPB(p *pb.PacketBatch) (*PacketBatch, error) {
	b := packetsFromPBShared(p)
	return b, b.Validate()
}

// packetsFromPBShared shares the message's columns, unchecked.
func packetsFromPBShared(p *pb.PacketBatch) *PacketBatch {
	b := &PacketBatch{
		FirstIndex: p.FirstIndex, Timestamps: p.TimestampNs, SrcAddrs: p.SrcAddrs, DstAddrs: p.DstAddrs,
		SrcPorts: p.SrcPorts, DstPorts: p.DstPorts, Protocols: p.Protocols, Lengths: p.Lengths,
		TCPFlags: p.TcpFlags, Flags: p.Flags, Frames: p.Frames,
	}
	if c := p.Counters; c != nil {
		b.Counters = CaptureCounters{Packets: c.Packets, BytesRead: c.BytesRead, BytesTotal: c.BytesTotal,
			KernelDrops: c.KernelDrops, DecodeErrors: c.DecodeErrors, NonIP: c.NonIp}
	}
	return b
}

func addrBytes(a netip.Addr) []byte {
	if !a.IsValid() {
		return nil
	}
	b := a.As16()
	return b[:]
}

func addrFromBytes(b []byte) (netip.Addr, error) {
	switch len(b) {
	case 0:
		return netip.Addr{}, nil
	case 16:
		return netip.AddrFrom16([16]byte(b)).Unmap(), nil
	}
	return netip.Addr{}, fmt.Errorf("address of %d bytes, want 16", len(b))
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// featuresToPB converts a feature batch.
func featuresToPB(b *FeatureBatch) *pb.FeatureBatch {
	out := &pb.FeatureBatch{Sensor: b.Sensor, WindowSeconds: int64(b.Window / time.Second), FeatureSchemaVersion: b.SchemaVersion, Names: b.Names}
	out.Rows = make([]*pb.FeatureRow, len(b.Rows))
	rows := make([]pb.FeatureRow, len(b.Rows)) // one allocation for all rows
	for i := range b.Rows {
		r := &b.Rows[i]
		rows[i] = pb.FeatureRow{SrcAddr: addrBytes(r.Src), StartNs: ns(r.Start), EndNs: ns(r.End), Flags: uint32(r.Flags), Values: r.Values, Sensor: r.Sensor}
		out.Rows[i] = &rows[i]
	}
	return out
}

// featuresFromPB converts a feature batch, checking row widths.
func featuresFromPB(p *pb.FeatureBatch) (*FeatureBatch, error) {
	b := &FeatureBatch{Sensor: p.Sensor, Window: time.Duration(p.WindowSeconds) * time.Second, SchemaVersion: p.FeatureSchemaVersion, Names: p.Names}
	b.Rows = make([]FeatureRow, len(p.Rows))
	for i, r := range p.Rows {
		src, err := addrFromBytes(r.SrcAddr)
		if err != nil {
			return nil, fmt.Errorf("feature row %d: %w", i, err)
		}
		if len(r.Values) != len(p.Names) {
			return nil, fmt.Errorf("feature row %d has %d values for %d names", i, len(r.Values), len(p.Names))
		}
		b.Rows[i] = FeatureRow{Src: src, Start: fromNS(r.StartNs), End: fromNS(r.EndNs), Flags: WindowFlags(r.Flags), Values: r.Values, Sensor: r.Sensor}
	}
	return b, nil
}

// alertsToPB converts alerts.
func alertsToPB(alerts []Alert) *pb.AlertBatch {
	out := &pb.AlertBatch{Alerts: make([]*pb.Alert, len(alerts))}
	for i, a := range alerts {
		pa := &pb.Alert{
			Row: uint32(a.Row), Label: a.Label, Score: a.Score, Severity: string(a.Severity),
			RunnerUpLabel: a.RunnerUp, RunnerUpScore: a.RunnerUpScore, DetailsJson: string(a.Details),
			Id: a.ID, Sensor: a.Sensor, Detector: a.Detector, SrcAddr: addrBytes(a.Src),
			WindowSeconds: int64(a.Window / time.Second), StartNs: ns(a.Start), EndNs: ns(a.End), TimeNs: ns(a.Time),
		}
		for _, f := range a.TopFeatures {
			pa.TopFeatures = append(pa.TopFeatures, &pb.FeatureValue{Name: f.Name, Value: f.Value, Weight: f.Weight})
		}
		out.Alerts[i] = pa
	}
	return out
}

// alertsFromPB converts alerts, rejecting malformed addresses and details.
func alertsFromPB(p *pb.AlertBatch) ([]Alert, error) {
	out := make([]Alert, len(p.GetAlerts()))
	for i, pa := range p.GetAlerts() {
		src, err := addrFromBytes(pa.SrcAddr)
		if err != nil {
			return nil, fmt.Errorf("alert %d: %w", i, err)
		}
		a := Alert{
			Row: int(pa.Row), Label: pa.Label, Score: pa.Score, Severity: Severity(pa.Severity),
			RunnerUp: pa.RunnerUpLabel, RunnerUpScore: pa.RunnerUpScore,
			ID: pa.Id, Sensor: pa.Sensor, Detector: pa.Detector, Src: src,
			Window: time.Duration(pa.WindowSeconds) * time.Second, Start: fromNS(pa.StartNs), End: fromNS(pa.EndNs), Time: fromNS(pa.TimeNs),
		}
		if pa.DetailsJson != "" {
			if !json.Valid([]byte(pa.DetailsJson)) {
				return nil, fmt.Errorf("alert %d: details are not valid JSON", i)
			}
			a.Details = json.RawMessage(pa.DetailsJson)
		}
		for _, f := range pa.TopFeatures {
			a.TopFeatures = append(a.TopFeatures, FeatureValue{Name: f.Name, Value: f.Value, Weight: f.Weight})
		}
		out[i] = a
	}
	return out, nil
}

func rangeToPB(r TimeRange) *pb.TimeRange {
	return &pb.TimeRange{FromNs: ns(r.From), ToNs: ns(r.To)}
}

func rangeFromPB(r *pb.TimeRange) TimeRange {
	if r == nil {
		return TimeRange{}
	}
	return TimeRange{From: fromNS(r.FromNs), To: fromNS(r.ToNs)}
}

func secs(s int64) time.Duration { return time.Duration(s) * time.Second }

// recordsToPB converts a sink batch; exactly one record field is used
// (none = an empty alert batch).
func recordsToPB(r Records) *pb.RecordBatch {
	m := &pb.RecordBatch{Seq: r.Seq}
	switch {
	case r.Packets != nil:
		m.Records = &pb.RecordBatch_Packets{Packets: packetsToPB(r.Packets)}
	case r.Features != nil:
		m.Records = &pb.RecordBatch_Features{Features: featuresToPB(r.Features)}
	default:
		m.Records = &pb.RecordBatch_Alerts{Alerts: alertsToPB(r.Alerts)}
	}
	return m
}

// recordsFromPB converts a sink batch with the checks of each record kind.
func recordsFromPB(m *pb.RecordBatch) (Records, error) {
	rec := Records{Seq: m.Seq}
	var err error
	switch r := m.Records.(type) {
	case *pb.RecordBatch_Packets:
		rec.Packets, err = packetsFromPB(r.Packets)
	case *pb.RecordBatch_Features:
		rec.Features, err = featuresFromPB(r.Features)
	case *pb.RecordBatch_Alerts:
		rec.Alerts, err = alertsFromPB(r.Alerts)
	default:
		err = errors.New("empty record batch")
	}
	return rec, err
}
