// Package store holds the core's in-memory recent history: the embedded
// default behind the REST API when no sink serves `store`. It implements
// sdk.Store with the semantics the contract suite sdk/storetest defines.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/netguardian/netguardian/sdk"
)

// Defaults for Options and for queries that leave Limit at 0.
const (
	DefaultMaxRowsPerWindow = 200_000
	DefaultMaxAlerts        = 100_000
	DefaultFeatureLimit     = 10_000
	DefaultTopSourcesLimit  = 10
	DefaultAlertLimit       = 100
)

// Options bound the memory store.
type Options struct {
	// MaxRowsPerWindow caps the rows held per window size; the oldest
	// (by window start) go first. 0 means DefaultMaxRowsPerWindow.
	MaxRowsPerWindow int
	// MaxAlerts caps the alerts held; the oldest (by Time) go first. 0 means
	// DefaultMaxAlerts.
	MaxAlerts int
	// Retention, when positive, drops rows whose start is more than
	// Retention before the newest start of their window size, and alerts
	// whose Time is more than Retention before the newest alert's.
	Retention time.Duration
}

// Stats is what the store holds and has dropped.
type Stats struct {
	Rows          map[time.Duration]int // rows held per window size
	Alerts        int
	RowsEvicted   uint64 // rows dropped for the cap or retention
	AlertsEvicted uint64
}

// Memory is a bounded in-memory sdk.Store, safe for concurrent use. It also
// implements storetest.Appender. Rows are kept per window size sorted by
// (start, src, sensor) and alerts by (Time, ID), so ranges are binary
// searches and evicting the oldest is dropping a prefix.
type Memory struct {
	opts Options

	mu            sync.RWMutex
	series        map[time.Duration]*series
	alerts        []storedAlert
	alertIDs      map[string]struct{}
	rowsEvicted   uint64
	alertsEvicted uint64
}

var _ sdk.Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory(opts Options) *Memory {
	if opts.MaxRowsPerWindow <= 0 {
		opts.MaxRowsPerWindow = DefaultMaxRowsPerWindow
	}
	if opts.MaxAlerts <= 0 {
		opts.MaxAlerts = DefaultMaxAlerts
	}
	return &Memory{opts: opts, series: map[time.Duration]*series{}, alertIDs: map[string]struct{}{}}
}

// Stats reports what the store holds and has evicted.
func (m *Memory) Stats() Stats {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := Stats{Rows: make(map[time.Duration]int, len(m.series)), Alerts: len(m.alerts),
		RowsEvicted: m.rowsEvicted, AlertsEvicted: m.alertsEvicted}
	for w, ser := range m.series {
		s.Rows[w] = len(ser.rows)
	}
	return s
}

// Flush does nothing: appends are visible as soon as they return.
func (m *Memory) Flush(ctx context.Context) error { return ctx.Err() }

// ---- features ----------------------------------------------------------------

// series holds the rows of one window size. Columns grow as batches bring
// new feature names; a row's values follow names, and a row shorter than
// names lacks the later columns (NaN).
type series struct {
	names []string
	index map[string]int
	rows  []row
	// Column positions of the features queries sum; -1 until seen.
	packets, bytes int
	proto          [4][2]int // tcp, udp, icmp, other × packets, bytes
	// buckets hold running protocol totals per window start, oldest first,
	// so a protocol query sums one entry per window instead of every row.
	buckets []bucket
}

type row struct {
	start, end int64 // unix ns
	src        netip.Addr
	sensor     string
	flags      sdk.WindowFlags
	values     []float64
	// packets and bytes totals, converted once for top-source queries
	// (which then need not touch values).
	packets, bytes uint64
}

type bucket struct {
	start int64
	rows  int
	proto [4][2]uint64
}

func cmpRow(a, b *row) int {
	if c := cmp.Compare(a.start, b.start); c != 0 {
		return c
	}
	if c := a.src.Compare(b.src); c != 0 {
		return c
	}
	return strings.Compare(a.sensor, b.sensor)
}

