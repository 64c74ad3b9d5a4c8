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

var (
	// setStatement matches SET [SESSION|LOCAL] name {=|TO} value on the
	// text with comments and literals blanked (offsets hold in the
	// original, where the value is read).
	setStatement = regexp.MustCompile(`(?is)^SET\s+(?:SESSION\s+|LOCAL\s+)?("[^"]+"|[a-z_][\w.]*)\s*(?:=|\bTO\b)\s*(.*?)\s*;?\s*$`)
	// resetStatement matches RESET name and RESET ALL.
	resetStatement = regexp.MustCompile(`(?is)^RESET\s+("[^"]+"|[a-z_][\w.]*)\s*;?\s*$`)
)

// startSettings are the stored settings a session starts with, which
// RESET goes back to: PostgreSQL's defaults and the start-up message's.
func startSettings(applicationName string) map[string]string {
	return map[string]string{"application_name": applicationName, "statement_timeout": "0"}
}

// settingName folds a setting's name as PostgreSQL does: quoted as
// written, else lower case.
func settingName(s string) string {
	if strings.HasPrefix(s, `"`) {
		return strings.Trim(s, `"`)
	}
	return strings.ToLower(s)
}

// applySet stores what a SET or RESET statement sets; other statements
// are left alone.
func (sess *pgSession) applySet(sql string) error {
	blanked := engine.BlankLiterals(sql) // byte for byte: offsets hold in sql
	start := skipSpace(blanked, 0)
	if m := resetStatement.FindStringSubmatch(blanked[start:]); m != nil {
		name := settingName(m[1])
		if name == "all" {
			sess.resetSettings()
			return nil
		}
		sess.resetSetting(name)
		return nil
	}
	m := setStatement.FindStringSubmatchIndex(blanked[start:])
	if m == nil {
		return nil
	}
	name := settingName(blanked[start+m[2] : start+m[3]])
	value := settingValue(sql[start+m[4] : start+m[5]])
	if _, fixed := showValues[name]; fixed {
		return nil
	}
	if name == "statement_timeout" {
		d, err := parseTimeout(value)
		if err != nil {
			return &pgError{code: "22023", msg: fmt.Sprintf("invalid value for parameter \"statement_timeout\": %q: %v", value, err)}
		}
		sess.stmtTimeout, value = d, formatTimeout(d)
	}
	if strings.EqualFold(value, "default") {
		sess.resetSetting(name)
		return nil
	}
	sess.settings[name] = value
	return nil
}

// resetSettings puts every setting back to what the session started with
// (RESET ALL, DISCARD ALL).
func (sess *pgSession) resetSettings() {
	sess.settings = maps.Clone(sess.startSettings)
	sess.stmtTimeout = 0
}

// resetSetting puts one setting back to what the session started with.
func (sess *pgSession) resetSetting(name string) {
	if name == "statement_timeout" {
		sess.stmtTimeout = 0
	}
	if v, ok := sess.startSettings[name]; ok {
		sess.settings[name] = v
	} else {
		delete(sess.settings, name)
	}
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
	unit := strings.ToLower(strings.TrimSpace(v[len(num):]))
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
