// Package client is the Go client for Qakka's REST API. This file holds the
// JSON wire types, which the server encodes and the client decodes.
//
// Times on the wire are milliseconds since the Unix epoch (UTC). Ids are
// UUIDs in their canonical string form. Fields whose value is absent are
// omitted from the JSON, as in the original Qakka.
package client

import "encoding/json"

// QueueTypeMultiRegion is the queueType that every queue reports. The
// original Qakka returned it for every queue, and clients may check it.
const QueueTypeMultiRegion = "_MULTIREGION"

// Queue is a queue's configuration. It is the body of a create
// (POST /api/queues) and of a configuration update
// (PUT /api/queues/{queue}/config), and the element of Response.Queues.
//
// An update replaces the whole configuration: a field left out takes its
// default, as with a create. A zero duration or size means the server's
// default.
type Queue struct {
	// Name is 1 to 80 letters, digits, '-', '_' or '.'. On an update the
	// path names the queue, and a different name here is rejected.
	Name string `json:"name"`
	// QueueType is always QueueTypeMultiRegion on output. On input it may be
	// empty or QueueTypeMultiRegion.
	QueueType string `json:"queueType,omitempty"`
	// Regions and DefaultDestinations are stored for multi-region
	// delivery: LOCAL, ALL, REMOTE or comma-separated region names.
	Regions             string `json:"regions,omitempty"`
	DefaultDestinations string `json:"defaultDestinations,omitempty"`
	// DefaultDelayMs delays every message that gives no delay, in
	// milliseconds.
	DefaultDelayMs int64 `json:"defaultDelayMs"`
	// RetryCount is how many times a message may be received again after
	// its first receive before it moves to DeadLetterQueue. It has no
	// effect without a dead-letter queue.
	RetryCount int `json:"retryCount"`
	// HandlingTimeoutSec is the visibility timeout in seconds: how long a
	// received message stays inflight before it is delivered again.
	HandlingTimeoutSec int64 `json:"handlingTimeoutSec"`
	// DeadLetterQueue names the queue that takes messages past RetryCount.
	DeadLetterQueue string `json:"deadLetterQueue,omitempty"`
	// MaxMessageSize limits a payload, in bytes.
	MaxMessageSize int64 `json:"maxMessageSize"`
	// RetentionSec is the expiration of a message that gives none, in
	// seconds.
	RetentionSec int64 `json:"retentionSec"`
	// ReceiveWaitMs is the long-poll wait of a receive that gives none, in
	// milliseconds.
	ReceiveWaitMs int64 `json:"receiveWaitMs"`
	// Tags are free-form labels.
	Tags map[string]string `json:"tags,omitempty"`
	// CreateDate and UpdateDate are set by the server and ignored on input.
	CreateDate int64 `json:"createDate,omitzero"`
	UpdateDate int64 `json:"updateDate,omitzero"`
}

// QueueMessage is one received message, the element of
// Response.QueueMessages.
//
// A payload stored with a JSON content type (application/json, or any
// type whose subtype is json or ends in +json) comes inline in Data as a
// JSON string that holds the JSON text. Any other payload is fetched from
// Href.
type QueueMessage struct {
	// QueueMessageID identifies this delivery: ack, nack, extend and the
	// data endpoint take it. A message delivered again gets a new one.
	QueueMessageID string `json:"queueMessageId"`
	// MessageID identifies the payload and the audit trail. It never
	// changes.
	MessageID       string `json:"messageId"`
	QueueName       string `json:"queueName"`
	ReceivingRegion string `json:"receivingRegion,omitempty"`
	// CreateDate is when the message last became available.
	CreateDate int64 `json:"createDate"`
	// SentDate is when the message was first sent.
	SentDate int64 `json:"sentDate"`
	// VisibleUntil is the deadline for the ack. After it the message is
	// delivered again under a new QueueMessageID.
	VisibleUntil int64 `json:"visibleUntil"`
	// ExpirationDate is when the message is dropped if still unacked.
	ExpirationDate int64 `json:"expirationDate,omitzero"`
	// ReceiveCount counts the deliveries of the message, this one included.
	ReceiveCount int    `json:"receiveCount"`
	ContentType  string `json:"contentType"`
	// DataReceived is always true. The original Qakka sent it, and clients
	// written for it may check it.
	DataReceived bool `json:"dataReceived"`
	// Data is the JSON text of a JSON payload.
	Data string `json:"data,omitempty"`
	// Href is the path on the same server to GET any other payload from,
	// such as /api/queues/q1/data/{queueMessageId}.
	Href string `json:"href,omitempty"`
	// SourceQueue names the queue a dead-lettered message came from.
	SourceQueue string `json:"sourceQueue,omitempty"`
}