var protoNames = [4]struct{ proto, packets, bytes string }{
	{"tcp", sdk.FeatureTCPPackets, sdk.FeatureTCPBytes},
	{"udp", sdk.FeatureUDPPackets, sdk.FeatureUDPBytes},
	{"icmp", sdk.FeatureICMPPackets, sdk.FeatureICMPBytes},
	{"other", sdk.FeatureOtherPackets, sdk.FeatureOtherBytes},
}

func newSeries() *series {
	s := &series{index: map[string]int{}, packets: -1, bytes: -1}
	for i := range s.proto {
		s.proto[i] = [2]int{-1, -1}
	}
	return s
}

// column returns name's column, adding it when new.
func (s *series) column(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	i := len(s.names)
	s.names = append(s.names, name)
	s.index[name] = i
	switch name {
	case sdk.FeaturePackets:
		s.packets = i
	case sdk.FeatureBytes:
		s.bytes = i
	}
	for p, pn := range protoNames {
		if name == pn.packets {
			s.proto[p][0] = i
		}
		if name == pn.bytes {
			s.proto[p][1] = i
		}
	}
	return i
}

// searchStart returns the first row whose start is >= ns.
func (s *series) searchStart(ns int64) int {
	return sort.Search(len(s.rows), func(i int) bool { return s.rows[i].start >= ns })
}

// span returns the rows [lo, hi) whose start lies in r.
func (s *series) span(r sdk.TimeRange) (lo, hi int) {
	hi = len(s.rows)
	if !r.From.IsZero() {
		lo = s.searchStart(r.From.UnixNano())
	}
	if !r.To.IsZero() {
		hi = s.searchStart(r.To.UnixNano())
	}
	return lo, max(lo, hi)
}

// account adds (sign 1) or removes (sign -1) r in its start's bucket.
func (s *series) account(r *row, sign int) {
	n := len(s.buckets)
	var i int
	switch {
	case n > 0 && s.buckets[n-1].start == r.start:
		i = n - 1 // the usual case: the newest window
	default:
		i = sort.Search(n, func(k int) bool { return s.buckets[k].start >= r.start })
		if i == n || s.buckets[i].start != r.start {
			s.buckets = slices.Insert(s.buckets, i, bucket{start: r.start})
		}
	}
	b := &s.buckets[i]
	b.rows += sign
	for p := range b.proto {
		for k := range 2 {
			c := count(r.values, s.proto[p][k])
			if sign > 0 {
				b.proto[p][k] += c
			} else {
				b.proto[p][k] -= c
			}
		}
	}
}

// insert merges sorted, duplicate-free rows into s.rows, skipping keys it
// already holds (a re-sent batch), and returns how many it added.
func (s *series) insert(in []row) int {
	if len(in) == 0 {
		return 0
	}
	n := len(s.rows)
	if n == 0 || cmpRow(&s.rows[n-1], &in[0]) < 0 {
		s.rows = append(s.rows, in...) // the usual case: newer than all held
		for i := range in {
			s.account(&in[i], 1)
		}
		return len(in)
	}
	// Late rows: merge with the tail from the first held row >= in[0].
	p := sort.Search(n, func(i int) bool { return cmpRow(&s.rows[i], &in[0]) >= 0 })
	tail := slices.Clone(s.rows[p:])
	clear(s.rows[p:]) // drop references the merge may not overwrite
	s.rows = s.rows[:p]
	added, i, j := 0, 0, 0
	for i < len(tail) || j < len(in) {
		switch {
		case j == len(in):
			s.rows = append(s.rows, tail[i])
			i++
		case i == len(tail):
			s.rows = append(s.rows, in[j])
			s.account(&in[j], 1)
			j, added = j+1, added+1
		default:
			c := cmpRow(&tail[i], &in[j])
			if c <= 0 {
				s.rows = append(s.rows, tail[i])
				i++
			}
			if c == 0 {
				j++ // held already: keep the first copy
			}
			if c > 0 {
				s.rows = append(s.rows, in[j])
				s.account(&in[j], 1)
				j, added = j+1, added+1
			}
		}
	}
	return added
}

