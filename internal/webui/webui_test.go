package webui_test

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/httpapi"
	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
	"github.com/switchboard-chat/switchboard/internal/webui"
)

// serve mounts the client (and the dev sign-in when dev) on the API's
// handler, as the server does, over a real socket.
func serve(t *testing.T, dev bool) (string, *messaging.Service) {
	t.Helper()
	svc := messaging.New(messaging.Config{Store: memstore.New()})
	api := httpapi.New(httpapi.Config{Service: svc, AdminToken: "admin"})
	webui.Mount(api)
	if dev {
		webui.MountDev(api, svc, nil)
	}
	ts := httptest.NewServer(api)
	t.Cleanup(ts.Close)
	return ts.URL, svc
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// errorCode decodes the API's error shape, failing the test on anything
// else.
func errorCode(t *testing.T, a answer) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(a.body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the API's error shape (%d): %q", a.status, a.body)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q", ct)
	}
	return e.Error.Code
}

func TestServesTheClient(t *testing.T) {
	base, _ := serve(t, false)

	a := do(t, "GET", base+"/", "")
	if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", a.status, a.header.Get("Content-Type"))
	}
	csp := a.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, id := range []string{"signin-app", "signin-user", "signin-submit", "token-input", "new-conversation-input",
		"new-conversation-submit", "composer-input", "send-button", "typing-indicator", "connection-status"} {
		if !strings.Contains(a.body, `data-testid="`+id+`"`) {
			t.Errorf("index.html lacks data-testid %q", id)
		}
	}
	if h := do(t, "HEAD", base+"/", ""); h.status != 200 || h.body != "" {
		t.Errorf("HEAD /: %d, %d bytes", h.status, len(h.body))
	}

	js := do(t, "GET", base+"/assets/main.js", "")
	if js.status != 200 || !strings.HasPrefix(js.header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("main.js: %d %s", js.status, js.header.Get("Content-Type"))
	}
	etag := js.header.Get("ETag")
	if etag == "" || js.header.Get("Cache-Control") != "no-cache" {
		t.Errorf("main.js: ETag %q, Cache-Control %q", etag, js.header.Get("Cache-Control"))
	}
	if again := do(t, "GET", base+"/assets/main.js", "", "If-None-Match", etag); again.status != 304 {
		t.Errorf("revalidation: %d, want 304", again.status)
	}
	if css := do(t, "GET", base+"/assets/app.css", ""); !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("app.css: %s", css.header.Get("Content-Type"))
	}

	// Only the client's own paths: the rest stays the API's, with its
	// JSON answers.
	for _, p := range []string{"/assets/nope.js", "/assets/", "/index.html", "/nope", "/v1/nope", "/v1/dev", "/v1/dev/login"} {
		a := do(t, "GET", base+p, "")
		if a.status != 404 || errorCode(t, a) != "not_found" {
			t.Errorf("GET %s: %d %q, want the JSON 404", p, a.status, a.body)
		}
	}
	if a := do(t, "POST", base+"/", "{}"); a.status != 405 || errorCode(t, a) != "invalid_argument" {
		t.Errorf("POST /: %d %q, want the JSON 405", a.status, a.body)
	}
	if a := do(t, "POST", base+"/v1/dev/login", `{"app":"a","user":"b"}`); a.status != 404 || errorCode(t, a) != "not_found" {
		t.Errorf("dev sign-in without --dev: %d %q, want 404", a.status, a.body)
	}
}

// Every file the page refers to is embedded, and nothing refers to
// anywhere else: no CDN, no fonts or scripts from other hosts.
func TestAssetsSelfContained(t *testing.T) {
	base, _ := serve(t, false)
	ref := regexp.MustCompile(`(?:src|href)="([^"]+)"|from "([^"]+)"|import\("([^"]+)"\)|url\(([^)]+)\)`)
	external := regexp.MustCompile(`(?i)\b(?:https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
	namespace := regexp.MustCompile(`xmlns(?::\w+)?="[^"]*"`) // a name, never fetched
	err := filepath.WalkDir("static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if m := external.Find(namespace.ReplaceAll(b, nil)); m != nil {
			t.Errorf("%s refers to another host: %s", p, m)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			u := m[1] + m[2] + m[3] + m[4]
			if strings.HasPrefix(u, "data:") || strings.HasPrefix(u, "#") {
				continue
			}
			switch {
			case strings.HasPrefix(u, "./"):
				u = "/assets/" + strings.TrimPrefix(u, "./")
			case !strings.HasPrefix(u, "/"):
				t.Errorf("%s: reference %q is neither absolute nor ./relative", p, u)
				continue
			}
			if a := do(t, "GET", base+u, ""); a.status != 200 {
				t.Errorf("%s refers to %s, which answers %d", p, u, a.status)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDevSignIn(t *testing.T) {
	base, svc := serve(t, true)
	if a := do(t, "GET", base+"/v1/dev", ""); a.status != 200 || strings.TrimSpace(a.body) != `{"dev":true}` {
		t.Errorf("GET /v1/dev: %d %q", a.status, a.body)
	}
	a := do(t, "POST", base+"/v1/dev/login", `{"app":"messenger","user":"alice"}`)
	var ok struct{ Token string }
	if a.status != 200 || json.Unmarshal([]byte(a.body), &ok) != nil || ok.Token == "" {
		t.Fatalf("sign-in: %d %q", a.status, a.body)
	}
	if who, err := svc.Authenticate(context.Background(), ok.Token); err != nil || who != "messenger:alice" {
		t.Fatalf("the token authenticates as %q, %v", who, err)
	}
	// The token works on the API, as any user token does.
	if a := do(t, "GET", base+"/v1/conversations", "", "Authorization", "Bearer "+ok.Token); a.status != 200 {
		t.Errorf("the API refused the dev token: %d %q", a.status, a.body)
	}

	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"app":"Bad App","user":"alice"}`, 400, "invalid_argument"},
		{`{"app":"messenger","user":""}`, 400, "invalid_argument"},
		{`{"app":"messenger","user":"alice","admin":true}`, 400, "invalid_argument"},
		{`{"app":"messenger","user":"alice"} {}`, 400, "invalid_argument"},
		{`not json`, 400, "invalid_argument"},
		{``, 400, "invalid_argument"},
		{`{"app":"` + strings.Repeat("a", 5000) + `","user":"x"}`, 413, "payload_too_large"},
	} {
		a := do(t, "POST", base+"/v1/dev/login", tc.body)
		if a.status != tc.status || errorCode(t, a) != tc.code {
			t.Errorf("sign-in with %.40q: %d %q, want %d %s", tc.body, a.status, a.body, tc.status, tc.code)
		}
	}
}
