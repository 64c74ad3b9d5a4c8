package bench

import (
	"fmt"
	htmltpl "html/template"
	"io"
	"math"
	"strings"
)

// The HTML reports are one self-contained file each: inline SVG charts,
// no scripts, nothing fetched, so they open anywhere and can be mailed.

// series is one line or set of bars of a chart.
type series struct {
	Name   string
	Values []float64
}

var palette = []string{"#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2"}

const chartW, chartH, padL, padB, padT = 760.0, 260.0, 64.0, 36.0, 16.0

// lineChart draws series over x (seconds, say) with labelled axes.
func lineChart(title, xLabel, yLabel string, x []float64, ss ...series) htmltpl.HTML {
	var b strings.Builder
	xmax, ymax := 1.0, 0.0
	for _, v := range x {
		xmax = math.Max(xmax, v)
	}
	for _, s := range ss {
		for _, v := range s.Values {
			ymax = math.Max(ymax, v)
		}
	}
	ymax = niceCeil(ymax)
	px := func(v float64) float64 { return padL + v/xmax*(chartW-padL-16) }
	py := func(v float64) float64 { return padT + (1-v/ymax)*(chartH-padT-padB) }
	chartOpen(&b, title)
	axes(&b, xLabel, yLabel, ymax, func(i int) string { return fmt.Sprintf("%.0f", xmax*float64(i)/4) })
	for i, s := range ss {
		var pts []string
		for j, v := range s.Values {
			if j < len(x) {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x[j]), py(v)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, palette[i%len(palette)], strings.Join(pts, " "))
	}
	legend(&b, ss)
	b.WriteString("</svg>")
	return htmltpl.HTML(b.String())
}

// barChart draws one bar per label and series (grouped), with values.
func barChart(title, yLabel string, labels []string, format func(float64) string, ss ...series) htmltpl.HTML {
	var b strings.Builder
	ymax := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			ymax = math.Max(ymax, v)
		}
	}
	ymax = niceCeil(ymax)
	n := float64(max(len(labels), 1))
	slot := (chartW - padL - 16) / n
	bw := slot * 0.8 / float64(max(len(ss), 1))
	chartOpen(&b, title)
	axes(&b, "", yLabel, ymax, nil)
	for i, l := range labels {
		x0 := padL + float64(i)*slot + slot*0.1
		for k, s := range ss {
			if i >= len(s.Values) {
				continue
			}
			v := s.Values[i]
			h := v / ymax * (chartH - padT - padB)
			x := x0 + float64(k)*bw
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				x, chartH-padB-h, bw-1, h, palette[k%len(palette)], htmltpl.HTMLEscapeString(l), htmltpl.HTMLEscapeString(s.Name), format(v))
			if len(labels) <= 12 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%s</text>`, x+bw/2, chartH-padB-h-3, format(v))
			}
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="9" text-anchor="middle">%s</text>`, x0+slot*0.4, chartH-padB+12, htmltpl.HTMLEscapeString(short(l, int(slot/5))))
	}
	if len(ss) > 1 {
		legend(&b, ss)
	}
	b.WriteString("</svg>")
	return htmltpl.HTML(b.String())
}

func chartOpen(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" font-family="sans-serif"><title>%s</title>`,
		chartW, chartH, chartW, chartH, htmltpl.HTMLEscapeString(title))
}

func axes(b *strings.Builder, xLabel, yLabel string, ymax float64, xTick func(int) string) {
	for i := 0; i <= 4; i++ {
		y := padT + float64(i)/4*(chartH-padT-padB)
		fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e5e7eb"/>`, padL, chartW-16, y, y)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" font-size="10" text-anchor="end">%s</text>`, padL-4, y+3, formatCount(ymax*(1-float64(i)/4)))
		if xTick != nil {
			x := padL + float64(i)/4*(chartW-padL-16)
			fmt.Fprintf(b, `<text x="%.1f" y="%.0f" font-size="10" text-anchor="middle">%s</text>`, x, chartH-padB+14, xTick(i))
		}
	}
	fmt.Fprintf(b, `<line x1="%.0f" x2="%.0f" y1="%.0f" y2="%.0f" stroke="#374151"/>`, padL, chartW-16, chartH-padB, chartH-padB)
	fmt.Fprintf(b, `<text x="12" y="%.0f" font-size="11" transform="rotate(-90 12 %.0f)" text-anchor="middle">%s</text>`, chartH/2, chartH/2, htmltpl.HTMLEscapeString(yLabel))
	if xLabel != "" {
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="middle">%s</text>`, (padL+chartW)/2, chartH-4, htmltpl.HTMLEscapeString(xLabel))
	}
}

