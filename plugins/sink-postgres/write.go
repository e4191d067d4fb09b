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
	"sync"
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

// ---- packets -------------------------------------------------------------------

var packetColumns = []string{"time", "sensor", "src", "dst", "src_port", "dst_port", "protocol", "length", "tcp_flags", "flags", "frame"}

// writePackets stores a packet batch in chunks of batch_rows, each in one
// transaction with its key in raw_packet_batches: a chunk whose key is
// there already (a re-sent batch) is skipped whole.
func (st *state) writePackets(ctx context.Context, b *sdk.PacketBatch) error {
	n := b.Len()
	if !st.cfg.RawPackets {
		st.n.packetsIgnored.Add(uint64(n))
		return nil
	}
	if err := b.Validate(); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	bs := st.parts.newBucketSet()
	newest := int64(minTime)
	for _, ts := range b.Timestamps {
		sec := floorDiv(ts, 1e9)
		bs.add(sec)
		newest = max(newest, sec)
	}
	if err := st.parts.ensure(ctx, tablePackets, bs.set); err != nil {
		return err
	}
	// Chunks of batch_rows, each its own transaction and key. A large
	// batch is also cut in as many chunks as half the pool's connections
	// and they are copied in parallel: the database's work on a COPY is
	// single-threaded per connection, and the core hands a sink one batch
	// at a time.
	par := max(1, st.cfg.Connections/2)
	size := st.cfg.BatchRows
	if par > 1 && n >= 2*minParallelChunk {
		size = min(size, max(minParallelChunk, (n+par-1)/par))
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, par)
	)
	for lo := 0; lo < n; lo += size {
		hi := min(n, lo+size)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			buf := getCopyBuf()
			defer putCopyBuf(buf)
			err := st.retryNoPartition(ctx, tablePackets, bs.set, func() error { return st.copyPackets(ctx, b, lo, hi, buf) })
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0] // chunks that made it are skipped when the batch comes again
	}
	st.parts.wrote(ctx, tablePackets, newest)
	return nil
}

// minParallelChunk is the smallest chunk a packet batch is cut into for
// parallel COPY: smaller ones cost more in round trips than they gain.
const minParallelChunk = 256

func (st *state) copyPackets(ctx context.Context, b *sdk.PacketBatch, lo, hi int, buf *copyBuf) error {
	key := packetKey(b, lo, hi)
	return pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO raw_packet_batches (sensor, batch_key, first_time, packets)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
			cleanText(st.sensor), key[:], time.Unix(0, b.Timestamps[lo]), hi-lo)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			st.n.batchesDup.Add(1)
			return nil // stored before: a re-send
		}
		buf.reset()
		snap := st.cfg.Snaplen
		for i := lo; i < hi; i++ {
			buf.row(len(packetColumns))
			buf.timestampMicros(floorDiv(b.Timestamps[i], 1000))
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
		if _, err := copyIn(ctx, tx, tablePackets, packetColumns, buf); err != nil {
			return err
		}
		st.n.packets.Add(uint64(hi - lo))
		return nil
	})
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

// ---- features ------------------------------------------------------------------

func (st *state) writeFeatures(ctx context.Context, b *sdk.FeatureBatch) error {
	if b.Window <= 0 || b.Window%time.Second != 0 {
		return fmt.Errorf("feature batch window %v: want a positive whole number of seconds", b.Window)
	}
	if b.Window/time.Second > math.MaxInt32 {
		return fmt.Errorf("feature batch window %v is too long", b.Window)
	}
	if len(b.Rows) == 0 {
		return nil
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
	bs := st.parts.newBucketSet()
	newest := int64(minTime)
	buf := getCopyBuf()
	defer putCopyBuf(buf)
	for lo := 0; lo < len(b.Rows); lo += st.cfg.BatchRows {
		hi := min(len(b.Rows), lo+st.cfg.BatchRows)
		buf.reset()
		values := make([]float64, width)
		extraVals := make([]float64, len(extraNames))
		for i := lo; i < hi; i++ {
			r := &b.Rows[i]
			if !r.Src.IsValid() {
				return fmt.Errorf("feature row %d has no source address", i)
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
					return err
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
			newest = max(newest, r.Start.Unix())
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
		if err := st.parts.ensure(ctx, tableFeatures, bs.set); err != nil {
			return err
		}
		err := st.retryNoPartition(ctx, tableFeatures, bs.set, func() error {
			return pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
				n, err := insertNew(ctx, tx, tableFeatures, st.featureInsertColumns(), "ng_stage_features", st.featureStageDDL(), buf)
				if err != nil {
					return err
				}
				st.n.features.Add(uint64(n))
				st.n.featuresDup.Add(uint64(int64(hi-lo) - n))
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	st.parts.wrote(ctx, tableFeatures, newest)
	return nil
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

func (st *state) writeAlerts(ctx context.Context, alerts []sdk.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	bs := st.parts.newBucketSet()
	newest := int64(minTime)
	buf := getCopyBuf()
	defer putCopyBuf(buf)
	for lo := 0; lo < len(alerts); lo += st.cfg.BatchRows {
		hi := min(len(alerts), lo+st.cfg.BatchRows)
		buf.reset()
		for i := lo; i < hi; i++ {
			a := &alerts[i]
			if a.ID == "" {
				return fmt.Errorf("alert %d has no ID", i)
			}
			if a.Window < 0 || a.Window/time.Second > math.MaxInt32 {
				return fmt.Errorf("alert %s: window %v", a.ID, a.Window)
			}
			top, err := encodeTopFeatures(a.TopFeatures)
			if err != nil {
				return fmt.Errorf("alert %s: %w", a.ID, err)
			}
			details, err := cleanDetails(a.Details)
			if err != nil {
				return fmt.Errorf("alert %s: %w", a.ID, err)
			}
			sensor := a.Sensor
			if sensor == "" {
				sensor = st.sensor
			}
			bs.add(a.Time.Unix())
			newest = max(newest, a.Time.Unix())
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
		if err := st.parts.ensure(ctx, tableAlerts, bs.set); err != nil {
			return err
		}
		err := st.retryNoPartition(ctx, tableAlerts, bs.set, func() error {
			return pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
				n, err := insertNew(ctx, tx, tableAlerts, alertColumns, "ng_stage_alerts", alertStageDDL, buf)
				if err != nil {
					return err
				}
				st.n.alerts.Add(uint64(n))
				st.n.alertsDup.Add(uint64(int64(hi-lo) - n))
				return nil
			})
		})
		if err != nil {
			return err
		}
	}
	st.parts.wrote(ctx, tableAlerts, newest)
	return nil
}

var errNotConfigured = errors.New("sink-postgres: not configured")
