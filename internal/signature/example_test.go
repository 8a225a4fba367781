package signature_test

import (
	"fmt"
	"time"

	"dcon/internal/signature"
)

func ExampleAppendDT() {
	body := []byte(`{"event":{"eventId":"c82gg9catj3vmh4248og","targetName":"projects/c14u9p094l47cdv1o3pg/devices/emuc17m6d7lq0bgk44smcqg","eventType":"touch","data":{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}},"timestamp":"2022-02-10T12:42:13.313949Z"},"labels":{"name":"touch"},"metadata":{"deviceId":"emuc17m6d7lq0bgk44smcqg","projectId":"c14u9p094l47cdv1o3pg","deviceType":"touch","productNumber":""}}`)
	iat := time.Unix(1644496933, 0)

	token := signature.AppendDT(nil, []byte("test-secret"), body, iat, "c82gg99hga35jc2afkeg")
	fmt.Println(string(token))

	claims, err := signature.VerifyDT(string(token), body, [][]byte{[]byte("test-secret")}, iat.Add(time.Minute), 0)
	fmt.Println(claims.JTI, claims.Exp-claims.Iat, err)
	// Output:
	// eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJjaGVja3N1bSI6ImYyYjVkYzA0OTY0MzcyMDFkM2NlZTE1NmMyMzNhMTMzNTYwM2Q0NjUiLCJjaGVja3N1bV9zaGEyNTYiOiJhZmQ4MWExNmJiOWMwNzZlNTdmOTI3MjhmMjg0ZmY1NTgzMWJmZGYxZDNjMmMxMGI4MzM1NjdmNTIxZDc4MmRlIiwiZXhwIjoxNjQ0NTAwNTMzLCJpYXQiOjE2NDQ0OTY5MzMsImp0aSI6ImM4MmdnOTloZ2EzNWpjMmFma2VnIn0.gm8m_HrhlOnAyS08CfR_RNYdZQIpGV6E8bk3UiAR3uo
	// c82gg99hga35jc2afkeg 3600 <nil>
}
