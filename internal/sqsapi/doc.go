// Package sqsapi serves an Amazon SQS-compatible API on top of the queue
// engine, so that AWS SDKs and the AWS CLI work against Qakka unchanged.
//
// # Protocol
//
// The API speaks the AWS JSON 1.0 protocol that every current AWS SDK uses
// for SQS: a POST with the header X-Amz-Target: AmazonSQS.<Action>, a JSON
// body, and a JSON reply. Errors carry {"__type", "message"} and the header
// x-amzn-query-error, from which SDKs read the SQS error code. A request in
// the older Query protocol (form-encoded Action=...) gets an InvalidAction
// error naming that protocol.
//
// # Queues
//
// A queue's URL is <base>/<account id>/<queue name>, where the base comes
// from Config.BaseURL (the request's own scheme and host by default). Only
// the last two segments of a QueueUrl's path are read, so a URL handed out
// under one host name or path prefix works under another. New queues must have SQS names: 1 to 80 letters,
// digits, '-' and '_'. Queues created through the REST API may also contain
// '.', and work here all the same. FIFO queues are not supported.
//
// Queue attributes map onto the engine's queue configuration:
// VisibilityTimeout, DelaySeconds, MessageRetentionPeriod,
// MaximumMessageSize and ReceiveMessageWaitTimeSeconds onto the settings of
// the same meaning, and RedrivePolicy onto DeadLetterQueue and RetryCount.
// The engine moves a message to its dead-letter queue when its receive count
// exceeds RetryCount at the moment it would become available again, so a
// message can be received RetryCount+1 times; RetryCount is therefore
// maxReceiveCount-1.
//
// # Messages
//
// A message's SQS attributes (message attributes, the AWSTraceHeader system
// attribute, the message group id and the sender) are stored as JSON in the
// payload's Attributes, which the engine keeps unchanged. A message sent
// through the REST API has none. Bodies sent here are stored with the
// content type text/plain; charset=utf-8. A body that is not valid UTF-8,
// which only the REST API can store, is returned base64-encoded.
//
// A receipt handle encodes the queue name, the delivery's queueMessageId
// and the message's payload id, with a checksum that rejects handles that
// were altered or cut short. The engine gives a message a new
// queueMessageId each time it becomes available, so a handle names one
// delivery. Deleting with a stale handle succeeds and deletes nothing, as
// SQS documents.
//
// # Authentication
//
// With Config.Credentials set, every request must carry an AWS Signature
// Version 4 Authorization header for the service "sqs", signed with one of
// the configured keys within 15 minutes of the server's clock. The
// signature's region is taken from its credential scope and not checked
// against Config.Region.
//
// # Clusters
//
// In a cluster, each queue is served by one node, its owner. Receives,
// deletes, visibility changes, purges and queue deletion run on the owner,
// and so do GetQueueAttributes, SetQueueAttributes, TagQueue and UntagQueue.
// After authenticating such a request, the API hands it to
// Config.RouteToOwner, which forwards it when the owner is another node. The
// owner serves it through ForwardedHandler. Sends and the other actions run
// on the node that receives them.
package sqsapi
