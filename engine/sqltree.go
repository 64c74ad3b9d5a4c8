package engine

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/text/width"
)

// Parse returns DuckDB's syntax tree of a query, the JSON of
// json_serialize_sql: {"statements":[{"node":…}, …]}. A syntax error, or
// a statement that is not a query, is a *QueryError whose message points at
// the place in the SQL.
func (db *DB) Parse(ctx context.Context, sql string) (map[string]any, error) {
	out, err := db.scalarString(ctx, "SELECT json_serialize_sql(?::VARCHAR)::VARCHAR", sql)
	if err != nil {
		return nil, err
	}
	// Numbers stay json.Number: query locations are uint64s that a float
	// would round, and Deparse must hand them back exactly.
	var tree map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if tree["error"] == true {
		msg, _ := tree["error_message"].(string)
		if tree["error_type"] == "not implemented" {
			if dynamicPivot.MatchString(BlankLiterals(sql)) {
				return nil, &QueryError{Msg: "PIVOT without an IN list first creates a type of the values it finds, which cannot run here; " +
					"name the values instead: SELECT * FROM records PIVOT (count(*) FOR span_kind IN ('server', 'client'))"}
			}
			return nil, &QueryError{Msg: "only queries (SELECT, WITH, VALUES…) can run here; " +
				"statements that change data, files or settings are not allowed"}
		}
		if strings.Contains(msg, "Max expression depth") {
			return nil, &QueryError{Msg: fmt.Sprintf("query too complex: expressions nest deeper than DuckDB's limit of %s levels", maxDepthOf(msg))}
		}
		if pos, err := strconv.Atoi(fmt.Sprint(tree["position"])); err == nil {
			msg += "\n" + PointAt(sql, pos)
		}
		if !strings.HasPrefix(msg, "syntax error") { // DuckDB's usually says so itself
			msg = "syntax error: " + msg
		}
		return nil, &QueryError{Msg: msg}
	}
	return tree, nil
}

// dynamicPivot matches DuckDB's PIVOT statement (PIVOT x ON …), which
// runs a query to find its columns before the statement itself: as the
// statement, or as a subquery in FROM.
var dynamicPivot = regexp.MustCompile(`(?i)(^[\s(]*|\bFROM[\s(]+)PIVOT(_WIDER)?\s`)

// maxDepthOf picks the limit out of DuckDB's "Max expression depth limit
// of N exceeded" message.
func maxDepthOf(msg string) string {
	if m := regexp.MustCompile(`limit of (\d+)`).FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return "some"
}

// PointAt quotes the line of sql holding byte offset pos with a caret under
// it, as DuckDB's own errors do: the caret placed by display width, so it
// sits under the right character after accented or wide ones.
func PointAt(sql string, pos int) string {
	if pos < 0 || pos > len(sql) {
		return ""
	}
	start := strings.LastIndexByte(sql[:pos], '\n') + 1
	end := strings.IndexByte(sql[pos:], '\n')
	if end < 0 {
		end = len(sql)
	} else {
		end += pos
	}
	prefix := "LINE " + strconv.Itoa(strings.Count(sql[:pos], "\n")+1) + ": "
	return prefix + sql[start:end] + "\n" + strings.Repeat(" ", len(prefix)+DisplayWidth(sql[start:pos])) + "^"
}

// DisplayWidth is how many columns s takes on a terminal: wide (East
// Asian) characters two, others one.
func DisplayWidth(s string) int {
	n := 0
	for _, r := range s {
		switch width.LookupRune(r).Kind() {
		case width.EastAsianWide, width.EastAsianFullwidth:
			n += 2
		default:
			n++
		}
	}
	return n
}

// Deparse renders a syntax tree (in Parse's form) back to SQL.
func (db *DB) Deparse(ctx context.Context, tree map[string]any) (string, error) {
	b, err := json.Marshal(tree)
	if err != nil {
		return "", err
	}
	return db.scalarString(ctx, "SELECT json_deserialize_sql(?::VARCHAR::JSON)", string(b))
}

// Row runs a query that reads no table and returns its first row, each
// value rendered as text (NULL as nil).
func (db *DB) Row(ctx context.Context, sql string) ([]*string, error) {
	ctx, cancel := context.WithTimeout(ctx, db.opts.QueryTimeout)
	defer cancel()
	var out []*string
	err := db.whenMemoryIsFree(ctx, func() (err error) {
		out, err = db.row(ctx, sql)
		return err
	})
	return out, err
}

// whenMemoryIsFree runs fn, and again, as a query does (see stream), when
// it failed because other queries held DuckDB's memory and they gave it
// back: one DuckDB serves every query, and parsing or evaluating a
// statement allocates too.
func (db *DB) whenMemoryIsFree(ctx context.Context, fn func() error) error {
	err := fn()
	for reruns := 0; isOutOfMemory(err) && reruns < maxReruns && db.memoryFreed(ctx, reruns); reruns++ {
		err = fn()
	}
	return err
}

