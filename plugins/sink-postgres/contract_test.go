package main

import (
	"context"
	"fmt"
	"testing"
	"unicode/utf8"

	"github.com/netguardian/netguardian/internal/pgtest"
	"github.com/netguardian/netguardian/sdk"
	"github.com/netguardian/netguardian/sdk/storetest"
)

// TestStoreContract runs the shared store contract against the plugin
// process: batches go in over the sink's write stream, queries over its
// gRPC store service, each subtest on a fresh database.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, storetest.Harness{New: func(t *testing.T) (sdk.Store, storetest.Appender) {
		srv := pgtest.Start(t)
		p := startSink(t, srv.URL(), nil)
		return utf8Cursors{p.conn.Store()}, appender{w: newWriter(t, p)}
	}})
}

// utf8Cursors stands in for a check the core-side store client
// (sdk.Conn.Store) lacks: the wire's cursor is a protobuf string, so a
// cursor that is not UTF-8 fails in gRPC's marshalling before reaching any
// store, with an error that does not wrap sdk.ErrBadCursor. No store can
// issue such a cursor, so rejecting it on the client is exact. Once
// sdk's storeClient does this itself, this wrapper can go.
type utf8Cursors struct{ sdk.Store }

func (s utf8Cursors) QueryAlerts(ctx context.Context, q sdk.AlertQuery) (sdk.AlertPage, error) {
	if !utf8.ValidString(q.Cursor) {
		return sdk.AlertPage{}, fmt.Errorf("query alerts: cursor %.40q: %w", q.Cursor, sdk.ErrBadCursor)
	}
	return s.Store.QueryAlerts(ctx, q)
}
