package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netguardian/netguardian/sdk"
)

// The partitioned tables and the column each is partitioned by.
const (
	tablePackets  = "raw_packets"         // by time
	tableFeatures = "aggregated_features" // by window_start
	tableAlerts   = "detected_alerts"     // by time
	aheadBuckets  = 2                     // partitions created ahead of the current one
	maxProbe      = 1000                  // partitions looked into for the newest data at start
	ddlLock       = "SET LOCAL lock_timeout = '10s'"
)

var partitionedTables = []string{tablePackets, tableFeatures, tableAlerts}

// span is one partition: [from, to) in Unix seconds.
type span struct {
	name     string
	from, to int64
}

// partitions creates the partitions data needs before it is written, and
// drops old ones (retention).
//
// Partitions are aligned to the epoch: bucket k holds [k*interval,
// (k+1)*interval). When existing partitions do not line up with the
// buckets (the partition setting changed since they were made), the
// missing parts of a bucket are created as smaller partitions that fill the
// gaps, so a change of the setting never fails on overlapping ranges. DDL
// runs under an advisory transaction lock, so sensors sharing a database
// do not race each other.
//
// Retention is measured from the newest data of each table, not from the
// wall clock, so that replaying an old capture does not see its data
// dropped as it arrives: a partition is dropped when its upper bound is at
// least retention older than the newest time written to the table (by this
// process, or at start the lower bound of the newest non-empty partition).
type partitions struct {
	pool      *pgxpool.Pool
	interval  int64 // seconds
	retention int64 // seconds; 0 = keep everything
	n         *counters

	mu      sync.Mutex
	covered map[string]map[int64]bool // table -> buckets known to be fully covered
	newest  map[string]int64          // table -> newest time written (Unix seconds)
	retired map[string]int64          // table -> newest bucket retention last ran for
}

func newPartitions(pool *pgxpool.Pool, interval, retention time.Duration, n *counters) *partitions {
	p := &partitions{pool: pool, interval: int64(interval / time.Second), retention: int64(retention / time.Second), n: n,
		covered: map[string]map[int64]bool{}, newest: map[string]int64{}, retired: map[string]int64{}}
	for _, t := range partitionedTables {
		p.covered[t] = map[int64]bool{}
		p.newest[t] = minTime
		p.retired[t] = minTime
	}
	return p
}

// minTime stands for "no data yet".
const minTime = -1 << 62

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// bucket returns the partition bucket of Unix second sec.
func (p *partitions) bucket(sec int64) int64 { return floorDiv(sec, p.interval) }

// buckets collects the distinct buckets of secs (which tend to be sorted).
type bucketSet struct {
	p    *partitions
	last int64
	set  []int64
}

func (p *partitions) newBucketSet() *bucketSet { return &bucketSet{p: p, last: minTime} }

func (s *bucketSet) add(sec int64) {
	b := s.p.bucket(sec)
	if b == s.last {
		return
	}
	s.last = b
	if !slices.Contains(s.set, b) {
		s.set = append(s.set, b)
	}
}

// ensure makes sure the buckets of table are covered by partitions.
func (p *partitions) ensure(ctx context.Context, table string, buckets []int64) error {
	p.mu.Lock()
	var missing []int64
	for _, b := range buckets {
		if !p.covered[table][b] {
			missing = append(missing, b)
		}
	}
	p.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	var created []string
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		created = created[:0]
		if _, err := tx.Exec(ctx, ddlLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockPartitions); err != nil {
			return err
		}
		spans, err := listPartitions(ctx, tx, table)
		if err != nil {
			return err
		}
		for _, b := range missing {
			from, to := b*p.interval, (b+1)*p.interval
			for _, g := range gaps(spans, from, to) {
				name := partitionName(table, g.from)
				sql := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')",
					name, table, pgTime(g.from), pgTime(g.to))
				if _, err := tx.Exec(ctx, sql); err != nil {
					return fmt.Errorf("create partition %s: %w", name, err)
				}
				created = append(created, name)
				g.name = name
				spans = append(spans, g)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", table, err)
	}
	p.n.partitionsCreated.Add(uint64(len(created)))
	if len(created) > 0 {
		sdk.Logger().Info("partitions created", "table", table, "partitions", created)
	}
	p.mu.Lock()
	for _, b := range missing {
		p.covered[table][b] = true
	}
	p.mu.Unlock()
	return nil
}

// forget drops the cache of covered buckets (a partition the cache names
// was dropped by someone else: the next ensure looks again).
func (p *partitions) forget(table string) {
	p.mu.Lock()
	p.covered[table] = map[int64]bool{}
	p.mu.Unlock()
}

// isNoPartition reports whether err is PostgreSQL's "no partition of
// relation found for row".
func isNoPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514"
}

