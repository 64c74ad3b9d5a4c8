package sql

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/strata-db/strata/engine"
)

// COPY … TO STDOUT is how psql's \copy and drivers' CopyTo export rows:
// the query's rows go to the client through the COPY sub-protocol, as
// text or CSV. Only COPY of a query or a table to the client is handled
// here; COPY to or from a file, a program or the client is left to the
// sandbox, which refuses it like any statement that is not a query.

// copyOut is how a COPY TO STDOUT writes its rows.
type copyOut struct {
	csv        bool
	header     bool
	delim      byte
	null       string
	quote, esc byte
	forceQuote bool // every non-NULL value quoted (CSV: FORCE_QUOTE *)
}

var copyTable = regexp.MustCompile(`(?is)^((?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*))?)\s*`)

// toStdout finds a COPY … TO STDOUT that parseCopy could not read.
var toStdout = regexp.MustCompile(`(?is)^\s*COPY\b.*\bTO\s+STDOUT\b`)

// parseCopy reads COPY (query) TO STDOUT [options] and COPY table
// [(columns)] TO STDOUT [options], returning the query whose rows are
// written. ok is false for any other statement, COPY to a file included.
func parseCopy(sql string) (query string, out *copyOut, ok bool, err error) {
	b := engine.BlankLiterals(sql) // byte for byte: offsets hold in sql
	query, out, ok, err = readCopy(sql, b)
	if !ok && toStdout.MatchString(b) {
		return "", nil, true, copyError("only COPY (query) TO STDOUT and COPY table [(columns)] TO STDOUT are supported " +
			"(a table is records or metrics, perhaps schema-qualified)")
	}
	return query, out, ok, err
}

func readCopy(sql, b string) (query string, out *copyOut, ok bool, err error) {
	i := skipSpace(b, 0)
	if len(b)-i < 5 || !strings.EqualFold(b[i:i+4], "COPY") || !(isSpace(b[i+4]) || b[i+4] == '(') {
		return "", nil, false, nil
	}
	i = skipSpace(b, i+4)
	switch {
	case i < len(b) && b[i] == '(':
		end := matchForward(b, i) // past the closing parenthesis
		if end < 0 {
			return "", nil, false, nil
		}
		query, i = sql[i+1:end-1], end
	default:
		m := copyTable.FindStringSubmatchIndex(b[i:])
		if m == nil {
			return "", nil, false, nil
		}
		table, cols := sql[i+m[2]:i+m[3]], "*"
		i += m[1]
		if i < len(b) && b[i] == '(' {
			end := matchForward(b, i)
			if end < 0 {
				return "", nil, false, nil
			}
			cols, i = sql[i+1:end-1], skipSpace(b, end)
		}
		query = "SELECT " + cols + " FROM " + table
	}
	i, ok = keyword(b, skipSpace(b, i), "TO")
	if ok {
		i, ok = keyword(b, skipSpace(b, i), "STDOUT")
	}
	if !ok {
		return "", nil, false, nil
	}
	out, err = copyOptions(sql, b, i)
	return query, out, true, err
}

// keyword reports whether b holds the word w at i, and the index past it.
func keyword(b string, i int, w string) (int, bool) {
	end := i + len(w)
	if end > len(b) || !strings.EqualFold(b[i:end], w) || end < len(b) && engine.IsIdentByte(b[end]) {
		return i, false
	}
	return end, true
}

