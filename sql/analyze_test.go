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
	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT DISTINCT function_name FROM duckdb_functions()
		WHERE function_type = 'macro' AND regexp_matches(macro_definition, '(?i)\bfrom\b')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		n++
		if !subqueryMacros[name] && !deniedFunctions[name] {
			t.Errorf("built-in macro %s queries tables in its body and is not denied", name)
		}
	}
	if n == 0 {
		t.Fatal("found no macro with a query in its body: the query above no longer finds them")
	}
}

// Every volatile scalar function of this DuckDB is known to the pruner,
// which must not compute a bound from one before the query runs.
func TestPruner_VolatileFunctionsAreKnown(t *testing.T) {
	db, err := gosql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT DISTINCT function_name FROM duckdb_functions() WHERE stability = 'VOLATILE'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		n++
		if !volatileFunctions[name] {
			t.Errorf("volatile function %s is not in volatileFunctions", name)
		}
	}
	if n == 0 {
		t.Fatal("found no volatile function: the query above no longer finds them")
	}
}
