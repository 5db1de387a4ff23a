// The Switchboard chat client: sign-in, the conversation list, the open
// conversation and the composer. State lives in `S`; render() draws it.
// Everything the server says is applied idempotently (sequence numbers and
// read positions only move forward), so a replayed update changes nothing.

import * as api from "./api.js";
import { Stream } from "./stream.js";
import { $, el, appBadge, userOf, appOf, timeLabel, dayTimeLabel } from "./view.js";

const store = window.sessionStorage;
const HISTORY_PAGE = 50;
const TYPING_SEND_EVERY = 2000; // ms between our typing notices
const TYPING_SHOWN_FOR = 5000; // ms a typing notice of others stays up
const MAX_BODY_BYTES = 4096;
const MAX_OUTBOX = 500; // unsent messages kept; sessionStorage holds about 5 MB

const S = {
  me: "",
  token: "",
  stream: null,
  convs: new Map(), // id -> conversation state, see conv()
  next: "", // the token of the next page of the conversation list
  paged: false, // whether older pages of the list were loaded
  current: "", // the open conversation's id
  typing: new Map(), // conversation id -> Map(from -> time it expires)
  typingSentAt: 0,
  reads: {}, // conversation id -> {member: seq}, others' read positions
};

const key = () => `sb:${S.me}:`;

// ---- sign-in ----

// hashToken takes a token from the URL fragment (#token=<JWT>) and drops
// it from the address bar and the history.
function hashToken() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!m) return "";
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(m[1]);
}

async function boot() {
  wireStatic();
  const t = hashToken();
  if (t) {
    await signIn(t);
    return;
  }
  const saved = store.getItem("sb:token");
  if (saved) {
    await signIn(saved);
    return;
  }
  showSignIn("");
}

async function showSignIn(message) {
  $("#chat").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message;
  try {
    await api.get("/v1/dev");
    $("#dev-form").hidden = false;
    $("#signin-app").focus();
  } catch {
    $("#dev-form").hidden = true; // the server has no dev sign-in: tokens only
    $("#token-input").focus();
  }
}

async function signIn(token) {
  token = token.trim();
  const c = api.claims(token);
  if (!c) {
    showSignIn("That is not a token: a token has three parts separated by dots (a JWT).");
    return;
  }
  if (c.exp && c.exp * 1000 < Date.now()) {
    showSignIn(`This token for ${c.iss}:${c.sub} has expired. Sign in again, or get a new token.`);
    return;
  }
  api.setToken(token, (e) => {
    if (S.token === token && S.stream) signOut(`You were signed out: ${e.message}`);
  });
  S.token = token;
  S.me = `${c.iss}:${c.sub}`;
  try {
    await loadConversations(true);
  } catch (e) {
    if (e.code === "unauthenticated") {
      store.removeItem("sb:token");
      api.setToken("");
      showSignIn(`The server refused the token: ${e.message}`);
      return;
    }
    // Anything else (the server is away): go on; the stream retries and
    // the list is loaded again once it is live.
  }
  store.setItem("sb:token", token);
  try {
    S.reads = JSON.parse(store.getItem(key() + "reads") || "{}");
  } catch {
    S.reads = {};
  }
  $("#signin").hidden = true;
  $("#chat").hidden = false;
  $("#me-user").textContent = c.sub;
  setBadge($("#me-app"), c.iss);
  S.stream = new Stream({
    token,
    storage: store,
    key: key(),
    onUpdate: applyUpdate,
    onTyping,
    onState,
    onOutbox: render,
    onAck: (entry, m) => applyMessage(m),
    onAuthFailed: (e) => signOut(`You were signed out: ${e.message}`),
  });
  S.stream.start();
  if (c.exp) {
    // Timers hold at most 2^31-1 ms (24.8 days); a longer token is
    // checked again by the server anyway.
    const left = Math.min(c.exp * 1000 - Date.now(), 2 ** 31 - 1);
    S.expiry = setTimeout(() => signOut(`Your sign-in for ${S.me} expired. Sign in again.`), left);
  }
  render();
  $("#new-conversation-input").focus();
}

