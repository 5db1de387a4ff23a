package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestHealthAndReady(t *testing.T) {
	e := start(t)
	var st struct{ Status string }
	e.do("GET", "/healthz", "", nil).want(t, 200, &st)
	if st.Status != "ok" {
		t.Fatalf("healthz status %q", st.Status)
	}
	e.do("GET", "/readyz", "", nil).want(t, 200, &st)
	if st.Status != "ready" {
		t.Fatalf("readyz status %q", st.Status)
	}
	// With the store gone the node is alive but not ready.
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	e.do("GET", "/healthz", "", nil).want(t, 200, nil)
	e.do("GET", "/readyz", "", nil).wantErr(t, 503, "unavailable")
}

func TestAdmin(t *testing.T) {
	e := start(t)

	for _, tok := range []string{"", "wrong", e.admin + "x"} {
		e.do("GET", "/v1/admin/apps", tok, nil).wantErr(t, 401, "unauthenticated", "admin token")
		e.do("POST", "/v1/admin/apps", tok, `{"id":"x"}`).wantErr(t, 401, "unauthenticated")
	}

	var created struct {
		App struct {
			ID, Name, Secret string
			Interop          []string
		}
	}
	e.do("POST", "/v1/admin/apps", e.admin, `{"id":"messenger","name":"Messenger"}`).want(t, 201, &created)
	if created.App.ID != "messenger" || created.App.Name != "Messenger" || created.App.Secret == "" || created.App.Interop == nil || len(created.App.Interop) != 0 {
		t.Fatalf("created %+v", created.App)
	}
	e.do("POST", "/v1/admin/apps", e.admin, `{"id":"messenger","name":"Again"}`).wantErr(t, 409, "conflict")
	e.do("POST", "/v1/admin/apps", e.admin, `{"id":"Bad App"}`).wantErr(t, 400, "invalid_argument", "app id")
	e.app("instagram")

	// A user token is not an admin token.
	user := e.token("messenger:alice")
	e.do("GET", "/v1/admin/apps", user, nil).wantErr(t, 401, "unauthenticated")

	created.App.Secret = "" // Unmarshal leaves absent fields alone
	e.do("PUT", "/v1/admin/apps/messenger/interop", e.admin, `{"apps":["instagram"]}`).want(t, 200, &created)
	if !slices.Equal(created.App.Interop, []string{"instagram"}) || created.App.Secret != "" {
		t.Fatalf("after interop: %+v", created.App)
	}
	e.do("PUT", "/v1/admin/apps/messenger/interop", e.admin, `{"apps":["nope"]}`).wantErr(t, 404, "not_found")
	e.do("PUT", "/v1/admin/apps/nope/interop", e.admin, `{"apps":[]}`).wantErr(t, 404, "not_found")
	e.do("PUT", "/v1/admin/apps/messenger/interop", e.admin, `{}`).wantErr(t, 400, "invalid_argument", "apps")

	raw := e.do("GET", "/v1/admin/apps", e.admin, nil).want(t, 200, nil).body
	if strings.Contains(string(raw), "secret") {
		t.Fatalf("listing shows secrets: %s", raw)
	}
	var list struct {
		Apps []struct {
			ID      string
			Interop []string
		}
	}
	json.Unmarshal(raw, &list)
	if len(list.Apps) != 2 || list.Apps[0].ID != "instagram" || list.Apps[1].ID != "messenger" || !slices.Equal(list.Apps[1].Interop, []string{"instagram"}) {
		t.Fatalf("apps %s", raw)
	}

	// Tokens: default lifetime one hour; explicit ttl honoured; bounds.
	var tok struct{ Token string }
	e.do("POST", "/v1/admin/apps/messenger/tokens", e.admin, `{"user":"alice"}`).want(t, 201, &tok)
	if c := claims(t, tok.Token); c.ExpiresAt.Sub(c.IssuedAt.Time) != time.Hour || c.Issuer != "messenger" || c.Subject != "alice" {
		t.Fatalf("claims %+v", c)
	}
	e.do("POST", "/v1/admin/apps/messenger/tokens", e.admin, `{"user":"alice","ttl_seconds":60}`).want(t, 201, &tok)
	if c := claims(t, tok.Token); c.ExpiresAt.Sub(c.IssuedAt.Time) != time.Minute {
		t.Fatalf("claims %+v", c)
	}
	e.do("POST", "/v1/admin/apps/messenger/tokens", e.admin, `{"user":"alice","ttl_seconds":0}`).wantErr(t, 400, "invalid_argument", "ttl_seconds")
	e.do("POST", "/v1/admin/apps/messenger/tokens", e.admin, `{"user":"alice","ttl_seconds":-5}`).wantErr(t, 400, "invalid_argument", "ttl_seconds")
	e.do("POST", "/v1/admin/apps/messenger/tokens", e.admin, `{"user":"alice","ttl_seconds":"60"}`).wantErr(t, 400, "invalid_argument", "ttl_seconds")
	e.do("POST", "/v1/admin/apps/messenger/tokens", e.admin, `{"user":"a b"}`).wantErr(t, 400, "invalid_argument", "user id")
	e.do("POST", "/v1/admin/apps/messenger/tokens", e.admin, `{}`).wantErr(t, 400, "invalid_argument", "user id")
	e.do("POST", "/v1/admin/apps/nope/tokens", e.admin, `{"user":"alice"}`).wantErr(t, 404, "not_found")
}

