package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
)

// IngestOptions configure a load run against an OTLP endpoint.
type IngestOptions struct {
	Endpoint    string // http://host:4318 or host:4317
	Protocol    string // "http" or "grpc"
	Compression string // "none", "gzip" or "zstd"
	Workers     int
	Rate        float64 // spans/s in total; 0: as fast as acknowledged
	Duration    time.Duration
	Workload    Workload
	// MetricsURL is the server's Prometheus endpoint; when set, the report
	// includes its CPU, memory and (for strata) bytes written per span.
	MetricsURL string
	// QueryURL is strata's query API; when set, the run measures the time
	// from acknowledgement to queryable.
	QueryURL string
	Timeout  time.Duration // per request
}

// Validate reports options that cannot run.
func (o *IngestOptions) Validate() error {
	switch {
	case o.Endpoint == "":
		return errors.New("no endpoint")
	case o.Protocol == "http" && !strings.Contains(o.Endpoint, "://"):
		o.Endpoint = "http://" + o.Endpoint // host:port, as for gRPC
	case o.Protocol != "http" && o.Protocol != "grpc":
		return fmt.Errorf("protocol %q: want http or grpc", o.Protocol)
	case o.Compression != "none" && o.Compression != "gzip" && o.Compression != "zstd":
		return fmt.Errorf("compression %q: want none, gzip or zstd", o.Compression)
	case o.Workers < 1:
		return fmt.Errorf("workers %d: want at least 1", o.Workers)
	case o.Rate < 0 || math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0):
		return fmt.Errorf("rate %v: want spans per second ≥ 0 (0: as fast as acknowledged)", o.Rate)
	case o.Duration <= 0:
		return fmt.Errorf("duration %v: want a positive duration", o.Duration)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return o.Workload.Validate()
}

// Counts of items (spans, log records, points) by outcome.
type Counts struct {
	Acked   int64 `json:"acked"`
	Refused int64 `json:"refused"` // the server asked to retry later (429, RESOURCE_EXHAUSTED, 503)
	Failed  int64 `json:"failed"`  // rejected or not answered
}

// IngestReport is the outcome of a load run.
type IngestReport struct {
	Kind    string  `json:"kind"` // "ingest", so bench plan can tell reports apart
	Machine Machine `json:"machine"`
	Options struct {
		Endpoint, Protocol, Compression string
		Workers                         int
		Rate                            float64
		Duration                        string
		Workload                        Workload
	} `json:"options"`
	Elapsed        float64          `json:"elapsed_seconds"`
	Spans          Counts           `json:"spans"`
	Logs           Counts           `json:"logs"`
	Points         Counts           `json:"points"`
	Requests       int64            `json:"requests"`
	ErrorsByCode   map[string]int64 `json:"errors_by_code"`
	FirstFailure   string           `json:"first_failure,omitempty"` // the first failed request's error
	SpansPerSecond float64          `json:"spans_per_second"`
	AckLatencyMs   Percentiles      `json:"ack_latency_ms"`
	AckHistogram   []Bucket         `json:"ack_latency_histogram"`
	WireBytes      int64            `json:"wire_bytes"` // request bodies acknowledged, before compression
	Timeline       []TimelinePoint  `json:"timeline"`
	Server         *ServerStats     `json:"server,omitempty"`
	Queryable      *Percentiles     `json:"time_to_queryable_ms,omitempty"`
	Interrupted    bool             `json:"interrupted"`
	Notes          []string         `json:"notes,omitempty"`
	latencies      []float64
}

// TimelinePoint is one second of the run.
type TimelinePoint struct {
	Second         int     `json:"second"`
	SpansPerSecond float64 `json:"spans_per_second"`
	P99Ms          float64 `json:"p99_ms"`
	Errors         int64   `json:"errors"`
}

