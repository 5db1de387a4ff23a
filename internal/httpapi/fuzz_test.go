package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
)

// fuzzEnv is a handler over memstore with two apps, alice's token, a
// direct and a group conversation.
type fuzzEnv struct {
	h           *Handler
	tok         string
	direct, grp string
}

func newFuzzEnv(f *testing.F) *fuzzEnv {
	ms := memstore.New()
	// Generous limits: the fuzzer sends far faster than any user may.
	adm := admission.New(admission.Config{Defaults: admissionUnlimited})
	svc := messaging.New(messaging.Config{Store: ms, Admission: adm})
	ctx := context.Background()
	for _, id := range []string{"app", "other"} {
		if _, err := svc.CreateApp(ctx, id, id); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := svc.SetInterop(ctx, "app", []string{"other"}); err != nil {
		f.Fatal(err)
	}
	d, _, err := svc.CreateConversation(ctx, "app:alice", []string{"app:bob"}, "")
	if err != nil {
		f.Fatal(err)
	}
	g, _, err := svc.CreateConversation(ctx, "app:alice", []string{"app:bob", "app:carol"}, "g")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.Send(ctx, "app:alice", messaging.SendRequest{ConversationID: d.ID, ClientID: "c", Body: "hi"}); err != nil {
		f.Fatal(err)
	}
	tok, err := svc.MintToken(ctx, "app", "alice", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzEnv{h: New(Config{Service: svc, AdminToken: "admin"}), tok: tok, direct: d.ID, grp: g.ID}
}

// serve answers one request and fails on anything but a success or a 4xx
// in the API's error shape.
func (e *fuzzEnv) serve(t *testing.T, method, target, token string, body []byte) {
	e.serveQuery(t, method, target, "", token, body)
}

// serveQuery is serve with a raw query, taken as any client may send it.
func (e *fuzzEnv) serveQuery(t *testing.T, method, target, rawQuery, token string, body []byte) {
	req := httptest.NewRequest(method, target, bytes.NewReader(body))
	req.URL.RawQuery = rawQuery
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	switch {
	case rec.Code >= 200 && rec.Code < 300:
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s?%s: %d answer is not JSON: %q", method, target, rawQuery, rec.Code, rec.Body)
		}
	case rec.Code >= 400 && rec.Code < 500:
		var eb errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == nil || eb.Error.Message == "" || Status(eb.Error.Code) != rec.Code {
			t.Fatalf("%s %s?%s body %q: %d answer %q is not in the error shape", method, target, rawQuery, body, rec.Code, rec.Body)
		}
	default:
		t.Fatalf("%s %s?%s body %q: status %d %s", method, target, rawQuery, body, rec.Code, rec.Body)
	}
}

var admissionUnlimited = func() (l chat.Limits) {
	l.SendsPerSecond, l.Burst, l.UserSendsPerSecond, l.UserBurst = 1_000_000, 1_000_000, 100_000, 100_000
	return l
}()

// endpoint is one call that takes a JSON body.
type endpoint struct {
	method, path string
	admin        bool
}

func (e *fuzzEnv) endpoints() []endpoint {
	return []endpoint{
		{"POST", "/v1/admin/apps", true},
		{"PUT", "/v1/admin/apps/app/interop", true},
		{"POST", "/v1/admin/apps/app/tokens", true},
		{"PUT", "/v1/admin/apps/other/limits", true},
		{"POST", "/v1/admin/apps/other/freeze", true},
		{"POST", "/v1/conversations", false},
		{"POST", "/v1/conversations/" + e.grp + "/members", false},
		{"POST", "/v1/conversations/" + e.direct + "/read", false},
		{"POST", "/v1/blocks", false},
		{"POST", "/v1/conversations/" + e.direct + "/messages", false},
	}
}

// FuzzBodies: whatever the JSON body of any endpoint that takes one, the
// answer is a success or a 4xx in the error shape, never a 500.
func FuzzBodies(f *testing.F) {
	seeds := map[uint8][]string{
		0: {`{"id":"new-app","name":"New"}`, `{"id":"APP"}`, `{"id":"x","name":1}`, `{"id":"x","extra":true}`},
		1: {`{"apps":["other"]}`, `{"apps":[]}`, `{"apps":null}`, `{"apps":["nope"]}`, `{"apps":["a","a","b"]}`},
		2: {`{"user":"bob","ttl_seconds":60}`, `{"user":"bob","ttl_seconds":-1}`, `{"user":"","ttl_seconds":1e99}`, `{"user":"bob","ttl_seconds":1.5}`},
		3: {`{"sends_per_second":5}`, `{"burst":0}`, `{"max_connections":99999999999}`, `{}`, `{"user_burst":-3}`, `{"sends_per_second":"5"}`},
		4: {``, `{}`, `{"x":1}`, `[]`, ` `},
		5: {`{"members":["app:bob"]}`, `{"members":["other:dan"],"title":"t"}`, `{"members":["bad"]}`, `{"members":[],"title":"\ud800"}`},
		6: {`{"add":["app:dan"]}`, `{"remove":["app:alice"]}`, `{"add":["app:bob"],"remove":["app:bob"]}`, `{"add":"x"}`},
		7: {`{"seq":1}`, `{"seq":0}`, `{"seq":99}`, `{"seq":-1}`, `{"seq":9223372036854775808}`},
		8: {`{"address":"app:bob"}`, `{"address":"app:alice"}`, `{"address":"nope:x"}`, `{"address":""}`},
		9: {`{"client_id":"c2","body":"hi"}`, `{"client_id":"c","body":"again"}`, `{"client_id":"","body":""}`},
	}
	for which, list := range seeds {
		for _, s := range list {
			f.Add(which, []byte(s))
		}
	}
	e := newFuzzEnv(f)
	eps := e.endpoints()
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := eps[int(which)%len(eps)]
		tok := e.tok
		if ep.admin {
			tok = "admin"
		}
		e.serve(t, ep.method, ep.path, tok, body)
		if ep.path == "/v1/admin/apps/other/freeze" {
			e.serve(t, "POST", "/v1/admin/apps/other/unfreeze", "admin", nil)
		}
	})
}

// FuzzQueryParams: whatever the query of the calls that take one (limits,
// seq cursors, stream cursors, paging tokens), the answer is a success or a
// 4xx in the error shape.
func FuzzQueryParams(f *testing.F) {
	for _, s := range []struct {
		which uint8
		q     string
	}{
		{0, "limit=10"}, {0, "limit=0"}, {0, "before=AAAAAAAAAAA"}, {0, "before=%ff%fe&limit=-1"}, {0, "limit=201"},
		{1, "before=2&limit=50"}, {1, "before=-1"}, {1, "limit=abc"}, {1, "before=9223372036854775807"}, {1, "before=99999999999999999999"},
		{2, "after=0&limit=500"}, {2, "after=-5"}, {2, "limit=1001"}, {2, "after=1&after=2"}, {2, "after= 1"},
	} {
		f.Add(s.which, s.q)
	}
	e := newFuzzEnv(f)
	paths := []string{"/v1/conversations", "/v1/conversations/" + e.direct + "/messages", "/v1/sync"}
	f.Fuzz(func(t *testing.T, which uint8, q string) {
		e.serveQuery(t, "GET", paths[int(which)%len(paths)], q, e.tok, nil)
	})
}
