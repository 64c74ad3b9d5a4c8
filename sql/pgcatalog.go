package sql

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// pgCatalog answers the catalog queries that PostgreSQL clients send —
// psql's \dt and \d, Grafana's table and column pickers, drivers asking
// for version() or current_setting() — so they can list strata's tables
// and columns. A few of psql's queries read columns DuckDB's pg_catalog
// lacks; those are recognised and answered here. Everything else runs in a
// DuckDB of its own that holds empty tables shaped like records and
// metrics (and no data, and no file access), after rewriting the
// PostgreSQL-only syntax DuckDB does not parse.
type pgCatalog struct {
	db  *engine.DB
	dir string
}

// Table OIDs as psql sees them.
var tableOIDs = map[string]int{schema.Records: 16385, schema.Metrics: 16386}

func newPGCatalog(ctx context.Context, _ *engine.DB) (*pgCatalog, error) {
	dir, err := os.MkdirTemp("", "strata-pgcatalog-")
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: %w", err)
	}
	setup := []string{
		`CREATE MACRO pg_get_userbyid(x) AS 'strata'`,
		`CREATE MACRO quote_ident(x) AS CASE WHEN regexp_full_match(x, '[a-z_][a-z0-9_$]*') THEN x ELSE '"' || replace(x, '"', '""') || '"' END`,
		`CREATE MACRO array_lower(a, d) AS 1`,
		`CREATE MACRO array_upper(a, d) AS len(a)`,
		`CREATE MACRO string_to_array(str, sep) AS TABLE SELECT string_split(str, sep) AS s`,
		`CREATE MACRO obj_description(o, c) AS NULL`,
		`CREATE MACRO pg_encoding_to_char(e) AS 'UTF8'`,
	}
	for _, t := range schema.Tables() {
		cols := make([]string, t.Schema.NumFields())
		for i, f := range t.Schema.Fields() {
			cols[i] = f.Name + " " + schema.SQLType(f.Type)
			if !f.Nullable {
				cols[i] += " NOT NULL"
			}
		}
		setup = append(setup, "CREATE TABLE "+t.Name+" ("+strings.Join(cols, ", ")+")")
	}
	db, err := engine.Open(ctx, engine.Options{AllowedDirs: []string{dir}, TempDir: dir, MemoryLimit: "256MB", Threads: 1, Setup: setup})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("postgres catalog: %w", err)
	}
	return &pgCatalog{db: db, dir: dir}, nil
}

func (c *pgCatalog) close() error {
	err := c.db.Close()
	os.RemoveAll(c.dir)
	return err
}

var catalogQuery = regexp.MustCompile(`(?i)\b(pg_catalog|information_schema|pg_class|pg_namespace|pg_type|pg_attribute|pg_database|pg_settings|pg_tables|pg_views|pg_proc|pg_roles|pg_user|pg_am|pg_index|pg_description|current_setting|current_schema|current_database|version\s*\(\s*\)|has_table_privilege)\b`)

// isCatalogQuery reports whether a query is about the catalog rather than
// the data.
func (c *pgCatalog) isCatalogQuery(sql string) bool { return catalogQuery.MatchString(sql) }

var (
	// psql's \d NAME, step 1: find the relation by name pattern.
	psqlFindRelation = regexp.MustCompile(`(?s)FROM pg_catalog\.pg_class c\s+LEFT JOIN pg_catalog\.pg_namespace n ON n\.oid = c\.relnamespace\s+WHERE c\.relname OPERATOR\(pg_catalog\.~\) '((?:[^']|'')*)'`)
	// step 2: the relation's kind and flags.
	psqlRelationInfo = regexp.MustCompile(`(?s)SELECT c\.relchecks, c\.relkind.*WHERE c\.oid = '(\d+)'`)
	// step 3: its columns.
	psqlColumns  = regexp.MustCompile(`(?s)FROM pg_catalog\.pg_attribute a\s+WHERE a\.attrelid = '(\d+)' AND a\.attnum > 0`)
	operatorPG   = regexp.MustCompile(`OPERATOR\(pg_catalog\.([^)]+)\)`)
	collatePG    = regexp.MustCompile(`(?i)COLLATE\s+pg_catalog\."?default"?`)
	castPGType   = regexp.MustCompile(`::pg_catalog\.`)
	regTypeCasts = regexp.MustCompile(`(?i)::(regclass|regtype|regproc|regnamespace|oid)\b`)
	// DuckDB's search_path setting is per connection and empty; the
	// catalog's tables live in main, which is what clients should see.
	searchPath = regexp.MustCompile(`(?i)current_setting\(\s*'search_path'\s*\)`)
)

