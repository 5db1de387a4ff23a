package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/auth"
)

// IdleConfig describes a run of idle connections. Zero values mean the
// defaults named on each field.
type IdleConfig struct {
	// Connections is how many WebSocket connections to open, one user
	// each. Required.
	Connections int
	// Server and AdminToken name a running server. Empty: start one as a
	// child process with ServerCommand, so that its memory is its own.
	Server     string
	AdminToken string
	// ServerPID is the process id of the Server, when it runs on this
	// machine: its memory is read from /proc. Zero with a Server: the
	// memory is not measured (the server exposes none of its own yet).
	ServerPID int
	// ServerCommand is the command line that serves (for example
	// ["/usr/bin/switchboard", "serve"]); the run appends --addr
	// 127.0.0.1:0, --data with a temporary directory and --admin-token,
	// and reads the address from the "listening" line the server logs on
	// stderr. ServerEnv is added to its environment.
	ServerCommand []string
	ServerEnv     []string
	// Settle is how long to wait, once every connection is live, before
	// reading the memory. Zero: 2s.
	Settle time.Duration

	// Progress and Terminal: as in Config.
	Progress io.Writer
	Terminal bool
}

// IdleResult is what an idle run measured. The server's memory is its
// resident set (VmRSS in /proc/PID/status): what the machine pays, heap
// not yet returned to the system included. Per connection is the growth
// from before the first connection to after the last, divided by their
// number.
type IdleResult struct {
	Connections  int        `json:"connections"`
	Live         int        `json:"live"` // connections live when the memory was read
	Server       string     `json:"server"`
	ServerPID    int        `json:"server_pid,omitempty"`
	Measured     bool       `json:"measured"` // false: the memory is unknown (see Note)
	RSSBefore    int64      `json:"server_rss_before_bytes"`
	RSSAfter     int64      `json:"server_rss_after_bytes"`
	BytesPerConn float64    `json:"server_bytes_per_connection"`
	ConnectS     float64    `json:"connect_s"`
	Errors       int64      `json:"errors"`
	FirstError   string     `json:"first_error,omitempty"`
	Note         string     `json:"note,omitempty"`
	LoadAvg      [3]float64 `json:"load_avg"`
}

