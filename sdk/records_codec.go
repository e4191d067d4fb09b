package sdk

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	pb "github.com/netguardian/netguardian/sdk/proto/netguardian/v1"
)

// MarshalRecords encodes r in its wire form, a netguardian.v1.RecordBatch
// message: the same bytes a sink receives, so a batch written to disk (the
// core's spool) and read back is exactly what would have been sent.
//
// Exactly one of r's record fields may be set; a Records with none is an
// (empty) alert batch, as RecordStream.Send treats it. A packet batch with
// columns of different lengths is rejected here rather than when read back.
func MarshalRecords(r Records) ([]byte, error) {
	set := 0
	if r.Packets != nil {
		set++
	}
	if r.Features != nil {
		set++
	}
	if r.Alerts != nil {
		set++
	}
	if set > 1 {
		return nil, errors.New("marshal records: more than one of packets, features and alerts is set")
	}
	switch {
	case r.Packets != nil:
		if err := r.Packets.Validate(); err != nil {
			return nil, fmt.Errorf("marshal records: %w", err)
		}
	case r.Features != nil:
		for i, row := range r.Features.Rows {
			if len(row.Values) != len(r.Features.Names) {
				return nil, fmt.Errorf("marshal records: feature row %d has %d values for %d names", i, len(row.Values), len(r.Features.Names))
			}
		}
	}
	b, err := proto.Marshal(recordsToPB(r))
	if err != nil {
		return nil, fmt.Errorf("marshal records: %w", err)
	}
	return b, nil
}

// UnmarshalRecords decodes what MarshalRecords produced (or any
// RecordBatch message), with the checks a sink applies to what it
// receives: column lengths, row widths, 16-byte addresses, JSON details.
// The result does not share memory with b.
func UnmarshalRecords(b []byte) (Records, error) {
	var m pb.RecordBatch
	if err := proto.Unmarshal(b, &m); err != nil {
		return Records{}, fmt.Errorf("unmarshal records: %w", err)
	}
	rec, err := recordsFromPB(&m)
	if err != nil {
		return Records{}, fmt.Errorf("unmarshal records: %w", err)
	}
	return rec, nil
}
