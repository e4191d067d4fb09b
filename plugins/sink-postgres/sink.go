package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netguardian/netguardian/sdk"
)

// version is the plugin's version, reported by Describe.
const version = "1.0.0"

// config is the plugin's config block; its tags are the schema.
type config struct {
	URL         string        `ng:"url,required,sensitive" help:"PostgreSQL connection URL (postgres://user@host:5432/db?sslmode=require); keep the password out of the file: url = env(\"DATABASE_URL\"), or ~/.pgpass"`
	RawPackets  bool          `ng:"raw_packets" help:"store every packet (header fields and the frame cut to snaplen) in raw_packets; features and alerts are always stored"`
	Snaplen     int           `ng:"snaplen" help:"bytes of each frame kept in raw_packets.frame; 0 keeps no frame bytes (header fields only)"`
	BatchRows   int           `ng:"batch_rows" help:"most rows written in one transaction; larger batches from the core are split, smaller ones waiting together are grouped"`
	Connections int           `ng:"connections" help:"size of the connection pool: half of it (at least one) writes, the rest serves queries"`
	FlushEvery  time.Duration `ng:"flush_interval" help:"longest a batch is held for later ones to share its transaction while fewer than batch_rows rows wait (at most 1s); 0 commits at once"`
	Partition   time.Duration `ng:"partition" help:"time span of one partition of each table (tables are range-partitioned by time)"`
	Retention   time.Duration `ng:"retention" help:"drop partitions whose data is older than this, measured from the newest data of the table; 0 keeps everything"`
	ReadOnly    bool          `ng:"read_only" help:"only answer queries (a central view over sensors' data): no migrations, partitions, retention or writes; the role may be read-only"`
}

func defaultConfig() config {
	return config{Snaplen: 65535, BatchRows: 5000, Connections: 4, Partition: 24 * time.Hour}
}

// Limits of the config's numbers.
const (
	maxSnaplen     = 262144
	maxBatchRows   = 1_000_000
	maxConnections = 100
	// maxFlushEvery: every batch is committed within a second of arriving.
	maxFlushEvery = time.Second
	minPartition  = time.Minute
)

func (c *config) validate() error {
	switch {
	case strings.TrimSpace(c.URL) == "":
		return errors.New(`config "url": required: a PostgreSQL URL such as postgres://netguardian@db:5432/netguardian (url = env("DATABASE_URL"))`)
	case c.Snaplen < 0 || c.Snaplen > maxSnaplen:
		return fmt.Errorf(`config "snaplen": %d is outside 0..%d`, c.Snaplen, maxSnaplen)
	case c.BatchRows < 0 || c.BatchRows > maxBatchRows:
		return fmt.Errorf(`config "batch_rows": %d is outside 1..%d`, c.BatchRows, maxBatchRows)
	case c.Connections < 0 || c.Connections > maxConnections:
		return fmt.Errorf(`config "connections": %d is outside 1..%d`, c.Connections, maxConnections)
	case c.FlushEvery < 0 || c.FlushEvery > maxFlushEvery:
		return fmt.Errorf(`config "flush_interval": %v is outside 0..%v`, c.FlushEvery, maxFlushEvery)
	case c.Partition < minPartition:
		return fmt.Errorf(`config "partition": %v is shorter than %v`, c.Partition, minPartition)
	case c.Partition%time.Second != 0:
		return fmt.Errorf(`config "partition": %v is not a whole number of seconds`, c.Partition)
	case c.Retention < 0:
		return fmt.Errorf(`config "retention": %v is negative (0 keeps everything)`, c.Retention)
	case c.ReadOnly && c.Retention > 0:
		return errors.New(`config "retention": a read_only sink drops nothing; set retention in the sensors' sink blocks`)
	case c.ReadOnly && c.RawPackets:
		return errors.New(`config "raw_packets": a read_only sink stores nothing`)
	}
	if c.BatchRows == 0 {
		c.BatchRows = defaultConfig().BatchRows
	}
	if c.Connections == 0 {
		c.Connections = defaultConfig().Connections
	}
	return nil
}

// writeTimeout bounds one Write, so a database that hangs (rather than
// refusing connections) still turns into an error the core retries.
const writeTimeout = 2 * time.Minute

// sink is the plugin. Configure builds a state; Write and the queries use
// the current one.
type sink struct {
	mu sync.Mutex // serializes Configure
	st atomic.Pointer[state]

	health atomic.Pointer[string] // last write's error ("" after a success)
	n      counters
}

type counters struct {
	packets, packetsIgnored, features, featuresDup, alerts, alertsDup atomic.Uint64
	batchesDup, writeErrors, partitionsCreated, partitionsDropped     atomic.Uint64
	transactions                                                      atomic.Uint64 // committed groups
}