function signOut(message) {
  if (S.stream) S.stream.stop();
  clearTimeout(S.expiry);
  for (const k of Object.keys(store)) if (k.startsWith(key())) store.removeItem(k);
  store.removeItem("sb:token");
  api.setToken("");
  Object.assign(S, { me: "", token: "", stream: null, convs: new Map(), next: "", paged: false, current: "", reads: {} });
  items.clear();
  S.typing.clear();
  onState("connecting");
  $("#conversations").replaceChildren();
  $("#message-list").replaceChildren();
  showSignIn(message);
}

// ---- state ----

function conv(c) {
  let x = S.convs.get(c.id);
  if (!x) {
    x = { id: c.id, members: [], title: "", kind: "direct", last_seq: 0, read_seq: 0, last_message: null,
      activity: 0, msgs: new Map(), oldest: Infinity, loaded: false, done: false, loading: false };
    S.convs.set(c.id, x);
  }
  for (const f of ["kind", "title", "members", "creator"]) if (c[f] !== undefined) x[f] = c[f];
  if (c.members && !c.members.includes(S.me)) {
    // We left the group, or were removed from it.
    S.convs.delete(c.id);
    if (S.current === c.id) {
      S.current = "";
      $("#chat").classList.remove("open");
    }
    return x;
  }
  x.last_seq = Math.max(x.last_seq, c.last_seq || 0);
  x.read_seq = Math.max(x.read_seq, c.read_seq || 0);
  x.activity = Math.max(x.activity, Date.parse(c.updated_at || 0) || 0);
  if (c.last_message) noteLast(x, c.last_message);
  return x;
}

function noteLast(x, m) {
  if (!x.last_message || m.seq >= x.last_message.seq) x.last_message = m;
  x.last_seq = Math.max(x.last_seq, m.seq);
  x.activity = Math.max(x.activity, Date.parse(m.sent_at) || 0);
}

async function loadConversations(first) {
  const q = first || !S.next ? "" : `&before=${encodeURIComponent(S.next)}`;
  const r = await api.get(`/v1/conversations?limit=50${q}`);
  for (const c of r.conversations) conv(c);
  // A refresh of the first page must not forget how far "show older"
  // has gone.
  if (!first || !S.paged) S.next = r.next;
  if (!first) S.paged = true;
  render();
}

let refreshing = null;
// refreshList loads the first page again: a conversation we do not know
// has new activity, so it is at the top of that page.
function refreshList() {
  refreshing ||= loadConversations(true).catch(() => {}).finally(() => (refreshing = null));
}

function applyUpdate(u) {
  switch (u.type) {
    case "message":
      applyMessage(u.message);
      break;
    case "read":
      applyRead(u.conversation_id, u.reader, u.seq);
      break;
    case "conversation":
      conv(u.conversation);
      render();
      break;
  }
}

function applyMessage(m) {
  const x = S.convs.get(m.conversation_id);
  if (!x) {
    // Not in the pages of the list loaded. While catching up, the list is
    // loaded again once live; after that, new activity puts it on top.
    if (S.stream.state === "live") refreshList();
    return;
  }
  // Messages are kept for conversations opened; for the others the list's
  // last message is enough, and opening loads the history.
  if (x.loaded || x.loading) x.msgs.set(m.seq, m);
  noteLast(x, m);
  if (m.sender === S.me) {
    x.read_seq = Math.max(x.read_seq, m.seq); // sending reads up to it
    S.stream.forget(m.client_id); // stored already: no need to send again
  }
  const t = S.typing.get(m.conversation_id);
  if (t) t.delete(m.sender);
  render();
}

function applyRead(id, reader, seq) {
  const x = S.convs.get(id);
  if (reader === S.me) {
    if (x) x.read_seq = Math.max(x.read_seq, seq);
  } else {
    const r = (S.reads[id] ||= {});
    if ((r[reader] || 0) >= seq) return;
    r[reader] = seq;
    S.stream.put("reads", JSON.stringify(S.reads));
  }
  render();
}

function onTyping(id, from) {
  if (from === S.me) return;
  let t = S.typing.get(id);
  if (!t) S.typing.set(id, (t = new Map()));
  t.set(from, Date.now() + TYPING_SHOWN_FOR);
  render();
  setTimeout(render, TYPING_SHOWN_FOR + 50);
}

