package sqsapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"

	"github.com/google/uuid"

	"github.com/qakka/qakka/internal/queue"
)

// receiptVersion is the first byte of every receipt handle, so that the
// layout can change later.
const receiptVersion = 1

// receiptChecksumLen is how many bytes of SHA-256 end a receipt handle.
const receiptChecksumLen = 8

// receipt is the content of a receipt handle, which names one delivery of
// one message.
type receipt struct {
	Queue string
	// QueueMessageID names the delivery in the engine.
	QueueMessageID uuid.UUID
	// MessageID is the payload's id, the SQS MessageId.
	MessageID uuid.UUID
}

// encode returns the handle: version, queueMessageId, message id and queue
// name, then the first bytes of their SHA-256, in URL-safe base64.
//
// NB: the checksum detects handles that were altered or cut, not forged
// ones. A forged handle needs a live queueMessageId, which is a random
// UUID, and a request that passed authentication.
func (r receipt) encode() string {
	b := make([]byte, 0, 1+16+16+len(r.Queue)+receiptChecksumLen)
	b = append(b, receiptVersion)
	b = append(b, r.QueueMessageID[:]...)
	b = append(b, r.MessageID[:]...)
	b = append(b, r.Queue...)
	sum := sha256.Sum256(b)
	b = append(b, sum[:receiptChecksumLen]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeReceipt parses a handle made by encode, or reports false.
func decodeReceipt(s string) (receipt, bool) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) < 1+16+16+1+receiptChecksumLen || b[0] != receiptVersion {
		return receipt{}, false
	}
	body, checksum := b[:len(b)-receiptChecksumLen], b[len(b)-receiptChecksumLen:]
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:receiptChecksumLen], checksum) {
		return receipt{}, false
	}
	r := receipt{Queue: string(body[33:])}
	copy(r.QueueMessageID[:], body[1:17])
	copy(r.MessageID[:], body[17:33])
	if queue.ValidateName(r.Queue) != nil {
		return receipt{}, false
	}
	return r, true
}

// receiptFor decodes a handle given for queue name, or returns
// ReceiptHandleIsInvalid.
func receiptFor(name, handle string) (receipt, *apiError) {
	if handle == "" {
		return receipt{}, errMissingParameter("ReceiptHandle")
	}
	r, ok := decodeReceipt(handle)
	if !ok || r.Queue != name {
		return receipt{}, errReceiptHandleIsInvalid(handle)
	}
	return r, nil
}
