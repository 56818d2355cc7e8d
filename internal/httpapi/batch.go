package httpapi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/queue"
)

// batchEntryOverhead is the room one batch entry may take besides its
// base64 payload: its id, content type and JSON punctuation.
const batchEntryOverhead = 4 << 10

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
		m, err := batchMessage(i, e)
		if err == nil {
			err = entryError(i, e, a.engine.ValidateSend(r.Context(), name, &m))
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

// batchMessage decodes the batch entry at index i into a send request. Its
// errors name the entry's fields by their place in the body, such as
// messages[3].base64.
func batchMessage(i int, e *client.BatchSendEntry) (queue.SendRequest, error) {
	var m queue.SendRequest
	hasData, hasBase64 := len(e.Data) > 0, e.Base64 != ""
	switch {
	case hasData && hasBase64:
		return m, invalid(entryField(i, ""), "", "set either data or base64, not both")
	case !hasData && !hasBase64:
		return m, invalid(entryField(i, ""), "", "set data to a JSON value, or base64 to the encoded payload with its contentType")
	}

	contentType, err := entryContentType(i, e, hasData)
	if err != nil {
		return m, err
	}
	m.ContentType = contentType
	if hasData {
		// The decoder has checked the value's syntax but not its encoding.
		if !utf8.Valid(e.Data) {
			return m, invalid(entryField(i, "data"), "", "the value is not UTF-8")
		}
		m.Data = bytes.Clone(e.Data)
	} else if m.Data, err = entryBase64(i, e, contentType); err != nil {
		return m, err
	}

	if e.DelayMs != nil {
		d, err := toDuration(entryField(i, "delayMs"), *e.DelayMs, time.Millisecond)
		if err != nil {
			return m, err
		}
		m.Delay = &d
	}
	if e.ExpirationSec < 0 {
		return m, invalid(entryField(i, "expirationSec"), strconv.FormatInt(e.ExpirationSec, 10), "use a positive number of seconds, or leave it out for the queue's retention")
	}
	expiration, err := toDuration(entryField(i, "expirationSec"), e.ExpirationSec, time.Second)
	if err != nil {
		return m, err
	}
	m.Expiration = expiration
	return m, nil
}

// entryContentType returns the content type to store for the batch entry
// at index i: its own, or the default for a data or base64 payload.
func entryContentType(i int, e *client.BatchSendEntry, hasData bool) (string, error) {
	switch {
	case hasData && e.ContentType == "":
		return mediaJSON, nil
	case hasData:
		mt, ok := parseMediaType(e.ContentType)
		if !ok || !isJSONType(mt) {
			return "", invalid(entryField(i, "contentType"), e.ContentType, "data is a JSON value, so use a JSON media type or leave contentType out, or send the payload in base64")
		}
		return e.ContentType, nil
	case e.ContentType == "":
		return mediaBinary, nil
	}
	if _, ok := parseMediaType(e.ContentType); !ok {
		return "", invalid(entryField(i, "contentType"), e.ContentType, "use a media type such as image/jpeg or application/json")
	}
	return e.ContentType, nil
}

// entryBase64 decodes the base64 payload of the batch entry at index i and
// checks that it is JSON when contentType declares a JSON media type.
func entryBase64(i int, e *client.BatchSendEntry, contentType string) ([]byte, error) {
	data, err := base64.StdEncoding.DecodeString(e.Base64)
	if err != nil {
		return nil, invalid(entryField(i, "base64"), "", "the value is not standard base64 with padding (RFC 4648): %v", err)
	}
	if mt, _ := parseMediaType(contentType); isJSONType(mt) {
		if problem := jsonProblem(data); problem != "" {
			return nil, invalid(entryField(i, "base64"), "", "the decoded payload %s, but contentType %s declares it as JSON: fix the JSON, or set a contentType that is not JSON",
				problem, strconv.Quote(contentType))
		}
	}
	return data, nil
}

// entryField names a field of the batch entry at index i by its place in
// the request body, such as messages[3].delayMs, or the entry itself when
// field is empty.
func entryField(i int, field string) string {
	name := "messages[" + strconv.Itoa(i) + "]"
	if field == "" {
		return name
	}
	return name + "." + field
}

// entryError names the batch entry at index i in an error that the engine
// returned for it. The engine names a message's fields as a single send's
// query parameters do (delay, expiration), so they are renamed to the
// batch entry's fields.
func entryError(i int, e *client.BatchSendEntry, err error) error {
	var (
		invalidE *queue.InvalidError
		tooLarge *queue.TooLargeError
	)
	switch {
	case errors.As(err, &invalidE):
		field := entryField(i, invalidE.Field)
		switch {
		case invalidE.Field == "delay" && e.DelayMs == nil:
			// The entry has no delay, so the engine checked the queue's.
			field = entryField(i, "") + " delay (the queue's defaultDelayMs)"
		case invalidE.Field == "delay":
			field = entryField(i, "delayMs")
		case invalidE.Field == "expiration":
			field = entryField(i, "expirationSec")
		}
		return &queue.InvalidError{Field: field, Value: invalidE.Value, Reason: invalidE.Reason}
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%s: %w", entryField(i, ""), err)
	}
	return err
}
