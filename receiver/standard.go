package receiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers of a Standard Webhooks request.
const (
	StandardIDHeader        = "webhook-id"
	StandardTimestampHeader = "webhook-timestamp"
	StandardSignatureHeader = "webhook-signature"
)

// maxStandardHeader bounds the webhook-id and webhook-signature read.
const maxStandardHeader = 4096

// ParseWhsec returns the key of a Standard Webhooks secret: the base64 after
// "whsec_" (the prefix may be left out), 24 to 64 bytes.
func ParseWhsec(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil {
		return nil, fmt.Errorf("receiver: Standard Webhooks secret is not whsec_ and base64")
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("receiver: Standard Webhooks secret is %d bytes, want 24 to 64", len(key))
	}
	return key, nil
}

// verifyStandard checks a symmetric Standard Webhooks signature: the three
// headers are present, the timestamp is within tolerance of now either way,
// and one "v1,<base64>" signature of sigHeader is the HMAC-SHA256 of
// "<id>.<timestamp>.<body>" under one of keys.
func verifyStandard(id, timestamp, sigHeader string, body []byte, keys [][]byte, now time.Time, tolerance time.Duration) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: %s", ErrMissingSignature, StandardIDHeader)
	case timestamp == "":
		return fmt.Errorf("%w: %s", ErrMissingSignature, StandardTimestampHeader)
	case strings.TrimSpace(sigHeader) == "":
		return fmt.Errorf("%w: %s", ErrMissingSignature, StandardSignatureHeader)
	case len(id) > maxStandardHeader || len(sigHeader) > maxStandardHeader:
		return fmt.Errorf("%w: header longer than %d bytes", ErrMalformed, maxStandardHeader)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts < 0 || timestamp[0] == '+' {
		return fmt.Errorf("%w: %s %q is not Unix seconds", ErrMalformed, StandardTimestampHeader, clip(timestamp))
	}
	t := time.Unix(ts, 0)
	if now.Sub(t) > tolerance {
		return fmt.Errorf("%w: %s is more than %s old", ErrExpired, StandardTimestampHeader, tolerance)
	}
	if t.Sub(now) > tolerance {
		return fmt.Errorf("%w: %s is more than %s ahead", ErrNotYetValid, StandardTimestampHeader, tolerance)
	}

	macs := make([][]byte, len(keys))
	for i, key := range keys {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
		m.Write(body)
		macs[i] = m.Sum(nil)
	}
	for sig := range strings.FieldsSeq(sigHeader) {
		b64, ok := strings.CutPrefix(sig, "v1,")
		if !ok || len(b64) != base64.StdEncoding.EncodedLen(sha256.Size) {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(got) != sha256.Size {
			continue
		}
		for _, mac := range macs {
			if hmac.Equal(got, mac) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no v1 signature matches", ErrSignature)
}
