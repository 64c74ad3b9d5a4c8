//go:build !duckdb_arrow

package engine

// strata needs DuckDB's Arrow interface, which duckdb-go only compiles with a
// build tag. Without it the build stops here, with this name in the error:
// build with `go build -tags duckdb_arrow ./...`.
var _ = strata_must_be_built_with_tags_duckdb_arrow
