package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/netguardian/netguardian/sdk"
)

// Query defaults and bounds (the contract in sdk/storetest is the spec).
const (
	defaultFeatureLimit = 10_000
	defaultTopLimit     = 10
	defaultAlertLimit   = 100
	maxAlertLimit       = 10_000
	protocolWindow      = 5 // seconds: protocol and top-source queries read 5s rows only
)

// protocolWhere selects the 5s rows (a constant, so a literal).
var protocolWhere = "window_size = " + strconv.Itoa(protocolWindow)

// checkLimit rejects negative limits. The wire carries limits as uint32,
// so a negative limit of the core's caller arrives as 2^32 + limit: limits
// of 2^31 and more are negative ones too.
func checkLimit(limit int) error {
	if limit < 0 || limit > math.MaxInt32 {
		return fmt.Errorf("negative limit %d", int32(limit))
	}
	return nil
}

// queryState returns the configured state for a query.
func (s *sink) queryState() (*state, error) {
	st := s.st.Load()
	if st == nil {
		return nil, errNotConfigured
	}
	return st, nil
}

// queryErr keeps the password out of a failed query's message.
func (st *state) queryErr(what string, err error) error {
	return fmt.Errorf("%s: %s", what, st.red.string(err.Error()))
}

// ceilMicros rounds t up to PostgreSQL's microseconds: stored times are
// whole microseconds, so "time >= t" and "time < t" select the same rows
// with the rounded bound.
func ceilMicros(t time.Time) time.Time {
	r := t.Truncate(time.Microsecond)
	if r.Before(t) {
		r = r.Add(time.Microsecond)
	}
	return r
}

// sqlArgs collects positional arguments.
type sqlArgs []any

func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// rangeWhere adds the conditions of r on col.
func rangeWhere(where []string, args *sqlArgs, col string, r sdk.TimeRange) []string {
	if !r.From.IsZero() {
		where = append(where, col+" >= "+args.add(ceilMicros(r.From)))
	}
	if !r.To.IsZero() {
		where = append(where, col+" < "+args.add(ceilMicros(r.To)))
	}
	return where
}

// featureSQL is QueryFeatures' statement: the newest limit rows, newest
// first (the caller reverses them).
func featureSQL(cols featureColumns, q sdk.FeatureQuery, limit int) (string, []any) {
	var args sqlArgs
	where := []string{"window_size = " + args.add(int32(q.Window/time.Second))}
	if q.Src.IsValid() {
		where = append(where, "src_ip = "+args.add(q.Src))
	}
	where = rangeWhere(where, &args, "window_start", q.Range)
	var sb strings.Builder
	sb.WriteString("SELECT sensor, src_ip, window_start, window_end, flags")
	for _, c := range cols.names {
		sb.WriteString(", coalesce(" + c + ", 'NaN')")
	}
	sb.WriteString(", extra FROM aggregated_features WHERE ")
	sb.WriteString(strings.Join(where, " AND "))
	sb.WriteString(" ORDER BY window_start DESC, src_ip DESC, sensor DESC LIMIT " + args.add(int64(limit)))
	return sb.String(), args
}

// QueryFeatures implements sdk.Store.
func (s *sink) QueryFeatures(ctx context.Context, q sdk.FeatureQuery) (*sdk.FeatureBatch, error) {
	if q.Window <= 0 {
		return nil, fmt.Errorf("query features: window %v must be positive", q.Window)
	}
	if err := checkLimit(q.Limit); err != nil {
		return nil, fmt.Errorf("query features: %w", err)
	}
	st, err := s.queryState()
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = defaultFeatureLimit
	}
	out := &sdk.FeatureBatch{Window: q.Window, SchemaVersion: sdk.FeatureSchemaVersion, Names: slices.Clone(st.cols.names), Rows: []sdk.FeatureRow{}}
	if q.Window%time.Second != 0 || q.Window/time.Second > math.MaxInt32 {
		return out, nil // no such window size is stored
	}
	sql, args := featureSQL(st.cols, q, limit)
	rows, err := st.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, st.queryErr("query features", err)
	}
	defer rows.Close()
	width := len(st.cols.names)
	var extras []map[string]float64
	extraNames := map[string]bool{}
	var (
		sensor     string
		src        netip.Addr
		start, end time.Time
		flags      int32
		extra      []byte
	)
	dest := make([]any, 0, 6+width)
	for rows.Next() {
		values := make([]float64, width)
		dest = append(dest[:0], &sensor, &src, &start, &end, &flags)
		for i := range values {
			dest = append(dest, &values[i])
		}
		dest = append(dest, &extra)
		if err := rows.Scan(dest...); err != nil {
			return nil, st.queryErr("query features", err)
		}
		out.Rows = append(out.Rows, sdk.FeatureRow{Src: src, Start: start.UTC(), End: end.UTC(), Flags: sdk.WindowFlags(flags), Values: values, Sensor: sensor})
		var ex map[string]float64
		if len(extra) > 0 {
			if ex, err = decodeExtra(extra); err != nil {
				return nil, st.queryErr("query features", err)
			}
			for k := range ex {
				extraNames[k] = true
			}
		}
		extras = append(extras, ex)
	}
	if err := rows.Err(); err != nil {
		return nil, st.queryErr("query features", err)
	}
	if len(extraNames) > 0 {
		// Features without a column follow the columns, by name.
		names := make([]string, 0, len(extraNames))
		for n := range extraNames {
			names = append(names, n)
		}
		slices.Sort(names)
		out.Names = append(out.Names, names...)
		for i := range out.Rows {
			for _, n := range names {
				v, ok := extras[i][n]
				if !ok {
					v = math.NaN()
				}
				out.Rows[i].Values = append(out.Rows[i].Values, v)
			}
		}
	}
	slices.Reverse(out.Rows)
	return out, nil
}