func claims(t *testing.T, tok string) jwt.RegisteredClaims {
	t.Helper()
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConversationsAndMessages(t *testing.T) {
	e := start(t)
	e.app("messenger")
	alice, bob, carol := e.token("messenger:alice"), e.token("messenger:bob"), e.token("messenger:carol")

	c := e.create(alice, 201, "", "messenger:bob")
	if c.Kind != "direct" || c.ID == "" || !slices.Equal(c.Members, []string{"messenger:alice", "messenger:bob"}) || c.LastSeq != 0 || c.CreatedAt.IsZero() {
		t.Fatalf("direct %+v", c)
	}
	// The same pair from either side is the same conversation, answered 200.
	if again := e.create(bob, 200, "", "messenger:alice"); again.ID != c.ID {
		t.Fatalf("second create made %s, want %s", again.ID, c.ID)
	}
	if again := e.create(alice, 200, "", "messenger:bob", "messenger:alice"); again.ID != c.ID {
		t.Fatalf("create naming the caller made %s, want %s", again.ID, c.ID)
	}

	var got struct{ Conversation conversation }
	e.do("GET", "/v1/conversations/"+c.ID, bob, nil).want(t, 200, &got)
	if got.Conversation.ID != c.ID {
		t.Fatalf("get %+v", got.Conversation)
	}

	s1 := e.send(alice, c.ID, "c-1", "hi bob")
	if s1.Message.Seq != 1 || s1.Message.Sender != "messenger:alice" || s1.Message.Body != "hi bob" || s1.Message.Kind != "text" ||
		s1.Message.ClientID != "c-1" || s1.Message.ConversationID != c.ID || s1.Cursor < 1 || s1.Message.SentAt.IsZero() {
		t.Fatalf("send %+v", s1)
	}
	// A repeated client id answers 200 with the first answer and stores
	// nothing, even with another body.
	first := e.do("POST", "/v1/conversations/"+c.ID+"/messages", alice, `{"client_id":"c-1","body":"hi bob"}`)
	var rep sendAnswer
	e.do("POST", "/v1/conversations/"+c.ID+"/messages", alice, `{"client_id":"c-1","body":"changed"}`).want(t, 200, &rep)
	first.want(t, 200, nil)
	if string(first.body) != string(e.do("POST", "/v1/conversations/"+c.ID+"/messages", alice, `{"client_id":"c-1","body":"x"}`).body) {
		t.Fatal("repeats answer differently")
	}
	if rep.Message.Seq != 1 || rep.Message.Body != "hi bob" || rep.Cursor != s1.Cursor || !rep.Message.SentAt.Equal(s1.Message.SentAt) {
		t.Fatalf("repeat %+v, first %+v", rep, s1)
	}
	var withMeta sendAnswer
	e.do("POST", "/v1/conversations/"+c.ID+"/messages", bob, `{"client_id":"c-1","body":"hello alice","meta":{"lang":"en"}}`).want(t, 201, &withMeta)
	if withMeta.Message.Seq != 2 || string(withMeta.Message.Meta) != `{"lang":"en"}` {
		t.Fatalf("meta message %+v", withMeta.Message)
	}
	for i := 3; i <= 7; i++ {
		e.send(alice, c.ID, fmt.Sprintf("m-%d", i), fmt.Sprintf("message %d", i))
	}

	// History: newest first, before and limit.
	h := e.history(bob, c.ID)
	if len(h) != 7 || h[0].Seq != 7 || h[6].Seq != 1 || h[6].Body != "hi bob" {
		t.Fatalf("history %+v", h)
	}
	var page struct{ Messages []message }
	e.do("GET", "/v1/conversations/"+c.ID+"/messages?before=5&limit=2", bob, nil).want(t, 200, &page)
	if len(page.Messages) != 2 || page.Messages[0].Seq != 4 || page.Messages[1].Seq != 3 {
		t.Fatalf("page %+v", page.Messages)
	}
	e.do("GET", "/v1/conversations/"+c.ID+"/messages?before=1", bob, nil).want(t, 200, &page)
	if page.Messages == nil || len(page.Messages) != 0 {
		t.Fatalf("before=1 gave %+v, want []", page.Messages)
	}

	// Read receipts reach the other member's stream.
	var rd struct {
		ReadSeq int64 `json:"read_seq"`
	}
	e.do("POST", "/v1/conversations/"+c.ID+"/read", bob, `{"seq":6}`).want(t, 200, &rd)
	if rd.ReadSeq != 6 {
		t.Fatalf("read_seq %d", rd.ReadSeq)
	}
	e.do("POST", "/v1/conversations/"+c.ID+"/read", bob, `{"seq":3}`).want(t, 200, &rd)
	if rd.ReadSeq != 6 {
		t.Fatalf("read position moved back to %d", rd.ReadSeq)
	}
	e.do("POST", "/v1/conversations/"+c.ID+"/read", bob, `{"seq":8}`).wantErr(t, 400, "invalid_argument", "seq")
	e.do("POST", "/v1/conversations/"+c.ID+"/read", bob, `{"seq":0}`).wantErr(t, 400, "invalid_argument", "seq")

	ups := e.syncAll(alice)
	checkCursors(t, ups)
	var convUpdates, reads int
	for _, u := range ups {
		switch u.Type {
		case "conversation":
			convUpdates++
		case "read":
			reads++
			if u.Reader != "messenger:bob" || u.Seq != 6 || u.ConversationID != c.ID {
				t.Fatalf("read update %+v", u)
			}
		}
	}
	if convUpdates != 1 || reads != 1 || len(ups) != 1+7+1 {
		t.Fatalf("alice's stream: %d updates, %d conversation, %d read: %+v", len(ups), convUpdates, reads, ups)
	}
	// The send answer's cursor is the sender's cursor for that message.
	for _, u := range ups {
		if u.Type == "message" && u.Message.Seq == 1 && u.Cursor != s1.Cursor {
			t.Fatalf("message 1 at alice's cursor %d, send answered %d", u.Cursor, s1.Cursor)
		}
	}

	// The list: read_seq and last_message as each member sees them.
	var list struct {
		Conversations []conversation
		Next          string
	}
	e.do("GET", "/v1/conversations", bob, nil).want(t, 200, &list)
	if len(list.Conversations) != 1 || list.Next != "" || list.Conversations[0].ReadSeq != 6 || list.Conversations[0].LastSeq != 7 ||
		list.Conversations[0].LastMessage == nil || list.Conversations[0].LastMessage.Seq != 7 {
		t.Fatalf("bob's list %+v", list)
	}

	// Sync paging.
	var sa syncAnswer
	e.do("GET", "/v1/sync?after=0&limit=2", alice, nil).want(t, 200, &sa)
	if len(sa.Updates) != 2 || sa.Cursor != 2 || !sa.More {
		t.Fatalf("sync page %+v", sa)
	}
	e.do("GET", "/v1/sync?after=9", alice, nil).want(t, 200, &sa)
	if len(sa.Updates) != 0 || sa.Cursor != 9 || sa.More || sa.Updates == nil {
		t.Fatalf("sync at the end %+v", sa)
	}

	// Groups: title makes a group; members add and remove.
	g := e.create(alice, 201, "team", "messenger:bob")
	if g.Kind != "group" || g.Title != "team" {
		t.Fatalf("group %+v", g)
	}
	e.do("POST", "/v1/conversations/"+g.ID+"/members", bob, `{"add":["messenger:carol"]}`).want(t, 200, &got)
	if !slices.Contains(got.Conversation.Members, "messenger:carol") {
		t.Fatalf("after add %+v", got.Conversation)
	}
	e.send(carol, g.ID, "c-1", "hi all")
	e.do("POST", "/v1/conversations/"+g.ID+"/members", bob, `{"remove":["messenger:carol"]}`).wantErr(t, 403, "permission_denied", "creator")
	e.do("POST", "/v1/conversations/"+g.ID+"/members", carol, `{"remove":["messenger:carol"]}`).want(t, 200, &got)
	if slices.Contains(got.Conversation.Members, "messenger:carol") {
		t.Fatalf("carol still in %+v", got.Conversation)
	}
	e.do("POST", "/v1/conversations/"+g.ID+"/messages", carol, `{"client_id":"c-2","body":"back?"}`).wantErr(t, 404, "not_found")
	e.do("POST", "/v1/conversations/"+c.ID+"/members", alice, `{"add":["messenger:carol"]}`).wantErr(t, 400, "invalid_argument", "group")
	e.do("POST", "/v1/conversations/"+g.ID+"/members", alice, `{}`).wantErr(t, 400, "invalid_argument")
}

// checkCursors fails unless the updates' cursors run 1, 2, 3, ...
func checkCursors(t *testing.T, ups []update) {
	t.Helper()
	for i, u := range ups {
		if u.Cursor != int64(i+1) {
			t.Fatalf("update %d has cursor %d: stream has a gap or duplicate", i, u.Cursor)
		}
	}
}

func TestConversationListPaging(t *testing.T) {
	e := start(t)
	e.app("messenger")
	alice := e.token("messenger:alice")
	var ids []string
	for i := range 5 {
		c := e.create(alice, 201, "", fmt.Sprintf("messenger:u%d", i))
		e.send(alice, c.ID, "c", "hi")
		ids = append(ids, c.ID)
	}
	// Activity in the first one moves it to the top.
	e.send(alice, ids[0], "c2", "again")
	want := []string{ids[0], ids[4], ids[3], ids[2], ids[1]}

	var seen []string
	before := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		var list struct {
			Conversations []conversation
			Next          string
		}
		e.do("GET", "/v1/conversations?limit=2&before="+before, alice, nil).want(t, 200, &list)
		for _, c := range list.Conversations {
			seen = append(seen, c.ID)
		}
		if list.Next == "" {
			break
		}
		before = list.Next
	}
	if !slices.Equal(seen, want) {
		t.Fatalf("paged list %v, want %v", seen, want)
	}
}

