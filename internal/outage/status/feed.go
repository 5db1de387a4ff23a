package status

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// The Atom 1.0 feed of incidents (RFC 4287): one entry per incident kept,
// newest change first, its content the timeline as text. An incident's
// entry id is urn:uuid:<incident id> (incident ids are version 4 UUIDs), so
// a feed reader sees an update of an incident as the same entry changed.

type atomFeed struct {
	XMLName xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID      string      `xml:"id"`
	Title   string      `xml:"title"`
	Updated string      `xml:"updated"`
	Author  atomPerson  `xml:"author"`
	Links   []atomLink  `xml:"link"`
	Entries []atomEntry `xml:"entry"`
}

type atomPerson struct {
	Name string `xml:"name"`
}

type atomLink struct {
	Rel  string `xml:"rel,attr,omitempty"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

type atomEntry struct {
	ID        string   `xml:"id"`
	Title     string   `xml:"title"`
	Updated   string   `xml:"updated"`
	Published string   `xml:"published"`
	Link      atomLink `xml:"link"`
	Summary   atomText `xml:"summary"`
	Content   atomText `xml:"content"`
}

func atomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (s *Service) feed(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	list := s.Incidents()
	// Newest change first.
	slices.SortStableFunc(list, func(a, b Incident) int { return b.UpdatedAt.Compare(a.UpdatedAt) })
	f := atomFeed{
		ID:      base + "/status/feed.atom",
		Title:   "Switchboard incidents",
		Updated: atomTime(s.now()),
		Author:  atomPerson{Name: "Switchboard status"},
		Links: []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: base + "/status/feed.atom"},
			{Rel: "alternate", Type: "text/html", Href: base + "/status"},
		},
	}
	if len(list) > 0 {
		f.Updated = atomTime(list[0].UpdatedAt)
	}
	for _, in := range list {
		title := in.Title
		state := "open"
		if in.Status == StatusResolved {
			title = "[Resolved] " + title
			state = "resolved"
		}
		var tl strings.Builder
		for _, u := range in.Updates {
			tl.WriteString(u.At.UTC().Format("2006-01-02 15:04 UTC") + " (" + u.By + "): " + u.Message + "\n")
		}
		last := ""
		if n := len(in.Updates); n > 0 {
			last = in.Updates[n-1].Message
		}
		f.Entries = append(f.Entries, atomEntry{
			ID:        "urn:uuid:" + in.ID,
			Title:     title,
			Updated:   atomTime(in.UpdatedAt),
			Published: atomTime(in.StartedAt),
			Link:      atomLink{Rel: "alternate", Type: "text/html", Href: base + "/status#incident-" + in.ID},
			Summary:   atomText{Type: "text", Body: in.App + ": " + in.Impact + ", " + state + ". " + last},
			Content:   atomText{Type: "text", Body: tl.String()},
		})
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(f); err != nil {
		writeError(w, err)
		return
	}
	b.WriteString("\n")
	w.Header().Set("Content-Type", "application/atom+xml; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

func errNotFound(path string) error {
	return chat.Errorf(chat.NotFound, "no such file: %s", path)
}
