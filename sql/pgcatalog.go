package sql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

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
	// standIns are the parsed FROM items that stand in for catalog tables
	// DuckDB lacks or answers otherwise (JSON, copied for each query that
	// reads one), by lower-case name.
	standIns map[string][]byte
}

// standInTables are the catalog tables strata answers itself: pg_settings
// as SHOW gives them; pg_namespace with the pg_catalog row DuckDB's lacks
// (psql's tab completion filters tables by it, and found none); empty
// ones with PostgreSQL's columns for what strata does not have, so that
// count(*) over them is 0 and their columns bind.
func standInTables() map[string]string {
	empty := func(cols string) string {
		return "SELECT * FROM (VALUES (" + strings.Repeat("NULL, ", strings.Count(cols, ",")) +
			"NULL)) t(" + cols + ") WHERE false"
	}
	return map[string]string{
		"pg_settings": settingsSelect(),
		"pg_namespace": `SELECT oid, nspname, 10 AS nspowner, nspacl FROM system.pg_catalog.pg_namespace
			UNION ALL SELECT 11, 'pg_catalog', 10, NULL UNION ALL SELECT 13000, 'information_schema', 10, NULL`,
		// strata's tables, owned by the role pg_roles lists (DuckDB's
		// said duckdb).
		"pg_tables": `SELECT 'main' AS schemaname, tablename, 'strata' AS tableowner, NULL::VARCHAR AS tablespace,
			false AS hasindexes, false AS hasrules, false AS hastriggers, false AS rowsecurity
			FROM (VALUES ('records'), ('metrics')) t(tablename)`,
		// Every function is a system one, in pg_catalog, as the built-ins
		// and the macros standing in for PostgreSQL's are (psql's \df,
		// which lists a user's own, listed 262 macros under main).
		"pg_proc":      `SELECT * REPLACE (11 AS pronamespace) FROM system.pg_catalog.pg_proc`,
		"pg_extension": empty("oid, extname, extowner, extnamespace, extrelocatable, extversion, extconfig, extcondition"),
		"pg_roles": `SELECT 'strata' AS rolname, false AS rolsuper, true AS rolinherit, false AS rolcreaterole, false AS rolcreatedb,
			true AS rolcanlogin, false AS rolreplication, -1 AS rolconnlimit, '********' AS rolpassword, NULL::TIMESTAMPTZ AS rolvaliduntil,
			false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig, 10 AS oid`,
		"pg_user": `SELECT 'strata' AS usename, 10 AS usesysid, false AS usecreatedb, false AS usesuper, false AS userepl,
			false AS usebypassrls, '********' AS passwd, NULL::TIMESTAMPTZ AS valuntil, NULL::VARCHAR[] AS useconfig`,
		"pg_stat_activity": empty("datid, datname, pid, leader_pid, usesysid, usename, application_name, client_addr, client_hostname, " +
			"client_port, backend_start, xact_start, query_start, state_change, wait_event_type, wait_event, state, backend_xid, " +
			"backend_xmin, query_id, query, backend_type"),
		"pg_inherits": empty("inhrelid, inhparent, inhseqno, inhdetachpending"),
		// psql's \du joins it; Metabase's table list joins the statistics.
		"pg_auth_members": empty("oid, roleid, member, grantor, admin_option, inherit_option, set_option"),
		"pg_stat_user_tables": empty("relid, schemaname, relname, seq_scan, seq_tup_read, idx_scan, idx_tup_fetch, n_tup_ins, " +
			"n_tup_upd, n_tup_del, n_tup_hot_upd, n_live_tup, n_dead_tup, n_mod_since_analyze, n_ins_since_vacuum, last_vacuum, " +
			"last_autovacuum, last_analyze, last_autoanalyze, vacuum_count, autovacuum_count, analyze_count, autoanalyze_count"),
		"pg_stat_database": empty("datid, datname, numbackends, xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, " +
			"tup_fetched, tup_inserted, tup_updated, tup_deleted, conflicts, temp_files, temp_bytes, deadlocks, stats_reset"),
		// One database, the one current_database() names (DuckDB's lists
		// memory, system and temp).
		"pg_database": `SELECT 16384 AS oid, 'strata' AS datname, 10 AS datdba, 6 AS encoding, 'c' AS datlocprovider,
			false AS datistemplate, true AS datallowconn, -1 AS datconnlimit, 0 AS datfrozenxid, 0 AS datminmxid,
			1663 AS dattablespace, 'C' AS datcollate, 'C' AS datctype, NULL::VARCHAR AS daticulocale,
			NULL::VARCHAR AS datcollversion, NULL::VARCHAR[] AS datacl`,
		"pg_policy":  empty("oid, polname, polrelid, polcmd, polpermissive, polroles, polqual, polwithcheck"),
		"pg_trigger": empty("oid, tableoid, tgrelid, tgparentid, tgname, tgfoid, tgtype, tgenabled, tgisinternal, tgconstrrelid, tgconstrindid, tgconstraint, tgdeferrable, tginitdeferred, tgnargs, tgattr, tgargs, tgqual, tgoldtable, tgnewtable"),
		// psql's \dd reads these (with the tableoid DuckDB's lack): strata's
		// tables have no constraints, rules or operator classes.
		"pg_constraint": empty("oid, tableoid, conname, connamespace, contype, condeferrable, condeferred, convalidated, conrelid, " +
			"contypid, conindid, conparentid, confrelid, confupdtype, confdeltype, confmatchtype, conislocal, coninhcount, " +
			"connoinherit, conkey, confkey, conpfeqop, conppeqop, conffeqop, confdelsetcols, conexclop, conbin"),
		"pg_rewrite":     empty("oid, tableoid, rulename, ev_class, ev_type, ev_enabled, is_instead, ev_qual, ev_action"),
		"pg_opclass":     empty("oid, tableoid, opcmethod, opcname, opcnamespace, opcowner, opcfamily, opcintype, opcdefault, opckeytype"),
		"pg_opfamily":    empty("oid, tableoid, opfmethod, opfname, opfnamespace, opfowner"),
		"pg_publication": empty("oid, pubname, pubowner, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, pubviaroot"),
		"pg_type":        pgTypeSelect(),
		"pg_class":       pgClassSelect(),
		"pg_attribute":   pgAttributeSelect(),
		"pg_tablespace": `SELECT 1663 AS oid, 'pg_default' AS spcname, 10 AS spcowner, NULL::VARCHAR[] AS spcacl, NULL::VARCHAR[] AS spcoptions
			UNION ALL SELECT 1664, 'pg_global', 10, NULL, NULL`,
		"pg_collation": empty("oid, collname, collnamespace, collowner, collprovider, collisdeterministic, collencoding, " +
			"collcollate, collctype, colliculocale, collversion"),
	}
}

