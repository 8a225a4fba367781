package dcon

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// fastNow is the clock of the fast path's tests.
var fastNow = time.Date(2022, 2, 10, 12, 42, 13, 313949000, time.UTC)

// fastSeeds are inputs the fast path must take, with their type.
var fastSeeds = []struct {
	typ EventType
	raw string
}{
	{EventTemperature, `{"value":21.5}`},
	{EventTemperature, ` { "value" : -0 , "isBackfilled" : true , "updateTime" : "2019-05-16T08:15:18.318751+02:00" } `},
	{EventTemperature, `{"value":1e21,"samples":null,"isBackfilled":null}`},
	{EventTemperature, `{"value":0.000000123E+2,"updateTime":null}`},
	{EventTemperature, `{"value":1e-7}`},
	{EventTouch, `{}`},
	{EventTouch, `{"updateTime":"2022-02-10T12:42:13.3Z"}`},
	{EventObjectPresent, `{"state":"PRESENT"}`},
	{EventHumidity, `{"temperature":22.25,"relativeHumidity":100}`},
	{EventObjectPresentCount, `{"total":5.0}`},
	{EventTouchCount, `{"total":9007199254740992}`},
	{EventWaterPresent, `{"state":"NOT_PRESENT","updateTime":"2022-02-10T12:42:13Z"}`},
	{EventCO2, `{"ppm":526}`},
	{EventPressure, `{"pascal":101325.5}`},
	{EventMotion, `{"state":"MOTION_DETECTED"}`},
	{EventContact, `{"state":"OPEN"}`},
	{EventProbeWireStatus, `{"state":"FOUR_WIRE"}`},
	{EventProbeWireStatus, `{"state":"INVALID_COEFFICIENT_CONFIGURATION","updateTime":"2022-02-10T12:42:13.123456789-23:59"}`},
	{EventHumidity, `{"temperature":-1.2345678901234567e-300,"relativeHumidity":99.99999999999999,"isBackfilled":true,"updateTime":"9999-12-31T23:59:59.999999Z"}`},
	{EventBatteryStatus, `{"percentage":1e2}`},
}

// TestFastEventData checks that the fast path takes the common inputs of every
// type it serves, and answers what the general path does.
func TestFastEventData(t *testing.T) {
	t.Parallel()
	for _, tc := range fastSeeds {
		t.Run(string(tc.typ)+tc.raw, func(t *testing.T) {
			t.Parallel()
			got, ok := fastEventData(tc.typ, []byte(tc.raw), fastNow)
			if !ok {
				t.Fatal("the fast path declined")
			}
			want, err := parseEventData(tc.typ, []byte(tc.raw), fastNow)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("\nfast    %s\ngeneral %s", got, want)
			}
			if n := fastLen(tc.typ, fastFields(tc.typ)); len(got) > n {
				t.Errorf("%d bytes, over fastLen's %d", len(got), n)
			}
		})
	}
}

// TestFastEventDataDeclines checks that the fast path leaves to the general
// path whatever it is not sure of, refusals first of all.
func TestFastEventDataDeclines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ EventType
		raw string
	}{
		{EventTemperature, `{}`},                               // required
		{EventTemperature, `{"value":1,"value":2}`},            // repeated key
		{EventTemperature, `{"value":1,"samples":[]}`},         // not a scalar
		{EventTemperature, `{"value":"1"}`},                    // not a number
		{EventTemperature, `{"value":1e400}`},                  // not finite
		{EventTemperature, `{"value":01}`},                     // not JSON
		{EventTemperature, `{"value":1,}`},                     // not JSON
		{EventTemperature, `{"value":1} x`},                    // trailing data
		{EventTemperature, `{"Value":1}`},                      // unknown field
		{EventTemperature, `{"value":1,"isBackfilled":1}`},     // not a boolean
		{EventTemperature, `{"value":1,"updateTime":"now"}`},   // not a time
		{EventTemperature, `{"valu\u0065":1}`},                 // escaped key
		{EventObjectPresent, `{"state":"present"}`},            // not one of the values
		{EventBatteryStatus, `{"percentage":101}`},             // out of range
		{EventBatteryStatus, `{"percentage":1.5}`},             // not an integer
		{EventNetworkStatus, `{"signalStrength":1,"rssi":1}`},  // not a type of the fast path
		{EventLabelsChanged, `{}`},                             // cannot be published
		{EventTouch, `{"updateTime":"2022-02-10T12:42:13Z"}}`}, // not JSON
		{EventTouch, `[]`},
	} {
		if out, ok := fastEventData(tc.typ, []byte(tc.raw), fastNow); ok {
			t.Errorf("%s %s: the fast path took it: %s", tc.typ, tc.raw, out)
		}
	}
}

// FuzzFastEventData checks that the fast path answers exactly what the general
// path does for every input it takes.
func FuzzFastEventData(f *testing.F) {
	for _, tc := range fastSeeds {
		f.Add(string(tc.typ), []byte(tc.raw))
	}
	f.Add("temperature", []byte(`{"value":1,"value":2}`))
	f.Add("humidity", []byte(`{"temperature":-1.5e-300,"relativeHumidity":0,"isBackfilled":false}`))
	f.Fuzz(func(t *testing.T, typ string, raw []byte) {
		got, ok := fastEventData(EventType(typ), raw, fastNow)
		if !ok {
			return
		}
		want, err := parseEventData(EventType(typ), raw, fastNow)
		if err != nil {
			t.Fatalf("the fast path took %s, which the general path refuses: %v", raw, err)
		}
		if string(got) != string(want) {
			t.Fatalf("%s\nfast    %s\ngeneral %s", raw, got, want)
		}
	})
}

// TestAppendFloat checks appendFloat against encoding/json's float64
// encoding, as the general path writes it.
func TestAppendFloat(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	values := []float64{0, math.Copysign(0, -1), 1, -1, 21.5, 1e20, 1e21, 1e-6, 1e-7, 9.999e-7, 123456789e300, math.MaxFloat64, math.SmallestNonzeroFloat64}
	for range 2000 {
		values = append(values, math.Float64frombits(r.Uint64()), r.NormFloat64()*math.Pow(10, float64(r.IntN(60)-30)))
	}
	for _, f := range values {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		var buf []byte
		want, err := encodeFloat(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendFloat(buf, f); string(got) != want {
			t.Errorf("%v: got %s, want %s", f, got, want)
		}
	}
}

func encodeFloat(f float64) (string, error) {
	out, err := wrapEventData("co2", f)
	if err != nil {
		return "", err
	}
	return string(out[len(`{"co2":`) : len(out)-1]), nil
}

// TestAppendTime checks AppendTime against time.AppendFormat.
func TestAppendTime(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	times := []time.Time{
		{}, fastNow, fastNow.In(time.FixedZone("x", -23*3600-59*60)),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 999, time.UTC),
	}
	for range 2000 {
		times = append(times, time.Unix(r.Int64N(400_000_000_000)-200_000_000_000, r.Int64N(1e9)))
	}
	for _, tm := range times {
		want := tm.UTC().AppendFormat(nil, TimeLayout)
		if got := AppendTime(nil, tm); string(got) != string(want) {
			t.Errorf("%v: got %s, want %s", tm, got, want)
		}
	}
}

// TestAppendQuote checks appendQuote against strconv.AppendQuote.
func TestAppendQuote(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "c14u9p094l47cdv1o3pg", "projects/p/devices/emu1", `a"b`, `a\b`, "\x00", "\x7f", "é", "\xff", "\u2028"} {
		if got, want := appendQuote(nil, s), strconv.AppendQuote(nil, s); string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}