// evict drops the oldest rows beyond the cap and outside the retention,
// and returns how many.
func (s *series) evict(maxRows int, retention time.Duration) int {
	drop := max(0, len(s.rows)-maxRows)
	if retention > 0 && len(s.rows) > 0 {
		cutoff := s.rows[len(s.rows)-1].start - int64(retention)
		drop = max(drop, s.searchStart(cutoff))
	}
	if drop == 0 {
		return 0
	}
	for i := range drop {
		s.account(&s.rows[i], -1)
	}
	// Rows leave oldest first, so emptied buckets are at the front.
	k := 0
	for k < len(s.buckets) && s.buckets[k].rows == 0 {
		k++
	}
	s.buckets = slices.Delete(s.buckets, 0, k)
	clear(s.rows[:drop]) // let the values go before append reallocates
	s.rows = s.rows[drop:]
	return drop
}

// AppendFeatures stores a batch's rows; rows already held with the same
// (sensor, window, src, start) are left as they are. A row's own Sensor,
// when set, overrides the batch's. The batch is copied.
func (m *Memory) AppendFeatures(ctx context.Context, b *sdk.FeatureBatch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b == nil {
		return errors.New("append features: nil batch")
	}
	if b.Window <= 0 {
		return fmt.Errorf("append features: window %v", b.Window)
	}
	for i := range b.Rows {
		if !b.Rows[i].Src.IsValid() {
			return fmt.Errorf("append features: row %d has no source address", i)
		}
	}
	if len(b.Rows) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.series[b.Window]
	if s == nil {
		s = newSeries()
		m.series[b.Window] = s
	}
	cols := make([]int, len(b.Names))
	for j, n := range b.Names {
		cols[j] = s.column(n)
	}
	width := 0
	for _, c := range cols {
		width = max(width, c+1)
	}
	// One allocation for the batch's values: rows of a batch age together.
	slab := make([]float64, width*len(b.Rows))
	for i := range slab {
		slab[i] = math.NaN()
	}
	in := make([]row, len(b.Rows))
	for i, r := range b.Rows {
		v := slab[i*width : (i+1)*width : (i+1)*width]
		for j, x := range r.Values {
			if j < len(cols) {
				v[cols[j]] = x
			}
		}
		sensor := r.Sensor
		if sensor == "" {
			sensor = b.Sensor
		}
		in[i] = row{start: r.Start.UnixNano(), end: r.End.UnixNano(), src: r.Src, sensor: sensor, flags: r.Flags, values: v,
			packets: count(v, s.packets), bytes: count(v, s.bytes)}
	}
	slices.SortStableFunc(in, func(a, b row) int { return cmpRow(&a, &b) })
	in = slices.CompactFunc(in, func(a, b row) bool { return cmpRow(&a, &b) == 0 })
	s.insert(in)
	m.rowsEvicted += uint64(s.evict(m.opts.MaxRowsPerWindow, m.opts.Retention))
	return nil
}

// QueryFeatures implements sdk.Store.
func (m *Memory) QueryFeatures(ctx context.Context, q sdk.FeatureQuery) (*sdk.FeatureBatch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.Window <= 0 {
		return nil, fmt.Errorf("query features: window %v must be positive", q.Window)
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("query features: negative limit %d", q.Limit)
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultFeatureLimit
	}
	out := &sdk.FeatureBatch{Window: q.Window, SchemaVersion: sdk.FeatureSchemaVersion}
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.series[q.Window]
	if s == nil {
		return out, nil
	}
	lo, hi := s.span(q.Range)
	var picked []int
	if q.Src.IsValid() {
		// Newest first from the end of the range, then back to oldest first.
		for i := hi - 1; i >= lo && len(picked) < limit; i-- {
			if s.rows[i].src == q.Src {
				picked = append(picked, i)
			}
		}
		slices.Reverse(picked)
	} else {
		for i := max(lo, hi-limit); i < hi; i++ {
			picked = append(picked, i)
		}
	}
	width := len(s.names)
	out.Names = slices.Clone(s.names)
	out.Rows = make([]sdk.FeatureRow, len(picked))
	slab := make([]float64, width*len(picked))
	for k, i := range picked {
		r := &s.rows[i]
		v := slab[k*width : (k+1)*width : (k+1)*width]
		n := copy(v, r.values)
		for j := n; j < width; j++ {
			v[j] = math.NaN() // a column added after this row was stored
		}
		out.Rows[k] = sdk.FeatureRow{
			Src: r.src, Start: time.Unix(0, r.start).UTC(), End: time.Unix(0, r.end).UTC(),
			Flags: r.flags, Values: v, Sensor: r.sensor,
		}
	}
	return out, nil
}