// pgBaseTypes are the rows of PostgreSQL's pg_type for the types strata
// sends (named in pgTypeNames): OID, its array's OID (json[] and bytea[]
// too, which arrayOIDs leaves out), length, by value, category,
// preferred, alignment, storage, collation and the in/out/recv/send
// functions' prefix. DuckDB's pg_type has other OIDs (and none for text,
// json or arrays), so a driver that looked up a result column's type
// found nothing.
var pgBaseTypes = []struct {
	oid, array           uint32
	len                  int
	byval, preferred     bool
	category, align, stg string
	collation            int
	fn                   string
}{
	{oidBool, 1000, 1, true, true, "B", "c", "p", 0, "bool"},
	{oidBytea, 1001, -1, false, false, "U", "i", "x", 0, "bytea"},
	{oidInt8, 1016, 8, true, false, "N", "d", "p", 0, "int8"},
	{oidInt2, 1005, 2, true, false, "N", "s", "p", 0, "int2"},
	{oidInt4, 1007, 4, true, false, "N", "i", "p", 0, "int4"},
	{oidText, 1009, -1, false, true, "S", "i", "x", 100, "text"},
	{oidJSON, 199, -1, false, false, "U", "i", "x", 0, "json_"},
	{oidFloat4, 1021, 4, true, false, "N", "i", "p", 0, "float4"},
	{oidFloat8, 1022, 8, true, true, "N", "d", "p", 0, "float8"},
	{oidVarchar, 1015, -1, false, false, "S", "i", "x", 100, "varchar"},
	{oidDate, 1182, 4, true, false, "D", "i", "p", 0, "date_"},
	{oidTime, 1183, 8, true, false, "D", "d", "p", 0, "time_"},
	{oidTimestamp, 1115, 8, true, false, "D", "d", "p", 0, "timestamp_"},
	{oidTimestamptz, 1185, 8, true, true, "D", "d", "p", 0, "timestamptz_"},
	{oidInterval, 1187, 16, false, true, "T", "d", "p", 0, "interval_"},
	{oidNumeric, 1231, -1, false, false, "N", "i", "m", 0, "numeric_"},
}

// pgTypeSelect is pg_type as PostgreSQL has it for pgBaseTypes and their
// arrays, with all of its columns.
func pgTypeSelect() string {
	var rows []string
	row := func(oid uint32, name string, len int, byval bool, category string, preferred bool, elem, array uint32,
		fn, align, stg string, collation int, subscript, analyze string) {
		rows = append(rows, fmt.Sprintf("(%d, '%s', 11, 10, %d, %t, 'b', '%s', %t, true, ',', 0, '%s', %d, %d, "+
			"'%sin', '%sout', '%srecv', '%ssend', '-', '-', '%s', '%s', '%s', false, 0, -1, 0, %d, NULL, NULL, NULL)",
			oid, name, len, byval, category, preferred, subscript, elem, array, fn, fn, fn, fn, analyze, align, stg, collation))
	}
	for _, t := range pgBaseTypes {
		name := pgTypeNames[t.oid][1]
		row(t.oid, name, t.len, t.byval, t.category, t.preferred, 0, t.array, t.fn, t.align, t.stg, t.collation, "-", "-")
		align := "i"
		if t.align == "d" {
			align = "d"
		}
		row(t.array, "_"+name, -1, false, "A", false, t.oid, 0, "array_", align, "x", t.collation,
			"array_subscript_handler", "array_typanalyze")
	}
	return "SELECT * FROM (VALUES " + strings.Join(rows, ", ") + ") t(oid, typname, typnamespace, typowner, typlen, " +
		"typbyval, typtype, typcategory, typispreferred, typisdefined, typdelim, typrelid, typsubscript, typelem, typarray, " +
		"typinput, typoutput, typreceive, typsend, typmodin, typmodout, typanalyze, typalign, typstorage, typnotnull, " +
		"typbasetype, typtypmod, typndims, typcollation, typdefaultbin, typdefault, typacl)"
}