func legend(b *strings.Builder, ss []series) {
	for i, s := range ss {
		x := padL + 8 + float64(i)*150
		fmt.Fprintf(b, `<rect x="%.0f" y="4" width="10" height="10" fill="%s"/><text x="%.0f" y="13" font-size="11">%s</text>`,
			x, palette[i%len(palette)], x+14, htmltpl.HTMLEscapeString(s.Name))
	}
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func short(s string, n int) string {
	if n < 4 || len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

var page = htmltpl.Must(htmltpl.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:820px;margin:2em auto;color:#111827;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em;width:100%}td,th{border-bottom:1px solid #e5e7eb;padding:4px 6px;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}.from{color:#4b5563;font-size:.85em}
.note{background:#fef3c7;padding:6px 10px;border-radius:4px;margin:6px 0}
</style></head><body>
<h1>{{.Title}}</h1><p>{{.Subtitle}}</p>
{{range .Notes}}<p class="note">{{.}}</p>{{end}}
{{range .Sections}}<h2>{{.Title}}</h2>{{.Chart}}
{{if .Rows}}<table>{{with .Header}}<tr>{{range .}}<th>{{.}}</th>{{end}}</tr>{{end}}
{{range .Rows}}<tr>{{range .}}<td{{if .Num}} class="n"{{end}}{{if .Small}} class="from"{{end}}>{{.Text}}</td>{{end}}</tr>{{end}}</table>{{end}}
{{end}}</body></html>
`))

type htmlPage struct {
	Title, Subtitle string
	Notes           []string
	Sections        []htmlSection
}

type htmlSection struct {
	Title  string
	Chart  htmltpl.HTML
	Header []string
	Rows   [][]cell
}

type cell struct {
	Text       string
	Num, Small bool
}

func num(format string, args ...any) cell { return cell{Text: fmt.Sprintf(format, args...), Num: true} }
func txt(s string) cell                   { return cell{Text: s} }

// WriteHTML writes the ingest report as a page with charts.
func (r *IngestReport) WriteHTML(w io.Writer) error {
	p := htmlPage{Title: "strata bench ingest", Notes: r.Notes,
		Subtitle: fmt.Sprintf("%s over %s, %d workers, %s workload, %.1f s on %s (%d cores), %s",
			r.Options.Endpoint, r.Options.Protocol, r.Options.Workers, r.Options.Workload.Style, r.Elapsed, r.Machine.Host, r.Machine.Cores, r.Machine.MeasuredAt.Format("2006-01-02 15:04 MST"))}
	if r.Interrupted {
		p.Notes = append(p.Notes, "interrupted: partial results")
	}
	var x, rate, p99, errs []float64
	for _, t := range r.Timeline {
		x = append(x, float64(t.Second))
		rate = append(rate, t.SpansPerSecond)
		p99 = append(p99, t.P99Ms)
		errs = append(errs, float64(t.Errors))
	}
	summary := [][]cell{
		{txt("throughput"), num("%.0f spans/s", r.SpansPerSecond)},
		{txt("spans acked / refused / failed"), num("%d / %d / %d", r.Spans.Acked, r.Spans.Refused, r.Spans.Failed)},
		{txt("log records acked / refused / failed"), num("%d / %d / %d", r.Logs.Acked, r.Logs.Refused, r.Logs.Failed)},
		{txt("metric points acked / refused / failed"), num("%d / %d / %d", r.Points.Acked, r.Points.Refused, r.Points.Failed)},
		{txt("ack latency p50 / p90 / p99 / max"), num("%.2f / %.2f / %.2f / %.2f ms", r.AckLatencyMs.P50, r.AckLatencyMs.P90, r.AckLatencyMs.P99, r.AckLatencyMs.Max)},
	}
	for code, n := range r.ErrorsByCode {
		summary = append(summary, []cell{txt("errors " + code), num("%d", n)})
	}
	if q := r.Queryable; q != nil {
		summary = append(summary, []cell{txt("ack → queryable p50 / p99"), num("%.0f / %.0f ms", q.P50, q.P99)})
	}
	if s := r.Server; s != nil {
		summary = append(summary, []cell{txt("server CPU per item"), num("%.2f µs", s.CPUMicrosPerSpan)},
			[]cell{txt("server max RSS"), num("%s", FormatBytes(s.MaxRSSBytes))},
			[]cell{txt("object store bytes per item"), num("%.1f", s.ObjectBytesPerSpan)})
	}
	var hl []string
	var hv []float64
	for _, b := range r.AckHistogram {
		hl = append(hl, fmt.Sprintf("≤%.3g", b.UpToMs))
		hv = append(hv, float64(b.Count))
	}
	p.Sections = []htmlSection{
		{Title: "Summary", Rows: summary},
		{Title: "Throughput over time", Chart: lineChart("acknowledged spans per second", "second", "spans/s", x, series{"spans/s", rate})},
		{Title: "Acknowledgement latency over time", Chart: lineChart("p99 per second", "second", "ms", x, series{"p99 ms", p99}, series{"errors", errs})},
		{Title: "Acknowledgement latency histogram", Chart: barChart("requests by latency (ms)", "requests", hl, func(v float64) string { return formatCount(v) }, series{"requests", hv})},
	}
	return page.Execute(w, p)
}

// WriteHTML writes the query report as a page with charts.
func (r *QueryReport) WriteHTML(w io.Writer) error {
	p := htmlPage{Title: "strata bench query",
		Subtitle: fmt.Sprintf("%d warm runs per query at concurrency %d on %s (%d cores), %s", r.Runs, r.Concurrency, r.Machine.Host, r.Machine.Cores, r.Started.Format("2006-01-02 15:04 MST"))}
	var names []string
	byTarget := map[string][]float64{}
	var targets []string
	rows := [][]cell{}
	for _, q := range r.Queries {
		names = append(names, q.Name)
	}
	for _, res := range r.Results {
		if _, ok := byTarget[res.Target]; !ok {
			targets = append(targets, res.Target)
			byTarget[res.Target] = make([]float64, len(names))
		}
		for i, n := range names {
			if n == res.Query {
				byTarget[res.Target][i] = res.Warm.P50
			}
		}
		rows = append(rows, []cell{txt(res.Query), txt(res.Target), num("%d", res.Rows), num("%.1f", res.ColdMs), num("%.1f", res.Warm.P50), num("%.1f", res.Warm.P95), num("%.1f", res.Warm.P99), num("%.1f", res.WarmQPS), txt(res.Error)})
	}
	var ss []series
	for _, t := range targets {
		ss = append(ss, series{t, byTarget[t]})
	}
	p.Sections = []htmlSection{
		{Title: "Warm median latency per query", Chart: barChart("warm p50 (ms)", "ms", names, func(v float64) string { return fmt.Sprintf("%.1f", v) }, ss...)},
		{Title: "All figures", Header: []string{"query", "target", "rows", "cold ms", "p50 ms", "p95 ms", "p99 ms", "runs/s", "error"}, Rows: rows},
	}
	if d := r.DataSet; d != nil {
		p.Sections = append(p.Sections, htmlSection{Title: "Data set", Rows: [][]cell{
			{txt("rows in the last hour / 24 h / all"), num("%d / %d / %d", d.RowsLastHour, d.RowsLast24h, d.Rows)},
			{txt("object store bytes"), num("%s", FormatBytes(float64(d.Bytes)))},
		}})
	}
	return page.Execute(w, p)
}

// WriteHTML writes the plan as a page with its capacity breakdown.
func (p *Plan) WriteHTML(w io.Writer) error {
	in := p.Inputs
	pg := htmlPage{Title: "strata capacity plan", Notes: p.Notes,
		Subtitle: fmt.Sprintf("%.0f spans/s, %.0f logs/s, %.0f metric points/s, peak ×%.1f, %v days retention, %.1f dashboard queries/s; nodes like %s (%d cores, %s) at %.0f%% utilization",
			in.SpansPerSecond, in.LogsPerSecond, in.PointsPerSecond, in.PeakFactor, float64(in.Retention), in.QueriesPerSecond, p.Machine.Host, p.Machine.Cores, FormatBytes(float64(p.Machine.MemoryBytes)), in.Utilization*100)}
	var roles []string
	var counts []float64
	for _, l := range p.Nodes() {
		roles = append(roles, l.Item)
		counts = append(counts, l.Value)
	}
	var storeL []string
	var storeV []float64
	rows := [][]cell{}
	for _, l := range p.Lines {
		rows = append(rows, []cell{txt(l.Section), txt(l.Item), num("%s", l.FormatValue()), {Text: l.From, Small: true}})
		if l.Unit == "bytes" {
			storeL = append(storeL, l.Item)
			storeV = append(storeV, l.Value/(1<<30))
		}
	}
	qrows := [][]cell{}
	var qn []string
	var qv []float64
	for _, q := range p.Queries {
		qrows = append(qrows, []cell{txt(q.Query), num("%.0f h", q.WindowHours), num("%.1f", q.MeasuredMs), num("%.1f×", q.Scale), num("%.1f", q.ProjectedMs), num("%.3f", q.NodeSecPerSec)})
		qn = append(qn, q.Query)
		qv = append(qv, q.NodeSecPerSec)
	}
	gib := func(v float64) string { return FormatBytes(v * (1 << 30)) }
	pg.Sections = []htmlSection{
		{Title: "Nodes per role", Chart: barChart("nodes", "nodes", roles, func(v float64) string { return formatCount(v) }, series{"nodes", counts})},
		{Title: "Storage", Chart: barChart("GiB", "GiB", storeL, gib, series{"GiB", storeV})},
		{Title: "Every figure and where it comes from", Header: []string{"role", "item", "value", "from"}, Rows: rows},
	}
	if len(p.Queries) > 0 {
		pg.Sections = append(pg.Sections, htmlSection{Title: "Query cost at the planned volume",
			Chart:  barChart("node-seconds per second at peak, by query", "node·s/s", qn, func(v float64) string { return fmt.Sprintf("%.2f", v) }, series{"node·s/s", qv}),
			Header: []string{"query", "window", "measured ms", "× data", "projected ms", "node·s/s"}, Rows: qrows})
	}
	return page.Execute(w, pg)
}
