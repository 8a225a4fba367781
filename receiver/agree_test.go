package receiver_test

import (
	"crypto/ecdsa"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"dcon/internal/signature"
	"dcon/receiver"
)

// The receiver package verifies on its own (integrators cannot import dcon's
// internal packages); these tests hold it to the same verdicts as
// internal/signature, which dcon signs with.

func TestAgreesWithSignatureHS256(t *testing.T) {
	t.Parallel()
	iat := time.Unix(vectorIat, 0)
	fresh := string(signature.AppendDT(nil, []byte(vectorSecret), []byte(vectorBody), iat, "c82gg99hga35jc2afkeg"))
	parts := strings.Split(vectorToken, ".")
	tokens := []string{
		vectorToken, fresh, "", "x", "a.b.c",
		string(signature.AppendDT(nil, []byte("other"), []byte(vectorBody), iat, "j")),
		string(signature.AppendDT(nil, []byte(vectorSecret), []byte(vectorBody+" "), iat, "j")),
		string(signature.AppendDT(nil, []byte(vectorSecret), []byte(vectorBody), iat.Add(-2*time.Hour), "j")),
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		parts[0] + "." + parts[1] + "." + parts[2][:20],
	}
	for _, now := range []time.Time{iat, iat.Add(59 * time.Minute), iat.Add(61*time.Minute + time.Second), iat.Add(-2 * time.Minute)} {
		v := mustVerifier(t, receiver.Config{Secrets: []string{vectorSecret}, Now: func() time.Time { return now }})
		for i, tok := range tokens {
			_, errS := signature.VerifyDT(tok, []byte(vectorBody), [][]byte{[]byte(vectorSecret)}, now, receiver.DefaultLeeway)
			errR := v.Verify(request(vectorBody, map[string]string{receiver.DTHeader: tok}), []byte(vectorBody))
			if (errS == nil) != (errR == nil) {
				t.Errorf("token %d at %v: signature says %v, receiver says %v", i, now, errS, errR)
			}
		}
	}
}

