package torture

import (
	"bytes"
	"net/http"
	"testing"
	"time"
)

// TestReceiverAccounting checks the suite's own receiver: what it records
// as answered 2xx must be exactly what a client that waits long enough gets
// as 2xx. The chaos stall was a receiver that broke this: a hang that
// outlasted itself ended with net/http's implicit 200, which dcon, late to
// its own 2 s deadline on a loaded machine, took as delivered (rightly),
// while the receiver had recorded a hang, so that the event looked lost.
func TestReceiverAccounting(t *testing.T) {
	t.Parallel()
	for _, a := range []action{answerOK, answer500, answer429, answer302, answerSlow, answerHang, answerReset, answerEndless} {
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(string, string, int) action { return a })
			rc.hang, rc.slow = 50*time.Millisecond, 10*time.Millisecond
			client := rc.Client()
			client.Timeout = 5 * time.Second // far longer than any answer takes here
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := client.Post(rc.tagURL("t"), "application/json", bytes.NewReader([]byte(`{"event":{"eventId":"e1"}}`)))
			got2xx := err == nil && resp.StatusCode >= 200 && resp.StatusCode <= 299
			if err == nil {
				resp.Body.Close()
			}
			if recorded := rc.deliveries("t")["e1"].ok == 1; recorded != got2xx {
				t.Errorf("the receiver recorded 2xx %v, the client got 2xx %v (%v)", recorded, got2xx, err)
			}
		})
	}
}