// Response is the standard envelope of the REST API. Errors come as
// {"message": "..."}; a success without a result is {}.
type Response struct {
	Message       string         `json:"message,omitempty"`
	Count         int            `json:"count,omitzero"`
	Queues        []Queue        `json:"queues,omitzero"`
	QueueMessages []QueueMessage `json:"queueMessages,omitzero"`
}

// ReceiveResponse is the body of a receive
// (GET /api/queues/{queue}/messages). It has the shape of Response, but
// count and queueMessages are always present: an empty receive is
// {"count":0,"queueMessages":[]}. Count never exceeds the requested count.
type ReceiveResponse struct {
	Count         int            `json:"count"`
	QueueMessages []QueueMessage `json:"queueMessages"`
}

// SendResult describes one stored message.
type SendResult struct {
	MessageID string `json:"messageId"`
	// QueueMessageID identifies the copy in the server's own region. It is
	// empty when the send did not name that region.
	QueueMessageID string `json:"queueMessageId,omitempty"`
	// DeliverDate is when the message becomes available: the send time,
	// or later for a delayed message.
	DeliverDate    int64 `json:"deliverDate"`
	ExpirationDate int64 `json:"expirationDate"`
	// Regions lists the regions the message goes to, the server's own
	// first. PendingRegions lists those of them that store it later,
	// through the server's durable outbox: every region but its own.
	Regions        []string `json:"regions,omitempty"`
	PendingRegions []string `json:"pendingRegions,omitempty"`
}

// SendResponse is the body of a single send
// (POST /api/queues/{queue}/messages): {"count":1, "messageId":..., ...}.
// The server replies only after the message is durably stored.
type SendResponse struct {
	Count int `json:"count"`
	SendResult
}

// BatchSendRequest is the body of a batch send
// (POST /api/queues/{queue}/messages/batch).
type BatchSendRequest struct {
	Messages []BatchSendEntry `json:"messages"`
}