func TestAgreesWithSignatureES256(t *testing.T) {
	t.Parallel()
	c := newClock(time.Unix(vectorIat, 0))
	srv := newJWKSServer(t, c)
	oldToken := srv.sign(t, vectorBody, testIssuer, testSubject)
	if _, err := srv.keys.Rotate(c.Now()); err != nil {
		t.Fatal(err)
	}
	_, stranger := mustKeySet(t, c.Now()).Active()
	forged, err := signature.AppendES256(nil, stranger, "x", []byte(vectorBody), c.Now(), testIssuer, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	tokens := []string{oldToken, srv.sign(t, vectorBody, testIssuer, testSubject), srv.sign(t, vectorBody+"x", "", ""), string(forged), vectorToken, ""}
	v := mustVerifier(t, receiver.Config{JWKSURL: srv.jwksURL(), HTTPClient: srv.Client(), Now: c.Now})
	keyFor := func(kid string) (*ecdsa.PublicKey, error) { return srv.keys.PublicKey(kid, c.Now()) }
	for i, tok := range tokens {
		_, errS := signature.VerifyES256(tok, []byte(vectorBody), keyFor, c.Now(), receiver.DefaultLeeway)
		errR := v.Verify(request(vectorBody, map[string]string{receiver.ES256Header: tok}), []byte(vectorBody))
		if (errS == nil) != (errR == nil) {
			t.Errorf("token %d: signature says %v, receiver says %v", i, errS, errR)
		}
	}
}

func mustKeySet(t testing.TB, now time.Time) *signature.KeySet {
	t.Helper()
	ks, err := signature.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// FuzzAgreeHS256 feeds both verifiers the same X-Dt-Signature and body.
func FuzzAgreeHS256(f *testing.F) {
	f.Add(vectorToken, []byte(vectorBody))
	f.Add(vectorToken, []byte(vectorBody[1:]))
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.", []byte("{}"))
	f.Add("a.b.c", []byte(nil))
	now := time.Unix(vectorIat, 0)
	v := mustVerifier(f, receiver.Config{Secrets: []string{vectorSecret}, Now: func() time.Time { return now }})
	f.Fuzz(func(t *testing.T, token string, body []byte) {
		if strings.ContainsAny(token, "\r\n") {
			return // not a header value
		}
		_, errS := signature.VerifyDT(token, body, [][]byte{[]byte(vectorSecret)}, now, receiver.DefaultLeeway)
		r := request(string(body), nil)
		r.Header.Set(receiver.DTHeader, token)
		errR := v.Verify(r, body)
		if (errS == nil) != (errR == nil) {
			t.Fatalf("signature says %v, receiver says %v", errS, errR)
		}
	})
}

// FuzzAgreeStandard feeds both verifiers the same Standard Webhooks headers.
func FuzzAgreeStandard(f *testing.F) {
	f.Add(swID, strconv.Itoa(swTimestamp), swSig, []byte(swBody))
	f.Add(swID, strconv.Itoa(swTimestamp), "v1, "+swSig, []byte(swBody))
	f.Add(swID, "1614265029", swSig, []byte(swBody))
	f.Add("", "", "", []byte(nil))
	now := time.Unix(swTimestamp, 0)
	v := mustVerifier(f, receiver.Config{StandardSecrets: []string{swSecret}, Now: func() time.Time { return now }})
	key, err := signature.ParseWhsec(swSecret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		errS := signature.VerifyStandard(id, ts, sig, body, [][]byte{key}, now, 0)
		r := request(string(body), nil)
		r.Header["Webhook-Id"] = []string{id}
		r.Header["Webhook-Timestamp"] = []string{ts}
		r.Header["Webhook-Signature"] = []string{sig}
		errR := v.Verify(r, body)
		if (errS == nil) != (errR == nil) {
			t.Fatalf("signature says %v, receiver says %v", errS, errR)
		}
	})
}

// FuzzVerifyES256 feeds the receiver arbitrary DT-Asymmetric-Signature values
// against a real JWKS server: it must never panic, and must accept only what
// internal/signature accepts.
func FuzzVerifyES256(f *testing.F) {
	c := newClock(time.Unix(vectorIat, 0))
	srv := newJWKSServer(f, c)
	f.Add(srv.sign(f, vectorBody, "", ""), []byte(vectorBody))
	f.Add(srv.sign(f, vectorBody, "", ""), []byte(vectorBody[2:]))
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.", []byte("{}"))
	f.Add(vectorToken, []byte(vectorBody))
	v := mustVerifier(f, receiver.Config{JWKSURL: srv.jwksURL(), HTTPClient: srv.Client(), Now: c.Now})
	keyFor := func(kid string) (*ecdsa.PublicKey, error) { return srv.keys.PublicKey(kid, c.Now()) }
	f.Fuzz(func(t *testing.T, token string, body []byte) {
		r := request(string(body), nil)
		r.Header.Set(receiver.ES256Header, token)
		if errR := v.Verify(r, body); errR == nil {
			if _, errS := signature.VerifyES256(token, body, keyFor, c.Now(), receiver.DefaultLeeway); errS != nil {
				t.Fatalf("receiver accepts what signature refuses: %v", errS)
			}
		}
	})
}

// FuzzParseEvent must never panic, and an event it returns has what it
// promises.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(vectorBody))
	f.Add([]byte(`{"event":{"eventId":"e","eventType":"labelsChanged","data":{"added":{"a":"b"},"modified":{},"removed":["c"]},"timestamp":"2022-02-10T12:42:13Z"}}`))
	f.Add([]byte(`{"event":{"eventId":"e","eventType":"ethernetStatus","data":{"ethernetStatus":{"errors":[{"code":1e3}]}},"timestamp":"2022-02-10T12:42:13Z"}}`))
	f.Add([]byte(`{"event":{"eventId":"e","eventType":"x","data":{},"timestamp":"2022-02-10T12:42:13Z"}}`))
	f.Add([]byte(`{"event":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := receiver.ParseEvent(body)
		if err != nil {
			if ev != nil {
				t.Fatal("an event with an error")
			}
			return
		}
		if ev.EventID == "" || ev.EventType == "" || ev.Labels == nil || ev.Data == nil {
			t.Fatalf("incomplete event %+v", ev)
		}
	})
}
