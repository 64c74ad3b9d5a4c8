package sql

import (
	"testing"
	"time"
)

// to_char runs once per row: go test -tags duckdb_arrow -run X -bench ToChar ./sql/
func BenchmarkToChar(b *testing.B) {
	t := time.Date(2026, 3, 5, 7, 8, 9, 123456000, time.UTC)
	for b.Loop() {
		toChar(t, "YYYY-MM-DD HH24:MI:SS.MS", true)
	}
}
