package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netguardian/netguardian/sdk"
)

// featureColumns maps feature names to aggregated_features columns: the
// features of sdk.Features that the table has a column for, in that order.
// Other features of a batch go to the row's extra jsonb.
type featureColumns struct {
	names []string
	index map[string]int
}

func loadFeatureColumns(ctx context.Context, pool *pgxpool.Pool) (featureColumns, error) {
	rows, err := pool.Query(ctx, `SELECT column_name::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'aggregated_features'`)
	if err != nil {
		return featureColumns{}, fmt.Errorf("read the columns of aggregated_features: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return featureColumns{}, fmt.Errorf("read the columns of aggregated_features: %w", err)
	}
	fc := featureColumns{index: map[string]int{}}
	for _, f := range sdk.Features {
		if slices.Contains(have, f) {
			fc.index[f] = len(fc.names)
			fc.names = append(fc.names, f)
		}
	}
	return fc, nil
}

// ---- writes --------------------------------------------------------------------

// write encodes rec, queues it for the writers and waits until it is
// committed (or failed, or ctx ended).
func (st *state) write(ctx context.Context, rec sdk.Records) error {
	var items []*item
	var err error
	switch {
	case rec.Packets != nil:
		items, err = st.encodePackets(rec.Packets)
	case rec.Features != nil:
		items, err = st.encodeFeatures(rec.Features)
	default:
		items, err = st.encodeAlerts(rec.Alerts)
	}
	if err != nil || len(items) == 0 {
		for _, it := range items {
			putCopyBuf(it.buf)
		}
		return err
	}
	var buckets []int64
	for _, it := range items {
		it.ctx, it.done = ctx, make(chan error, 1)
		for _, b := range it.buckets {
			if !slices.Contains(buckets, b) {
				buckets = append(buckets, b)
			}
		}
	}
	if err := st.parts.ensure(ctx, items[0].kind.table(), buckets); err != nil {
		for _, it := range items {
			putCopyBuf(it.buf)
		}
		return err
	}
	st.q.put(items)
	var first error
	for _, it := range items {
		select {
		case err := <-it.done:
			if first == nil {
				first = err
			}
		case <-ctx.Done():
			// Items not taken yet are skipped; one being written may still
			// commit, which the re-send after this error finds stored.
			return ctx.Err()
		}
	}
	return first
}

// ---- packets -------------------------------------------------------------------

var packetColumns = []string{"time", "sensor", "src", "dst", "src_port", "dst_port", "protocol", "length", "tcp_flags", "flags", "frame"}

// encodePackets cuts a packet batch in chunks of batch_rows, each with its
// key in raw_packet_batches: a chunk whose key is there already (a re-sent
// batch) is skipped whole when it is committed.
func (st *state) encodePackets(b *sdk.PacketBatch) ([]*item, error) {
	n := b.Len()
	if !st.cfg.RawPackets {
		st.n.packetsIgnored.Add(uint64(n))
		return nil, nil
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	var items []*item
	snap := st.cfg.Snaplen
	for lo := 0; lo < n; lo += st.cfg.BatchRows {
		hi := min(n, lo+st.cfg.BatchRows)
		it := &item{kind: kindPackets, rows: hi - lo, buf: getCopyBuf(), key: packetKey(b, lo, hi), first: b.Timestamps[lo], newest: minTime}
		items = append(items, it)
		bs := st.parts.newBucketSet()
		buf := it.buf
		// One allocation for the piece instead of a dozen doublings: the
		// fixed fields take at most 112 bytes a row besides the sensor.
		size := (hi - lo) * (112 + len(st.sensor))
		if snap > 0 {
			for i := lo; i < hi && i < len(b.Frames); i++ {
				size += min(len(b.Frames[i]), snap)
			}
		}
		buf.b = slices.Grow(buf.b, size)
		for i := lo; i < hi; i++ {
			ts := b.Timestamps[i]
			sec := floorDiv(ts, 1e9)
			bs.add(sec)
			it.newest = max(it.newest, sec)
			buf.row(len(packetColumns))
			buf.timestampMicros(floorDiv(ts, 1000))
			buf.text(st.sensor)
			buf.inet16(b.SrcAddrs[i*16 : i*16+16])
			buf.inet16(b.DstAddrs[i*16 : i*16+16])
			buf.int4(int32(b.SrcPorts[i]))
			buf.int4(int32(b.DstPorts[i]))
			buf.int2(int16(b.Protocols[i]))
			buf.int4(int32(min(b.Lengths[i], math.MaxInt32)))
			buf.int2(int16(b.TCPFlags[i]))
			buf.int2(int16(b.Flags[i]))
			if snap == 0 || i >= len(b.Frames) {
				buf.null()
			} else {
				f := b.Frames[i]
				buf.bytea(f[:min(len(f), snap)])
			}
		}
		it.buckets = bs.set
	}
	return items, nil
}

// commitPackets stores a group of packet chunks in one transaction: their
// keys go into raw_packet_batches in one statement, and the chunks whose
// key was new are copied into raw_packets in one COPY.
func (st *state) commitPackets(ctx context.Context, group []*item) error {
	keys := make([][]byte, len(group))
	firsts := make([]time.Time, len(group))
	counts := make([]int32, len(group))
	for i, it := range group {
		keys[i] = it.key[:]
		firsts[i] = time.Unix(0, it.first)
		counts[i] = int32(it.rows)
	}
	var stored, resent int
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO raw_packet_batches (sensor, batch_key, first_time, packets)
			SELECT $1, k, t, n FROM unnest($2::bytea[], $3::timestamptz[], $4::integer[]) AS u(k, t, n)
			ON CONFLICT DO NOTHING RETURNING batch_key`, cleanText(st.sensor), keys, firsts, counts)
		if err != nil {
			return err
		}
		fresh := map[[16]byte]bool{}
		for rows.Next() {
			var k []byte
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return err
			}
			if len(k) == 16 {
				fresh[[16]byte(k)] = true
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		stored, resent = 0, 0
		parts := make([][]byte, 0, len(group))
		for _, it := range group {
			if !fresh[it.key] {
				resent++ // stored before (or twice in this group): a re-send
				continue
			}
			delete(fresh, it.key)
			parts = append(parts, it.buf.b)
			stored += it.rows
		}
		if len(parts) == 0 {
			return nil
		}
		_, err = copyIn(ctx, tx, tablePackets, packetColumns, parts)
		return err
	})
	if err != nil {
		return err
	}
	st.n.packets.Add(uint64(stored))
	st.n.batchesDup.Add(uint64(resent))
	return nil
}

// packetKey identifies packets lo..hi of a batch by their content: the
// core re-sends a batch unchanged, so a re-send has the same key, while
// any other batch (another capture, another run) differs in its indexes,
// times or headers. Frames are left out: headers and nanosecond times
// already tell batches apart.
func packetKey(b *sdk.PacketBatch, lo, hi int) [16]byte {
	h := sha256.New()
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[:8], b.FirstIndex+uint64(lo))
	binary.BigEndian.PutUint64(hdr[8:], uint64(hi-lo))
	h.Write(hdr[:])
	var tmp [8]byte
	for i := lo; i < hi; i++ {
		binary.BigEndian.PutUint64(tmp[:], uint64(b.Timestamps[i]))
		h.Write(tmp[:])
	}
	h.Write(b.SrcAddrs[lo*16 : hi*16])
	h.Write(b.DstAddrs[lo*16 : hi*16])
	for i := lo; i < hi; i++ {
		binary.BigEndian.PutUint32(tmp[:4], b.SrcPorts[i]<<16|b.DstPorts[i]&0xffff)
		binary.BigEndian.PutUint32(tmp[4:], b.Lengths[i])
		h.Write(tmp[:])
	}
	h.Write(b.Protocols[lo:hi])
	h.Write(b.TCPFlags[lo:hi])
	h.Write(b.Flags[lo:hi])
	var key [16]byte
	copy(key[:], h.Sum(nil))
	return key
}

// retryNoPartition runs fn, and once more after re-creating partitions when
// it failed for want of one (another sensor's retention dropped it).
func (st *state) retryNoPartition(ctx context.Context, table string, buckets []int64, fn func() error) error {
	err := fn()
	if err == nil || !isNoPartition(err) {
		return err
	}
	st.parts.forget(table)
	if err := st.parts.ensure(ctx, table, buckets); err != nil {
		return err
	}
	return fn()
}

// commitNew stores a group of feature or alert items: one COPY straight
// into table, in one transaction. A row stored before (a re-sent batch)
// makes that COPY fail on the table's unique key; the group is then
// written again through the staging table, which skips such rows. Re-sends
// are rare, and COPY into the table costs PostgreSQL about a third less
// than staging every row and moving it with INSERT ... ON CONFLICT.
func (st *state) commitNew(ctx context.Context, table string, cols []string, stage, stageDDL string, group []*item, written, dup *atomic.Uint64) error {
	parts := make([][]byte, len(group))
	rows := 0
	for i, it := range group {
		parts[i] = it.buf.b
		rows += it.rows
	}
	var n int64
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) (err error) {
		n, err = copyIn(ctx, tx, table, cols, parts)
		return err
	})
	if isUniqueViolation(err) {
		err = pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) (err error) {
			n, err = insertNew(ctx, tx, table, cols, stage, stageDDL, parts)
			return err
		})
	}
	if err != nil {
		return err
	}
	written.Add(uint64(n))
	dup.Add(uint64(int64(rows) - n))
	return nil
}

// ---- features ------------------------------------------------------------------

func (st *state) encodeFeatures(b *sdk.FeatureBatch) ([]*item, error) {
	if b.Window <= 0 || b.Window%time.Second != 0 {
		return nil, fmt.Errorf("feature batch window %v: want a positive whole number of seconds", b.Window)
	}
	if b.Window/time.Second > math.MaxInt32 {
		return nil, fmt.Errorf("feature batch window %v is too long", b.Window)
	}
	if len(b.Rows) == 0 {
		return nil, nil
	}
	// Where each of the batch's names goes: a column, or extra.
	col := make([]int, len(b.Names))
	var extraNames []string
	var extraAt []int
	seen := map[string]bool{}
	for j, name := range b.Names {
		col[j] = -1
		if seen[name] {
			continue // a repeated name: the first one counts
		}
		seen[name] = true
		if k, ok := st.cols.index[name]; ok {
			col[j] = k
		} else {
			extraNames = append(extraNames, name)
			extraAt = append(extraAt, j)
		}
	}
	width := len(st.cols.names)
	values := make([]float64, width)
	extraVals := make([]float64, len(extraNames))
	var items []*item
	for lo := 0; lo < len(b.Rows); lo += st.cfg.BatchRows {
		hi := min(len(b.Rows), lo+st.cfg.BatchRows)
		it := &item{kind: kindFeatures, rows: hi - lo, buf: getCopyBuf(), newest: minTime}
		items = append(items, it)
		bs := st.parts.newBucketSet()
		buf := it.buf
		for i := lo; i < hi; i++ {
			r := &b.Rows[i]
			if !r.Src.IsValid() {
				return items, fmt.Errorf("feature row %d has no source address", i)
			}
			for k := range values {
				values[k] = math.NaN()
			}
			for j, v := range r.Values {
				if j < len(col) && col[j] >= 0 {
					values[col[j]] = v
				}
			}
			var extra []byte
			if len(extraNames) > 0 {
				for k, j := range extraAt {
					extraVals[k] = math.NaN()
					if j < len(r.Values) {
						extraVals[k] = r.Values[j]
					}
				}
				var err error
				if extra, err = encodeExtra(extraNames, extraVals); err != nil {
					return items, err
				}
			}
			sensor := r.Sensor
			if sensor == "" {
				sensor = b.Sensor
			}
			if sensor == "" {
				sensor = st.sensor
			}
			bs.add(r.Start.Unix())
			it.newest = max(it.newest, r.Start.Unix())
			buf.row(6 + width + 1)
			buf.text(sensor)
			buf.int4(int32(b.Window / time.Second))
			buf.inet(r.Src)
			buf.timestamp(r.Start)
			buf.timestamp(r.End)
			buf.int4(int32(r.Flags))
			for _, v := range values {
				buf.float8OrNull(v)
			}
			buf.jsonb(extra)
		}
		it.buckets = bs.set
	}
	return items, nil
}

func (st *state) featureInsertColumns() []string {
	cols := []string{"sensor", "window_size", "src_ip", "window_start", "window_end", "flags"}
	cols = append(cols, st.cols.names...)
	return append(cols, "extra")
}

// featureStageDDL creates the session's staging table for features: COPY
// cannot skip rows stored already, INSERT ... ON CONFLICT DO NOTHING can.
func (st *state) featureStageDDL() string {
	var sb strings.Builder
	sb.WriteString(`CREATE TEMP TABLE IF NOT EXISTS ng_stage_features (sensor text, window_size integer, src_ip inet,
		window_start timestamptz, window_end timestamptz, flags integer`)
	for _, n := range st.cols.names {
		sb.WriteString(", " + n + " double precision")
	}
	sb.WriteString(", extra jsonb) ON COMMIT DELETE ROWS")
	return sb.String()
}

// ---- alerts --------------------------------------------------------------------

var alertColumns = []string{"id", "time", "sensor", "detector", "src", "window_size", "window_start", "window_end",
	"label", "score", "severity", "runner_up", "runner_up_score", "top_features", "details"}

const alertStageDDL = `CREATE TEMP TABLE IF NOT EXISTS ng_stage_alerts (id text, time timestamptz, sensor text,
	detector text, src inet, window_size integer, window_start timestamptz, window_end timestamptz, label text,
	score double precision, severity text, runner_up text, runner_up_score double precision,
	top_features jsonb, details jsonb) ON COMMIT DELETE ROWS`

func (st *state) encodeAlerts(alerts []sdk.Alert) ([]*item, error) {
	var items []*item
	for lo := 0; lo < len(alerts); lo += st.cfg.BatchRows {
		hi := min(len(alerts), lo+st.cfg.BatchRows)
		it := &item{kind: kindAlerts, rows: hi - lo, buf: getCopyBuf(), newest: minTime}
		items = append(items, it)
		bs := st.parts.newBucketSet()
		buf := it.buf
		for i := lo; i < hi; i++ {
			a := &alerts[i]
			if a.ID == "" {
				return items, fmt.Errorf("alert %d has no ID", i)
			}
			if a.Window < 0 || a.Window/time.Second > math.MaxInt32 {
				return items, fmt.Errorf("alert %s: window %v", a.ID, a.Window)
			}
			top, err := encodeTopFeatures(a.TopFeatures)
			if err != nil {
				return items, fmt.Errorf("alert %s: %w", a.ID, err)
			}
			details, err := cleanDetails(a.Details)
			if err != nil {
				return items, fmt.Errorf("alert %s: %w", a.ID, err)
			}
			sensor := a.Sensor
			if sensor == "" {
				sensor = st.sensor
			}
			bs.add(a.Time.Unix())
			it.newest = max(it.newest, a.Time.Unix())
			buf.row(len(alertColumns))
			buf.text(a.ID)
			buf.timestamp(a.Time)
			buf.text(sensor)
			buf.text(a.Detector)
			buf.inet(a.Src)
			buf.int4(int32(a.Window / time.Second))
			buf.timestamp(a.Start)
			buf.timestamp(a.End)
			buf.text(a.Label)
			buf.float8(a.Score)
			buf.text(string(a.Severity))
			if a.RunnerUp == "" {
				buf.null()
			} else {
				buf.text(a.RunnerUp)
			}
			buf.float8(a.RunnerUpScore)
			buf.jsonb(top)
			buf.jsonb(details)
		}
		it.buckets = bs.set
	}
	return items, nil
}

var errNotConfigured = errors.New("sink-postgres: not configured")
