package receiver_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"dcon"
	"dcon/receiver"
)

var updateTime = time.Date(2022, 2, 10, 12, 42, 13, 313949000, time.UTC)

// body renders an event the way dcon sends it: the data made by dcon's own
// ParseEventData (or LabelsChangedData), the envelope by Event.AppendJSON.
func body(t *testing.T, typ dcon.EventType, publish string) []byte {
	t.Helper()
	var data []byte
	if typ == dcon.EventLabelsChanged {
		data, _ = dcon.LabelsChangedData(map[string]string{"name": "a", "old": "x"}, map[string]string{"name": "b", "new": "y"})
	} else {
		var err error
		if data, err = dcon.ParseEventData(typ, []byte(publish), updateTime); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
	}
	ev := dcon.Event{ID: "c82gg9catj3vmh4248og", TargetName: "projects/p/devices/d", Type: typ, Data: data, Timestamp: updateTime}
	b := []byte(`{"event":`)
	b = ev.AppendJSON(b)
	return append(b, `,"labels":{"name":"office"},"metadata":{"deviceId":"d","projectId":"p","deviceType":"ccon","productNumber":""}}`...)
}

// Every event type dcon sends decodes into its typed data, through its helper.
func TestParseEventAllTypes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ     dcon.EventType
		publish string
		want    any
		get     func(*receiver.Event) (any, bool)
	}{
		{dcon.EventTouch, `{}`, &receiver.TouchData{UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.Touch() }},
		{dcon.EventTemperature, `{"value":24.9}`, &receiver.TemperatureData{Value: 24.9, UpdateTime: updateTime, Samples: []receiver.TemperatureSample{{Value: 24.9, SampleTime: updateTime}}},
			func(e *receiver.Event) (any, bool) { return e.Temperature() }},
		{dcon.EventObjectPresent, `{"state":"PRESENT"}`, &receiver.ObjectPresentData{State: "PRESENT", UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.ObjectPresent() }},
		{dcon.EventHumidity, `{"temperature":21.5,"relativeHumidity":40,"isBackfilled":true}`, &receiver.HumidityData{Temperature: 21.5, RelativeHumidity: 40, IsBackfilled: true, UpdateTime: updateTime, Samples: []receiver.HumiditySample{{Temperature: 21.5, RelativeHumidity: 40, SampleTime: updateTime}}},
			func(e *receiver.Event) (any, bool) { return e.Humidity() }},
		{dcon.EventObjectPresentCount, `{"total":7}`, &receiver.ObjectPresentCountData{Total: 7, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.ObjectPresentCount() }},
		{dcon.EventTouchCount, `{"total":3}`, &receiver.TouchCountData{Total: 3, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.TouchCount() }},
		{dcon.EventWaterPresent, `{"state":"NOT_PRESENT"}`, &receiver.WaterPresentData{State: "NOT_PRESENT", UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.WaterPresent() }},
		{dcon.EventCO2, `{"ppm":526}`, &receiver.CO2Data{PPM: 526, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.CO2() }},
		{dcon.EventPressure, `{"pascal":101325.5}`, &receiver.PressureData{Pascal: 101325.5, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.Pressure() }},
		{dcon.EventMotion, `{"state":"MOTION_DETECTED"}`, &receiver.MotionData{State: "MOTION_DETECTED", UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.Motion() }},
		{dcon.EventDeskOccupancy, `{"state":"OCCUPIED","remarks":["INCOMPLETE_DATA"]}`, &receiver.DeskOccupancyData{State: "OCCUPIED", Remarks: []string{"INCOMPLETE_DATA"}, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.DeskOccupancy() }},
		{dcon.EventContact, `{"state":"OPEN"}`, &receiver.ContactData{State: "OPEN", UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.Contact() }},
		{dcon.EventProbeWireStatus, `{"state":"FOUR_WIRE"}`, &receiver.ProbeWireStatusData{State: "FOUR_WIRE", UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.ProbeWireStatus() }},
		{dcon.EventBatteryStatus, `{"percentage":87}`, &receiver.BatteryStatusData{Percentage: 87, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.BatteryStatus() }},
		{dcon.EventNetworkStatus, `{"signalStrength":45,"rssi":-83,"cloudConnectors":[{"id":"bdkjbo2v0000uk377c4g","signalStrength":45,"rssi":-83}],"transmissionMode":"HIGH_POWER_BOOST_MODE"}`,
			&receiver.NetworkStatusData{SignalStrength: 45, RSSI: -83, UpdateTime: updateTime, CloudConnectors: []receiver.CloudConnector{{ID: "bdkjbo2v0000uk377c4g", SignalStrength: 45, RSSI: -83}}, TransmissionMode: "HIGH_POWER_BOOST_MODE"},
			func(e *receiver.Event) (any, bool) { return e.NetworkStatus() }},
		{dcon.EventLabelsChanged, "", &receiver.LabelsChangedData{Added: map[string]string{"new": "y"}, Modified: map[string]string{"name": "b"}, Removed: []string{"old"}},
			func(e *receiver.Event) (any, bool) { return e.LabelsChanged() }},
		{dcon.EventConnectionStatus, `{"connection":"CELLULAR","available":["CELLULAR","ETHERNET"]}`, &receiver.ConnectionStatusData{Connection: "CELLULAR", Available: []string{"CELLULAR", "ETHERNET"}, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.ConnectionStatus() }},
		{dcon.EventEthernetStatus, `{"macAddress":"f0:b5:b7:00:0a:08","ipAddress":"10.0.0.1","errors":[{"code":7,"message":"dhcp"},{"code":"E2","message":"link"}]}`,
			&receiver.EthernetStatusData{MACAddress: "f0:b5:b7:00:0a:08", IPAddress: "10.0.0.1", Errors: []receiver.DeviceError{{Code: "7", Message: "dhcp"}, {Code: "E2", Message: "link"}}, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.EthernetStatus() }},
		{dcon.EventCellularStatus, `{"signalStrength":80}`, &receiver.CellularStatusData{SignalStrength: 80, Errors: []receiver.DeviceError{}, UpdateTime: updateTime},
			func(e *receiver.Event) (any, bool) { return e.CellularStatus() }},
	}
	if len(tests) != len(dcon.EventTypes) {
		t.Fatalf("%d cases for %d event types", len(tests), len(dcon.EventTypes))
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			t.Parallel()
			b := body(t, tt.typ, tt.publish)
			ev, err := receiver.ParseEvent(b)
			if err != nil {
				t.Fatalf("ParseEvent(%s): %v", b, err)
			}
			if ev.EventType != receiver.EventType(tt.typ) || ev.EventID != "c82gg9catj3vmh4248og" || ev.TargetName != "projects/p/devices/d" || !ev.Timestamp.Equal(updateTime) {
				t.Errorf("envelope %+v", ev)
			}
			if ev.Labels["name"] != "office" || ev.Metadata != (receiver.Metadata{DeviceID: "d", ProjectID: "p", DeviceType: "ccon"}) {
				t.Errorf("labels %v, metadata %+v", ev.Labels, ev.Metadata)
			}
			got, ok := tt.get(ev)
			if !ok {
				t.Fatalf("helper says no; Data is %T", ev.Data)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("data\n got %+v\nwant %+v\nfrom %s", got, tt.want, b)
			}
			if _, ok := ev.Touch(); ok != (tt.typ == dcon.EventTouch) {
				t.Errorf("Touch() ok = %v for a %s event", ok, tt.typ)
			}
		})
	}
}

