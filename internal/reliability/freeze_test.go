package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/client"
)

// adminCall makes an admin call with a raw body and returns status and body.
func (n *node) adminCall(method, path, body string) (int, string) {
	n.t.Helper()
	req, _ := http.NewRequest(method, n.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := n.hc.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// wsFrame reads frames until one of type typ.
func wsFrame(t *testing.T, c *websocket.Conn, typ string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for a %s frame: %v", typ, err)
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if f["type"] == typ {
			return f
		}
	}
}

// The operators' brake: a frozen app's users get 503 with a clear message
// on REST, new WebSockets are refused, existing ones have their sends
// refused with an error frame; another app carries on; unfreezing restores
// service. Limits are validated and shown in force.
func TestFreezeAndLimitsAdmin(t *testing.T) {
	n := newNode(t, nodeOpts{})
	ctx := context.Background()
	n.app("messenger")
	n.app("other")

	// Limits: any subset, validated, shown with the defaults filled in.
	status, body := n.adminCall("PUT", "/v1/admin/apps/messenger/limits", `{"sends_per_second":5,"max_connections":3}`)
	var ans struct {
		App struct {
			Limits map[string]int `json:"limits"`
			Frozen bool           `json:"frozen"`
		} `json:"app"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &ans) != nil {
		t.Fatalf("PUT limits: %d %s", status, body)
	}
	if l := ans.App.Limits; l["sends_per_second"] != 5 || l["max_connections"] != 3 || l["burst"] != 2000 || l["user_sends_per_second"] != 10 || l["user_burst"] != 20 {
		t.Fatalf("limits in force: %v", l)
	}
	for _, bad := range []string{`{"burst":0}`, `{"sends_per_second":-1}`, `{"max_connections":1e12}`, `{"burst":"5"}`, `{"bogus":1}`, `[]`} {
		if status, body := n.adminCall("PUT", "/v1/admin/apps/messenger/limits", bad); status != 400 || !strings.Contains(body, "invalid_argument") {
			t.Errorf("PUT limits %s: %d %s, want 400", bad, status, body)
		}
	}
	if status, _ := n.adminCall("PUT", "/v1/admin/apps/nosuch/limits", `{"burst":1}`); status != 404 {
		t.Errorf("limits of an unknown app: %d", status)
	}
	apps, err := n.admin.Apps(ctx)
	if err != nil || apps[0].Limits["sends_per_second"] != 5 {
		t.Fatalf("listing after the change: %v %+v", err, apps)
	}

	aliceTok := n.token("messenger", "alice")
	alice := n.user("messenger", "alice", nil)
	conv, _, err := alice.CreateConversation(ctx, []string{"messenger:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}
	otherConv, _, err := n.user("other", "carol", nil).CreateConversation(ctx, []string{"other:dan"}, "")
	if err != nil {
		t.Fatal(err)
	}
	carolTok := n.token("other", "carol")
	wsURL := "ws" + strings.TrimPrefix(n.base, "http") + "/v1/ws?token="
	old, _, err := websocket.Dial(ctx, wsURL+aliceTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.CloseNow()
	wsFrame(t, old, "ready")

	if err := n.admin.Freeze(ctx, "messenger"); err != nil {
		t.Fatal(err)
	}
	status, h, _ := n.post("/v1/conversations/"+conv.ID+"/messages", aliceTok, `{"client_id":"f1","body":"hi"}`)
	if status != 503 || h.Get("Retry-After") == "" {
		t.Fatalf("a frozen app's send: %d Retry-After %q", status, h.Get("Retry-After"))
	}
	_, err = alice.History(ctx, conv.ID, 0, 10)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 503 || !strings.Contains(ce.Message, "messenger is frozen by the operators") {
		t.Fatalf("a frozen app's history: %v", err)
	}
	// New sockets are refused before the upgrade.
	_, res, err := websocket.Dial(ctx, wsURL+aliceTok, nil)
	if err == nil || res == nil || res.StatusCode != 503 {
		t.Fatalf("a new socket of a frozen app: %v %v", err, res)
	}
	// The open one has its sends refused.
	old.Write(ctx, websocket.MessageText, []byte(`{"type":"send","ref":"r1","conversation_id":"`+conv.ID+`","client_id":"f2","body":"hi"}`))
	f := wsFrame(t, old, "error")
	if e, _ := f["error"].(map[string]any); f["ref"] != "r1" || e["code"] != "unavailable" || !strings.Contains(fmt.Sprint(e["message"]), "frozen") {
		t.Fatalf("a send on an open socket of a frozen app: %v", f)
	}
	// The other app carries on.
	if status, _, _ := n.post("/v1/conversations/"+otherConv.ID+"/messages", carolTok, `{"client_id":"o1","body":"hi"}`); status != 201 {
		t.Fatalf("another app's send while messenger is frozen: %d", status)
	}

	if err := n.admin.Unfreeze(ctx, "messenger"); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := n.post("/v1/conversations/"+conv.ID+"/messages", aliceTok, `{"client_id":"f1","body":"hi"}`); status != 201 {
		t.Fatalf("after unfreeze: %d", status)
	}
	old.Write(ctx, websocket.MessageText, []byte(`{"type":"send","ref":"r3","conversation_id":"`+conv.ID+`","client_id":"f3","body":"hi"}`))
	if f := wsFrame(t, old, "ack"); f["ref"] != "r3" {
		t.Fatalf("ack after unfreeze: %v", f)
	}
	// Nothing refused was stored.
	msgs, err := alice.History(ctx, conv.ID, 0, 10)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("history after unfreeze: %v, %d messages, want 2 (f1, f3)", err, len(msgs))
	}

	// max_connections 3: the old socket and two more, then 503.
	var extra []*websocket.Conn
	for range 2 {
		c, _, err := websocket.Dial(ctx, wsURL+aliceTok, nil)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, c)
	}
	if _, res, err := websocket.Dial(ctx, wsURL+aliceTok, nil); err == nil || res == nil || res.StatusCode != 503 {
		t.Fatalf("a fourth socket with max_connections 3: %v %v", err, res)
	}
	extra[0].Close(websocket.StatusNormalClosure, "")
	waitFor(t, "the closed socket's slot", 5*time.Second, func() bool { return n.adm.Connections("messenger") == 2 })
	c, _, err := websocket.Dial(ctx, wsURL+aliceTok, nil)
	if err != nil {
		t.Fatalf("a socket after one closed: %v", err)
	}
	c.CloseNow()
	extra[1].CloseNow()
}

// Each user may send 10 messages per second with a burst of 20 by
// default: past it, 429 rate_limited with Retry-After on REST, an error
// frame on the WebSocket; other users of the same app are not affected.
func TestUserSendRate(t *testing.T) {
	n := newNode(t, nodeOpts{})
	ctx := context.Background()
	n.app("a")
	tok := n.token("a", "alice")
	conv, _, err := n.user("a", "alice", nil).CreateConversation(ctx, []string{"a:bob"}, "")
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/conversations/" + conv.ID + "/messages"
	ok, limited := 0, 0
	var retry string
	for i := range 40 {
		status, h, _ := n.post(path, tok, fmt.Sprintf(`{"client_id":"r%d","body":"x"}`, i))
		switch status {
		case 201:
			ok++
		case 429:
			limited++
			retry = h.Get("Retry-After")
		default:
			t.Fatalf("send %d: %d", i, status)
		}
	}
	// 40 sends take far less than a second here: the burst of 20 and the
	// few tokens that refill meanwhile.
	if ok < 20 || ok > 30 || limited == 0 {
		t.Fatalf("%d accepted, %d refused of 40 at once; want the burst of 20 and a few more", ok, limited)
	}
	if s, err := strconv.Atoi(retry); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", retry)
	}
	// bob is not limited by alice's sends.
	if status, _, _ := n.post(path, n.token("a", "bob"), `{"client_id":"b","body":"x"}`); status != 201 {
		t.Fatalf("bob: %d", status)
	}
	// The WebSocket is held to the same bucket.
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.base, "http")+"/v1/ws?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 5 {
		c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"type":"send","ref":"w%d","conversation_id":"%s","client_id":"w%d","body":"x"}`, i, conv.ID, i)))
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	answers, refused := 0, 0
	for answers < 5 {
		_, b, err := c.Read(rctx)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Type, Ref string
			Error     struct{ Code string }
		}
		json.Unmarshal(b, &f)
		if !strings.HasPrefix(f.Ref, "w") {
			continue
		}
		answers++
		if f.Type == "error" && f.Error.Code == "rate_limited" {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("5 WebSocket sends right after the REST burst: none refused")
	}
}
