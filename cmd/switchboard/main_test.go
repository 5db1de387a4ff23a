package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, exitUsage, "", "usage:"},
		{[]string{"frobnicate"}, exitUsage, "", `unknown command "frobnicate"`},
		{[]string{"version"}, exitOK, "switchboard ", ""},
		{[]string{"help"}, exitOK, "usage:", ""},
		{[]string{"serve", "--nope"}, exitUsage, "", "flag provided but not defined"},
		{[]string{"serve", "extra"}, exitUsage, "", `unexpected argument "extra"`},
		{[]string{"serve", "-h"}, exitOK, "", "-admin-token"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, noEnv, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("run(%q) = %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
		}
	}
}

func noEnv(string) string { return "" }

func TestServeRefusesBadConfig(t *testing.T) {
	var stderr bytes.Buffer
	args := []string{"serve", "--data", t.TempDir(), "--store", "mysql://db/x"}
	if code := run(context.Background(), args, noEnv, &bytes.Buffer{}, &stderr); code != exitError {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitError, stderr.String())
	}
	if !strings.Contains(stderr.String(), "unknown store") {
		t.Fatalf("stderr %s", stderr.String())
	}
}

// watcher is a stderr that tells when the server says where it listens.
type watcher struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	addr  chan string
	found bool
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

func newWatcher() *watcher { return &watcher{addr: make(chan string, 1)} }

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.found {
		if m := listeningRE.FindSubmatch(w.buf.Bytes()); m != nil {
			w.found = true
			w.addr <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *watcher) wait(t *testing.T, exited <-chan struct{}) string {
	t.Helper()
	select {
	case a := <-w.addr:
		return a
	case <-exited:
		t.Fatalf("serve exited before listening; stderr:\n%s", w)
	case <-time.After(time.Minute):
		t.Fatalf("serve did not say it listens within a minute; stderr:\n%s", w)
	}
	return ""
}

// serveInProcess runs "switchboard serve" through run and returns its base
// URL and a stop function that checks its exit code.
func serveInProcess(t *testing.T, args []string, getenv func(string) string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := newWatcher()
	exited := make(chan struct{})
	var code int
	go func() {
		defer close(exited)
		code = run(ctx, append([]string{"serve"}, args...), getenv, &bytes.Buffer{}, w)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-exited
			if code != exitOK {
				t.Errorf("serve exited with %d; stderr:\n%s", code, w)
			}
		})
	}
	t.Cleanup(stop)
	addr := w.wait(t, exited)
	return "http://" + addr, stop
}

func status(t *testing.T, method, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestServeEnvAndFlags: each flag reads SWITCHBOARD_<NAME>, and the flag
// wins over the environment.
func TestServeEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"SWITCHBOARD_ADDR":        "127.0.0.1:0",
		"SWITCHBOARD_DATA":        t.TempDir(),
		"SWITCHBOARD_ADMIN_TOKEN": "from-env",
		"SWITCHBOARD_STORE":       "pebble",
		"SWITCHBOARD_BUS":         "local",
	}
	getenv := func(k string) string { return env[k] }

	base, stop := serveInProcess(t, nil, getenv)
	if s := status(t, "GET", base+"/healthz", ""); s != 200 {
		t.Fatalf("healthz %d", s)
	}
	if s := status(t, "GET", base+"/v1/admin/apps", "from-env"); s != 200 {
		t.Fatalf("admin call with the env token: %d", s)
	}
	stop()

	base, stop = serveInProcess(t, []string{"--admin-token", "from-flag", "--data", t.TempDir()}, getenv)
	if s := status(t, "GET", base+"/v1/admin/apps", "from-flag"); s != 200 {
		t.Fatalf("admin call with the flag token: %d", s)
	}
	if s := status(t, "GET", base+"/v1/admin/apps", "from-env"); s != 401 {
		t.Fatalf("admin call with the env token when a flag is given: %d", s)
	}
	stop()

	env["SWITCHBOARD_STORE"] = "nope"
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, getenv, &bytes.Buffer{}, &stderr); code != exitError || !strings.Contains(stderr.String(), "nope") {
		t.Fatalf("SWITCHBOARD_STORE=nope: exit %d, stderr %s", code, stderr.String())
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"version"}, noEnv, &stdout, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got := strings.TrimSpace(stdout.String()); got != fmt.Sprintf("switchboard %s", versionString()) || versionString() == "" {
		t.Fatalf("version printed %q", got)
	}
}
