package archive

import "errors"

// Errors that callers branch on.
var (
	// ErrBusy: another export holds the archive directory.
	ErrBusy = errors.New("another export is writing this directory")
	// ErrMismatch: the directory holds an export made with other parameters.
	ErrMismatch = errors.New("directory holds a different export")
	// ErrCorrupt: a file does not match what the manifest says of it.
	ErrCorrupt = errors.New("archive file is corrupt")
	// ErrNoManifest: the directory has no manifest (import).
	ErrNoManifest = errors.New("no manifest")
)
