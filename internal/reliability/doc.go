// Package reliability holds Switchboard's fault suite: tests that run a
// real node (Pebble in a temporary directory, the HTTP API and the
// WebSocket on 127.0.0.1) and prove that one app's trouble stays in that
// app, that a failing or slow store gives quick 503s and leaves nothing
// half-written, and that service recovers fully afterwards. It has no code
// of its own; docs/reliability.md lists each guarantee with the test that
// proves it.
package reliability