// TestErrors checks every kind of bad request, and that none of them
// changed anything.
func TestErrors(t *testing.T) {
	e := start(t)
	e.app("messenger")
	alice, bob := e.token("messenger:alice"), e.token("messenger:bob")
	c := e.create(alice, 201, "", "messenger:bob")
	e.send(alice, c.ID, "c-0", "first")
	before := snapshot(e, c.ID, alice, bob)

	msgs := "/v1/conversations/" + c.ID + "/messages"
	big := strings.Repeat("x", 4<<10+1)
	cases := []struct {
		name, method, path, body string
		status                   int
		code                     string
		mentions                 []string
	}{
		{"bad json", "POST", msgs, `{"client_id":"a","body":`, 400, "invalid_argument", []string{"not valid JSON"}},
		{"bad json syntax", "POST", msgs, `{"client_id":"a" "body":"x"}`, 400, "invalid_argument", []string{"not valid JSON"}},
		{"empty body", "POST", msgs, ``, 400, "invalid_argument", []string{"empty"}},
		{"not an object", "POST", msgs, `["a"]`, 400, "invalid_argument", []string{"object"}},
		{"null", "POST", msgs, `null`, 400, "invalid_argument", []string{"object"}},
		{"unknown field", "POST", msgs, `{"client_id":"a","body":"x","bdy":"y"}`, 400, "invalid_argument", []string{`"bdy"`, `"body"`}},
		{"trailing garbage", "POST", msgs, `{"client_id":"a","body":"x"} {}`, 400, "invalid_argument", []string{"after the JSON object"}},
		{"trailing junk", "POST", msgs, `{"client_id":"a","body":"x"}xyz`, 400, "invalid_argument", []string{"after the JSON object"}},
		{"wrong type", "POST", msgs, `{"client_id":"a","body":5}`, 400, "invalid_argument", []string{`"body"`, "string"}},
		{"wrong type int", "POST", "/v1/conversations/" + c.ID + "/read", `{"seq":"1"}`, 400, "invalid_argument", []string{`"seq"`}},
		{"fraction", "POST", "/v1/conversations/" + c.ID + "/read", `{"seq":1.5}`, 400, "invalid_argument", []string{`"seq"`}},
		{"bad utf-8", "POST", msgs, "{\"client_id\":\"a\",\"body\":\"\xff\xfe\"}", 400, "invalid_argument", []string{"UTF-8"}},
		{"no client id", "POST", msgs, `{"body":"x"}`, 400, "invalid_argument", []string{"client_id"}},
		{"long client id", "POST", msgs, `{"client_id":"` + strings.Repeat("a", 129) + `","body":"x"}`, 400, "invalid_argument", []string{"client_id"}},
		{"empty message", "POST", msgs, `{"client_id":"a","body":""}`, 400, "invalid_argument", []string{"body"}},
		{"meta not object", "POST", msgs, `{"client_id":"a","body":"x","meta":[1]}`, 400, "invalid_argument", []string{"meta"}},
		{"body over 4 KiB", "POST", msgs, `{"client_id":"a","body":"` + big + `"}`, 413, "payload_too_large", []string{"4096"}},
		{"request over 64 KiB", "POST", msgs, `{"client_id":"a","body":"x","meta":{"k":"` + strings.Repeat("y", 64<<10) + `"}}`, 413, "payload_too_large", []string{"65536"}},
		{"bad address", "POST", "/v1/conversations", `{"members":["bob"]}`, 400, "invalid_argument", []string{"app:user"}},
		{"bad user id", "POST", "/v1/conversations", `{"members":["messenger:b b"]}`, 400, "invalid_argument", []string{"user id"}},
		{"unknown app in member", "POST", "/v1/conversations", `{"members":["nope:bob"]}`, 404, "not_found", []string{"nope"}},
		{"no other member", "POST", "/v1/conversations", `{"members":["messenger:alice"]}`, 400, "invalid_argument", []string{"members"}},
		{"unknown app in add", "POST", "/v1/conversations/" + c.ID + "/members", `{"add":["nope:x"]}`, 404, "not_found", nil},
		{"limit zero", "GET", msgs + "?limit=0", "", 400, "invalid_argument", []string{"limit"}},
		{"limit too big", "GET", msgs + "?limit=201", "", 400, "invalid_argument", []string{"limit"}},
		{"limit not int", "GET", msgs + "?limit=ten", "", 400, "invalid_argument", []string{"limit"}},
		{"before negative", "GET", msgs + "?before=-1", "", 400, "invalid_argument", []string{"before"}},
		{"before overflow", "GET", msgs + "?before=99999999999999999999", "", 400, "invalid_argument", []string{"before"}},
		{"after not int", "GET", "/v1/sync?after=x", "", 400, "invalid_argument", []string{"after"}},
		{"after negative", "GET", "/v1/sync?after=-1", "", 400, "invalid_argument", []string{"after"}},
		{"sync limit", "GET", "/v1/sync?limit=1001", "", 400, "invalid_argument", []string{"limit"}},
		{"list limit", "GET", "/v1/conversations?limit=0", "", 400, "invalid_argument", []string{"limit"}},
		{"list token", "GET", "/v1/conversations?before=not-a-token!", "", 400, "invalid_argument", []string{"before"}},
		{"unknown conversation", "GET", "/v1/conversations/dnope", "", 404, "not_found", nil},
		{"unknown conversation send", "POST", "/v1/conversations/dnope/messages", `{"client_id":"a","body":"x"}`, 404, "not_found", nil},
		{"unknown conversation history", "GET", "/v1/conversations/dnope/messages", "", 404, "not_found", nil},
		{"unknown conversation read", "POST", "/v1/conversations/dnope/read", `{"seq":1}`, 404, "not_found", nil},
		{"block bad address", "POST", "/v1/blocks", `{"address":"bob"}`, 400, "invalid_argument", nil},
		{"block unknown app", "POST", "/v1/blocks", `{"address":"nope:bob"}`, 404, "not_found", nil},
		{"block self", "POST", "/v1/blocks", `{"address":"messenger:alice"}`, 400, "invalid_argument", nil},
		{"unblock bad address", "DELETE", "/v1/blocks/bob", "", 400, "invalid_argument", nil},
		{"unknown route", "GET", "/v1/nope", "", 404, "not_found", nil},
		{"unknown route root", "GET", "/nope", "", 404, "not_found", nil}, // "/" is the web client
		{"trailing slash", "GET", "/v1/conversations/", "", 404, "not_found", nil},
		{"wrong method", "DELETE", msgs, "", 405, "invalid_argument", []string{"GET", "POST"}},
		{"wrong method on collection", "PUT", "/v1/conversations", `{}`, 405, "invalid_argument", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := e.do(tc.method, tc.path, alice, tc.body)
			a.wantErr(t, tc.status, tc.code, tc.mentions...)
			if tc.status == 405 && !strings.Contains(a.header.Get("Allow"), "GET") {
				t.Fatalf("405 with Allow %q", a.header.Get("Allow"))
			}
		})
	}
	if after := snapshot(e, c.ID, alice, bob); after != before {
		t.Fatalf("failed requests changed state:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot renders what users can see: history, streams, lists, apps.
func snapshot(e *env, conv string, tokens ...string) string {
	e.t.Helper()
	var b strings.Builder
	for _, tok := range tokens {
		b.Write(e.do("GET", "/v1/conversations/"+conv+"/messages?limit=200", tok, nil).body)
		b.Write(e.do("GET", "/v1/sync?limit=1000", tok, nil).body)
		b.Write(e.do("GET", "/v1/conversations?limit=200", tok, nil).body)
	}
	b.Write(e.do("GET", "/v1/admin/apps", e.admin, nil).body)
	return b.String()
}

func TestAuthorisation(t *testing.T) {
	e := start(t)
	e.app("messenger")
	e.app("instagram")
	alice, bob, mallory := e.token("messenger:alice"), e.token("messenger:bob"), e.token("messenger:mallory")
	c := e.create(alice, 201, "", "messenger:bob")
	e.send(bob, c.ID, "c-1", "secret stuff")
	g := e.create(alice, 201, "team", "messenger:bob")
	before := snapshot(e, c.ID, alice, bob)

	// A non-member can neither read nor write, and learns nothing.
	for _, id := range []string{c.ID, g.ID} {
		e.do("GET", "/v1/conversations/"+id, mallory, nil).wantErr(t, 404, "not_found")
		e.do("GET", "/v1/conversations/"+id+"/messages", mallory, nil).wantErr(t, 404, "not_found")
		e.do("POST", "/v1/conversations/"+id+"/messages", mallory, `{"client_id":"m","body":"hi"}`).wantErr(t, 404, "not_found")
		e.do("POST", "/v1/conversations/"+id+"/read", mallory, `{"seq":1}`).wantErr(t, 404, "not_found")
		e.do("POST", "/v1/conversations/"+id+"/members", mallory, `{"add":["messenger:mallory"]}`).wantErr(t, 404, "not_found")
	}
	var list struct{ Conversations []conversation }
	e.do("GET", "/v1/conversations", mallory, nil).want(t, 200, &list)
	if len(list.Conversations) != 0 {
		t.Fatalf("mallory lists %+v", list.Conversations)
	}
	if ups := e.syncAll(mallory); len(ups) != 0 {
		t.Fatalf("mallory's stream %+v", ups)
	}

	// Tokens that must not pass.
	secret := e.secrets["messenger"]
	now := time.Now()
	good := jwt.RegisteredClaims{Issuer: "messenger", Subject: "alice", IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}
	sign := func(m jwt.SigningMethod, claims jwt.Claims, key any) string {
		s, err := jwt.NewWithClaims(m, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired := good
	expired.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour))
	noExp := good
	noExp.ExpiresAt = nil
	otherApp := good // says messenger, signed with instagram's secret
	unknownApp := good
	unknownApp.Issuer = "nope"
	crossApp := good // instagram's key acting as messenger's user is otherApp; this is instagram's key for an instagram user in a messenger conversation
	crossApp.Issuer = "instagram"
	// alg confusion: an RS256 header over an HMAC of the secret.
	rsHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
	payload := strings.Split(sign(jwt.SigningMethodHS256, good, []byte(secret)), ".")[1]
	rsSig := strings.Split(sign(jwt.SigningMethodHS256, good, []byte(secret)), ".")[2]
	bad := map[string]string{
		"other app's secret": sign(jwt.SigningMethodHS256, otherApp, []byte(e.secrets["instagram"])),
		"expired":            sign(jwt.SigningMethodHS256, expired, []byte(secret)),
		"no exp":             sign(jwt.SigningMethodHS256, noExp, []byte(secret)),
		"alg none":           sign(jwt.SigningMethodNone, good, jwt.UnsafeAllowNoneSignatureType),
		"HS384":              sign(jwt.SigningMethodHS384, good, []byte(secret)),
		"HS512":              sign(jwt.SigningMethodHS512, good, []byte(secret)),
		"RS256 header":       rsHeader + "." + payload + "." + rsSig,
		"unknown issuer":     sign(jwt.SigningMethodHS256, unknownApp, []byte(secret)),
		"garbage":            "not.a.jwt",
		"tampered":           sign(jwt.SigningMethodHS256, good, []byte(secret)) + "x",
	}
	// The control: the same claims signed properly pass.
	e.do("GET", "/v1/conversations/"+c.ID, sign(jwt.SigningMethodHS256, good, []byte(secret)), nil).want(t, 200, nil)
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			e.do("GET", "/v1/conversations/"+c.ID, tok, nil).wantErr(t, 401, "unauthenticated")
			e.do("POST", "/v1/conversations/"+c.ID+"/messages", tok, `{"client_id":"evil","body":"x"}`).wantErr(t, 401, "unauthenticated")
			a := e.do("GET", "/v1/sync", tok, nil)
			a.wantErr(t, 401, "unauthenticated")
			if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without WWW-Authenticate: %v", a.header)
			}
		})
	}
	// A token of one app never acts in another: instagram's alice is not
	// messenger's alice.
	e.do("GET", "/v1/conversations/"+c.ID, sign(jwt.SigningMethodHS256, crossApp, []byte(e.secrets["instagram"])), nil).wantErr(t, 404, "not_found")
	for _, h := range []string{"", "Basic " + alice, "Bearer", "Token " + alice} {
		req, _ := http.NewRequest("GET", e.base+"/v1/sync", nil)
		if h != "" {
			req.Header.Set("Authorization", h)
		}
		res, err := e.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Fatalf("Authorization %q: status %d", h, res.StatusCode)
		}
	}
	if after := snapshot(e, c.ID, alice, bob); after != before {
		t.Fatalf("refused requests changed state:\nbefore %s\nafter  %s", before, after)
	}
}

