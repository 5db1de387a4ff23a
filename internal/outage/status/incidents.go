package status

import (
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-chat/switchboard/internal/outage/detector"
)

// Who wrote an incident or an entry of its timeline.
const (
	ByMonitor  = "monitor"
	ByOperator = "operator"
)

// Incident states.
const (
	StatusOpen     = "open"
	StatusResolved = "resolved"
)

// Incident is one episode of trouble with an app, with its timeline.
type Incident struct {
	ID    string `json:"id"`
	App   string `json:"app"`
	Title string `json:"title"`
	// Impact is the worst state the app reached during the incident:
	// "degraded" or "outage".
	Impact     string     `json:"impact"`
	Status     string     `json:"status"`
	OpenedBy   string     `json:"opened_by"`
	StartedAt  time.Time  `json:"started_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	Updates    []Update   `json:"updates"`
}

// Update is one timestamped entry of an incident's timeline.
type Update struct {
	At time.Time `json:"at"`
	By string    `json:"by"`
	// State is the app's state when the monitor wrote the entry.
	State   string `json:"state,omitempty"`
	Message string `json:"message"`
}

func (in *Incident) clone() Incident {
	c := *in
	c.Updates = slices.Clone(in.Updates)
	if in.ResolvedAt != nil {
		t := *in.ResolvedAt
		c.ResolvedAt = &t
	}
	return c
}

func (in *Incident) add(u Update) {
	in.Updates = append(in.Updates, u)
	in.UpdatedAt = u.At
}

func (in *Incident) resolve(at time.Time) {
	in.Status = StatusResolved
	in.ResolvedAt = &at
	in.UpdatedAt = at
}

func impactTitle(name, impact string) string {
	if impact == string(detector.Outage) {
		return name + ": outage"
	}
	return name + ": degraded service"
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40 // a version 4 UUID, so that the Atom id urn:uuid:<id> is one
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// incidents holds every kept incident. Not safe for concurrent use.
type incidents struct {
	byID map[string]*Incident
	list []*Incident // oldest first
}

func (s *incidents) put(in *Incident) {
	if s.byID == nil {
		s.byID = map[string]*Incident{}
	}
	if old, ok := s.byID[in.ID]; ok {
		*old = *in
		return
	}
	s.byID[in.ID] = in
	s.list = append(s.list, in)
}

// openFor returns app's open incident opened by the monitor, or nil.
func (s *incidents) openFor(app string) *Incident {
	for i := len(s.list) - 1; i >= 0; i-- {
		in := s.list[i]
		if in.App == app && in.Status == StatusOpen && in.OpenedBy == ByMonitor {
			return in
		}
	}
	return nil
}

// incidentsKept bounds the resolved incidents kept; open ones are always
// kept.
const incidentsKept = 500

// trim drops the oldest resolved incidents past incidentsKept.
func (s *incidents) trim() {
	extra := len(s.list) - incidentsKept
	if extra <= 0 {
		return
	}
	s.list = slices.DeleteFunc(s.list, func(in *Incident) bool {
		if extra > 0 && in.Status == StatusResolved {
			extra--
			delete(s.byID, in.ID)
			return true
		}
		return false
	})
}

// monitorChange updates the incidents after the monitor moved app (named
// name) to st.State at now, and returns the incident it touched, or nil:
//   - into degraded or outage: opens an incident, or adds to the open one
//     (an app back from recovering, or degraded turning into outage);
//   - into recovering: adds the reason ("reports back to normal");
//   - into operational: adds the reason and resolves the incident. An
//     operator may resolve earlier; the monitor then opens a new incident
//     if the app gets worse again.
func (s *incidents) monitorChange(app, name string, st detector.Status, now time.Time) *Incident {
	in := s.openFor(app)
	u := Update{At: now, By: ByMonitor, State: string(st.State), Message: st.Reason}
	switch st.State {
	case detector.Degraded, detector.Outage:
		if in == nil {
			in = &Incident{ID: newID(), App: app, Status: StatusOpen, OpenedBy: ByMonitor, Impact: string(st.State), StartedAt: now}
			in.Title = impactTitle(name, in.Impact)
			s.put(in)
		} else if st.State == detector.Outage && in.Impact != string(detector.Outage) {
			in.Impact = string(detector.Outage)
			in.Title = impactTitle(name, in.Impact)
		}
		in.add(u)
	case detector.Recovering:
		if in == nil {
			return nil
		}
		in.add(u)
	case detector.Operational:
		if in == nil {
			return nil
		}
		in.add(u)
		in.resolve(now)
	}
	return in
}
