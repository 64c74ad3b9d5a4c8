package sql

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/strata-db/strata/engine"
)

// A session's settings: what SET stores and SHOW answers. Settings whose
// value strata fixes (showValues: the time zone, date style, encodings…)
// are not stored; a SET of them is accepted and changes nothing, as
// before. statement_timeout is honoured: it bounds each query of the
// session, under the server's own limit.
//
// As in PostgreSQL, settings are transactional: a ROLLBACK undoes the
// SETs of its transaction, and SET LOCAL lasts until the transaction ends.

// pgSettings are a session's settings.
type pgSettings struct {
	start   map[string]string // at the start of the session: what RESET goes back to
	current map[string]string // in force
	session map[string]string // in force but for SET LOCAL: what COMMIT keeps
	txStart map[string]string // session's at BEGIN: what ROLLBACK goes back to
}

// newPGSettings starts a session's settings from the parameters of its
// start-up message: those a client sets there (pgx's statement_timeout=…
// in its connection string) and those in its options (PGOPTIONS='-c
// statement_timeout=5s'), as PostgreSQL does. Settings whose value strata
// fixes are ignored, as a SET of them is (JDBC sends its JVM's TimeZone).
func newPGSettings(params map[string]string) (*pgSettings, error) {
	start := map[string]string{"application_name": "", "statement_timeout": "0"}
	given := map[string]string{}
	for k, v := range params {
		switch k {
		case "user", "database", "replication", "options":
		default:
			given[k] = v
		}
	}
	if err := startupOptions(params["options"], given); err != nil {
		return nil, err
	}
	for k, v := range given {
		name := asciiLower(k)
		if _, fixed := showValues[name]; fixed {
			continue
		}
		if name == "statement_timeout" {
			d, err := parseTimeout(v)
			if err != nil {
				return nil, &pgError{code: "22023", msg: fmt.Sprintf("invalid value for parameter \"statement_timeout\": %q: %v", v, err)}
			}
			v = formatTimeout(d)
		}
		start[name] = v
	}
	return &pgSettings{start: start, current: maps.Clone(start), session: maps.Clone(start)}, nil
}

// startupOptions reads the options parameter of a start-up message, the
// command-line switches PostgreSQL takes there: -c name=value (or
// -cname=value) and --name=value, separated by spaces (a space escaped
// with a backslash belongs to the value). Dashes in names are
// underscores.
func startupOptions(options string, into map[string]string) error {
	var words []string
	var w strings.Builder
	for i := 0; i < len(options); i++ {
		switch c := options[i]; {
		case c == '\\' && i+1 < len(options):
			i++
			w.WriteByte(options[i])
		case c == ' ' || c == '\t' || c == '\n':
			if w.Len() > 0 {
				words = append(words, w.String())
				w.Reset()
			}
		default:
			w.WriteByte(c)
		}
	}
	if w.Len() > 0 {
		words = append(words, w.String())
	}
	for i := 0; i < len(words); i++ {
		var kv string
		switch word := words[i]; {
		case word == "-c" && i+1 < len(words):
			i++
			kv = words[i]
		case strings.HasPrefix(word, "-c"):
			kv = word[2:]
		case strings.HasPrefix(word, "--"):
			kv = word[2:]
		default:
			return &pgError{code: "22023", msg: fmt.Sprintf("invalid command-line argument in the options parameter: %q (want -c name=value)", word)}
		}
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return &pgError{code: "22023", msg: fmt.Sprintf("-c %s in the options parameter: want name=value", kv)}
		}
		into[strings.ReplaceAll(name, "-", "_")] = value
	}
	return nil
}

var (
	// setStatement matches SET [SESSION|LOCAL] name {=|TO} value on the
	// text with comments and literals blanked (offsets hold in the
	// original, where the value is read).
	setStatement = regexp.MustCompile(`(?is)^SET\s+(SESSION\s+|LOCAL\s+)?("[^"]+"|[a-z_][\w.]*)\s*(?:=|\bTO\b)\s*(.*?)\s*;?\s*$`)
	// resetStatement matches RESET name and RESET ALL.
	resetStatement = regexp.MustCompile(`(?is)^RESET\s+("[^"]+"|[a-z_][\w.]*)\s*;?\s*$`)
)

