package status

import (
	"math"
	"net/netip"
	"time"
)

// Problems are the kinds of problem a report names, as in API.md.
var Problems = []string{"sending", "receiving", "history", "login", "other"}

func problemIndex(p string) int {
	for i, q := range Problems {
		if q == p {
			return i
		}
	}
	return -1
}

// ReportWindow is the window of the report count: a reporter counts once
// per app within it, and reports_15m counts the reporters within it.
const ReportWindow = 15 * time.Minute

// maxReporters bounds the reporters one app keeps within the window. Past
// it reports are still accepted but not counted one by one: the count is
// hundreds of times past any threshold by then.
const maxReporters = 1 << 18

type counted struct {
	at      time.Time
	key     string
	problem int
}

// appReports counts the distinct reporters of one app within ReportWindow.
// A reporter is counted when their report comes at least ReportWindow after
// the last one of theirs that counted, so the count of reports counted
// within the last ReportWindow is the number of distinct reporters in it.
// Not safe for concurrent use.
type appReports struct {
	last      map[string]time.Time // reporter -> their counted report in the window
	queue     []counted            // counted reports, oldest first, from head
	head      int
	byProblem [5]int // counted reports in the window by problem
}

// add counts key's report of problem at now unless key has one counted in
// the window already; it reports whether it counted.
func (a *appReports) add(now time.Time, key string, problem int) bool {
	a.expire(now)
	if a.last == nil {
		a.last = map[string]time.Time{}
	}
	if _, ok := a.last[key]; ok || len(a.last) >= maxReporters {
		return false
	}
	a.last[key] = now
	a.queue = append(a.queue, counted{now, key, problem})
	a.byProblem[problem]++
	return true
}

// expire forgets the reports counted ReportWindow or longer before now.
func (a *appReports) expire(now time.Time) {
	cut := now.Add(-ReportWindow)
	for a.head < len(a.queue) && !a.queue[a.head].at.After(cut) {
		c := a.queue[a.head]
		if t, ok := a.last[c.key]; ok && t.Equal(c.at) {
			delete(a.last, c.key)
		}
		a.byProblem[c.problem]--
		a.queue[a.head] = counted{}
		a.head++
	}
	// Reuse the slice's front once most of it is spent.
	if a.head > 0 && a.head >= len(a.queue)/2 {
		n := copy(a.queue, a.queue[a.head:])
		clear(a.queue[n:])
		a.queue = a.queue[:n]
		a.head = 0
	}
}

// count is the number of distinct reporters in the window ending at now.
func (a *appReports) count(now time.Time) int {
	a.expire(now)
	return len(a.queue) - a.head
}

// limiter is a token bucket per client address: each address may send
// burst reports at once and then one every `every`. Not safe for
// concurrent use.
type limiter struct {
	burst float64
	every time.Duration
	max   int // addresses tracked; past it new addresses are refused until a prune
	b     map[netip.Addr]bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newLimiter(burst int, every time.Duration) *limiter {
	return &limiter{burst: float64(burst), every: every, max: 1 << 20, b: map[netip.Addr]bucket{}}
}

// allow takes a token of addr's bucket at now. When there is none, it says
// how long until there is.
func (l *limiter) allow(now time.Time, addr netip.Addr) (bool, time.Duration) {
	b, ok := l.b[addr]
	if !ok {
		if len(l.b) >= l.max {
			return false, l.every
		}
		b = bucket{tokens: l.burst, at: now}
	}
	if el := now.Sub(b.at); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+float64(el)/float64(l.every))
	}
	b.at = now
	if b.tokens < 1 {
		l.b[addr] = b
		return false, time.Duration((1 - b.tokens) * float64(l.every))
	}
	b.tokens--
	l.b[addr] = b
	return true, 0
}

// prune forgets the buckets that are full again at now: forgetting them
// changes nothing.
func (l *limiter) prune(now time.Time) {
	full := time.Duration(l.burst * float64(l.every))
	for a, b := range l.b {
		if now.Sub(b.at)+time.Duration(b.tokens*float64(l.every)) >= full {
			delete(l.b, a)
		}
	}
}

// clientKey is the address a client is limited and counted by: IPv4 as it
// is, IPv6 by its /64, since one subscriber usually holds a whole /64.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}
