package status

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/internal/outage/detector"
)

//go:embed static/page.html
var pageHTML string

//go:embed static
var static embed.FS

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"clock": func(t time.Time) string { return t.UTC().Format("15:04") },
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"stateText": func(s string) string {
		switch detector.State(s) {
		case detector.Operational:
			return "Operational"
		case detector.Degraded:
			return "Degraded"
		case detector.Outage:
			return "Outage"
		case detector.Recovering:
			return "Recovering"
		}
		return s
	},
}).Parse(pageHTML))

// csp lets the page load its own script and style only, and the script
// talk only to its own origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type pageData struct {
	At        time.Time
	StoreDown bool
	Apps      []pageApp
	Open      []Incident
	Past      []Incident
	AppNames  map[string]string
}

type pageApp struct {
	AppStatus
	Chart chart
}

// chart is one app's 24-hour chart of reports against the norm, drawn on
// the server as inline SVG.
type chart struct {
	ID                  string
	W, H                int
	Left, Right, Top    float64
	Bottom              float64
	XTicks, YTicks      []tick
	Reports, Norm, Axes string // SVG path data
	Summary             string
}

type tick struct {
	X, Y, Y2 float64
	Label    string
}

const (
	chartW, chartH = 720, 200
	padL, padR     = 48, 12
	padT, padB     = 12, 34
)

// drawChart lays out samples (oldest first) over the ChartSpan ending at
// now. A gap of more than five sampling intervals breaks the lines rather
// than drawing a slope across a time with no data.
func drawChart(id string, samples []sample, now time.Time, interval time.Duration) chart {
	c := chart{ID: id, W: chartW, H: chartH, Left: padL, Right: chartW - padR, Top: padT, Bottom: chartH - padB}
	start := now.Add(-ChartSpan)
	top := 10.0
	for _, s := range samples {
		top = math.Max(top, math.Max(float64(s.Reports), s.Norm))
	}
	top = niceCeil(top)
	x := func(t time.Time) float64 {
		f := float64(t.Sub(start)) / float64(ChartSpan)
		return c.Left + math.Max(0, math.Min(1, f))*(c.Right-c.Left)
	}
	y := func(v float64) float64 { return c.Bottom - math.Max(0, v)/top*(c.Bottom-c.Top) }
	var rep, norm strings.Builder
	var prev time.Time
	for _, s := range samples {
		if s.At.Before(start) {
			continue
		}
		cmd := "L"
		if prev.IsZero() || s.At.Sub(prev) > 5*interval {
			cmd = "M"
		}
		fmt.Fprintf(&rep, "%s%.1f %.1f ", cmd, x(s.At), y(float64(s.Reports)))
		fmt.Fprintf(&norm, "%s%.1f %.1f ", cmd, x(s.At), y(s.Norm))
		prev = s.At
	}
	c.Reports = strings.TrimSpace(rep.String())
	c.Norm = strings.TrimSpace(norm.String())
	c.Axes = fmt.Sprintf("M%.1f %.1f V%.1f H%.1f", c.Left, c.Top, c.Bottom, c.Right)
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		c.YTicks = append(c.YTicks, tick{X: c.Left, Y: y(v), Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	// A tick every 3 hours on the hour, UTC.
	for t := start.Truncate(3 * time.Hour).Add(3 * time.Hour); !t.After(now); t = t.Add(3 * time.Hour) {
		c.XTicks = append(c.XTicks, tick{X: x(t), Y: c.Bottom, Y2: c.Bottom + 5, Label: t.UTC().Format("15:04")})
	}
	if n := len(samples); n > 0 {
		last := samples[n-1]
		c.Summary = fmt.Sprintf("Problem reports in 15 minutes over the last 24 hours, against the norm; now %d reports, norm %s.",
			last.Reports, strconv.FormatFloat(math.Round(last.Norm*10)/10, 'f', -1, 64))
	} else {
		c.Summary = "Problem reports in 15 minutes over the last 24 hours, against the norm; no data yet."
	}
	return c
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, or twice that
// for a scale of four ticks: the axis reads 0, 25, 50, 75, 100.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 4, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func (s *Service) pageData(r *http.Request) pageData {
	s.refreshApps(r.Context())
	ok := s.storeAvailable(r.Context())
	now := s.now().UTC()
	s.mu.Lock()
	snap := s.snapshotLocked(now, ok)
	d := pageData{At: now, StoreDown: !ok, AppNames: map[string]string{}}
	for _, as := range snap.Apps {
		a := s.apps[as.App]
		d.AppNames[as.App] = a.name
		// The line ends at the live count, not at the last minute's sample.
		pts := append(slices.Clip(a.samples), sample{App: as.App, At: now, Reports: as.Reports15m, Norm: a.norm})
		d.Apps = append(d.Apps, pageApp{AppStatus: as, Chart: drawChart(as.App, pts, now, s.cfg.Interval)})
	}
	s.mu.Unlock()
	for _, in := range snap.Incidents {
		if in.Status == StatusOpen {
			d.Open = append(d.Open, in)
		} else {
			d.Past = append(d.Past, in)
		}
	}
	return d
}

// page serves the status page: everything on it is rendered here, so it
// reads the same without JavaScript; the script only keeps it live.
func (s *Service) page(w http.ResponseWriter, r *http.Request) {
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, s.pageData(r)); err != nil {
		s.log.Error("status: rendering the page", "err", err)
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

// assets serves the page's script and style sheet.
func assets() http.Handler {
	files := map[string]struct {
		body  []byte
		ctype string
	}{}
	for name, ctype := range map[string]string{"status.js": "text/javascript; charset=utf-8", "status.css": "text/css; charset=utf-8"} {
		b, err := static.ReadFile("static/" + name)
		if err != nil {
			panic("status: " + err.Error()) // a broken build
		}
		files[name] = struct {
			body  []byte
			ctype string
		}{b, ctype}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.PathValue("file")]
		if !ok {
			writeError(w, errNotFound(r.URL.Path))
			return
		}
		w.Header().Set("Content-Type", f.ctype)
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	})
}