// The contract's own examples decode.
func TestParseEventContractExamples(t *testing.T) {
	t.Parallel()
	ev, err := receiver.ParseEvent([]byte(vectorBody))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := ev.Touch(); !ok || !d.UpdateTime.Equal(updateTime) {
		t.Errorf("touch %+v", ev.Data)
	}
	env := `{"event":{"eventId":"e","targetName":"t","eventType":"%s","data":%s,"timestamp":"2019-05-16T08:15:18.318751Z"}}`
	for typ, data := range map[string]string{
		"temperature":   `{"temperature": {"value": 24.9, "isBackfilled": false, "samples": [{"value": 24.9, "sampleTime": "2019-05-16T08:15:18.318751Z"}], "updateTime": "2019-05-16T08:15:18.318751Z"}}`,
		"networkStatus": `{"networkStatus": {"signalStrength": 45, "rssi": -83, "updateTime": "2019-05-16T08:21:21.076013Z", "cloudConnectors": [{"id": "bdkjbo2v0000uk377c4g", "signalStrength": 45, "rssi": -83}], "transmissionMode": "LOW_POWER_STANDARD_MODE"}}`,
		"co2":           `{"co2": {"ppm": 526, "updateTime": "2022-01-27T15:50:34.471000Z"}}`,
	} {
		ev, err := receiver.ParseEvent([]byte(strings.Replace(strings.Replace(env, "%s", typ, 1), "%s", data, 1)))
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if ev.Labels == nil {
			t.Errorf("%s: nil labels", typ)
		}
	}
}

