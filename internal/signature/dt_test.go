package signature

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The test vector of the contract, section 3.
const (
	vectorSecret = "test-secret"
	vectorBody   = `{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}`
	vectorIat    = 1644496933
	vectorJTI    = "c82gg99hga35jc2afkeg"
	vectorToken  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGVja3N1bSI6ImYyYjVkYzA0OTY0MzcyMDFkM2NlZTE1NmMyMzNhMTMzNTYwM2Q0NjUiLCJjaGVja3N1bV9zaGEyNTYiOiJhZmQ4MWExNmJiOWMwNzZlNTdmOTI3MjhmMjg0ZmY1NTgzMWJmZGYxZDNjMmMxMGI4MzM1NjdmNTIxZDc4MmRlIiwiZXhwIjoxNjQ0NTAwNTMzLCJpYXQiOjE2NDQ0OTY5MzMsImp0aSI6ImM4MmdnOTloZ2EzNWpjMmFma2VnIn0.gm8m_HrhlOnAyS08CfR_RNYdZQIpGV6E8bk3UiAR3uo"
	vectorClaims = `{"checksum":"f2b5dc0496437201d3cee156c233a1335603d465","checksum_sha256":"afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de","exp":1644500533,"iat":1644496933,"jti":"c82gg99hga35jc2afkeg"}`
)

