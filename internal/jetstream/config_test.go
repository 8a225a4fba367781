package jetstream

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

func TestRetrySetUp(t *testing.T) {
	t.Parallel()
	noPlacement := &jetstream.APIError{Code: 400, ErrorCode: jsErrNoPlacement, Description: "no suitable peers for placement"}
	notFound := &jetstream.APIError{Code: 404, ErrorCode: jetstream.JSErrCodeStreamNotFound, Description: "stream not found"}
	tests := []struct {
		name      string
		errs      []error // what each try returns, then success
		wantTries int
		wantErr   error
	}{
		{"at once", nil, 1, nil},
		{"a cluster still forming", []error{noPlacement, noPlacement}, 3, nil},
		{"a leader election", []error{&jetstream.APIError{Code: 503, Description: "JetStream system temporarily unavailable"}}, 2, nil},
		{"for good", []error{notFound, nil}, 1, notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tries := 0
			got, err := retrySetUp(context.Background(), func() (int, error) {
				tries++
				if tries <= len(tt.errs) && tt.errs[tries-1] != nil {
					return 0, tt.errs[tries-1]
				}
				return 42, nil
			})
			if tries != tt.wantTries || !errors.Is(err, tt.wantErr) || err == nil && got != 42 {
				t.Errorf("%d tries, %d, %v; want %d tries and %v", tries, got, err, tt.wantTries, tt.wantErr)
			}
		})
	}
	t.Run("until the context ends", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		tries := 0
		_, err := retrySetUp(ctx, func() (int, error) {
			tries++
			if tries == 2 {
				cancel()
			}
			return 0, noPlacement
		})
		if !errors.Is(err, noPlacement) || tries != 2 {
			t.Errorf("%d tries, %v; want 2 tries and the placement error", tries, err)
		}
	})
}
