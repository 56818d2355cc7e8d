package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/qakka/qakka/client"
	"github.com/qakka/qakka/internal/queue"
)

// maxAckBody bounds the body of a batch ack. An id takes 39 bytes in it.
const maxAckBody = 1 << 20

// receive serves GET /api/queues/{q}/messages?count=N&wait=MS&visibility=S.
func (a *API) receive(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("q")
	count, err := intParam(r, "count", 1, "use a whole number of messages")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if maxCount := a.engine.Options().MaxReceiveCount; count < 1 || count > int64(maxCount) {
		a.writeError(w, r, invalid("count", strconv.FormatInt(count, 10), "must be between 1 and %d", maxCount))
		return
	}
	wait, err := durationParam(r, "wait", "", time.Millisecond, "use a whole number of milliseconds")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	visibility, err := durationParam(r, "visibility", "", time.Second, "use a whole number of seconds")
	if err != nil {
		a.writeError(w, r, err)
		return
	}

	ds, err := a.engine.Receive(r.Context(), name, queue.ReceiveRequest{Count: int(count), Wait: wait, Visibility: visibility})
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	msgs := make([]client.QueueMessage, 0, len(ds))
	for i := range ds {
		m, err := a.wireMessage(r, &ds[i])
		if err != nil {
			// NB: the messages are inflight now and come back after their
			// visibility timeout.
			a.writeError(w, r, err)
			return
		}
		msgs = append(msgs, m)
	}
	writeJSON(w, http.StatusOK, client.ReceiveResponse{Count: len(msgs), QueueMessages: msgs})
}

// wireMessage converts a delivery to its wire form, with a JSON payload
// inline in Data and a link to any other payload in Href.
func (a *API) wireMessage(r *http.Request, d *queue.Delivery) (client.QueueMessage, error) {
	m := client.QueueMessage{
		QueueMessageID:  d.QueueMessageID.String(),
		MessageID:       d.MessageID.String(),
		QueueName:       d.Queue,
		ReceivingRegion: d.Region,
		CreateDate:      millis(d.CreatedAt),
		SentDate:        millis(d.SentAt),
		VisibleUntil:    millis(d.Deadline),
		ExpirationDate:  millis(d.ExpiresAt),
		ReceiveCount:    d.ReceiveCount,
		ContentType:     d.ContentType,
		DataReceived:    true,
		SourceQueue:     d.SourceQueue,
	}
	href := "/api/queues/" + url.PathEscape(d.Queue) + "/data/" + m.QueueMessageID
	if mt, ok := parseMediaType(d.ContentType); !ok || !isJSONType(mt) {
		m.Href = href
		return m, nil
	}

	p, err := a.engine.Payload(r.Context(), d.Queue, d.MessageID)
	if errors.Is(err, queue.ErrMessageNotFound) {
		// The engine deletes a payload only with its last entry, so this is
		// a broken invariant. The link will return 404.
		a.log.LogAttrs(r.Context(), slog.LevelWarn, "payload of a delivered message is missing",
			slog.String("queue", d.Queue),
			slog.String("msg_id", m.MessageID))
		m.Href = href
		return m, nil
	}
	if err != nil {
		return client.QueueMessage{}, err
	}
	m.Data = string(p.Data)
	return m, nil
}

// getData serves GET /api/queues/{q}/data/{id}: the payload of an inflight
// or available message, with its stored Content-Type.
func (a *API) getData(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "queueMessageId")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := a.engine.PayloadOf(r.Context(), r.PathValue("q"), id)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	contentType := p.ContentType
	if contentType == "" {
		contentType = mediaBinary
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(p.Data)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(p.Data)
}

// ack serves DELETE /api/queues/{q}/messages/{id}.
func (a *API) ack(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "queueMessageId")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if err := a.engine.Ack(r.Context(), r.PathValue("q"), id); err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.Response{})
}

