package chat

import (
	"strings"
	"testing"
)

func TestParseAddress(t *testing.T) {
	good := []string{"messenger:alice", "a:b", "app-1:User.Name_9-x", strings.Repeat("a", 32) + ":" + strings.Repeat("Z", 64)}
	for _, s := range good {
		a, err := ParseAddress(s)
		if err != nil {
			t.Errorf("ParseAddress(%q): %v", s, err)
			continue
		}
		if NewAddress(a.App(), a.User()) != a {
			t.Errorf("%q does not split and join back", s)
		}
	}
	bad := []string{"", ":", "alice", "Messenger:alice", "messenger:", ":alice", "m:a:b", "m:al ice",
		strings.Repeat("a", 33) + ":x", "m:" + strings.Repeat("x", 65), "m:ålice", "m_x:a"}
	for _, s := range bad {
		if _, err := ParseAddress(s); err == nil {
			t.Errorf("ParseAddress(%q) accepted a bad address", s)
		} else if ErrorCode(err) != InvalidArgument {
			t.Errorf("ParseAddress(%q): code %s, want %s", s, ErrorCode(err), InvalidArgument)
		}
	}
}

func TestDirectIDIsSymmetric(t *testing.T) {
	a, b := Address("messenger:alice"), Address("instagram:bob")
	if DirectID(a, b) != DirectID(b, a) {
		t.Fatal("DirectID depends on the order of its arguments")
	}
	if DirectID(a, b) == DirectID(a, "instagram:bobby") {
		t.Fatal("different pairs share a direct id")
	}
}

// FuzzParseAddress: any string either parses into an address that splits
// and joins back to itself with valid parts, or is refused with
// invalid_argument; it never panics.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"messenger:alice", "a:b", "", ":", "x:y:z", "A:b", "m:\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddress(s)
		if err != nil {
			if ErrorCode(err) != InvalidArgument {
				t.Fatalf("code %s", ErrorCode(err))
			}
			return
		}
		if string(a) != s || ValidAppID(a.App()) != nil || ValidUserID(a.User()) != nil {
			t.Fatalf("accepted %q with invalid parts", s)
		}
	})
}
