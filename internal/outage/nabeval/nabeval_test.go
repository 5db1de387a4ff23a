package nabeval

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// nabDir finds ../shared/nab beside the module root. CI clones the
// repository elsewhere with a copy of shared/ beside it, so the path is
// resolved from the module root rather than fixed. A missing corpus fails.
func nabDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
	nab := filepath.Join(dir, "..", "shared", "nab")
	if _, err := os.Stat(filepath.Join(nab, "labels", "combined_windows.json")); err != nil {
		t.Fatalf("NAB corpus missing: %v", err)
	}
	return nab
}

func TestSigmoid(t *testing.T) {
	for _, c := range []struct{ y, want float64 }{
		{-1, 0.98661}, {0, 0}, {3.5, -1}, {1, -0.98661},
	} {
		if got := sigmoid(c.y); math.Abs(got-c.want) > 1e-5 {
			t.Errorf("sigmoid(%v) = %v, want %v", c.y, got, c.want)
		}
	}
}

func TestProbation(t *testing.T) {
	for n, want := range map[int]int{100: 15, 4032: 604, 5000: 750, 22695: 750} {
		if got := Probation(n); got != want {
			t.Errorf("Probation(%d) = %d, want %d", n, got, want)
		}
	}
}

// A hand-worked file: 1000 rows (probation 150), windows [300,399] and
// [700,749].
func TestScoreFileRules(t *testing.T) {
	windows := [][2]int{{300, 399}, {700, 749}}
	at := func(rows ...int) []float64 {
		s := make([]float64, 1000)
		for _, r := range rows {
			s[r] = 1
		}
		return s
	}
	fpAfter := func(i, end, width int) float64 { return sigmoid(float64(i-end)/float64(width-1)) * 0.11 }
	cases := []struct {
		name string
		rows []int
		want FileScore
	}{
		{"null", nil, FileScore{Score: -2, Windows: 2, FN: 2}},
		{"probation ignored", []int{10, 149}, FileScore{Score: -2, Windows: 2, FN: 2}},
		{"first rows", []int{300, 700}, FileScore{Score: 2, Windows: 2, TP: 2}},
		{"only earliest counts", []int{300, 301, 350, 700}, FileScore{Score: 2, Windows: 2, TP: 2}},
		{"last row almost nothing", []int{399, 749}, FileScore{
			Score: 2 * sigmoid(-0.01) / sigmoid(-1) * 1, Windows: 2, TP: 2}},
		{"fp before any window", []int{200, 300, 700}, FileScore{Score: 2 - 0.11, Windows: 2, TP: 2, FP: 1}},
		{"fp after a window", []int{300, 450, 700}, FileScore{
			Score: 2 + fpAfter(450, 399, 100), Windows: 2, TP: 2, FP: 1}},
		{"fp right after a window", []int{300, 400}, FileScore{
			Score: 1 + fpAfter(400, 399, 100) - 1, Windows: 2, TP: 1, FN: 1, FP: 1}},
		{"fp far after last window", []int{300, 700, 999}, FileScore{
			Score: 2 + fpAfter(999, 749, 50), Windows: 2, TP: 2, FP: 1}},
	}
	// The last row of a window of width 100 is worth f(-1/100)/f(-1).
	cases[4].want.Score = sigmoid(-1.0/100)/sigmoid(-1) + sigmoid(-1.0/50)/sigmoid(-1)
	for _, c := range cases {
		got := ScoreFile(at(c.rows...), windows, 0.5, Standard)
		if math.Abs(got.Score-c.want.Score) > 1e-9 || got.TP != c.want.TP || got.FN != c.want.FN ||
			got.FP != c.want.FP || got.Windows != c.want.Windows {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	if fpAfter(999, 749, 50) != -0.11 {
		t.Errorf("a detection far after a window should cost the full A_FP, got %v", fpAfter(999, 749, 50))
	}
}

// The scorer must reproduce NAB's own result for Numenta HTM on this corpus.
func TestReferenceHTM(t *testing.T) {
	c, err := Load(nabDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 48 || c.NumWindows() != 83 {
		t.Fatalf("corpus has %d files and %d windows, want 48 and 83", len(c.Files), c.NumWindows())
	}
	scores := make([][]float64, len(c.Files))
	for i, f := range c.Files {
		if scores[i], err = ReadResults(c.ReferencePath(f.Name)); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.Score(scores, 0.5421876907348634, Standard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("HTM: normalised %.4f raw %.4f TP %d FN %d FP %d", r.Normalised, r.Raw, r.TP, r.FN, r.FP)
	if math.Abs(r.Normalised-70.93) > 0.01 {
		for _, f := range r.Files {
			t.Logf("%-60s %8.4f tp %d fn %d fp %d", f.Name, f.Score, f.TP, f.FN, f.FP)
		}
		t.Fatalf("HTM normalised score %.4f, want 70.93 ± 0.01", r.Normalised)
	}
}
