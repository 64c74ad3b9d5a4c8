package sql

import "strings"

// A splicer copies a query's text with some of its spans replaced, for
// the rewrites that give what PostgreSQL users write its PostgreSQL
// meaning. Spans are replaced left to right and do not overlap.
type splicer struct {
	src     string
	out     strings.Builder
	last    int // src up to here is written
	changed bool
}

// replace writes src up to from, then text in place of src[from:to].
func (p *splicer) replace(from, to int, text string) {
	p.out.WriteString(p.src[p.last:from])
	p.out.WriteString(text)
	p.last = to
	p.changed = true
}

// text is the result: src itself when nothing was replaced.
func (p *splicer) text() string {
	if !p.changed {
		return p.src
	}
	return p.out.String() + p.src[p.last:]
}
