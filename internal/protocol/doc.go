// Package protocol owns the device and viewer wire formats: frame types, the
// queue item that travels on the ingest list, validation and normalisation of
// device frames, coordinate reference conversion, and the error codes of the
// contract. It uses the standard library only so that every other package may
// import it.
package protocol