func TestInterop(t *testing.T) {
	e := start(t)
	e.app("messenger")
	e.app("instagram")
	alice, bob := e.token("messenger:alice"), e.token("instagram:bob")

	e.do("POST", "/v1/conversations", alice, `{"members":["instagram:bob"]}`).wantErr(t, 403, "permission_denied")
	e.interop("messenger", "instagram") // one way only
	e.do("POST", "/v1/conversations", alice, `{"members":["instagram:bob"]}`).wantErr(t, 403, "permission_denied")
	e.do("POST", "/v1/conversations", bob, `{"members":["messenger:alice"]}`).wantErr(t, 403, "permission_denied")
	e.do("POST", "/v1/conversations", alice, `{"members":["instagram:bob"],"title":"g"}`).wantErr(t, 403, "permission_denied")
	if ups := e.syncAll(bob); len(ups) != 0 {
		t.Fatalf("refused creates reached bob: %+v", ups)
	}
	e.interop("instagram", "messenger") // both ways
	c := e.create(alice, 201, "", "instagram:bob")
	e.send(bob, c.ID, "c-1", "hi from instagram")
	e.send(alice, c.ID, "c-1", "hi from messenger")

	// Withdrawn interop stops sends in the existing conversation.
	e.interop("instagram")
	e.do("POST", "/v1/conversations/"+c.ID+"/messages", alice, `{"client_id":"c-2","body":"still there?"}`).wantErr(t, 403, "permission_denied")
	e.do("POST", "/v1/conversations/"+c.ID+"/messages", bob, `{"client_id":"c-2","body":"still there?"}`).wantErr(t, 403, "permission_denied")
	if h := e.history(alice, c.ID); len(h) != 2 {
		t.Fatalf("history %+v", h)
	}
}

