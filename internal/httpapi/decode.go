package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"dcon"
)

// readBody checks the request's media type and reads its body, refusing bodies
// over the limit and empty ones. Errors are *dcon.Error.
func (a *api) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, dcon.Errorf(dcon.EUNSUPPORTED, "unsupported Content-Type %q: send application/json", ct)
		}
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, a.maxBody), min(r.ContentLength, a.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, dcon.Errorf(dcon.ETOOLARGE, "request body is larger than %d bytes", tooLarge.Limit)
		}
		return nil, dcon.WrapError(dcon.EINVALID, err, "cannot read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, dcon.Errorf(dcon.EINVALID, "request body is empty: send a JSON object")
	}
	if err := checkJSONLimits(body); err != nil {
		return nil, err
	}
	return body, nil
}

// readAll is io.ReadAll into a buffer of the body's size, when the request
// tells it (size): one allocation, of the size needed, where io.ReadAll
// starts at 512 bytes.
func readAll(rd io.Reader, size int64) ([]byte, error) {
	if size <= 0 {
		return io.ReadAll(rd)
	}
	b := make([]byte, 0, size+1) // +1: room to see the end without growing
	for {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // a body longer than it said: grow
		}
	}
}

// Limits on the shape of a JSON request body, checked before it is decoded,
// so that no body makes the decoder recurse deeply or build huge values. The
// deepest body dcon reads is about 5 levels (a batch of events with samples);
// the widest, a batch of 1,000 events or a temperature event's samples.
const (
	maxJSONDepth   = 32     // nested objects and arrays
	maxJSONMembers = 10_000 // members of one object, or elements of one array
	maxJSONValues  = 200_000
)

// checkJSONLimits refuses (EINVALID) a body nested deeper than maxJSONDepth,
// with an object or array of more than maxJSONMembers, or with more than
// maxJSONValues values in all. It only counts: malformed JSON is left for the
// decoder to describe.
func checkJSONLimits(body []byte) error {
	var (
		counts []int // members so far of each open object or array
		values int
		inStr  bool
	)
	for i := 0; i < len(body); i++ {
		c := body[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			if len(counts) == maxJSONDepth {
				return dcon.Errorf(dcon.EINVALID, "request body is nested deeper than %d levels", maxJSONDepth)
			}
			counts = append(counts, 0)
			values++
		case '}', ']':
			if len(counts) > 0 {
				counts = counts[:len(counts)-1]
			}
		case ',':
			if len(counts) == 0 {
				continue
			}
			if counts[len(counts)-1]++; counts[len(counts)-1] >= maxJSONMembers {
				return dcon.Errorf(dcon.EINVALID, "request body has an object or array of more than %d members", maxJSONMembers)
			}
			if values++; values > maxJSONValues {
				return dcon.Errorf(dcon.EINVALID, "request body has more than %d JSON values", maxJSONValues)
			}
		}
	}
	return nil
}

// decodeObject decodes body, which must be one JSON object and nothing more,
// into v, a pointer to a struct; members v does not have are refused.
func decodeObject(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] != '{' && json.Valid(trimmed) {
		return dcon.Errorf(dcon.EINVALID, "request body must be a JSON object, not %s", jsonKind(trimmed))
	}
	return decodeValue("", body, v)
}

// decodeValue decodes data, one JSON value, into v. path names data's place in
// the request body ("" for the body itself, "httpConfig" for a member); it
// prefixes field names in the messages of the errors, which are *dcon.Error
// with code EINVALID.
func decodeValue(path string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(path, data, v, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		line, col := position(data, skipSpace(data, end))
		return dcon.Errorf(dcon.EINVALID, "malformed JSON at line %d, column %d: unexpected data after the JSON value", line, col)
	}
	return nil
}

// jsonError turns an error of encoding/json into a clean client message.
func jsonError(path string, data []byte, v any, err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		line, col := position(data, syntax.Offset-1) // Offset counts the bytes read, the bad one included
		return dcon.Errorf(dcon.EINVALID, "malformed JSON at line %d, column %d: %s", line, col, syntax.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return dcon.Errorf(dcon.EINVALID, "malformed JSON: the body ends before the JSON value does")
	case errors.As(err, &typ):
		field := joinPath(path, typ.Field)
		got, _, _ := strings.Cut(typ.Value, " ") // "number 1.5" → "number"
		if got == "bool" {
			got = "boolean"
		}
		if field == "" {
			return dcon.Errorf(dcon.EINVALID, "request body must be a JSON object, not %s", article(got))
		}
		return dcon.Errorf(dcon.EINVALID, "field %q must be %s, not %s", field, want(v, typ), article(got))
	}
	// DisallowUnknownFields reports unknown members only in the message.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if unq, err := strconv.Unquote(name); err == nil {
			name = unq
		}
		return dcon.Errorf(dcon.EINVALID, "unknown field %q", joinPath(path, name))
	}
	return dcon.WrapError(dcon.EINVALID, err, "malformed JSON")
}

