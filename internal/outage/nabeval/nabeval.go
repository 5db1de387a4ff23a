// Package nabeval scores anomaly detectors the way the Numenta Anomaly
// Benchmark (NAB) does: labelled anomaly windows, a probationary period at
// the start of each file, a scaled sigmoid that rewards early detection, and
// a score normalised between the null detector (0) and the perfect one (100).
//
// It reads NAB's layout: data/<category>/<name>.csv, labels/combined_windows.json
// and, for the reference detector, reference/<category>/numenta_<name>.csv.gz.
package nabeval

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Profile is a NAB cost matrix.
type Profile struct {
	TP, FP, FN float64
}

// Standard is NAB's standard profile.
var Standard = Profile{TP: 1, FP: 0.11, FN: 1}

// File is one data file of the corpus with its labelled windows as row
// indices (inclusive).
type File struct {
	Name    string // "<category>/<name>.csv", the key in combined_windows.json
	Times   []time.Time
	Values  []float64
	Windows [][2]int
}

// Corpus is a NAB directory loaded in memory.
type Corpus struct {
	Dir   string
	Files []File // sorted by Name
}

// NumWindows is the number of labelled windows in the corpus.
func (c *Corpus) NumWindows() int {
	n := 0
	for _, f := range c.Files {
		n += len(f.Windows)
	}
	return n
}

// TimeLayout is NAB's timestamp format.
const TimeLayout = "2006-01-02 15:04:05"

// ParseTime parses NAB timestamps, with or without fractional seconds.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	return time.Parse(TimeLayout, s)
}

// Load reads every file named in labels/combined_windows.json under dir.
func Load(dir string) (*Corpus, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "labels", "combined_windows.json"))
	if err != nil {
		return nil, fmt.Errorf("nabeval: %w", err)
	}
	var labels map[string][][2]string
	if err := json.Unmarshal(raw, &labels); err != nil {
		return nil, fmt.Errorf("nabeval: labels: %w", err)
	}
	names := make([]string, 0, len(labels))
	for name := range labels {
		names = append(names, name)
	}
	sort.Strings(names)
	c := &Corpus{Dir: dir}
	for _, name := range names {
		fh, err := os.Open(filepath.Join(dir, "data", filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("nabeval: %w", err)
		}
		times, cols, err := ReadCSV(fh, 1)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("nabeval: %s: %w", name, err)
		}
		f := File{Name: name, Times: times, Values: cols[0]}
		for _, w := range labels[name] {
			start, err1 := ParseTime(w[0])
			end, err2 := ParseTime(w[1])
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("nabeval: %s window: %w", name, err)
			}
			// First row at or after the start, last row at or before the end.
			lo := sort.Search(len(times), func(i int) bool { return !times[i].Before(start) })
			hi := sort.Search(len(times), func(i int) bool { return times[i].After(end) }) - 1
			if lo > hi {
				return nil, fmt.Errorf("nabeval: %s: window %v has no rows", name, w)
			}
			f.Windows = append(f.Windows, [2]int{lo, hi})
		}
		c.Files = append(c.Files, f)
	}
	return c, nil
}

// ReadCSV reads a CSV with a header line, a timestamp first and at least
// ncols numeric columns after it; it returns the timestamps and the first
// ncols numeric columns. Extra columns are ignored.
func ReadCSV(r io.Reader, ncols int) ([]time.Time, [][]float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	cols := make([][]float64, ncols)
	var times []time.Time
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			continue // header
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		fields := strings.Split(text, ",")
		if len(fields) < ncols+1 {
			return nil, nil, fmt.Errorf("line %d: want %d fields, got %d", line, ncols+1, len(fields))
		}
		t, err := ParseTime(fields[0])
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", line, err)
		}
		times = append(times, t)
		for i := range ncols {
			v, err := strconv.ParseFloat(strings.TrimSpace(fields[i+1]), 64)
			if err != nil {
				return nil, nil, fmt.Errorf("line %d: %w", line, err)
			}
			cols[i] = append(cols[i], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	return times, cols, nil
}

// ReadResults reads a NAB results file (timestamp,value,anomaly_score,...),
// gzip-compressed when its name ends in .gz, and returns the anomaly scores.
func ReadResults(path string) ([]float64, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(fh)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	_, cols, err := ReadCSV(r, 2)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cols[1], nil
}

// Probation is the number of leading rows of an n-row file that NAB does
// not score: 15% of the file, at most 750 rows.
func Probation(n int) int {
	return min(int(math.Floor(0.15*float64(n))), 750)
}

// sigmoid is NAB's scaled sigmoid.
func sigmoid(y float64) float64 {
	if y > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*y)) - 1
}

