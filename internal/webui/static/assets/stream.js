// The user's live stream over the WebSocket, with an outbox. It follows the
// rules of the Go client (client/stream.go):
//   - updates are delivered once each, in cursor order: one at or below the
//     last cursor is dropped; a reconnect resumes with after=<cursor>;
//   - every send keeps its client_id (also its ref) until the server acks
//     it, and is sent again, in order, after every reconnect; a retryable
//     error (unavailable, rate_limited, internal) sends it again later, any
//     other marks it failed with the server's message;
//   - read receipts are sent again after a reconnect until acked;
//   - typing notices are sent only while connected, never queued;
//   - the ack of a send on this socket stands in for its message's update
//     (merge_acks), one frame instead of two, as with the Go client;
//   - reconnects back off exponentially (200 ms doubling to 8 s), half the
//     delay fixed and half random, and start over once the stream is live.
// The cursor and the outbox are kept in storage (the tab's sessionStorage),
// so a reload resumes where it was and resends what was not acked.

import { ApiError } from "./api.js";

const MIN_BACKOFF = 200;
const MAX_BACKOFF = 8000;
// The client pings when it has heard nothing for a while, and gives up on a
// socket that stays silent: browsers notice a dead network late.
const PING_AFTER = 20000;
const PONG_WAIT = 10000;

