package status_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The status page in a real headless chromium (Debian's, or
// $SWITCHBOARD_CHROMIUM), driven over the DevTools protocol as the web
// client's browser tests are (internal/webui/browsertest). It fails, never
// skips, without chromium.

type browser struct {
	t   *testing.T
	ctx context.Context

	mu     sync.Mutex // guards errors
	errors []string
}

func openBrowser(t *testing.T, url string) *browser {
	t.Helper()
	exe := os.Getenv("SWITCHBOARD_CHROMIUM")
	if exe == "" {
		exe = "/usr/bin/chromium"
	}
	if _, err := os.Stat(exe); err != nil {
		t.Fatalf("this test needs chromium at %s (%v). Install it with:\n\tapt-get update && apt-get install -y chromium\n"+
			"or set SWITCHBOARD_CHROMIUM to a Chrome or Chromium binary.", exe, err)
	}
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // runs as root in CI containers
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1024, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		chromedp.Cancel(cctx)
		cancel()
		acancel()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, e := range b.errors {
			t.Errorf("uncaught exception in the page: %s", e)
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium (%s): %v", exe, err)
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
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	}()
	b.do(chromedp.Navigate(url))
	return b
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("%v", err)
	}
}

func evalJS[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluating %s: %v", expr, err)
	}
	return v
}

// wait waits until the JavaScript expression is truthy.
func (b *browser) wait(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(25*time.Second)))
	if err != nil {
		b.fail("waiting for %s: %v", what, err)
	}
}

func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		live: document.querySelector("[data-testid=live]")?.dataset.state,
		apps: [...document.querySelectorAll("[data-testid=app]")].map(e => e.dataset.app + ": " + e.dataset.state),
		banner: document.querySelector("[data-testid=store-unavailable]")?.textContent,
	})`))
	b.t.Fatalf("%s\npage: %s", fmt.Sprintf(format, args...), state)
}

// screenshot writes the page to testdata/screenshots (ignored by git), or
// $SWITCHBOARD_SCREENSHOTS, as name.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("SWITCHBOARD_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot: %v", err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
}

func TestStatusPageInBrowser(t *testing.T) {
	n := startNode(t)
	n.createApps("messenger", "instagram", "workplace")
	b := openBrowser(t, n.base+"/status")

	// Rendered on the server: every app, its state, its chart with axes,
	// labels and the two lines.
	b.wait("three apps, operational", `[...document.querySelectorAll("[data-testid=app]")].map(e => e.dataset.app + ":" + e.dataset.state).join() ===
		"instagram:operational,messenger:operational,workplace:operational"`)
	if got := evalJS[string](b, `document.querySelector("[data-app=messenger] [data-testid=app-state]").textContent`); got != "Operational" {
		t.Errorf("messenger's state reads %q", got)
	}
	b.wait("a chart per app, with its lines and labels", `(() => {
		const charts = [...document.querySelectorAll("svg[data-testid=chart]")];
		return charts.length === 3 && charts.every(svg =>
			svg.querySelector("path[data-testid=reports-line]")?.getAttribute("d").startsWith("M") &&
			svg.querySelector("path[data-testid=norm-line]") &&
			svg.querySelector("path.axes") &&
			svg.querySelectorAll("text.label").length >= 8 &&
			svg.getBoundingClientRect().width > 300);
	})()`)
	// The script connects to the event stream.
	b.wait("the page to go live", `document.querySelector("[data-testid=live]").dataset.state === "live"`)
	b.do(chromedp.Evaluate[chromedp.Void](`window.sameDocument = true`))

	// A burst of reports: the page turns messenger to outage by itself,
	// without a reload, and shows the incident.
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			a := n.call(fmt.Sprintf("127.0.2.%d", 10+i), "POST", "/v1/reports", "", map[string]string{"app": "messenger", "problem": "sending"})
			if a.status != 202 {
				t.Errorf("report: %d %s", a.status, a.body)
			}
		})
	}
	wg.Wait()
	b.wait("messenger in outage, live", `document.querySelector("[data-app=messenger]").dataset.state === "outage" &&
		document.querySelector("[data-app=messenger] [data-testid=app-state]").textContent === "Outage"`)
	b.wait("the open incident with its timeline", `(() => {
		const inc = document.querySelector("[data-testid=incident][data-app=messenger][data-status=open]");
		return inc && inc.querySelector(".timeline li")?.textContent.includes("people reported problems within 15 minutes");
	})()`)
	if !evalJS[bool](b, `window.sameDocument === true`) {
		t.Error("the page reloaded instead of updating in place")
	}
	for _, app := range []string{"instagram", "workplace"} {
		if got := evalJS[string](b, `document.querySelector("[data-app=`+app+`]").dataset.state`); got != "operational" {
			t.Errorf("%s is %s on the page", app, got)
		}
	}
	b.screenshot("status-outage")
	if h := evalJS[float64](b, `document.querySelector("[data-app=messenger] [data-testid=reports-line]").getBBox().height`); h <= 0 {
		t.Errorf("messenger's report line is flat (height %v) after 60 reports", h)
	}

	// The message store fails: the page says so, live, and keeps working.
	if err := n.srv.Service().Store().Close(); err != nil {
		t.Fatal(err)
	}
	n.status() // someone asks; the status side notices and tells the streams
	b.wait("the store-unavailable banner", `document.querySelector("[data-testid=store-unavailable]")?.textContent.includes("message store is unavailable")`)
	b.do(chromedp.Reload())
	b.wait("the page after a reload with the store down", `document.querySelector("[data-testid=store-unavailable]") &&
		document.querySelectorAll("svg[data-testid=chart]").length === 3 &&
		document.querySelector("[data-app=messenger]").dataset.state === "outage"`)
}
