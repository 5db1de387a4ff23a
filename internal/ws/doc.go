// Package ws serves the WebSocket endpoint of the API (GET /v1/ws): a user's
// live stream of updates, and sends, read receipts, typing and pings from
// the client, all as JSON text frames.
//
// # The stream
//
// On connect the session subscribes to the user's bus events first, then
// replays the store's updates after the client's cursor (after=N) in pages,
// then sends {"type":"ready","cursor":C}, then goes live. Every update frame
// has a cursor greater than the one before: an update at or below the last
// cursor sent is dropped; one that skips ahead (a gap: updates of one user
// can be published out of order, or the bus lost one) is held for up to
// Config.GapWait for the missing cursors to arrive, and then the session
// backfills the gap from the store. Replay and backfill fetch a page only
// when the outgoing queue has room, so a long backlog never piles up in
// memory.
//
// # Operations
//
// Sends, reads and typing notices run on their own goroutines, up to
// Config.MaxInFlight per socket; sends and reads to one conversation run in
// the order the client sent them, so pipelined messages keep their order.
// The sends to a conversation that queue while one runs go to the Service
// together (messaging.Service.SendBatch): one store commit, one publish and
// one socket write for their acks, which is what lets a client with many
// messages in flight cost the server little per message. Every send and
// read is answered by an ack or an error frame with its ref; a repeated
// client_id is acked with the first result.
//
// A session opened with merge_acks=true gets the ack of a send that stored
// a message in the place of that message's update, marked in_stream, and
// no update of its own: the batch being stored is listed in conn.merging,
// and when the bus hands the session the update of one of its messages
// while it is due next in the stream, the update's frame becomes the ack.
// Updates that arrive out of order, or once SendBatch has returned (a bus
// that delivers later), go as updates, and their sends get plain acks.
//
// # Limits and close codes
//
//   - A frame larger than Config.MaxFrameBytes (64 KiB) closes the socket
//     with 1009 (message too big).
//   - A frame that is not a JSON object of a known type gets an error frame
//     (invalid_argument, with the ref when it could be read) and the socket
//     stays open. More than Config.MaxBadFrames of them in quick succession
//     (a bucket refilled at one per second) close it with 1008 (policy
//     violation).
//   - Typing frames beyond Config.TypingPerSecond (with a burst of
//     Config.TypingBurst) are dropped silently: typing is best effort, and
//     an error for each would only add traffic.
//   - Each socket's outgoing queue holds at most Config.QueueFrames frames
//     and Config.QueueBytes bytes. A client that falls further behind is
//     closed with 1013 (try again later) and the reason "too slow; reconnect
//     with after=<cursor>", the cursor of the last update written to it.
//   - The server pings every Config.PingInterval; a peer that does not answer
//     within Config.PongTimeout is dropped (half-open connections). A ping
//     unanswered while the server had paused reading the socket (MaxInFlight
//     operations waiting) does not count: the pong may be waiting unread.
//   - A write that cannot complete within Config.WriteTimeout drops the
//     socket.
//   - A store failure while replaying closes with 1013 and "store
//     unavailable; reconnect with after=<cursor>".
//   - Shutdown closes with 1001 (going away) after the sends already taken
//     in are answered.
//
// # Frames
//
// The WebSocket library (github.com/coder/websocket) upgrades the
// connection and, at the end, closes it. In between the session reads and
// writes its frames itself (frameReader, corker): it answers pings, waits
// for the pongs of its keepalive pings, and does the close handshake,
// echoing a client's close, or sending its own and waiting up to
// closeWait for the answer.
//
// # Memory
//
// An idle session costs no goroutine and no buffer, only its state (about
// 3.5 KiB with the WebSocket library's). Its reading goroutine waits for
// the next message for a moment after one (idleGrace; at once after the
// handshake, or after a wake that brought only control frames such as a
// pong), then hands the socket to a process-wide poller (epoll, on Linux)
// and ends; the poller starts a new one when bytes or a hangup arrive, and
// closing the socket does too.
// Reads go through a pooled chunk, held only while part of it is unread.
// The writer goroutine, the queue and the write buffer exist only while
// there is something to send: frames of one burst are gathered in a pooled
// buffer and written with one system call.
package ws
