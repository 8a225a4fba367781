package ingest

import (
	"slices"
	"unicode/utf8"

	"dcon"
)

// AppendBody appends the body that a connector receives for an event: compact
// JSON with exactly three members, in the contract's order,
//
//	{"event":<event>,"labels":{...},"metadata":{"deviceId","projectId","deviceType","productNumber"}}
//
// event is the event envelope as rendered by (*dcon.Event).AppendJSON, shared by
// every connector of the event. labels holds the device's labels whose keys the
// connector lists in labelKeys, sorted by key ({} if none).
func AppendBody(dst, event []byte, dev *dcon.Device, labelKeys []string) []byte {
	dst = append(dst, `{"event":`...)
	dst = append(dst, event...)
	dst = append(dst, `,"labels":{`...)
	dst = appendLabels(dst, dev.Labels, labelKeys)
	dst = append(dst, `},"metadata":{"deviceId":`...)
	dst = appendString(dst, dev.ID)
	dst = append(dst, `,"projectId":`...)
	dst = appendString(dst, dev.ProjectID)
	dst = append(dst, `,"deviceType":`...)
	dst = appendString(dst, string(dev.Type))
	dst = append(dst, `,"productNumber":`...)
	dst = appendString(dst, dev.ProductNumber)
	return append(dst, `}}`...)
}

// bodyLen is the length of the body AppendBody appends when none of its
// strings needs escaping: the capacity to render it in, so that it takes one
// allocation.
func bodyLen(event []byte, dev *dcon.Device, labelKeys []string) int {
	const fixed = len(`{"event":,"labels":{},"metadata":{"deviceId":"","projectId":"","deviceType":"","productNumber":""}}`)
	n := fixed + len(event) + len(dev.ID) + len(dev.ProjectID) + len(dev.Type) + len(dev.ProductNumber)
	for _, k := range labelKeys {
		if v, ok := dev.Labels[k]; ok {
			n += len(`"":"",`) + len(k) + len(v)
		}
	}
	return n
}

// appendLabels appends the members of labels whose keys are in keys, sorted by
// key, each once.
func appendLabels(dst []byte, labels map[string]string, keys []string) []byte {
	var buf [16]string
	matched := buf[:0]
	for _, k := range keys {
		if _, ok := labels[k]; ok {
			matched = append(matched, k)
		}
	}
	slices.Sort(matched)
	matched = slices.Compact(matched)
	for i, k := range matched {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, labels[k])
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. It escapes what JSON requires
// (quote, backslash, control characters), U+2028 and U+2029 (for JavaScript
// receivers), and replaces invalid UTF-8 with U+FFFD, as encoding/json does; it
// does not escape HTML characters.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