// FileScore is the outcome of scoring one file.
type FileScore struct {
	Name    string
	Score   float64 // raw, weighted by the profile
	Windows int     // windows scored
	TP, FN  int     // windows detected and missed
	FP      int     // detections outside every window
}

// ScoreFile scores one file's anomaly scores (one per row) against its
// windows: a row is a detection when its score is at least threshold.
func ScoreFile(scores []float64, windows [][2]int, threshold float64, p Profile) FileScore {
	n := len(scores)
	prob := Probation(n)
	var fs FileScore
	maxTP := sigmoid(-1)
	prevEnd, prevWidth := -1, 0
	w := 0 // next window not yet finished
	for w < len(windows) && windows[w][0] < prob {
		// Windows that start in probation are not scored; they still count as
		// "the previous window" for the false positives that follow them.
		prevEnd, prevWidth = windows[w][1], windows[w][1]-windows[w][0]+1
		w++
	}
	detected := false
	for i := prob; i < n; i++ {
		if w < len(windows) && i > windows[w][1] {
			if !detected {
				fs.Score -= p.FN
				fs.FN++
			}
			fs.Windows++
			prevEnd, prevWidth = windows[w][1], windows[w][1]-windows[w][0]+1
			w++
			detected = false
		}
		inWindow := w < len(windows) && i >= windows[w][0]
		if scores[i] < threshold {
			continue
		}
		switch {
		case inWindow:
			if !detected {
				lo, hi := windows[w][0], windows[w][1]
				width := float64(hi - lo + 1)
				fs.Score += sigmoid(-float64(hi-i+1)/width) * p.TP / maxTP
				fs.TP++
				detected = true
			}
		case prevEnd < 0:
			fs.Score -= p.FP
			fs.FP++
		default:
			fs.Score += sigmoid(float64(i-prevEnd)/float64(prevWidth-1)) * p.FP
			fs.FP++
		}
	}
	for ; w < len(windows); w++ {
		if !detected {
			fs.Score -= p.FN
			fs.FN++
		}
		fs.Windows++
		detected = false
	}
	return fs
}

// Result is a corpus-wide score.
type Result struct {
	Files      []FileScore
	Raw        float64
	Normalised float64 // 100 (Raw - null) / (perfect - null)
	TP, FN, FP int
}

// Score scores one result per file (scores[i] belongs to c.Files[i]).
func (c *Corpus) Score(scores [][]float64, threshold float64, p Profile) (Result, error) {
	if len(scores) != len(c.Files) {
		return Result{}, fmt.Errorf("nabeval: %d results for %d files", len(scores), len(c.Files))
	}
	var r Result
	windows := 0
	for i, f := range c.Files {
		if len(scores[i]) != len(f.Values) {
			return Result{}, fmt.Errorf("nabeval: %s: %d scores for %d rows", f.Name, len(scores[i]), len(f.Values))
		}
		fs := ScoreFile(scores[i], f.Windows, threshold, p)
		fs.Name = f.Name
		r.Files = append(r.Files, fs)
		r.Raw += fs.Score
		r.TP += fs.TP
		r.FN += fs.FN
		r.FP += fs.FP
		windows += fs.Windows
	}
	perfect, null := p.TP*float64(windows), -p.FN*float64(windows)
	r.Normalised = 100 * (r.Raw - null) / (perfect - null)
	return r, nil
}

// ReferencePath is where the reference detector's results for file name are.
func (c *Corpus) ReferencePath(name string) string {
	dir, base := filepath.Split(filepath.FromSlash(name))
	return filepath.Join(c.Dir, "reference", dir, "numenta_"+base+".gz")
}