function typers(id) {
  const t = S.typing.get(id);
  if (!t) return [];
  const now = Date.now();
  for (const [who, until] of t) if (until <= now) t.delete(who);
  return [...t.keys()];
}

const STATUS = {
  connecting: "Connecting…",
  connected: "Catching up…",
  live: "Online",
  offline: "Offline: messages wait until you are back",
};

function onState(state) {
  const s = $("#connection-status");
  s.dataset.state = state;
  s.textContent = STATUS[state] || state;
  // The phone layout hides the list, and its status, while a conversation
  // is open: repeat it there while not online. (Screen readers have the
  // status already.)
  $("#conversation-status").textContent = s.textContent;
  $("#conversation-status").hidden = state === "live";
  if (state === "live") {
    refreshList(); // names, titles and read positions changed while away
    const x = S.convs.get(S.current);
    if (x && !x.loaded) loadHistory(x, false);
  }
  render();
}

// ---- history ----

async function loadHistory(x, older) {
  if (x.loading || (older && x.done)) return;
  x.loading = true;
  if (S.current === x.id) renderStatus(x, $("#message-list").children.length);
  const before = older && x.oldest !== Infinity ? `&before=${x.oldest}` : "";
  try {
    const r = await api.get(`/v1/conversations/${encodeURIComponent(x.id)}/messages?limit=${HISTORY_PAGE}${before}`);
    for (const m of r.messages) {
      x.msgs.set(m.seq, m);
      x.oldest = Math.min(x.oldest, m.seq);
      noteLast(x, m);
    }
    if (r.messages.length === 0 || x.oldest <= 1) x.done = true;
    x.loaded = true;
    x.error = "";
  } catch (e) {
    x.error = `Could not load messages: ${e.message}. Scroll up to try again.`;
    return;
  } finally {
    x.loading = false;
    if (S.current === x.id) renderStatus(x, $("#message-list").children.length);
  }
  if (S.current !== x.id) return;
  const pane = $("#messages");
  const fromBottom = pane.scrollHeight - pane.scrollTop;
  renderConversation();
  // Keep what the reader was looking at in place when older messages
  // land above it; the first page starts at the bottom.
  pane.scrollTop = older ? pane.scrollHeight - fromBottom : pane.scrollHeight;
  if (!x.done && pane.scrollHeight <= pane.clientHeight) loadHistory(x, true);
  markRead();
}

function onScroll() {
  const x = S.convs.get(S.current);
  if (!x) return;
  if ($("#messages").scrollTop < 120) loadHistory(x, x.loaded);
  markRead();
}

function atBottom() {
  const p = $("#messages");
  return p.scrollHeight - p.scrollTop - p.clientHeight < 48;
}

// markRead tells the server what the user has seen: the open conversation
// up to its last message, when the page is visible and scrolled down.
function markRead() {
  const x = S.convs.get(S.current);
  if (!x || !x.loaded || document.visibilityState !== "visible" || !atBottom()) return;
  if (x.last_seq > x.read_seq && x.msgs.has(x.last_seq)) {
    x.read_seq = x.last_seq;
    S.stream.read(x.id, x.last_seq);
    renderList();
  }
}

// ---- actions ----

function open(id) {
  const x = S.convs.get(id);
  if (!x) return;
  S.current = id;
  for (const k of items.keys()) if (!k.startsWith(id + "/")) items.delete(k);
  $("#chat").classList.add("open");
  $("#conversation-error").textContent = "";
  $("#composer-input").value = "";
  fitComposer();
  renderList();
  renderConversation();
  $("#messages").scrollTop = $("#messages").scrollHeight;
  if (!x.loaded) loadHistory(x, false);
  else markRead();
  $("#composer-input").focus();
}

function back() {
  $("#chat").classList.remove("open");
  const item = document.querySelector(`[data-id="${CSS.escape(S.current)}"]`);
  if (item) item.focus();
}

