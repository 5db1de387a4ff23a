package server

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/cputime"
)

// BenchmarkHTTPSend measures durable sends through the whole node: HTTP
// client, JSON, token check, authorisation, Pebble commit (fsync), answer.
// Each sender has its own direct conversation and keep-alive connection.
// The load generator runs in the same process, so its CPU counts too.
func BenchmarkHTTPSend(b *testing.B) {
	for _, senders := range []int{1, 8, 64} {
		b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) { benchSend(b, "pebble", senders) })
	}
}

// BenchmarkHTTPSendMemstore is the same over the in-memory store: the
// ceiling of everything but the durable store, for comparison.
func BenchmarkHTTPSendMemstore(b *testing.B) {
	for _, senders := range []int{1, 64} {
		b.Run("senders="+strconv.Itoa(senders), func(b *testing.B) { benchSend(b, "memory", senders) })
	}
}

func benchSend(b *testing.B, store string, senders int) {
	e := startWith(b, Config{AdminToken: "bench-admin", Store: store})
	e.app("bench")
	// The benchmark measures the store and the API, not the limits: lift
	// the app's and its users' send rates (defaults 1000/s and 10/s).
	e.do("PUT", "/v1/admin/apps/bench/limits", e.admin, `{"sends_per_second":1000000,"burst":1000000,"user_sends_per_second":100000,"user_burst":100000}`).want(b, 200, nil)
	type sender struct {
		token, url string
	}
	ss := make([]sender, senders)
	for i := range ss {
		tok := e.token(fmt.Sprintf("bench:s%d", i))
		c := e.create(tok, 201, "", fmt.Sprintf("bench:r%d", i))
		ss[i] = sender{"Bearer " + tok, e.base + "/v1/conversations/" + c.ID + "/messages"}
	}
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        senders * 2,
		MaxIdleConnsPerHost: senders * 2,
		DisableCompression:  true,
	}}
	defer client.CloseIdleConnections()

	var next atomic.Int64
	lat := make([][]time.Duration, senders)
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cputime.Self()
	begin := time.Now()
	for i := range senders {
		wg.Go(func() {
			s := ss[i]
			var body bytes.Buffer
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				body.Reset()
				fmt.Fprintf(&body, `{"client_id":"c-%d","body":"message number %d from the benchmark"}`, n, n)
				req, _ := http.NewRequest("POST", s.url, bytes.NewReader(body.Bytes()))
				req.Header["Authorization"] = []string{s.token}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					failed.CompareAndSwap(nil, err.Error())
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[i] = append(lat[i], time.Since(t0))
				if res.StatusCode != 201 {
					failed.CompareAndSwap(nil, fmt.Sprintf("status %d", res.StatusCode))
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	cpu := cputime.Self() - cpu0
	b.StopTimer()
	if f := failed.Load(); f != nil {
		b.Fatalf("send failed: %v", f)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "sends/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	// CPU per send (server and load generator together) does not depend
	// on what else the machine runs, unlike sends/s.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/send")
}
