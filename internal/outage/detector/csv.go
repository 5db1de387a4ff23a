package detector

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

const csvTimeLayout = "2006-01-02 15:04:05"

// RunCSV is the offline mode: it reads a "timestamp,value" CSV (a header
// line, then rows such as "2014-04-10 07:15:00,42.5") and writes NAB's
// results format, "timestamp,value,anomaly_score" with a header, one row per
// input row. Every file gets the same configuration (a seasonal Series with
// OfflineConfig, flagging deviations in both directions, a likelihood of its
// residuals, a CUSUM, new records and novel shapes; see offline.go).
//
// anomaly_score is in [0, 1] and a row counts as flagged when it is at least
// 0.5. It scores the start of an anomaly: the onset row carries its score,
// and the rows that follow within the refractory period are held below 0.5,
// since an operator paged once does not need paging every five minutes.
func RunCSV(r io.Reader, w io.Writer) error {
	return runCSV(defaultOfflineParams(), r, w)
}

// RunCSVConfig is RunCSV with another configuration of its seasonal Series,
// for experiments.
func RunCSVConfig(cfg Config, r io.Reader, w io.Writer) error {
	p := defaultOfflineParams()
	p.Series = cfg
	return runCSV(p, r, w)
}

func runCSV(p offlineParams, r io.Reader, w io.Writer) error {
	o := newOffline(p)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	bw := bufio.NewWriter(w)
	bw.WriteString("timestamp,value,anomaly_score\n")
	line := 0
	buf := make([]byte, 0, 64)
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if line == 1 || len(text) == 0 {
			continue // header, blank lines
		}
		ts, val, ok := bytes.Cut(text, []byte{','})
		if !ok {
			return fmt.Errorf("detector: line %d: want timestamp,value", line)
		}
		ts, val = bytes.TrimSpace(ts), bytes.TrimSpace(val)
		t, err := parseTime(ts)
		if err != nil {
			return fmt.Errorf("detector: line %d: %w", line, err)
		}
		v, err := strconv.ParseFloat(string(val), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("detector: line %d: value %q is not a finite number", line, val)
		}
		score := o.observe(t, v)
		buf = append(buf[:0], ts...)
		buf = append(buf, ',')
		buf = append(buf, val...)
		buf = append(buf, ',')
		buf = strconv.AppendFloat(buf, score, 'f', 6, 64)
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("detector: %w", err)
	}
	if line == 0 {
		return fmt.Errorf("detector: empty input, want a header line")
	}
	return bw.Flush()
}

// parseTime accepts NAB timestamps, with optional fractional seconds.
func parseTime(b []byte) (time.Time, error) {
	s := string(b)
	if i := bytes.IndexByte(b, '.'); i >= 0 {
		s = s[:i]
	}
	return time.Parse(csvTimeLayout, s)
}