// row is Row without waiting for memory (memoryFreed asks with it).
func (db *DB) row(ctx context.Context, sql string) ([]*string, error) {
	conn, err := db.conn(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.QueryContext(ctx, sql, nil)
	if err != nil {
		conn.Close()
		return nil, queryError(ctx, db.opts.QueryTimeout, err)
	}
	defer db.put(conn)
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(vals); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, queryError(ctx, db.opts.QueryTimeout, err)
	}
	out := make([]*string, len(vals))
	for i, v := range vals {
		if v != nil {
			s := fmt.Sprint(v)
			out[i] = &s
		}
	}
	return out, nil
}

// scalarString runs a one-parameter query returning one string.
func (db *DB) scalarString(ctx context.Context, query, arg string) (string, error) {
	var out string
	err := db.whenMemoryIsFree(ctx, func() (err error) {
		out, err = db.scalarStringOnce(ctx, query, arg)
		return err
	})
	return out, err
}

func (db *DB) scalarStringOnce(ctx context.Context, query, arg string) (string, error) {
	conn, err := db.conn(ctx)
	if err != nil {
		return "", err
	}
	rows, err := conn.QueryContext(ctx, query, []driver.NamedValue{{Ordinal: 1, Value: arg}})
	if err != nil {
		conn.Close()
		return "", queryError(ctx, db.opts.QueryTimeout, err)
	}
	defer db.put(conn)
	defer rows.Close()
	vals := make([]driver.Value, 1)
	if err := rows.Next(vals); err != nil {
		return "", queryError(ctx, db.opts.QueryTimeout, err)
	}
	s, _ := vals[0].(string)
	return s, nil
}

// BlankLiterals replaces the contents of string literals and comments
// with spaces; quoted identifiers are kept whole.
func BlankLiterals(s string) string {
	b := []byte(s)
	blank := func(from, to int) {
		for i := from; i < to && i < len(b); i++ {
			if b[i] != '\n' {
				b[i] = ' '
			}
		}
	}
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			// A quoted identifier is kept, and so is what is in it: a quote
			// or "--" there opens nothing.
			for i++; i < len(s); i++ {
				if s[i] == '"' {
					if i+1 < len(s) && s[i+1] == '"' {
						i++
						continue
					}
					break
				}
			}
		case s[i] == '\'':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						j++
						continue
					}
					break
				}
				if s[j] == '\\' && escapeString(s, i) {
					j++
				}
			}
			blank(i+1, j)
			i = j
		case s[i] == '$':
			if i > 0 && IsIdentByte(s[i-1]) {
				continue // a '$' inside an identifier (x$1, a$b$) opens nothing
			}
			tag := DollarTag(s[i:])
			if tag == "" {
				continue
			}
			end := strings.Index(s[i+len(tag):], tag)
			if end < 0 {
				end = len(s) - i - len(tag)
			}
			blank(i+len(tag), i+len(tag)+end)
			i += len(tag) + end + len(tag) - 1
		case strings.HasPrefix(s[i:], "--"):
			j := strings.IndexAny(s[i:], "\n\r")
			if j < 0 {
				j = len(s) - i
			}
			blank(i, i+j)
			i += j
		case strings.HasPrefix(s[i:], "/*"):
			// Block comments nest, in DuckDB as in PostgreSQL.
			j, depth := i, 0
			for ; j < len(s); j++ {
				if strings.HasPrefix(s[j:], "/*") {
					depth++
					j++
				} else if strings.HasPrefix(s[j:], "*/") {
					depth--
					j++
					if depth == 0 {
						break
					}
				}
			}
			blank(i, j+1)
			i = j
		}
	}
	return string(b)
}

// escapeString reports whether the string literal opening at i is an E'…'
// string (backslash escapes): an E or e in front, not ending an
// identifier (typE'…' is the identifier typE, then a plain string).
func escapeString(s string, i int) bool {
	return i > 0 && (s[i-1] == 'E' || s[i-1] == 'e') && (i < 2 || !IsIdentByte(s[i-2]))
}

// IsIdentByte reports whether c may be part of an unquoted identifier.
func IsIdentByte(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// DollarTag returns the opening tag of a dollar-quoted string at the start
// of s ("$$" or "$name$"), or "" if there is none ($1 is a parameter).
func DollarTag(s string) string {
	for j := 1; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '$':
			return s[:j+1]
		case IsIdentByte(c) && (j > 1 || c < '0' || c > '9'): // no digit first: $1 is a parameter
		default:
			return ""
		}
	}
	return ""
}
