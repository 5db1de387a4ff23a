package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-chat/switchboard/internal/metrics/metricstest"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// chromiumPath is Debian's chromium unless SWITCHBOARD_CHROMIUM names
// another Chrome or Chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SWITCHBOARD_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		// A failure, not a skip: these tests are the proof that the web
		// client works, and a skipped proof proves nothing.
		t.Fatalf("the browser tests need chromium at %s (%v). Install it with:\n\tapt-get update && apt-get install -y chromium\n"+
			"or set SWITCHBOARD_CHROMIUM to the path of a Chrome or Chromium binary.", p, err)
	}
	return p
}

// screenshotDir is where the tests write their screenshots:
// testdata/screenshots of this package (kept out of git by
// testdata/.gitignore), or $SWITCHBOARD_SCREENSHOTS.
func screenshotDir(t *testing.T) string {
	t.Helper()
	d := os.Getenv("SWITCHBOARD_SCREENSHOTS")
	if d == "" {
		d = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatalf("screenshots: %v", err)
	}
	return d
}

// lockedBuffer collects the server's log for assertions.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs the real server in-process on 127.0.0.1:0 over Pebble
// in a temporary directory, until the test ends. It returns the server,
// its base URL and its log.
func startServer(t *testing.T, dev bool) (*server.Server, string, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Dev: dev, Logger: log})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	addr := srv.Addr()
	if addr == "" {
		cancel()
		t.Fatalf("server.Run: %v", <-done)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server.Run: %v", err)
		}
	})
	return srv, "http://" + addr, logs
}

// window is one browser, with its own profile (and so its own
// sessionStorage), showing the web client.
type window struct {
	t    *testing.T
	name string
	ctx  context.Context
	base string

	mu     sync.Mutex // guards errors
	errors []string   // uncaught exceptions of the page
}

// openWindow starts a headless chromium of its own with a viewport of
// width x height and opens the client in it.
func openWindow(t *testing.T, base, name string, width, height int) *window {
	t.Helper()
	exe := chromiumPath(t)
	profile := t.TempDir() // made before the browser, so removed after it
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // runs as root in CI containers
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(width, height),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	w := &window{t: t, name: name, ctx: ctx, base: base}
	t.Cleanup(func() {
		// Close the browser and wait for it, so that its profile directory
		// is no longer written when the test removes it.
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		chromedp.Cancel(cctx)
		cancel()
		acancel()
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, e := range w.errors {
			t.Errorf("%s: uncaught exception in the page: %s", name, e)
		}
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("%s: starting chromium (%s): %v", name, exe, err)
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			w.mu.Lock()
			w.errors = append(w.errors, msg)
			w.mu.Unlock()
		}
	}()
	w.do(chromedp.EmulateViewport(int64(width), int64(height)), chromedp.Navigate(base+"/"))
	return w
}

func (w *window) do(actions ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		w.fail("%v", err)
	}
}

// eval runs a JavaScript expression and decodes its value into T.
func eval[T any](w *window, expr string) T {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		w.fail("evaluating %s: %v", expr, err)
	}
	return v
}

// wait waits until the JavaScript expression is truthy.
func (w *window) wait(what, expr string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		w.fail("waiting for %s: %v", what, err)
	}
}