// BatchSendEntry is one message of a batch send. It carries its payload
// either in Data, as any JSON value (stored as application/json), or in
// Base64 with ContentType (default application/octet-stream). Exactly one
// of Data and Base64 must be set.
type BatchSendEntry struct {
	// ID is the caller's label for the entry, echoed in its result.
	ID          string          `json:"id,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	Base64      string          `json:"base64,omitempty"`
	ContentType string          `json:"contentType,omitempty"`
	// DelayMs postpones delivery, in milliseconds. Nil means the queue's
	// default delay.
	DelayMs *int64 `json:"delayMs,omitempty"`
	// ExpirationSec drops the message if still unacked after this many
	// seconds. Zero means the queue's retention.
	ExpirationSec int64 `json:"expirationSec,omitzero"`
}

// BatchSendResult is the outcome of one entry of a batch send, in request
// order. Status is 200 for a stored message (with the SendResult fields
// set), or the HTTP status the entry would have got alone (400, 413) with
// Message saying why.
type BatchSendResult struct {
	ID             string `json:"id,omitempty"`
	Status         int    `json:"status"`
	Message        string `json:"message,omitempty"`
	MessageID      string `json:"messageId,omitempty"`
	QueueMessageID string `json:"queueMessageId,omitempty"`
	DeliverDate    int64  `json:"deliverDate,omitzero"`
	ExpirationDate int64  `json:"expirationDate,omitzero"`
}

// BatchSendResponse is the body of a batch send. Count is how many entries
// were stored. Regions and PendingRegions are as in SendResult, for every
// stored entry.
type BatchSendResponse struct {
	Count          int               `json:"count"`
	Results        []BatchSendResult `json:"results"`
	Regions        []string          `json:"regions,omitempty"`
	PendingRegions []string          `json:"pendingRegions,omitempty"`
}

// BatchAckRequest is the body of a batch ack
// (POST /api/queues/{queue}/messages/ack).
type BatchAckRequest struct {
	QueueMessageIDs []string `json:"queueMessageIds"`
}

// BatchAckResult is the outcome of one id of a batch ack, in request order.
// Status is 200 for an acked message, 400 for an id that is malformed or
// not inflight, with Message saying why.
type BatchAckResult struct {
	QueueMessageID string `json:"queueMessageId"`
	Status         int    `json:"status"`
	Message        string `json:"message,omitempty"`
}

// BatchAckResponse is the body of a batch ack. Count is how many messages
// were acked.
type BatchAckResponse struct {
	Count   int              `json:"count"`
	Results []BatchAckResult `json:"results"`
}

// NackResult is the body of a nack
// (PUT /api/queues/{queue}/messages/{queueMessageId}).
type NackResult struct {
	// QueueMessageID is the message's new id. It is empty when the message
	// moved to the dead-letter queue or expired.
	QueueMessageID string `json:"queueMessageId,omitempty"`
	// DeliverDate is when the message becomes available again.
	DeliverDate  int64 `json:"deliverDate,omitzero"`
	DeadLettered bool  `json:"deadLettered"`
}

// ExtendResult is the body of an extension
// (POST /api/queues/{queue}/messages/{queueMessageId}/extend).
type ExtendResult struct {
	QueueMessageID string `json:"queueMessageId"`
	// VisibleUntil is the new deadline for the ack.
	VisibleUntil int64 `json:"visibleUntil"`
}

// PurgeResult is the body of a purge
// (DELETE /api/queues/{queue}/messages?confirm=true).
type PurgeResult struct {
	// Count is how many available, delayed and inflight messages were
	// removed.
	Count int64 `json:"count"`
}

// RedriveResult is the body of a redrive
// (POST /api/queues/{queue}/redrive).
type RedriveResult struct {
	// Moved counts messages on their way back to their source queues.
	Moved int `json:"moved"`
	// Skipped counts messages left in place because they name no source
	// queue or their source queue no longer exists.
	Skipped int `json:"skipped"`
}

// Stats are a queue's current counts and its event totals
// (GET /api/queues/{queue}/stats).
type Stats struct {
	QueueName string `json:"queueName"`
	Available int64  `json:"available"`
	Inflight  int64  `json:"inflight"`
	Delayed   int64  `json:"delayed"`
	// DeadLettered counts the messages now in the queue's dead-letter
	// queue, whichever queue they came from.
	DeadLettered int64 `json:"deadLettered"`
	// OldestAvailableAgeMs is the age of the oldest available message in
	// milliseconds, or zero.
	OldestAvailableAgeMs int64  `json:"oldestAvailableAgeMs"`
	Totals               Totals `json:"totals"`
}

// Totals count a queue's events since it was created.
type Totals struct {
	Sent         int64 `json:"sent"`
	Received     int64 `json:"received"`
	Acked        int64 `json:"acked"`
	Nacked       int64 `json:"nacked"`
	TimedOut     int64 `json:"timedOut"`
	Expired      int64 `json:"expired"`
	DeadLettered int64 `json:"deadLettered"`
	Redriven     int64 `json:"redriven"`
	Purged       int64 `json:"purged"`
}

// AuditEvent is one step in the life of a message.
type AuditEvent struct {
	MessageID string `json:"messageId"`
	// Date is when the step happened.
	Date int64 `json:"date"`
	// Action is one of sent, received, acked, nacked, extended, timed_out,
	// available, dead_lettered, redriven, expired or purged.
	Action         string `json:"action"`
	QueueName      string `json:"queueName"`
	QueueMessageID string `json:"queueMessageId,omitempty"`
	ReceiveCount   int    `json:"receiveCount"`
	Detail         string `json:"detail,omitempty"`
}

// AuditTrail is the body of GET /api/queues/{queue}/messages/{messageId}/audit:
// every event of one message, across every queue it passed through, in time
// order.
type AuditTrail struct {
	MessageID string       `json:"messageId"`
	Events    []AuditEvent `json:"events"`
}

// PeekEntry is one message as a peek lists it, without changing it.
type PeekEntry struct {
	// State is available, deadLettered (an available message that came
	// from another queue), delayed, inflight or moving.
	State          string `json:"state"`
	QueueMessageID string `json:"queueMessageId"`
	MessageID      string `json:"messageId"`
	CreateDate     int64  `json:"createDate"`
	SentDate       int64  `json:"sentDate"`
	// DueDate is the ack deadline of an inflight message and the delivery
	// time of a delayed one.
	DueDate        int64  `json:"dueDate,omitzero"`
	ExpirationDate int64  `json:"expirationDate,omitzero"`
	ReceiveCount   int    `json:"receiveCount"`
	ContentType    string `json:"contentType"`
	// Size is the payload size in bytes.
	Size        int64  `json:"size"`
	SourceQueue string `json:"sourceQueue,omitempty"`
	// TargetQueue is the queue a moving message goes to.
	TargetQueue string `json:"targetQueue,omitempty"`
}

// PeekPage is one page of GET /api/queues/{queue}/peek. Next is the cursor
// of the following page, empty on the last one.
type PeekPage struct {
	Entries []PeekEntry `json:"entries"`
	Next    string      `json:"next,omitempty"`
}

// Status is the body of GET /api/status.
type Status struct {
	// Name is always "Qakka".
	Name    string `json:"name"`
	Version string `json:"version"`
	// Storage names the storage backend, such as "pebble" or "cassandra".
	Storage string `json:"storage"`
	Region  string `json:"region"`
	// StartDate is when the server started.
	StartDate int64 `json:"startDate"`
	UptimeSec int64 `json:"uptimeSec"`
	// Regions describes the other regions this server sends to.
	Regions *RegionsStatus `json:"regions,omitempty"`
	// Cluster describes the cluster of a cluster node.
	Cluster *ClusterStatus `json:"cluster,omitempty"`
}

// ClusterStatus is the cluster section of Status.
type ClusterStatus struct {
	// Node is the name of the node that replied.
	Node string `json:"node"`
	// Serving counts the queues whose lease this node holds.
	Serving int `json:"serving"`
	// Members lists every node in this node's member list, by name.
	Members []ClusterMember `json:"members"`
}

// ClusterMember is one node of a cluster.
type ClusterMember struct {
	Name string `json:"name"`
	// Address is the gossip host:port.
	Address string `json:"address"`
	// URL is the base URL of the node's REST API.
	URL string `json:"url"`
	// State is alive, dead or left.
	State string `json:"state"`
	// StorageDown is true while the node reports that it cannot reach
	// storage; it serves no queue then.
	StorageDown bool `json:"storageDown,omitempty"`
}

// RegionsStatus is the regions section of Status.
type RegionsStatus struct {
	// Local names the server's own region.
	Local   string         `json:"local"`
	Remotes []RemoteStatus `json:"remotes"`
}

// RemoteStatus describes one remote region and the server's outbox for
// it.
type RemoteStatus struct {
	Name      string   `json:"name"`
	Endpoints []string `json:"endpoints"`
	// Reachable is whether the last POST to the region got a reply, and
	// null before the first one. LastAttemptDate is when that POST was
	// made, and LastError is the reason it failed.
	Reachable       *bool  `json:"reachable"`
	LastAttemptDate int64  `json:"lastAttemptDate,omitzero"`
	LastError       string `json:"lastError,omitempty"`
	// LastSuccessDate is when a POST last got a reply, from Endpoint.
	LastSuccessDate int64  `json:"lastSuccessDate,omitzero"`
	Endpoint        string `json:"endpoint,omitempty"`
	// Backlog counts the outbox entries not yet stored by the region:
	// Available, Inflight (being sent) and Delayed (waiting for a retry).
	Backlog   int64 `json:"backlog"`
	Available int64 `json:"available"`
	Inflight  int64 `json:"inflight"`
	Delayed   int64 `json:"delayed"`
	// OldestAgeMs is the age of the oldest entry at the head of the
	// outbox, in milliseconds, or zero when it is empty.
	OldestAgeMs int64 `json:"oldestAgeMs"`
	// Transferred and Failures count entries since the server started:
	// those the region stored, and failed attempts to send one. Expired
	// counts entries that expired in the outbox, over its life.
	Transferred int64 `json:"transferred"`
	Failures    int64 `json:"failures"`
	Expired     int64 `json:"expired"`
}