function randomID() {
  const b = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

const jitter = (d) => d / 2 + Math.random() * (d / 2);

export class Stream {
  // opts: token, storage, key (the prefix of the storage keys), and the
  // callbacks onUpdate(u), onTyping(conversationID, from), onState(state,
  // error), onOutbox() (the outbox changed), onAck(entry, message),
  // onAuthFailed(error).
  constructor(opts) {
    this.o = opts;
    this.cursor = Number(opts.storage.getItem(opts.key + "cursor")) || 0;
    this.outbox = [];
    try {
      this.outbox = JSON.parse(opts.storage.getItem(opts.key + "outbox") || "[]");
    } catch {
      this.outbox = [];
    }
    for (const e of this.outbox) e.tries = 0;
    this.reads = new Map(); // ref -> frame, until acked
    this.ws = null;
    this.state = "connecting";
    this.backoff = MIN_BACKOFF;
    this.timer = 0;
    this.stopped = false;
    this.nextRef = 0;
    this.heard = 0;
    this.pinger = 0;
  }

  start() {
    this.stopped = false;
    this.dial();
    this.pinger = setInterval(() => this.keepalive(), PING_AFTER / 2);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    if (this.ws) this.ws.close(1000, "signed out");
    this.ws = null;
  }

  // reconnectNow skips the backoff wait: the browser says it is online
  // again, or the page became visible.
  reconnectNow() {
    if (this.stopped || this.ws) return;
    clearTimeout(this.timer);
    this.backoff = MIN_BACKOFF;
    this.dial();
  }

  // drop closes the socket at once, for when the browser reports that the
  // network is gone; the usual reconnect follows.
  drop() {
    if (this.ws) this.ws.close(4000, "offline");
  }

  dial() {
    this.timer = 0;
    const u = new URL("/v1/ws", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("after", String(this.cursor));
    // The ack of a send on this socket comes in the place of its message's
    // update (see handle): one frame instead of two per message sent.
    u.searchParams.set("merge_acks", "true");
    // Browsers cannot set headers on a WebSocket; the API takes ?token=.
    u.searchParams.set("token", this.o.token);
    let ws;
    try {
      ws = new WebSocket(u);
    } catch (err) {
      this.closed(null, false, err);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.heard = Date.now();
      this.setState("connected");
      for (const e of this.outbox) if (e.state === "sending") this.write(e.frame);
      for (const f of this.reads.values()) this.write(f);
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.heard = Date.now();
      let f;
      try {
        f = JSON.parse(ev.data);
      } catch {
        return; // not ours to judge; the server speaks JSON
      }
      this.handle(f);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closed(ev, opened);
    };
  }

  async closed(ev, opened) {
    if (this.stopped) return;
    this.setState(navigator.onLine === false ? "offline" : "connecting", ev && ev.reason);
    if (!opened) {
      // A refused upgrade looks like any failed connection to a page; ask
      // the REST API whether the token is the reason.
      const err = await this.checkToken();
      if (err) {
        this.stop();
        this.o.onAuthFailed(err);
        return;
      }
    }
    if (this.stopped || this.ws || this.timer) return;
    this.timer = setTimeout(() => this.dial(), jitter(this.backoff));
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF);
  }

  async checkToken() {
    try {
      const r = await fetch(`/v1/sync?after=${this.cursor}&limit=1`, {
        headers: { Authorization: "Bearer " + this.o.token },
        cache: "no-store",
      });
      if (r.status !== 401) return null;
      const body = await r.json().catch(() => null);
      const msg = body && body.error ? body.error.message : "the token was refused";
      return new ApiError("unauthenticated", msg, 401);
    } catch {
      return null; // the network; keep trying
    }
  }

  keepalive() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const quiet = Date.now() - this.heard;
    if (quiet > PING_AFTER + PONG_WAIT) {
      ws.close(4001, "no answer to ping");
    } else if (quiet > PING_AFTER) {
      this.write(JSON.stringify({ type: "ping", ref: "p" + ++this.nextRef }));
    }
  }

  setState(state, detail) {
    this.state = state;
    this.o.onState(state, detail);
  }

  write(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
  }

  handle(f) {
    switch (f.type) {
      case "update": {
        const u = f.update;
        if (!u || u.cursor <= this.cursor) return; // seen already
        this.cursor = u.cursor;
        this.o.onUpdate(u);
        // Saved after the page applied it: a reload resumes after it.
        this.put("cursor", String(this.cursor));
        return;
      }
      case "ready":
        if (f.cursor > this.cursor) {
          this.cursor = f.cursor;
          this.put("cursor", String(this.cursor));
        }
        this.backoff = MIN_BACKOFF;
        this.setState("live");
        return;
      case "ack": {
        if (!f.message) {
          this.reads.delete(f.ref); // a read's ack
          return;
        }
        const e = this.outbox.find((x) => x.client_id === f.ref);
        if (e) this.forget(e.client_id);
        if (f.in_stream) {
          // merge_acks: the ack is also the message's update at its cursor,
          // which comes on no other frame.
          this.handle({ type: "update", update: { cursor: f.cursor, type: "message", message: f.message } });
        } else if (e) {
          this.o.onAck(e, f.message);
        }
        return;
      }
      case "error": {
        const err = f.error || { code: "internal", message: "The server sent an error without details." };
        const ae = new ApiError(err.code, err.message);
        const e = this.outbox.find((x) => x.client_id === f.ref);
        if (e) {
          if (ae.retryable) this.retryLater(e);
          else this.fail(e, ae);
        } else {
          this.reads.delete(f.ref); // a refused read: the next view reads again
        }
        return;
      }
      case "typing":
        this.o.onTyping(f.conversation_id, f.from);
        return;
    }
  }

  save() {
    const keep = this.outbox.map(({ client_id, conversation_id, body, frame, state, error, queued_at }) =>
      ({ client_id, conversation_id, body, frame, state, error, queued_at }));
    this.put("outbox", JSON.stringify(keep));
    this.o.onOutbox();
  }

  put(name, value) {
    try {
      this.o.storage.setItem(this.o.key + name, value);
    } catch {
      // Storage is full: all works on, but a reload would lose this.
    }
  }

  // send puts a message in the outbox and sends it if connected. It
  // answers the entry, whose client_id stays the same until it is acked.
  send(conversationID, body) {
    const id = randomID();
    const frame = JSON.stringify({ type: "send", ref: id, conversation_id: conversationID, client_id: id, body });
    const e = { client_id: id, conversation_id: conversationID, body, frame, state: "sending", error: "",
      queued_at: new Date().toISOString(), tries: 0 };
    this.outbox.push(e);
    this.save();
    this.write(frame);
    return e;
  }

  retryLater(e) {
    e.tries = (e.tries || 0) + 1;
    const d = jitter(Math.min(MIN_BACKOFF * 2 ** Math.min(e.tries, 10), MAX_BACKOFF));
    setTimeout(() => {
      if (this.outbox.includes(e) && e.state === "sending") this.write(e.frame);
    }, d);
  }

  fail(e, err) {
    e.state = "failed";
    e.error = err.message;
    this.save();
  }

  // retry sends a failed message again, with the same client_id.
  retry(clientID) {
    const e = this.outbox.find((x) => x.client_id === clientID);
    if (!e) return;
    e.state = "sending";
    e.error = "";
    e.tries = 0;
    this.save();
    this.write(e.frame);
  }

  // forget takes a message out of the outbox: acked, seen in the stream
  // (stored from an earlier connection whose ack was lost), or discarded.
  forget(clientID) {
    const i = this.outbox.findIndex((x) => x.client_id === clientID);
    if (i < 0) return false;
    this.outbox.splice(i, 1);
    this.save();
    return true;
  }

  // read moves the read position; sent again after a reconnect until acked.
  // Only the latest read of a conversation is kept.
  read(conversationID, seq) {
    for (const [ref, f] of this.reads) {
      if (JSON.parse(f).conversation_id === conversationID) this.reads.delete(ref);
    }
    const ref = "r" + ++this.nextRef;
    const f = JSON.stringify({ type: "read", ref, conversation_id: conversationID, seq });
    this.reads.set(ref, f);
    this.write(f);
  }

  typing(conversationID) {
    if (this.state === "live") this.write(JSON.stringify({ type: "typing", conversation_id: conversationID }));
  }
}
