package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// A report is the result of a run, as -json writes it. Durations are in microseconds
// (fields ending in _us), sizes in bytes (_bytes); field names are stable.
type report struct {
	Mode                 string   `json:"mode"` // closed, open or idle
	Echo                 bool     `json:"echo"`
	URL                  string   `json:"url"`
	Connections          int      `json:"connections"`
	QueriesPerConnection int      `json:"queries_per_connection,omitempty"` // with -q
	DurationUS           int64    `json:"duration_us,omitempty"`            // with -duration, or -idle
	RampUS               int64    `json:"ramp_us,omitempty"`
	Rate                 float64  `json:"rate,omitempty"` // open loop: queries a second in all
	QuerySize            int      `json:"query_size"`
	Capabilities         []string `json:"capabilities"` // of the first connected
	Interrupted          bool     `json:"interrupted"`

	ElapsedUS         int64   `json:"elapsed_us"`
	ConnectionsOpened int64   `json:"connections_opened"`
	QueriesSent       int64   `json:"queries_sent"`
	QueriesCompleted  int64   `json:"queries_completed"`
	LateSends         int64   `json:"late_sends"` // open loop: sends due while their connection was busy
	FramesReceived    int64   `json:"frames_received"`
	BytesReceived     int64   `json:"bytes_received"`
	FramesSent        int64   `json:"frames_sent"`
	FramesPerSecond   float64 `json:"frames_per_second"` // received
	QueriesPerSecond  float64 `json:"queries_per_second"`

	LatencyUS map[string]Percentiles `json:"latency_us"`

	Errors         []problem `json:"errors"`
	ErrorsTotal    int64     `json:"errors_total"`
	CheckFailures  []problem `json:"check_failures"`
	ChecksFailed   int64     `json:"checks_failed"`
	StreamsChecked int64     `json:"streams_checked"`

	Server   *serverReport `json:"server,omitempty"` // with -pid
	Client   clientReport  `json:"client"`
	Warnings []warning     `json:"warnings"`

	Passed bool `json:"passed"`
	Status int  `json:"status"` // the exit status
}

type serverReport struct {
	PID                int     `json:"pid"`
	CPUUS              int64   `json:"cpu_us"`
	CPUCores           float64 `json:"cpu_cores"` // CPU time / wall time
	CPUPerQueryUS      float64 `json:"cpu_per_query_us"`
	CPUPerFrameUS      float64 `json:"cpu_per_frame_us"` // per frame the client received
	CPUPerConnectionUS float64 `json:"cpu_per_connection_us"`
	RSSBeforeBytes     int64   `json:"rss_before_bytes"`
	RSSHeldBytes       int64   `json:"rss_held_bytes,omitempty"` // -idle: while every connection is held
	RSSAfterBytes      int64   `json:"rss_after_bytes"`
	RSSPeakBytes       int64   `json:"rss_peak_bytes"`
	// RSSPerConnection is, with -idle, (held − before) / connections opened.
	RSSPerConnection float64 `json:"rss_per_connection_bytes,omitempty"`
	Error            string  `json:"error,omitempty"`
}

