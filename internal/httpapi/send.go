package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
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

// batchEntryOverhead is the room one batch entry may take besides its
// base64 payload: its id, content type and JSON punctuation.
const batchEntryOverhead = 4 << 10

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
		if err := checkJSON("request body", data); err != nil {
			a.writeError(w, r, err)
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

// sendBatch serves POST /api/queues/{q}/messages/batch. Each entry gets its
// own result; the valid entries are stored in one durable batch even when
// others are invalid.
func (a *API) sendBatch(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("q")
	cfg, err := a.engine.Queue(r.Context(), name)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.checkRegions(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	maxBatch := a.engine.Options().MaxBatch
	var req client.BatchSendRequest
	if err := decodeJSON(w, r, a.batchBodyLimit(a.queueLimit(&cfg), maxBatch), &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	if len(req.Messages) == 0 {
		a.writeError(w, r, invalid("messages", "", "send at least one message"))
		return
	}
	if len(req.Messages) > maxBatch {
		a.writeError(w, r, invalid("messages", strconv.Itoa(len(req.Messages)), "send at most %d messages in one batch", maxBatch))
		return
	}

	results := make([]client.BatchSendResult, len(req.Messages))
	msgs := make([]queue.SendRequest, 0, len(req.Messages))
	indexes := make([]int, 0, len(req.Messages))
	for i := range req.Messages {
		e := &req.Messages[i]
		results[i].ID = e.ID
		m, err := batchMessage(e)
		if err == nil {
			err = a.engine.ValidateSend(r.Context(), name, &m)
		}
		if err != nil {
			status, ok := entryStatus(err)
			if !ok {
				a.writeError(w, r, err)
				return
			}
			results[i].Status = status
			results[i].Message = err.Error()
			continue
		}
		msgs = append(msgs, m)
		indexes = append(indexes, i)
	}

	resp := client.BatchSendResponse{Count: len(msgs), Results: results}
	if len(msgs) > 0 {
		sent, err := a.regions.Send(r.Context(), name, r.URL.Query().Get("regions"), msgs)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		for j, i := range indexes {
			s := wireSend(&sent.Messages[j])
			results[i].Status = http.StatusOK
			results[i].MessageID = s.MessageID
			results[i].QueueMessageID = s.QueueMessageID
			results[i].DeliverDate = s.DeliverDate
			results[i].ExpirationDate = s.ExpirationDate
		}
		resp.Regions, resp.PendingRegions = a.destinations(sent.Destinations)
	}
	writeJSON(w, http.StatusOK, resp)
}

// batchBodyLimit bounds a batch send's body: maxBatch base64 payloads of
// the queue's limit, each with room for its other fields, and never more
// than Config.MaxBodyBytes.
func (a *API) batchBodyLimit(queueLimit int64, maxBatch int) int64 {
	perEntry := queueLimit/3*4 + 4 + batchEntryOverhead
	if perEntry <= 0 || perEntry > math.MaxInt64/int64(maxBatch+1) {
		return a.cfg.MaxBodyBytes
	}
	return min(a.cfg.MaxBodyBytes, perEntry*int64(maxBatch+1))
}

// entryStatus returns the status of a batch entry that failed on its own.
// Other errors fail the whole request.
func entryStatus(err error) (int, bool) {
	var (
		invalidE *queue.InvalidError
		tooLarge *queue.TooLargeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, true
	case errors.As(err, &invalidE):
		return http.StatusBadRequest, true
	}
	return 0, false
}

// batchMessage decodes one batch entry into a send request.
func batchMessage(e *client.BatchSendEntry) (queue.SendRequest, error) {
	var m queue.SendRequest
	hasData, hasBase64 := len(e.Data) > 0, e.Base64 != ""
	switch {
	case hasData && hasBase64:
		return m, invalid("message", e.ID, "set either data or base64, not both")
	case !hasData && !hasBase64:
		return m, invalid("message", e.ID, "set data to a JSON value, or base64 to the encoded payload with its contentType")
	}

	switch {
	case hasData && e.ContentType == "":
		m.ContentType = mediaJSON
	case hasData:
		mt, ok := parseMediaType(e.ContentType)
		if !ok || !isJSONType(mt) {
			return m, invalid("contentType", e.ContentType, "data holds a JSON value, so use a JSON media type or leave contentType out; send other payloads in base64")
		}
		m.ContentType = e.ContentType
	case e.ContentType == "":
		m.ContentType = mediaBinary
	default:
		if _, ok := parseMediaType(e.ContentType); !ok {
			return m, invalid("contentType", e.ContentType, "use a media type such as image/jpeg or application/json")
		}
		m.ContentType = e.ContentType
	}

	if hasData {
		// The decoder has checked the value's syntax but not its encoding.
		if !utf8.Valid(e.Data) {
			return m, invalid("data", "", "must be UTF-8")
		}
		m.Data = bytes.Clone(e.Data)
	} else {
		data, err := base64.StdEncoding.DecodeString(e.Base64)
		if err != nil {
			return m, invalid("base64", "", "is not valid standard base64 (RFC 4648 with padding): %v", err)
		}
		if mt, _ := parseMediaType(m.ContentType); isJSONType(mt) {
			if err := checkJSON("base64", data); err != nil {
				return m, err
			}
		}
		m.Data = data
	}

	if e.DelayMs != nil {
		d, err := toDuration("delayMs", *e.DelayMs, time.Millisecond)
		if err != nil {
			return m, err
		}
		m.Delay = &d
	}
	if e.ExpirationSec < 0 {
		return m, invalid("expirationSec", strconv.FormatInt(e.ExpirationSec, 10), "use a positive number of seconds, or leave it out for the queue's retention")
	}
	expiration, err := toDuration("expirationSec", e.ExpirationSec, time.Second)
	if err != nil {
		return m, err
	}
	m.Expiration = expiration
	return m, nil
}

// checkJSON rejects a payload stored with a JSON content type that is not
// one valid UTF-8 JSON value, since receivers get it inline as JSON text.
func checkJSON(field string, data []byte) error {
	if !utf8.Valid(data) {
		return invalid(field, "", "is declared as JSON but is not UTF-8")
	}
	if !json.Valid(data) {
		return invalid(field, "", "is declared as JSON but is not one valid JSON value; send it as application/octet-stream instead")
	}
	return nil
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