// fail ends the test with the page's state and a screenshot, which say
// more than a timeout.
func (w *window) fail(format string, args ...any) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		status: document.querySelector("[data-testid=connection-status]")?.dataset.state,
		signin: !document.querySelector("#signin")?.hidden,
		errors: [...document.querySelectorAll(".error")].map(e => e.textContent).filter(Boolean),
		conversations: [...document.querySelectorAll("[data-testid=conversation-item]")].map(e => e.getAttribute("aria-label")),
		messages: [...document.querySelectorAll("[data-testid=message-item]")].map(e => e.dataset.state + ": " + e.querySelector(".body").textContent),
		typing: document.querySelector("[data-testid=typing-indicator]")?.textContent,
	})`))
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		p := filepath.Join(screenshotDir(w.t), "failure-"+w.name+".png")
		if os.WriteFile(p, png, 0o644) == nil {
			state += "\nscreenshot: " + p
		}
	}
	w.t.Fatalf("%s: %s\npage: %s", w.name, fmt.Sprintf(format, args...), state)
}

// screenshot writes the viewport to the screenshot folder as name.png.
func (w *window) screenshot(name string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		w.fail("screenshot: %v", err)
	}
	p := filepath.Join(screenshotDir(w.t), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		w.t.Fatalf("screenshot: %v", err)
	}
	w.t.Logf("screenshot %s", p)
}

// setOffline cuts the page's network or restores it: no request or new
// socket gets through, and navigator.onLine turns false with an "offline"
// event, as when a laptop loses its Wi-Fi. (Chrome's emulation leaves
// sockets that are open already alone; the page closes its own on the
// event, as it must since a socket can take long to notice a dead
// network.)
func (w *window) setOffline(off bool) {
	w.t.Helper()
	var rules []*network.Conditions
	if off {
		rules = []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}}
	}
	w.emulate(rules, off)
}

// blockSocket makes the page's new WebSocket connections fail while the
// page itself still loads, or lets them through again.
func (w *window) blockSocket(block bool) {
	w.t.Helper()
	var rules []*network.Conditions
	if block {
		rules = []*network.Conditions{{URLPattern: "ws://*:*/v1/ws?*", Offline: true, DownloadThroughput: -1, UploadThroughput: -1}}
	}
	w.emulate(rules, false)
}

func (w *window) emulate(rules []*network.Conditions, offline bool) {
	w.t.Helper()
	if rules == nil {
		rules = []*network.Conditions{} // none: the list is required
	}
	w.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: rules,
		}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
		})
		return err
	}))
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// bodies answers the bodies of the message items shown, in page order.
func (w *window) bodies() []string {
	w.t.Helper()
	return eval[[]string](w, `[...document.querySelectorAll("[data-testid=message-item] .body")].map(e => e.textContent)`)
}

// waitBodies waits until the message view shows exactly want, in order.
func (w *window) waitBodies(what string, want []string) {
	w.t.Helper()
	b, _ := json.Marshal(want)
	w.wait(what, `JSON.stringify([...document.querySelectorAll("[data-testid=message-item] .body")].map(e => e.textContent)) === `+js(string(b)))
}

// signIn uses the development sign-in and waits for the live stream.
func (w *window) signIn(app, user string) {
	w.t.Helper()
	w.wait("the development sign-in form", `!document.querySelector("#dev-form").hidden`)
	w.do(
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signin-app]`), app),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=signin-user]`), user),
		chromedp.Click(chromedp.CSS(`[data-testid=signin-submit]`)),
	)
	w.waitLive()
}

func (w *window) waitLive() {
	w.t.Helper()
	w.wait("the connection to go live", `document.querySelector("[data-testid=connection-status]").dataset.state === "live"`)
}

// typeIn types text into the composer, one key at a time like a person.
func (w *window) typeIn(text string) {
	w.t.Helper()
	w.do(chromedp.SendKeys(chromedp.CSS(`[data-testid=composer-input]`), text))
}

// send types text and presses Enter.
func (w *window) send(text string) {
	w.t.Helper()
	w.typeIn(text)
	w.do(pressEnter(false))
}

// pressEnter presses Enter (with Shift when shift) as a keyboard does: a
// keyDown carrying the text "\r" and a keyUp, so that a page which
// cancels the keydown gets no newline. (chromedp's SendKeys also sends a
// separate char event, which inserts a newline whatever the page does.)
func pressEnter(shift bool) chromedp.Action[chromedp.Void] {
	var mods int64
	if shift {
		mods = 8 // Shift, in the protocol's bit field
	}
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeKeyDown, input.DispatchKeyEventTypeKeyUp} {
			p := input.DispatchKeyEventParams{Type: typ, Modifiers: mods, Key: "Enter", Code: "Enter",
				WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13}
			if typ == input.DispatchKeyEventTypeKeyDown {
				p.Text = "\r"
				p.UnmodifiedText = "\r"
			}
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, p); err != nil {
				return err
			}
		}
		return nil
	})
}

// acksInStream scrapes the server's switchboard_ws_acks_in_stream_total:
// the acks written in the place of their message's update, for sessions
// that asked for merge_acks.
func acksInStream(t *testing.T, base string) float64 {
	t.Helper()
	fams := metricstest.Scrape(t, base)
	f := fams["switchboard_ws_acks_in_stream_total"]
	if f == nil || len(f.Metric) != 1 {
		t.Fatalf("GET /metrics has no switchboard_ws_acks_in_stream_total")
	}
	return f.Metric[0].GetCounter().GetValue()
}
