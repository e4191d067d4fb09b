package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// copyBuf builds a COPY ... FROM STDIN (FORMAT binary) stream. Encoding the
// rows directly (instead of handing pgx one []any per row) keeps packet
// ingestion free of per-value allocations.
type copyBuf struct {
	b    []byte
	done bool // the trailer is written
}

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

// copyBufs recycles COPY buffers: a packet chunk's is hundreds of KiB,
// and allocating one per chunk keeps the garbage collector busy.
var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}

func getCopyBuf() *copyBuf { return copyBufs.Get().(*copyBuf) }

func putCopyBuf(c *copyBuf) {
	if cap(c.b) > 64<<20 { // do not keep a buffer of a burst of jumbo frames
		return
	}
	copyBufs.Put(c)
}

func (c *copyBuf) reset() {
	c.done = false
	c.b = append(c.b[:0], copySignature...)
	c.b = binary.BigEndian.AppendUint32(c.b, 0) // flags
	c.b = binary.BigEndian.AppendUint32(c.b, 0) // header extension length
}

func (c *copyBuf) row(fields int) { c.b = binary.BigEndian.AppendUint16(c.b, uint16(fields)) }

func (c *copyBuf) null() { c.b = binary.BigEndian.AppendUint32(c.b, 0xffffffff) }

func (c *copyBuf) int2(v int16) {
	c.b = binary.BigEndian.AppendUint32(c.b, 2)
	c.b = binary.BigEndian.AppendUint16(c.b, uint16(v))
}

func (c *copyBuf) int4(v int32) {
	c.b = binary.BigEndian.AppendUint32(c.b, 4)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(v))
}

func (c *copyBuf) float8(v float64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, math.Float64bits(v))
}

// float8OrNull stores NaN (a missing value) as NULL.
func (c *copyBuf) float8OrNull(v float64) {
	if math.IsNaN(v) {
		c.null()
		return
	}
	c.float8(v)
}

// text stores s as valid UTF-8 without NUL bytes, which PostgreSQL text
// cannot hold: a batch must never fail on one odd string and be retried
// forever.
func (c *copyBuf) text(s string) {
	s = cleanText(s)
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(s)))
	c.b = append(c.b, s...)
}

func (c *copyBuf) bytea(v []byte) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(v)))
	c.b = append(c.b, v...)
}

// pgEpochMicros is 2000-01-01 UTC in Unix microseconds: PostgreSQL's epoch.
const pgEpochMicros = 946684800 * 1_000_000

func (c *copyBuf) timestampMicros(unixMicros int64) {
	c.b = binary.BigEndian.AppendUint32(c.b, 8)
	c.b = binary.BigEndian.AppendUint64(c.b, uint64(unixMicros-pgEpochMicros))
}

func (c *copyBuf) timestamp(t time.Time) { c.timestampMicros(unixMicros(t)) }

// unixMicros is t in microseconds since the Unix epoch, rounded down; it
// does not overflow for any year PostgreSQL can store.
func unixMicros(t time.Time) int64 {
	return t.Unix()*1_000_000 + int64(t.Nanosecond()/1000)
}

// inet stores a host address; an invalid one is NULL.
func (c *copyBuf) inet(a netip.Addr) {
	if !a.IsValid() {
		c.null()
		return
	}
	if a.Is4() {
		b := a.As4()
		c.b = binary.BigEndian.AppendUint32(c.b, 8)
		c.b = append(c.b, 2, 32, 0, 4) // PGSQL_AF_INET, bits, not cidr, length
		c.b = append(c.b, b[:]...)
		return
	}
	b := a.As16()
	c.b = binary.BigEndian.AppendUint32(c.b, 20)
	c.b = append(c.b, 3, 128, 0, 16) // PGSQL_AF_INET6
	c.b = append(c.b, b[:]...)
}

// inet16 stores a 16-byte address column entry (IPv4 mapped); the zero
// address, which non-IP frames carry, is NULL.
func (c *copyBuf) inet16(b []byte) {
	var z [16]byte
	if bytes.Equal(b, z[:]) {
		c.null()
		return
	}
	c.inet(netip.AddrFrom16([16]byte(b)).Unmap())
}

// jsonb stores JSON text (nil is NULL).
func (c *copyBuf) jsonb(js []byte) {
	if js == nil {
		c.null()
		return
	}
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(js)+1))
	c.b = append(c.b, 1) // jsonb binary format version
	c.b = append(c.b, js...)
}

func (c *copyBuf) finish() {
	if !c.done {
		c.b = binary.BigEndian.AppendUint16(c.b, 0xffff)
		c.done = true
	}
}

// copyIn sends the stream to table(cols) on tx's connection; the same
// buffer may be sent again (to another table, or after a retry).
func copyIn(ctx context.Context, tx pgx.Tx, table string, cols []string, c *copyBuf) (int64, error) {
	c.finish()
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", table, strings.Join(cols, ", "))
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(c.b), sql)
	if err != nil {
		return 0, fmt.Errorf("copy into %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}

func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// insertNew copies buf's rows into table, skipping rows whose unique key is
// there already (a re-sent batch), and returns how many it inserted: COPY
// cannot skip rows, so they go through a session-local staging table and
// INSERT ... ON CONFLICT DO NOTHING. (Copying straight into the table under
// a savepoint, with this as the fallback, measured no cheaper: the staging
// table is temporary, so it costs no WAL.)
func insertNew(ctx context.Context, tx pgx.Tx, table string, cols []string, stage, stageDDL string, buf *copyBuf) (int64, error) {
	if _, err := tx.Exec(ctx, stageDDL); err != nil {
		return 0, fmt.Errorf("staging table: %w", err)
	}
	if _, err := copyIn(ctx, tx, stage, cols, buf); err != nil {
		return 0, err
	}
	list := strings.Join(cols, ", ")
	tag, err := tx.Exec(ctx, "INSERT INTO "+table+" ("+list+") SELECT "+list+" FROM "+stage+" ON CONFLICT DO NOTHING")
	if err != nil {
		return 0, fmt.Errorf("insert into %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}
