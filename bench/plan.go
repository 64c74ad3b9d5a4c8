package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"
)

// PlanInputs are what an operator expects to run.
type PlanInputs struct {
	SpansPerSecond   float64 `json:"spans_per_second"`
	LogsPerSecond    float64 `json:"logs_per_second"`
	PointsPerSecond  float64 `json:"metric_points_per_second"`
	AvgItemBytes     float64 `json:"avg_item_bytes"` // OTLP protobuf bytes per item; 0: the profile's
	Retention        Days    `json:"retention_days"`
	QueriesPerSecond float64 `json:"queries_per_second"`
	PeakFactor       float64 `json:"peak_factor"`
	// Utilization is the busy fraction each node is planned for; the rest
	// absorbs bursts, restarts and a node lost.
	Utilization float64 `json:"utilization"`
	// Outage is how long an object store outage the WAL must absorb
	// without refusing data.
	Outage        time.Duration `json:"outage"`
	CacheNodeSSD  int64         `json:"cache_node_ssd_bytes"`
	FlushInterval time.Duration `json:"flush_interval"`
	FlushBytes    int64         `json:"flush_bytes"` // WAL segment size that forces a flush
}

// Days is a retention in days.
type Days float64

// DefaultPlanInputs are the inputs bench plan starts from.
func DefaultPlanInputs() PlanInputs {
	return PlanInputs{Retention: 30, PeakFactor: 1.5, Utilization: 0.6, Outage: 15 * time.Minute,
		CacheNodeSSD: 1 << 40, FlushInterval: time.Second, FlushBytes: 16 << 20}
}

// Validate reports inputs that make no plan.
func (in PlanInputs) Validate() error {
	bad := func(v float64) bool { return v < 0 || math.IsNaN(v) || math.IsInf(v, 0) }
	switch {
	case bad(in.SpansPerSecond) || bad(in.LogsPerSecond) || bad(in.PointsPerSecond) || bad(in.QueriesPerSecond) || bad(in.AvgItemBytes):
		return errors.New("rates and sizes must be finite and not negative")
	case in.SpansPerSecond+in.LogsPerSecond+in.PointsPerSecond == 0:
		return errors.New("nothing to plan for: give --spans-per-second, --logs-per-second or --points-per-second")
	case in.Retention <= 0:
		return fmt.Errorf("retention %v days: want more than 0", float64(in.Retention))
	case in.PeakFactor < 1 || bad(in.PeakFactor):
		return fmt.Errorf("peak factor %v: want at least 1 (peak rate over average)", in.PeakFactor)
	case in.Utilization <= 0 || in.Utilization > 1:
		return fmt.Errorf("utilization %v: want a fraction in (0, 1]", in.Utilization)
	case in.Outage < 0 || in.CacheNodeSSD <= 0 || in.FlushInterval <= 0 || in.FlushBytes <= 0:
		return errors.New("outage must not be negative; cache SSD, flush interval and flush bytes must be positive")
	}
	return nil
}

// Profile is the measurements a plan scales from: reports written by
// bench ingest and bench query on the hardware to plan for.
type Profile struct {
	Ingest     *IngestReport
	IngestFile string
	Query      *QueryReport
	QueryFile  string
}

// LoadProfile reads report files; each is told apart by its "kind".
func LoadProfile(paths []string) (Profile, error) {
	var p Profile
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return p, err
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(b, &head); err != nil {
			return p, fmt.Errorf("%s: not a bench report: %w", path, err)
		}
		switch head.Kind {
		case "ingest":
			p.Ingest, p.IngestFile = &IngestReport{}, path
			err = json.Unmarshal(b, p.Ingest)
		case "query":
			p.Query, p.QueryFile = &QueryReport{}, path
			err = json.Unmarshal(b, p.Query)
		default:
			return p, fmt.Errorf("%s: kind %q is not a report of bench ingest or bench query", path, head.Kind)
		}
		if err != nil {
			return p, fmt.Errorf("%s: %w", path, err)
		}
	}
	if p.Ingest == nil {
		return p, errors.New("no ingest report among the profiles: run 'strata bench ingest --metrics-url … --out ingest.json' first")
	}
	if p.Ingest.Spans.Acked+p.Ingest.Logs.Acked+p.Ingest.Points.Acked == 0 {
		return p, fmt.Errorf("%s: the run acknowledged nothing", p.IngestFile)
	}
	if p.Ingest.Server == nil || p.Ingest.Server.ObjectBytesPerSpan == 0 {
		return p, fmt.Errorf("%s: no server figures (CPU, object store bytes); run bench ingest against strata with --metrics-url", p.IngestFile)
	}
	return p, nil
}

