package sql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/strata-db/strata/engine"
)

// SQL cursors: DECLARE name CURSOR FOR query, FETCH, CLOSE — what psql
// sends when FETCH_COUNT is set. As in PostgreSQL a cursor is a portal of
// that name: it holds its query (and a query slot) until CLOSE or the end
// of its transaction, and scans forward only.

var (
	// declareCursor matches up to the query of a DECLARE, on the text with
	// comments and literals blanked.
	declareCursor = regexp.MustCompile(`(?is)^DECLARE\s+("(?:[^"]|"")+"|[a-z_][\w$]*)\s+((?:(?:BINARY|ASENSITIVE|INSENSITIVE|SCROLL|NO\s+SCROLL)\s+)*)CURSOR\s+(?:(WITH|WITHOUT)\s+HOLD\s+)?FOR\s`)
	// fetchCursor matches the forward FETCHes: FETCH [NEXT | FORWARD
	// [n | ALL] | n | ALL] [FROM | IN] name.
	fetchCursor = regexp.MustCompile(`(?is)^FETCH\s+(?:(NEXT|FORWARD(?:\s+(?:ALL|\d+))?|ALL|\d+)\s+)?(?:(?:FROM|IN)\s+)?("(?:[^"]|"")+"|[a-z_][\w$]*)\s*;?$`)
	closeCursor = regexp.MustCompile(`(?is)^CLOSE\s+("(?:[^"]|"")+"|[a-z_][\w$]*)\s*;?$`)
	cursorVerb  = regexp.MustCompile(`(?is)^(DECLARE|FETCH|MOVE|CLOSE)\b`)
)

// cursorStatement runs DECLARE, FETCH and CLOSE; ok is false for other
// statements.
func (sess *pgSession) cursorStatement(sql string) (res *pgResult, ok bool, err error) {
	blanked := engine.BlankLiterals(sql) // byte for byte: offsets hold in sql
	start := skipSpace(blanked, 0)
	verb := cursorVerb.FindStringSubmatch(blanked[start:])
	if verb == nil {
		return nil, false, nil
	}
	text := strings.TrimRight(blanked[start:], " \t\n\r\f\v")
	switch strings.ToUpper(verb[1]) {
	case "DECLARE":
		res, err = sess.declare(sql, blanked, start)
	case "FETCH":
		res, err = sess.fetchStatement(text)
	case "CLOSE":
		res, err = sess.closeCursor(text)
	default:
		err = &pgError{code: "0A000", msg: "MOVE is not supported: FETCH reads a cursor forward"}
	}
	return res, true, err
}

func (sess *pgSession) declare(sql, blanked string, start int) (*pgResult, error) {
	if sess.running != nil {
		return nil, &pgError{code: "0A000", msg: "DECLARE runs in the simple query protocol; with the extended protocol, Execute with a row limit pages through a result"}
	}
	m := declareCursor.FindStringSubmatchIndex(blanked[start:])
	if m == nil {
		return nil, &pgError{code: "42601", msg: "syntax error: want DECLARE name [NO SCROLL] CURSOR [WITHOUT HOLD] FOR query"}
	}
	name := foldName(blanked[start+m[2] : start+m[3]])
	if options := strings.ToUpper(blanked[start+m[4] : start+m[5]]); strings.Contains(options, "BINARY") {
		return nil, &pgError{code: "0A000", msg: "binary cursors are not supported"}
	}
	if m[6] >= 0 && strings.EqualFold(blanked[start+m[6]:start+m[7]], "WITH") {
		return nil, &pgError{code: "0A000", msg: "WITH HOLD cursors are not supported: a cursor lasts until the end of its transaction"}
	}
	if !sess.inTx {
		return nil, &pgError{code: "25P01", msg: "DECLARE CURSOR can only be used in transaction blocks"}
	}
	if _, exists := sess.portals[name]; exists {
		return nil, &pgError{code: "42P03", msg: fmt.Sprintf("cursor %q already exists", name)}
	}
	query := sql[start+m[1]:]
	// statement_timeout bounds statements, and a cursor lives across
	// several: only the server's limit bounds it, from DECLARE to CLOSE.
	res, err := sess.runQuery(query, 0)
	if err != nil {
		return nil, repoint(err, query, sql)
	}
	if res.rows == nil && res.fixed == nil || res.copy != nil {
		res.release()
		return nil, &pgError{code: "42P11", msg: "a cursor's statement must be a query"}
	}
	res.cursor = true
	sess.portals[name] = &pgPortal{sql: query, text: query, result: res}
	return &pgResult{tag: "DECLARE CURSOR"}, nil
}

func (sess *pgSession) fetchStatement(text string) (*pgResult, error) {
	if sess.running != nil {
		return nil, &pgError{code: "0A000", msg: "FETCH runs in the simple query protocol; with the extended protocol, Execute with a row limit pages through a result"}
	}
	m := fetchCursor.FindStringSubmatch(text)
	if m == nil {
		return nil, &pgError{code: "55000", msg: "cursor can only scan forward: FETCH [NEXT | FORWARD [n | ALL] | n | ALL] [FROM] cursor"}
	}
	p, err := sess.cursor(foldName(m[2]))
	if err != nil {
		return nil, err
	}
	n := int32(1) // FETCH, FETCH NEXT, FETCH FORWARD
	if f := strings.Fields(strings.ToUpper(m[1])); len(f) > 0 {
		switch last := f[len(f)-1]; last {
		case "ALL":
			n = 0
		case "NEXT", "FORWARD":
		default:
			v, err := strconv.ParseInt(last, 10, 32)
			if err != nil || v < 0 {
				return nil, &pgError{code: "22003", msg: fmt.Sprintf("FETCH count %s is out of range", last)}
			}
			if n = int32(v); n == 0 {
				// PostgreSQL's FETCH 0 re-reads the current row; a
				// forward-only cursor here has none to give.
				return nil, &pgError{code: "55000", msg: "FETCH 0 is not supported: cursors scan forward"}
			}
		}
	}
	return &pgResult{fetch: p.result, fetchN: n}, nil
}

func (sess *pgSession) closeCursor(text string) (*pgResult, error) {
	m := closeCursor.FindStringSubmatch(text)
	if m == nil {
		return nil, &pgError{code: "42601", msg: "syntax error: want CLOSE name or CLOSE ALL"}
	}
	if strings.EqualFold(m[1], "ALL") {
		for name, p := range sess.portals {
			if p.result != nil && p.result.cursor {
				p.result.release()
				delete(sess.portals, name)
			}
		}
		return &pgResult{tag: "CLOSE CURSOR ALL"}, nil
	}
	name := foldName(m[1])
	p, err := sess.cursor(name)
	if err != nil {
		return nil, err
	}
	p.result.release()
	delete(sess.portals, name)
	return &pgResult{tag: "CLOSE CURSOR"}, nil
}

// cursor returns the portal of the cursor name declared.
func (sess *pgSession) cursor(name string) (*pgPortal, error) {
	p := sess.portals[name]
	if p == nil || p.result == nil || !p.result.cursor {
		return nil, &pgError{code: "34000", msg: fmt.Sprintf("cursor %q does not exist", name)}
	}
	return p, nil
}
