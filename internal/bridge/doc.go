// Package bridge turns the messages of another system into device frames:
// a JSON message published on a Redis channel (the Django or PHP API that
// PUBLISHes positions) or consumed from an AMQP queue (a RabbitMQ status
// queue) becomes, through a field Mapping, the frame a registered device
// would have sent. The frame is validated by the gateway's own parser
// (protocol.Limits.ParseWith), stamped by protocol.Stamp and pushed onto the
// ingest list, so the workers store it like any other.
//
// A message is refused, counted, logged with its reason and never stored
// when it is malformed (not a JSON object, a mapped field missing or of the
// wrong type, a frame the parser refuses) or names a device that is not
// registered (or is revoked). Refusals are final; only a failure to reach
// the store or Redis is retried.
//
// Delivery: a Redis channel is at most once (pub/sub keeps nothing: what is
// published while the bridge is down, or while it resubscribes, is lost).
// An AMQP message is acknowledged only after its item is on the ingest list,
// so a crash redelivers it; its id (Mapping, else the AMQP message-id, else a
// hash of the body) makes the redelivery a duplicate that the store ignores.
package bridge
