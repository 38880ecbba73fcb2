package storagetest

// retentionCases: Purge and DeleteRecords: retention and export remove exactly what they name.
var retentionCases = []testCase{}
