package main

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/sdk"
)

// TestReadOnlyView: a central view with read_only = true answers queries
// over what sensors wrote, with a role that may only read, and stores
// nothing.
func TestReadOnlyView(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	if _, err := configureErr(t, map[string]any{"url": srv.URL(), "read_only": true}); err == nil ||
		!strings.Contains(err.Error(), "no NetGuardian schema yet") {
		t.Errorf("read_only on an empty database: %v; want an error saying a sensor must create the schema", err)
	}

	sensor := startSink(t, srv.URL(), nil)
	w := newWriter(t, sensor)
	t0 := time.Date(2025, 3, 3, 3, 0, 0, 0, time.UTC)
	v := make([]float64, len(sdk.Features))
	v[0], v[1] = 5, 500
	if err := w.write(sdk.Records{Features: &sdk.FeatureBatch{Sensor: "edge-1", Window: 5 * time.Second, Names: sdk.Features,
		Rows: []sdk.FeatureRow{{Src: netip.MustParseAddr("10.0.0.1"), Start: t0, End: t0.Add(5 * time.Second), Values: v}}}}); err != nil {
		t.Fatal(err)
	}

	// A role that may only read.
	admin := db(t, srv.URL())
	role := "ng_view_" + strings.TrimPrefix(srv.Database(), "ng_test_")
	const pw = "view-Secret-9"
	if _, err := admin.Exec(t.Context(), "CREATE ROLE "+role+" LOGIN PASSWORD '"+pw+"'"); err != nil {
		t.Skipf("cannot create a role on this server: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = admin.Exec(ctx, "DROP OWNED BY "+role)
		_, _ = admin.Exec(ctx, "DROP ROLE "+role)
	})
	if _, err := admin.Exec(t.Context(), "GRANT USAGE ON SCHEMA public TO "+role+"; GRANT SELECT ON ALL TABLES IN SCHEMA public TO "+role); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL())
	u.User = url.UserPassword(role, pw)
	view := startSink(t, u.String(), map[string]any{"read_only": true})

	info, err := view.conn.Describe(t.Context())
	if err != nil || len(info.Records) != 0 || info.WantsFrames {
		t.Errorf("read_only Describe: records %v, frames %v, %v; want none", info.Records, info.WantsFrames, err)
	}
	fb, err := view.conn.Store().QueryFeatures(t.Context(), sdk.FeatureQuery{Window: 5 * time.Second})
	if err != nil || len(fb.Rows) != 1 || fb.Rows[0].Sensor != "edge-1" || fb.Rows[0].Values[0] != 5 {
		t.Errorf("the view's features: %+v, %v; want the sensor's row", fb, err)
	}
	vw := newWriter(t, view)
	if err := vw.write(sdk.Records{Alerts: []sdk.Alert{{ID: "x", Time: t0}}}); err == nil || !strings.Contains(err.Error(), "read_only") {
		t.Errorf("Write to a read_only sink: %v; want an error", err)
	}
	if _, err := configureErr(t, map[string]any{"url": u.String(), "read_only": true, "retention": "1h"}); err == nil {
		t.Error("read_only with retention: no error")
	}
}
