package messaging

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
)

func TestDevLogin(t *testing.T) {
	ctx := context.Background()
	s := New(Config{Store: memstore.New()})
	if _, err := s.CreateApp(ctx, "corp", "Corp"); err != nil {
		t.Fatal(err)
	}

	tok, err := s.DevLogin(ctx, "messenger", "alice")
	if err != nil {
		t.Fatalf("DevLogin: %v", err)
	}
	if a, err := s.Authenticate(ctx, tok); err != nil || a != "messenger:alice" {
		t.Fatalf("Authenticate = %q, %v; want messenger:alice", a, err)
	}
	if _, err := s.DevLogin(ctx, "instagram", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DevLogin(ctx, "corp", "carol"); err != nil {
		t.Fatalf("DevLogin to an admin-made app: %v", err)
	}

	apps := appsByID(t, s)
	if !IsDevApp(apps["messenger"]) || !IsDevApp(apps["instagram"]) || IsDevApp(apps["corp"]) {
		t.Fatalf("dev marks wrong: %+v", apps)
	}
	if got := apps["messenger"].Interop; !slices.Equal(got, []string{"instagram"}) {
		t.Errorf("messenger interop = %v, want [instagram]", got)
	}
	if got := apps["instagram"].Interop; !slices.Equal(got, []string{"messenger"}) {
		t.Errorf("instagram interop = %v, want [messenger]", got)
	}
	if got := apps["corp"].Interop; len(got) != 0 {
		t.Errorf("corp (made by the admin) interop = %v, want it left empty", got)
	}

	// The linking is what lets the two users talk; the admin's app still
	// refuses, with the words the web client shows.
	if _, _, err := s.CreateConversation(ctx, "messenger:alice", []string{"instagram:bob"}, ""); err != nil {
		t.Errorf("dev apps cannot talk: %v", err)
	}
	_, _, err = s.CreateConversation(ctx, "messenger:alice", []string{"corp:carol"}, "")
	var ce *chat.Error
	if !errors.As(err, &ce) || ce.Code != chat.PermissionDenied || ce.Message != "corp does not allow messages from messenger" {
		t.Errorf("alice -> corp: %v, want permission_denied %q", err, "corp does not allow messages from messenger")
	}

	for _, tc := range []struct{ app, user string }{{"Bad App", "x"}, {"", "x"}, {"ok", ""}, {"ok", "no spaces"}} {
		if _, err := s.DevLogin(ctx, tc.app, tc.user); chat.ErrorCode(err) != chat.InvalidArgument {
			t.Errorf("DevLogin(%q, %q) = %v, want invalid_argument", tc.app, tc.user, err)
		}
	}
	if _, ok := appsByID(t, s)["ok"]; ok {
		t.Error("a refused sign-in created its app")
	}
}

// Sign-ins racing to create different apps still link all of them both
// ways.
func TestDevLoginRacing(t *testing.T) {
	ctx := context.Background()
	s := New(Config{Store: memstore.New()})
	const n = 6
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Two sign-ins per app, so creation races too.
			for range 2 {
				if _, err := s.DevLogin(ctx, fmt.Sprintf("app%d", i), "u"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	apps := appsByID(t, s)
	if len(apps) != n {
		t.Fatalf("%d apps, want %d", len(apps), n)
	}
	for id, a := range apps {
		for other := range apps {
			if !a.Allows(other) {
				t.Errorf("%s does not allow %s: interop %v", id, other, a.Interop)
			}
		}
	}
}

func appsByID(t *testing.T, s *Service) map[string]chat.App {
	t.Helper()
	list, err := s.Apps(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]chat.App{}
	for _, a := range list {
		m[a.ID] = a
	}
	return m
}
