package signature

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerifyDT feeds VerifyDT arbitrary tokens and bodies. It must never panic,
// must accept only tokens whose checksum matches the body, and must accept every
// token AppendDT makes for the same body and secret.
func FuzzVerifyDT(f *testing.F) {
	f.Add(vectorToken, []byte(vectorBody), []byte(vectorSecret))
	f.Add(vectorToken, []byte(vectorBody[1:]), []byte(vectorSecret))
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.", []byte("{}"), []byte("s"))
	f.Add("a.b.c", []byte(nil), []byte(""))
	f.Add("..", []byte("x"), []byte("x"))
	f.Add(strings.Repeat(".", 5), []byte("x"), []byte("x"))
	f.Add("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjEuNWUxMH0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", []byte("{}"), []byte("k"))

	now := time.Unix(vectorIat, 0)
	f.Fuzz(func(t *testing.T, token string, body, secret []byte) {
		secrets := [][]byte{secret}
		claims, err := VerifyDT(token, body, secrets, now, time.Minute)
		if err == nil {
			if claims == nil {
				t.Fatal("nil claims without an error")
			}
			if err := checkDTChecksums(claims, body); err != nil {
				t.Fatalf("accepted a token whose checksum does not match: %v", err)
			}
		}

		jti := token
		if len(jti) > 64 {
			jti = jti[:64]
		}
		own := AppendDT(nil, secret, body, now, jti)
		got, err := VerifyDT(string(own), body, secrets, now, 0)
		if err != nil {
			t.Fatalf("own token rejected: %v", err)
		}
		if got.Iat != now.Unix() || got.Exp != now.Unix()+3600 {
			t.Fatalf("own token claims %+v", got)
		}
	})
}
