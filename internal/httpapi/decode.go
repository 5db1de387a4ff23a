package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/wirejson"
)

// DefaultMaxRequestBytes bounds every request body unless Config says
// otherwise.
const DefaultMaxRequestBytes = 64 << 10

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuf(b *bytes.Buffer) {
	if b.Cap() > 2*DefaultMaxRequestBytes {
		return // do not keep the odd huge buffer alive
	}
	b.Reset()
	bufPool.Put(b)
}

// decodeBody reads the request body (at most h.maxBody bytes) and decodes
// it strictly into v, a pointer to a struct: the body must be one JSON
// object in valid UTF-8, with only the struct's fields, values of the right
// types, and nothing after it. Each failure is an invalid_argument (or
// payload_too_large) error naming what is wrong.
func (h *Handler) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	buf := getBuf()
	defer putBuf(buf)
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return chat.Errorf(chat.PayloadTooLarge, "the request body is over %d bytes", tooBig.Limit)
		}
		return invalid("the request body could not be read: %v", err)
	}
	b := buf.Bytes()
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 {
		return invalid("the request body is empty; send a JSON object")
	}
	// encoding/json silently turns invalid UTF-8 into U+FFFD; refuse it
	// instead so that what is stored is what the client meant.
	if !utf8.Valid(b) {
		return invalid("the request body is not valid UTF-8")
	}
	if trimmed[0] != '{' {
		return invalid("the request body must be a JSON object")
	}
	if f, ok := v.(wireDecoder); ok {
		// A copy, so that the decoded strings may share its memory
		// once the buffer goes back to the pool.
		if s := string(b); wirejson.Valid(s) && f.decodeWire(s) {
			return nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("the request body has data after the JSON object; send exactly one object")
	}
	return nil
}

// A wireDecoder decodes the valid JSON s in one scan when it holds only
// the struct's fields, each spelled as its tag and of its type; it reports
// false for anything else, which decodeBody then gives encoding/json, so
// that both accept the same bodies and every error is encoding/json's. The
// hot requests (sends) take this path.
type wireDecoder interface {
	decodeWire(s string) bool
}

// jsonError explains a decoding failure in terms of the request's fields.
func jsonError(err error, v any) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return invalid("the request body is not valid JSON: %s (at byte %d)", strings.TrimPrefix(syntax.Error(), "json: "), syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("the request body is not valid JSON: it ends before the object is complete")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid("the request body must be a JSON object")
		}
		return invalid("field %q must be %s, not %s", typ.Field, jsonKind(typ.Type), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json reports unknown fields only in its message text.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return invalid("unknown field %s; this call takes %s", name, strings.Join(fieldNames(v), ", "))
	}
	return invalid("the request body is not valid JSON: %v", err)
}

// jsonKind names, with its article, the JSON type that decodes into t.
func jsonKind(t reflect.Type) string {
	n := jsonNoun(t)
	if strings.IndexByte("aeiou", n[0]) >= 0 {
		return "an " + n
	}
	return "a " + n
}

func jsonNoun(t reflect.Type) string {
	if t == reflect.TypeFor[json.RawMessage]() {
		return "JSON value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "array of " + jsonNoun(t.Elem()) + "s"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return jsonNoun(t.Elem())
	}
	return t.String()
}

// fieldNames lists the JSON names of the fields of the struct v points to.
func fieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, strconv.Quote(name))
	}
	return names
}

// intParam reads an optional integer query parameter. Absent or empty
// gives 0; anything else must be an integer from lo to hi.
func intParam(q url.Values, name string, lo, hi int64) (int64, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, invalid("query parameter %s must be an integer from %d to %d", name, lo, hi)
	}
	return n, nil
}

// writeJSON answers v with status. Encoding into a buffer first lets the
// answer carry Content-Length and lets an encoding failure still become a
// clean 500.
func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := getBuf()
	defer putBuf(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a bug (an unencodable type) gets here.
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internal","message":"the answer could not be encoded"}}` + "\n")
		status = http.StatusInternalServerError
	}
	writeRaw(w, status, buf.Bytes())
}

// writeRaw answers with the JSON b.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	hd := w.Header()
	hd["Content-Type"] = jsonContentType
	hd["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
}

var jsonContentType = []string{"application/json"}
