package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "switchboard.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigCheck(t *testing.T) {
	good := writeConfig(t, "addr = \":9090\"\nstore = \"pebble\"\nshutdown-timeout = \"30s\"\nlog-format = \"json\"\n")
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"config", "check", good}, noEnv, &stdout, &stderr); code != exitOK || stdout.String() != "ok\n" {
		t.Fatalf("a good file: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	for _, tc := range []struct{ text, field string }{
		{"adress = \":9090\"", "adress: unknown key"},
		{"store = \"mysql://x\"", "store: unknown store"},
		{"shutdown-timeout = 10", "shutdown-timeout"},
		{"log-level = \"chatty\"", "log-level"},
	} {
		p := writeConfig(t, tc.text)
		stdout.Reset()
		stderr.Reset()
		code := run(context.Background(), []string{"config", "check", p}, noEnv, &stdout, &stderr)
		if code == exitOK || stdout.Len() != 0 || !strings.Contains(stderr.String(), tc.field) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want non-zero naming %q", tc.text, code, stdout.String(), stderr.String(), tc.field)
		}
	}
	if code := run(context.Background(), []string{"config", "check"}, noEnv, &stdout, &stderr); code != exitUsage {
		t.Errorf("config check without a file: exit %d", code)
	}
}

// TestServeRefusesInvalidConfig: a bad file, environment variable or flag
// stops serve before it creates anything, and the message names the
// setting and where it came from.
func TestServeRefusesInvalidConfig(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	bad := writeConfig(t, "data = \""+data+"\"\nlog-levle = \"debug\"\n")
	good := writeConfig(t, "data = \""+data+"\"\naddr = \"127.0.0.1:0\"\n")
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--config", bad}, nil, "log-levle: unknown key"},
		{nil, map[string]string{"SWITCHBOARD_CONFIG": bad}, "log-levle: unknown key"},
		{[]string{"--config", good, "--shutdown-timeout", "-1s"}, nil, "shutdown-timeout: must be more than 0"},
		{[]string{"--config", good}, map[string]string{"SWITCHBOARD_LOG_FORMAT": "xml"}, "(set by SWITCHBOARD_LOG_FORMAT)"},
		{[]string{"--config", good, "--addr", "nowhere"}, nil, "addr: \"nowhere\" is not host:port (like 127.0.0.1:8080, or :8080 for every interface) (set by --addr)"},
		{[]string{"--config", good, "--store", "mysql://u:pw@db/x"}, nil, `unknown store "mysql://***@db/x"`},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.toml")}, nil, "missing.toml"},
	} {
		var stderr bytes.Buffer
		getenv := func(k string) string { return tc.env[k] }
		code := run(context.Background(), append([]string{"serve"}, tc.args...), getenv, &bytes.Buffer{}, &stderr)
		if code != exitError || !strings.Contains(stderr.String(), tc.want) || !strings.Contains(stderr.String(), "nothing was started") {
			t.Errorf("serve %q %v: exit %d, stderr %q; want %d and %q", tc.args, tc.env, code, stderr.String(), exitError, tc.want)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("serve %q made the data directory before refusing: %v", tc.args, err)
		}
	}
}

// TestServeConfigLayers: the file sets what the environment and flags do
// not; the environment wins over the file, a flag over both.
func TestServeConfigLayers(t *testing.T) {
	data := t.TempDir()
	p := writeConfig(t, "addr = \"127.0.0.1:0\"\ndata = \""+data+"\"\nadmin-token = \"from-file\"\nlog-format = \"json\"\nlog-level = \"debug\"\n")

	// The file alone: its token, and JSON logs with a request id on the
	// access log line of each request.
	stderr := &jsonWatcher{listening: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"serve", "--config", p}, noEnv, &bytes.Buffer{}, stderr) }()
	var base string
	select {
	case a := <-stderr.listening:
		base = "http://" + a
	case code := <-exited:
		t.Fatalf("serve exited with %d: %s", code, stderr)
	case <-time.After(time.Minute):
		t.Fatalf("serve did not listen: %s", stderr)
	}
	if s := status(t, "GET", base+"/v1/admin/apps", "from-file"); s != 200 {
		t.Fatalf("the file's admin token: %d", s)
	}
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Request-Id", "probe-42")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.Header.Get("X-Request-Id") != "probe-42" {
		t.Fatalf("X-Request-Id %q", res.Header.Get("X-Request-Id"))
	}
	cancel()
	if code := <-exited; code != exitOK {
		t.Fatalf("serve exited with %d: %s", code, stderr)
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(stderr.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("a log line is not JSON: %q", sc.Text())
		}
		if line["msg"] == "request" && line["request_id"] == "probe-42" && line["path"] == "/healthz" && line["status"] == float64(200) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no JSON access log line for request probe-42:\n%s", stderr)
	}

	// The environment wins over the file, a flag over both.
	env := map[string]string{"SWITCHBOARD_ADMIN_TOKEN": "from-env", "SWITCHBOARD_LOG_FORMAT": "text"}
	base, stop := serveInProcess(t, []string{"--config", p}, func(k string) string { return env[k] })
	if s := status(t, "GET", base+"/v1/admin/apps", "from-env"); s != 200 {
		t.Fatalf("the environment's admin token: %d", s)
	}
	stop()
	base, stop = serveInProcess(t, []string{"--config", p, "--admin-token", "from-flag"}, func(k string) string { return env[k] })
	if s := status(t, "GET", base+"/v1/admin/apps", "from-flag"); s != 200 {
		t.Fatalf("the flag's admin token: %d", s)
	}
	if s := status(t, "GET", base+"/v1/admin/apps", "from-env"); s != 401 {
		t.Fatalf("the environment's token when a flag is given: %d", s)
	}
	stop()
}

// jsonWatcher is a stderr of JSON lines that tells where serve listens.
type jsonWatcher struct {
	watcher
	listening chan string
	partial   []byte
}

func (w *jsonWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		var line struct{ Msg, Addr string }
		if json.Unmarshal(w.partial[:i], &line) == nil && line.Msg == "listening" && !w.found {
			w.found = true
			w.listening <- line.Addr
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}
