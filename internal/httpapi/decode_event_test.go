package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestOneMemberAgreesWithTheDecoder: the fast path of decodeEvent answers
// exactly what the general decoding does, or leaves the body to it.
func TestOneMemberAgreesWithTheDecoder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		fast bool // the fast path takes it
	}{
		{`{"temperature":{"value":21.5}}`, true},
		{" \n{ \"touch\" :\t{} }\r\n", true},
		{`{"temperature":{"value":21.5,"samples":[{"value":1},{"value":2}]}}`, true},
		{`{"x":"a string with \" and } and ]"}`, true},
		{`{"x":12.5e3}`, true},
		{`{"x":true }`, true},
		{`{"x":null}`, true},
		{`{"x":[1,[2,{"y":"}"}]]}`, true},
		{`{}`, false},
		{`[]`, false},
		{`"touch"`, false},
		{`{"a":1,"b":2}`, false},
		{`{"a":1,"a":2}`, false},
		{`{"t\u006fuch":{}}`, false},
		{`{"touch":{}`, false},
		{`{"touch":{}} {}`, false},
		{`{"touch":}`, false},
	} {
		key, value, ok := oneMember([]byte(tc.body))
		if ok != tc.fast {
			t.Errorf("oneMember(%q) ok = %v, want %v", tc.body, ok, tc.fast)
		}
		if !ok {
			continue
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tc.body), &members); err != nil || len(members) != 1 {
			t.Fatalf("%q: the decoder says %v, %d members", tc.body, err, len(members))
		}
		for k, v := range members {
			if k != key || !bytes.Equal(v, value) {
				t.Errorf("oneMember(%q) = %q, %q; the decoder: %q, %q", tc.body, key, value, k, v)
			}
		}
	}
}

// FuzzOneMember: whatever the body, the fast path agrees with the decoder
// when it takes it.
func FuzzOneMember(f *testing.F) {
	for _, s := range []string{`{"temperature":{"value":21.5}}`, `{"a":[1,"]"]}`, `{"a":1,"b":2}`, ` {"x" : "\\"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		key, value, ok := oneMember(body)
		if !ok {
			return
		}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(body, &members); err != nil || len(members) != 1 {
			t.Fatalf("oneMember took %q, which the decoder reads as %d members, %v", body, len(members), err)
		}
		if v, found := members[key]; !found || !bytes.Equal(v, value) {
			t.Fatalf("oneMember(%q) = %q, %q; the decoder: %q", body, key, value, members)
		}
	})
}

func BenchmarkDecodeEvent(b *testing.B) {
	body := []byte(`{"temperature":{"value":21.5}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := decodeEvent(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEventGeneral is the general decoding that the fast path
// skips: a map of members, and a count of them with a json.Decoder.
func BenchmarkDecodeEventGeneral(b *testing.B) {
	body := []byte(`{"temperature":{"value":21.5}}`)
	b.ReportAllocs()
	for b.Loop() {
		var members map[string]json.RawMessage
		if err := decodeObject(body, &members); err != nil || countMembers(body) != 1 {
			b.Fatal(err)
		}
	}
}
