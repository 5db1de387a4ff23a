package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	sb "github.com/switchboard-chat/switchboard/client"
)

// defaultServer is where the admin commands look for the server.
const defaultServer = "http://127.0.0.1:8080"

// adminCLI is what every command that calls the admin API shares: where
// the server is, the admin token, and how to print.
type adminCLI struct {
	name   string // the command, for messages: "app create"
	server string
	token  string
	json   bool
	stdout io.Writer
	stderr io.Writer
}

// adminFlags returns a flag set with --server, --admin-token and --json.
func adminFlags(name string, getenv func(string) string, stdout, stderr io.Writer) (*flag.FlagSet, *adminCLI) {
	a := &adminCLI{name: name, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := getenv("SWITCHBOARD_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&a.server, "server", server, "base `URL` of the server (env SWITCHBOARD_SERVER)")
	fs.StringVar(&a.token, "admin-token", getenv("SWITCHBOARD_ADMIN_TOKEN"), "admin `token` (env SWITCHBOARD_ADMIN_TOKEN; the server keeps it in <data>/admin-token)")
	fs.BoolVar(&a.json, "json", false, "print JSON instead of a table")
	return fs, a
}

// parseArgs parses fs's flags wherever they stand among args (so that
// "app create ID --name N" works) and returns the other arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseFailed is the exit code after a failed parse: the flag package has
// printed why, or the help asked for.
func parseFailed(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// admin returns the admin client; --server may be host:port.
func (a *adminCLI) admin(timeout time.Duration) *sb.Admin {
	if !strings.Contains(a.server, "://") {
		a.server = "http://" + a.server
	}
	return sb.NewAdmin(a.server, a.token, &sb.Options{HTTPClient: &http.Client{Timeout: timeout}})
}

// fail prints what went wrong and what to do about it.
func (a *adminCLI) fail(err error) int {
	fmt.Fprintf(a.stderr, "switchboard %s: %s\n", a.name, a.explain(err))
	return exitError
}

func (a *adminCLI) explain(err error) string {
	var e *sb.Error
	switch {
	case errors.As(err, &e):
		switch {
		case e.Status == 0 && strings.Contains(e.Message, "connection refused"):
			return fmt.Sprintf("cannot reach the server at %s: is the server running at %s? start it with `switchboard serve`, or point --server (or SWITCHBOARD_SERVER) at it", a.server, a.server)
		case e.Status == 0:
			return fmt.Sprintf("cannot reach the server at %s: %s", a.server, e.Message)
		case e.Status == http.StatusUnauthorized && a.token == "":
			return "no admin token: set SWITCHBOARD_ADMIN_TOKEN or pass --admin-token (the server keeps it in <data>/admin-token)"
		case e.Status == http.StatusUnauthorized:
			return "the admin token is wrong: set SWITCHBOARD_ADMIN_TOKEN to the server's (the server keeps it in <data>/admin-token)"
		case e.Status == http.StatusMethodNotAllowed || e.Status == http.StatusNotFound && strings.HasPrefix(e.Message, "no such endpoint"):
			return fmt.Sprintf("the server at %s does not offer this call (HTTP %d: %s); it is older than this command, or is not a Switchboard server", a.server, e.Status, e.Message)
		}
		return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the server at %s did not answer in time", a.server)
	}
	return err.Error()
}

// printJSON prints v indented, for scripts.
func (a *adminCLI) printJSON(v any) int {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(a.stderr, "switchboard %s: %v\n", a.name, err)
		return exitError
	}
	return exitOK
}

// printApps prints apps as a table; withSecret adds the secret column.
func (a *adminCLI) printApps(apps []sb.App, withSecret bool) int {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	head := "ID\tNAME\tFROZEN\tINTEROP\tLIMITS"
	if withSecret {
		head += "\tSECRET"
	}
	fmt.Fprintln(tw, head)
	for _, app := range apps {
		frozen := "no"
		if app.Frozen {
			frozen = "yes"
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", app.ID, app.Name, frozen, dash(strings.Join(app.Interop, ",")), dash(limitsText(app.Limits)))
		if withSecret {
			line += "\t" + app.Secret
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	return exitOK
}

// limitsText shows the limits set; 0 is the server's default and left out.
func limitsText(l map[string]int) string {
	keys := make([]string, 0, len(l))
	for k, v := range l {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, l[k])
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

const appUsage = `usage:
  switchboard app create ID [--name NAME]
  switchboard app list
  switchboard app interop APP OTHER...     (or --clear: APP's users may message no other app)
  switchboard app limits APP [--sends-per-second N] [--burst N] [--max-concurrent-requests N]
                             [--max-connections N] [--user-sends-per-second N] [--user-burst N]
  switchboard app freeze APP               APP's users get 503 until unfreeze; other apps carry on
  switchboard app unfreeze APP

Each takes --server URL (env SWITCHBOARD_SERVER, default http://127.0.0.1:8080),
--admin-token TOKEN (env SWITCHBOARD_ADMIN_TOKEN) and --json.
`

func appCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, appUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs, a := adminFlags("app "+sub, getenv, stdout, stderr)
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "switchboard app %s: %s\n\n%s", sub, msg, appUsage)
		return exitUsage
	}
	switch sub {
	case "create":
		name := fs.String("name", "", "display `name`; empty: the id")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return parseFailed(err)
		}
		if len(pos) != 1 {
			return usage("name one app id")
		}
		app, err := a.admin(30*time.Second).CreateApp(ctx, pos[0], *name)
		if err != nil {
			return a.fail(err)
		}
		if a.json {
			return a.printJSON(map[string]any{"app": app})
		}
		fmt.Fprintln(stderr, "keep the secret: it signs the app's user tokens, and it is shown only now")
		return a.printApps([]sb.App{*app}, true)

	case "list":
		pos, err := parseArgs(fs, args)
		if err != nil {
			return parseFailed(err)
		}
		if len(pos) != 0 {
			return usage("takes no arguments")
		}
		apps, err := a.admin(30 * time.Second).Apps(ctx)
		if err != nil {
			return a.fail(err)
		}
		if apps == nil {
			apps = []sb.App{}
		}
		if a.json {
			return a.printJSON(map[string]any{"apps": apps})
		}
		return a.printApps(apps, false)

	case "interop":
		clear := fs.Bool("clear", false, "let the app's users message no other app")
		pos, err := parseArgs(fs, args)
		if err != nil {
			return parseFailed(err)
		}
		if len(pos) < 1 || (len(pos) == 1) != *clear {
			return usage("name the app and the apps its users may message, or the app and --clear")
		}
		app, err := a.admin(30*time.Second).SetInterop(ctx, pos[0], pos[1:])
		if err != nil {
			return a.fail(err)
		}
		if a.json {
			return a.printJSON(map[string]any{"app": app})
		}
		return a.printApps([]sb.App{*app}, false)

	case "limits":
		names := []string{"sends-per-second", "burst", "max-concurrent-requests", "max-connections", "user-sends-per-second", "user-burst"}
		for _, n := range names {
			fs.Int(n, 0, strings.ReplaceAll(n, "-", " "))
		}
		pos, err := parseArgs(fs, args)
		if err != nil {
			return parseFailed(err)
		}
		if len(pos) != 1 {
			return usage("name one app")
		}
		limits := map[string]int{}
		fs.Visit(func(f *flag.Flag) {
			for _, n := range names {
				if f.Name == n {
					limits[strings.ReplaceAll(n, "-", "_")] = int(f.Value.(flag.Getter).Get().(int))
				}
			}
		})
		if len(limits) == 0 {
			return usage("set at least one limit, like --sends-per-second 500")
		}
		app, err := a.admin(30*time.Second).SetLimits(ctx, pos[0], limits)
		if err != nil {
			return a.fail(err)
		}
		if a.json {
			return a.printJSON(map[string]any{"app": app})
		}
		return a.printApps([]sb.App{*app}, false)

	case "freeze", "unfreeze":
		pos, err := parseArgs(fs, args)
		if err != nil {
			return parseFailed(err)
		}
		if len(pos) != 1 {
			return usage("name one app")
		}
		ad := a.admin(30 * time.Second)
		if sub == "freeze" {
			err = ad.Freeze(ctx, pos[0])
		} else {
			err = ad.Unfreeze(ctx, pos[0])
		}
		if err != nil {
			return a.fail(err)
		}
		if a.json {
			return a.printJSON(map[string]any{"app": pos[0], "frozen": sub == "freeze"})
		}
		if sub == "freeze" {
			fmt.Fprintf(stdout, "%s is frozen: its users get 503 unavailable, other apps carry on; undo with `switchboard app unfreeze %s`\n", pos[0], pos[0])
		} else {
			fmt.Fprintf(stdout, "%s is unfrozen: its users are served again\n", pos[0])
		}
		return exitOK

	case "-h", "--help", "help":
		fmt.Fprint(stdout, appUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "switchboard app: unknown command %q\n\n%s", sub, appUsage)
	return exitUsage
}

const tokenUsage = `usage: switchboard token APP USER [--ttl 1h] [--server URL] [--admin-token TOKEN] [--json]

Mints a user token (a JWT signed with the app's secret) and prints it, so
that TOKEN=$(switchboard token messenger alice) works in a script.
`

func tokenCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs, a := adminFlags("token", getenv, stdout, stderr)
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage); fs.PrintDefaults() }
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseFailed(err)
	}
	if len(pos) != 2 {
		fmt.Fprint(stderr, tokenUsage)
		return exitUsage
	}
	if *ttl < time.Second {
		fmt.Fprintf(stderr, "switchboard token: --ttl must be at least 1s\n")
		return exitUsage
	}
	tok, err := a.admin(30*time.Second).Token(ctx, pos[0], pos[1], *ttl)
	if err != nil {
		return a.fail(err)
	}
	if a.json {
		return a.printJSON(map[string]any{"token": tok, "app": pos[0], "user": pos[1], "expires_at": time.Now().Add(*ttl).UTC().Format(time.RFC3339)})
	}
	fmt.Fprintln(stdout, tok)
	return exitOK
}
