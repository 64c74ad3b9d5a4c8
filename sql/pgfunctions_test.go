package sql

import (
	gosql "database/sql"
	"database/sql/driver"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
)

// to_char runs once per row: go test -tags duckdb_arrow -run X -bench ToChar ./sql/
func BenchmarkToChar(b *testing.B) {
	t := time.Date(2026, 3, 5, 7, 8, 9, 123456000, time.UTC)
	for b.Loop() {
		toChar(t, "YYYY-MM-DD HH24:MI:SS.MS", true)
	}
}

// BenchmarkJSONContains is what `attributes @> '{…}'` costs per row: the
// executor parses both sides of each row.
func BenchmarkJSONContains(b *testing.B) {
	ops, err := jsonOperators()
	if err != nil {
		b.Fatal(err)
	}
	exec := ops[0].Overloads[0].Executor().RowExecutor
	// 14 attributes of mixed types, 370 bytes: a realistic span's.
	attrs := `{"http.request.method":"GET","http.route":"/api/v1/orders/{id}","http.response.status_code":200,` +
		`"url.scheme":"https","server.address":"orders.internal","server.port":8443,"user_agent.original":"Mozilla/5.0",` +
		`"network.protocol.version":"1.1","client.address":"10.1.2.3","app.order_id":"o-48213","app.items":3,` +
		`"app.cached":false,"app.region":"eu-west-1","app.tenant":"acme"}`
	for b.Loop() {
		if ok, err := exec([]driver.Value{attrs, `{"http.route":"/api/v1/orders/{id}"}`}); err != nil || ok != true {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkSetup is what Setup's macros add to each engine's start (the
// query engine's and the Postgres catalog's).
func BenchmarkSetup(b *testing.B) {
	for b.Loop() {
		db, err := gosql.Open("duckdb", "")
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		for _, s := range Setup {
			if _, err := db.Exec(s); err != nil {
				b.Fatal(err)
			}
		}
		db.Close()
	}
}
