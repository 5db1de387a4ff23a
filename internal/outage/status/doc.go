// Package status is the status side of the outage monitor: it takes
// problem reports (POST /v1/reports), counts the server's own signals per
// app (Signals, fed by the messaging layer), feeds each app's
// detector.Monitor once a minute, opens and updates incidents from the
// monitor's changes of state, and serves GET /v1/status, the status page
// (GET /status, server-rendered HTML with an inline SVG chart per app),
// its live updates (GET /status/events, Server-Sent Events), an Atom feed
// of incidents (GET /status/feed.atom) and the operators' incident calls
// under /v1/admin/incidents.
//
// It keeps its own storage, a JSON-lines log in Config.Dir, apart from the
// message store, and a copy of the app list there: when the message store
// is down it keeps answering and says so ("message_store":"unavailable",
// and a banner on the page).
//
// Concurrency: one goroutine (started by Open, stopped by Close) samples
// and feeds the monitors; reports and page requests take one mutex for
// microseconds. The send path only adds to atomic counters. See
// docs/status.md.
package status
