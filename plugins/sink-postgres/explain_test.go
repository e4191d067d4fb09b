package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/sdk"
)

// explain returns the plan of sql with sequential scans disabled: a query
// that still scans a table whole has no index to use.
func explain(t *testing.T, st *state, sql string, args []any) string {
	t.Helper()
	var plan []string
	err := pgx.BeginFunc(context.Background(), st.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), "SET LOCAL enable_seqscan = off"); err != nil {
			return err
		}
		rows, err := tx.Query(context.Background(), "EXPLAIN "+sql, args...)
		if err != nil {
			return err
		}
		plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", sql, err)
	}
	return strings.Join(plan, "\n")
}

// childIndexes returns the partitions' indexes of a partitioned index.
func childIndexes(t *testing.T, st *state, index string) []string {
	t.Helper()
	rows, err := st.pool.Query(context.Background(), `SELECT c.relname::text FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`, index)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) == 0 {
		t.Fatalf("partitions of index %s: %v, %v", index, names, err)
	}
	return names
}

// TestQueryPlans checks that the store's queries use indexes: none scans
// a partition of aggregated_features or detected_alerts whole, and the
// per-source feature query uses idx_agg_window_src_start.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	cfg := defaultConfig()
	cfg.URL, cfg.Partition = srv.URL(), 6*time.Hour
	st := openState(t, srv.URL(), cfg)
	base := time.Date(2025, time.May, 5, 0, 0, 0, 0, time.UTC)
	fEnd, aEnd := seed(t, st, base, 60_000, 50, 60_000)
	src := netip.MustParseAddr("10.0.0.7")
	mid := base.Add(fEnd.Sub(base) / 2)
	aMid := base.Add(aEnd.Sub(base) / 2)
	srcIndex := childIndexes(t, st, "idx_agg_window_src_start")

	fq := func(q sdk.FeatureQuery, limit int) (string, []any) { return featureSQL(st.cols, q, limit) }
	for _, tc := range []struct {
		name     string
		sql      string
		args     []any
		useIndex []string // one of these must appear
	}{
		{name: "features of a source", useIndex: srcIndex},
		{name: "features of a source in a range", useIndex: srcIndex},
		{name: "newest features"},
		{name: "features in a range"},
		{name: "protocols in a range"},
		{name: "top sources in a range"},
		{name: "alerts"},
		{name: "alerts after a cursor"},
		{name: "alerts of a source"},
		{name: "alerts of a label after a cursor"},
		{name: "alerts of a severity"},
		{name: "alerts ending in a range"},
	} {
		switch tc.name {
		case "features of a source":
			tc.sql, tc.args = fq(sdk.FeatureQuery{Window: 5 * time.Second, Src: src}, 100)
		case "features of a source in a range":
			tc.sql, tc.args = fq(sdk.FeatureQuery{Window: 30 * time.Second, Src: src, Range: sdk.TimeRange{From: base, To: mid}}, 10_000)
		case "newest features":
			tc.sql, tc.args = fq(sdk.FeatureQuery{Window: 5 * time.Second}, 100)
		case "features in a range":
			tc.sql, tc.args = fq(sdk.FeatureQuery{Window: 5 * time.Second, Range: sdk.TimeRange{From: mid, To: mid.Add(time.Minute)}}, 10_000)
		case "protocols in a range":
			tc.sql, tc.args = protocolSQL(sdk.TimeRange{From: mid, To: mid.Add(5 * time.Minute)})
		case "top sources in a range":
			tc.sql, tc.args = topSourcesSQL(sdk.TopSourcesQuery{By: "packets", Range: sdk.TimeRange{From: mid, To: mid.Add(5 * time.Minute)}}, 10)
		case "alerts":
			tc.sql, tc.args = alertSQL(sdk.AlertQuery{}, nil, 100)
		case "alerts after a cursor":
			tc.sql, tc.args = alertSQL(sdk.AlertQuery{}, &alertKey{time: aMid, id: "a0000001000"}, 100)
		case "alerts of a source":
			tc.sql, tc.args = alertSQL(sdk.AlertQuery{Src: src}, nil, 100)
		case "alerts of a label after a cursor":
			tc.sql, tc.args = alertSQL(sdk.AlertQuery{Label: "dns_tunnel"}, &alertKey{time: aMid, id: "a0000001000"}, 100)
		case "alerts of a severity":
			tc.sql, tc.args = alertSQL(sdk.AlertQuery{Severity: sdk.SeverityCritical}, nil, 100)
		case "alerts ending in a range":
			tc.sql, tc.args = alertSQL(sdk.AlertQuery{Range: sdk.TimeRange{From: aMid, To: aMid.Add(time.Minute)}}, nil, 100)
		}
		plan := explain(t, st, tc.sql, tc.args)
		if strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s: a sequential scan:\n%s", tc.name, plan)
		}
		if !strings.Contains(plan, "Index") {
			t.Errorf("%s: no index used:\n%s", tc.name, plan)
		}
		if len(tc.useIndex) > 0 {
			found := false
			for _, ix := range tc.useIndex {
				found = found || strings.Contains(plan, ix)
			}
			if !found {
				t.Errorf("%s: does not use idx_agg_window_src_start (%v):\n%s", tc.name, tc.useIndex, plan)
			}
		}
	}
}