// Percentiles of a distribution.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func percentiles(v []float64) Percentiles {
	if len(v) == 0 {
		return Percentiles{}
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	at := func(q float64) float64 { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Percentiles{N: len(s), P50: at(0.5), P90: at(0.9), P95: at(0.95), P99: at(0.99), Max: s[len(s)-1]}
}

// sender sends one encoded request and classifies the answer.
type sender interface {
	send(ctx context.Context, signal string, body []byte) (code string, outcome int, err error)
	close()
}

const (
	outcomeAcked = iota
	outcomeRefused
	outcomeFailed
)

// RunIngest sends the workload until the duration is up or ctx ends (the
// report then says Interrupted). Progress lines go to progress once a second.
func RunIngest(ctx context.Context, o IngestOptions, progress io.Writer) (*IngestReport, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := preflight(o); err != nil {
		return nil, err
	}
	var bar *Progress
	if progress != nil {
		bar = NewProgress(progress)
	}
	gen, err := NewGenerator(o.Workload)
	if err != nil {
		return nil, err
	}
	snd, err := newSender(o)
	if err != nil {
		return nil, err
	}
	defer snd.close()
	rep := &IngestReport{Kind: "ingest", Machine: ThisMachine(), ErrorsByCode: map[string]int64{}}
	rep.Options.Endpoint, rep.Options.Protocol, rep.Options.Compression = o.Endpoint, o.Protocol, o.Compression
	rep.Options.Workers, rep.Options.Rate, rep.Options.Duration, rep.Options.Workload = o.Workers, o.Rate, o.Duration.String(), o.Workload

	var before *promSample
	if o.MetricsURL != "" {
		if before, err = scrape(o.MetricsURL); err != nil {
			return nil, fmt.Errorf("metrics url: %w", err)
		}
	}
	runCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	var (
		mu        sync.Mutex
		acked     atomic.Int64
		errs      atomic.Int64
		window    []float64
		rssMax    float64
		anonMax   float64
		wg        sync.WaitGroup
		start     = time.Now()
		perWorker = o.Rate / float64(o.Workers)
	)
	record := func(signal string, items, size int, code string, outcome int, err error, lat time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		rep.Requests++
		c := map[string]*Counts{"traces": &rep.Spans, "logs": &rep.Logs, "metrics": &rep.Points}[signal]
		switch outcome {
		case outcomeAcked:
			c.Acked += int64(items)
			rep.WireBytes += int64(size)
			ms := float64(lat.Microseconds()) / 1000
			rep.latencies = append(rep.latencies, ms)
			window = append(window, ms)
			if signal == "traces" {
				acked.Add(int64(items))
			}
		case outcomeRefused:
			c.Refused += int64(items)
			rep.ErrorsByCode[code]++
			errs.Add(1)
		default:
			c.Failed += int64(items)
			rep.ErrorsByCode[code]++
			errs.Add(1)
			if rep.FirstFailure == "" && err != nil {
				rep.FirstFailure = err.Error()
			}
		}
	}
	for w := range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := gen.NewFiller(uint64(w) + 1)
			var bufs [3][]byte
			sentSpans := 0.0
			// A refused or failed request makes the worker wait before the
			// next, as OTLP exporters do, 50 ms doubling up to 2 s (QA: a
			// dead server got 621k connection attempts in 24 s).
			var pause time.Duration
			for runCtx.Err() == nil {
				if pause > 0 {
					select {
					case <-time.After(pause):
					case <-runCtx.Done():
						return
					}
				}
				if perWorker > 0 {
					// Pace: do not get ahead of the rate.
					due := start.Add(time.Duration(sentSpans / perWorker * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-time.After(d):
						case <-runCtx.Done():
							return
						}
					}
				}
				for _, r := range f.Next(&bufs, time.Now()) {
					// A request sent gets its answer (or its timeout), even
					// after the run's end or Ctrl-C, so every item sent is
					// counted as acknowledged, refused or failed.
					t0 := time.Now()
					reqCtx, cancelReq := context.WithTimeout(context.WithoutCancel(ctx), o.Timeout)
					code, outcome, err := snd.send(reqCtx, r.Signal, r.Body)
					cancelReq()
					record(r.Signal, r.Items, len(r.Body), code, outcome, err, time.Since(t0))
					if outcome == outcomeAcked {
						pause = 0
					} else {
						pause = min(max(2*pause, 50*time.Millisecond), 2*time.Second)
					}
					if r.Signal == "traces" {
						sentSpans += float64(r.Items)
					}
				}
			}
		}()
	}
	var probe *queryProbe
	if o.QueryURL != "" {
		probe = startQueryProbe(runCtx, o, snd)
	}
	// Progress, once a second, until the workers are done.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastAcked, lastErrs int64
	sec := 0
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			sec++
			a, e := acked.Load(), errs.Load()
			mu.Lock()
			p := percentiles(window)
			window = window[:0]
			mu.Unlock()
			pt := TimelinePoint{Second: sec, SpansPerSecond: float64(a - lastAcked), P99Ms: p.P99, Errors: e - lastErrs}
			rep.Timeline = append(rep.Timeline, pt)
			lastAcked, lastErrs = a, e
			if o.MetricsURL != "" {
				if s, err := scrape(o.MetricsURL); err == nil {
					rssMax = max(rssMax, s.get("process_resident_memory_bytes"))
					anonMax = max(anonMax, s.get("strata_process_anon_resident_bytes"))
				}
			}
			if bar != nil {
				bar.Update("%s %5.0fs  %9.0f spans/s  acked %11d  errors %7d  p99 %7.1f ms ",
					ProgressBar(float64(sec)/o.Duration.Seconds()), float64(sec), pt.SpansPerSecond, a, e, p.P99)
			}
		}
	}
	if bar != nil {
		bar.Done()
	}
	rep.Elapsed = time.Since(start).Seconds()
	rep.Interrupted = ctx.Err() != nil
	rep.SpansPerSecond = float64(rep.Spans.Acked) / rep.Elapsed
	rep.AckLatencyMs = percentiles(rep.latencies)
	rep.AckHistogram = histogram(rep.latencies)
	if probe != nil {
		q := probe.result()
		rep.Queryable = &q
	}
	if before != nil {
		// Let the server flush what it acknowledged, so bytes written and CPU
		// used count all of it.
		waitFlushed(o.MetricsURL, 60*time.Second)
		after, err := scrape(o.MetricsURL)
		if err == nil {
			rep.Server = serverStats(before, after, rep, max(rssMax, after.get("process_resident_memory_bytes")))
			rep.Server.MaxAnonBytes = anonMax
			if acked := float64(rep.Spans.Acked + rep.Logs.Acked + rep.Points.Acked); rep.Server.ServerItems > 1.05*acked {
				rep.Notes = append(rep.Notes, fmt.Sprintf("the server acknowledged %.0f items over the run, this run %.0f: another client "+
					"was sending too, so CPU and bytes are per item the server took, and the throughput is this run's alone", rep.Server.ServerItems, acked))
			}
		} else {
			rep.Notes = append(rep.Notes, "could not read server metrics after the run: "+err.Error())
		}
	}
	return rep, nil
}

