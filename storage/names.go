package storage

import "regexp"

// validName is what device ids, user names and groups may look like: short,
// printable anywhere (URLs, shell arguments, log lines) without quoting.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$`)

// ValidName reports whether s can be a device id, a user name or a group:
// 1 to 64 letters, digits and . _ : @ -, not starting with one of the
// punctuation marks.
func ValidName(s string) bool { return validName.MatchString(s) }
