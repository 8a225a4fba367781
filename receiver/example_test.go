package receiver_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"dcon/receiver"
)

// A request signed by dcon, with the connector's signatureSecret "test-secret":
// the test vector of the Data Connector contract.
const (
	exampleBody      = `{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}`
	exampleSignature = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGVja3N1bSI6ImYyYjVkYzA0OTY0MzcyMDFkM2NlZTE1NmMyMzNhMTMzNTYwM2Q0NjUiLCJjaGVja3N1bV9zaGEyNTYiOiJhZmQ4MWExNmJiOWMwNzZlNTdmOTI3MjhmMjg0ZmY1NTgzMWJmZGYxZDNjMmMxMGI4MzM1NjdmNTIxZDc4MmRlIiwiZXhwIjoxNjQ0NTAwNTMzLCJpYXQiOjE2NDQ0OTY5MzMsImp0aSI6ImM4MmdnOTloZ2EzNWpjMmFma2VnIn0.gm8m_HrhlOnAyS08CfR_RNYdZQIpGV6E8bk3UiAR3uo"
)

// exampleNow is a time within the example token's lifetime. A real receiver
// leaves Config.Now unset.
func exampleNow() time.Time { return time.Unix(1644496933, 0).Add(time.Minute) }

func ExampleVerifier_Verify() {
	v, err := receiver.NewVerifier(receiver.Config{
		Secrets: []string{"test-secret"},
		Now:     exampleNow,
	})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/dcon", strings.NewReader(exampleBody))
	r.Header.Set("X-Dt-Signature", exampleSignature)

	body, _ := io.ReadAll(r.Body) // the exact bytes: verify before parsing
	fmt.Println(v.Verify(r, body))

	tampered := bytes.Replace(body, []byte(`"name":"touch"`), []byte(`"name":"other"`), 1)
	fmt.Println(v.Verify(r, tampered))
	// Output:
	// <nil>
	// X-Dt-Signature: body does not match its signature: checksum_sha256 does not match the body
}

func ExampleParseEvent() {
	ev, err := receiver.ParseEvent([]byte(`{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/p/devices/d","eventType":"temperature","data":{"temperature":{"value":24.9,"isBackfilled":false,"samples":[{"value":24.9,"sampleTime":"2019-05-16T08:15:18.318751Z"}],"updateTime":"2019-05-16T08:15:18.318751Z"}},"timestamp":"2019-05-16T08:15:18.318751Z"},"labels":{"name":"office"},"metadata":{"deviceId":"d","projectId":"p","deviceType":"temperature","productNumber":""}}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.EventType, ev.EventID, ev.Labels["name"])
	if t, ok := ev.Temperature(); ok {
		fmt.Printf("%.1f °C at %s, %d sample(s)\n", t.Value, t.UpdateTime.Format(time.RFC3339), len(t.Samples))
	}
	// Output:
	// temperature c82gg9catj3vmh4248og office
	// 24.9 °C at 2019-05-16T08:15:18Z, 1 sample(s)
}

func ExampleMiddleware() {
	v, err := receiver.NewVerifier(receiver.Config{Secrets: []string{"test-secret"}, Now: exampleNow})
	if err != nil {
		panic(err)
	}
	seen := receiver.NewDedup(0)
	endpoint := httptest.NewServer(receiver.Middleware(v, 0, receiver.HandlerFunc(
		func(w http.ResponseWriter, r *http.Request, ev *receiver.Event) {
			if seen.Seen(ev.EventID) {
				fmt.Println("duplicate", ev.EventID)
				return // acknowledge it again, do nothing
			}
			if _, ok := ev.Touch(); ok {
				fmt.Println("touch on", ev.Metadata.DeviceID)
			}
		})))
	defer endpoint.Close()

	post := func(signature string) {
		req, _ := http.NewRequest(http.MethodPost, endpoint.URL, strings.NewReader(exampleBody))
		req.Header.Set("X-Dt-Signature", signature)
		resp, err := endpoint.Client().Do(req)
		if err != nil {
			panic(err)
		}
		reason, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(strings.TrimSpace(fmt.Sprint(resp.StatusCode, " ", string(reason))))
	}
	post(exampleSignature)
	post(exampleSignature) // a retry
	post("")
	// Output:
	// touch on emuc17m6d7lq0bgk44smcqg
	// 200
	// duplicate c82gg9catj3vmh4248og
	// 200
	// 401 X-Dt-Signature: signature missing
}

func ExampleDedup() {
	seen := receiver.NewDedup(10_000)
	for _, id := range []string{"c82gg9catj3vmh4248og", "c82gg9catj3vmh4248p0", "c82gg9catj3vmh4248og"} {
		fmt.Println(id, seen.Seen(id))
	}
	// Output:
	// c82gg9catj3vmh4248og false
	// c82gg9catj3vmh4248p0 false
	// c82gg9catj3vmh4248og true
}