// copyOptions reads the options after TO STDOUT, in either syntax:
// WITH (FORMAT csv, HEADER, DELIMITER ';') or the older WITH CSV HEADER
// DELIMITER ';'.
func copyOptions(sql, b string, i int) (*copyOut, error) {
	toks, err := copyTokens(sql, b, i)
	if err != nil {
		return nil, err
	}
	for len(toks) > 0 && toks[len(toks)-1].is(";") {
		toks = toks[:len(toks)-1]
	}
	type opt struct{ name, value string }
	var opts []opt
	if len(toks) > 0 && toks[0].word("with") {
		toks = toks[1:]
	}
	if len(toks) > 0 && toks[0].is("(") {
		// name [value] {, name [value]} )
		toks = toks[1:]
		for {
			if len(toks) == 0 || toks[0].kind != 'w' {
				return nil, copyError("an option name is missing in the option list")
			}
			o := opt{name: strings.ToLower(toks[0].s)}
			toks = toks[1:]
			if len(toks) > 0 && (toks[0].kind != 'p' || toks[0].is("*")) {
				o.value, toks = toks[0].s, toks[1:]
			} else if len(toks) > 0 && toks[0].is("(") {
				return nil, copyError("FORCE_QUOTE of named columns is not supported here; FORCE_QUOTE * is")
			}
			opts = append(opts, o)
			if len(toks) == 0 {
				return nil, copyError("the option list is not closed")
			}
			sep := toks[0]
			toks = toks[1:]
			if sep.is(")") {
				break
			}
			if !sep.is(",") {
				return nil, copyError(fmt.Sprintf("a comma or ) is missing before %q", sep.s))
			}
		}
	} else {
		for len(toks) > 0 {
			w := strings.ToLower(toks[0].s)
			if toks[0].kind != 'w' {
				return nil, copyError(fmt.Sprintf("unexpected %q in the options", toks[0].s))
			}
			toks = toks[1:]
			switch w {
			case "binary", "csv":
				opts = append(opts, opt{"format", w})
			case "header":
				opts = append(opts, opt{"header", "true"})
			case "delimiter", "null", "quote", "escape", "encoding":
				if len(toks) > 0 && toks[0].word("as") {
					toks = toks[1:]
				}
				if len(toks) == 0 || toks[0].kind != 's' {
					return nil, copyError(strings.ToUpper(w) + " needs a string value")
				}
				opts = append(opts, opt{w, toks[0].s})
				toks = toks[1:]
			case "force":
				if len(toks) < 2 || !toks[0].word("quote") || !toks[1].is("*") {
					return nil, copyError("only FORCE QUOTE * is supported here")
				}
				opts = append(opts, opt{"force_quote", "*"})
				toks = toks[2:]
			default:
				return nil, copyError(fmt.Sprintf("option %q is not supported", w))
			}
		}
	}
	if len(toks) > 0 {
		return nil, copyError(fmt.Sprintf("unexpected %q after the options", toks[0].s))
	}
	c := &copyOut{delim: '\t', null: `\N`, quote: '"', esc: '"'}
	var delim, null, quote, esc *string
	seen := map[string]bool{}
	for _, o := range opts {
		if seen[o.name] {
			return nil, copyError(fmt.Sprintf("conflicting or redundant options: %s given twice", strings.ToUpper(o.name)))
		}
		seen[o.name] = true
		switch o.name {
		case "format":
			switch strings.ToLower(o.value) {
			case "text":
			case "csv":
				c.csv = true
			case "binary":
				return nil, copyError("FORMAT binary is not supported here; use text or csv")
			default:
				return nil, copyError(fmt.Sprintf("COPY format %q not recognized", o.value))
			}
		case "header":
			switch strings.ToLower(o.value) {
			case "", "true", "on", "1":
				c.header = true
			case "false", "off", "0":
				c.header = false
			default:
				return nil, copyError(fmt.Sprintf("HEADER needs a Boolean value, not %q", o.value))
			}
		case "delimiter":
			delim = &o.value
		case "null":
			null = &o.value
		case "quote":
			quote = &o.value
		case "escape":
			esc = &o.value
		case "force_quote":
			if o.value != "*" {
				return nil, copyError("FORCE_QUOTE of named columns is not supported here; FORCE_QUOTE * is")
			}
			c.forceQuote = true
		case "encoding":
			if e := strings.ToLower(strings.ReplaceAll(o.value, "-", "")); e != "utf8" && e != "unicode" {
				return nil, copyError(fmt.Sprintf("encoding %q is not supported: text is UTF8", o.value))
			}
		default:
			return nil, copyError(fmt.Sprintf("option %q is not supported", o.name))
		}
	}
	if c.csv {
		c.delim, c.null = ',', ""
	}
	for _, s := range []struct {
		name string
		v    *string
		dst  *byte
	}{{"DELIMITER", delim, &c.delim}, {"QUOTE", quote, &c.quote}, {"ESCAPE", esc, &c.esc}} {
		if s.v == nil {
			continue
		}
		if len(*s.v) != 1 || (*s.v)[0] >= 0x80 {
			return nil, copyError(s.name + " must be a single one-byte character")
		}
		if s.name != "DELIMITER" && !c.csv {
			return nil, copyError(s.name + " is available only in CSV mode")
		}
		*s.dst = (*s.v)[0]
	}
	if quote != nil && esc == nil {
		c.esc = c.quote // ESCAPE defaults to QUOTE
	}
	if null != nil {
		c.null = *null
	}
	if c.forceQuote && !c.csv {
		return nil, copyError("FORCE_QUOTE is available only in CSV mode")
	}
	switch {
	case c.delim == '\n' || c.delim == '\r':
		return nil, copyError("the delimiter cannot be a newline or carriage return")
	case !c.csv && strings.IndexByte(`\.abcdefghijklmnopqrstuvwxyz0123456789`, c.delim) >= 0:
		// They would read as part of an escape (\n, \N) or of the end marker \.
		return nil, copyError(fmt.Sprintf("the delimiter %q cannot be used in text format", c.delim))
	case c.csv && c.delim == c.quote:
		return nil, copyError("the delimiter and the quote must differ")
	case strings.ContainsAny(c.null, "\r\n"):
		return nil, copyError("the NULL string cannot contain a newline or carriage return")
	case strings.IndexByte(c.null, c.delim) >= 0:
		return nil, copyError("the delimiter must not appear in the NULL string")
	case c.csv && strings.IndexByte(c.null, c.quote) >= 0:
		return nil, copyError("the quote must not appear in the NULL string")
	}
	return c, nil
}

