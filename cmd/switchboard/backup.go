package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-chat/switchboard/internal/store/pebblestore"
)

const backupUsage = `usage: switchboard backup --to DIR [--data DIR] [--server URL] [--admin-token TOKEN] [--json]

Makes a consistent copy of the message store (a Pebble checkpoint) in DIR,
a directory that must not exist yet. The copy holds every message
acknowledged before the backup began.

  - With a server running, the server makes the copy while it keeps serving
    (POST /v1/admin/backup): DIR is a path on the server's machine.
  - With --data DIR and no server running on it, this command opens the
    store itself. A running server holds the store's lock, so with --data
    and a server running, the server is asked, as above.

Restore: stop the server, replace <data>/pebble with the backup's directory
(keep the old one aside until the server runs again), start the server.
The admin token (<data>/admin-token) and the status log (<data>/status) are
not part of the backup; copy them too if you want them.
`

func backupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	flags, a := adminFlags("backup", getenv, stdout, stderr)
	to := flags.String("to", "", "new `directory` for the copy")
	data := flags.String("data", "", "data `directory` of the store to copy when no server runs on it")
	flags.Usage = func() { fmt.Fprint(stderr, backupUsage); flags.PrintDefaults() }
	pos, err := parseArgs(flags, args)
	if err != nil {
		return parseFailed(err)
	}
	if len(pos) != 0 || *to == "" {
		fmt.Fprint(stderr, backupUsage)
		return exitUsage
	}
	dir, err := filepath.Abs(*to)
	if err != nil {
		fmt.Fprintf(stderr, "switchboard backup: --to: %v\n", err)
		return exitUsage
	}

	// A large store takes a while to copy when the target is on another
	// file system (no hard links).
	ad := a.admin(30 * time.Minute)
	if *data != "" {
		start := time.Now()
		err := backupDirect(ctx, *data, dir)
		if err == nil {
			return a.backupDone(dir, time.Since(start), "the store in "+*data)
		}
		if !errors.Is(err, errInUse) {
			fmt.Fprintf(stderr, "switchboard backup: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stderr, "the store in %s is open in a running server; asking the server at %s to make the copy\n", *data, a.server)
	}
	info, err := ad.Backup(ctx, dir)
	if err != nil {
		return a.fail(err)
	}
	return a.backupDone(info.Dir, time.Duration(info.TookMS)*time.Millisecond, "the server at "+a.server)
}

func (a *adminCLI) backupDone(dir string, took time.Duration, of string) int {
	if a.json {
		return a.printJSON(map[string]any{"backup": map[string]any{"dir": dir, "took_ms": took.Milliseconds()}})
	}
	fmt.Fprintf(a.stdout, "backup of %s made in %s (%s)\n", of, dir, took.Round(time.Millisecond))
	fmt.Fprintf(a.stdout, "to restore: stop the server, replace <data>/pebble with %s, start the server\n", dir)
	return exitOK
}

// errInUse: another process (a running server) holds the store's lock.
var errInUse = errors.New("the store is in use")

// backupDirect opens the Pebble store of the data directory data and
// checkpoints it to dir.
func backupDirect(ctx context.Context, data, dir string) error {
	src := filepath.Join(data, "pebble")
	// Open would create a missing store: check first, so that a mistyped
	// --data makes nothing.
	if _, err := os.Stat(filepath.Join(src, "CURRENT")); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no Pebble store in %s (looked for %s)", data, src)
	} else if err != nil {
		return err
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%s exists already; name a new directory", dir)
	}
	st, err := pebblestore.Open(src, nil)
	if err != nil {
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) || strings.Contains(err.Error(), "lock held") {
			return fmt.Errorf("%w: %v", errInUse, err)
		}
		return fmt.Errorf("open the store in %s: %w", data, err)
	}
	err = st.Checkpoint(ctx, dir)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	return err
}
