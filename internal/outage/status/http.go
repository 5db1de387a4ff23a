package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/internal/auth"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/httpapi"
)

// Mounter is where the routes go: the API's handler, so that the rest
// still gets the API's JSON 404 and 405 answers.
type Mounter interface {
	Handle(pattern string, h http.Handler)
}

// Mount registers the status side's endpoints on m.
func (s *Service) Mount(m Mounter) {
	m.Handle("POST /v1/reports", http.HandlerFunc(s.postReport))
	m.Handle("GET /v1/status", http.HandlerFunc(s.getStatus))
	m.Handle("GET /status", http.HandlerFunc(s.page))
	m.Handle("GET /status/events", http.HandlerFunc(s.events))
	m.Handle("GET /status/feed.atom", http.HandlerFunc(s.feed))
	m.Handle("GET /status/assets/{file}", assets())
	m.Handle("GET /v1/admin/incidents", s.admin(s.listIncidents))
	m.Handle("POST /v1/admin/incidents", s.admin(s.openIncident))
	m.Handle("POST /v1/admin/incidents/{id}/updates", s.admin(s.postUpdate))
	m.Handle("POST /v1/admin/incidents/{id}/resolve", s.admin(s.postResolve))
	m.Handle("GET /v1/admin/reports", s.admin(s.listNotes))
}

// MaxNoteBytes bounds a report's note.
const MaxNoteBytes = 500

// maxReportBody bounds a report's body: the fields, a note of
// MaxNoteBytes, escaping.
const maxReportBody = 4 << 10

type reportRequest struct {
	App     string `json:"app"`
	Problem string `json:"problem"`
	Note    string `json:"note"`
}

type reportAnswer struct {
	App     string `json:"app"`
	Problem string `json:"problem"`
	// Counted is false when the reporter's report of this app within the
	// last 15 minutes counted already.
	Counted bool `json:"counted"`
}

// rateLimited is a 429 with its Retry-After.
type rateLimited struct {
	err   *chat.Error
	after time.Duration
}

func (e rateLimited) Error() string { return e.err.Error() }
func (e rateLimited) Unwrap() error { return e.err }

func (s *Service) postReport(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		addr, ok := s.clientAddr(r)
		if !ok {
			return chat.Errorf(chat.InvalidArgument, "the client address %q is not an IP address", r.RemoteAddr)
		}
		now := s.now().UTC()
		// Limit before anything else: a client over its limit costs no
		// decoding, no token check and no store call.
		if ok, after := s.allow(now, addr); !ok {
			return rateLimited{chat.Errorf(chat.RateLimited, "too many problem reports from your address; try again later"), after}
		}
		var req reportRequest
		if err := decode(w, r, maxReportBody, &req); err != nil {
			return err
		}
		if problemIndex(req.Problem) < 0 {
			return chat.Errorf(chat.InvalidArgument, "problem must be one of %s", strings.Join(Problems, ", "))
		}
		if len(req.Note) > MaxNoteBytes {
			return chat.Errorf(chat.InvalidArgument, "note is %d bytes; at most %d are allowed", len(req.Note), MaxNoteBytes)
		}
		if chat.ValidAppID(req.App) != nil || !s.knownApp(r.Context(), req.App) {
			return chat.Errorf(chat.NotFound, "app %q not found", req.App)
		}
		reporter := "addr:" + clientKey(addr).String()
		if tok := bearer(r); tok != "" {
			u, err := s.backend.Authenticate(r.Context(), tok)
			switch code := chat.ErrorCode(err); {
			case err == nil:
				if u.App() != req.App {
					return chat.Errorf(chat.PermissionDenied, "a token of %s cannot report problems with %s; report without a token", u.App(), req.App)
				}
				reporter = "user:" + string(u)
			case code == chat.Unavailable || code == chat.Internal:
				// The token cannot be checked while the message store is
				// down, which is when reports matter most: count the
				// report by its address instead.
			default:
				return err
			}
		}
		counted := s.report(now, req.App, reporter, req.Problem, req.Note)
		writeJSON(w, http.StatusAccepted, reportAnswer{App: req.App, Problem: req.Problem, Counted: counted})
		return nil
	}()
	if err != nil {
		writeError(w, err)
	}
}

