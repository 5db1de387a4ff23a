package status

import (
	"context"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/outage/detector"
)

// AppStatus is one app in GET /v1/status.
type AppStatus struct {
	App   string `json:"app"`
	Name  string `json:"name"`
	State string `json:"state"`
	// Reports15m is the number of distinct reporters in the last 15
	// minutes; Norm15m what the monitor expected at its last sample.
	Reports15m int     `json:"reports_15m"`
	Norm15m    float64 `json:"norm_15m"`
	// Problems splits Reports15m by the problem reported.
	Problems map[string]int `json:"problems"`
	// Since is when the app entered its state (or was first watched).
	Since time.Time `json:"since"`
}

// Snapshot is the answer of GET /v1/status and the data of each event of
// the event stream.
type Snapshot struct {
	Apps []AppStatus `json:"apps"`
	// Incidents are the open ones, newest first, then those resolved in
	// the last RecentlyResolved, newest first.
	Incidents []Incident `json:"incidents"`
	// MessageStore is "available" or "unavailable".
	MessageStore string    `json:"message_store"`
	At           time.Time `json:"at"`
}

// RecentlyResolved is how long a resolved incident stays in GET /v1/status.
const RecentlyResolved = 7 * 24 * time.Hour

// Snapshot returns the state of every app and the current incidents.
func (s *Service) Snapshot(ctx context.Context) Snapshot {
	s.refreshApps(ctx)
	ok := s.storeAvailable(ctx)
	now := s.now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked(now, ok)
}

// current is Snapshot without asking the message store for the app list:
// what every event stream sends after each change, so that a crowd of
// watchers costs the store nothing.
func (s *Service) current(ctx context.Context) Snapshot {
	ok := s.storeAvailable(ctx)
	now := s.now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked(now, ok)
}

func (s *Service) snapshotLocked(now time.Time, storeOK bool) Snapshot {
	snap := Snapshot{Apps: make([]AppStatus, 0, len(s.order)), Incidents: []Incident{}, MessageStore: "available", At: now}
	if !storeOK {
		snap.MessageStore = "unavailable"
	}
	for _, id := range s.order {
		a := s.apps[id]
		as := AppStatus{App: id, Name: a.name, State: string(a.state), Reports15m: a.reports.count(now),
			Norm15m: math.Round(a.norm*10) / 10, Problems: map[string]int{}, Since: a.since}
		for i, p := range Problems {
			as.Problems[p] = a.reports.byProblem[i]
		}
		snap.Apps = append(snap.Apps, as)
	}
	var resolved []Incident
	for i := len(s.inc.list) - 1; i >= 0; i-- {
		in := s.inc.list[i]
		switch {
		case in.Status == StatusOpen:
			snap.Incidents = append(snap.Incidents, in.clone())
		case in.ResolvedAt != nil && now.Sub(*in.ResolvedAt) < RecentlyResolved:
			resolved = append(resolved, in.clone())
		}
	}
	snap.Incidents = append(snap.Incidents, resolved...)
	return snap
}

// Incidents returns every kept incident, newest first.
func (s *Service) Incidents() []Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Incident, 0, len(s.inc.list))
	for i := len(s.inc.list) - 1; i >= 0; i-- {
		out = append(out, s.inc.list[i].clone())
	}
	return out
}

// MaxMessageBytes bounds an operator's incident message.
const MaxMessageBytes = 4096

func checkMessage(msg string, required bool) (string, error) {
	msg = strings.TrimSpace(msg)
	if msg == "" && required {
		return "", chat.Errorf(chat.InvalidArgument, "message is required")
	}
	if len(msg) > MaxMessageBytes || !utf8.ValidString(msg) {
		return "", chat.Errorf(chat.InvalidArgument, "message must be valid UTF-8 of at most %d bytes", MaxMessageBytes)
	}
	return msg, nil
}

// OpenIncident opens an incident by an operator (planned maintenance, a
// problem the monitor cannot see). impact is "degraded" or "outage". Only
// an operator resolves it.
func (s *Service) OpenIncident(app, title, impact, message string) (Incident, error) {
	msg, err := checkMessage(message, true)
	if err != nil {
		return Incident{}, err
	}
	title = strings.TrimSpace(title)
	if len(title) > 200 || !utf8.ValidString(title) {
		return Incident{}, chat.Errorf(chat.InvalidArgument, "title must be valid UTF-8 of at most 200 bytes")
	}
	if impact == "" {
		impact = string(detector.Degraded)
	}
	if impact != string(detector.Degraded) && impact != string(detector.Outage) {
		return Incident{}, chat.Errorf(chat.InvalidArgument, `impact must be "degraded" or "outage"`)
	}
	now := s.now().UTC()
	s.mu.Lock()
	a := s.apps[app]
	if a == nil {
		s.mu.Unlock()
		return Incident{}, chat.Errorf(chat.NotFound, "app %q not found", app)
	}
	if title == "" {
		title = impactTitle(a.name, impact)
	}
	in := &Incident{ID: newID(), App: app, Title: title, Impact: impact, Status: StatusOpen, OpenedBy: ByOperator, StartedAt: now}
	in.add(Update{At: now, By: ByOperator, Message: msg})
	s.inc.put(in)
	s.saveIncident(in)
	out := in.clone()
	s.mu.Unlock()
	return out, s.changed()
}

// AddUpdate adds an operator's entry to an incident's timeline; resolved
// incidents take updates too (a follow-up, a post-mortem).
func (s *Service) AddUpdate(id, message string) (Incident, error) {
	msg, err := checkMessage(message, true)
	if err != nil {
		return Incident{}, err
	}
	return s.change(id, func(in *Incident, now time.Time) error {
		in.add(Update{At: now, By: ByOperator, Message: msg})
		return nil
	})
}

// Resolve resolves an open incident, with an optional closing message.
// Resolving one that is resolved already is a conflict.
func (s *Service) Resolve(id, message string) (Incident, error) {
	msg, err := checkMessage(message, false)
	if err != nil {
		return Incident{}, err
	}
	if msg == "" {
		msg = "resolved by an operator"
	}
	return s.change(id, func(in *Incident, now time.Time) error {
		if in.Status != StatusOpen {
			return chat.Errorf(chat.Conflict, "incident %s is resolved already", id)
		}
		in.add(Update{At: now, By: ByOperator, Message: msg})
		in.resolve(now)
		return nil
	})
}

func (s *Service) change(id string, fn func(*Incident, time.Time) error) (Incident, error) {
	now := s.now().UTC()
	s.mu.Lock()
	in := s.inc.byID[id]
	if in == nil {
		s.mu.Unlock()
		return Incident{}, chat.Errorf(chat.NotFound, "incident %q not found", id)
	}
	if err := fn(in, now); err != nil {
		s.mu.Unlock()
		return Incident{}, err
	}
	s.saveIncident(in)
	out := in.clone()
	s.mu.Unlock()
	return out, s.changed()
}

// changed makes an operator's change durable and tells the streams.
func (s *Service) changed() error {
	err := s.db.flush()
	s.hub.notify()
	return err
}

// AppNotes are the latest report notes of one app, for operators.
type AppNotes struct {
	App   string `json:"app"`
	Notes []Note `json:"notes"`
}

// Notes returns the latest notes of each app's counted reports, newest
// first.
func (s *Service) Notes() []AppNotes {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]AppNotes, 0, len(s.order))
	for _, id := range s.order {
		n := slices.Clone(s.apps[id].notes)
		slices.Reverse(n)
		if n == nil {
			n = []Note{}
		}
		out = append(out, AppNotes{App: id, Notes: n})
	}
	return out
}
