package sql

import (
	gosql "database/sql"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// Every built-in scalar macro whose body holds a query — of system tables
// the sandbox's check of the query tree never sees — is denied on data; a
// DuckDB upgrade that adds one fails here.
func TestSandbox_SubqueryMacrosAreDenied(t *testing.T) {
	for _, name := range builtinFunctions(t, `SELECT DISTINCT function_name FROM duckdb_functions()
		WHERE function_type = 'macro' AND regexp_matches(macro_definition, '(?i)\bfrom\b')`) {
		if !subqueryMacros[name] && !deniedFunctions[name] {
			t.Errorf("built-in macro %s queries tables in its body and is not denied", name)
		}
	}
}

// Every volatile scalar function of this DuckDB is known to the pruner,
// which must not compute a bound from one before the query runs.
func TestPruner_VolatileFunctionsAreKnown(t *testing.T) {
	for _, name := range builtinFunctions(t, `SELECT DISTINCT function_name FROM duckdb_functions() WHERE stability = 'VOLATILE'`) {
		if !volatileFunctions[name] {
			t.Errorf("volatile function %s is not in volatileFunctions", name)
		}
	}
}

// builtinFunctions lists the names a query of a plain DuckDB's catalog
// returns; it fails the test if there are none (the query went stale).
func builtinFunctions(t *testing.T, query string) []string {
	t.Helper()
	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		t.Fatalf("no function matches: %s", query)
	}
	return names
}