// clientAddr is the connection's address, or, when that is a trusted
// proxy, the last address in X-Forwarded-For that is not one.
func (s *Service) clientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	a := ap.Addr().Unmap()
	if !s.trusted(a) {
		return a, true
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = h.Unmap()
		if !s.trusted(a) {
			break
		}
	}
	return a, true
}

func (s *Service) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (s *Service) getStatus(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, s.Snapshot(r.Context()))
}

type incidentsBody struct {
	Incidents []Incident `json:"incidents"`
}

type incidentBody struct {
	Incident Incident `json:"incident"`
}

func (s *Service) listIncidents(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, incidentsBody{s.Incidents()})
	return nil
}

func (s *Service) openIncident(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		App     string `json:"app"`
		Title   string `json:"title"`
		Impact  string `json:"impact"`
		Message string `json:"message"`
	}
	if err := decode(w, r, 64<<10, &req); err != nil {
		return err
	}
	in, err := s.OpenIncident(req.App, req.Title, req.Impact, req.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, incidentBody{in})
	return nil
}

func (s *Service) postUpdate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Message string `json:"message"`
	}
	if err := decode(w, r, 64<<10, &req); err != nil {
		return err
	}
	in, err := s.AddUpdate(r.PathValue("id"), req.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, incidentBody{in})
	return nil
}

func (s *Service) postResolve(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Message string `json:"message"`
	}
	// The body is optional.
	if r.ContentLength != 0 {
		if err := decode(w, r, 64<<10, &req); err != nil && !errors.Is(err, errEmptyBody) {
			return err
		}
	}
	in, err := s.Resolve(r.PathValue("id"), req.Message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, incidentBody{in})
	return nil
}

func (s *Service) listNotes(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, struct {
		Apps []AppNotes `json:"apps"`
	}{s.Notes()})
	return nil
}

// admin runs fn for callers that present the admin token.
func (s *Service) admin(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.AdminOK(bearer(r), s.cfg.AdminToken) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
			writeError(w, chat.Errorf(chat.Unauthenticated, "this call needs the admin token: send Authorization: Bearer <admin token>"))
			return
		}
		if err := fn(w, r); err != nil {
			writeError(w, err)
		}
	})
}

func bearer(r *http.Request) string {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(v[7:])
}

var errEmptyBody = chat.Errorf(chat.InvalidArgument, "the request body is empty; send a JSON object")

// decode reads one JSON object of at most limit bytes strictly into v, as
// the rest of the API does: unknown fields, trailing data and invalid UTF-8
// are refused.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return chat.Errorf(chat.PayloadTooLarge, "the request body is over %d bytes", tooBig.Limit)
		}
		return chat.Errorf(chat.InvalidArgument, "the request body could not be read")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return errEmptyBody
	}
	if !utf8.Valid(b) {
		return chat.Errorf(chat.InvalidArgument, "the request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) && typ.Field != "" {
			return chat.Errorf(chat.InvalidArgument, "field %q has the wrong type", typ.Field)
		}
		return chat.Errorf(chat.InvalidArgument, "the request body is not the JSON object this call takes: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, err := dec.Token(); err != io.EOF {
		return chat.Errorf(chat.InvalidArgument, "the request body has data after the JSON object; send exactly one object")
	}
	return nil
}

// writeError answers err in the API's error shape; an error that is not a
// *chat.Error is a bug here and answers a generic internal error.
func writeError(w http.ResponseWriter, err error) {
	var ce *chat.Error
	if !errors.As(err, &ce) {
		if errors.Is(err, context.Canceled) {
			ce = &chat.Error{Code: chat.Unavailable, Message: "the request was cancelled"}
		} else {
			ce = &chat.Error{Code: chat.Internal, Message: "internal error"}
		}
	}
	status := httpapi.Status(ce.Code)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		after := time.Second
		var rl rateLimited
		if errors.As(err, &rl) && rl.after > after {
			after = rl.after
		}
		w.Header().Set("Retry-After", strconv.FormatInt(int64((after+time.Second-1)/time.Second), 10))
	}
	writeJSON(w, status, struct {
		Error *chat.Error `json:"error"`
	}{ce})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b.Reset()
		b.WriteString(`{"error":{"code":"internal","message":"the answer could not be encoded"}}` + "\n")
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