// Table OIDs as psql sees them.
var tableOIDs = map[string]int{schema.Records: 16385, schema.Metrics: 16386}

// mainNamespace is the OID of the schema strata's tables are in.
const mainNamespace = "(SELECT oid FROM system.pg_catalog.pg_namespace WHERE nspname = 'main')"

// pgClassSelect is pg_class as PostgreSQL 15 has it, for strata's tables
// under the OIDs psql sees (tableOIDs). DuckDB's has other OIDs, which
// its pg_attribute joins on with DuckDB's type ids.
func pgClassSelect() string {
	var rows []string
	for _, t := range schema.Tables() {
		rows = append(rows, fmt.Sprintf("(%d, '%s', %d)", tableOIDs[t.Name], t.Name, t.Schema.NumFields()))
	}
	return `SELECT oid, relname, ` + mainNamespace + ` AS relnamespace, 0 AS reltype, 0 AS reloftype, 10 AS relowner,
		2 AS relam, oid AS relfilenode, 0 AS reltablespace, 0 AS relpages, -1::FLOAT AS reltuples, 0 AS relallvisible,
		0 AS reltoastrelid, false AS relhasindex, false AS relisshared, 'p' AS relpersistence, 'r' AS relkind,
		relnatts::SMALLINT AS relnatts, 0::SMALLINT AS relchecks, false AS relhasrules, false AS relhastriggers,
		false AS relhassubclass, false AS relrowsecurity, false AS relforcerowsecurity, true AS relispopulated,
		'd' AS relreplident, false AS relispartition, 0 AS relrewrite, 0 AS relfrozenxid, 0 AS relminmxid,
		NULL::VARCHAR[] AS relacl, NULL::VARCHAR[] AS reloptions, NULL::VARCHAR AS relpartbound
		FROM (VALUES ` + strings.Join(rows, ", ") + `) t(oid, relname, relnatts)`
}

// pgAttributeSelect is pg_attribute as PostgreSQL 15 has it for the
// columns of strata's tables: atttypid is the type OID a query sends for
// the column (DuckDB's holds its own type ids, so JDBC tools, which join
// it with pg_type, lost every timestamp, boolean and array column).
func pgAttributeSelect() string {
	base := map[uint32]int{}
	for i, t := range pgBaseTypes {
		base[t.oid] = i
	}
	var rows []string
	for _, t := range schema.Tables() {
		for i, f := range t.Schema.Fields() {
			oid := pgColumnFor(f.Type).oid
			length, byval, align, storage, collation, dims := -1, false, "i", "x", 0, 0
			if elem, ok := elemOIDs[oid]; ok { // an array: its element's alignment and collation
				e := pgBaseTypes[base[elem]]
				dims, collation = 1, e.collation
				if e.align == "d" {
					align = "d"
				}
			} else if k, ok := base[oid]; ok {
				b := pgBaseTypes[k]
				length, byval, align, storage, collation = b.len, b.byval, b.align, b.stg, b.collation
			}
			rows = append(rows, fmt.Sprintf("(%d, '%s', %d, %d, %d, %d, %t, '%s', '%s', %t, %d)",
				tableOIDs[t.Name], f.Name, oid, length, i+1, dims, byval, align, storage, !f.Nullable, collation))
		}
	}
	return `SELECT attrelid, attname, atttypid, -1 AS attstattarget, attlen::SMALLINT AS attlen, attnum::SMALLINT AS attnum,
		attndims, -1 AS attcacheoff, -1 AS atttypmod, attbyval, attalign, attstorage, '' AS attcompression, attnotnull,
		false AS atthasdef, false AS atthasmissing, '' AS attidentity, '' AS attgenerated, false AS attisdropped,
		true AS attislocal, 0 AS attinhcount, attcollation, NULL::VARCHAR[] AS attacl, NULL::VARCHAR[] AS attoptions,
		NULL::VARCHAR[] AS attfdwoptions, NULL::VARCHAR AS attmissingval
		FROM (VALUES ` + strings.Join(rows, ", ") + `) t(attrelid, attname, atttypid, attlen, attnum, attndims, attbyval,
		attalign, attstorage, attnotnull, attcollation)`
}

