// Package webui is the browser chat client: plain HTML, CSS and JavaScript
// modules embedded in the binary (no build step, nothing fetched from
// elsewhere), served at GET / and GET /assets/..., and the development
// sign-in (POST /v1/dev/login) that the client uses when the server runs
// with --dev.
//
// The client speaks only the public API: REST for the conversation list,
// history and new conversations, and the WebSocket (/v1/ws) for the live
// stream, sends, read receipts and typing. Its outbox follows the rules of
// the Go client (client.Stream): every send keeps its client_id until the
// server acknowledges it and is sent again after each reconnect; the
// outbox and the stream cursor are kept in the tab's sessionStorage, so a
// reload loses neither.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Mounter is where the client's routes go: the API's handler, so that
// what the client does not serve still gets the API's JSON 404.
type Mounter interface {
	Handle(pattern string, h http.Handler)
}

// Mount registers GET / and GET /assets/... on m. It registers nothing
// broader, so every other path stays the API's.
func Mount(m Mounter) {
	h := Handler()
	m.Handle("GET /{$}", h)
	m.Handle("GET /assets/", h)
}

// csp allows the page to load and connect only to its own origin; the
// WebSocket is same-origin too ('self' covers ws: and wss: in current
// browsers).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type file struct {
	body  []byte
	ctype string
	etag  string
}

// Handler serves the embedded files: "/" is index.html, "/assets/x" is
// static/assets/x. Anything else, directories included, is a JSON 404 like
// the API's.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		files[strings.TrimPrefix(p, "static")] = file{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("webui: reading the embedded files: " + err.Error()) // a broken build
	}
	files["/"] = files["/index.html"]
	delete(files, "/index.html")

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok {
			writeError(w, http.StatusNotFound, "not_found", "no such file: "+r.URL.Path)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		// Revalidate every time: the files change with the binary, and an
		// ETag answer costs one round trip without the body.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/" {
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Frame-Options", "DENY")
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	})
}
