package status

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// The status side keeps its own log, apart from the message store, so that
// the status page keeps working, and says so, when the message store is
// down: <dir>/status.jsonl, one JSON record a line, appended to and
// compacted (rewritten with only what is live) when opened and every hour.
// A torn last line, from a crash mid-write, is dropped when the log is read.

// record is one line of the log; exactly one field is set.
type record struct {
	Apps     []appInfo `json:"apps,omitempty"`
	Incident *Incident `json:"incident,omitempty"`
	Sample   *sample   `json:"sample,omitempty"`
}

type appInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// sample is one app's report count and norm at one time, for the chart.
type sample struct {
	App     string    `json:"app"`
	At      time.Time `json:"t"`
	Reports int       `json:"r"`
	Norm    float64   `json:"n"`
}

// ChartSpan is how far back the chart and the kept samples go.
const ChartSpan = 24 * time.Hour

const logName = "status.jsonl"

type statusLog struct {
	dir string

	mu  sync.Mutex // guards f, buf, n
	f   *os.File
	buf bytes.Buffer
	n   int // lines appended since the last compaction
}

// loaded is what a log held.
type loaded struct {
	apps      []appInfo
	incidents []*Incident // oldest first
	samples   []sample    // oldest first
}

// openLog reads dir's log, keeps what is live at now, and rewrites it.
func openLog(dir string, now time.Time) (*statusLog, loaded, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, loaded{}, fmt.Errorf("status: %w", err)
	}
	l := &statusLog{dir: dir}
	ld, err := readLog(filepath.Join(dir, logName), now)
	if err != nil {
		return nil, loaded{}, err
	}
	if err := l.compact(ld); err != nil {
		return nil, loaded{}, err
	}
	return l, ld, nil
}

func readLog(path string, now time.Time) (loaded, error) {
	var ld loaded
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ld, nil
	}
	if err != nil {
		return ld, fmt.Errorf("status: %w", err)
	}
	defer f.Close()
	byID := map[string]int{}
	cut := now.Add(-ChartSpan)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			break // a torn write: nothing after it was acknowledged
		}
		switch {
		case r.Apps != nil:
			ld.apps = r.Apps
		case r.Incident != nil:
			if i, ok := byID[r.Incident.ID]; ok {
				ld.incidents[i] = r.Incident
			} else {
				byID[r.Incident.ID] = len(ld.incidents)
				ld.incidents = append(ld.incidents, r.Incident)
			}
		case r.Sample != nil:
			if r.Sample.At.After(cut) {
				ld.samples = append(ld.samples, *r.Sample)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return ld, fmt.Errorf("status: reading %s: %w", path, err)
	}
	return ld, nil
}

// compact replaces the log with ld, atomically.
func (l *statusLog) compact(ld loaded) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.Encode(record{Apps: append([]appInfo{}, ld.apps...)})
	for _, in := range ld.incidents {
		enc.Encode(record{Incident: in})
	}
	for i := range ld.samples {
		enc.Encode(record{Sample: &ld.samples[i]})
	}
	path := filepath.Join(l.dir, logName)
	tmp := path + ".tmp"
	if err := writeSync(tmp, b.Bytes()); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset() // ld holds everything buffered
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if d, err := os.Open(l.dir); err == nil {
		d.Sync()
		d.Close()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	l.f, l.n = f, 0
	return nil
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("status: writing %s: %w", path, err)
	}
	return nil
}

// add buffers records; flush writes them.
func (l *statusLog) add(recs ...record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	enc := json.NewEncoder(&l.buf)
	for _, r := range recs {
		enc.Encode(r)
		l.n++
	}
}

// flush writes what add buffered and syncs it.
func (l *statusLog) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() == 0 || l.f == nil {
		return nil
	}
	_, err := l.f.Write(l.buf.Bytes())
	l.buf.Reset()
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		return fmt.Errorf("status: writing the log: %w", err)
	}
	return nil
}

func (l *statusLog) close() error {
	err := l.flush()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
		l.f = nil
	}
	return err
}
