package main

import (
	"context"
	"testing"
	"time"
)

// openState connects in-process (no plugin) for tests that look at SQL.
func openState(t testing.TB, url string, cfg config) *state {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := open(ctx, cfg, "seed", &counters{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.close)
	return st
}

// seed fills the tables fast with generated rows: features 5s windows of
// sources sources (every sixth also a 30s window), alerts 10 per second,
// all from base on. It creates the partitions first and analyzes after.
func seed(t testing.TB, st *state, base time.Time, features, sources, alerts int) (featureEnd, alertEnd time.Time) {
	t.Helper()
	ctx := context.Background()
	featureEnd = base.Add(time.Duration(features/sources+1) * 5 * time.Second)
	alertEnd = base.Add(time.Duration(alerts/10+1) * time.Second)
	for table, end := range map[string]time.Time{tableFeatures: featureEnd, tableAlerts: alertEnd} {
		bs := st.parts.newBucketSet()
		for at := base; at.Before(end.Add(time.Duration(st.parts.interval) * time.Second)); at = at.Add(time.Duration(st.parts.interval) * time.Second) {
			bs.add(at.Unix())
		}
		if err := st.parts.ensure(ctx, table, bs.set); err != nil {
			t.Fatal(err)
		}
	}
	if features > 0 {
		if _, err := st.pool.Exec(ctx, `
			INSERT INTO aggregated_features (sensor, window_size, src_ip, window_start, window_end, flags,
				packets_total, bytes_total, tcp_packets_total, tcp_bytes_total, udp_packets_total, udp_bytes_total,
				icmp_packets_total, icmp_bytes_total, other_packets_total, other_bytes_total, packet_rate_pps, syn_total)
			SELECT 'seed', w, '10.0.0.0'::inet + (i % $2), $1::timestamptz + (i / $2) * interval '5 seconds',
				$1::timestamptz + (i / $2) * interval '5 seconds' + w * interval '1 second', 0,
				i % 97, (i % 97) * 700, i % 53, (i % 53) * 900, i % 31, (i % 31) * 120, i % 3, (i % 3) * 64, i % 2, 60,
				(i % 97) / 5.0, i % 11
			FROM generate_series(0, $3 - 1) AS i, LATERAL (SELECT unnest(CASE WHEN i % 6 = 0 THEN ARRAY[5, 30] ELSE ARRAY[5] END) AS w) ws`,
			base, sources, features); err != nil {
			t.Fatalf("seed features: %v", err)
		}
	}
	if alerts > 0 {
		if _, err := st.pool.Exec(ctx, `
			INSERT INTO detected_alerts (id, time, sensor, detector, src, window_size, window_start, window_end, label,
				score, severity, runner_up, runner_up_score, top_features, details)
			SELECT 'a' || lpad(i::text, 10, '0'), $1::timestamptz + i * interval '100 milliseconds', 'seed', 'xgboost',
				'10.0.0.0'::inet + (i % 5000), 30,
				$1::timestamptz + (i / 300) * interval '30 seconds' - interval '30 seconds',
				$1::timestamptz + (i / 300) * interval '30 seconds',
				(ARRAY['port_scan','syn_flood','udp_flood','brute_force','dns_tunnel'])[1 + i % 5], (i % 1000) / 1000.0,
				(ARRAY['low','medium','high','critical'])[1 + i % 4], 'benign', 0.01,
				'[{"name":"packets_total","value":12,"weight":0.5},{"name":"syn_total","value":"NaN","weight":0.25}]',
				'{"model":"xgb-v1","trees":100}'
			FROM generate_series(0, $2 - 1) AS i`, base, alerts); err != nil {
			t.Fatalf("seed alerts: %v", err)
		}
	}
	// What autovacuum does to insert-only tables (PostgreSQL 13+): statistics,
	// and the visibility map that index-only scans rely on.
	for _, table := range []string{tableFeatures, tableAlerts} {
		spans, err := listPartitions(ctx, st.pool, table)
		if err != nil {
			t.Fatal(err)
		}
		// Leaf by leaf, as autovacuum does, until the pages are marked
		// all-visible: an autovacuum ANALYZE started by the bulk insert
		// holds the xmin horizon back for a while.
		for _, s := range spans {
			for try := 0; ; try++ {
				if _, err := st.pool.Exec(ctx, "VACUUM "+s.name); err != nil {
					t.Fatal(err)
				}
				var pages, visible int64
				if err := st.pool.QueryRow(ctx, "SELECT relpages, relallvisible FROM pg_class WHERE oid = $1::regclass", s.name).Scan(&pages, &visible); err != nil {
					t.Fatal(err)
				}
				if visible >= pages*9/10 || try == 20 {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
		if _, err := st.pool.Exec(ctx, "ANALYZE "+table); err != nil {
			t.Fatal(err)
		}
	}
	return featureEnd, alertEnd
}