// countSQL is a stored count as an integer: missing (NULL), negative,
// infinite and absurd values count as nothing, as in the memory store.
func countSQL(col string) string {
	return "CASE WHEN " + col + " > 0 AND " + col + " < 9.2e18 THEN trunc(" + col + ")::bigint ELSE 0 END"
}

var protocolNames = [4]struct{ proto, packets, bytes string }{
	{"tcp", sdk.FeatureTCPPackets, sdk.FeatureTCPBytes},
	{"udp", sdk.FeatureUDPPackets, sdk.FeatureUDPBytes},
	{"icmp", sdk.FeatureICMPPackets, sdk.FeatureICMPBytes},
	{"other", sdk.FeatureOtherPackets, sdk.FeatureOtherBytes},
}

// protocolSQL is QueryProtocols' statement: eight sums as text.
func protocolSQL(r sdk.TimeRange) (string, []any) {
	var args sqlArgs
	where := rangeWhere([]string{protocolWhere}, &args, "window_start", r)
	var sums []string
	for _, p := range protocolNames {
		for _, c := range []string{p.packets, p.bytes} {
			sums = append(sums, "coalesce(sum("+countSQL(c)+"), 0)::text")
		}
	}
	return "SELECT " + strings.Join(sums, ", ") + " FROM aggregated_features WHERE " + strings.Join(where, " AND "), args
}

// QueryProtocols implements sdk.Store.
func (s *sink) QueryProtocols(ctx context.Context, r sdk.TimeRange) ([]sdk.ProtocolCount, error) {
	st, err := s.queryState()
	if err != nil {
		return nil, err
	}
	sql, args := protocolSQL(r)
	var sums [8]string
	dest := make([]any, 8)
	for i := range sums {
		dest[i] = &sums[i]
	}
	if err := st.pool.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		return nil, st.queryErr("query protocols", err)
	}
	out := make([]sdk.ProtocolCount, len(protocolNames))
	for i, p := range protocolNames {
		out[i] = sdk.ProtocolCount{Protocol: p.proto, Packets: parseSum(sums[2*i]), Bytes: parseSum(sums[2*i+1])}
	}
	return out, nil
}

// parseSum reads a numeric sum, saturating at the largest uint64.
func parseSum(s string) uint64 {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if strings.HasPrefix(s, "-") {
			return 0
		}
		return math.MaxUint64
	}
	return v
}

// topSourcesSQL is QueryTopSources' statement.
func topSourcesSQL(q sdk.TopSourcesQuery, limit int) (string, []any) {
	var args sqlArgs
	where := rangeWhere([]string{protocolWhere}, &args, "window_start", q.Range)
	key := "b"
	if q.By == "packets" {
		key = "p"
	}
	return "SELECT src_ip, p::text AS packets, b::text AS bytes FROM (SELECT src_ip, sum(" + countSQL(sdk.FeaturePackets) + ") AS p, sum(" +
		countSQL(sdk.FeatureBytes) + ") AS b FROM aggregated_features WHERE " + strings.Join(where, " AND ") +
		" GROUP BY src_ip) t ORDER BY " + key + " DESC, src_ip LIMIT " + args.add(int64(limit)), args
}

// QueryTopSources implements sdk.Store.
func (s *sink) QueryTopSources(ctx context.Context, q sdk.TopSourcesQuery) ([]sdk.SourceTotal, error) {
	switch q.By {
	case "", "bytes", "packets":
	default:
		return nil, fmt.Errorf("query top sources: by %q, want bytes or packets", q.By)
	}
	if err := checkLimit(q.Limit); err != nil {
		return nil, fmt.Errorf("query top sources: %w", err)
	}
	st, err := s.queryState()
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = defaultTopLimit
	}
	sql, args := topSourcesSQL(q, limit)
	rows, err := st.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, st.queryErr("query top sources", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sdk.SourceTotal, error) {
		var t sdk.SourceTotal
		var p, b string
		err := r.Scan(&t.Src, &p, &b)
		t.Packets, t.Bytes = parseSum(p), parseSum(b)
		return t, err
	})
	if err != nil {
		return nil, st.queryErr("query top sources", err)
	}
	return out, nil
}

// ---- alerts --------------------------------------------------------------------

