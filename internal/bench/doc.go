// Package bench is the load generator behind "switchboard bench": it
// creates apps, users and conversations on a server, runs a messaging
// workload over the WebSocket with the Go client (package client), and
// measures what arrives.
//
// # Workloads
//
// Users alternate between two apps that allow each other (interop), so
// every conversation crosses apps. Pairs: users 2i and 2i+1 share a direct
// conversation. Groups: each run of GroupSize users shares a group. Every
// user sends to its one conversation and receives on its own stream.
//
// The closed loop keeps Window messages in flight per user: a user sends
// again as soon as one of its messages is acknowledged, so the rate is
// what the server sustains. The open loop sends Rate messages per second
// in all on a fixed schedule, whatever the answers; latency is counted
// from when a message was due, so a stall shows in full rather than
// slowing the load down (no coordinated omission).
//
// # What is measured
//
// Each body starts with its send time (nanoseconds since the start of
// sending, on this process's monotonic clock). A delivery is a first
// arrival of a message at a member other than its sender, on that
// member's stream; its latency is the time from the send to the stream
// handing it over, recorded in an HDR histogram. Sends and deliveries
// are counted in the measured window, after the warmup.
//
// Every arrival goes through the receiver's view of its conversation,
// keyed by the conversation's seq: an arrival seen before is duplicated,
// a first arrival below the highest seq seen is out of order, and once
// sending stops and the drain ends, every acknowledged message that some
// other member never got is lost. The sender's own messages, which come
// back on its stream, take part in the order check only.
//
// # Idle connections
//
// Idle opens N streams and reports the server's resident memory (VmRSS)
// before and after, per connection. The server runs as a child process
// (ServerCommand), so that the load generator's own memory is not mixed
// in; for a server started elsewhere, its process id must be given.
//
// # Concurrency
//
// Each user has three goroutines: a sender, an acker that waits for the
// answers in send order (and frees closed-loop slots), and a receiver
// that reads the stream's events. Counters are atomic; latencies go in
// batches to one of a few mutex-guarded histogram shards; the ledger's
// per-user parts are each written by one goroutine and read only after
// they have all ended.
package bench
