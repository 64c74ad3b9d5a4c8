package sql

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/strata-db/strata/engine"
)

// DuckDB points at a problem in the text it ran: "LINE n: <line>" and a
// caret under it. When that text is not the user's — parameters bound as
// constants, a query wrapped to be described — the pointer is moved to the
// same word in the user's text, or dropped when it cannot be found there.

// errContext matches DuckDB's pointer: the line (maybe cut short with
// "..." at either end) and the caret line.
var errContext = regexp.MustCompile(`\n*LINE (\d+): ([^\n]*)\n( *)\^`)

// repoint moves the pointer of a query error from ran to user. Other
// errors, and errors without a pointer, are returned as they are.
func repoint(err error, ran, user string) error {
	var qe *engine.QueryError
	if err == nil || ran == user || !errors.As(err, &qe) {
		return err
	}
	m := errContext.FindStringSubmatchIndex(qe.Msg)
	if m == nil {
		return err
	}
	lineNo, _ := strconv.Atoi(qe.Msg[m[2]:m[3]])
	shown := qe.Msg[m[4]:m[5]]
	msg := strings.TrimRight(qe.Msg[:m[0]], "\n")
	if pos := mapPosition(ran, lineNo, shown, caretOffset(shown, caretColumn(m)), user); pos >= 0 {
		msg += "\n\n" + engine.PointAt(user, pos)
	}
	msg += qe.Msg[m[1]:]
	return &engine.QueryError{Msg: msg, Err: qe.Err}
}

// caretColumn is the display column, within the line shown, of the caret
// of a pointer errContext matched (m, its submatch indexes).
func caretColumn(m []int) int { return m[7] - m[6] - len("LINE : ") - (m[3] - m[2]) }

// caretOffset is the byte offset of shown under the caret at display
// column col (DuckDB places it by display width), -1 if no character
// starts there.
func caretOffset(shown string, col int) int {
	w := 0
	for i, r := range shown {
		if w == col {
			return i
		}
		w += engine.DisplayWidth(string(r))
	}
	return -1
}

// mapPosition finds, in user, the word at byte off of shown (line lineNo
// of ran, perhaps cut short), where the caret points: the same
// occurrence of the same word, counted from the start. -1 if the word is
// not there as often as in ran.
func mapPosition(ran string, lineNo int, shown string, off int, user string) int {
	if off < 0 {
		return -1
	}
	lines := strings.SplitAfter(ran, "\n")
	if lineNo < 1 || lineNo > len(lines) {
		return -1
	}
	// Where the shown text starts in its line: DuckDB cuts long lines and
	// marks the cut with "...".
	body := strings.TrimSuffix(strings.TrimPrefix(shown, "..."), "...")
	cut := 0
	if strings.HasPrefix(shown, "...") {
		cut = 3
	}
	at := strings.Index(lines[lineNo-1], body)
	if at < 0 || off < cut {
		return -1
	}
	pos := len(strings.Join(lines[:lineNo-1], "")) + at + off - cut
	word := wordAt(ran, pos)
	if word == "" {
		return -1
	}
	inRan := occurrences(ran, word)
	inUser := occurrences(user, word)
	if len(inRan) != len(inUser) {
		return -1
	}
	for k, p := range inRan {
		if p == pos {
			return inUser[k]
		}
	}
	return -1
}

// wordAt is the identifier, number or quoted name starting at pos.
func wordAt(s string, pos int) string {
	if pos >= len(s) {
		return ""
	}
	if s[pos] == '"' {
		if end := strings.IndexByte(s[pos+1:], '"'); end >= 0 {
			return s[pos : pos+end+2]
		}
		return ""
	}
	end := pos
	for end < len(s) && engine.IsIdentByte(s[end]) {
		end++
	}
	if end == pos || pos > 0 && engine.IsIdentByte(s[pos-1]) {
		return "" // not the start of a word
	}
	return s[pos:end]
}

// occurrences are the offsets of word in s as a whole word outside
// string literals and comments, ignoring case.
func occurrences(s, word string) []int {
	b := strings.ToLower(engine.BlankLiterals(s))
	w := strings.ToLower(word)
	var out []int
	for i := 0; ; {
		j := strings.Index(b[i:], w)
		if j < 0 {
			return out
		}
		p := i + j
		if (p == 0 || !engine.IsIdentByte(b[p-1])) && (p+len(w) == len(b) || !engine.IsIdentByte(b[p+len(w)])) {
			out = append(out, p)
		}
		i = p + len(w)
	}
}

// positionIn finds where the pointer in msg (DuckDB's, or one repoint
// moved) points in user, the text the client sent: the message without
// the pointer, and the 1-based character position PostgreSQL's
// ErrorResponse carries, from which psql and other tools draw their own
// pointer. pos is 0, and msg as it is, when the place cannot be told:
// the pointed line is not in user once, nor the word under the caret.
func positionIn(msg, user string) (string, int) {
	m := errContext.FindStringSubmatchIndex(msg)
	if m == nil || user == "" {
		return msg, 0
	}
	lineNo, _ := strconv.Atoi(msg[m[2]:m[3]])
	shown := msg[m[4]:m[5]]
	off := caretOffset(shown, caretColumn(m))
	if off < 0 {
		return msg, 0
	}
	body := strings.TrimSuffix(strings.TrimPrefix(shown, "..."), "...")
	cut := 0
	if strings.HasPrefix(shown, "...") {
		cut = 3
	}
	pos := -1
	if body != "" && off >= cut && off-cut <= len(body) {
		if at := strings.Index(user, body); at >= 0 && strings.Count(user, body) == 1 {
			pos = at + off - cut // the line as the client wrote it
		} else if lines := strings.SplitAfter(user, "\n"); lineNo >= 1 && lineNo <= len(lines) && len(splitStatements(user)) <= 1 {
			// (DuckDB's line number counts in its statement, which is
			// the client's text only if that holds one.)
			if at := strings.Index(lines[lineNo-1], body); at >= 0 {
				pos = len(strings.Join(lines[:lineNo-1], "")) + at + off - cut
			}
		}
	}
	if word := wordAt(shown, off); pos < 0 && word != "" {
		if in := occurrences(user, word); len(in) == 1 {
			pos = in[0] // a rewritten line, but a word found once
		}
	}
	if pos < 0 || pos > len(user) {
		return msg, 0
	}
	return strings.TrimRight(msg[:m[0]], "\n") + msg[m[1]:], utf8.RuneCountInString(user[:pos]) + 1
}
