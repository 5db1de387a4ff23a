// Package config holds the settings of "switchboard serve" and reads them
// from a TOML file, strictly: an unknown key or a value of the wrong type
// or range is refused with the key named, so that a typo never passes
// silently and a bad file is caught before anything starts.
//
// The keys of the file are the names of serve's flags:
//
//	addr = "127.0.0.1:8080"
//	data = "/var/lib/switchboard"
//	admin-token = "..."
//	store = "pebble"            # or "memory", or "postgres://..."
//	bus = "local"               # or "nats://..."
//	dev = false
//	shutdown-timeout = "10s"
//	log-format = "text"         # or "json"
//	log-level = "info"          # debug, info, warn, error
//
// Every key is optional; a missing key keeps its default. Command-line
// flags and SWITCHBOARD_* variables override the file (the caller applies
// them with Set).
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Serve is every setting of "switchboard serve". The toml tags are the
// keys of the file and the names of the flags.
type Serve struct {
	Addr            string   `toml:"addr"`
	Data            string   `toml:"data"`
	AdminToken      string   `toml:"admin-token"`
	Store           string   `toml:"store"`
	Bus             string   `toml:"bus"`
	Dev             bool     `toml:"dev"`
	ShutdownTimeout Duration `toml:"shutdown-timeout"`
	LogFormat       string   `toml:"log-format"`
	LogLevel        string   `toml:"log-level"`
}

// Keys lists the keys of the file, which are also the flags' names.
var Keys = []string{"addr", "data", "admin-token", "store", "bus", "dev", "shutdown-timeout", "log-format", "log-level"}

// Defaults returns the settings when nothing is set.
func Defaults() Serve {
	return Serve{
		Addr:            "127.0.0.1:8080",
		Data:            "./data",
		Store:           "pebble",
		Bus:             "local",
		ShutdownTimeout: Duration(10 * time.Second),
		LogFormat:       "text",
		LogLevel:        "info",
	}
}

// Duration is a time.Duration written as a string such as "10s" or "1m30s".
type Duration time.Duration

// UnmarshalText reads a duration such as "10s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like \"10s\" or \"1m30s\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Error is a bad setting: Key names it, and File where it came from when it
// came from the file.
type Error struct {
	File string
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	if e.File == "" {
		return fmt.Sprintf("%s: %s", e.Key, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
}

// Load reads the file at path over the defaults and validates the result.
// Any error names the file and, where it can, the key.
func Load(path string) (Serve, error) {
	s := Defaults()
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(b), &s)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" {
				return s, fmt.Errorf("%s: line %d: %s: %s", path, pe.Position.Line, pe.LastKey, pe.Message)
			}
			return s, fmt.Errorf("%s: line %d: %s", path, pe.Position.Line, pe.Message)
		}
		// A value of the wrong type: the message names the key.
		return s, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if und := md.Undecoded(); len(und) > 0 {
		names := make([]string, len(und))
		for i, k := range und {
			names[i] = k.String()
		}
		sort.Strings(names)
		return s, &Error{File: path, Key: names[0], Msg: fmt.Sprintf("unknown key; the keys are: %s", strings.Join(Keys, ", "))}
	}
	if err := s.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = path
		}
		return s, err
	}
	return s, nil
}

// Set sets the setting key (a flag name) from its text, as a flag or an
// environment variable gives it. It checks the syntax; Validate checks the
// whole.
func (s *Serve) Set(key, value string) error {
	switch key {
	case "addr":
		s.Addr = value
	case "data":
		s.Data = value
	case "admin-token":
		s.AdminToken = value
	case "store":
		s.Store = value
	case "bus":
		s.Bus = value
	case "dev":
		v, err := strconv.ParseBool(value)
		if err != nil {
			return &Error{Key: key, Msg: fmt.Sprintf("%q is not true or false", value)}
		}
		s.Dev = v
	case "shutdown-timeout":
		if err := s.ShutdownTimeout.UnmarshalText([]byte(value)); err != nil {
			return &Error{Key: key, Msg: err.Error()}
		}
	case "log-format":
		s.LogFormat = value
	case "log-level":
		s.LogLevel = value
	default:
		return &Error{Key: key, Msg: "unknown setting"}
	}
	return nil
}

// Validate checks every setting and returns the first bad one as an
// *Error.
func (s *Serve) Validate() error {
	if err := validAddr(s.Addr); err != nil {
		return &Error{Key: "addr", Msg: err.Error()}
	}
	if s.Data == "" {
		return &Error{Key: "data", Msg: "must name a directory"}
	}
	if strings.ContainsAny(s.AdminToken, " \t\r\n") {
		return &Error{Key: "admin-token", Msg: "must not contain spaces or line breaks"}
	}
	switch {
	case s.Store == "pebble" || s.Store == "memory":
	case strings.HasPrefix(s.Store, "postgres://") || strings.HasPrefix(s.Store, "postgresql://"):
		if _, err := url.Parse(s.Store); err != nil {
			return &Error{Key: "store", Msg: "the PostgreSQL URL does not parse"}
		}
	default:
		return &Error{Key: "store", Msg: fmt.Sprintf("unknown store %q: use pebble, memory or postgres://...", Redact(s.Store))}
	}
	switch {
	case s.Bus == "local":
	case strings.HasPrefix(s.Bus, "nats://"):
		if _, err := url.Parse(s.Bus); err != nil {
			return &Error{Key: "bus", Msg: "the NATS URL does not parse"}
		}
	default:
		return &Error{Key: "bus", Msg: fmt.Sprintf("unknown bus %q: use local or nats://...", Redact(s.Bus))}
	}
	if s.ShutdownTimeout <= 0 {
		return &Error{Key: "shutdown-timeout", Msg: fmt.Sprintf("must be more than 0, like \"10s\"; got %s", time.Duration(s.ShutdownTimeout))}
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		return &Error{Key: "log-format", Msg: fmt.Sprintf("%q: use text or json", s.LogFormat)}
	}
	if _, err := ParseLevel(s.LogLevel); err != nil {
		return &Error{Key: "log-level", Msg: err.Error()}
	}
	return nil
}

func validAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (like 127.0.0.1:8080, or :8080 for every interface)", addr)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: the host is not a name or an IP address", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	return nil
}

// ParseLevel reads debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q: use debug, info, warn or error", s)
}

// Redact drops the credentials from a store or bus URL before it is shown.
func Redact(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = "***@" + rest[at+1:]
	}
	return scheme + "://" + rest
}
