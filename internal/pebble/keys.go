package pebble

import (
	"bytes"
	"strings"
)

// Key prefixes; the package doc describes the layout.
const (
	prefixQueue     = "q/m/"
	prefixDue       = "q/d/"
	prefixDead      = "q/x/"
	prefixConnector = "c/"
	prefixDevice    = "v/"
)

// validKeyPart reports whether s can be one part of a key: not empty, and
// without the separator.
func validKeyPart(s string) bool { return s != "" && strings.IndexByte(s, '/') < 0 }

// mKeyLen is the length of a delivery record's key.
func mKeyLen(connectorID, eventID string) int {
	return len(prefixQueue) + len(connectorID) + 1 + len(eventID)
}

// appendMKey appends q/m/<connectorID>/<eventID>.
func appendMKey(dst []byte, connectorID, eventID string) []byte {
	dst = append(dst, prefixQueue...)
	dst = append(dst, connectorID...)
	dst = append(dst, '/')
	return append(dst, eventID...)
}

// dKeyLen is the length of a due-index key.
func dKeyLen(connectorID, eventID string) int {
	return len(prefixDue) + 8 + 1 + len(connectorID) + 1 + len(eventID)
}

// appendDKey appends q/d/<due>/<connectorID>/<eventID>.
func appendDKey(dst []byte, due int64, connectorID, eventID string) []byte {
	dst = append(dst, prefixDue...)
	dst = appendOrdered(dst, due)
	dst = append(dst, '/')
	dst = append(dst, connectorID...)
	dst = append(dst, '/')
	return append(dst, eventID...)
}

// dKeyBound returns the first due-index key of due: q/d/<due>.
func dKeyBound(due int64) []byte {
	return appendOrdered([]byte(prefixDue), due)
}

// parseDKey splits a due-index key into its due and the key of its record,
// q/m/<connectorID>/<eventID>, appended to dst.
func parseDKey(dst, k []byte) (due int64, mKey []byte, ok bool) {
	const head = len(prefixDue) + 8 + 1
	if len(k) < head+3 || k[head-1] != '/' {
		return 0, nil, false
	}
	ids := k[head:]
	sep := bytes.IndexByte(ids, '/')
	if sep <= 0 || sep == len(ids)-1 {
		return 0, nil, false
	}
	dst = append(dst, prefixQueue...)
	return ordered(k[len(prefixDue):]), append(dst, ids...), true
}

// splitMKey returns the connector and event ids of a record key.
func splitMKey(k []byte) (connectorID, eventID string, ok bool) {
	ids := string(k[len(prefixQueue):]) // one allocation for both
	sep := strings.IndexByte(ids, '/')
	if sep <= 0 {
		return "", "", false
	}
	return ids[:sep], ids[sep+1:], true
}

// appendXKey appends q/x/<connectorID>/<expire>/<eventID>.
func appendXKey(dst []byte, connectorID string, expire int64, eventID string) []byte {
	dst = append(dst, prefixDead...)
	dst = append(dst, connectorID...)
	dst = append(dst, '/')
	dst = appendOrdered(dst, expire)
	dst = append(dst, '/')
	return append(dst, eventID...)
}

// connectorPrefix returns the prefix of one connector's keys under p, for
// example q/m/<connectorID>/.
func connectorPrefix(p, connectorID string) []byte {
	return []byte(p + connectorID + "/")
}

// prefixEnd returns the smallest key after every key that starts with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // every key
}