func TestParseEventUnknownType(t *testing.T) {
	t.Parallel()
	ev, err := receiver.ParseEvent([]byte(`{"event":{"eventId":"e","eventType":"sound","data":{"sound":{"db":40}},"timestamp":"2022-02-10T12:42:13Z"},"future":1}`))
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := ev.Data.(json.RawMessage)
	if !ok || string(raw) != `{"sound":{"db":40}}` {
		t.Fatalf("Data %T %s, want the raw data", ev.Data, raw)
	}
}

func TestParseEventRejects(t *testing.T) {
	t.Parallel()
	env := func(eventID, eventType, data, ts string) string {
		return `{"event":{"eventId":"` + eventID + `","eventType":"` + eventType + `","data":` + data + `,"timestamp":"` + ts + `"}}`
	}
	const ts = "2022-02-10T12:42:13.313949Z"
	tests := []struct{ name, body, inMsg string }{
		{"not JSON", "{", "unexpected end"},
		{"array", "[]", "cannot unmarshal"},
		{"no event", `{"labels":{}}`, "no event member"},
		{"no eventId", env("", "touch", `{"touch":{}}`, ts), "no eventId"},
		{"no eventType", env("e", "", `{"touch":{}}`, ts), "no eventType"},
		{"data not an object", env("e", "touch", `[]`, ts), "data is not an object"},
		{"data missing its type", env("e", "touch", `{"motion":{}}`, ts), "data.touch is not an object"},
		{"data of the wrong shape", env("e", "temperature", `{"temperature":{"value":"hot"}}`, ts), "data.temperature"},
		{"bad timestamp", env("e", "touch", `{"touch":{}}`, "yesterday"), "timestamp"},
		{"bad updateTime", env("e", "touch", `{"touch":{"updateTime":"noon"}}`, ts), "data.touch"},
		{"error code an object", env("e", "cellularStatus", `{"cellularStatus":{"errors":[{"code":{}}]}}`, ts), "string or a number"},
		{"labels not strings", `{"event":{"eventId":"e","eventType":"touch","data":{"touch":{}},"timestamp":"` + ts + `"},"labels":{"a":1}}`, "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev, err := receiver.ParseEvent([]byte(tt.body))
			if !errors.Is(err, receiver.ErrEvent) || ev != nil {
				t.Fatalf("ParseEvent = %+v, %v; want ErrEvent", ev, err)
			}
			if !strings.Contains(err.Error(), tt.inMsg) {
				t.Errorf("err %q does not say %q", err, tt.inMsg)
			}
		})
	}
}
