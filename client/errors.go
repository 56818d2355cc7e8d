package client

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors that a *Error matches with errors.Is, by status code.
// Check them as errors.Is(err, client.ErrNotFound), and use errors.As with a
// *Error to read the server's message and the exact status.
var (
	// ErrBadRequest matches a 400 response: an invalid value, a missing
	// confirmation, or an ack of a message that is no longer inflight.
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized matches a 401 response: missing or wrong credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound matches a 404 response: an unknown queue, message or route.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge matches a 413 response: a payload or batch over the limit.
	ErrTooLarge = errors.New("request too large")
	// ErrUnavailable matches a 503 response: the server cannot serve the
	// request now (storage unavailable, shutting down). Retry later.
	ErrUnavailable = errors.New("service unavailable")
)

// Error is a response from the server with a status code outside 2xx.
type Error struct {
	// StatusCode is the HTTP status code, such as 404.
	StatusCode int
	// Message is the server's explanation from the JSON error body. When
	// the body carries none, as from a proxy or a server that is not Qakka,
	// it is the status text in lower case, followed by the start of the
	// body's text if there is any.
	Message string
	// RetryAfter is the wait the server asked for in a Retry-After header,
	// or zero.
	RetryAfter time.Duration
}

// Error returns the server's message with the status code.
func (e *Error) Error() string {
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode)
}

// Is reports whether target is the sentinel for e's status code, so that
// errors.Is(err, ErrNotFound) holds for any 404 response.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge
	case ErrUnavailable:
		return e.StatusCode == http.StatusServiceUnavailable
	}
	return false
}

// StatusCode returns the HTTP status code of the *Error in err's chain, or 0
// when err did not come from a server response (a connection failure, a
// cancelled context, a request that was never sent).
func StatusCode(err error) int {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode
	}
	return 0
}

// maxErrorText bounds, in characters, the body text that an error message
// quotes from a response that is not Qakka's JSON error.
const maxErrorText = 200

// errorBodyText returns the text of an error response's body in one short
// line: the title of an HTML page, or else its text without tags, with
// whitespace and control characters collapsed to single spaces. It returns
// "" for a body that is empty or not UTF-8.
func errorBodyText(body []byte, contentType string) string {
	if len(body) == 0 || !utf8.Valid(body) {
		return ""
	}
	text := string(body)
	mediaType, _, _ := mime.ParseMediaType(contentType)
	if mediaType == "text/html" || strings.HasPrefix(strings.TrimSpace(text), "<") {
		text = htmlText(text)
	}

	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}), " ")
	if utf8.RuneCountInString(text) > maxErrorText {
		text = strings.TrimSpace(string([]rune(text)[:maxErrorText])) + "..."
	}
	return text
}

// htmlText returns the title of an HTML page, or its text with the tags
// removed when it has no title. It reads HTML loosely: an error page needs
// no more than that.
func htmlText(page string) string {
	// Only ASCII letters are lowered, so that offsets in lower are offsets
	// in page too.
	lower := []byte(page)
	for i, c := range lower {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	if start := bytes.Index(lower, []byte("<title>")); start >= 0 {
		start += len("<title>")
		if end := bytes.Index(lower[start:], []byte("</title>")); end > 0 {
			return html.UnescapeString(page[start : start+end])
		}
	}

	var b strings.Builder
	inTag := false
	for _, r := range page {
		switch {
		case r == '<':
			inTag = true
			b.WriteByte(' ')
		case r == '>' && inTag:
			inTag = false
		case !inTag:
			b.WriteRune(r)
		}
	}
	return html.UnescapeString(b.String())
}