// copyToken is a word ('w'), a string literal's value ('s') or a
// punctuation mark ('p') of COPY's options.
type copyToken struct {
	s    string
	kind byte
}

func (t copyToken) is(p string) bool   { return t.kind == 'p' && t.s == p }
func (t copyToken) word(w string) bool { return t.kind == 'w' && strings.EqualFold(t.s, w) }

// copyTokens splits the options text b[i:] into tokens; string literals'
// values are read from sql.
func copyTokens(sql, b string, i int) ([]copyToken, error) {
	var toks []copyToken
	for i < len(b) {
		switch c := b[i]; {
		case isSpace(c):
			i++
		case c == '(' || c == ')' || c == ',' || c == ';' || c == '*':
			toks = append(toks, copyToken{string(c), 'p'})
			i++
		case c == '\'' || (c == 'E' || c == 'e') && i+1 < len(b) && b[i+1] == '\'':
			if c != '\'' {
				i++
			}
			end := strings.IndexByte(b[i+1:], '\'')
			if end < 0 {
				return nil, copyError("a string literal is not closed")
			}
			v := sql[i+1 : i+1+end]
			if c != '\'' { // E'\t'
				v = unescapeE(v)
			}
			toks = append(toks, copyToken{strings.ReplaceAll(v, "''", "'"), 's'})
			i += end + 2
		case c == '"':
			end := strings.IndexByte(b[i+1:], '"')
			if end < 0 {
				return nil, copyError("a quoted identifier is not closed")
			}
			toks = append(toks, copyToken{b[i+1 : i+1+end], 'w'})
			i += end + 2
		default:
			j := i
			for j < len(b) && engine.IsIdentByte(b[j]) {
				j++
			}
			if j == i {
				return nil, copyError(fmt.Sprintf("unexpected %q in the options", c))
			}
			toks = append(toks, copyToken{b[i:j], 'w'})
			i = j
		}
	}
	return toks, nil
}