func TestBlocks(t *testing.T) {
	e := start(t)
	e.app("messenger")
	alice, bob := e.token("messenger:alice"), e.token("messenger:bob")
	c := e.create(alice, 201, "", "messenger:bob")

	var bl struct {
		Address string
		Blocked bool
	}
	e.do("POST", "/v1/blocks", bob, `{"address":"messenger:alice"}`).want(t, 200, &bl)
	if bl.Address != "messenger:alice" || !bl.Blocked {
		t.Fatalf("block answer %+v", bl)
	}
	e.do("POST", "/v1/blocks", bob, `{"address":"messenger:alice"}`).want(t, 200, nil) // idempotent
	e.do("POST", "/v1/conversations/"+c.ID+"/messages", alice, `{"client_id":"c-1","body":"hi"}`).wantErr(t, 403, "permission_denied")
	e.do("POST", "/v1/conversations/"+c.ID+"/messages", bob, `{"client_id":"c-1","body":"hi"}`).wantErr(t, 403, "permission_denied", "unblock")
	e.do("POST", "/v1/conversations", alice, `{"members":["messenger:bob"],"title":"g"}`).wantErr(t, 403, "permission_denied")
	if h := e.history(bob, c.ID); len(h) != 0 {
		t.Fatalf("blocked message stored: %+v", h)
	}
	e.do("DELETE", "/v1/blocks/messenger:alice", bob, nil).want(t, 200, &bl)
	if bl.Blocked {
		t.Fatalf("unblock answer %+v", bl)
	}
	e.do("DELETE", "/v1/blocks/messenger:alice", bob, nil).want(t, 200, nil) // idempotent
	e.send(alice, c.ID, "c-1", "hi")
}

