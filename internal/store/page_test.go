package store

import (
	"errors"
	"testing"
	"time"
)

func TestPageTokenRoundTrip(t *testing.T) {
	p := &Page{UpdatedAt: time.Date(2026, 11, 27, 1, 2, 3, 456789, time.UTC), ID: "dabc234"}
	q, err := ParsePage(p.Token())
	if err != nil {
		t.Fatal(err)
	}
	if !q.UpdatedAt.Equal(p.UpdatedAt) || q.ID != p.ID {
		t.Fatalf("round trip gave %+v, want %+v", q, p)
	}
	if (*Page)(nil).Token() != "" {
		t.Fatal("the nil page must encode as the empty token")
	}
	if q, err := ParsePage(""); q != nil || err != nil {
		t.Fatal("the empty token must be the top of the list")
	}
	for _, bad := range []string{"!!", "AAAA", "AAAAAAAAAAAA_w", p.Token() + "%"} {
		if _, err := ParsePage(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("ParsePage(%q) = %v, want ErrBadToken", bad, err)
		}
	}
}

func TestPageBefore(t *testing.T) {
	t0 := time.Unix(100, 0)
	p := &Page{UpdatedAt: t0, ID: "m"}
	cases := []struct {
		at   time.Time
		id   string
		want bool
	}{
		{t0.Add(-time.Second), "z", true},
		{t0.Add(time.Second), "a", false},
		{t0, "a", true},
		{t0, "m", false},
		{t0, "z", false},
	}
	for _, c := range cases {
		if got := p.Before(c.at, c.id); got != c.want {
			t.Errorf("Before(%v, %q) = %v, want %v", c.at, c.id, got, c.want)
		}
	}
}

// FuzzParsePage: a token either fails with ErrBadToken or decodes to a page
// whose own token decodes to the same page.
func FuzzParsePage(f *testing.F) {
	f.Add("")
	f.Add((&Page{UpdatedAt: time.Unix(1, 2), ID: "g0123abc"}).Token())
	f.Add("AAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := ParsePage(token)
		if err != nil {
			if !errors.Is(err, ErrBadToken) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if p == nil {
			if token != "" {
				t.Fatalf("non-empty token %q gave the top", token)
			}
			return
		}
		q, err := ParsePage(p.Token())
		if err != nil || !q.UpdatedAt.Equal(p.UpdatedAt) || q.ID != p.ID {
			t.Fatalf("re-encoding %q does not round-trip: %v", token, err)
		}
	})
}
