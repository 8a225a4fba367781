package dcon_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"dcon"
)

// eventDataNow is the clock of every test: 2022-02-10T12:42:13.313949Z, the time of the
// contract's touch example.
var eventDataNow = time.Date(2022, 2, 10, 12, 42, 13, 313949000, time.UTC)

const eventDataNowText = "2022-02-10T12:42:13.313949Z"

// TestParseEventDataTouchGolden reproduces the touch data of the contract's
// section 2 byte for byte.
func TestParseEventDataTouchGolden(t *testing.T) {
	t.Parallel()
	got, err := dcon.ParseEventData(dcon.EventTouch, []byte(`{"updateTime":"2022-02-10T12:42:13.313949Z"}`), time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestParseEventDataContractExamples parses the data examples of the
// contract's section 5 and gets them back unchanged.
func TestParseEventDataContractExamples(t *testing.T) {
	t.Parallel()
	examples := []string{
		`{"temperature": {"value": 24.9, "isBackfilled": false, "samples": [{"value": 24.9, "sampleTime": "2019-05-16T08:15:18.318751Z"}], "updateTime": "2019-05-16T08:15:18.318751Z"}}`,
		`{"networkStatus": {"signalStrength": 45, "rssi": -83, "updateTime": "2019-05-16T08:21:21.076013Z", "cloudConnectors": [{"id": "bdkjbo2v0000uk377c4g", "signalStrength": 45, "rssi": -83}], "transmissionMode": "LOW_POWER_STANDARD_MODE"}}`,
		`{"co2": {"ppm": 526, "updateTime": "2022-01-27T15:50:34.471000Z"}}`,
	}
	for _, ex := range examples {
		var data map[dcon.EventType]json.RawMessage
		if err := json.Unmarshal([]byte(ex), &data); err != nil {
			t.Fatal(err)
		}
		for typ, raw := range data {
			got, err := dcon.ParseEventData(typ, raw, eventDataNow)
			if err != nil {
				t.Fatalf("%s: %v", typ, err)
			}
			if want := compactEventJSON(t, ex); string(got) != want {
				t.Errorf("%s:\ngot  %s\nwant %s", typ, got, want)
			}
		}
	}
}

// eventCases hold, for every publishable event type, a minimal input and a
// full one. want is the expected data member; "" means the input itself,
// wrapped in {"<type>": ...}, which full inputs are (they are canonical).
var eventCases = []struct {
	typ  dcon.EventType
	name string
	in   string
	want string
}{
	{dcon.EventTouch, "minimal", `{}`, `{"touch":{"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventTouch, "full", `{"updateTime":"2022-02-10T12:42:13.313949Z"}`, ""},

	{dcon.EventTemperature, "minimal", `{"value":23.0}`,
		`{"temperature":{"value":23,"isBackfilled":false,"samples":[{"value":23,"sampleTime":"` + eventDataNowText + `"}],"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventTemperature, "full", `{"value":24.9,"isBackfilled":true,"samples":[{"value":24.9,"sampleTime":"2019-05-16T08:15:18.318751Z"},{"value":-3.25,"sampleTime":"2019-05-16T08:14:18.000000Z"}],"updateTime":"2019-05-16T08:15:18.318751Z"}`, ""},

	{dcon.EventObjectPresent, "minimal", `{"state":"PRESENT"}`, `{"objectPresent":{"state":"PRESENT","updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventObjectPresent, "full", `{"state":"NOT_PRESENT","updateTime":"2021-01-01T00:00:00.000001Z"}`, ""},

	{dcon.EventHumidity, "minimal", `{"temperature":22.45,"relativeHumidity":17}`,
		`{"humidity":{"temperature":22.45,"relativeHumidity":17,"samples":[{"temperature":22.45,"relativeHumidity":17,"sampleTime":"` + eventDataNowText + `"}],"isBackfilled":false,"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventHumidity, "full", `{"temperature":22.45,"relativeHumidity":17.5,"samples":[{"temperature":22.45,"relativeHumidity":17.5,"sampleTime":"2021-03-13T16:05:21.692975Z"}],"isBackfilled":true,"updateTime":"2021-03-13T16:05:21.692975Z"}`, ""},

	{dcon.EventObjectPresentCount, "minimal", `{"total":0}`, `{"objectPresentCount":{"total":0,"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventObjectPresentCount, "full", `{"total":4711,"updateTime":"2021-03-13T16:05:21.692975Z"}`, ""},

	{dcon.EventTouchCount, "minimal", `{"total":12}`, `{"touchCount":{"total":12,"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventTouchCount, "full", `{"total":9007199254740992,"updateTime":"2021-03-13T16:05:21.692975Z"}`, ""},

	{dcon.EventWaterPresent, "minimal", `{"state":"NOT_PRESENT"}`, `{"waterPresent":{"state":"NOT_PRESENT","updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventWaterPresent, "full", `{"state":"PRESENT","updateTime":"2021-03-13T16:05:21.692975Z"}`, ""},

	{dcon.EventCO2, "minimal", `{"ppm":526}`, `{"co2":{"ppm":526,"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventCO2, "full", `{"ppm":526,"updateTime":"2022-01-27T15:50:34.471000Z"}`, ""},

	{dcon.EventPressure, "minimal", `{"pascal":101325}`, `{"pressure":{"pascal":101325,"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventPressure, "full", `{"pascal":98765.4,"updateTime":"2022-01-27T15:50:34.471000Z"}`, ""},

	{dcon.EventMotion, "minimal", `{"state":"MOTION_DETECTED"}`, `{"motion":{"state":"MOTION_DETECTED","updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventMotion, "full", `{"state":"NO_MOTION_DETECTED","updateTime":"2022-01-27T15:50:34.471000Z"}`, ""},

	{dcon.EventDeskOccupancy, "minimal", `{"state":"OCCUPIED"}`, `{"deskOccupancy":{"state":"OCCUPIED","remarks":[],"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventDeskOccupancy, "full", `{"state":"NOT_OCCUPIED","remarks":["INCORRECT_DETECTION","a<b&c"],"updateTime":"2022-01-27T15:50:34.471000Z"}`, ""},

	{dcon.EventContact, "minimal", `{"state":"OPEN"}`, `{"contact":{"state":"OPEN","updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventContact, "full", `{"state":"CLOSED","updateTime":"2022-01-27T15:50:34.471000Z"}`, ""},

	{dcon.EventProbeWireStatus, "minimal", `{"state":"TWO_WIRE"}`, `{"probeWireStatus":{"state":"TWO_WIRE","updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventProbeWireStatus, "full", `{"state":"INVALID_COEFFICIENT_CONFIGURATION","updateTime":"2022-01-27T15:50:34.471000Z"}`, ""},

	{dcon.EventBatteryStatus, "minimal", `{"percentage":100}`, `{"batteryStatus":{"percentage":100,"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventBatteryStatus, "full", `{"percentage":0,"updateTime":"2022-01-27T15:50:34.471000Z"}`, ""},

	{dcon.EventNetworkStatus, "minimal", `{"signalStrength":45,"rssi":-83}`,
		`{"networkStatus":{"signalStrength":45,"rssi":-83,"updateTime":"` + eventDataNowText + `","cloudConnectors":[],"transmissionMode":"LOW_POWER_STANDARD_MODE"}}`},
	{dcon.EventNetworkStatus, "full", `{"signalStrength":45,"rssi":-83,"updateTime":"2019-05-16T08:21:21.076013Z","cloudConnectors":[{"id":"bdkjbo2v0000uk377c4g","signalStrength":45,"rssi":-83},{"id":"bdkjbo2v0000uk377c50","signalStrength":10,"rssi":-101}],"transmissionMode":"HIGH_POWER_BOOST_MODE"}`, ""},
	{dcon.EventNetworkStatus, "python client alias", `{"signalStrength":45,"rssi":-83,"transmissionMode":"LOW_POWER_STANDARD_MODE","updateTime":"2019-05-16T08:21:21Z","cloud_connectors":[{"id":"bdkjbo2v0000uk377c4g","signalStrength":45}]}`,
		`{"networkStatus":{"signalStrength":45,"rssi":-83,"updateTime":"2019-05-16T08:21:21.000000Z","cloudConnectors":[{"id":"bdkjbo2v0000uk377c4g","signalStrength":45,"rssi":0}],"transmissionMode":"LOW_POWER_STANDARD_MODE"}}`},

	{dcon.EventConnectionStatus, "minimal", `{"connection":"OFFLINE"}`, `{"connectionStatus":{"connection":"OFFLINE","available":[],"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventConnectionStatus, "full", `{"connection":"CELLULAR","available":["ETHERNET","CELLULAR"],"updateTime":"2021-03-13T16:05:21.692975Z"}`, ""},

	{dcon.EventEthernetStatus, "minimal", `{}`, `{"ethernetStatus":{"macAddress":"","ipAddress":"","errors":[],"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventEthernetStatus, "full", `{"macAddress":"f0:b5:b7:00:0a:08","ipAddress":"10.0.0.1","errors":[{"code":404,"message":"Not found"},{"code":"UNAVAILABLE","message":""}],"updateTime":"2019-05-16T08:21:21.076013Z"}`, ""},

	{dcon.EventCellularStatus, "minimal", `{}`, `{"cellularStatus":{"signalStrength":0,"errors":[],"updateTime":"` + eventDataNowText + `"}}`},
	{dcon.EventCellularStatus, "full", `{"signalStrength":100,"errors":[{"code":3,"message":"no SIM card"}],"updateTime":"2021-03-13T16:05:23.230101Z"}`, ""},
}

func TestParseEventData(t *testing.T) {
	t.Parallel()
	for _, tc := range eventCases {
		t.Run(string(tc.typ)+"/"+tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := dcon.ParseEventData(tc.typ, []byte(tc.in), eventDataNow)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if want == "" {
				want = `{"` + string(tc.typ) + `":` + tc.in + `}`
			}
			if string(got) != want {
				t.Errorf("\ngot  %s\nwant %s", got, want)
			}
			assertReparses(t, tc.typ, got)
		})
	}
}

// TestParseEventDataCoversEveryType makes sure eventCases has a minimal and a
// full case of every publishable event type.
func TestParseEventDataCoversEveryType(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, tc := range eventCases {
		seen[string(tc.typ)+"/"+tc.name] = true
	}
	for _, typ := range dcon.EventTypes {
		if typ == dcon.EventLabelsChanged {
			continue
		}
		for _, name := range []string{"minimal", "full"} {
			if !seen[string(typ)+"/"+name] {
				t.Errorf("no %s case for %s", name, typ)
			}
		}
	}
}

// assertReparses checks that out, the output of ParseEventData for typ, is
// valid JSON with typ as its only key, and that parsing its inner value again
// gives the same bytes.
func assertReparses(t *testing.T, typ dcon.EventType, out []byte) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("output is not a JSON object: %v: %s", err, out)
	}
	inner, ok := m[string(typ)]
	if len(m) != 1 || !ok {
		t.Fatalf("output keys are not just %q: %s", typ, out)
	}
	again, err := dcon.ParseEventData(typ, inner, eventDataNow.Add(time.Hour))
	if err != nil {
		t.Fatalf("output does not parse again: %v: %s", err, out)
	}
	if !bytes.Equal(again, out) {
		t.Fatalf("output changes when parsed again:\nfirst  %s\nsecond %s", out, again)
	}
}

func TestParseEventDataTimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"offset converted to UTC", `{"updateTime":"2022-02-10T14:42:13.313949+02:00"}`, eventDataNowText},
		{"no fraction", `{"updateTime":"2022-02-10T12:42:13Z"}`, "2022-02-10T12:42:13.000000Z"},
		{"nanoseconds truncated", `{"updateTime":"2022-02-10T12:42:13.313949999Z"}`, eventDataNowText},
		{"null is absent", `{"updateTime":null}`, eventDataNowText},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := dcon.ParseEventData(dcon.EventTouch, []byte(tc.in), eventDataNow)
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"touch":{"updateTime":"` + tc.want + `"}}`; string(got) != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

// TestParseEventDataNowInUTC writes the default time in UTC whatever the
// location of eventDataNow.
func TestParseEventDataNowInUTC(t *testing.T) {
	t.Parallel()
	got, err := dcon.ParseEventData(dcon.EventTouch, []byte(`{}`), eventDataNow.In(time.FixedZone("CET", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"touch":{"updateTime":"` + eventDataNowText + `"}}`; string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestParseEventDataSampleDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		typ  dcon.EventType
		in   string
		want string
	}{
		{"sampleTime defaults to updateTime", dcon.EventTemperature,
			`{"value":1,"samples":[{"value":2}],"updateTime":"2020-01-01T00:00:00Z"}`,
			`{"temperature":{"value":1,"isBackfilled":false,"samples":[{"value":2,"sampleTime":"2020-01-01T00:00:00.000000Z"}],"updateTime":"2020-01-01T00:00:00.000000Z"}}`},
		{"empty samples are defaulted", dcon.EventTemperature, `{"value":-1.5,"samples":[]}`,
			`{"temperature":{"value":-1.5,"isBackfilled":false,"samples":[{"value":-1.5,"sampleTime":"` + eventDataNowText + `"}],"updateTime":"` + eventDataNowText + `"}}`},
		{"null samples are defaulted", dcon.EventTemperature, `{"value":0,"samples":null,"isBackfilled":null}`,
			`{"temperature":{"value":0,"isBackfilled":false,"samples":[{"value":0,"sampleTime":"` + eventDataNowText + `"}],"updateTime":"` + eventDataNowText + `"}}`},
		{"humidity sampleTime defaults to updateTime", dcon.EventHumidity,
			`{"temperature":20,"relativeHumidity":50,"samples":[{"temperature":21,"relativeHumidity":0}]}`,
			`{"humidity":{"temperature":20,"relativeHumidity":50,"samples":[{"temperature":21,"relativeHumidity":0,"sampleTime":"` + eventDataNowText + `"}],"isBackfilled":false,"updateTime":"` + eventDataNowText + `"}}`},
		{"integral floats are integers", dcon.EventBatteryStatus, `{"percentage":5e1}`,
			`{"batteryStatus":{"percentage":50,"updateTime":"` + eventDataNowText + `"}}`},
		{"white space around the object", dcon.EventContact, " \n\t{\"state\" : \"OPEN\"}\r\n",
			`{"contact":{"state":"OPEN","updateTime":"` + eventDataNowText + `"}}`},
		{"strings are not HTML-escaped", dcon.EventEthernetStatus, `{"macAddress":"<&>","errors":[{"code":"\u003c"}]}`,
			`{"ethernetStatus":{"macAddress":"<&>","ipAddress":"","errors":[{"code":"<","message":""}],"updateTime":"` + eventDataNowText + `"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := dcon.ParseEventData(tc.typ, []byte(tc.in), eventDataNow)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("\ngot  %s\nwant %s", got, tc.want)
			}
			assertReparses(t, tc.typ, got)
		})
	}
}

func TestParseEventDataInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  dcon.EventType
		in   string
		want string // the error message
	}{
		// Event types.
		{"foo", `{}`, `unknown event type "foo"`},
		{"", `{}`, `unknown event type ""`},
		{"Touch", `{}`, `unknown event type "Touch"`},
		{dcon.EventLabelsChanged, `{"added":{},"modified":{},"removed":[]}`, `labelsChanged: cannot be published; change the device's labels instead`},

		// Not an object.
		{dcon.EventTouch, ``, `touch: not valid JSON`},
		{dcon.EventTouch, `{`, `touch: not valid JSON`},
		{dcon.EventTouch, `{} {}`, `touch: not valid JSON`},
		{dcon.EventTouch, `{"updateTime":"x",}`, `touch: not valid JSON`},
		{dcon.EventTouch, `null`, `touch: must be an object`},
		{dcon.EventTouch, `[]`, `touch: must be an object`},
		{dcon.EventTouch, `"x"`, `touch: must be an object`},
		{dcon.EventTouch, `1`, `touch: must be an object`},

		// Unknown fields, case-sensitive names.
		{dcon.EventCO2, `{"ppmm":5}`, `co2: unknown field "ppmm"`},
		{dcon.EventCO2, `{"ppm":5,"z":1,"a":2}`, `co2: unknown field "a"`},
		{dcon.EventTemperature, `{"Value":1}`, `temperature: unknown field "Value"`},
		{dcon.EventTouch, `{"value":1}`, `touch: unknown field "value"`},
		{dcon.EventTemperature, `{"value":1,"samples":[{"value":1,"extra":true}]}`, `temperature.samples[0]: unknown field "extra"`},
		{dcon.EventTouch, `{"` + strings.Repeat("x", 100) + `":1}`, `touch: unknown field "` + strings.Repeat("x", 64) + `"...`},

		// Required fields.
		{dcon.EventTemperature, `{}`, `temperature.value: required`},
		{dcon.EventTemperature, `{"value":null}`, `temperature.value: required`},
		{dcon.EventHumidity, `{"temperature":1}`, `humidity.relativeHumidity: required`},
		{dcon.EventHumidity, `{"relativeHumidity":1}`, `humidity.temperature: required`},
		{dcon.EventObjectPresent, `{}`, `objectPresent.state: required`},
		{dcon.EventWaterPresent, `{}`, `waterPresent.state: required`},
		{dcon.EventMotion, `{}`, `motion.state: required`},
		{dcon.EventDeskOccupancy, `{}`, `deskOccupancy.state: required`},
		{dcon.EventContact, `{}`, `contact.state: required`},
		{dcon.EventProbeWireStatus, `{}`, `probeWireStatus.state: required`},
		{dcon.EventObjectPresentCount, `{}`, `objectPresentCount.total: required`},
		{dcon.EventTouchCount, `{"total":null}`, `touchCount.total: required`},
		{dcon.EventCO2, `{}`, `co2.ppm: required`},
		{dcon.EventPressure, `{}`, `pressure.pascal: required`},
		{dcon.EventBatteryStatus, `{}`, `batteryStatus.percentage: required`},
		{dcon.EventNetworkStatus, `{"rssi":-80}`, `networkStatus.signalStrength: required`},
		{dcon.EventNetworkStatus, `{"signalStrength":80}`, `networkStatus.rssi: required`},
		{dcon.EventConnectionStatus, `{}`, `connectionStatus.connection: required`},
		{dcon.EventTemperature, `{"value":1,"samples":[{"sampleTime":"2020-01-01T00:00:00Z"}]}`, `temperature.samples[0].value: required`},
		{dcon.EventNetworkStatus, `{"signalStrength":1,"rssi":1,"cloudConnectors":[{"signalStrength":1}]}`, `networkStatus.cloudConnectors[0].id: required`},
		{dcon.EventNetworkStatus, `{"signalStrength":1,"rssi":1,"cloudConnectors":[{"id":""}]}`, `networkStatus.cloudConnectors[0].id: must not be empty`},
		{dcon.EventEthernetStatus, `{"errors":[{"message":"x"}]}`, `ethernetStatus.errors[0].code: required`},

		// Wrong JSON types.
		{dcon.EventTemperature, `{"value":"23"}`, `temperature.value: must be a number`},
		{dcon.EventTemperature, `{"value":true}`, `temperature.value: must be a number`},
		{dcon.EventTemperature, `{"value":1,"isBackfilled":"false"}`, `temperature.isBackfilled: must be a boolean`},
		{dcon.EventTemperature, `{"value":1,"samples":{}}`, `temperature.samples: must be an array`},
		{dcon.EventTemperature, `{"value":1,"samples":[1]}`, `temperature.samples[0]: must be an object`},
		{dcon.EventTemperature, `{"value":1,"samples":[{"value":1},null]}`, `temperature.samples[1]: must be an object`},
		{dcon.EventTouch, `{"updateTime":1644496933}`, `touch.updateTime: not an RFC 3339 time`},
		{dcon.EventTouchCount, `{"total":"1"}`, `touchCount.total: must be an integer`},
		{dcon.EventTouchCount, `{"total":1.5}`, `touchCount.total: must be an integer`},
		{dcon.EventTouchCount, `{"total":1e300}`, `touchCount.total: must be an integer`},
		{dcon.EventMotion, `{"state":1}`, `motion.state: must be one of MOTION_DETECTED, NO_MOTION_DETECTED`},
		{dcon.EventDeskOccupancy, `{"state":"OCCUPIED","remarks":"x"}`, `deskOccupancy.remarks: must be an array`},
		{dcon.EventDeskOccupancy, `{"state":"OCCUPIED","remarks":["a",1]}`, `deskOccupancy.remarks[1]: must be a string`},
		{dcon.EventEthernetStatus, `{"macAddress":1}`, `ethernetStatus.macAddress: must be a string`},
		{dcon.EventEthernetStatus, `{"errors":[{"code":true}]}`, `ethernetStatus.errors[0].code: must be an integer or a string`},
		{dcon.EventEthernetStatus, `{"errors":[{"code":1.5}]}`, `ethernetStatus.errors[0].code: must be an integer`},
		{dcon.EventCellularStatus, `{"errors":[{"code":1,"message":2}]}`, `cellularStatus.errors[0].message: must be a string`},
		{dcon.EventNetworkStatus, `{"signalStrength":1,"rssi":1,"cloudConnectors":[{"id":5}]}`, `networkStatus.cloudConnectors[0].id: must be a string`},

		// Enumerations.
		{dcon.EventMotion, `{"state":"MOVING"}`, `motion.state: must be one of MOTION_DETECTED, NO_MOTION_DETECTED`},
		{dcon.EventObjectPresent, `{"state":"present"}`, `objectPresent.state: must be one of PRESENT, NOT_PRESENT`},
		{dcon.EventWaterPresent, `{"state":""}`, `waterPresent.state: must be one of PRESENT, NOT_PRESENT`},
		{dcon.EventDeskOccupancy, `{"state":"FREE"}`, `deskOccupancy.state: must be one of OCCUPIED, NOT_OCCUPIED`},
		{dcon.EventContact, `{"state":"AJAR"}`, `contact.state: must be one of OPEN, CLOSED`},
		{dcon.EventProbeWireStatus, `{"state":"ONE_WIRE"}`, `probeWireStatus.state: must be one of INVALID_WIRE_CONFIGURATION, INVALID_COEFFICIENT_CONFIGURATION, TWO_WIRE, THREE_WIRE, FOUR_WIRE`},
		{dcon.EventNetworkStatus, `{"signalStrength":1,"rssi":1,"transmissionMode":"TURBO"}`, `networkStatus.transmissionMode: must be one of LOW_POWER_STANDARD_MODE, HIGH_POWER_BOOST_MODE`},
		{dcon.EventConnectionStatus, `{"connection":"WIFI"}`, `connectionStatus.connection: must be one of ETHERNET, CELLULAR, OFFLINE`},
		{dcon.EventConnectionStatus, `{"connection":"OFFLINE","available":["ETHERNET","OFFLINE"]}`, `connectionStatus.available[1]: must be one of ETHERNET, CELLULAR`},

		// Times.
		{dcon.EventTouch, `{"updateTime":"yesterday"}`, `touch.updateTime: not an RFC 3339 time`},
		{dcon.EventTouch, `{"updateTime":"2022-02-10 12:42:13Z"}`, `touch.updateTime: not an RFC 3339 time`},
		{dcon.EventTouch, `{"updateTime":"2022-02-10T12:42:13"}`, `touch.updateTime: not an RFC 3339 time`},
		{dcon.EventTouch, `{"updateTime":"2022-02-10T12:42:13.5+0200"}`, `touch.updateTime: not an RFC 3339 time`},
		{dcon.EventTouch, `{"updateTime":"2022-02-30T12:42:13Z"}`, `touch.updateTime: not an RFC 3339 time`},
		{dcon.EventTouch, `{"updateTime":"0000-01-01T00:00:00+01:00"}`, `touch.updateTime: not an RFC 3339 time`},
		{dcon.EventTouch, `{"updateTime":"9999-12-31T23:00:00-01:00"}`, `touch.updateTime: not an RFC 3339 time`},
		{dcon.EventTemperature, `{"value":1,"samples":[{"value":1,"sampleTime":"2020-01-01T00:00:00Z"},{"value":2,"sampleTime":"eventDataNow"}]}`, `temperature.samples[1].sampleTime: not an RFC 3339 time`},
		{dcon.EventHumidity, `{"temperature":1,"relativeHumidity":1,"samples":[{"temperature":1,"relativeHumidity":1,"sampleTime":""}]}`, `humidity.samples[0].sampleTime: not an RFC 3339 time`},

		// Ranges and finiteness.
		{dcon.EventTemperature, `{"value":1e400}`, `temperature.value: must be a finite number`},
		{dcon.EventTemperature, `{"value":-1e400}`, `temperature.value: must be a finite number`},
		{dcon.EventHumidity, `{"temperature":1,"relativeHumidity":100.5}`, `humidity.relativeHumidity: must be between 0 and 100`},
		{dcon.EventHumidity, `{"temperature":1,"relativeHumidity":-1}`, `humidity.relativeHumidity: must be between 0 and 100`},
		{dcon.EventHumidity, `{"temperature":1,"relativeHumidity":1,"samples":[{"temperature":1,"relativeHumidity":101}]}`, `humidity.samples[0].relativeHumidity: must be between 0 and 100`},
		{dcon.EventBatteryStatus, `{"percentage":101}`, `batteryStatus.percentage: must be between 0 and 100`},
		{dcon.EventBatteryStatus, `{"percentage":-1}`, `batteryStatus.percentage: must be between 0 and 100`},
		{dcon.EventNetworkStatus, `{"signalStrength":101,"rssi":1}`, `networkStatus.signalStrength: must be between 0 and 100`},
		{dcon.EventCellularStatus, `{"signalStrength":-5}`, `cellularStatus.signalStrength: must be between 0 and 100`},
		{dcon.EventObjectPresentCount, `{"total":-1}`, `objectPresentCount.total: must not be below 0`},
		{dcon.EventTouchCount, `{"total":9007199254740993}`, `touchCount.total: must be an integer`},
		{dcon.EventCO2, `{"ppm":-0.5}`, `co2.ppm: must not be below 0`},
		{dcon.EventPressure, `{"pascal":-1}`, `pressure.pascal: must not be below 0`},

		// networkStatus alias.
		{dcon.EventNetworkStatus, `{"signalStrength":1,"rssi":1,"cloudConnectors":[],"cloud_connectors":[]}`, `networkStatus.cloud_connectors: conflicts with cloudConnectors`},
		{dcon.EventNetworkStatus, `{"signalStrength":1,"rssi":1,"cloud_connectors":[{}]}`, `networkStatus.cloud_connectors[0].id: required`},

		// Bounds.
		{dcon.EventTouch, `{"updateTime":"` + strings.Repeat(" ", 64<<10) + `"}`, `touch: event data over 65536 bytes`},
		{dcon.EventTemperature, `{"value":1,"samples":[` + strings.Repeat(`{"value":1},`, 1000) + `{"value":1}]}`, `temperature.samples: at most 1000 items`},
		{dcon.EventDeskOccupancy, `{"state":"OCCUPIED","remarks":[` + strings.Repeat(`"",`, 1000) + `""]}`, `deskOccupancy.remarks: at most 1000 items`},
		{dcon.EventEthernetStatus, `{"ipAddress":"` + strings.Repeat("1", 1025) + `"}`, `ethernetStatus.ipAddress: over 1024 bytes`},
	}
	for _, tc := range tests {
		name := string(tc.typ) + "/" + tc.in
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := dcon.ParseEventData(tc.typ, []byte(tc.in), eventDataNow)
			if err == nil {
				t.Fatalf("no error; got %s", got)
			}
			var e *dcon.Error
			if !errors.As(err, &e) || e.Code != dcon.EINVALID {
				t.Fatalf("error %v is not an *Error with code %q", err, dcon.EINVALID)
			}
			if e.Message != tc.want {
				t.Errorf("message\ngot  %s\nwant %s", e.Message, tc.want)
			}
		})
	}
}

// TestParseEventDataBounds accepts what is just inside the limits.
func TestParseEventDataBounds(t *testing.T) {
	t.Parallel()
	samples := `{"value":1,"samples":[` + strings.Repeat(`{"value":1},`, 999) + `{"value":1}]}`
	if _, err := dcon.ParseEventData(dcon.EventTemperature, []byte(samples), eventDataNow); err != nil {
		t.Errorf("1000 samples: %v", err)
	}
	padded := `{"updateTime":"2022-02-10T12:42:13.313949Z"}`
	padded += strings.Repeat(" ", dcon.MaxEventDataLen-len(padded))
	if _, err := dcon.ParseEventData(dcon.EventTouch, []byte(padded), eventDataNow); err != nil {
		t.Errorf("64 KiB: %v", err)
	}
}

func TestParseEventDataDeterministic(t *testing.T) {
	t.Parallel()
	in := []byte(`{"signalStrength":45,"rssi":-83,"cloudConnectors":[{"rssi":-83,"signalStrength":45,"id":"a"},{"id":"b"}],"transmissionMode":"HIGH_POWER_BOOST_MODE","updateTime":"2019-05-16T10:21:21.076013+02:00"}`)
	first, err := dcon.ParseEventData(dcon.EventNetworkStatus, in, eventDataNow)
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		got, err := dcon.ParseEventData(dcon.EventNetworkStatus, in, eventDataNow)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, first) {
			t.Fatalf("output varies:\n%s\n%s", first, got)
		}
	}
	// The error for several unknown fields does not depend on map order.
	for range 50 {
		_, err := dcon.ParseEventData(dcon.EventTouch, []byte(`{"c":1,"b":2,"a":3,"d":4}`), eventDataNow)
		if msg := dcon.ErrorMessage(err); msg != `touch: unknown field "a"` {
			t.Fatalf("got %q", msg)
		}
	}
}

// TestParseEventDataDoesNotKeepInput makes sure the output does not alias the
// caller's buffer, which the HTTP layer may reuse.
func TestParseEventDataDoesNotKeepInput(t *testing.T) {
	t.Parallel()
	in := []byte(`{"state":"NOT_OCCUPIED","remarks":["abc"]}`)
	got, err := dcon.ParseEventData(dcon.EventDeskOccupancy, in, eventDataNow)
	if err != nil {
		t.Fatal(err)
	}
	want := string(got)
	for i := range in {
		in[i] = 'x'
	}
	if string(got) != want {
		t.Errorf("output changed with the input: %s", got)
	}
}

func TestLabelsChangedData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		before, after map[string]string
		want          string // "" when nothing changed
	}{
		{"both nil", nil, nil, ""},
		{"nil and empty", nil, map[string]string{}, ""},
		{"equal", map[string]string{"a": "1", "b": ""}, map[string]string{"b": "", "a": "1"}, ""},
		{"added to nil", nil, map[string]string{"name": "touch"},
			`{"added":{"name":"touch"},"modified":{},"removed":[]}`},
		{"all removed", map[string]string{"b": "2", "a": "1"}, nil,
			`{"added":{},"modified":{},"removed":["a","b"]}`},
		{"modified", map[string]string{"a": "1"}, map[string]string{"a": "2"},
			`{"added":{},"modified":{"a":"2"},"removed":[]}`},
		{"modified to empty", map[string]string{"a": "1"}, map[string]string{"a": ""},
			`{"added":{},"modified":{"a":""},"removed":[]}`},
		{"everything, keys sorted",
			map[string]string{"keep": "k", "mod2": "x", "mod1": "x", "gone2": "g", "gone1": "g"},
			map[string]string{"keep": "k", "mod2": "y", "mod1": "z", "new2": "n", "new1": "m"},
			`{"added":{"new1":"m","new2":"n"},"modified":{"mod1":"z","mod2":"y"},"removed":["gone1","gone2"]}`},
		{"escaping", nil, map[string]string{`q"<&>`: "line\u2028é"},
			`{"added":{"q\"<&>":"line\u2028é"},"modified":{},"removed":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, changed := dcon.LabelsChangedData(tc.before, tc.after)
			if changed != (tc.want != "") {
				t.Fatalf("changed = %v, want %v", changed, tc.want != "")
			}
			if string(got) != tc.want {
				t.Errorf("\ngot  %s\nwant %s", got, tc.want)
			}
			if changed && !json.Valid(got) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

func FuzzParseEventData(f *testing.F) {
	for _, tc := range eventCases {
		f.Add(string(tc.typ), []byte(tc.in))
	}
	f.Add("touch", []byte(`{"updateTime":"0001-01-01T00:00:00-23:59"}`))
	f.Add("temperature", []byte(`{"value":1,"samples":[{"value":1e308},{"value":-0}]}`))
	f.Add("ethernetStatus", []byte(`{"errors":[{"code":"\ud800","message":"\xff"}]}`))
	f.Add("networkStatus", []byte(`{"signalStrength":1,"rssi":1,"cloud_connectors":null}`))
	f.Add("labelsChanged", []byte(`{}`))
	f.Add("foo", []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ string, raw []byte) {
		out, err := dcon.ParseEventData(dcon.EventType(typ), raw, eventDataNow)
		if err != nil {
			if code := dcon.ErrorCode(err); code != dcon.EINVALID {
				t.Fatalf("error code %q: %v", code, err)
			}
			return
		}
		assertReparses(t, dcon.EventType(typ), out)
	})
}

func BenchmarkParseEventDataTemperature(b *testing.B) {
	raw := []byte(`{"value":24.9,"updateTime":"2019-05-16T08:15:18.318751Z"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := dcon.ParseEventData(dcon.EventTemperature, raw, eventDataNow); err != nil {
			b.Fatal(err)
		}
	}
}

func compactEventJSON(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}