// PlanLine is one figure of a plan and where it comes from.
type PlanLine struct {
	Section string  `json:"section"`
	Item    string  `json:"item"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"` // "nodes", "bytes", "per second", …
	From    string  `json:"from"` // the measurements and arithmetic behind it
}

// PlanQuery is one suite query's cost at the planned volume.
type PlanQuery struct {
	Query          string  `json:"query"`
	WindowHours    float64 `json:"window_hours"`
	MeasuredMs     float64 `json:"measured_ms"`      // node time per run, measured
	Scale          float64 `json:"scale"`            // data it reads, planned over measured
	ProjectedMs    float64 `json:"projected_ms"`     // node time per run at the planned volume
	NodeSecPerSec  float64 `json:"node_sec_per_sec"` // at the peak query rate
	TooSlowToServe bool    `json:"too_slow"`         // projected over one second
}

// Plan is a capacity plan.
type Plan struct {
	Kind    string      `json:"kind"` // "plan"
	Inputs  PlanInputs  `json:"inputs"`
	Machine Machine     `json:"machine"` // every node is planned as one of these
	Lines   []PlanLine  `json:"lines"`
	Queries []PlanQuery `json:"queries,omitempty"`
	Notes   []string    `json:"notes,omitempty"`
}

// Figures of this build not measured by a profile (bench/RESULTS.md).
const (
	compactMBPerCore   = 7.4  // compressed input merged per core, MB/s: BenchmarkCompact 9.1 for the small first merge, ~30 % less for final merges (text at zstd 6), half the bytes each
	writeAmplification = 1.96 // bytes written by compaction per byte flushed (sustained run: 2.96 − 1)
	targetFileBytes    = 256 << 20
	catalogRowBytes    = 400 // a files row and its indexes, without the trace filter
	filterBitsPerTrace = 9.0 // binary fuse filter
)

