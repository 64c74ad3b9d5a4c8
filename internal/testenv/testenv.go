// Package testenv gives tests the real services that scripts/test.sh starts:
// a PostgreSQL server and an S3-compatible object store, named by
// environment variables. Without them a test is skipped, unless
// STRATA_TEST_REQUIRE_SERVICES=1 (set by scripts/test.sh and CI), which turns
// the skip into a failure so a CI run can never pass by testing less.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/objstore"
)

func need(t testing.TB, env, what string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		if os.Getenv("STRATA_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("%s is not set: %s is required (run scripts/test.sh)", env, what)
		}
		t.Skipf("%s is not set; run scripts/test.sh to test against %s", env, what)
	}
	return v
}

// PostgresURL returns the URL of a real PostgreSQL server.
func PostgresURL(t testing.TB) string {
	return need(t, "STRATA_TEST_POSTGRES_URL", "a PostgreSQL server")
}

// PostgresSchema returns a fresh schema name and drops the schema when the
// test ends, so tests sharing one server never see each other's tables.
func PostgresSchema(t testing.TB, url string) string {
	t.Helper()
	schema := "t_" + RandomHex(6)
	t.Cleanup(func() {
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			t.Errorf("drop schema: %v", err)
			return
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// OpenPostgres opens a plain database/sql handle on the test server.
func OpenPostgres(t testing.TB, url string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

// S3URL returns a gocloud.dev/blob URL of a bucket on a real S3-compatible
// server (s3://bucket?endpoint=…), with credentials in the AWS_* variables.
func S3URL(t testing.TB) string {
	return need(t, "STRATA_TEST_S3_URL", "an S3-compatible server")
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// SQLiteCatalog opens a catalog at dir/catalog.db, closed when the test
// ends.
func SQLiteCatalog(t testing.TB, dir string, opts catalog.Options) catalog.Store {
	t.Helper()
	cat, err := catalog.OpenSQLite(context.Background(), filepath.Join(dir, "catalog.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

// Bucket opens the object store at url (file:///dir/objects for a local
// one: see FileURL), closed when the test ends.
func Bucket(t testing.TB, url string) *objstore.Bucket {
	t.Helper()
	bucket, err := objstore.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	return bucket
}

// FileURL names a local object store in dir/objects.
func FileURL(dir string) string { return "file://" + filepath.Join(dir, "objects") }
