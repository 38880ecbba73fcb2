//go:build !unix

package wsgateway

// fdLimit is unknown here: no connection cap by default.
func fdLimit() int { return 0 }