// MakePlan turns a profile and inputs into a plan.
func MakePlan(p Profile, in PlanInputs) (*Plan, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	ing := p.Ingest
	srv := ing.Server
	plan := &Plan{Kind: "plan", Inputs: in, Machine: ing.Machine}
	add := func(section, item string, v float64, unit, from string, args ...any) {
		plan.Lines = append(plan.Lines, PlanLine{Section: section, Item: item, Value: v, Unit: unit, From: fmt.Sprintf(from, args...)})
	}
	ingFrom := fmt.Sprintf("bench ingest %s (%s, %d cores, %s)", p.IngestFile, ing.Options.Workload.Style, ing.Machine.Cores, ing.Machine.MeasuredAt.Format("2006-01-02"))

	// Items and their size relative to the measured ones.
	items := float64(ing.Spans.Acked + ing.Logs.Acked + ing.Points.Acked)
	wirePerItem := float64(ing.WireBytes) / items
	size := 1.0
	if in.AvgItemBytes > 0 && wirePerItem > 0 {
		size = in.AvgItemBytes / wirePerItem
		plan.Notes = append(plan.Notes, fmt.Sprintf("per-item costs scaled by %.2f: %.0f planned bytes per item over %.0f measured", size, in.AvgItemBytes, wirePerItem))
	}
	avg := in.SpansPerSecond + in.LogsPerSecond + in.PointsPerSecond
	peak := avg * in.PeakFactor
	U := in.Utilization

	// Ingest. A run capped by --rate that the server kept up with measured
	// that rate, not what a node can take: its CPU per item says that.
	nodeRate := items / ing.Elapsed / size
	rateFrom := "items/s per node measured"
	if capped := ing.Options.Rate > 0 && ing.Spans.Refused+ing.Spans.Failed == 0; capped {
		if srv.CPUMicrosPerSpan <= 0 || ing.Machine.Cores <= 0 {
			return nil, fmt.Errorf("profile %s: a run capped at --rate %.0f that the server kept up with measures that rate, not a node's capacity: run bench ingest without --rate, or with --metrics-url", p.IngestFile, ing.Options.Rate)
		}
		nodeRate = float64(ing.Machine.Cores) * 1e6 / (srv.CPUMicrosPerSpan * size)
		rateFrom = fmt.Sprintf("items/s per node: %d cores ÷ %.1f µs CPU per item, measured at --rate %.0f (a run without --rate measures capacity directly)", ing.Machine.Cores, srv.CPUMicrosPerSpan*size, ing.Options.Rate)
	}
	ingestNodes := math.Ceil(peak / (nodeRate * U))
	add("ingest", "ingest nodes", ingestNodes, "nodes", "peak %.0f items/s ÷ (%.0f %s × %.0f%% utilization); %s", peak, nodeRate, rateFrom, U*100, ingFrom)
	if srv.CPUMicrosPerSpan > 0 {
		add("ingest", "ingest CPU", peak*srv.CPUMicrosPerSpan*size/1e6/U, "cores", "peak %.0f items/s × %.1f µs CPU per item measured ÷ %.0f%% utilization; %s", peak, srv.CPUMicrosPerSpan*size, U*100, ingFrom)
	}
	if srv.MaxRSSBytes > 0 {
		load := "at full load"
		if ing.Options.Rate > 0 {
			load = fmt.Sprintf("at --rate %.0f", ing.Options.Rate)
		}
		add("ingest", "memory per ingest node", srv.MaxRSSBytes*1.5, "bytes", "max RSS %.0f MiB measured %s × 1.5; %s", srv.MaxRSSBytes/(1<<20), load, ingFrom)
	}
	walPerItem, walFrom := srv.WALBytesPerItem*size, "WAL bytes per item measured"
	if walPerItem == 0 {
		walPerItem, walFrom = wirePerItem*size, "no WAL measurement in the profile: OTLP bytes per item used instead"
	}
	scratch := peak / ingestNodes * walPerItem * in.Outage.Seconds()
	add("ingest", "scratch SSD per ingest node", scratch, "bytes", "%.0f items/s per node at peak × %.0f bytes per item (%s) × %s of object store outage; set --max-scratch-bytes to it; %s",
		peak/ingestNodes, walPerItem, walFrom, in.Outage, ingFrom)

	// Object storage.
	objPerItem := srv.ObjectBytesPerSpan * size
	retSec := float64(in.Retention) * 86400
	stored := avg * objPerItem * retSec
	add("storage", "object storage", stored, "bytes", "%.0f items/s on average × %.1f bytes per item on the object store measured (level-0 files; compacted files are no larger) × %v days; %s",
		avg, objPerItem, float64(in.Retention), ingFrom)
	tables := 0.0
	if in.SpansPerSecond+in.LogsPerSecond > 0 {
		tables++
	}
	if in.PointsPerSecond > 0 {
		tables++
	}
	bytesPerSec := avg * objPerItem
	// A node flushes each table every interval, or sooner when its WAL
	// segment fills.
	walPerNodeSec := avg / ingestNodes * walPerItem
	flushesPerNode := math.Max(tables/in.FlushInterval.Seconds(), walPerNodeSec/float64(in.FlushBytes))
	flushPuts := ingestNodes * flushesPerNode
	compactPuts := bytesPerSec * writeAmplification / targetFileBytes
	add("storage", "object store PUTs", flushPuts+compactPuts, "per second", "%.0f ingest nodes × %.1f flushes/s (%.0f tables every %s, or each %s of WAL at %s/s per node), plus compaction output of %.1f MB/s × write amplification %.1f in %d MiB files (compactor figures: bench/RESULTS.md)",
		ingestNodes, flushesPerNode, tables, in.FlushInterval, FormatBytes(float64(in.FlushBytes)), FormatBytes(walPerNodeSec), bytesPerSec/1e6, writeAmplification, targetFileBytes>>20)
	add("storage", "object store GETs", 2*flushPuts+compactPuts, "per second", "the PUT rates above: every flushed file read once by its cache owner (warming) and once by the compactor, every compacted file once by its cache owner; dashboards read from the cache")
	add("storage", "object store requests per month", (3*flushPuts+2*compactPuts)*86400*30, "requests", "the PUT and GET rates above × 30 days")

	// Catalog: one row per live file plus its trace filter.
	bytesPerHour := bytesPerSec * 3600
	filesPerHour := tables * math.Max(1, math.Ceil(bytesPerHour/tables/targetFileBytes))
	liveFiles := filesPerHour * float64(in.Retention) * 24
	filterPerItem, filterFrom := filterBitsPerTrace/8, "assumed one trace id per row (no catalog measurement in the profile)"
	if q := p.Query; q != nil && q.DataSet != nil && q.DataSet.FilterBytesPerRow > 0 {
		filterPerItem, filterFrom = q.DataSet.FilterBytesPerRow, fmt.Sprintf("trace filter bytes per row measured in the catalog by bench query %s", p.QueryFile)
	}
	catalogBytes := liveFiles*catalogRowBytes + (in.SpansPerSecond+in.LogsPerSecond)*retSec*filterPerItem
	add("catalog", "catalog files (rows)", liveFiles, "files", "%s/h (object storage line) compacted into %d MiB files per table-hour × %v days of retention", FormatBytes(bytesPerHour), targetFileBytes>>20, float64(in.Retention))
	filterBytes := (in.SpansPerSecond + in.LogsPerSecond) * retSec * filterPerItem
	add("catalog", "catalog size", catalogBytes, "bytes", "%.0f files × ~%d bytes, plus %s of trace filters: %.2f bytes per span/log (%s) × retention",
		liveFiles, catalogRowBytes, FormatBytes(filterBytes), filterPerItem, filterFrom)
	if filterBytes > 50<<30 {
		plan.Notes = append(plan.Notes, fmt.Sprintf("trace filters would make the catalog %s: at this volume they belong beside the data on the object store, which strata does not do yet", FormatBytes(catalogBytes)))
	}

	// Compaction.
	compactCores := bytesPerSec * writeAmplification / (compactMBPerCore * 1e6) / U
	cores := float64(max(ing.Machine.Cores, 1))
	add("compactor", "compactor nodes", math.Max(1, math.Ceil(compactCores/cores)), "nodes", "%.1f MB/s flushed × write amplification %.1f ÷ %.1f MB/s merged per core ÷ %.0f%% utilization = %.1f cores (compactor figures: bench/RESULTS.md, not the profile)",
		bytesPerSec/1e6, writeAmplification, compactMBPerCore, U*100, compactCores)

	// Queries and cache.
	q := p.Query
	if q == nil || q.DataSet == nil || q.DataSet.RowsLastHour == 0 {
		plan.Notes = append(plan.Notes, "no query report with a measured data set among the profiles: query and cache nodes are not planned (run 'strata bench query --out query.json')")
		plan.sort()
		return plan, nil
	}
	qFrom := fmt.Sprintf("bench query %s (%d cores, %s, concurrency %d)", p.QueryFile, q.Machine.Cores, q.Machine.MeasuredAt.Format("2006-01-02"), q.Concurrency)
	windows := map[string]float64{}
	for _, s := range q.Queries {
		windows[s.Name] = s.WindowHours
	}
	perHour := float64(q.DataSet.RowsLastHour)
	rowsPerHourPlanned := (in.SpansPerSecond + in.LogsPerSecond) * 3600
	var nodeSec float64
	var n int
	maxWindow := 1.0
	var failed []string
	for _, r := range q.Results {
		if r.Target != "strata" {
			continue
		}
		if r.Errors > 0 || r.Warm.N == 0 {
			failed = append(failed, r.Query)
			continue
		}
		w := windows[r.Query]
		measured := r.Warm.P50
		if r.WarmQPS > 0 {
			measured = 1000 / r.WarmQPS // node time per run at the measured concurrency
		}
		scale := 1.0
		if w > 0 {
			have := perHour * w
			if w > 1 && q.DataSet.RowsLast24h > 0 {
				have = float64(q.DataSet.RowsLast24h) / 24 * w
			}
			scale = rowsPerHourPlanned * w / have
			maxWindow = math.Max(maxWindow, w)
		}
		pq := PlanQuery{Query: r.Query, WindowHours: w, MeasuredMs: measured, Scale: scale, ProjectedMs: measured * scale}
		pq.TooSlowToServe = pq.ProjectedMs > 1000
		plan.Queries = append(plan.Queries, pq)
		nodeSec += pq.ProjectedMs / 1000
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no query succeeded on strata", p.QueryFile)
	}
	if len(failed) > 0 {
		plan.Notes = append(plan.Notes, fmt.Sprintf("left out of the query mix, for errors in %s: %s; the query nodes planned do not count them",
			p.QueryFile, strings.Join(failed, ", ")))
	}
	meanSec := nodeSec / float64(n)
	peakQPS := in.QueriesPerSecond * in.PeakFactor
	for i := range plan.Queries {
		plan.Queries[i].NodeSecPerSec = plan.Queries[i].ProjectedMs / 1000 * peakQPS / float64(n)
	}
	queryNodes := math.Max(1, math.Ceil(peakQPS*meanSec/U))
	add("query", "query nodes", queryNodes, "nodes", "peak %.1f queries/s × %.3f s of node time per query (suite mix, each query's measured time × planned/measured rows in its window: %.0f rows/h planned, %.0f measured) ÷ %.0f%% utilization; %s",
		peakQPS, meanSec, rowsPerHourPlanned, perHour, U*100, qFrom)
	slow := 0
	for _, pq := range plan.Queries {
		if pq.TooSlowToServe {
			slow++
		}
	}
	if slow > 0 {
		// The rate at which the slowest windowed query takes one second.
		worst := 0.0
		for _, pq := range plan.Queries {
			if pq.WindowHours > 0 {
				worst = math.Max(worst, pq.ProjectedMs/rowsPerHourPlanned)
			}
		}
		plan.Notes = append(plan.Notes, fmt.Sprintf("%d of %d suite queries would take over 1 s of node time each at this volume (every suite query stays under 1 s up to about %.0f spans+logs/s); dashboards of that size want pre-aggregated tables, which strata does not build yet", slow, n, 1000/worst/3600))
	}
	hot := bytesPerSec * maxWindow * 3600 * 1.25
	cacheNodes := math.Max(1, math.Ceil(hot/float64(in.CacheNodeSSD)))
	add("cache", "cache nodes", cacheNodes, "nodes", "hot set %s (the longest window of the suite in %s, %.0f h, × %.1f MB/s on the object store from %s × 1.25 for compaction overlap) ÷ %s SSD per node",
		FormatBytes(hot), p.QueryFile, maxWindow, bytesPerSec/1e6, p.IngestFile, FormatBytes(float64(in.CacheNodeSSD)))
	add("cache", "cache SSD per node", math.Min(hot/cacheNodes, float64(in.CacheNodeSSD)), "bytes", "hot set ÷ cache nodes")
	plan.sort()
	return plan, nil
}