async function startConversation(ev) {
  ev.preventDefault();
  const err = $("#new-conversation-error");
  err.textContent = "";
  const members = $("#new-conversation-input").value.split(/[\s,;]+/).filter(Boolean);
  const title = $("#new-conversation-title").value.trim();
  if (members.length === 0) {
    err.textContent = "Enter an address such as instagram:bob.";
    return;
  }
  const bad = members.find((a) => !/^[a-z0-9-]{1,32}:[A-Za-z0-9._-]{1,64}$/.test(a));
  if (bad) {
    err.textContent = `"${bad}" is not an address: write app:user, for example instagram:bob.`;
    return;
  }
  const button = $("[data-testid=new-conversation-submit]");
  button.disabled = true;
  try {
    const r = await api.post("/v1/conversations", { members, title });
    conv(r.conversation);
    $("#new-conversation-input").value = "";
    $("#new-conversation-title").value = "";
    open(r.conversation.id);
  } catch (e) {
    err.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

function send(ev) {
  if (ev) ev.preventDefault();
  const input = $("#composer-input");
  // Blank lines and spaces at either end are never meant to be sent.
  const body = input.value.trim();
  const x = S.convs.get(S.current);
  if (!x || body === "") return;
  const size = new TextEncoder().encode(body).length;
  if (size > MAX_BODY_BYTES) {
    $("#conversation-error").textContent =
      `This message is ${size} bytes; the most is ${MAX_BODY_BYTES}. Shorten it or send it in parts.`;
    return;
  }
  if (S.stream.outbox.length >= MAX_OUTBOX) {
    $("#conversation-error").textContent =
      `${MAX_OUTBOX} messages are waiting to be sent already. Wait until you are back online, then send this one.`;
    return;
  }
  $("#conversation-error").textContent = "";
  S.stream.send(x.id, body);
  input.value = "";
  S.typingSentAt = 0;
  fitComposer();
  render();
  $("#messages").scrollTop = $("#messages").scrollHeight;
}

function composerKey(ev) {
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    send();
  }
}

function composerInput() {
  fitComposer();
  const now = Date.now();
  if (S.current && $("#composer-input").value.trim() && now - S.typingSentAt > TYPING_SEND_EVERY) {
    S.typingSentAt = now;
    S.stream.typing(S.current);
  }
}

function fitComposer() {
  const t = $("#composer-input");
  t.style.height = "auto";
  t.style.height = Math.min(t.scrollHeight, 160) + "px";
}

// ---- rendering ----

let queued = false;
function render() {
  if (queued) return;
  queued = true;
  const draw = () => {
    queued = false;
    renderList();
    renderConversation();
    markRead();
  };
  // Frames do not run in a hidden tab; the title's unread count should.
  if (document.hidden) setTimeout(draw, 200);
  else requestAnimationFrame(draw);
}

// place makes parent's children exactly want, in order, moving only what
// must move: nodes that stay are not taken out (which would lose focus
// and make screen readers read a live region again).
function place(parent, want) {
  const keep = new Set(want);
  for (const n of [...parent.children]) if (!keep.has(n)) n.remove();
  want.forEach((n, i) => {
    if (parent.children[i] !== n) parent.insertBefore(n, parent.children[i] || null);
  });
}

function setBadge(node, app) {
  node.textContent = app;
  node.style.setProperty("--hue", appBadge(app));
}

function others(x) {
  return (x.members || []).filter((m) => m !== S.me);
}

function title(x) {
  if (x.title) return x.title;
  const o = others(x);
  if (o.length === 0) return "Only you";
  return o.map(userOf).join(", ");
}

function badges(x) {
  const apps = [...new Set(others(x).map(appOf))];
  return apps.map((a) => {
    const b = el("span", { class: "badge" });
    setBadge(b, a);
    return b;
  });
}

function renderList() {
  const ul = $("#conversations");
  const list = [...S.convs.values()].sort((a, b) => b.activity - a.activity || (a.id < b.id ? -1 : 1));
  const unread = list.reduce((n, x) => n + Math.max(0, x.last_seq - x.read_seq), 0);
  document.title = (unread ? `(${unread}) ` : "") + "Switchboard";
  $("#no-conversations").hidden = list.length > 0;
  $("#more-conversations").hidden = !S.next;
  const lis = list.map((x) => {
    let li = ul.querySelector(`li[data-id="${CSS.escape(x.id)}"]`);
    if (!li) {
      li = el("li", { "data-id": x.id });
      const b = el("button", { type: "button", class: "conversation-item", "data-testid": "conversation-item", "data-id": x.id });
      b.addEventListener("click", () => open(x.id));
      li.append(b);
    }
    fillItem(li.firstChild, x);
    return li;
  });
  const focused = document.activeElement;
  place(ul, lis);
  // Moving the focused item up the list takes the focus away; give it back.
  if (focused && focused !== document.activeElement && document.contains(focused)) focused.focus({ preventScroll: true });
}

function fillItem(b, x) {
  const unread = Math.max(0, x.last_seq - x.read_seq);
  const t = typers(x.id);
  const last = x.last_message;
  let preview = "No messages yet";
  if (t.length) preview = "typing…";
  else if (last) preview = (last.sender === S.me ? "You: " : x.kind === "group" ? userOf(last.sender) + ": " : "") + last.body;
  const name = title(x);
  // Rebuild only on a change: a click whose target is replaced between
  // mousedown and mouseup is lost.
  const sig = JSON.stringify([name, unread, preview, x.id === S.current, last && last.sent_at, x.members]);
  if (b.dataset.sig === sig) return;
  b.dataset.sig = sig;
  b.dataset.unread = String(unread);
  b.setAttribute("aria-current", x.id === S.current ? "true" : "false");
  b.setAttribute("aria-label", `${name} (${[...new Set(others(x).map(appOf))].join(", ") || "you"})` +
    (unread ? `, ${unread} unread` : "") + (last ? `, last message: ${preview}` : ""));
  b.replaceChildren(
    el("span", { class: "item-top" },
      el("span", { class: "item-name" }, name),
      el("span", { class: "badges" }, ...badges(x)),
      last ? el("time", { class: "item-time", datetime: last.sent_at }, dayTimeLabel(last.sent_at)) : ""),
    el("span", { class: "item-bottom" },
      el("span", { class: "item-last" + (t.length ? " typing-preview" : "") }, preview),
      unread ? el("span", { class: "unread", "data-testid": "unread-count" }, String(unread)) : ""),
  );
}

function renderConversation() {
  const x = S.convs.get(S.current);
  $("#pick").hidden = !!x;
  $("#conversation-pane").hidden = !x;
  if (!x) return;
  $("#conversation-title").textContent = title(x);
  $("#conversation-members").replaceChildren(...(x.members || []).map((m) => {
    const b = el("span", { class: "badge" });
    setBadge(b, appOf(m));
    return el("span", { class: "member" }, el("span", {}, m === S.me ? "you" : userOf(m)), " ", b);
  }));

  const stick = atBottom();
  const ol = $("#message-list");
  const want = [];
  if (x.loaded) {
    // Only what joins up with the history loaded: no gaps shown.
    const seqs = [...x.msgs.keys()].filter((s) => x.done || s >= x.oldest).sort((a, b) => a - b);
    let prev = "";
    for (const s of seqs) {
      const m = x.msgs.get(s);
      want.push(messageItem(x, m, null, m.sender !== prev));
      prev = m.sender;
    }
    for (const e of S.stream.outbox) if (e.conversation_id === x.id) want.push(messageItem(x, null, e, false));
  }
  place(ol, want);
  renderStatus(x, want.length);
  if (stick) $("#messages").scrollTop = $("#messages").scrollHeight;

  const t = typers(x.id).map((a) => `${userOf(a)} (${appOf(a)})`);
  $("#typing").textContent = t.length === 0 ? "" :
    t.length === 1 ? `${t[0]} is typing…` : `${t.slice(0, -1).join(", ")} and ${t.at(-1)} are typing…`;
}

function renderStatus(x, shown) {
  let s = "";
  if (x.loading) s = x.loaded ? "Loading earlier messages…" : "Loading messages…";
  else if (x.error) s = x.error;
  else if (x.loaded && shown === 0) s = "No messages yet. Say hello.";
  else if (x.loaded && x.done) s = "This is the start of the conversation.";
  $("#history-status").textContent = s;
}

// Message elements are kept by key so that a re-render only touches what
// changed: our own messages by client_id (the same element goes from
// sending to sent to read), the others' by seq.
const items = new Map();

// showSender: the first of a run of messages from one sender gets their
// name and app badge.
function messageItem(x, m, pending, showSender) {
  const mine = pending ? true : m.sender === S.me;
  const k = x.id + (mine ? "/c/" + (pending ? pending.client_id : m.client_id) : "/s/" + m.seq);
  let state = "";
  let stateText = "";
  if (pending) {
    state = pending.state;
    stateText = pending.state === "failed" ? "Not sent" : "Sending…";
  } else if (mine) {
    const o = others(x);
    const r = S.reads[x.id] || {};
    const readers = o.filter((a) => (r[a] || 0) >= m.seq).length;
    if (o.length > 0 && readers === o.length) [state, stateText] = ["read", "Read"];
    else if (readers > 0) [state, stateText] = ["sent", `Read by ${readers} of ${o.length}`];
    else [state, stateText] = ["sent", "Sent"];
  }
  const sig = [state, stateText, pending ? pending.error : "", m ? m.seq : "", showSender].join("|");
  let li = items.get(k);
  if (li && li.dataset.sig === sig) return li;
  const body = pending ? pending.body : m.body;
  const when = pending ? pending.queued_at : m.sent_at;
  li = el("li", {
    class: "message" + (mine ? " mine" : ""),
    "data-testid": "message-item",
    "data-sig": sig,
    "data-state": state || "received",
    "data-seq": m ? String(m.seq) : "",
  });
  if (!mine && showSender) {
    const b = el("span", { class: "badge" });
    setBadge(b, appOf(m.sender));
    li.append(el("p", { class: "sender" }, el("span", {}, userOf(m.sender)), " ", b));
  }
  li.append(el("p", { class: "body" }, body));
  li.append(el("p", { class: "foot" },
    el("time", { datetime: when }, timeLabel(when)),
    stateText ? el("span", { class: "state" }, stateText) : ""));
  if (pending && pending.state === "failed") {
    const retry = el("button", { type: "button", class: "quiet" }, "Try again");
    retry.addEventListener("click", () => S.stream.retry(pending.client_id));
    const drop = el("button", { type: "button", class: "quiet" }, "Delete");
    drop.addEventListener("click", () => S.stream.forget(pending.client_id));
    li.append(el("p", { class: "error", role: "alert" }, pending.error), el("p", { class: "actions" }, retry, drop));
  }
  items.set(k, li);
  return li;
}

// ---- wiring ----

function wireStatic() {
  $("#dev-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const button = $("[data-testid=signin-submit]");
    button.disabled = true;
    $("#signin-error").textContent = "";
    try {
      const r = await api.post("/v1/dev/login", { app: $("#signin-app").value.trim(), user: $("#signin-user").value.trim() });
      await signIn(r.token);
    } catch (e) {
      $("#signin-error").textContent = e.message;
    } finally {
      button.disabled = false;
    }
  });
  $("#token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    signIn($("#token-input").value);
  });
  $("#signout").addEventListener("click", () => {
    const n = S.stream ? S.stream.outbox.length : 0;
    if (n && !confirm(`${n} message${n > 1 ? "s have" : " has"} not been sent yet and will be lost. Sign out anyway?`)) return;
    signOut("");
  });
  $("#new-conversation").addEventListener("submit", startConversation);
  $("#more-conversations").addEventListener("click", () =>
    loadConversations(false).catch((e) => ($("#new-conversation-error").textContent = e.message)));
  $("#composer").addEventListener("submit", send);
  $("#composer-input").addEventListener("keydown", composerKey);
  $("#composer-input").addEventListener("input", composerInput);
  $("#messages").addEventListener("scroll", onScroll, { passive: true });
  $("#back").addEventListener("click", back);
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && $("#chat").classList.contains("open")) back();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      markRead();
      if (S.stream) S.stream.reconnectNow();
    }
  });
  window.addEventListener("hashchange", () => {
    const t = hashToken();
    if (!t) return;
    if (S.me) signOut("");
    signIn(t);
  });
  window.addEventListener("online", () => S.stream && S.stream.reconnectNow());
  window.addEventListener("offline", () => S.stream && S.stream.drop());
}

boot();