// waitFlushed waits until a strata server has flushed everything it
// acknowledged (other servers have no such metric: a short pause instead).
func waitFlushed(metricsURL string, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		s, err := scrape(metricsURL)
		if err != nil {
			return
		}
		v, ok := (*s)["strata_ingest_unflushed_rows"]
		if !ok {
			time.Sleep(2 * time.Second)
			return
		}
		if v == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Progress writes a progress line: redrawn in place on a terminal, and
// elsewhere (a log file, a pipe) a line of its own every 10 s, not one
// endless line of carriage returns.
type Progress struct {
	w    io.Writer
	tty  bool
	last time.Time
}

func NewProgress(w io.Writer) *Progress {
	f, ok := w.(*os.File)
	tty := false
	if ok {
		if fi, err := f.Stat(); err == nil {
			tty = fi.Mode()&os.ModeCharDevice != 0
		}
	}
	return &Progress{w: w, tty: tty}
}

// Update shows the line; Done ends it.
func (p *Progress) Update(format string, args ...any) {
	switch {
	case p.tty:
		fmt.Fprintf(p.w, "\r"+format, args...)
	case time.Since(p.last) >= 10*time.Second:
		p.last = time.Now()
		fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func (p *Progress) Done() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

func ProgressBar(frac float64) string {
	const width = 20
	n := int(math.Min(1, frac) * width)
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

// ServerStats are the server's own figures over the run.
type ServerStats struct {
	CPUSeconds         float64 `json:"cpu_seconds"`
	CPUMicrosPerSpan   float64 `json:"cpu_us_per_span"`
	MaxRSSBytes        float64 `json:"max_rss_bytes"`
	MaxAnonBytes       float64 `json:"max_anon_rss_bytes,omitempty"` // strata: RSS without the mapped binary
	ObjectBytes        float64 `json:"object_store_bytes,omitempty"`
	ObjectBytesPerSpan float64 `json:"object_store_bytes_per_span,omitempty"` // per item, in fact
	ObjectFiles        float64 `json:"object_store_files,omitempty"`
	WALBytesPerItem    float64 `json:"wal_bytes_per_item,omitempty"`
	// ServerItems are the items the server acknowledged over the run
	// (strata_ingest_rows_total), from every client: the per-item figures
	// divide by them.
	ServerItems float64 `json:"server_items,omitempty"`
}

func serverStats(before, after *promSample, rep *IngestReport, rss float64) *ServerStats {
	items := float64(rep.Spans.Acked + rep.Logs.Acked + rep.Points.Acked)
	st := &ServerStats{CPUSeconds: after.get("process_cpu_seconds_total") - before.get("process_cpu_seconds_total"), MaxRSSBytes: rss}
	// What the server took, not what this run sent: another client's
	// items doubled the figures (QA). Not every server counts rows.
	if n := after.get("strata_ingest_rows_total") - before.get("strata_ingest_rows_total"); n > 0 {
		st.ServerItems, items = n, n
	}
	if items > 0 {
		st.CPUMicrosPerSpan = st.CPUSeconds * 1e6 / items
	}
	if b := after.get("strata_ingest_flushed_bytes_total") - before.get("strata_ingest_flushed_bytes_total"); b > 0 {
		st.ObjectBytes = b
		st.ObjectBytesPerSpan = b / items
	}
	st.ObjectFiles = after.get("strata_ingest_flushed_files_total") - before.get("strata_ingest_flushed_files_total")
	if b := after.get("strata_ingest_wal_written_bytes_total") - before.get("strata_ingest_wal_written_bytes_total"); b > 0 && items > 0 {
		st.WALBytesPerItem = b / items
	}
	return st
}

// promSample is one scrape of a Prometheus text endpoint (unlabelled series only).
type promSample map[string]float64

func (p *promSample) get(name string) float64 { return (*p)[name] }

func scrape(url string) (*promSample, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	s := promSample{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			s[name] = v
		}
	}
	return &s, nil
}

func newSender(o IngestOptions) (sender, error) {
	if o.Protocol == "grpc" {
		return newGRPCSender(o)
	}
	return newHTTPSender(o), nil
}

// httpSender posts OTLP/HTTP protobuf.
type httpSender struct {
	o      IngestOptions
	client *http.Client
	zpool  sync.Pool
}

func newHTTPSender(o IngestOptions) *httpSender {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = o.Workers * 2
	return &httpSender{o: o, client: &http.Client{Transport: tr, Timeout: o.Timeout}}
}

func (s *httpSender) close() { s.client.CloseIdleConnections() }

func (s *httpSender) compress(body []byte) []byte {
	var buf bytes.Buffer
	switch s.o.Compression {
	case "gzip":
		w := gzip.NewWriter(&buf)
		w.Write(body)
		w.Close()
	case "zstd":
		enc, _ := s.zpool.Get().(*zstd.Encoder)
		if enc == nil {
			enc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		}
		out := enc.EncodeAll(body, nil)
		s.zpool.Put(enc)
		return out
	default:
		return body
	}
	return buf.Bytes()
}

func (s *httpSender) send(ctx context.Context, signal string, body []byte) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(s.o.Endpoint, "/")+"/v1/"+signal, bytes.NewReader(s.compress(body)))
	if err != nil {
		return "request", outcomeFailed, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if s.o.Compression != "none" {
		req.Header.Set("Content-Encoding", s.o.Compression)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "connection", outcomeFailed, err
	}
	defer func() {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}()
	code := strconv.Itoa(resp.StatusCode)
	switch {
	case resp.StatusCode == 200:
		return code, outcomeAcked, nil
	case resp.StatusCode == 429 || resp.StatusCode == 503:
		return code, outcomeRefused, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return code, outcomeFailed, fmt.Errorf("HTTP %d from %s: %q", resp.StatusCode, req.URL, bytes.TrimSpace(msg))
}

// grpcSender calls the OTLP Export methods with pre-encoded messages.
type grpcSender struct {
	conn *grpc.ClientConn
	opts []grpc.CallOption
}

var grpcMethods = map[string]string{
	"traces":  "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
	"logs":    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
	"metrics": "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
}

func newGRPCSender(o IngestOptions) (*grpcSender, error) {
	target := strings.TrimPrefix(strings.TrimPrefix(o.Endpoint, "http://"), "grpc://")
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("grpc endpoint %q: %w", o.Endpoint, err)
	}
	opts := []grpc.CallOption{grpc.ForceCodec(rawCodec{})}
	if o.Compression != "none" {
		if encoding.GetCompressor(o.Compression) == nil {
			return nil, fmt.Errorf("grpc compression %q is not available", o.Compression)
		}
		opts = append(opts, grpc.UseCompressor(o.Compression))
	}
	return &grpcSender{conn: conn, opts: opts}, nil
}

func (s *grpcSender) close() { s.conn.Close() }

func (s *grpcSender) send(ctx context.Context, signal string, body []byte) (string, int, error) {
	var reply rawMessage
	err := s.conn.Invoke(ctx, grpcMethods[signal], rawMessage(body), &reply, s.opts...)
	if err == nil {
		return "OK", outcomeAcked, nil
	}
	st, _ := status.FromError(err)
	switch st.Code().String() {
	case "ResourceExhausted", "Unavailable":
		return st.Code().String(), outcomeRefused, err
	}
	return st.Code().String(), outcomeFailed, err
}

// preflight checks that the endpoint accepts connections, so a typo fails
// at once with a clear message instead of a run full of errors.
func preflight(o IngestOptions) error {
	hostport := o.Endpoint
	if u, err := url.Parse(o.Endpoint); err == nil && u.Host != "" {
		hostport = u.Host
	}
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return fmt.Errorf("endpoint %q: want host:port or http://host:port", o.Endpoint)
	}
	c, err := net.DialTimeout("tcp", hostport, 3*time.Second)
	if err != nil {
		return fmt.Errorf("endpoint %s is unreachable: %w", o.Endpoint, err)
	}
	c.Close()
	return nil
}

// WriteText prints the report for a person at a terminal.
func (r *IngestReport) WriteText(w io.Writer) {
	status := "complete"
	if r.Interrupted {
		status = "interrupted — partial results"
	}
	fmt.Fprintf(w, "ingest run (%s): %s over %s, %d workers, %.1fs\n", status, r.Options.Endpoint, r.Options.Protocol, r.Options.Workers, r.Elapsed)
	fmt.Fprintf(w, "  throughput     %12.0f spans/s acknowledged\n", r.SpansPerSecond)
	fmt.Fprintf(w, "  spans          %12d acked  %10d refused  %10d failed\n", r.Spans.Acked, r.Spans.Refused, r.Spans.Failed)
	if r.Logs != (Counts{}) {
		fmt.Fprintf(w, "  log records    %12d acked  %10d refused  %10d failed\n", r.Logs.Acked, r.Logs.Refused, r.Logs.Failed)
	}
	if r.Points != (Counts{}) {
		fmt.Fprintf(w, "  metric points  %12d acked  %10d refused  %10d failed\n", r.Points.Acked, r.Points.Refused, r.Points.Failed)
	}
	l := r.AckLatencyMs
	fmt.Fprintf(w, "  ack latency    p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (%d requests)\n", l.P50, l.P90, l.P99, l.Max, l.N)
	if len(r.ErrorsByCode) > 0 {
		codes := make([]string, 0, len(r.ErrorsByCode))
		for c, n := range r.ErrorsByCode {
			codes = append(codes, fmt.Sprintf("%s×%d", c, n))
		}
		sort.Strings(codes)
		fmt.Fprintf(w, "  errors by code %s\n", strings.Join(codes, "  "))
	}
	if r.FirstFailure != "" {
		fmt.Fprintf(w, "  first failure  %s\n", r.FirstFailure)
	}
	if q := r.Queryable; q != nil {
		fmt.Fprintf(w, "  ack→queryable  p50 %.0f ms  p99 %.0f ms  max %.0f ms  (%d probes)\n", q.P50, q.P99, q.Max, q.N)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "  server CPU     %.2f s, %.2f µs per item;  max RSS %.0f MiB", s.CPUSeconds, s.CPUMicrosPerSpan, s.MaxRSSBytes/(1<<20))
		if s.MaxAnonBytes > 0 {
			fmt.Fprintf(w, " (anonymous %.0f MiB)", s.MaxAnonBytes/(1<<20))
		}
		fmt.Fprintln(w)
		if s.ObjectBytes > 0 {
			fmt.Fprintf(w, "  object store   %.1f MiB written, %.1f bytes per item\n", s.ObjectBytes/(1<<20), s.ObjectBytesPerSpan)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}