var (
	_ sdk.Sink           = (*sink)(nil)
	_ sdk.ConcurrentSink = (*sink)(nil)
	_ sdk.Store          = (*sink)(nil)
	_ sdk.Statser        = (*sink)(nil)
)

func newSink() *sink { return &sink{} }

// state is one configuration's connection pool and settings.
type state struct {
	cfg    config
	sensor string // Runtime.Sensor: packets' sensor, and features' when a batch names none
	pool   *pgxpool.Pool
	red    *redactor
	target string // user@host:port/db, for messages (no password)
	cols   featureColumns
	parts  *partitions
	n      *counters
	q      *groupQueue // items waiting for a writer (group commit)
	stop   context.CancelFunc
	done   chan struct{} // closed when maintenance and the writers have stopped
}

// Describe reports the sink. Before Configure it claims every record kind
// and frames: the core may read this first answer to decide what to send,
// and a sink that stores packets must not be starved of them. After
// Configure it says exactly what this configuration stores.
func (s *sink) Describe() sdk.Info {
	info := sdk.Info{Name: "sink-postgres", Version: version, Kind: sdk.KindSink, Config: sdk.SchemaOf(defaultConfig())}
	st := s.st.Load()
	switch {
	case st == nil:
		info.Records = []sdk.RecordKind{sdk.RecordPackets, sdk.RecordFeatures, sdk.RecordAlerts}
		info.WantsFrames = true
	case st.cfg.ReadOnly:
		info.Records = []sdk.RecordKind{}
	case st.cfg.RawPackets:
		info.Records = []sdk.RecordKind{sdk.RecordPackets, sdk.RecordFeatures, sdk.RecordAlerts}
		info.WantsFrames = st.cfg.Snaplen > 0
	default:
		info.Records = []sdk.RecordKind{sdk.RecordFeatures, sdk.RecordAlerts}
	}
	return info
}

// Configure connects, migrates the schema, prepares partitions and starts
// the maintenance loop. A second Configure replaces the first.
func (s *sink) Configure(ctx context.Context, c sdk.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := defaultConfig()
	if err := c.Decode(&cfg); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	st, err := open(ctx, cfg, c.Runtime.Sensor, &s.n)
	if err != nil {
		return err
	}
	if old := s.st.Swap(st); old != nil {
		old.close()
	}
	s.health.Store(new(string))
	return nil
}

// open connects to the database and brings it up to date.
func open(ctx context.Context, cfg config, sensor string, n *counters) (*state, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgx redacts the password of a URL it cannot parse; redact anyway.
		return nil, fmt.Errorf(`config "url": not a valid PostgreSQL URL: %v`, newRedactor(cfg.URL, "").string(err.Error()))
	}
	cc := pcfg.ConnConfig
	red := newRedactor(cfg.URL, cc.Password)
	pcfg.MaxConns = int32(cfg.Connections)
	pcfg.MinConns = 0
	pcfg.HealthCheckPeriod = 10 * time.Second
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 10 * time.Second
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "netguardian-sink-postgres"
	}
	cc.RuntimeParams["timezone"] = "UTC"
	cc.RuntimeParams["client_min_messages"] = "warning"
	target := fmt.Sprintf("%s@%s/%s", cc.User, net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), cc.Database)

	st := &state{cfg: cfg, sensor: sensor, red: red, target: target, n: n}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(cctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL %s: %v", target, red.string(err.Error()))
	}
	fail := func(format string, err error) (*state, error) {
		pool.Close()
		return nil, fmt.Errorf(format, target, red.string(err.Error()))
	}
	if err := pool.Ping(cctx); err != nil {
		return fail("connect to PostgreSQL %s: %s", err)
	}
	st.pool = pool
	migs, err := loadMigrations(migrationFS)
	if err != nil {
		return fail("database %s: %s", err)
	}
	var from, to int
	if cfg.ReadOnly {
		from, err = checkSchema(cctx, pool, len(migs))
		to = from
	} else {
		from, to, err = migrate(cctx, pool, migs)
	}
	if err != nil {
		return fail("database %s: %s", err)
	}
	if st.cols, err = loadFeatureColumns(cctx, pool); err != nil {
		return fail("database %s: %s", err)
	}
	st.parts = newPartitions(pool, cfg.Partition, cfg.Retention, n)
	st.q = newGroupQueue()
	mctx, stop := context.WithCancel(context.Background())
	st.stop, st.done = stop, make(chan struct{})
	if cfg.ReadOnly {
		close(st.done)
	} else {
		if err := st.parts.prepare(cctx, time.Now()); err != nil {
			stop()
			return fail("database %s: prepare partitions: %s", err)
		}
		var wg sync.WaitGroup
		wg.Go(func() { st.maintain(mctx) })
		for range writers(cfg.Connections) {
			wg.Go(func() { st.runWriter(mctx) })
		}
		go func() {
			wg.Wait()
			st.q.drain()
			close(st.done)
		}()
	}
	sdk.Logger().Info("sink-postgres connected", "database", target, "schema_from", from, "schema_version", to,
		"raw_packets", cfg.RawPackets, "read_only", cfg.ReadOnly, "partition", cfg.Partition.String(), "retention", cfg.Retention.String())
	return st, nil
}

