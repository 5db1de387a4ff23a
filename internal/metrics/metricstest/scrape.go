// Package metricstest reads a running server's Prometheus metrics for
// tests, with the same text parser a Prometheus server uses.
package metricstest

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape gets base's /metrics and returns its metric families by name. It
// fails t when the request fails, is not answered 200 or does not parse.
func Scrape(t testing.TB, base string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/metrics: %s", base, res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("GET %s/metrics does not parse: %v", base, err)
	}
	return fams
}