// want describes the JSON type that typ expected. When the wrong value was an
// element of an array or object, it says so.
func want(v any, typ *json.UnmarshalTypeError) string {
	if t := fieldType(reflect.TypeOf(v), typ.Field); t != nil {
		switch {
		case t.Kind() == reflect.Slice && t.Elem() == typ.Type:
			return "an array of " + jsonType(typ.Type) + "s"
		case t.Kind() == reflect.Map && t.Elem() == typ.Type:
			return "an object of " + jsonType(typ.Type) + "s"
		}
	}
	return article(jsonType(typ.Type))
}

// fieldType returns the type of the member at path (dotted JSON names) in a
// value of type t, or nil when it cannot tell.
func fieldType(t reflect.Type, path string) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if path == "" {
		return t
	}
	name, rest, _ := strings.Cut(path, ".")
	switch t.Kind() {
	case reflect.Map:
		return fieldType(t.Elem(), rest)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if tag == name || tag == "" && strings.EqualFold(f.Name, name) {
				return fieldType(f.Type, rest)
			}
		}
	}
	return nil
}

// jsonType names the JSON type that a Go type decodes from.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return t.String()
}

// jsonKind names the JSON type of a valid JSON value.
func jsonKind(value []byte) string {
	switch value[0] {
	case '"':
		return "a string"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// article puts "a" or "an" before a JSON type name.
func article(name string) string {
	switch {
	case name == "" || name == "null":
		return name
	case strings.ContainsRune("aeiou", rune(name[0])):
		return "an " + name
	}
	return "a " + name
}

func joinPath(path, field string) string {
	switch {
	case path == "":
		return field
	case field == "":
		return path
	}
	return path + "." + field
}

// position returns the 1-based line and column of the byte at offset off in data.
func position(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// skipSpace returns the offset of the first byte at or after off that is not
// JSON white space.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
		off++
	}
	return off
}

// setField sets *dst from raw, a member of the request body at path; an absent
// member (raw empty) and null set the zero value.
func setField[T any](path string, raw json.RawMessage, dst *T) error {
	var v T
	if len(raw) > 0 {
		if err := decodeValue(path, raw, &v); err != nil {
			return err
		}
	}
	*dst = v
	return nil
}

// oneMember is the fast path of decoding a publish body: if body is valid
// JSON, an object of exactly one member whose key is UTF-8 without escapes — every
// well-formed publish —, it returns that key and the member's value (the raw
// bytes, without the whitespace around them), with no reflection and no
// allocation but the key. Otherwise ok is false, and the caller decodes body
// the general way, which describes what is wrong.
func oneMember(body []byte) (key string, value []byte, ok bool) {
	if !json.Valid(body) {
		return "", nil, false
	}
	i := skipWS(body, 0)
	if i == len(body) || body[i] != '{' {
		return "", nil, false
	}
	i = skipWS(body, i+1)
	if i == len(body) || body[i] != '"' {
		return "", nil, false // {}
	}
	n := bytes.IndexByte(body[i+1:], '"')
	k := body[i+1 : i+1+n]
	if bytes.IndexByte(k, '\\') >= 0 || !utf8.Valid(k) {
		return "", nil, false // the decoder unescapes, or replaces bad bytes
	}
	i = skipWS(body, i+1+n+1) // at the colon: body is valid
	start := skipWS(body, i+1)
	end := skipValue(body, start)
	if i = skipWS(body, end); body[i] != '}' {
		return "", nil, false // another member
	}
	return string(k), body[start:end], true
}

// skipSpace returns the index of the first byte of b at or after i that is
// not JSON whitespace, or len(b).
func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index just after the JSON value that starts at i in
// b, which must be valid JSON.
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				return i + 1 // the end of the value
			} else if depth < 0 {
				return i // the end of the object around it
			}
		case ',', ':', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