// Idle opens cfg.Connections idle WebSocket connections, each a user's
// stream, and measures the server's memory before and after.
func Idle(ctx context.Context, cfg IdleConfig) (*IdleResult, error) {
	if cfg.Connections < 1 {
		return nil, errors.New("bench: connections must be at least 1")
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 2 * time.Second
	}
	if (cfg.Server == "") != (cfg.AdminToken == "") {
		return nil, errors.New("bench: give a server and its admin token, or neither")
	}
	if strings.Contains(cfg.Server, ",") {
		return nil, errors.New("bench: connections are measured on one server's memory: give one server")
	}
	var (
		tgt *target
		pid int
		err error
	)
	if cfg.Server == "" {
		if len(cfg.ServerCommand) == 0 {
			return nil, errors.New("bench: no server, and no command to start one")
		}
		tgt, pid, err = startChild(ctx, cfg.ServerCommand, cfg.ServerEnv)
	} else {
		tgt, err = connectTarget(cfg.Server, cfg.AdminToken, "", nil)
		pid = cfg.ServerPID
	}
	if err != nil {
		return nil, err
	}
	defer tgt.stop()
	p := newProgress(cfg.Progress, cfg.Terminal)
	res := &IdleResult{Connections: cfg.Connections, Server: tgt.describe(), ServerPID: pid}
	if pid == 0 {
		res.Note = "the server's memory needs its process id (--server-pid) on this machine; it exposes none itself yet"
	} else if _, err := rss(pid); err != nil {
		return nil, err
	}

	hc := benchHTTPClient()
	defer hc.CloseIdleConnections()
	adm := client.NewAdmin(tgt.base, tgt.adminToken, &client.Options{HTTPClient: hc})
	a, b, warn, err := benchApps(ctx, adm)
	if err != nil {
		return nil, err
	}
	if warn != "" {
		p.note("warning: " + warn)
	}
	now := time.Now()
	clients := make([]*client.Client, cfg.Connections)
	for i := range clients {
		app := a
		if i%2 == 1 {
			app = b
		}
		tok, err := auth.Mint(app, "idle"+strconv.Itoa(i), 24*time.Hour, now)
		if err != nil {
			return nil, err
		}
		// A tiny event buffer: nothing but state changes arrive.
		clients[i] = client.New(tgt.base, tok, &client.Options{HTTPClient: hc, EventBuffer: 4})
	}

	if pid != 0 {
		if res.RSSBefore, err = rss(pid); err != nil {
			return nil, err
		}
	}
	p.note(fmt.Sprintf("opening %s connections to %s", thousands(int64(cfg.Connections)), tgt.describe()))
	streams := make([]*client.Stream, cfg.Connections)
	defer func() {
		parallel(context.Background(), len(streams), 64, func(_ context.Context, i int) error {
			if streams[i] != nil {
				streams[i].Close()
			}
			return nil
		})
	}()
	var errs atomic.Int64
	var firstErr sync.Once
	var opened atomic.Int64
	start := time.Now()
	stopShow := make(chan struct{})
	var show sync.WaitGroup
	show.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopShow:
				p.end()
				return
			case <-t.C:
				p.count("connected", opened.Load(), int64(cfg.Connections), errs.Load())
			}
		}
	})
	err = parallel(ctx, cfg.Connections, 64, func(ctx context.Context, i int) error {
		s, err := clients[i].Connect(ctx, 0)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs.Add(1)
			firstErr.Do(func() { res.FirstError = err.Error() })
			return nil
		}
		streams[i] = s
		opened.Add(1)
		return nil
	})
	// Every stream is live once the server has sent its (empty) backlog.
	for err == nil {
		live := 0
		for _, s := range streams {
			if s != nil && s.State() == client.Live {
				live++
			}
		}
		if live == int(opened.Load()) || time.Since(start) > 5*time.Minute {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.ConnectS = time.Since(start).Seconds()
	close(stopShow)
	show.Wait()
	if err != nil {
		return nil, err
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(cfg.Settle):
	}
	if pid != 0 {
		if res.RSSAfter, err = rss(pid); err != nil {
			return nil, err
		}
		res.Measured = true
		res.BytesPerConn = float64(res.RSSAfter-res.RSSBefore) / float64(cfg.Connections)
	}
	for _, s := range streams {
		if s != nil && s.State() == client.Live {
			res.Live++
		}
	}
	// A connection that failed to open is not live either.
	res.Errors = int64(cfg.Connections - res.Live)
	if res.Live < cfg.Connections && res.FirstError == "" {
		res.FirstError = fmt.Sprintf("%d connections not live", cfg.Connections-res.Live)
	}
	res.LoadAvg = loadAvg()
	return res, nil
}

// WriteTable prints an idle run's result for people.
func (r *IdleResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "connections   %s opened in %.1f s, %s live at the end\n", thousands(int64(r.Connections)), r.ConnectS, thousands(int64(r.Live)))
	fmt.Fprintf(w, "server        %s", r.Server)
	if r.ServerPID != 0 {
		fmt.Fprintf(w, " (pid %d)", r.ServerPID)
	}
	fmt.Fprintln(w)
	if r.Measured {
		fmt.Fprintf(w, "server memory %.1f MiB before, %.1f MiB after (resident set)\n", float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20))
		fmt.Fprintf(w, "per connection %.2f KiB\n", r.BytesPerConn/1024)
	} else {
		fmt.Fprintf(w, "server memory not measured: %s\n", r.Note)
	}
	fmt.Fprintf(w, "errors        %d\n", r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error   %s\n", r.FirstError)
	}
	_, err := fmt.Fprintf(w, "load average  %.2f %.2f %.2f\n", r.LoadAvg[0], r.LoadAvg[1], r.LoadAvg[2])
	return err
}

// rss is the resident set of process pid, in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("bench: server memory: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("bench: no VmRSS in /proc/%d/status", pid)
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startChild starts a server process with argv plus the address, a
// temporary data directory and an admin token, and waits until it says
// where it listens. stop ends it with SIGTERM (SIGKILL after 15s) and
// removes the directory.
func startChild(ctx context.Context, argv, env []string) (*target, int, error) {
	dir, err := os.MkdirTemp("", "switchboard-bench-*")
	if err != nil {
		return nil, 0, fmt.Errorf("bench: temporary data directory: %w", err)
	}
	tok := auth.NewAdminToken()
	args := append(argv[1:len(argv):len(argv)], "--addr", "127.0.0.1:0", "--data", dir, "--admin-token", tok)
	cmd := exec.Command(argv[0], args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, 0, err
	}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, 0, fmt.Errorf("bench: start server: %w", err)
	}
	exited := make(chan struct{})
	addrc := make(chan string, 1)
	var tail []string // the last lines it logged, to say why it failed
	var tailMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			line := sc.Text()
			if !found {
				if m := listeningRE.FindStringSubmatch(line); m != nil {
					found = true
					addrc <- m[1]
				}
			}
			tailMu.Lock()
			tail = append(tail, line)
			if len(tail) > 20 {
				tail = tail[1:]
			}
			tailMu.Unlock()
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		close(exited)
	}()
	stop := func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		return os.RemoveAll(dir)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case addr := <-addrc:
		return &target{base: "http://" + addr, adminToken: tok, child: true, command: strings.Join(argv[1:], " "), stop: stop}, cmd.Process.Pid, nil
	case <-exited:
		err = errors.New("it exited")
	case <-timeout.C:
		err = errors.New("it did not say where it listens within 30s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	stop()
	tailMu.Lock()
	defer tailMu.Unlock()
	return nil, 0, fmt.Errorf("bench: start server %s: %w; its last words:\n%s", argv[0], err, strings.Join(tail, "\n"))
}
