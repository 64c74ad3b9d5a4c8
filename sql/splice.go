package sql

import (
	"slices"
	"strings"
)

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

// An edit replaces src[from:to] with text (from == to inserts it).
type edit struct {
	from, to int
	text     string
}

// spliced is s with edits made. They may come in any order but must not
// overlap; insertions at one place keep their order.
func spliced(s string, edits []edit) string {
	slices.SortStableFunc(edits, func(a, b edit) int { return a.from - b.from })
	out := splicer{src: s}
	for _, e := range edits {
		out.replace(e.from, e.to, e.text)
	}
	return out.text()
}