func (st *state) close() {
	st.stop()
	<-st.done
	st.pool.Close()
}

// maintain creates the coming partitions and applies retention once a
// minute, so a quiet sensor still rolls over and ages out.
func (st *state) maintain(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			if err := st.parts.prepare(mctx, now); err != nil && ctx.Err() == nil {
				sdk.Logger().Warn("partition maintenance failed; retried in a minute", "error", st.red.string(err.Error()))
			}
			cancel()
		}
	}
}

// writers is how many connections of the pool write (the group-commit
// writers): half of them, so that queries are not starved, and at least
// one. PostgreSQL works on one COPY with one backend, so this is also how
// many cores the database can use for ingestion.
func writers(connections int) int { return max(1, connections/2) }

// maxConcurrentWrites is how many Writes the SDK may run at once. Writes
// mostly wait for their commit, and batches that wait together are
// committed together, so this only needs to exceed what the core keeps in
// flight.
const maxConcurrentWrites = 64

// WriteConcurrency lets the SDK run Writes concurrently (sdk.ConcurrentSink):
// they are ordered by nothing but their commits.
func (s *sink) WriteConcurrency() int { return maxConcurrentWrites }

// Write stores one batch. It returns nil only once the batch is committed
// (possibly in one transaction with other batches: see group.go); a batch
// already stored (a re-send) is skipped, row by row for features and
// alerts and chunk by chunk for packets. Writes run concurrently.
func (s *sink) Write(ctx context.Context, rec sdk.Records) error {
	st := s.st.Load()
	if st == nil {
		return errors.New("sink-postgres: Write before Configure")
	}
	if st.cfg.ReadOnly {
		return errors.New("sink-postgres: read_only is set; this sink stores nothing")
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	what := "alerts"
	switch {
	case rec.Packets != nil:
		what = "packets"
	case rec.Features != nil:
		what = "features"
	}
	if err := st.write(ctx, rec); err != nil {
		s.n.writeErrors.Add(1)
		msg := fmt.Sprintf("store %s (batch %d) in %s: %s", what, rec.Seq, st.target, st.red.string(err.Error()))
		s.health.Store(&msg)
		sdk.Logger().Warn("write failed; the core will send the batch again", "error", msg)
		return errors.New(msg)
	}
	if h := s.health.Load(); h == nil || *h != "" {
		s.health.Store(new(string))
	}
	return nil
}

// Stats reports health and counters. Unhealthy after a failed write (until
// one succeeds) or when the database does not answer a ping.
func (s *sink) Stats() sdk.Stats {
	out := sdk.Stats{Counters: map[string]uint64{
		"packets_written":       s.n.packets.Load(),
		"packets_ignored":       s.n.packetsIgnored.Load(),
		"features_written":      s.n.features.Load(),
		"features_duplicate":    s.n.featuresDup.Load(),
		"alerts_written":        s.n.alerts.Load(),
		"alerts_duplicate":      s.n.alertsDup.Load(),
		"packet_batches_resent": s.n.batchesDup.Load(),
		"write_errors":          s.n.writeErrors.Load(),
		"write_transactions":    s.n.transactions.Load(),
		"partitions_created":    s.n.partitionsCreated.Load(),
		"partitions_dropped":    s.n.partitionsDropped.Load(),
	}}
	st := s.st.Load()
	if st == nil {
		out.Message = "not configured"
		return out
	}
	if h := s.health.Load(); h != nil && *h != "" {
		out.Message = *h
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := st.pool.Ping(ctx); err != nil {
		out.Message = fmt.Sprintf("database %s unreachable: %s", st.target, st.red.string(err.Error()))
		return out
	}
	out.Healthy = true
	return out
}

// redactor removes the connection URL and password from messages.
type redactor struct{ secrets []string }

func newRedactor(rawURL, password string) *redactor {
	r := &redactor{}
	add := func(s string) {
		if s != "" {
			r.secrets = append(r.secrets, s)
		}
	}
	add(rawURL)
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			add(pw)
			add(url.QueryEscape(pw))
			add(url.PathEscape(pw))
		}
	}
	add(password)
	return r
}

func (r *redactor) string(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "xxxxx")
	}
	return s
}
