package storagetest

// idempotencyCases: Exactly once whatever the ts of a resent record (partitions, changed or missing ts).
var idempotencyCases = []testCase{}