type clientReport struct {
	CPUUS        int64   `json:"cpu_us"`
	CPUCores     float64 `json:"cpu_cores"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	Bottleneck   bool    `json:"bottleneck"` // the client, not the server, limited the run
	NoFileLimit  uint64  `json:"nofile_limit"`
	NoFileBefore uint64  `json:"nofile_limit_before"`
}

// A warning says why the numbers may not measure what they seem to.
type warning struct {
	Kind    string `json:"kind"` // client_cpu, schedule_lag, machine_cpu, nofile, fixture
	Message string `json:"message"`
}

// noFileMargin is the files the client needs beside its connections.
const noFileMargin = 64

func (r *runner) report(m *measure) *report {
	c, rec := r.cfg, r.rec
	rep := &report{
		Mode: c.mode(), Echo: c.echo, URL: c.url, Connections: c.conns,
		RampUS: c.ramp.Microseconds(), Rate: c.rate, QuerySize: c.querySize,
		Capabilities: append([]string{}, r.caps...), Interrupted: r.interrupted(),
		ElapsedUS: m.wall().Microseconds(),
		LatencyUS: map[string]Percentiles{},
	}
	if c.duration > 0 {
		rep.DurationUS = c.duration.Microseconds()
	} else if !c.idle {
		rep.QueriesPerConnection = c.queries
	}
	n := rec.counts
	rep.ConnectionsOpened, rep.QueriesSent, rep.QueriesCompleted = n.opened, n.queriesSent, n.queriesDone
	rep.LateSends, rep.StreamsChecked = n.lateSends, n.streams
	rep.FramesReceived, rep.BytesReceived, rep.FramesSent = n.framesRead, n.bytesRead, n.framesWritten
	if s := m.wall().Seconds(); s > 0 {
		rep.FramesPerSecond = round(float64(n.framesRead)/s, 1)
		rep.QueriesPerSecond = round(float64(n.queriesDone)/s, 1)
	}
	for name, h := range rec.hists {
		if h.TotalCount() > 0 {
			rep.LatencyUS[name] = summarise(h)
		}
	}
	rep.Errors, rep.CheckFailures = sorted(rec.errors), sorted(rec.checks)
	rep.ErrorsTotal, rep.ChecksFailed = total(rep.Errors), total(rep.CheckFailures)
	own := m.ownEnd - m.ownStart
	rep.Client = clientReport{
		CPUUS: own.Microseconds(), CPUCores: cpuCores(own, m.wall()), GOMAXPROCS: cores(),
		NoFileLimit: r.nofile.now, NoFileBefore: r.nofile.before,
	}
	if c.pid > 0 {
		rep.Server = serverOf(m, n)
	}
	rep.Warnings = r.warnings(rep, m)
	rep.Passed = rep.ChecksFailed == 0 && rep.ErrorsTotal <= int64(c.maxErrors)
	rep.Status = exitPassed
	if !rep.Passed {
		rep.Status = exitFailed
	}
	return rep
}

func serverOf(m *measure, n counts) *serverReport {
	s := &serverReport{PID: m.pid}
	if m.procErr != nil {
		s.Error = m.procErr.Error()
		return s
	}
	cpu := m.after.cpu - m.before.cpu
	s.CPUUS, s.CPUCores = cpu.Microseconds(), cpuCores(cpu, m.wall())
	s.CPUPerQueryUS = per(cpu, n.queriesSent)
	s.CPUPerFrameUS = per(cpu, n.framesRead)
	s.CPUPerConnectionUS = per(cpu, n.opened)
	if m.opened.cpu > 0 {
		// -idle: what opening the connections cost, not holding or closing them.
		s.CPUPerConnectionUS = per(m.opened.cpu-m.before.cpu, n.opened)
	}
	s.RSSBeforeBytes, s.RSSHeldBytes, s.RSSAfterBytes = m.before.rss, m.held.rss, m.after.rss
	s.RSSPeakBytes = m.peak
	if m.held.rss > 0 && n.opened > 0 {
		s.RSSPerConnection = round(float64(m.held.rss-m.before.rss)/float64(n.opened), 0)
	}
	return s
}

// warnings says when the client, not the server, is the bottleneck, and what else
// makes the numbers doubtful.
func (r *runner) warnings(rep *report, m *measure) []warning {
	c := r.cfg
	ws := []warning{}
	add := func(kind, format string, args ...any) {
		ws = append(ws, warning{kind, fmt.Sprintf(format, args...)})
	}
	if share := rep.Client.CPUCores / float64(rep.Client.GOMAXPROCS); share >= c.cpuShare {
		rep.Client.Bottleneck = true
		add("client_cpu", "the client used %.2f of its %d cores (%.0f%% ≥ -cpu-share %.0f%%): the client, not the server, is the bottleneck; measure from another machine, or with fewer connections or -validate=false",
			rep.Client.CPUCores, rep.Client.GOMAXPROCS, 100*share, 100*c.cpuShare)
	}
	if lag, ok := rep.LatencyUS[latSendLag]; ok && time.Duration(lag.P99)*time.Microsecond > c.maxLag {
		rep.Client.Bottleneck = true
		add("schedule_lag", "sends fell behind schedule on free connections by %v at p99 (max %v, > -max-lag %v): the client cannot keep the rate, and the latencies count from intended times it missed",
			us(lag.P99), us(lag.Max), c.maxLag)
	}
	if s := rep.Server; s != nil && s.Error == "" {
		total := rep.Client.CPUCores + s.CPUCores
		if ncpu := machineCPUs(); total >= c.cpuShare*float64(ncpu) {
			add("machine_cpu", "client and server together used %.2f of the machine's %d cores: they compete for CPU, and the numbers measure the machine as much as the server", total, ncpu)
		}
	}
	if r.nofile.err != nil {
		add("nofile", "could not raise the open-file limit (%d): %v", r.nofile.now, r.nofile.err)
	}
	if need := uint64(c.conns + noFileMargin); r.nofile.now < need {
		add("nofile", "the open-file limit is %d (hard limit), below the %d that %d connections need: raise it (ulimit -n)", r.nofile.now, need, c.conns)
	}
	if c.fixture && !c.echo && !c.idle && r.caps != nil && !slices.Contains(r.caps, "fixture") {
		add("fixture", "the server does not claim the fixture capability, but -fixture checks the fixture's answers: use -fixture=false for another agent")
	}
	return ws
}

func (rep *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func (rep *report) writeText(w io.Writer) error {
	var b strings.Builder
	rep.textHeader(&b)
	rep.textLatencies(&b)
	rep.textResources(&b)
	rep.textProblems(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (rep *report) textHeader(b *strings.Builder) {
	what := "queries"
	if rep.Echo {
		what = "echoed frames"
	}
	mode := rep.Mode + " loop"
	switch {
	case rep.Mode == modeIdle:
		mode = "idle"
	case rep.Mode == modeOpen:
		mode = fmt.Sprintf("open loop at %g %s/s", rep.Rate, what)
	}
	fmt.Fprintf(b, "agentws-load: %s, %d connections, %s", mode, rep.Connections, rep.URL)
	switch {
	case rep.Mode == modeIdle:
		fmt.Fprintf(b, ", held for %v\n", us(rep.DurationUS))
	case rep.DurationUS > 0:
		fmt.Fprintf(b, ", for %v, %d-character %s\n", us(rep.DurationUS), rep.QuerySize, what)
	default:
		fmt.Fprintf(b, ", %d %s of %d characters each\n", rep.QueriesPerConnection, what, rep.QuerySize)
	}
	if rep.Interrupted {
		b.WriteString("interrupted: the numbers are of the part that ran\n")
	}
	fmt.Fprintf(b, "elapsed %v: %d connections opened", us(rep.ElapsedUS).Round(time.Millisecond), rep.ConnectionsOpened)
	if rep.Mode != modeIdle {
		fmt.Fprintf(b, ", %d %s sent, %d completed (%.1f/s)", rep.QueriesSent, what, rep.QueriesCompleted, rep.QueriesPerSecond)
	}
	fmt.Fprintf(b, ", %d frames received (%.1f/s, %s)", rep.FramesReceived, rep.FramesPerSecond, bytesText(float64(rep.BytesReceived)))
	if rep.Mode == modeOpen {
		fmt.Fprintf(b, ", %d sent late (their connection was busy)", rep.LateSends)
	}
	b.WriteString("\n")
}

// latencyLabels names the latencies in the text report, in its order.
var latencyLabels = []struct{ name, label string }{
	{latConnect, "connect"},
	{latFirstChunk, "first chunk"},
	{latChunkGap, "chunk gap"},
	{latQuery, "query"},
	{latSendLag, "send lag"},
}

func (rep *report) textLatencies(b *strings.Builder) {
	if len(rep.LatencyUS) == 0 {
		return
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency    \tcount\tmean\tp50\tp90\tp99\tp99.9\tmax\t")
	for _, l := range latencyLabels {
		p, ok := rep.LatencyUS[l.name]
		if !ok {
			continue
		}
		label := l.label
		if l.name == latQuery && rep.Echo {
			label = "echo"
		}
		fmt.Fprintf(tw, "%-11s\t%d\t%v\t%v\t%v\t%v\t%v\t%v\t\n", label, p.Count, us(int64(p.Mean)), us(p.P50), us(p.P90), us(p.P99), us(p.P999), us(p.Max))
	}
	tw.Flush()
}

func (rep *report) textResources(b *strings.Builder) {
	b.WriteString("\n")
	if s := rep.Server; s != nil {
		if s.Error != "" {
			fmt.Fprintf(b, "server (pid %d): %s\n", s.PID, s.Error)
		} else {
			fmt.Fprintf(b, "server (pid %d): CPU %v (%.2f cores): ", s.PID, us(s.CPUUS).Round(time.Millisecond), s.CPUCores)
			if rep.Mode == modeIdle {
				fmt.Fprintf(b, "%v a connection\n", usf(s.CPUPerConnectionUS))
			} else {
				fmt.Fprintf(b, "%v a query, %v a frame received\n", usf(s.CPUPerQueryUS), usf(s.CPUPerFrameUS))
			}
			fmt.Fprintf(b, "server RSS: %s before", bytesText(float64(s.RSSBeforeBytes)))
			if s.RSSHeldBytes > 0 {
				fmt.Fprintf(b, ", %s with the connections held (%s a connection)", bytesText(float64(s.RSSHeldBytes)), bytesText(s.RSSPerConnection))
			}
			fmt.Fprintf(b, ", %s after, %s peak\n", bytesText(float64(s.RSSAfterBytes)), bytesText(float64(s.RSSPeakBytes)))
		}
	}
	cl := rep.Client
	fmt.Fprintf(b, "client: CPU %v (%.2f of %d cores); open-file limit %d", us(cl.CPUUS).Round(time.Millisecond), cl.CPUCores, cl.GOMAXPROCS, cl.NoFileLimit)
	if cl.NoFileBefore != cl.NoFileLimit {
		fmt.Fprintf(b, " (raised from %d)", cl.NoFileBefore)
	}
	b.WriteString("\n")
}

func (rep *report) textProblems(b *strings.Builder) {
	b.WriteString("\n")
	if rep.ChecksFailed == 0 {
		fmt.Fprintf(b, "checks: passed (%d streams)\n", rep.StreamsChecked)
	} else {
		fmt.Fprintf(b, "checks: %d FAILED (%d streams)\n", rep.ChecksFailed, rep.StreamsChecked)
		for _, p := range rep.CheckFailures {
			fmt.Fprintf(b, "  %s ×%d, first: %s\n", p.Kind, p.Count, p.Example)
		}
	}
	if rep.ErrorsTotal == 0 {
		b.WriteString("errors: none\n")
	} else {
		fmt.Fprintf(b, "errors: %d\n", rep.ErrorsTotal)
		for _, p := range rep.Errors {
			kind := p.Kind
			if p.Detail != "" {
				kind += " " + p.Detail
			}
			fmt.Fprintf(b, "  %s ×%d, first: %s\n", kind, p.Count, p.Example)
		}
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(b, "WARNING (%s): %s\n", w.Kind, w.Message)
	}
	if rep.Passed {
		b.WriteString("PASS\n")
	} else {
		b.WriteString("FAIL\n")
	}
}

func cpuCores(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return round(cpu.Seconds()/wall.Seconds(), 3)
}

func per(d time.Duration, n int64) float64 {
	if n == 0 {
		return 0
	}
	return round(float64(d.Microseconds())/float64(n), 2)
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

func us(n int64) time.Duration { return time.Duration(n) * time.Microsecond }

// usf formats a fractional number of microseconds.
func usf(x float64) time.Duration {
	return time.Duration(x * float64(time.Microsecond)).Round(10 * time.Nanosecond)
}

func bytesText(n float64) string {
	switch a := max(n, -n); {
	case a >= 1<<30:
		return fmt.Sprintf("%.2f GiB", n/(1<<30))
	case a >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case a >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}

// machineCPUs counts the machine's online CPUs (/sys/devices/system/cpu/online, such
// as 0-3,6), not only those this process may run on (runtime.NumCPU, which a taskset
// narrows).
func machineCPUs() int {
	data, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n, ok := countCPUs(string(data))
	if !ok {
		return runtime.NumCPU()
	}
	return n
}

// countCPUs counts the CPUs of a Linux CPU list, such as 0-3,6.
func countCPUs(list string) (int, bool) {
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(list), ",") {
		lo, hi, found := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, false
		}
		b := a
		if found {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, false
			}
		}
		n += b - a + 1
	}
	return n, n > 0
}