// unescapeE reads the backslash escapes of PostgreSQL's E-strings:
// \b \f \n \r \t, octal \ooo and hexadecimal \xhh bytes, and any other
// character as itself.
func unescapeE(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			out = append(out, s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'x':
			j := i + 1
			for j < len(s) && j < i+3 && strings.IndexByte("0123456789abcdefABCDEF", s[j]) >= 0 {
				j++
			}
			if j == i+1 {
				out = append(out, 'x')
				continue
			}
			v, _ := strconv.ParseUint(s[i+1:j], 16, 8)
			out, i = append(out, byte(v)), j-1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(s) && j < i+3 && s[j] >= '0' && s[j] <= '7' {
				j++
			}
			v, _ := strconv.ParseUint(s[i:j], 8, 16)
			out, i = append(out, byte(v)), j-1
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

func copyError(msg string) error {
	return &pgError{code: "42601", msg: "COPY: " + msg}
}

// sendCopy streams r's rows as COPY data, then CopyDone and the command
// tag COPY n.
func (sess *pgSession) sendCopy(r *pgResult) error {
	c := r.copy
	var names []string
	var rows func(yield func([][]byte) error) error
	switch {
	case r.fixed != nil:
		names = r.fixed.names
		rows = func(yield func([][]byte) error) error {
			vals := make([][]byte, len(names))
			for _, row := range r.fixed.rows {
				for i, v := range row {
					vals[i] = nil
					if v != nullText {
						vals[i] = []byte(v)
					}
				}
				if err := yield(vals); err != nil {
					return err
				}
			}
			return nil
		}
	default:
		fields := withNames(r.rows.Schema(), r.rows.PGNames).Fields()
		cols := make([]pgColumn, len(fields))
		for i, f := range fields {
			names = append(names, f.Name)
			cols[i] = pgColumnFor(f.Type)
		}
		rows = func(yield func([][]byte) error) error {
			vals := make([][]byte, len(cols))
			for r.rows.Next() {
				rec := r.rows.RecordBatch()
				if err := checkValueSizes(rec); err != nil {
					return err
				}
				for row := range int(rec.NumRows()) {
					for i := range cols {
						vals[i] = nil
						if a := rec.Column(i); !a.IsNull(row) {
							vals[i] = cols[i].text(a, row)
						}
					}
					if err := yield(vals); err != nil {
						return err
					}
				}
				if err := sess.flush(); err != nil { // keep memory flat
					return err
				}
			}
			return r.rows.Err()
		}
	}
	sess.be.Send(&pgproto3.CopyOutResponse{OverallFormat: 0, ColumnFormatCodes: make([]uint16, len(names))})
	var line []byte
	if c.header {
		hdr := make([][]byte, len(names))
		for i, n := range names {
			hdr[i] = []byte(n)
		}
		line = c.appendRow(line[:0], hdr, true)
		sess.be.Send(&pgproto3.CopyData{Data: line})
	}
	var n int64
	err := rows(func(vals [][]byte) error {
		line = c.appendRow(line[:0], vals, false)
		sess.be.Send(&pgproto3.CopyData{Data: line})
		n++
		return nil
	})
	if err != nil {
		return err
	}
	r.sent = n // counted as any result's rows
	sess.be.Send(&pgproto3.CopyDone{})
	sess.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("COPY " + strconv.FormatInt(n, 10))})
	return nil
}

// appendRow appends one line of COPY output: vals (nil for NULL) joined
// by the delimiter, each escaped (text) or quoted (CSV) as PostgreSQL
// writes them; a header is never force-quoted.
func (c *copyOut) appendRow(dst []byte, vals [][]byte, header bool) []byte {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, c.delim)
		}
		switch {
		case v == nil:
			dst = append(dst, c.null...)
		case c.csv:
			dst = c.appendCSV(dst, v, c.forceQuote && !header, len(vals) == 1)
		default:
			dst = c.appendText(dst, v)
		}
	}
	return append(dst, '\n')
}

// textEscapes is the letter COPY's text format writes after a backslash
// for a byte (0: the byte stands for itself).
var textEscapes = [256]byte{'\\': '\\', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '\v': 'v'}

func (c *copyOut) appendText(dst, v []byte) []byte {
	for _, ch := range v {
		switch {
		case textEscapes[ch] != 0:
			dst = append(dst, '\\', textEscapes[ch])
		case ch == c.delim:
			dst = append(dst, '\\', ch)
		default:
			dst = append(dst, ch)
		}
	}
	return dst
}

// appendCSV quotes a value when it must be: it holds the delimiter, the
// quote, a line end, or reads as the NULL string (so that the empty
// string and NULL differ), or when force is set.
func (c *copyOut) appendCSV(dst, v []byte, force, alone bool) []byte {
	quote := force || string(v) == c.null || bytes.IndexByte(v, c.delim) >= 0 ||
		bytes.IndexByte(v, c.quote) >= 0 || bytes.ContainsAny(v, "\r\n") ||
		alone && string(v) == `\.` // a line \. alone ends COPY data
	if !quote {
		return append(dst, v...)
	}
	dst = append(dst, c.quote)
	for _, ch := range v {
		if ch == c.quote || ch == c.esc {
			dst = append(dst, c.esc)
		}
		dst = append(dst, ch)
	}
	return append(dst, c.quote)
}
