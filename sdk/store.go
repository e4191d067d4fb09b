package sdk

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Store answers queries over stored history. The core's in-memory store
// implements it, and so can a sink (sink-postgres does); the API serves
// whichever the config names.
type Store interface {
	QueryFeatures(ctx context.Context, q FeatureQuery) (*FeatureBatch, error)
	QueryProtocols(ctx context.Context, q TimeRange) ([]ProtocolCount, error)
	QueryTopSources(ctx context.Context, q TopSourcesQuery) ([]SourceTotal, error)
	QueryAlerts(ctx context.Context, q AlertQuery) (AlertPage, error)
}

// ErrBadCursor is returned for a pagination cursor the store did not issue.
var ErrBadCursor = errors.New("invalid cursor")

// TimeRange is a half-open interval [From, To); zero ends are open.
type TimeRange struct{ From, To time.Time }

// Contains reports whether t lies in the range.
func (r TimeRange) Contains(t time.Time) bool {
	return (r.From.IsZero() || !t.Before(r.From)) && (r.To.IsZero() || t.Before(r.To))
}

// FeatureQuery selects windows of one size, optionally of one source,
// whose start lies in Range. Results are ordered by start, then source.
type FeatureQuery struct {
	Window time.Duration
	Src    netip.Addr // invalid = every source
	Range  TimeRange
	Limit  int // newest Limit windows (still returned oldest first); 0 = store default
}

// ProtocolCount is the traffic of one protocol (tcp, udp, icmp, other).
type ProtocolCount struct {
	Protocol string
	Packets  uint64
	Bytes    uint64
}

// TopSourcesQuery ranks sources by bytes or packets in a time range.
type TopSourcesQuery struct {
	By    string // "bytes" or "packets"
	Range TimeRange
	Limit int
}

// SourceTotal is one source's traffic in a range.
type SourceTotal struct {
	Src     netip.Addr
	Packets uint64
	Bytes   uint64
}

// AlertQuery filters alerts; empty fields match everything. Results are
// newest first; Cursor continues a previous page.
type AlertQuery struct {
	Severity Severity
	Label    string
	Src      netip.Addr
	Range    TimeRange // on the alert's window end
	Limit    int
	Cursor   string
}

// AlertPage is one page of alerts; NextCursor is empty on the last page.
type AlertPage struct {
	Alerts     []Alert
	NextCursor string
}
