package redisq

// Keys builds every Redis key and channel name from the prefix (default
// "devtrack"). Keys used together by one multi-key command or Lua script share
// the hash tag {prefix} so that they live in one Redis Cluster slot.
//
// Types:
//
//	{p}:queue                     list   ingest list; producers LPUSH, workers pop from the right
//	{p}:queue:processing:<worker> list   items a worker has taken and not yet finished
//	{p}:queue:attempts            hash   "<device>\n<id>" (or sha1 of the raw item) -> failed attempts
//	{p}:queue:dead                list   dead letters: JSON {item, error, attempts, worker, failed_at}
//	{p}:workers                   set    ids of workers that may hold a processing list
//	{p}:worker:<worker>:alive     string worker heartbeat, expires when the worker dies
//	p:device:links                hash   device id -> "<instance>#<conn>" (contract); instance "<gateway>~<nonce>"
//	p:device:last                 hash   device id -> JSON of its latest location message
//	p:device:seen                 hash   device id -> Unix ms it was last heard of (worker's view)
//	p:gateway:<instance>:alive    string gateway instance heartbeat, expires when the process dies
//	p:live:<device>               pubsub live messages of one device (viewer protocol JSON)
//	p:gateway:<instance>          pubsub control messages for one gateway instance (kick, command)
//	p:session:<sha256 of cookie>  string web session -> user name, expires
//	p:store:outage                string JSON {worker, error, since} while a worker cannot write the store, expires
//	p:<job>:lock                  string token of the process running job (p:retention:lock), expires (lock.go)
//	p:queue, {p}queue, {p}:ingest list   wrong keys a producer may push onto by mistake: only counted
//	p:ingest                             (LLEN) so that queue stats warns (StrayQueues)
//	<tee key>                     list   worker --tee-list (e.g. device:log:list), as given, no prefix:
//	                                     the data of stored logs for a legacy consumer, trimmed (tee.go)
type Keys struct {
	prefix string
	tag    string
}

// NewKeys returns the key builder for prefix.
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = "devtrack"
	}
	return Keys{prefix: prefix, tag: "{" + prefix + "}"}
}

// Prefix is the key prefix.
func (k Keys) Prefix() string { return k.prefix }

func (k Keys) Queue() string                      { return k.tag + ":queue" }
func (k Keys) Processing(worker string) string    { return k.tag + ":queue:processing:" + worker }
func (k Keys) Attempts() string                   { return k.tag + ":queue:attempts" }
func (k Keys) Dead() string                       { return k.tag + ":queue:dead" }
func (k Keys) Workers() string                    { return k.tag + ":workers" }
func (k Keys) WorkerAlive(worker string) string   { return k.tag + ":worker:" + worker + ":alive" }
func (k Keys) Links() string                      { return k.prefix + ":device:links" }
func (k Keys) LastLocation() string               { return k.prefix + ":device:last" }
func (k Keys) LastSeen() string                   { return k.prefix + ":device:seen" }
func (k Keys) GatewayAlive(gateway string) string { return k.prefix + ":gateway:" + gateway + ":alive" }
func (k Keys) LiveChannel(device string) string   { return k.prefix + ":live:" + device }
func (k Keys) LivePattern() string                { return k.prefix + ":live:*" }
func (k Keys) StoreOutage() string                { return k.prefix + ":store:outage" }
func (k Keys) Lock(job string) string             { return k.prefix + ":" + job + ":lock" }
func (k Keys) GatewayChannel(gateway string) string {
	return k.prefix + ":gateway:" + gateway
}

// StrayQueues are the keys producers push onto by mistake instead of
// Queue(), each a list that no worker reads: the key without its braces
// (PHP's "{$prefix}:queue" and Python's f"{prefix}:queue" drop them), without
// the colon, the README's word "ingest" for it, and, under another prefix,
// the default prefix's keys. Stats counts what they hold with one LLEN each,
// never a SCAN, so that queue stats can warn.
func (k Keys) StrayQueues() []string {
	out := []string{k.prefix + ":queue", k.tag + "queue", k.tag + ":ingest", k.prefix + ":ingest"}
	if def := NewKeys(""); k.prefix != def.prefix {
		out = append(out, def.Queue(), def.prefix+":queue")
	}
	return out
}