// count converts a stored count to an integer; missing (NaN), negative and
// infinite values count as nothing.
func count(v []float64, col int) uint64 {
	if col < 0 || col >= len(v) {
		return 0
	}
	x := v[col]
	if !(x > 0) || math.IsInf(x, 1) {
		return 0
	}
	if x >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(math.Round(x))
}

// protocolWindow is the only window size protocol and top-source queries
// read: coarser windows hold the same packets again.
const protocolWindow = 5 * time.Second

// QueryProtocols implements sdk.Store: tcp, udp, icmp and other totals of
// the 5s rows whose start lies in q, always all four, in that order.
func (m *Memory) QueryProtocols(ctx context.Context, q sdk.TimeRange) ([]sdk.ProtocolCount, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]sdk.ProtocolCount, len(protoNames))
	for i, p := range protoNames {
		out[i].Protocol = p.proto
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.series[protocolWindow]
	if s == nil {
		return out, nil
	}
	lo := 0
	if !q.From.IsZero() {
		from := q.From.UnixNano()
		lo = sort.Search(len(s.buckets), func(i int) bool { return s.buckets[i].start >= from })
	}
	for _, b := range s.buckets[lo:] {
		if !q.To.IsZero() && b.start >= q.To.UnixNano() {
			break
		}
		for p := range out {
			out[p].Packets += b.proto[p][0]
			out[p].Bytes += b.proto[p][1]
		}
	}
	return out, nil
}

// QueryTopSources implements sdk.Store over the 5s rows whose start lies in
// q.Range; ties go to the lower address.
func (m *Memory) QueryTopSources(ctx context.Context, q sdk.TopSourcesQuery) ([]sdk.SourceTotal, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	byPackets := false
	switch q.By {
	case "", "bytes":
	case "packets":
		byPackets = true
	default:
		return nil, fmt.Errorf("query top sources: by %q, want bytes or packets", q.By)
	}
	if q.Limit < 0 {
		return nil, fmt.Errorf("query top sources: negative limit %d", q.Limit)
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultTopSourcesLimit
	}
	var totals []sdk.SourceTotal
	m.mu.RLock()
	if s := m.series[protocolWindow]; s != nil {
		lo, hi := s.span(q.Range)
		at := make(map[netip.Addr]int)
		for i := lo; i < hi; i++ {
			r := &s.rows[i]
			k, ok := at[r.src]
			if !ok {
				k = len(totals)
				at[r.src] = k
				totals = append(totals, sdk.SourceTotal{Src: r.src})
			}
			totals[k].Packets += r.packets
			totals[k].Bytes += r.bytes
		}
	}
	m.mu.RUnlock()
	key := func(t *sdk.SourceTotal) uint64 {
		if byPackets {
			return t.Packets
		}
		return t.Bytes
	}
	slices.SortFunc(totals, func(a, b sdk.SourceTotal) int {
		if c := cmp.Compare(key(&b), key(&a)); c != 0 {
			return c
		}
		return a.Src.Compare(b.Src)
	})
	if len(totals) > limit {
		totals = slices.Clip(totals[:limit])
	}
	return totals, nil
}
