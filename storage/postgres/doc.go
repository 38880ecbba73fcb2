// Package postgres is the PostgreSQL implementation of storage.Store, on a
// pgx v5 pool, for devtrack on several hosts. It passes the same
// conformance suite (storage/storagetest) as the SQLite store.
//
// Locations and logs are partitioned by range of ts, one partition per UTC
// day, made ahead of time (yesterday to a week ahead, at Migrate and on the
// first batch of each day) and on demand for any ts a batch carries, under
// an advisory lock so that concurrent creators never fail. Exactly-once
// cannot rest on the partitioned tables, whose unique indexes must include
// ts (and a frame resent without ts gets a new receive time): every stored
// (device, id) has a row in a non-partitioned ledger (location_ids,
// log_ids) whose primary key is (device, id) alone, and each batch, in one
// transaction and one statement per kind, inserts its ids there with ON
// CONFLICT DO NOTHING and copies into the partitioned table only the rows
// whose ids were new. So a resent (device, id) is stored once whatever its
// ts, counted as a duplicate, and the first version is kept. Retention drops
// whole day partitions with their ledger rows and deletes the remainder of
// the boundary day in chunks. Search is ILIKE per term with a pg_trgm GIN
// index; see search.go.
package postgres