var sectionOrder = map[string]int{"ingest": 0, "query": 1, "cache": 2, "compactor": 3, "storage": 4, "catalog": 5}

func (p *Plan) sort() {
	sort.SliceStable(p.Lines, func(i, j int) bool { return sectionOrder[p.Lines[i].Section] < sectionOrder[p.Lines[j].Section] })
}

// Nodes returns the planned nodes per role, in role order.
func (p *Plan) Nodes() []PlanLine {
	var out []PlanLine
	for _, l := range p.Lines {
		if l.Unit == "nodes" {
			out = append(out, l)
		}
	}
	return out
}

// FormatValue prints a plan figure in its unit.
func (l PlanLine) FormatValue() string {
	switch l.Unit {
	case "bytes":
		return FormatBytes(l.Value)
	case "nodes", "files", "requests":
		return fmt.Sprintf("%s %s", formatCount(l.Value), l.Unit)
	case "cores":
		return fmt.Sprintf("%.1f cores", l.Value)
	}
	return fmt.Sprintf("%s %s", formatCount(l.Value), l.Unit)
}

// FormatBytes prints a byte count with a binary unit.
func FormatBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}

func formatCount(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// WriteText prints the plan as a table.
func (p *Plan) WriteText(w io.Writer) {
	in := p.Inputs
	fmt.Fprintf(w, "capacity plan: %.0f spans/s, %.0f logs/s, %.0f points/s (peak ×%.1f), %v days retention, %.1f queries/s; nodes like %s (%d cores, %s), planned at %.0f%% utilization\n\n",
		in.SpansPerSecond, in.LogsPerSecond, in.PointsPerSecond, in.PeakFactor, float64(in.Retention), in.QueriesPerSecond,
		p.Machine.Host, p.Machine.Cores, FormatBytes(float64(p.Machine.MemoryBytes)), in.Utilization*100)
	section := ""
	for _, l := range p.Lines {
		if l.Section != section {
			section = l.Section
			fmt.Fprintf(w, "%s\n", strings.ToUpper(section))
		}
		fmt.Fprintf(w, "  %-32s %18s\n      from: %s\n", l.Item, l.FormatValue(), l.From)
	}
	if len(p.Queries) > 0 {
		fmt.Fprintf(w, "\nQUERIES AT THE PLANNED VOLUME (node time per run)\n  %-36s %8s %12s %9s %14s\n", "query", "window", "measured ms", "× data", "projected ms")
		for _, q := range p.Queries {
			flag := ""
			if q.TooSlowToServe {
				flag = "  > 1 s"
			}
			fmt.Fprintf(w, "  %-36s %7.0fh %12.1f %9.1f %14.1f%s\n", q.Query, q.WindowHours, q.MeasuredMs, q.Scale, q.ProjectedMs, flag)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	if len(p.Notes) > 0 {
		fmt.Fprintln(w)
	}
}
