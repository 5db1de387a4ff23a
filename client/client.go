package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Types of the API, as the server sends them.

// Conversation is a direct or group conversation.
type Conversation struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Members   []string  `json:"members"`
	Creator   string    `json:"creator,omitempty"`
	LastSeq   int64     `json:"last_seq"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Summary is a conversation in the caller's list.
type Summary struct {
	Conversation
	ReadSeq     int64    `json:"read_seq"`
	LastMessage *Message `json:"last_message,omitempty"`
}

// Message is a message in a conversation.
type Message struct {
	ConversationID string          `json:"conversation_id"`
	Seq            int64           `json:"seq"`
	Sender         string          `json:"sender"`
	ClientID       string          `json:"client_id"`
	Kind           string          `json:"kind"`
	Body           string          `json:"body"`
	Meta           json.RawMessage `json:"meta,omitempty"`
	SentAt         time.Time       `json:"sent_at"`
}

// Update is one entry of the user's stream. Type is "message", "read" or
// "conversation", and says which of the other fields are set.
type Update struct {
	Cursor         int64         `json:"cursor"`
	Type           string        `json:"type"`
	Message        *Message      `json:"message,omitempty"`
	ConversationID string        `json:"conversation_id,omitempty"`
	Reader         string        `json:"reader,omitempty"`
	Seq            int64         `json:"seq,omitempty"`
	Conversation   *Conversation `json:"conversation,omitempty"`
}

// Sent is the answer to a send.
type Sent struct {
	Message Message `json:"message"`
	// Cursor is the sender's stream cursor for the message's update.
	Cursor int64 `json:"cursor"`
	// Created is false when the client_id had been sent before and the
	// answer is the first one's (HTTP only: the WebSocket does not say).
	Created bool `json:"-"`
}

// SyncPage is one page of the user's stream.
type SyncPage struct {
	Updates []Update `json:"updates"`
	Cursor  int64    `json:"cursor"`
	More    bool     `json:"more"`
}

// Error is an error answered by the server, or a transport failure with
// Status 0 and Code "unavailable".
type Error struct {
	Status  int    // HTTP status; 0 when no answer came
	Code    string // the API's code: invalid_argument, not_found, ...
	Message string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return "switchboard: " + e.Code + ": " + e.Message
	}
	return fmt.Sprintf("switchboard: %d %s: %s", e.Status, e.Code, e.Message)
}

// Retryable reports whether the same call may succeed later: the server was
// unavailable, overloaded or failed internally, or did not answer.
func (e *Error) Retryable() bool {
	switch e.Code {
	case "unavailable", "rate_limited", "internal":
		return true
	}
	return false
}

// Options configures a Client. Nil or zero fields mean defaults.
type Options struct {
	// HTTPClient makes the REST calls and the WebSocket handshakes. Nil:
	// a client with a 30s timeout for REST calls.
	HTTPClient *http.Client
	// MinBackoff and MaxBackoff bound the stream's reconnect delay, which
	// doubles after each failed attempt, with jitter. Zero: 200ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// EventBuffer is the capacity of Stream.Events. Zero: 256.
	EventBuffer int
	// MaxOutbox bounds the stream's unacknowledged sends; Stream.Send
	// waits for room. Zero: 1024.
	MaxOutbox int
	// FallbackURLs are base URLs of other nodes of the same service. The
	// stream tries them in turn after the URL given to New: whenever a
	// connection cannot be made, the next attempt goes to the next URL,
	// so that a stream whose node died resumes on another. REST calls use
	// New's URL only. Empty: New's URL only.
	FallbackURLs []string
}

// Client calls the API as one user. It is safe for concurrent use.
type Client struct {
	base  string   // without a trailing slash
	bases []string // base, then Options.FallbackURLs: where the stream may connect
	hc    *http.Client
	ws    *http.Client // handshakes: no overall timeout
	opts  Options

	mu    sync.Mutex // guards token
	token string
}

// New returns a client for the server at baseURL (http://host:port) acting
// with token, a user's JWT.
func New(baseURL, token string, opts *Options) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), token: token}
	if opts != nil {
		c.opts = *opts
	}
	c.bases = []string{c.base}
	for _, u := range c.opts.FallbackURLs {
		c.bases = append(c.bases, strings.TrimRight(u, "/"))
	}
	c.hc = c.opts.HTTPClient
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	// Handshakes go over sockets that gather a batch of frames into one
	// write (corkConn).
	c.ws = &http.Client{Transport: corkingTransport(c.hc.Transport)}
	if c.opts.MinBackoff <= 0 {
		c.opts.MinBackoff = 200 * time.Millisecond
	}
	if c.opts.MaxBackoff <= 0 {
		c.opts.MaxBackoff = 10 * time.Second
	}
	if c.opts.EventBuffer <= 0 {
		c.opts.EventBuffer = 256
	}
	if c.opts.MaxOutbox <= 0 {
		c.opts.MaxOutbox = 1024
	}
	return c
}

// SetToken replaces the token for later calls and reconnects, for example
// before the old one expires.
func (c *Client) SetToken(token string) {
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
}

func (c *Client) currentToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// do makes one call: in is encoded as the JSON body (nil: none), the
// answer decoded into out (nil: ignored). It returns the HTTP status.
func do(ctx context.Context, hc *http.Client, method, u, token string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, &Error{Code: "unavailable", Message: err.Error()}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return resp.StatusCode, readError(resp)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return resp.StatusCode, &Error{Status: resp.StatusCode, Code: "internal", Message: "decoding the answer: " + err.Error()}
	}
	return resp.StatusCode, nil
}

// readError turns an error answer into an *Error.
func readError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode}
	var ans struct {
		Error struct{ Code, Message string }
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &ans) == nil && ans.Error.Code != "" {
		e.Code, e.Message = ans.Error.Code, ans.Error.Message
	} else {
		e.Code, e.Message = codeOf(resp.StatusCode), strings.TrimSpace(string(b))
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// codeOf guesses the code of an answer that did not carry one (a proxy's).
func codeOf(status int) string {
	switch {
	case status == 400:
		return "invalid_argument"
	case status == 401:
		return "unauthenticated"
	case status == 403:
		return "permission_denied"
	case status == 404:
		return "not_found"
	case status == 409:
		return "conflict"
	case status == 413:
		return "payload_too_large"
	case status == 429:
		return "rate_limited"
	case status == 503, status == 502, status == 504:
		return "unavailable"
	}
	return "internal"
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) (int, error) {
	return do(ctx, c.hc, method, c.base+path, c.currentToken(), in, out)
}

// CreateConversation starts a conversation with members ("app:user"). One
// other member and no title make a direct conversation: if it exists
// already it is returned with created = false.
func (c *Client) CreateConversation(ctx context.Context, members []string, title string) (conv *Conversation, created bool, err error) {
	var ans struct{ Conversation Conversation }
	status, err := c.call(ctx, "POST", "/v1/conversations", map[string]any{"members": members, "title": title}, &ans)
	if err != nil {
		return nil, false, err
	}
	return &ans.Conversation, status == http.StatusCreated, nil
}

// Conversations lists the caller's conversations, latest activity first.
// before is the next token of the previous page ("" for the first); next is
// "" on the last page. limit 0 means the server's default.
func (c *Client) Conversations(ctx context.Context, before string, limit int) (list []Summary, next string, err error) {
	q := url.Values{}
	if before != "" {
		q.Set("before", before)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var ans struct {
		Conversations []Summary
		Next          string
	}
	if _, err := c.call(ctx, "GET", "/v1/conversations?"+q.Encode(), nil, &ans); err != nil {
		return nil, "", err
	}
	return ans.Conversations, ans.Next, nil
}

// Conversation returns one conversation the caller is a member of.
func (c *Client) Conversation(ctx context.Context, id string) (*Conversation, error) {
	var ans struct{ Conversation Conversation }
	if _, err := c.call(ctx, "GET", "/v1/conversations/"+url.PathEscape(id), nil, &ans); err != nil {
		return nil, err
	}
	return &ans.Conversation, nil
}

// UpdateMembers adds and removes members of a group.
func (c *Client) UpdateMembers(ctx context.Context, id string, add, remove []string) (*Conversation, error) {
	var ans struct{ Conversation Conversation }
	in := map[string]any{"add": nonNil(add), "remove": nonNil(remove)}
	if _, err := c.call(ctx, "POST", "/v1/conversations/"+url.PathEscape(id)+"/members", in, &ans); err != nil {
		return nil, err
	}
	return &ans.Conversation, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Send sends a message over HTTP. clientID is the idempotency key: sending
// it again answers the first result. meta is any JSON object, or nil.
func (c *Client) Send(ctx context.Context, conversationID, clientID, body string, meta any) (*Sent, error) {
	in := map[string]any{"client_id": clientID, "body": body}
	if meta != nil {
		in["meta"] = meta
	}
	var ans Sent
	status, err := c.call(ctx, "POST", "/v1/conversations/"+url.PathEscape(conversationID)+"/messages", in, &ans)
	if err != nil {
		return nil, err
	}
	ans.Created = status == http.StatusCreated
	return &ans, nil
}

// History returns up to limit messages with seq < before (0: from the
// newest), newest first.
func (c *Client) History(ctx context.Context, conversationID string, before int64, limit int) ([]Message, error) {
	q := url.Values{}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var ans struct{ Messages []Message }
	if _, err := c.call(ctx, "GET", "/v1/conversations/"+url.PathEscape(conversationID)+"/messages?"+q.Encode(), nil, &ans); err != nil {
		return nil, err
	}
	return ans.Messages, nil
}

// MarkRead moves the caller's read position to seq (never back) and returns
// where it stands.
func (c *Client) MarkRead(ctx context.Context, conversationID string, seq int64) (int64, error) {
	var ans struct {
		ReadSeq int64 `json:"read_seq"`
	}
	if _, err := c.call(ctx, "POST", "/v1/conversations/"+url.PathEscape(conversationID)+"/read", map[string]any{"seq": seq}, &ans); err != nil {
		return 0, err
	}
	return ans.ReadSeq, nil
}

// Block stops address ("app:user") from messaging the caller.
func (c *Client) Block(ctx context.Context, address string) error {
	_, err := c.call(ctx, "POST", "/v1/blocks", map[string]any{"address": address}, nil)
	return err
}

// Unblock lifts a block.
func (c *Client) Unblock(ctx context.Context, address string) error {
	_, err := c.call(ctx, "DELETE", "/v1/blocks/"+url.PathEscape(address), nil, nil)
	return err
}

// Sync returns the caller's stream after the cursor after. limit 0 means
// the server's default.
func (c *Client) Sync(ctx context.Context, after int64, limit int) (*SyncPage, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var ans SyncPage
	if _, err := c.call(ctx, "GET", "/v1/sync?"+q.Encode(), nil, &ans); err != nil {
		return nil, err
	}
	return &ans, nil
}
