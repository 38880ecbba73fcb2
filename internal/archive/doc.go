// Package archive moves old locations and logs out of the store into files
// and back: Export writes them as gzip JSONL, one file per device, UTC day
// and kind, beside a manifest that lists every file with its record count,
// size and SHA-256; Import reads such a directory into a store.
//
// On disk (DIR is --to):
//
//	DIR/manifest.json                         the manifest (format devtrack-archive/1)
//	DIR/2026-11-30/truck-7.locations.jsonl.gz one JSON object per line, as the query API gives it
//	DIR/2026-11-30/truck-7.logs.jsonl.gz
//
// A device id becomes a file name by percent-encoding every byte outside
// [A-Za-z0-9._@-] (and a leading dot), so any id maps to one safe name and
// back; the manifest also names the device in clear.
//
// Export is crash-safe and resumable. Each file is written to a temporary
// name, fsynced, renamed into place, its directory fsynced, then read back
// and checked (SHA-256 of the bytes and of the JSONL, line count) before the
// manifest lists it; the manifest is replaced atomically (temporary file,
// fsync, rename, fsync of DIR). Only files the manifest lists count: a rerun
// with the same --before skips them (after checking their SHA-256), removes
// temporary files a killed run left, and rewrites any other file from the
// store. With Delete, the records of a file are deleted from the store only
// after the manifest that lists it as verified is on disk, by the ids read
// back from the file itself, so nothing is deleted that is not archived.
// The manifest then records the deletion; a crash in between makes the next
// run with Delete delete again (ids already gone are ignored).
package archive
