package main

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/sdk"
)

func TestJSONFloatRoundTrip(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1.25e-7, math.MaxFloat64, math.SmallestNonzeroFloat64,
		math.Inf(1), math.Inf(-1), math.NaN(), 0.1, 1e21, 123456789012345678} {
		b, err := json.Marshal(jsonFloat(v))
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		var got jsonFloat
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%v (%s): %v", v, b, err)
		}
		if math.IsNaN(v) != math.IsNaN(float64(got)) || (!math.IsNaN(v) && math.Float64bits(v) != math.Float64bits(float64(got))) {
			t.Errorf("%v -> %s -> %v", v, b, float64(got))
		}
	}
	var f jsonFloat
	if err := json.Unmarshal([]byte(`"many"`), &f); err == nil {
		t.Error(`"many" decoded as a float`)
	}
}

func TestCleanDetails(t *testing.T) {
	for in, want := range map[string]string{
		``:                         ``,
		`null`:                     ``,
		`{"a":1}`:                  `{"a":1}`,
		`{"a":"x\u0000y"}`:         `{"a":"x` + "\uFFFD" + `y"}`,
		"{\"a\":\"\xff\"}":         `{"a":"` + "\uFFFD" + `"}`,
		`[1, {"\u0000": [true]}]`:  `[1,{"` + "\uFFFD" + `":[true]}]`,
		`{"big": 1e400, "s": "é"}`: `{"big": 1e400, "s": "é"}`,
	} {
		got, err := cleanDetails(json.RawMessage(in))
		if err != nil || string(got) != want {
			t.Errorf("cleanDetails(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := cleanDetails(json.RawMessage(`{"a":`)); err == nil {
		t.Error("invalid JSON accepted")
	}
}

func TestCursor(t *testing.T) {
	k := alertKey{time: time.Date(1969, 12, 31, 23, 59, 59, 999_999_000, time.UTC), id: "id-é"}
	got, err := decodeCursor(encodeCursor(k))
	if err != nil || !got.time.Equal(k.time) || got.id != k.id {
		t.Errorf("round trip of %v: %v, %v", k, got, err)
	}
	for _, bad := range []string{"", "x", "not a cursor!", "%%%%", "aGVsbG8", "\x00\xff", encodeCursor(k)[:12], encodeCursor(k) + "\n"} {
		_, err := decodeCursor(bad)
		if !errors.Is(err, sdk.ErrBadCursor) || !strings.Contains(err.Error(), sdk.ErrBadCursor.Error()) {
			t.Errorf("decodeCursor(%q) = %v; want ErrBadCursor", bad, err)
		}
	}
}

func TestGaps(t *testing.T) {
	spans := []span{{from: 10, to: 20}, {from: 30, to: 35}, {from: 35, to: 40}}
	for _, tc := range []struct {
		from, to int64
		want     []span
	}{
		{0, 10, []span{{from: 0, to: 10}}},
		{0, 50, []span{{from: 0, to: 10}, {from: 20, to: 30}, {from: 40, to: 50}}},
		{12, 18, nil},
		{15, 32, []span{{from: 20, to: 30}}},
		{30, 40, nil},
	} {
		if got := gaps(spans, tc.from, tc.to); !slices.Equal(got, tc.want) {
			t.Errorf("gaps [%d, %d) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
	if floorDiv(-1, 3600) != -1 || floorDiv(3599, 3600) != 0 || floorDiv(-3600, 3600) != -1 {
		t.Error("floorDiv rounds toward zero")
	}
}

func TestRedactor(t *testing.T) {
	r := newRedactor("postgres://u:p%40ss%2Fw@h/db", "")
	for _, s := range []string{"postgres://u:p%40ss%2Fw@h/db", "password p@ss/w", "p%40ss%2Fw"} {
		if got := r.string(s); strings.Contains(got, "p@ss/w") || strings.Contains(got, "p%40ss%2Fw") {
			t.Errorf("redact(%q) = %q", s, got)
		}
	}
	r = newRedactor("host=h user=u password=kv-secret", "kv-secret")
	if got := r.string("auth failed for kv-secret"); strings.Contains(got, "kv-secret") {
		t.Errorf("key/value password not redacted: %q", got)
	}
}

func newPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFS)
	if err != nil || len(ms) != schemaVersion() || ms[0].version != 1 {
		t.Fatalf("embedded migrations: %d, %v", len(ms), err)
	}
	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"migrations/0001_a.sql": {Data: []byte("x")}, "migrations/0003_c.sql": {Data: []byte("x")}},
		"bad name": {"migrations/1_a.sql": {Data: []byte("x")}},
		"none":     {"migrations/.keep": {Data: nil}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestMigrate: concurrent starts migrate once; a failing migration leaves
// nothing behind and names itself; a second run changes nothing.
func TestMigrate(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	pool := newPool(t, srv.URL())
	ctx := t.Context()
	migs := []migration{
		{1, "one", "CREATE TABLE m1 (x int)"},
		{2, "two", "CREATE TABLE m2 (x int); INSERT INTO m2 VALUES (1)"},
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = migrate(ctx, pool, migs)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent migrate: %v", err)
		}
	}
	var rows, m2 int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM ng_schema_migrations), (SELECT count(*) FROM m2)").Scan(&rows, &m2); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || m2 != 1 {
		t.Errorf("after concurrent runs: %d version rows, m2 has %d rows; want 2 and 1", rows, m2)
	}
	from, to, err := migrate(ctx, pool, migs)
	if err != nil || from != 2 || to != 2 {
		t.Errorf("second run: %d -> %d, %v", from, to, err)
	}
	bad := append(migs, migration{3, "three", "CREATE TABLE m3 (x int); SELECT no_such_function()"})
	_, to, err = migrate(ctx, pool, bad)
	if err == nil || !strings.Contains(err.Error(), "0003_three") || to != 2 {
		t.Errorf("failing migration: to %d, %v; want an error naming 0003_three", to, err)
	}
	var m3 *string
	if err := pool.QueryRow(ctx, "SELECT to_regclass('m3')::text").Scan(&m3); err != nil || m3 != nil {
		t.Errorf("a failed migration left table m3 behind (%v, %v)", m3, err)
	}
	_, _, err = migrate(ctx, pool, migs[:1])
	var tooNew *ErrSchemaTooNew
	if !errors.As(err, &tooNew) || tooNew.DB != 2 || tooNew.Known != 1 {
		t.Errorf("migrating with fewer migrations than applied: %v; want ErrSchemaTooNew{2, 1}", err)
	}
}

// TestSchemaHasEveryFeature: a feature added to sdk.Features needs a
// migration adding its column (until then it lands in extra).
func TestSchemaHasEveryFeature(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	cfg := defaultConfig()
	cfg.URL = srv.URL()
	st := openState(t, srv.URL(), cfg)
	if !slices.Equal(st.cols.names, sdk.Features) {
		t.Errorf("aggregated_features has columns for %v; want every feature of sdk.Features %v: add a migration", st.cols.names, sdk.Features)
	}
}

// TestExtraFeatures: features the schema has no column for round-trip
// through extra, by name.
func TestExtraFeatures(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	p := startSink(t, srv.URL(), nil)
	w := newWriter(t, p)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	src := mustAddr("10.0.0.1")
	b := &sdk.FeatureBatch{Sensor: "x", Window: 30 * time.Second, Names: []string{"zz_future_total", sdk.FeaturePackets, "aa_new_ms"},
		Rows: []sdk.FeatureRow{
			{Src: src, Start: t0, End: t0.Add(30 * time.Second), Values: []float64{7, 3, math.Inf(-1)}},
			{Src: src, Start: t0.Add(30 * time.Second), End: t0.Add(60 * time.Second), Values: []float64{math.NaN(), 4, 0.5}},
		}}
	if err := w.write(sdk.Records{Features: b}); err != nil {
		t.Fatal(err)
	}
	got, err := p.conn.Store().QueryFeatures(context.Background(), sdk.FeatureQuery{Window: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(slices.Clone(sdk.Features), "aa_new_ms", "zz_future_total"); !slices.Equal(got.Names, want) {
		t.Fatalf("names %v, want %v", got.Names, want)
	}
	for i, want := range []map[string]float64{
		{sdk.FeaturePackets: 3, "aa_new_ms": math.Inf(-1), "zz_future_total": 7},
		{sdk.FeaturePackets: 4, "aa_new_ms": 0.5, "zz_future_total": math.NaN()},
	} {
		for n, w := range want {
			v, ok := got.Value(i, n)
			if !ok || !(v == w || math.IsNaN(v) && math.IsNaN(w)) {
				t.Errorf("row %d %s = %v, want %v", i, n, v, w)
			}
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
