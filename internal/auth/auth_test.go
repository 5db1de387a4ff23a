package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

var (
	messenger = chat.App{ID: "messenger", Secret: NewSecret()}
	instagram = chat.App{ID: "instagram", Secret: NewSecret()}
)

func secrets(_ context.Context, id string) (string, error) {
	for _, a := range []chat.App{messenger, instagram} {
		if a.ID == id {
			return a.Secret, nil
		}
	}
	return "", chat.Errorf(chat.NotFound, "app %s not found", id)
}

func sign(t testing.TB, m jwt.SigningMethod, claims jwt.MapClaims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMintVerify(t *testing.T) {
	tok, err := Mint(messenger, "alice", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a, err := Verify(context.Background(), tok, secrets)
	if err != nil || a != "messenger:alice" {
		t.Fatalf("Verify = %q, %v", a, err)
	}
}

func TestVerifyRefuses(t *testing.T) {
	exp := time.Now().Add(time.Hour).Unix()
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"iss":"messenger","sub":"alice","exp":%d}`, exp))) + "."
	cases := map[string]string{
		"empty":             "",
		"garbage":           "not.a.jwt",
		"alg none":          none,
		"other app secret":  sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"iss": "messenger", "sub": "alice", "exp": exp}, []byte(instagram.Secret)),
		"expired":           sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"iss": "messenger", "sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()}, []byte(messenger.Secret)),
		"no exp":            sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"iss": "messenger", "sub": "alice"}, []byte(messenger.Secret)),
		"HS384":             sign(t, jwt.SigningMethodHS384, jwt.MapClaims{"iss": "messenger", "sub": "alice", "exp": exp}, []byte(messenger.Secret)),
		"unknown app":       sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"iss": "nope", "sub": "alice", "exp": exp}, []byte(messenger.Secret)),
		"bad sub":           sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"iss": "messenger", "sub": "al ice", "exp": exp}, []byte(messenger.Secret)),
		"not yet valid":     sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"iss": "messenger", "sub": "alice", "exp": exp, "nbf": time.Now().Add(time.Hour).Unix()}, []byte(messenger.Secret)),
		"iss not an app id": sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"iss": "Messenger!", "sub": "alice", "exp": exp}, []byte(messenger.Secret)),
	}
	for name, tok := range cases {
		_, err := Verify(context.Background(), tok, secrets)
		if chat.ErrorCode(err) != chat.Unauthenticated {
			t.Errorf("%s: got %v, want unauthenticated", name, err)
		}
	}
}

func TestVerifyAllowsSmallSkew(t *testing.T) {
	tok := sign(t, jwt.SigningMethodHS256, jwt.MapClaims{"iss": "messenger", "sub": "alice", "exp": time.Now().Add(-Leeway / 3).Unix()}, []byte(messenger.Secret))
	if _, err := Verify(context.Background(), tok, secrets); err != nil {
		t.Fatalf("a token expired %v ago is within the allowed skew: %v", Leeway/3, err)
	}
}

func TestVerifyPassesStoreFailures(t *testing.T) {
	tok, _ := Mint(messenger, "alice", time.Hour, time.Now())
	down := func(context.Context, string) (string, error) {
		return "", chat.Errorf(chat.Unavailable, "store down")
	}
	if _, err := Verify(context.Background(), tok, down); chat.ErrorCode(err) != chat.Unavailable {
		t.Fatalf("a store failure became %v; it must not look like a bad token", err)
	}
}

func TestAdminOK(t *testing.T) {
	if AdminOK("", "") || AdminOK("x", "") || AdminOK("x", "y") || !AdminOK("tok", "tok") {
		t.Fatal("AdminOK is wrong")
	}
}

// FuzzVerify: no input panics, and anything accepted speaks for a valid
// address of a known app.
func FuzzVerify(f *testing.F) {
	good, _ := Mint(messenger, "alice", time.Hour, time.Now())
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		a, err := Verify(context.Background(), tok, secrets)
		if err != nil {
			if chat.ErrorCode(err) != chat.Unauthenticated {
				t.Fatalf("code %s", chat.ErrorCode(err))
			}
			return
		}
		if _, perr := chat.ParseAddress(string(a)); perr != nil {
			t.Fatalf("accepted token speaks for invalid address %q", a)
		}
	})
}
