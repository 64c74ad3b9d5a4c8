package sql

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/strata-db/strata/engine"
)

// The columns a query may read, as the fresh rows of ingest are cut to
// them: any doubt must mean all columns (nil).
func TestUsedColumns(t *testing.T) {
	db, err := engine.Open(context.Background(), engine.Options{AllowedDirs: []string{t.TempDir()}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cases := map[string]string{ // query → columns, "*" for all
		"SELECT count(*) FROM records": "",
		"SELECT service_name, count(*) FROM records WHERE start_timestamp > now() GROUP BY 1": "service_name start_timestamp",
		"SELECT r.span_name FROM records r WHERE r.duration > 1":                              "duration span_name",
		"SELECT records.span_name FROM records":                                               "span_name",
		"SELECT attributes->>'http.route' FROM records":                                       "attributes",
		"SELECT a.span_name FROM records a JOIN records b USING (span_id)":                    "span_id span_name",
		"SELECT *  FROM records":                                                              "*",
		"SELECT r.* FROM records r":                                                           "*",
		"SELECT * EXCLUDE (attributes) FROM records":                                          "*",
		"SELECT COLUMNS('.*_id') FROM records":                                                "*",
		"SELECT to_json(r) FROM records r":                                                    "*",
		"SELECT count(*) FROM records NATURAL JOIN metrics":                                   "*",
		"SELECT #2 FROM records":                                                              "*",
		"SELECT a FROM records r(a, b)":                                                       "*",
		"SELECT duration * 2 AS d FROM records ORDER BY d":                                    "*",
		"SELECT list_transform([1], x -> x + 1) FROM records":                                 "*",
		"WITH t AS (SELECT span_name AS n FROM records) SELECT n FROM t":                      "*",
		"SELECT span_name FROM records PIVOT (count(*) FOR service_name IN ('a'))":            "*",
	}
	for q, want := range cases {
		tree, err := db.Parse(context.Background(), q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		stmts, _ := tree["statements"].([]any)
		used := usedColumns(stmts[0])
		got := "*"
		if used != nil {
			var cols []string
			for c := range used {
				cols = append(cols, c)
			}
			slices.Sort(cols)
			got = strings.Join(cols, " ")
		}
		if got != want {
			t.Errorf("%s: columns %q, want %q", q, got, want)
		}
	}
}