// alertSQL is QueryAlerts' statement; it asks for limit+1 rows to know
// whether another page follows.
func alertSQL(q sdk.AlertQuery, after *alertKey, limit int) (string, []any) {
	var args sqlArgs
	var where []string
	if q.Severity != "" {
		where = append(where, "severity = "+args.add(string(q.Severity)))
	}
	if q.Label != "" {
		where = append(where, "label = "+args.add(q.Label))
	}
	if q.Src.IsValid() {
		where = append(where, "src = "+args.add(q.Src))
	}
	where = rangeWhere(where, &args, "window_end", q.Range)
	if after != nil {
		where = append(where, "(time, id) < ("+args.add(after.time)+", "+args.add(after.id)+")")
	}
	sql := "SELECT id, time, sensor, detector, src, window_size, window_start, window_end, label, score, severity, " +
		"coalesce(runner_up, ''), runner_up_score, top_features, details FROM detected_alerts"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	return sql + " ORDER BY time DESC, id DESC LIMIT " + args.add(int64(limit+1)), args
}

// QueryAlerts implements sdk.Store: newest first by (time, id), keyset
// pagination.
func (s *sink) QueryAlerts(ctx context.Context, q sdk.AlertQuery) (sdk.AlertPage, error) {
	if q.Severity != "" {
		if _, ok := sdk.ParseSeverity(string(q.Severity)); !ok {
			return sdk.AlertPage{}, fmt.Errorf("query alerts: unknown severity %q", q.Severity)
		}
	}
	if err := checkLimit(q.Limit); err != nil {
		return sdk.AlertPage{}, fmt.Errorf("query alerts: %w", err)
	}
	limit := q.Limit
	if limit == 0 {
		limit = defaultAlertLimit
	}
	limit = min(limit, maxAlertLimit)
	var after *alertKey
	if q.Cursor != "" {
		k, err := decodeCursor(q.Cursor)
		if err != nil {
			return sdk.AlertPage{}, fmt.Errorf("query alerts: %w", err)
		}
		after = &k
	}
	st, err := s.queryState()
	if err != nil {
		return sdk.AlertPage{}, err
	}
	sql, args := alertSQL(q, after, limit)
	rows, err := st.pool.Query(ctx, sql, args...)
	if err != nil {
		return sdk.AlertPage{}, st.queryErr("query alerts", err)
	}
	alerts, err := pgx.CollectRows(rows, scanAlert)
	if err != nil {
		return sdk.AlertPage{}, st.queryErr("query alerts", err)
	}
	var page sdk.AlertPage
	if len(alerts) > limit {
		last := alerts[limit-1]
		page.NextCursor = encodeCursor(alertKey{time: last.Time, id: last.ID})
		alerts = alerts[:limit]
	}
	page.Alerts = alerts
	return page, nil
}

func scanAlert(r pgx.CollectableRow) (sdk.Alert, error) {
	var (
		a              sdk.Alert
		src            *netip.Addr
		window         int32
		severity       string
		tm, start, end time.Time
		top, details   []byte
	)
	if err := r.Scan(&a.ID, &tm, &a.Sensor, &a.Detector, &src, &window, &start, &end, &a.Label, &a.Score,
		&severity, &a.RunnerUp, &a.RunnerUpScore, &top, &details); err != nil {
		return a, err
	}
	if src != nil {
		a.Src = *src
	}
	a.Severity = sdk.Severity(severity)
	a.Window = time.Duration(window) * time.Second
	a.Time, a.Start, a.End = tm.UTC(), start.UTC(), end.UTC()
	var err error
	if a.TopFeatures, err = decodeTopFeatures(top); err != nil {
		return a, fmt.Errorf("alert %s: %w", a.ID, err)
	}
	if len(details) > 0 {
		a.Details = details
	}
	return a, nil
}

// alertKey is the (time, id) an alert page ends at.
type alertKey struct {
	time time.Time
	id   string
}

// Cursors are base64url of a version byte, the time in Unix microseconds
// (8 bytes, big endian) and the ID.
const cursorVersion = 0x70

func encodeCursor(k alertKey) string {
	b := make([]byte, 9, 9+len(k.id))
	b[0] = cursorVersion
	binary.BigEndian.PutUint64(b[1:], uint64(unixMicros(k.time)))
	b = append(b, k.id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor parses a cursor; anything this store did not issue is an
// error wrapping sdk.ErrBadCursor (whose text, "invalid cursor", is what
// the core's store client recognises across the process boundary).
func decodeCursor(s string) (alertKey, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	// The decoder skips newlines and spare bits: only the spelling
	// encodeCursor writes is one we issued.
	if err != nil || len(b) < 10 || b[0] != cursorVersion || !utf8.Valid(b[9:]) || base64.RawURLEncoding.EncodeToString(b) != s {
		return alertKey{}, fmt.Errorf("cursor %.40q: %w", s, sdk.ErrBadCursor)
	}
	us := int64(binary.BigEndian.Uint64(b[1:9]))
	return alertKey{time: time.Unix(floorDiv(us, 1e6), (us-floorDiv(us, 1e6)*1e6)*1000).UTC(), id: string(b[9:])}, nil
}
