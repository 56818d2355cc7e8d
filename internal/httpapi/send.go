package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/queue"
	"github.com/qakka/qakka/internal/region"
)

// Media types the send endpoints treat specially.
const (
	mediaJSON   = "application/json"
	mediaBinary = "application/octet-stream"
)

// send serves POST /api/queues/{q}/messages. The body is the payload. The
// reply comes once the message is durably stored.
func (a *API) send(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("q")
	cfg, err := a.engine.Queue(r.Context(), name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	contentType, isJSON, err := sendContentType(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	m, err := a.sendParams(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.checkRegions(r); err != nil {
		a.writeError(w, r, err)
		return
	}

	limit := a.queueLimit(&cfg)
	if r.ContentLength > limit {
		a.writeError(w, r, &queue.TooLargeError{Size: r.ContentLength, Limit: limit})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		a.writeError(w, r, &httpError{status: http.StatusRequestEntityTooLarge, msg: "payload is over the queue's limit of " + strconv.FormatInt(limit, 10) + " bytes"})
		return
	}
	if err != nil {
		a.writeError(w, r, invalid("request body", "", "could not be read: %v", err))
		return
	}
	if isJSON {
		if problem := jsonProblem(data); problem != "" {
			a.writeError(w, r, invalidJSONBody(r, problem))
			return
		}
	}
	m.ContentType = contentType
	m.Data = data

	res, err := a.regions.Send(r.Context(), name, r.URL.Query().Get("regions"), []queue.SendRequest{m})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	sent := wireSend(&res.Messages[0])
	sent.Regions, sent.PendingRegions = a.destinations(res.Destinations)
	writeJSON(w, http.StatusOK, client.SendResponse{Count: 1, SendResult: sent})
}

// checkRegions rejects an invalid regions parameter before the body is
// read. The router resolves it again when it sends.
func (a *API) checkRegions(r *http.Request) error {
	spec := r.URL.Query().Get("regions")
	if spec == "" {
		return nil
	}
	_, err := a.regions.Resolve("regions", spec)
	return err
}

// destinations returns the regions of a send and those of them that store
// it later, for the reply.
func (a *API) destinations(d region.Destinations) (regions, pending []string) {
	return d.Names(a.regions.Local()), d.Remotes
}

// sendContentType returns the content type to store for a single send's
// body and whether it is JSON. A JSON body is stored as application/json;
// an application/octet-stream body takes the type named by ?contentType=,
// if any; any other body keeps its own Content-Type.
func sendContentType(r *http.Request) (contentType string, isJSON bool, err error) {
	header := r.Header.Get("Content-Type")
	param := r.URL.Query().Get("contentType")
	if header == "" {
		return "", false, &httpError{status: http.StatusUnsupportedMediaType, msg: "missing Content-Type: send application/json for a JSON payload, " +
			"or application/octet-stream with ?contentType= naming the payload's type, or the payload's own media type"}
	}
	mt, ok := parseMediaType(header)
	if !ok {
		return "", false, &httpError{status: http.StatusUnsupportedMediaType, msg: "invalid Content-Type " + strconv.Quote(header) +
			": use a media type such as application/json or application/octet-stream"}
	}

	switch {
	case mt == mediaJSON:
		if param != "" {
			return "", false, invalid("contentType", param, "applies only to application/octet-stream bodies; a JSON body is stored as application/json")
		}
		return mediaJSON, true, nil
	case mt == mediaBinary && param != "":
		pmt, ok := parseMediaType(param)
		if !ok {
			return "", false, invalid("contentType", param, "use a media type such as image/jpeg or application/json")
		}
		return param, isJSONType(pmt), nil
	case mt == mediaBinary:
		return mediaBinary, false, nil
	case param != "":
		return "", false, invalid("contentType", param, "applies only to application/octet-stream bodies; the Content-Type %s is stored as sent", strconv.Quote(header))
	}
	return header, isJSONType(mt), nil
}

// sendParams parses the delay and expiration query parameters of a single
// send. The region router checks the regions parameter.
func (a *API) sendParams(r *http.Request) (queue.SendRequest, error) {
	var m queue.SendRequest
	delay, err := durationParam(r, "delay", "NONE", time.Millisecond, "use a whole number of milliseconds, or NONE for the queue's default delay")
	if err != nil {
		return m, err
	}
	expiration, err := durationParam(r, "expiration", "NEVER", time.Second, "use a whole number of seconds, or NEVER for the queue's retention")
	if err != nil {
		return m, err
	}
	m.Delay = delay
	if expiration != nil {
		if *expiration == 0 {
			return m, invalid("expiration", "0", "use a positive number of seconds, or NEVER for the queue's retention")
		}
		m.Expiration = *expiration
	}
	return m, nil
}

// jsonProblem describes why a payload stored with a JSON content type
// cannot be stored, or returns "" when it is one valid UTF-8 JSON value.
// Receivers get such a payload inline as JSON text, so it must be one.
func jsonProblem(data []byte) string {
	switch {
	case !utf8.Valid(data):
		return "is not UTF-8"
	case json.Valid(data):
		return ""
	case len(bytes.TrimSpace(data)) == 0:
		return "is empty"
	}
	// json.Valid does not say where the syntax breaks, but Unmarshal does.
	var syntax *json.SyntaxError
	if err := json.Unmarshal(data, new(json.RawMessage)); errors.As(err, &syntax) {
		return fmt.Sprintf("is not valid JSON at byte %d (%v)", syntax.Offset, syntax)
	}
	return "is not valid JSON"
}

// invalidJSONBody explains why a single send's body was rejected as JSON:
// problem is what jsonProblem returned. The message names what declared
// the body as JSON, the ?contentType= parameter or the Content-Type
// header, and how to send the payload instead.
func invalidJSONBody(r *http.Request, problem string) error {
	if param := r.URL.Query().Get("contentType"); param != "" {
		return invalid("request body", "", "the payload %s, but contentType=%s declares it as JSON: "+
			"fix the JSON, or leave out the JSON contentType to store the payload as application/octet-stream", problem, param)
	}
	return invalid("request body", "", "the payload %s, but Content-Type %s declares it as JSON: "+
		"fix the JSON, or send the payload with a Content-Type that is not JSON, such as text/plain or application/octet-stream", problem, r.Header.Get("Content-Type"))
}

// parseMediaType returns the lower-case type/subtype of a Content-Type
// value, ignoring its parameters.
func parseMediaType(s string) (string, bool) {
	// Parameters are ignored, so a malformed one does not reject the type.
	mt, _, err := mime.ParseMediaType(s)
	if (err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter)) || !strings.Contains(mt, "/") {
		return "", false
	}
	return mt, true
}

// isJSONType reports whether a media type, as parseMediaType returns it,
// is JSON: application/json, any */json, or any structured +json type.
func isJSONType(mt string) bool {
	_, sub, _ := strings.Cut(mt, "/")
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// wireSend converts a send result to its wire form. A message that has no
// copy in the local region has no queueMessageId.
func wireSend(s *queue.SendResult) client.SendResult {
	out := client.SendResult{
		MessageID:      s.MessageID.String(),
		DeliverDate:    millis(s.DeliverAt),
		ExpirationDate: millis(s.ExpiresAt),
	}
	if s.QueueMessageID != uuid.Nil {
		out.QueueMessageID = s.QueueMessageID.String()
	}
	return out
}