func TestAppendDTReproducesTestVector(t *testing.T) {
	t.Parallel()
	got := AppendDT(nil, []byte(vectorSecret), []byte(vectorBody), time.Unix(vectorIat, 0), vectorJTI)
	if string(got) != vectorToken {
		t.Fatalf("token\n got %s\nwant %s", got, vectorToken)
	}
	claims, err := base64.RawURLEncoding.DecodeString(strings.Split(string(got), ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	if string(claims) != vectorClaims {
		t.Fatalf("claims\n got %s\nwant %s", claims, vectorClaims)
	}
}

func TestAppendDTAppends(t *testing.T) {
	t.Parallel()
	got := AppendDT([]byte("prefix:"), []byte(vectorSecret), []byte(vectorBody), time.Unix(vectorIat, 999e6), vectorJTI)
	if string(got) != "prefix:"+vectorToken {
		t.Fatalf("got %s", got)
	}
}

func TestVerifyDTAcceptsTestVector(t *testing.T) {
	t.Parallel()
	now := time.Unix(vectorIat+60, 0)
	claims, err := VerifyDT(vectorToken, []byte(vectorBody), [][]byte{[]byte(vectorSecret)}, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := DTClaims{
		Checksum:       "f2b5dc0496437201d3cee156c233a1335603d465",
		ChecksumSHA256: "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de",
		Exp:            1644500533,
		Iat:            vectorIat,
		JTI:            vectorJTI,
	}
	if *claims != want {
		t.Fatalf("claims %+v, want %+v", *claims, want)
	}
}

func TestVerifyDTAcceptsAnyRotatedSecret(t *testing.T) {
	t.Parallel()
	secrets := [][]byte{[]byte("new-secret"), []byte(vectorSecret)}
	if _, err := VerifyDT(vectorToken, []byte(vectorBody), secrets, time.Unix(vectorIat, 0), 0); err != nil {
		t.Fatal(err)
	}
}

// A token made by AppendDT is a standard JWT: golang-jwt verifies it.
func TestAppendDTInteroperatesWithGolangJWT(t *testing.T) {
	t.Parallel()
	secret := []byte("an interoperable secret")
	now := time.Now()
	token := string(AppendDT(nil, secret, []byte(vectorBody), now, "cv0k3a4hga35jc2afkeg"))

	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil {
		t.Fatalf("golang-jwt rejects the token: %v", err)
	}
	if parsed.Header["typ"] != "JWT" {
		t.Errorf("typ = %v", parsed.Header["typ"])
	}
	if claims["jti"] != "cv0k3a4hga35jc2afkeg" || claims["checksum_sha256"] != "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de" {
		t.Errorf("claims %v", claims)
	}
	if exp, _ := claims.GetExpirationTime(); exp.Unix() != now.Unix()+3600 {
		t.Errorf("exp %v, want iat+3600", exp)
	}
}

// And a token made by golang-jwt with the same claims verifies with VerifyDT.
func TestVerifyDTAcceptsGolangJWTToken(t *testing.T) {
	t.Parallel()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"checksum_sha256": "afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de",
		"iat":             vectorIat,
		"exp":             vectorIat + 3600,
		"jti":             vectorJTI,
	})
	s, err := tok.SignedString([]byte(vectorSecret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDT(s, []byte(vectorBody), [][]byte{[]byte(vectorSecret)}, time.Unix(vectorIat, 0), 0); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyDTFailures(t *testing.T) {
	t.Parallel()
	secret := []byte(vectorSecret)
	body := []byte(vectorBody)
	iat := time.Unix(vectorIat, 0)
	valid := vectorToken
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString
	// sign signs header.claims as given, to build tokens AppendDT never makes.
	sign := func(header, claims string) string {
		signed := enc([]byte(header)) + "." + enc([]byte(claims))
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(signed))
		return signed + "." + enc(m.Sum(nil))
	}
	hs256 := `{"alg":"HS256","typ":"JWT"}`

	tests := []struct {
		name    string
		token   string
		body    []byte
		secrets [][]byte
		now     time.Time
		leeway  time.Duration
		want    error
		inMsg   string
	}{
		{name: "wrong secret", token: valid, secrets: [][]byte{[]byte("wrong")}, want: ErrSignature},
		{name: "none of the rotated secrets", token: valid, secrets: [][]byte{[]byte("a"), []byte("b")}, want: ErrSignature, inMsg: "none of 2"},
		{name: "no secret", token: valid, secrets: [][]byte{}, want: ErrNoSecret},
		{name: "tampered body", token: valid, body: append([]byte(vectorBody[:len(vectorBody)-2]), `x"}`...), want: ErrChecksum, inMsg: "checksum_sha256"},
		{name: "empty body", token: valid, body: []byte{}, want: ErrChecksum},
		{name: "expired", token: valid, now: iat.Add(time.Hour + time.Second), want: ErrExpired},
		{name: "expired beyond leeway", token: valid, now: iat.Add(time.Hour + time.Minute + time.Second), leeway: time.Minute, want: ErrExpired},
		{name: "issued in the future", token: valid, now: iat.Add(-time.Minute), leeway: 30 * time.Second, want: ErrNotYetValid},
		{name: "alg none", token: enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + ".", want: ErrAlgorithm, inMsg: `"none"`},
		{name: "alg HS512", token: sign(`{"alg":"HS512","typ":"JWT"}`, vectorClaims), want: ErrAlgorithm},
		{name: "alg missing", token: sign(`{"typ":"JWT"}`, vectorClaims), want: ErrAlgorithm},
		{name: "typ not JWT", token: sign(`{"alg":"HS256","typ":"JWE"}`, vectorClaims), want: ErrMalformed},
		{name: "tampered claims", token: parts[0] + "." + enc([]byte(strings.Replace(vectorClaims, "1644500533", "1944500533", 1))) + "." + parts[2], want: ErrSignature},
		{name: "two parts", token: parts[0] + "." + parts[1], want: ErrMalformed},
		{name: "four parts", token: valid + ".x", want: ErrMalformed},
		{name: "empty", token: "", want: ErrMalformed},
		{name: "header not base64", token: "!!." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "header not JSON", token: enc([]byte("HS256")) + "." + parts[1] + "." + parts[2], want: ErrMalformed},
		{name: "signature short", token: parts[0] + "." + parts[1] + ".abc", want: ErrSignature},
		{name: "signature not base64", token: parts[0] + "." + parts[1] + "." + strings.Repeat("*", 43), want: ErrMalformed},
		{name: "claims not JSON", token: sign(hs256, "not json"), want: ErrMalformed},
		{name: "exp a string", token: sign(hs256, `{"checksum_sha256":"x","exp":"soon","iat":1644496933}`), want: ErrMalformed},
		{name: "exp missing", token: sign(hs256, `{"checksum_sha256":"afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de","iat":1644496933}`), want: ErrMissingClaims, inMsg: "exp"},
		{name: "iat missing", token: sign(hs256, `{"checksum_sha256":"afd81a16bb9c076e57f92728f284ff55831bfdf1d3c2c10b833567f521d782de","exp":1644500533}`), want: ErrMissingClaims, inMsg: "iat"},
		{name: "checksum_sha256 missing", token: sign(hs256, `{"exp":1644500533,"iat":1644496933}`), want: ErrMissingClaims, inMsg: "checksum_sha256"},
		{name: "sha1 checksum wrong", token: sign(hs256, strings.Replace(vectorClaims, `"checksum":"f`, `"checksum":"0`, 1)), want: ErrChecksum, inMsg: "SHA-1"},
		{name: "too long", token: valid + strings.Repeat("a", maxTokenLen), want: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, secrets, now := body, [][]byte{secret}, iat
			if tt.body != nil {
				b = tt.body
			}
			if tt.secrets != nil {
				secrets = tt.secrets
			}
			if !tt.now.IsZero() {
				now = tt.now
			}
			claims, err := VerifyDT(tt.token, b, secrets, now, tt.leeway)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if claims != nil {
				t.Errorf("claims %+v returned with an error", claims)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("err %q does not say %q", err, tt.inMsg)
			}
		})
	}
}

func TestVerifyDTLeeway(t *testing.T) {
	t.Parallel()
	secrets := [][]byte{[]byte(vectorSecret)}
	tests := []struct {
		name string
		now  time.Time
	}{
		{"at iat", time.Unix(vectorIat, 0)},
		{"at exp", time.Unix(vectorIat+3600, 0)},
		{"just after exp, within leeway", time.Unix(vectorIat+3600+59, 0)},
		{"just before iat, within leeway", time.Unix(vectorIat-59, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := VerifyDT(vectorToken, []byte(vectorBody), secrets, tt.now, time.Minute); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHMACMatchesCryptoHMAC(t *testing.T) {
	t.Parallel()
	msg := bytes.Repeat([]byte("0123456789abcdef"), 64)
	for _, keyLen := range []int{0, 1, 11, 63, 64, 65, 200} {
		key := bytes.Repeat([]byte{'k'}, keyLen)
		for msgLen := 0; msgLen <= len(msg); msgLen += 7 {
			m := hmac.New(sha256.New, key)
			m.Write(msg[:msgLen])
			got := hmacSHA256(key, msg[:msgLen])
			if !bytes.Equal(got[:], m.Sum(nil)) {
				t.Fatalf("key %d bytes, msg %d bytes: HMAC differs from crypto/hmac", keyLen, msgLen)
			}
		}
	}
}

func TestAppendDTEscapesJTI(t *testing.T) {
	t.Parallel()
	jti := "a\"b\\c\nd"
	token := string(AppendDT(nil, []byte("s"), []byte("{}"), time.Unix(vectorIat, 0), jti))
	claims, err := VerifyDT(token, []byte("{}"), [][]byte{[]byte("s")}, time.Unix(vectorIat, 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	if claims.JTI != jti {
		t.Fatalf("jti %q, want %q", claims.JTI, jti)
	}
}

func TestAppendDTAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 512)
	secret, body := []byte(vectorSecret), []byte(vectorBody)
	iat := time.Unix(vectorIat, 0)
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendDT(buf[:0], secret, body, iat, vectorJTI)
	})
	if allocs != 0 {
		t.Fatalf("AppendDT allocates %v times per token", allocs)
	}
}

func BenchmarkAppendDT(b *testing.B) {
	buf := make([]byte, 0, 512)
	secret, body := []byte(vectorSecret), []byte(vectorBody)
	iat := time.Unix(vectorIat, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		buf = AppendDT(buf[:0], secret, body, iat, vectorJTI)
	}
}

func BenchmarkVerifyDT(b *testing.B) {
	secrets, body := [][]byte{[]byte(vectorSecret)}, []byte(vectorBody)
	now := time.Unix(vectorIat, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyDT(vectorToken, body, secrets, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}
