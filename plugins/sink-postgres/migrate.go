package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one versioned schema change: migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// loadMigrations reads the migrations of fsys's migrations/ directory in
// version order; versions must run 1, 2, 3... without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migrations: %s is not named NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		b, err := fs.ReadFile(fsys, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		out = append(out, migration{version: v, name: m[2], sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations: version %d follows %d; versions must run 1, 2, 3... without gaps", m.version, i)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("migrations: none found")
	}
	return out, nil
}

// schemaVersion is the newest schema version this plugin knows.
func schemaVersion() int {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return 0
	}
	return len(ms)
}

// Advisory lock keys (pg_advisory_lock's bigint space is shared by every
// application of the database, so they are spelt out rather than small).
const (
	lockMigrate    int64 = 0x4e47_5047_0001 // "NGPG" 1: schema migrations
	lockPartitions int64 = 0x4e47_5047_0002 // "NGPG" 2: creating and dropping partitions
)

// ErrSchemaTooNew is returned when the database was migrated by a newer
// version of the plugin.
type ErrSchemaTooNew struct{ DB, Known int }

func (e *ErrSchemaTooNew) Error() string {
	return fmt.Sprintf("the database has schema version %d, newer than version %d that this sink-postgres knows: upgrade the plugin (it will not write to a schema it does not know)", e.DB, e.Known)
}

// migrate brings the database to the newest version of migs, under a
// session advisory lock so that sensors starting together migrate once.
// Each migration runs in its own transaction with its version row. It
// returns the versions before and after.
func migrate(ctx context.Context, pool *pgxpool.Pool, migs []migration) (from, to int, err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockMigrate); err != nil {
		return 0, 0, fmt.Errorf("take the migration lock: %w", err)
	}
	defer func() {
		// A failed unlock (the connection broke) ends with the session anyway.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockMigrate)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS ng_schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, 0, fmt.Errorf("create ng_schema_migrations: %w", err)
	}
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM ng_schema_migrations").Scan(&from); err != nil {
		return 0, 0, fmt.Errorf("read the schema version: %w", err)
	}
	known := len(migs)
	if from > known {
		return from, from, &ErrSchemaTooNew{DB: from, Known: known}
	}
	for _, m := range migs[from:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO ng_schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return from, m.version - 1, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
	}
	return from, known, nil
}

// checkSchema is migrate's read-only counterpart: the database must have
// exactly the newest schema this plugin knows.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, known int) (int, error) {
	v := -1
	var exists bool
	err := pool.QueryRow(ctx, "SELECT to_regclass('ng_schema_migrations') IS NOT NULL").Scan(&exists)
	if err == nil && exists {
		err = pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM ng_schema_migrations").Scan(&v)
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("read the schema version: %w", err)
	case v < 0:
		return 0, errors.New("the database has no NetGuardian schema yet: start a sensor with this sink (not read_only) first, which creates it")
	case v > known:
		return v, &ErrSchemaTooNew{DB: v, Known: known}
	case v < known:
		return v, fmt.Errorf("the database has schema version %d, older than version %d that this sink-postgres needs: start an up-to-date sensor (not read_only) first, which upgrades it", v, known)
	}
	return v, nil
}
