package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// copyBuf holds rows in PostgreSQL's binary COPY format, without the
// stream's header and trailer, so that the rows of several batches can be
// sent as one COPY. Encoding the rows directly (instead of handing pgx one
// []any per row) keeps ingestion free of per-value allocations.
type copyBuf struct{ b []byte }

// copyHeader starts a binary COPY stream: signature, flags, header
// extension length; copyTrailer ends it.
var (
	copyHeader  = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	copyTrailer = []byte{0xff, 0xff}
)

// copyBufs recycles COPY buffers: a packet chunk's is hundreds of KiB,
// and allocating one per chunk keeps the garbage collector busy.
var copyBufs = sync.Pool{New: func() any { return new(copyBuf) }}

// getCopyBuf returns an empty buffer.
func getCopyBuf() *copyBuf {
	c := copyBufs.Get().(*copyBuf)
	c.b = c.b[:0]
	return c
}

func putCopyBuf(c *copyBuf) {
	if cap(c.b) > 64<<20 { // do not keep a buffer of a burst of jumbo frames
		return
	}
	copyBufs.Put(c)
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

// copyIn sends parts (rows encoded by copyBuf) to table(cols) on tx's
// connection as one COPY and returns how many rows it stored.
func copyIn(ctx context.Context, tx pgx.Tx, table string, cols []string, parts [][]byte) (int64, error) {
	readers := make([]io.Reader, 0, len(parts)+2)
	readers = append(readers, bytes.NewReader(copyHeader))
	for _, p := range parts {
		readers = append(readers, bytes.NewReader(p))
	}
	readers = append(readers, bytes.NewReader(copyTrailer))
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", table, strings.Join(cols, ", "))
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, io.MultiReader(readers...), sql)
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

// insertNew copies parts into table through the session-local staging
// table stage, skipping rows whose unique key is there already (a re-sent
// batch), and returns how many it inserted: COPY cannot skip rows,
// INSERT ... ON CONFLICT DO NOTHING can.
func insertNew(ctx context.Context, tx pgx.Tx, table string, cols []string, stage, stageDDL string, parts [][]byte) (int64, error) {
	if _, err := tx.Exec(ctx, stageDDL); err != nil {
		return 0, fmt.Errorf("staging table: %w", err)
	}
	if _, err := copyIn(ctx, tx, stage, cols, parts); err != nil {
		return 0, err
	}
	list := strings.Join(cols, ", ")
	tag, err := tx.Exec(ctx, "INSERT INTO "+table+" ("+list+") SELECT "+list+" FROM "+stage+" ON CONFLICT DO NOTHING")
	if err != nil {
		return 0, fmt.Errorf("insert into %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