// gaps returns the parts of [from, to) that no span covers.
func gaps(spans []span, from, to int64) []span {
	sorted := slices.Clone(spans)
	slices.SortFunc(sorted, func(a, b span) int { return cmpInt(a.from, b.from) })
	var out []span
	at := from
	for _, s := range sorted {
		if s.to <= at || s.from >= to {
			continue
		}
		if s.from > at {
			out = append(out, span{from: at, to: s.from})
		}
		at = max(at, s.to)
		if at >= to {
			break
		}
	}
	if at < to {
		out = append(out, span{from: at, to: to})
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func partitionName(table string, from int64) string {
	return table + "_p" + time.Unix(from, 0).UTC().Format("20060102t150405")
}

func pgTime(sec int64) string { return time.Unix(sec, 0).UTC().Format("2006-01-02 15:04:05+00") }

// listPartitions reads table's range partitions from the catalog; others
// (a DEFAULT partition someone added) are left out.
func listPartitions(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, table string) ([]span, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname::text,
		       extract(epoch FROM b[1]::timestamptz)::bigint,
		       extract(epoch FROM b[2]::timestamptz)::bigint
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
		                                'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') AS b
		WHERE i.inhparent = $1::regclass AND b IS NOT NULL
		ORDER BY 2`, table)
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s: %w", table, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (span, error) {
		var s span
		err := r.Scan(&s.name, &s.from, &s.to)
		return s, err
	})
}

// prepare creates the partitions of now and the next ones for every table,
// learns the newest data at the first call, and applies retention.
func (p *partitions) prepare(ctx context.Context, now time.Time) error {
	b := p.bucket(now.Unix())
	ahead := make([]int64, 0, aheadBuckets+1)
	for k := int64(0); k <= aheadBuckets; k++ {
		ahead = append(ahead, b+k)
	}
	for _, t := range partitionedTables {
		if err := p.ensure(ctx, t, ahead); err != nil {
			return err
		}
		p.mu.Lock()
		unknown := p.newest[t] == minTime
		p.mu.Unlock()
		if unknown {
			newest, err := p.probeNewest(ctx, t)
			if err != nil {
				return err
			}
			p.observe(t, newest)
		}
		if err := p.retain(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// probeNewest returns the lower bound of the newest non-empty partition of
// table (minTime when all are empty).
func (p *partitions) probeNewest(ctx context.Context, table string) (int64, error) {
	spans, err := listPartitions(ctx, p.pool, table)
	if err != nil {
		return 0, err
	}
	for i := len(spans) - 1; i >= 0 && i >= len(spans)-maxProbe; i-- {
		var any bool
		if err := p.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+spans[i].name+")").Scan(&any); err != nil {
			return 0, fmt.Errorf("look into %s: %w", spans[i].name, err)
		}
		if any {
			return spans[i].from, nil
		}
	}
	return minTime, nil
}

// observe records that data up to sec was written to table, and reports
// whether retention should run (the newest data entered a new bucket).
func (p *partitions) observe(table string, sec int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sec > p.newest[table] {
		p.newest[table] = sec
	}
	return p.retention > 0 && p.newest[table] != minTime && p.bucket(p.newest[table]) > p.retired[table]
}

// retain drops table's partitions that lie wholly before newest - retention.
func (p *partitions) retain(ctx context.Context, table string) error {
	p.mu.Lock()
	newest := p.newest[table]
	p.mu.Unlock()
	if p.retention <= 0 || newest == minTime {
		return nil
	}
	cutoff := newest - p.retention
	var dropped []string
	var droppedTo int64 = minTime
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		dropped, droppedTo = dropped[:0], minTime
		if _, err := tx.Exec(ctx, ddlLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockPartitions); err != nil {
			return err
		}
		spans, err := listPartitions(ctx, tx, table)
		if err != nil {
			return err
		}
		for _, s := range spans {
			if s.to > cutoff {
				continue
			}
			// The name comes from the catalog: a partition attached by
			// hand may need quoting (capitals, punctuation).
			if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{s.name}.Sanitize()); err != nil {
				return fmt.Errorf("drop partition %s: %w", s.name, err)
			}
			dropped = append(dropped, s.name)
			droppedTo = max(droppedTo, s.to)
		}
		if table == tablePackets && droppedTo != minTime {
			// The batch keys of dropped packets go with them.
			if _, err := tx.Exec(ctx, "DELETE FROM raw_packet_batches WHERE first_time < $1", time.Unix(droppedTo, 0)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("retention of %s: %w", table, err)
	}
	p.mu.Lock()
	p.retired[table] = max(p.retired[table], p.bucket(newest))
	if len(dropped) > 0 {
		p.covered[table] = map[int64]bool{}
	}
	p.mu.Unlock()
	if len(dropped) > 0 {
		p.n.partitionsDropped.Add(uint64(len(dropped)))
		sdk.Logger().Info("retention dropped partitions", "table", table, "partitions", dropped,
			"older_than", time.Unix(cutoff, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// wrote is called after a commit with the newest time written to table; it
// applies retention when the data moved into a new partition bucket.
// Retention failures are logged: the data is stored already.
func (p *partitions) wrote(ctx context.Context, table string, newest int64) {
	if !p.observe(table, newest) {
		return
	}
	if err := p.retain(ctx, table); err != nil {
		sdk.Logger().Warn("retention failed; retried later", "table", table, "error", err.Error())
	}
}
