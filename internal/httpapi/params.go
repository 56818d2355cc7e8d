package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// intParam parses the query parameter name as a whole number. It returns
// def when the parameter is absent or empty.
func intParam(r *http.Request, name string, def int64, hint string) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, invalid(name, s, "%s", hint)
	}
	return v, nil
}

// durationParam parses the query parameter name as a whole number of unit.
// It returns nil when the parameter is absent, empty or equal to keyword
// (any case; an empty keyword matches nothing).
func durationParam(r *http.Request, name, keyword string, unit time.Duration, hint string) (*time.Duration, error) {
	s := r.URL.Query().Get(name)
	if s == "" || (keyword != "" && strings.EqualFold(s, keyword)) {
		return nil, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, invalid(name, s, "%s", hint)
	}
	d, err := toDuration(name, v, unit)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// toDuration converts v units to a duration, rejecting values that would
// overflow. Negative values pass through for the engine to reject with its
// bounds.
func toDuration(field string, v int64, unit time.Duration) (time.Duration, error) {
	if v > math.MaxInt64/int64(unit) || v < math.MinInt64/int64(unit) {
		return 0, invalid(field, strconv.FormatInt(v, 10), "is out of range")
	}
	return time.Duration(v) * unit, nil
}

// confirmed reports whether the request carries confirm=true (any case).
func confirmed(r *http.Request) bool {
	return strings.EqualFold(r.URL.Query().Get("confirm"), "true")
}

// pathID parses the path value name as a UUID.
func pathID(r *http.Request, name, field string) (uuid.UUID, error) {
	s := r.PathValue(name)
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.Nil, invalid(field, s, "use the UUID from the message, like 0192f1d2-7c3e-7a41-9b0e-5d2c8e4f6a10")
	}
	return id, nil
}

// decodeJSON reads one JSON value from the body into v, at most limit
// bytes. Unknown fields and trailing data are errors.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength > limit {
		return &http.MaxBytesError{Limit: limit}
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return invalid("request body", "", "send exactly one JSON value")
	}
	return nil
}

// requireJSON rejects a request body that is declared as anything but
// JSON. A body without a Content-Type is read as JSON.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	if mt, ok := parseMediaType(ct); !ok || !isJSONType(mt) {
		return &httpError{status: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("unsupported Content-Type %s: send application/json", strconv.Quote(ct))}
	}
	return nil
}

// bodyError turns a JSON decoding error into a 400 that names where the
// body is wrong, or returns a body-size error unchanged.
func bodyError(err error) error {
	var (
		maxBytes  *http.MaxBytesError
		syntax    *json.SyntaxError
		typeError *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxBytes):
		return err
	case errors.Is(err, io.EOF):
		return invalid("request body", "", "is empty: send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("request body", "", "ends in the middle of a JSON value")
	case errors.As(err, &syntax):
		return invalid("request body", "", "is not valid JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typeError) && typeError.Field == "":
		// The body itself has the wrong type, such as an array for an object.
		return invalid("request body", "", "must be a JSON %s, not %s", jsonKind(typeError.Type.Kind().String()), jsonValueName(typeError.Value))
	case errors.As(err, &typeError):
		return invalid("request body", "", "field %s must be a JSON %s, not %s", typeError.Field, jsonKind(typeError.Type.Kind().String()), jsonValueName(typeError.Value))
	}
	// The decoder reports an unknown field only in its message text.
	return invalid("request body", "", "%s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go kind in JSON terms.
func jsonKind(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"), strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "slice":
		return "array"
	case kind == "map", kind == "struct":
		return "object"
	case kind == "bool":
		return "boolean"
	}
	return kind
}

// jsonValueName names a JSON value, as json.UnmarshalTypeError.Value
// describes it, with an article: "an array", "a boolean", "the number 1.5".
func jsonValueName(value string) string {
	switch {
	case value == "array", value == "object":
		return "an " + value
	case value == "bool":
		return "a boolean"
	case strings.HasPrefix(value, "number "):
		return "the " + value
	}
	return "a " + value
}