// TestDirectCreateRace: many racing creates of one direct conversation make
// one, answered 201 once.
func TestDirectCreateRace(t *testing.T) {
	e := start(t)
	e.app("messenger")
	alice, bob := e.token("messenger:alice"), e.token("messenger:bob")
	const n = 16
	type result struct {
		status int
		id     string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		tok, other := alice, "messenger:bob"
		if i%2 == 1 {
			tok, other = bob, "messenger:alice"
		}
		wg.Go(func() {
			var got struct{ Conversation conversation }
			a := e.do("POST", "/v1/conversations", tok, map[string]any{"members": []string{other}})
			json.Unmarshal(a.body, &got)
			results[i] = result{a.status, got.Conversation.ID}
		})
	}
	wg.Wait()
	created := 0
	for _, r := range results {
		if r.status == 201 {
			created++
		} else if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		if r.id == "" || r.id != results[0].id {
			t.Fatalf("ids differ: %+v", results)
		}
	}
	if created != 1 {
		t.Fatalf("%d creates answered 201, want 1", created)
	}
	for _, tok := range []string{alice, bob} {
		if ups := e.syncAll(tok); len(ups) != 1 || ups[0].Type != "conversation" {
			t.Fatalf("stream after the race: %+v", ups)
		}
	}
}