// ackBatch serves POST /api/queues/{q}/messages/ack. Each id gets its own
// result; the valid ones are acked in one durable batch.
func (a *API) ackBatch(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("q")
	var req client.BatchAckRequest
	if err := decodeJSON(w, r, min(maxAckBody, a.cfg.MaxBodyBytes), &req); err != nil {
		a.writeError(w, r, err)
		return
	}
	maxBatch := a.engine.Options().MaxBatch
	if len(req.QueueMessageIDs) == 0 {
		a.writeError(w, r, invalid("queueMessageIds", "", "give at least one id"))
		return
	}
	if len(req.QueueMessageIDs) > maxBatch {
		a.writeError(w, r, invalid("queueMessageIds", strconv.Itoa(len(req.QueueMessageIDs)), "ack at most %d messages in one batch", maxBatch))
		return
	}

	results := make([]client.BatchAckResult, len(req.QueueMessageIDs))
	ids := make([]uuid.UUID, 0, len(req.QueueMessageIDs))
	indexes := make([]int, 0, len(req.QueueMessageIDs))
	for i, s := range req.QueueMessageIDs {
		results[i].QueueMessageID = s
		id, err := uuid.Parse(s)
		if err != nil || len(s) != 36 {
			results[i].Status = http.StatusBadRequest
			results[i].Message = invalid("queueMessageId", s, "use the UUID from the message").Error()
			continue
		}
		ids = append(ids, id)
		indexes = append(indexes, i)
	}

	acked := 0
	if len(ids) == 0 {
		// Nothing reaches the engine, so check the queue here: an unknown
		// queue is a 404 whatever the ids.
		if _, err := a.engine.Queue(r.Context(), name); err != nil {
			a.writeError(w, r, err)
			return
		}
	} else {
		errs, err := a.engine.AckBatch(r.Context(), name, ids)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		for j, i := range indexes {
			switch {
			case errs[j] == nil:
				results[i].Status = http.StatusOK
				acked++
			case errors.Is(errs[j], queue.ErrNotInflight):
				results[i].Status = http.StatusBadRequest
				results[i].Message = notInflightMessage
			default:
				a.writeError(w, r, errs[j])
				return
			}
		}
	}
	writeJSON(w, http.StatusOK, client.BatchAckResponse{Count: acked, Results: results})
}

// nack serves PUT /api/queues/{q}/messages/{id}?delay=MS: the message goes
// back to the queue under a new id, or to the dead-letter queue.
func (a *API) nack(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "queueMessageId")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	delay, err := durationParam(r, "delay", "NONE", time.Millisecond, "use a whole number of milliseconds, or NONE")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var d time.Duration
	if delay != nil {
		d = *delay
	}

	res, err := a.engine.Nack(r.Context(), r.PathValue("q"), id, d)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := client.NackResult{DeadLettered: res.DeadLettered}
	if res.QueueMessageID != uuid.Nil {
		out.QueueMessageID = res.QueueMessageID.String()
		out.DeliverDate = millis(res.DeliverAt)
	}
	writeJSON(w, http.StatusOK, out)
}

// extend serves POST /api/queues/{q}/messages/{id}/extend?visibility=S: the
// message's deadline becomes visibility seconds from now, by default the
// queue's visibility timeout.
func (a *API) extend(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("q")
	id, err := pathID(r, "id", "queueMessageId")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	visibility, err := durationParam(r, "visibility", "", time.Second, "use a whole number of seconds")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if visibility == nil {
		cfg, err := a.engine.Queue(r.Context(), name)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		d := cfg.VisibilityTimeout
		if d == 0 {
			d = a.engine.Options().VisibilityTimeout
		}
		visibility = &d
	}

	deadline, err := a.engine.Extend(r.Context(), name, id, *visibility)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.ExtendResult{QueueMessageID: id.String(), VisibleUntil: millis(deadline)})
}

// purge serves DELETE /api/queues/{q}/messages?confirm=true.
func (a *API) purge(w http.ResponseWriter, r *http.Request) {
	if !confirmed(r) {
		a.writeError(w, r, invalid("confirm", r.URL.Query().Get("confirm"), "must be true to remove every message of the queue"))
		return
	}
	n, err := a.engine.Purge(r.Context(), r.PathValue("q"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, client.PurgeResult{Count: n})
}