// answer handles a catalog query: ok is false for queries about data.
func (c *pgCatalog) answer(sql string) (*pgResult, bool, error) {
	if !c.isCatalogQuery(sql) {
		return nil, false, nil
	}
	if m := psqlFindRelation.FindStringSubmatch(sql); m != nil {
		re, err := regexp.Compile(strings.ReplaceAll(m[1], "''", "'"))
		if err != nil {
			return nil, true, &pgError{code: "2201B", msg: "invalid regular expression: " + err.Error()}
		}
		var rows [][]string
		for _, t := range schema.Tables() {
			if re.MatchString(t.Name) {
				rows = append(rows, []string{strconv.Itoa(tableOIDs[t.Name]), "main", t.Name})
			}
		}
		return constResult([]string{"oid", "nspname", "relname"}, rows), true, nil
	}
	if m := psqlRelationInfo.FindStringSubmatch(sql); m != nil {
		if tableByOID(m[1]) == nil {
			return constResult([]string{"relchecks"}, nil), true, nil
		}
		return constResult(
			[]string{"relchecks", "relkind", "relhasindex", "relhasrules", "relhastriggers", "relrowsecurity",
				"relforcerowsecurity", "relhasoids", "relispartition", "reloptions", "reltablespace", "reloftype",
				"relpersistence", "relreplident", "amname"},
			[][]string{{"0", "r", "f", "f", "f", "f", "f", "f", "f", "", "0", "", "p", "d", "heap"}}), true, nil
	}
	if m := psqlColumns.FindStringSubmatch(sql); m != nil {
		t := tableByOID(m[1])
		var rows [][]string
		if t != nil {
			for _, f := range t.Schema.Fields() {
				notNull := "f"
				if !f.Nullable {
					notNull = "t"
				}
				rows = append(rows, []string{f.Name, pgTypeName(f.Type), "", notNull, "", "", ""})
			}
		}
		res := constResult([]string{"attname", "format_type", "default", "attnotnull", "attcollation", "attidentity", "attgenerated"}, rows)
		for _, r := range res.fixed.rows {
			r[2], r[4] = nullText, nullText // no default, no collation
		}
		return res, true, nil
	}
	res, err := c.run(sql)
	if err != nil {
		// A catalog query strata cannot answer (pg_policy, pg_inherits…)
		// gets an empty result: the client asked about features strata
		// does not have, and the answer is "none".
		return constResult([]string{"?column?"}, nil), true, nil
	}
	return res, true, nil
}

func tableByOID(oid string) *schema.Table {
	for name, o := range tableOIDs {
		if strconv.Itoa(o) == oid {
			t, _ := schema.Lookup(name)
			return t
		}
	}
	return nil
}

// run rewrites a catalog query for DuckDB and runs it on the catalog DB.
func (c *pgCatalog) run(sql string) (*pgResult, error) {
	ctx := context.Background()
	sql = operatorPG.ReplaceAllString(sql, "$1")
	sql = collatePG.ReplaceAllString(sql, "")
	sql = castPGType.ReplaceAllString(sql, "::")
	sql = regTypeCasts.ReplaceAllString(sql, "")
	sql = searchPath.ReplaceAllString(sql, "'main'")
	tree, err := c.db.Parse(ctx, sql)
	if err != nil {
		return nil, err
	}
	rewriteCatalogTree(tree)
	if sql, err = c.db.Deparse(ctx, tree); err != nil {
		return nil, err
	}
	rows, err := c.db.Query(ctx, engine.Query{SQL: sql, Raw: true})
	if err != nil {
		return nil, err
	}
	return &pgResult{rows: &Result{Rows: rows}}, nil
}

// rewriteCatalogTree adapts PostgreSQL idioms in a parsed query: functions
// called as pg_catalog.f resolve to DuckDB's own or the catalog DB's
// macros, and a function in FROM with an alias names its single column too
// (PostgreSQL's rule, which Grafana's queries rely on).
func rewriteCatalogTree(n any) {
	switch v := n.(type) {
	case map[string]any:
		if v["class"] == "FUNCTION" && v["schema"] == "pg_catalog" {
			v["schema"] = ""
		}
		if v["type"] == "TABLE_FUNCTION" {
			if alias, _ := v["alias"].(string); alias != "" {
				if cols, _ := v["column_name_alias"].([]any); len(cols) == 0 {
					v["column_name_alias"] = []any{alias}
				}
			}
		}
		for _, c := range v {
			rewriteCatalogTree(c)
		}
	case []any:
		for _, c := range v {
			rewriteCatalogTree(c)
		}
	}
}
