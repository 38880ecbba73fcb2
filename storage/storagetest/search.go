package storagetest

// searchCases: Log search (storage.SearchTerms semantics), the same answers on every store.
var searchCases = []testCase{}