func newPGCatalog(ctx context.Context, query *engine.DB) (*pgCatalog, error) {
	// Beside the query engine's spill directory, in the data dir rather
	// than /tmp, where a killed process's would pile up.
	parent := ""
	if query != nil {
		parent = query.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "pgcatalog-")
	if err != nil {
		return nil, fmt.Errorf("postgres catalog: %w", err)
	}
	setup := []string{
		`CREATE MACRO pg_get_userbyid(x) AS 'strata'`,
		`CREATE MACRO quote_ident(x) AS CASE WHEN regexp_full_match(x, '[a-z_][a-z0-9_$]*') THEN x ELSE '"' || replace(x, '"', '""') || '"' END`,
		`CREATE MACRO string_to_array(str, sep) AS TABLE SELECT string_split(str, sep) AS s`,
		`CREATE MACRO obj_description(o, c) AS NULL, (o) AS NULL`,
		// DBeaver's, pgAdmin's and pgjdbc's column and index listings:
		// strata's tables have no defaults, indexes, triggers or serials.
		`CREATE MACRO pg_get_expr(e, r) AS NULL::VARCHAR, (e, r, pretty) AS NULL::VARCHAR`,
		`CREATE MACRO pg_get_indexdef(i) AS NULL::VARCHAR, (i, c, pretty) AS NULL::VARCHAR`,
		`CREATE MACRO pg_get_triggerdef(t) AS NULL::VARCHAR, (t, pretty) AS NULL::VARCHAR`,
		`CREATE MACRO pg_get_serial_sequence(t, c) AS NULL::VARCHAR`,
		`CREATE MACRO pg_encoding_to_char(e) AS 'UTF8'`,
		// Grafana's column picker splits "schema.table" with parse_ident.
		`CREATE MACRO parse_ident(s) AS string_split(s, '.')`,
		// Sizes and function signatures psql's \dt+ and \df ask for.
		`CREATE MACRO pg_table_size(x) AS NULL`,
		`CREATE MACRO pg_get_function_result(x) AS ''`,
		`CREATE MACRO pg_get_function_arguments(x) AS ''`,
		// psql's \db and \dO.
		`CREATE MACRO pg_tablespace_location(x) AS ''`,
		`CREATE MACRO pg_char_to_encoding(x) AS 6`,
		`CREATE MACRO pg_collation_is_visible(x) AS true`,
		// psql's \dd and \sf.
		`CREATE MACRO pg_opclass_is_visible(x) AS true`,
		`CREATE MACRO pg_opfamily_is_visible(x) AS true`,
		// What admin tools ask at connect (DBeaver, pgAdmin).
		fmt.Sprintf(`CREATE MACRO pg_backend_pid() AS %d`, os.Getpid()),
		`CREATE MACRO pg_is_in_recovery() AS false`,
		`CREATE MACRO pg_total_relation_size(x) AS NULL::BIGINT`,
		`CREATE MACRO pg_relation_size(x) AS NULL::BIGINT`,
		toRegclassMacro(),
		`CREATE MACRO pg_get_functiondef(x) AS error('function definitions are not shown here: strata has no functions of its own; see DuckDB''s documentation for the built-in ones')`,
		// version(), current_database() and current_setting() are
		// DuckDB's own; queries call these instead (rewriteCatalogTree).
		`CREATE MACRO strata_version() AS '` + pgVersion + `'`,
		`CREATE MACRO strata_current_database() AS 'strata'`,
		// pgjdbc's getPrimaryKeys and getIndexInfo expand pg_index.indkey
		// with it; strata's tables have no indexes, so it only binds.
		`CREATE MACRO strata__pg_expandarray(a) AS {'x': NULL::INTEGER, 'n': NULL::INTEGER}`,
		// The search path, with pg_catalog if asked for implicit schemas
		// (DuckDB's listed main once per attached database, or nothing).
		`CREATE MACRO strata_current_schemas(implicit) AS CASE WHEN implicit THEN ['pg_catalog', 'main'] ELSE ['main'] END`,
		// Everything here can be read, nothing written (DuckDB's said yes
		// to UPDATE); the user, if given, is strata.
		fmt.Sprintf(`CREATE MACRO strata_has_table_privilege(t, priv) AS %[1]s, (u, t, priv) AS %[1]s`,
			`list_contains(string_split(replace(upper(priv), ' ', ''), ','), 'SELECT')`),
		settingMacro(),
		formatTypeMacro(),
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
	// The JSON functions too: tools build their schema listings with
	// json_agg and json_build_object.
	setup = append(setup, Setup...)
	functions, err := Functions()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("postgres catalog: %w", err)
	}
	db, err := engine.Open(ctx, engine.Options{AllowedDirs: []string{dir}, TempDir: dir, MemoryLimit: "256MB", Threads: 1,
		QueryTimeout: catalogQueryTimeout, Setup: setup, Functions: functions})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("postgres catalog: %w", err)
	}
	c := &pgCatalog{db: db, dir: dir, standIns: map[string][]byte{}}
	for name, sel := range standInTables() {
		tree, err := db.Parse(ctx, "SELECT * FROM ("+sel+") AS "+name)
		if err == nil {
			c.standIns[name], err = json.Marshal(fromItem(tree))
		}
		if err != nil {
			c.close()
			return nil, fmt.Errorf("postgres catalog: %s: %w", name, err)
		}
	}
	return c, nil
}

// pgColumns stands in for information_schema.columns: DuckDB's, with the
// types of the data tables named as PostgreSQL names them (data_type
// "double precision", udt_name "float8"). Grafana's column picker knows
// only those names; with DuckDB's it took every column for text.
var pgColumns = func() string {
	var rows []string
	for _, t := range schema.Tables() {
		for _, f := range t.Schema.Fields() {
			name, udt := pgTypeName(f.Type)
			if strings.HasSuffix(name, "[]") {
				name = "ARRAY"
			}
			rows = append(rows, fmt.Sprintf("(%s, %s, %s, %s)", quoteLiteral(t.Name), quoteLiteral(f.Name), quoteLiteral(name), quoteLiteral(udt)))
		}
	}
	return `(SELECT c.* REPLACE ('strata' AS table_catalog, coalesce(p.data_type, c.data_type) AS data_type, coalesce(p.udt_name, c.udt_name) AS udt_name,
		CASE WHEN p.udt_name IS NULL THEN c.udt_schema ELSE 'pg_catalog' END AS udt_schema)
		FROM information_schema.columns c LEFT JOIN (VALUES ` + strings.Join(rows, ", ") + `) p(table_name, column_name, data_type, udt_name)
		ON c.table_name = p.table_name AND c.column_name = p.column_name)`
}()

