package nabeval

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/outage/detector"
)

// DetectorThreshold is the fixed threshold of the offline detector: a row is
// flagged when its anomaly_score is at least 0.5.
const DetectorThreshold = 0.5

// detectorFloor is just under the score the detector reached; a change that
// lowers it fails here.
const detectorFloor = 77.5

// TestDetectorNAB runs the offline detector (detector.RunCSV, what
// `switchboard detect` runs) over every file with its one fixed
// configuration and scores it at threshold 0.5.
func TestDetectorNAB(t *testing.T) {
	c, err := Load(nabDir(t))
	if err != nil {
		t.Fatal(err)
	}
	scores := make([][]float64, len(c.Files))
	for i, f := range c.Files {
		in, err := os.ReadFile(filepath.Join(c.Dir, "data", filepath.FromSlash(f.Name)))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := detector.RunCSV(bytes.NewReader(in), &out); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		_, cols, err := ReadCSV(&out, 2)
		if err != nil {
			t.Fatalf("%s: output: %v", f.Name, err)
		}
		scores[i] = cols[1]
	}
	r, err := c.Score(scores, DetectorThreshold, Standard)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Files {
		t.Logf("%-58s %8.4f tp %d fn %d fp %d", f.Name, f.Score, f.TP, f.FN, f.FP)
	}
	t.Logf("detector: normalised %.2f raw %.4f TP %d FN %d FP %d", r.Normalised, r.Raw, r.TP, r.FN, r.FP)
	if r.Normalised < detectorFloor {
		t.Fatalf("NAB standard score %.2f, below the floor %.2f", r.Normalised, float64(detectorFloor))
	}
}