// statementTimeout is the session's statement_timeout (0: none).
func (s *pgSettings) statementTimeout() time.Duration {
	d, _ := parseTimeout(s.current["statement_timeout"])
	return d
}

// set gives name a value (remove: back to the start's) in the current
// settings, and in the session's unless local.
func (s *pgSettings) set(name, value string, remove, local bool) {
	for _, m := range []map[string]string{s.current, s.session} {
		switch v, ok := s.start[name]; {
		case remove && ok:
			m[name] = v
		case remove:
			delete(m, name)
		default:
			m[name] = value
		}
		if local {
			break
		}
	}
}

// begin starts a transaction; end ends it, keeping its settings (commit)
// or not.
func (s *pgSettings) begin() { s.txStart = maps.Clone(s.session) }

func (s *pgSettings) end(commit bool) {
	if !commit && s.txStart != nil {
		s.session = s.txStart
	}
	s.current, s.txStart = maps.Clone(s.session), nil
}

// resetAll goes back to the start's settings (RESET ALL, DISCARD ALL).
func (s *pgSettings) resetAll() {
	s.current, s.session = maps.Clone(s.start), maps.Clone(s.start)
}

// applySet stores what a SET or RESET statement sets; other statements
// are left alone.
func (sess *pgSession) applySet(sql string) error {
	blanked := engine.BlankLiterals(sql) // byte for byte: offsets hold in sql
	start := skipSpace(blanked, 0)
	s := sess.settings
	if m := resetStatement.FindStringSubmatch(blanked[start:]); m != nil {
		if name := foldName(m[1]); name == "all" {
			s.resetAll()
		} else {
			s.set(name, "", true, false)
		}
		return nil
	}
	m := setStatement.FindStringSubmatchIndex(blanked[start:])
	if m == nil {
		return nil
	}
	local := m[2] >= 0 && strings.EqualFold(strings.TrimSpace(blanked[start+m[2]:start+m[3]]), "LOCAL")
	name := foldName(blanked[start+m[4] : start+m[5]])
	value := settingValue(sql[start+m[6] : start+m[7]])
	if _, fixed := showValues[name]; fixed || local && !sess.inTx {
		return nil // SET LOCAL outside a transaction: no effect, as in PostgreSQL
	}
	if strings.EqualFold(value, "default") {
		s.set(name, "", true, local)
		return nil
	}
	if name == "statement_timeout" {
		d, err := parseTimeout(value)
		if err != nil {
			return &pgError{code: "22023", msg: fmt.Sprintf("invalid value for parameter \"statement_timeout\": %q: %v", value, err)}
		}
		value = formatTimeout(d)
	}
	s.set(name, value, false, local)
	return nil
}

// settingValue is a SET value as SHOW gives it back: a quoted string
// unquoted, anything else with its spacing made single.
func settingValue(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' && !strings.Contains(strings.ReplaceAll(v[1:len(v)-1], "''", ""), "'") {
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	}
	return strings.Join(strings.Fields(v), " ")
}

// parseTimeout reads statement_timeout as PostgreSQL does: a number of
// milliseconds, or a number with a unit (us, ms, s, min, h, d); 0 or
// DEFAULT turns it off.
func parseTimeout(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "default") {
		return 0, nil
	}
	num := strings.TrimRight(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
	unit := strings.TrimSpace(v[len(num):])
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("want a number of milliseconds, or one with a unit (100ms, 5s, 1min)")
	}
	per := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[unit]
	if per == 0 {
		return 0, fmt.Errorf("unit %q: valid units are us, ms, s, min, h and d", unit)
	}
	d := n * float64(per)
	if d < 0 || d > float64(math.MaxInt32)*float64(time.Millisecond) {
		return 0, fmt.Errorf("outside the valid range (0 .. 2147483647 ms)")
	}
	return time.Duration(d).Round(time.Millisecond), nil
}

// formatTimeout writes a timeout as PostgreSQL's SHOW does: in the
// largest unit that holds it whole.
func formatTimeout(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "min"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