// fromItem is the FROM item of a parsed single SELECT.
func fromItem(tree map[string]any) any {
	stmts, _ := tree["statements"].([]any)
	if len(stmts) != 1 {
		return nil
	}
	stmt, _ := stmts[0].(map[string]any)
	node, _ := stmt["node"].(map[string]any)
	return node["from_table"]
}

// pgVersion is what version() answers; clients read the number after
// "PostgreSQL".
const pgVersion = "PostgreSQL 16.0 (strata)"

// catalogQueryTimeout bounds a catalog query: they read empty tables.
const catalogQueryTimeout = 10 * time.Second

// formatTypeMacro names the type OIDs strata sends as format_type does
// in PostgreSQL ("double precision", "integer[]"); DuckDB's format_type
// reads its own type ids (pg_attribute holds PostgreSQL's OIDs).
func formatTypeMacro() string {
	var b strings.Builder
	b.WriteString("CASE oid")
	names := map[uint32]string{}
	for oid, n := range pgTypeNames {
		names[oid] = n[0]
	}
	for elem, arr := range arrayOIDs {
		if n, ok := names[elem]; ok {
			names[arr] = n + "[]"
		}
	}
	oids := slices.Sorted(maps.Keys(names))
	for _, oid := range oids {
		fmt.Fprintf(&b, " WHEN %d THEN %s", oid, quoteLiteral(names[oid]))
	}
	b.WriteString(" END")
	return "CREATE MACRO strata_format_type(oid) AS " + b.String() + ", (oid, typmod) AS " + b.String()
}

