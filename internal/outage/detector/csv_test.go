package detector

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RunCSV writes one row per input row in NAB's results format, keeps the
// input's timestamps and values as they were written, scores in [0, 1], and
// flags the start of a jump.
func TestRunCSV(t *testing.T) {
	var in bytes.Buffer
	in.WriteString("timestamp,value\r\n")
	t0 := time.Date(2014, 4, 1, 0, 0, 0, 0, time.UTC)
	const n = 3000
	for i := range n {
		v := 10 + 3*math.Sin(2*math.Pi*float64(i)/288) + 0.2*math.Sin(float64(i)*1.7)
		if i >= 2500 {
			v += 40 // a jump
		}
		in.WriteString(t0.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05") + "," + strconv.FormatFloat(v, 'g', -1, 64) + "\r\n")
	}
	var out bytes.Buffer
	if err := RunCSV(bytes.NewReader(in.Bytes()), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if lines[0] != "timestamp,value,anomaly_score" || len(lines) != n+1 {
		t.Fatalf("header %q, %d lines; want NAB's header and %d lines", lines[0], len(lines), n+1)
	}
	inLines := strings.Split(in.String(), "\r\n")
	first := -1
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != 3 || f[0]+","+f[1] != inLines[i+1] {
			t.Fatalf("row %d: %q does not carry input %q", i, l, inLines[i+1])
		}
		sc, err := strconv.ParseFloat(f[2], 64)
		if err != nil || sc < 0 || sc > 1 {
			t.Fatalf("row %d: score %q not in [0, 1]", i, f[2])
		}
		if sc >= 0.5 && first < 0 {
			first = i
		}
	}
	if first != 2500 {
		t.Fatalf("first flagged row %d, want the jump at 2500", first)
	}
}

func TestRunCSVErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":        "",
		"no comma":     "timestamp,value\n2014-04-01 00:00:00 12\n",
		"bad time":     "timestamp,value\n2014-04-01T00:00:00,12\n",
		"bad value":    "timestamp,value\n2014-04-01 00:00:00,twelve\n",
		"not finite":   "timestamp,value\n2014-04-01 00:00:00,NaN\n",
		"infinite":     "timestamp,value\n2014-04-01 00:00:00,+Inf\n",
		"extra column": "timestamp,value\n2014-04-01 00:00:00,1,2\n",
	} {
		if err := RunCSV(strings.NewReader(in), &bytes.Buffer{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzRunCSV: any input either fails cleanly or yields a well-formed
// results file with one row per data row and scores in [0, 1].
func FuzzRunCSV(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.csv"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := RunCSV(bytes.NewReader(in), &out); err != nil {
			return
		}
		sc := bufio.NewScanner(&out)
		sc.Buffer(nil, 1<<21)
		rows := -1
		for sc.Scan() {
			rows++
			if rows == 0 {
				if sc.Text() != "timestamp,value,anomaly_score" {
					t.Fatalf("header %q", sc.Text())
				}
				continue
			}
			l := sc.Text()
			i := strings.LastIndexByte(l, ',')
			s, err := strconv.ParseFloat(l[i+1:], 64)
			if err != nil || !(s >= 0 && s <= 1) {
				t.Fatalf("row %q: score not in [0, 1]", l)
			}
		}
		if rows < 0 {
			t.Fatal("no header")
		}
	})
}