// settingMacro answers current_setting(name) from the values SHOW gives,
// and fails as PostgreSQL does for a name it does not know.
func settingMacro() string {
	names := make([]string, 0, len(showValues))
	for k := range showValues {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("CREATE MACRO strata_current_setting(name) AS CASE lower(name)")
	for _, k := range names {
		fmt.Fprintf(&b, " WHEN %s THEN %s", quoteLiteral(k), quoteLiteral(showValues[k]))
	}
	b.WriteString(` ELSE error('unrecognized configuration parameter "' || name || '"') END`)
	return b.String()
}

// settingsSelect is pg_settings as strata answers it: the settings SHOW
// gives. DuckDB's own pg_settings lists the catalog instance's settings,
// the server's directories among them; queries read this instead
// (rewriteCatalogTree).
func settingsSelect() string {
	var rows []string
	for name, show := range pgSettingNames {
		v := quoteLiteral(showValues[show])
		rows = append(rows, fmt.Sprintf("(%s, %s, NULL, 'strata', '', '', 'internal', 'string', 'default', NULL, NULL, NULL::VARCHAR[], %s, %s, NULL, NULL::INTEGER, false)", quoteLiteral(name), v, v, v))
	}
	sort.Strings(rows)
	return "SELECT * FROM (VALUES " + strings.Join(rows, ", ") + ") AS s(name, setting, unit, category, short_desc, extra_desc, " +
		"context, vartype, source, min_val, max_val, enumvals, boot_val, reset_val, sourcefile, sourceline, pending_restart)"
}

// pgSettingNames maps pg_settings' names (PostgreSQL's spelling) to the
// SHOW name of their value.
var pgSettingNames = map[string]string{
	"TimeZone": "timezone", "DateStyle": "datestyle", "transaction_isolation": "transaction isolation level",
	"server_version": "server_version", "server_version_num": "server_version_num",
	"standard_conforming_strings": "standard_conforming_strings", "client_encoding": "client_encoding",
	"server_encoding": "server_encoding", "search_path": "search_path", "max_identifier_length": "max_identifier_length",
	"integer_datetimes": "integer_datetimes", "lc_collate": "lc_collate", "lc_ctype": "lc_ctype",
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (c *pgCatalog) close() error {
	err := c.db.Close()
	os.RemoveAll(c.dir)
	return err
}

var catalogQuery = regexp.MustCompile(`(?i)\b(pg_catalog|information_schema|pg_(` + pgCatalogTables + `)|current_setting|current_schemas?|current_database|has_table_privilege|` +
	`pg_backend_pid|pg_is_in_recovery|to_regclass|regclass|format_type|pg_total_relation_size|pg_relation_size)\b|\bversion\s*\(\s*\)`)

// pgCatalogTables are the pg_catalog tables and views clients query by
// bare name. A data query may well use other pg_ words (pg_typeof, an
// alias pg_count), so the list is explicit.
const pgCatalogTables = `stat_user_tables|stat_database|class|namespace|type|attribute|attrdef|database|settings|tables|views|matviews|proc|roles|user|authid|auth_members|am|index|indexes|description|shdescription|extension|available_extensions|constraint|inherits|policy|collation|enum|range|trigger|rewrite|statistic_ext|publication|publication_rel|sequence|sequences|foreign_table|partitioned_table|stat_activity|tablespace|operator|opclass|opfamily|language|cast|depend|event_trigger|locks|prepared_statements|cursors|timezone_names|timezone_abbrevs`

// isCatalogQuery reports whether a query is about the catalog rather than
// the data: whether it names a catalog table or function outside string
// literals and comments (a query for spans named 'pg_class' is about
// data), and reads no data table (SELECT count(*) AS pg_type FROM records
// is about data too; SELECT relname AS records FROM pg_class is not).
func (c *pgCatalog) isCatalogQuery(ctx context.Context, sql string) bool {
	b := engine.BlankLiterals(sql)
	if !catalogQuery.MatchString(b) {
		return false
	}
	if reads, ok := c.parsedReadsData(ctx, sql); ok {
		return !reads
	}
	return !readsDataTable.MatchString(b)
}

// parsedReadsData reports whether DuckDB's syntax tree of sql reads records
// or metrics anywhere (UNPIVOT records, SUMMARIZE records, FROM records
// after any whitespace DuckDB takes as such); ok is false when DuckDB
// cannot parse it — PostgreSQL's own syntax, which the catalog rewrites —
// and the pattern decides.
func (c *pgCatalog) parsedReadsData(ctx context.Context, sql string) (reads, ok bool) {
	tree, err := c.db.Parse(ctx, sql)
	if err != nil {
		return false, false
	}
	eachMap(tree, func(m map[string]any) {
		// Qualified or not (memory.main.records): the catalog's tables of
		// those names are empty, and would answer a data query with nothing.
		if m["type"] == "BASE_TABLE" && isDataTable(ident(m["table_name"])) {
			reads = true
		}
	})
	return reads, true
}

// readsDataTable matches records or metrics where a table is read: after
// FROM, JOIN or a comma (FROM x, records), schema-qualified or quoted or
// not, spaced or not. A catalog query it takes for a data query fails
// loudly on the data path; the other way round, a data query would read
// the catalog's empty tables and answer nothing, silently.
var readsDataTable = regexp.MustCompile(`(?i)(\b(FROM|JOIN)|,)\s*("?main"?\s*\.\s*)?"?(records|metrics)\b`)

var (
	// psql's \d NAME, step 1: find the relation by name pattern.
	psqlFindRelation = regexp.MustCompile(`(?s)FROM pg_catalog\.pg_class c\s+LEFT JOIN pg_catalog\.pg_namespace n ON n\.oid = c\.relnamespace\s+WHERE c\.relname OPERATOR\(pg_catalog\.~\) '((?:[^']|'')*)'`)
	// step 2: the relation's kind and flags.
	psqlRelationInfo = regexp.MustCompile(`(?s)SELECT c\.relchecks, c\.relkind.*WHERE c\.oid = '(\d+)'`)
	// step 3: its columns.
	psqlColumns = regexp.MustCompile(`(?s)FROM pg_catalog\.pg_attribute a\s+WHERE a\.attrelid = '(\d+)' AND a\.attnum > 0`)
	// psql's \l: its columns (collation, locale provider) are not in
	// DuckDB's pg_database.
	psqlDatabases = regexp.MustCompile(`(?s)SELECT d\.datname as "Name".*FROM pg_catalog\.pg_database d`)
	operatorPG    = regexp.MustCompile(`OPERATOR\(pg_catalog\.([^)]+)\)`)
	collatePG     = regexp.MustCompile(`(?i)COLLATE\s+pg_catalog\."?default"?`)
	castPGType    = regexp.MustCompile(`(?i)(::|\bAS\s+)pg_catalog\.`) // also CAST(x AS pg_catalog.text)
	schemataTable = regexp.MustCompile(`(?i)\binformation_schema\.schemata\b`)
	columnsTable  = regexp.MustCompile(`(?i)\binformation_schema\.columns\b`)
	tablesTable   = regexp.MustCompile(`(?i)\binformation_schema\.tables\b`)
	regTypeCasts  = regexp.MustCompile(`(?i)::(regclass|regtype|regproc|regnamespace|oid)\b`)
	// castRegType is a cast to an OID type as DuckDB deparses it (a query
	// with parameters is bound, then deparsed): CAST('x' AS "regclass").
	castRegType = regexp.MustCompile(`(?i)\bCAST\(\s*('(?:[^']|'')*'|[\w."]+)\s+AS\s+"?(regclass|regtype|regproc|regnamespace|oid)"?\s*\)`)
	// quotedInfoTable is a table of information_schema named in quotes,
	// as DuckDB deparses a keyword: information_schema."columns".
	quotedInfoTable = regexp.MustCompile(`(?i)\binformation_schema\s*\.\s*"(columns|schemata|tables)"`)
	// regclassLiteral is a relation named by a string: 'records'::regclass.
	regclassLiteral = regexp.MustCompile(`(?i)'((?:[^']|'')*)'\s*::\s*regclass\b`)
)

// systemRelations are PostgreSQL's OIDs of the catalog tables tools name
// with regclass (pg_description.classoid = 'pg_class'::regclass, psql's
// 'pg_catalog.pg_extension'::regclass).
var systemRelations = map[string]int{"pg_default_acl": 826, "pg_tablespace": 1213, "pg_shdepend": 1214,
	"pg_type": 1247, "pg_attribute": 1249, "pg_proc": 1255, "pg_class": 1259, "pg_authid": 1260,
	"pg_auth_members": 1261, "pg_database": 1262, "pg_foreign_server": 1417, "pg_user_mapping": 1418,
	"pg_sequence": 2224, "pg_foreign_data_wrapper": 2328, "pg_shdescription": 2396, "pg_aggregate": 2600,
	"pg_am": 2601, "pg_amop": 2602, "pg_amproc": 2603, "pg_attrdef": 2604, "pg_cast": 2605, "pg_constraint": 2606,
	"pg_conversion": 2607, "pg_depend": 2608, "pg_description": 2609, "pg_index": 2610, "pg_inherits": 2611,
	"pg_language": 2612, "pg_largeobject": 2613, "pg_namespace": 2615, "pg_opclass": 2616, "pg_operator": 2617,
	"pg_rewrite": 2618, "pg_statistic": 2619, "pg_trigger": 2620, "pg_opfamily": 2753, "pg_extension": 3079,
	"pg_policy": 3256, "pg_partitioned_table": 3350, "pg_statistic_ext": 3381, "pg_collation": 3456,
	"pg_event_trigger": 3466, "pg_enum": 3501, "pg_range": 3541, "pg_transform": 3576, "pg_ts_dict": 3600,
	"pg_ts_parser": 3601, "pg_ts_config": 3602, "pg_ts_template": 3764, "pg_subscription": 6100, "pg_publication": 6104}

// relationOID is the OID of a relation named as regclass takes it
// (main.records, "records", pg_catalog.pg_class), and whether it is one.
func relationOID(name string) (int, bool) {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		name = name[i+1:]
	}
	if n, ok := strings.CutPrefix(name, `"`); ok {
		name = strings.TrimSuffix(n, `"`)
	} else {
		name = strings.ToLower(name)
	}
	if oid, ok := tableOIDs[name]; ok {
		return oid, true
	}
	if oid, ok := systemRelations[name]; ok {
		return oid, true
	}
	// Another of PostgreSQL's catalogs: one no row refers to.
	return 0, strings.HasPrefix(name, "pg_")
}

// toRegclassMacro is to_regclass(name): the OID of a relation, NULL if
// there is none.
func toRegclassMacro() string {
	var when []string
	for _, m := range []map[string]int{tableOIDs, systemRelations} {
		for name, oid := range m {
			when = append(when, fmt.Sprintf("WHEN '%s' THEN %d", name, oid))
		}
	}
	slices.Sort(when)
	return "CREATE MACRO to_regclass(x) AS CASE regexp_replace(lower(replace(x, '\"', '')), '^.*[.]', '') " +
		strings.Join(when, " ") + " END"
}

// regclassOIDs writes each relation named by a string cast to regclass
// as its OID (the cast was dropped, leaving a string compared with an
// OID: "Could not convert string 'metrics' to INT64"); a relation that
// does not exist is refused, as PostgreSQL refuses it.
func regclassOIDs(sql string) (string, error) {
	var missing error
	sql = regclassLiteral.ReplaceAllStringFunc(sql, func(m string) string {
		name := strings.ReplaceAll(regclassLiteral.FindStringSubmatch(m)[1], "''", "'")
		if oid, ok := relationOID(name); ok {
			return strconv.Itoa(oid)
		}
		if missing == nil {
			missing = &pgError{code: "42P01", msg: fmt.Sprintf("relation %q does not exist", name)}
		}
		return m
	})
	return sql, missing
}

// answer handles a catalog query: ok is false for queries about data. A
// query that runs holds a slot of lim until its result is released, and
// stops with ctx.
func (c *pgCatalog) answer(ctx context.Context, lim *Limiter, sql, written string) (*pgResult, bool, error) {
	if !c.isCatalogQuery(ctx, sql) {
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
				name, _ := pgTypeName(f.Type)
				rows = append(rows, []string{f.Name, name, "", notNull, "", "", ""})
			}
		}
		names := []string{"attname", "format_type", "default", "attnotnull", "attcollation", "attidentity", "attgenerated"}
		// \d+ asks for more, each only if psql thinks the server has it.
		var extra []string
		for _, c := range []string{"attstorage", "attcompression", "attstattarget", "col_description"} {
			if strings.Contains(sql, c) {
				extra = append(extra, c)
			}
		}
		names = append(names, extra...)
		for i := range rows {
			for _, c := range extra {
				v := nullText
				switch c {
				case "attstorage":
					v = "x" // extended: what psql shows for variable-length types
				case "attcompression":
					v = ""
				}
				rows[i] = append(rows[i], v)
			}
		}
		res := constResult(names, rows)
		for _, r := range res.fixed.rows {
			r[2], r[4] = nullText, nullText // no default, no collation
		}
		return res, true, nil
	}
	if psqlDatabases.MatchString(sql) {
		return constResult([]string{"Name", "Owner", "Encoding", "Collate", "Ctype", "ICU Locale", "Locale Provider", "Access privileges"},
			[][]string{{"strata", "strata", "UTF8", "C", "C", nullText, "libc", nullText}}), true, nil
	}
	res, err := c.run(ctx, lim, sql, written)
	if err != nil {
		// A catalog table strata does not have (pg_policy, pg_inherits…)
		// gets an empty result: the client asked about features strata
		// lacks, and the answer is "none". Any other failure is the
		// client's to see.
		if strings.Contains(err.Error(), "Catalog Error: Table with name") {
			return constResult([]string{"?column?"}, nil), true, nil
		}
		return nil, true, err
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

// run checks a catalog query against the sandbox, rewrites it for DuckDB
// and runs it on the catalog DB, holding a slot of lim while its result
// is open.
func (c *pgCatalog) run(ctx context.Context, lim *Limiter, sql, written string) (*pgResult, error) {
	sql = pgJSONAggregates(sql)
	sql = operatorPG.ReplaceAllString(sql, "$1")
	sql = collatePG.ReplaceAllString(sql, "")
	sql = castPGType.ReplaceAllString(sql, "$1")
	sql = castRegType.ReplaceAllString(sql, "$1::$2")
	sql = quotedInfoTable.ReplaceAllString(sql, "information_schema.$1")
	sql, err := regclassOIDs(sql)
	if err != nil {
		return nil, err
	}
	sql = regTypeCasts.ReplaceAllString(sql, "")
	// DuckDB lists each schema once per attached database (memory, system,
	// temp); PostgreSQL clients expect one database's.
	sql = schemataTable.ReplaceAllString(sql, "(SELECT * REPLACE ('strata' AS catalog_name) FROM information_schema.schemata WHERE catalog_name = 'memory')")
	sql = tablesTable.ReplaceAllString(sql, "(SELECT * REPLACE ('strata' AS table_catalog) FROM information_schema.tables WHERE table_catalog = 'memory')")
	sql = columnsTable.ReplaceAllLiteralString(sql, pgColumns)
	tree, err := c.db.Parse(ctx, sql)
	if err != nil {
		return nil, err
	}
	stmts, _ := tree["statements"].([]any)
	if len(stmts) != 1 {
		return nil, &engine.QueryError{Msg: fmt.Sprintf("send one query at a time; this text holds %d statements", len(stmts))}
	}
	names := foldUnquoted(pgNames(stmts[0]), written) // before the rewrite renames pg_catalog functions
	c.rewriteCatalogTree(tree)
	if err := (&analysis{anyTable: true}).check(stmts[0], nil); err != nil {
		return nil, &engine.QueryError{Msg: err.msg}
	}
	if sql, err = c.db.Deparse(ctx, tree); err != nil {
		return nil, err
	}
	release, err := lim.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.db.Query(ctx, engine.Query{SQL: sql, Raw: true})
	if err != nil {
		release()
		return nil, err
	}
	return &pgResult{rows: &Result{Rows: rows, PGNames: names}, cancel: release}, nil
}

// catalogFunctions are DuckDB functions whose PostgreSQL meaning the
// catalog DB's strata_ macros give.
var catalogFunctions = map[string]bool{"version": true, "current_database": true, "current_setting": true, "format_type": true,
	"current_schemas": true, "has_table_privilege": true, "_pg_expandarray": true}

// rewriteCatalogTree adapts PostgreSQL idioms in a parsed query: functions
// called as pg_catalog.f resolve to DuckDB's own or the catalog DB's
// macros, and a function in FROM with an alias names its single column too
// (PostgreSQL's rule, which Grafana's queries rely on).
func (c *pgCatalog) rewriteCatalogTree(tree any) {
	// A bare version() column is named "version", as PostgreSQL names it,
	// not after the macro that answers it (before the renaming below).
	walkSelectLists(tree, func(f map[string]any) {
		if f["class"] == "FUNCTION" && f["alias"] == "" {
			if name, _ := f["function_name"].(string); catalogFunctions[name] {
				f["alias"] = name
			}
		}
		// A scalar subquery's column is named after the subquery's own
		// column, as PostgreSQL names it, not after its text.
		if f["class"] == "SUBQUERY" && f["subquery_type"] == "SCALAR" && f["alias"] == "" {
			if name := figureName(f); name != "?column?" {
				f["alias"] = name
			}
		}
	})
	eachMap(tree, func(v map[string]any) {
		// pg_catalog.pg_roles.rolname: the stand-in is named pg_roles.
		if names, _ := v["column_names"].([]any); v["class"] == "COLUMN_REF" && len(names) == 3 && ident(names[0]) == "pg_catalog" {
			v["column_names"] = names[1:]
		}
		if v["class"] == "FUNCTION" && (v["schema"] == "pg_catalog" || v["schema"] == "" ||
			v["schema"] == "information_schema" && v["function_name"] == "_pg_expandarray") {
			v["schema"] = ""
			if name, _ := v["function_name"].(string); catalogFunctions[name] {
				v["function_name"] = "strata_" + name
			}
		}
		// A stand-in table however it is named (PG_CATALOG.pg_settings,
		// pg_namespace…), but not the system table a stand-in reads
		// itself. Also where a CTE of that name is meant: telling the two
		// apart needs the CTEs' scopes, and getting that wrong shows
		// DuckDB's own settings; such a query fails instead.
		standIn, ok := c.standIns[strings.ToLower(fmt.Sprint(v["table_name"]))]
		if v["type"] == "BASE_TABLE" && ok && v["catalog_name"] != "system" {
			alias, _ := v["alias"].(string)
			cols := v["column_name_alias"]
			clear(v)
			dec := json.NewDecoder(bytes.NewReader(standIn))
			dec.UseNumber()
			dec.Decode(&v)
			if alias != "" {
				v["alias"] = alias
			}
			if cols != nil {
				v["column_name_alias"] = cols
			}
		}
		if v["type"] == "TABLE_FUNCTION" {
			if alias, _ := v["alias"].(string); alias != "" {
				if cols, _ := v["column_name_alias"].([]any); len(cols) == 0 {
					v["column_name_alias"] = []any{alias}
				}
			}
		}
	})
}
