package receiver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// EventType names the kind of an event, as in its "eventType" field.
type EventType string

// The 19 event types of the Data Connector contract.
const (
	EventTouch              EventType = "touch"
	EventTemperature        EventType = "temperature"
	EventObjectPresent      EventType = "objectPresent"
	EventHumidity           EventType = "humidity"
	EventObjectPresentCount EventType = "objectPresentCount"
	EventTouchCount         EventType = "touchCount"
	EventWaterPresent       EventType = "waterPresent"
	EventCO2                EventType = "co2"
	EventPressure           EventType = "pressure"
	EventMotion             EventType = "motion"
	EventDeskOccupancy      EventType = "deskOccupancy"
	EventContact            EventType = "contact"
	EventProbeWireStatus    EventType = "probeWireStatus"
	EventBatteryStatus      EventType = "batteryStatus"
	EventNetworkStatus      EventType = "networkStatus"
	EventLabelsChanged      EventType = "labelsChanged"
	EventConnectionStatus   EventType = "connectionStatus"
	EventEthernetStatus     EventType = "ethernetStatus"
	EventCellularStatus     EventType = "cellularStatus"
)

// Event is one event as a data connector receives it.
type Event struct {
	EventID    string    // the same on every delivery of the event: dedupe on it
	TargetName string    // "projects/{project}/devices/{device}"
	EventType  EventType // which of the *Data types Data holds
	Timestamp  time.Time // when the event happened; use it as a version, events may arrive out of order
	// Labels holds the device labels the connector asked for (never nil).
	Labels   map[string]string
	Metadata Metadata
	// Data is the event's data: a pointer to the *Data type of EventType
	// (*TemperatureData for "temperature", …), or, for an event type this
	// package does not know, the raw JSON of the event's "data" member as a
	// json.RawMessage. The helpers Touch, Temperature, … return it typed.
	Data any
}

// Metadata describes the device an event came from.
type Metadata struct {
	DeviceID      string `json:"deviceId"`
	ProjectID     string `json:"projectId"`
	DeviceType    string `json:"deviceType"`    // the device's type; not the event's
	ProductNumber string `json:"productNumber"` // "" for emulated devices
}

// The data of each event type.

// TouchData is the data of a touch event.
type TouchData struct {
	UpdateTime time.Time `json:"updateTime"`
}

// TemperatureData is the data of a temperature event, in °C.
type TemperatureData struct {
	Value        float64             `json:"value"`
	UpdateTime   time.Time           `json:"updateTime"`
	Samples      []TemperatureSample `json:"samples"`
	IsBackfilled bool                `json:"isBackfilled"`
}

// TemperatureSample is one sample of a TemperatureData.
type TemperatureSample struct {
	Value      float64   `json:"value"`
	SampleTime time.Time `json:"sampleTime"`
}

// ObjectPresentData is the data of an objectPresent event; State is PRESENT or
// NOT_PRESENT.
type ObjectPresentData struct {
	State      string    `json:"state"`
	UpdateTime time.Time `json:"updateTime"`
}

// HumidityData is the data of a humidity event.
type HumidityData struct {
	Temperature      float64          `json:"temperature"`
	RelativeHumidity float64          `json:"relativeHumidity"`
	Samples          []HumiditySample `json:"samples"`
	IsBackfilled     bool             `json:"isBackfilled"`
	UpdateTime       time.Time        `json:"updateTime"`
}

// HumiditySample is one sample of a HumidityData.
type HumiditySample struct {
	Temperature      float64   `json:"temperature"`
	RelativeHumidity float64   `json:"relativeHumidity"`
	SampleTime       time.Time `json:"sampleTime"`
}

// ObjectPresentCountData is the data of an objectPresentCount event.
type ObjectPresentCountData struct {
	Total      int64     `json:"total"`
	UpdateTime time.Time `json:"updateTime"`
}

// TouchCountData is the data of a touchCount event.
type TouchCountData struct {
	Total      int64     `json:"total"`
	UpdateTime time.Time `json:"updateTime"`
}

// WaterPresentData is the data of a waterPresent event; State is PRESENT or
// NOT_PRESENT.
type WaterPresentData struct {
	State      string    `json:"state"`
	UpdateTime time.Time `json:"updateTime"`
}

// CO2Data is the data of a co2 event.
type CO2Data struct {
	PPM        float64   `json:"ppm"`
	UpdateTime time.Time `json:"updateTime"`
}

// PressureData is the data of a pressure event.
type PressureData struct {
	Pascal     float64   `json:"pascal"`
	UpdateTime time.Time `json:"updateTime"`
}

// MotionData is the data of a motion event; State is MOTION_DETECTED or
// NO_MOTION_DETECTED.
type MotionData struct {
	State      string    `json:"state"`
	UpdateTime time.Time `json:"updateTime"`
}

// DeskOccupancyData is the data of a deskOccupancy event; State is OCCUPIED or
// NOT_OCCUPIED.
type DeskOccupancyData struct {
	State      string    `json:"state"`
	Remarks    []string  `json:"remarks"`
	UpdateTime time.Time `json:"updateTime"`
}

// ContactData is the data of a contact event; State is OPEN or CLOSED.
type ContactData struct {
	State      string    `json:"state"`
	UpdateTime time.Time `json:"updateTime"`
}

// ProbeWireStatusData is the data of a probeWireStatus event; State is
// INVALID_WIRE_CONFIGURATION, INVALID_COEFFICIENT_CONFIGURATION, TWO_WIRE,
// THREE_WIRE or FOUR_WIRE.
type ProbeWireStatusData struct {
	State      string    `json:"state"`
	UpdateTime time.Time `json:"updateTime"`
}

// BatteryStatusData is the data of a batteryStatus event.
type BatteryStatusData struct {
	Percentage int       `json:"percentage"`
	UpdateTime time.Time `json:"updateTime"`
}

// NetworkStatusData is the data of a networkStatus event; TransmissionMode is
// LOW_POWER_STANDARD_MODE or HIGH_POWER_BOOST_MODE.
type NetworkStatusData struct {
	SignalStrength   int              `json:"signalStrength"`
	RSSI             int              `json:"rssi"`
	UpdateTime       time.Time        `json:"updateTime"`
	CloudConnectors  []CloudConnector `json:"cloudConnectors"`
	TransmissionMode string           `json:"transmissionMode"`
}

// CloudConnector is one Cloud Connector that heard a sensor.
type CloudConnector struct {
	ID             string `json:"id"`
	SignalStrength int    `json:"signalStrength"`
	RSSI           int    `json:"rssi"`
}

// LabelsChangedData is the data of a labelsChanged event: the device's label
// changes. Modified holds the new values.
type LabelsChangedData struct {
	Added    map[string]string `json:"added"`
	Modified map[string]string `json:"modified"`
	Removed  []string          `json:"removed"`
}

// ConnectionStatusData is the data of a connectionStatus event; Connection is
// ETHERNET, CELLULAR or OFFLINE.
type ConnectionStatusData struct {
	Connection string    `json:"connection"`
	Available  []string  `json:"available"`
	UpdateTime time.Time `json:"updateTime"`
}

// EthernetStatusData is the data of an ethernetStatus event.
type EthernetStatusData struct {
	MACAddress string        `json:"macAddress"`
	IPAddress  string        `json:"ipAddress"`
	Errors     []DeviceError `json:"errors"`
	UpdateTime time.Time     `json:"updateTime"`
}

// CellularStatusData is the data of a cellularStatus event.
type CellularStatusData struct {
	SignalStrength int           `json:"signalStrength"`
	Errors         []DeviceError `json:"errors"`
	UpdateTime     time.Time     `json:"updateTime"`
}

// DeviceError is an error a Cloud Connector reports.
type DeviceError struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

// ErrorCode is the code of a DeviceError. Both integers and strings are seen
// on the wire; an integer is kept as its decimal text.
type ErrorCode string

// UnmarshalJSON accepts a JSON string or number.
func (c *ErrorCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = ErrorCode(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("error code: want a string or a number")
	}
	*c = ErrorCode(n)
	return nil
}

// newData returns a pointer to the zero data of t, or nil for an unknown type.
func newData(t EventType) any {
	switch t {
	case EventTouch:
		return new(TouchData)
	case EventTemperature:
		return new(TemperatureData)
	case EventObjectPresent:
		return new(ObjectPresentData)
	case EventHumidity:
		return new(HumidityData)
	case EventObjectPresentCount:
		return new(ObjectPresentCountData)
	case EventTouchCount:
		return new(TouchCountData)
	case EventWaterPresent:
		return new(WaterPresentData)
	case EventCO2:
		return new(CO2Data)
	case EventPressure:
		return new(PressureData)
	case EventMotion:
		return new(MotionData)
	case EventDeskOccupancy:
		return new(DeskOccupancyData)
	case EventContact:
		return new(ContactData)
	case EventProbeWireStatus:
		return new(ProbeWireStatusData)
	case EventBatteryStatus:
		return new(BatteryStatusData)
	case EventNetworkStatus:
		return new(NetworkStatusData)
	case EventLabelsChanged:
		return new(LabelsChangedData)
	case EventConnectionStatus:
		return new(ConnectionStatusData)
	case EventEthernetStatus:
		return new(EthernetStatusData)
	case EventCellularStatus:
		return new(CellularStatusData)
	}
	return nil
}

// ErrEvent is wrapped by every error of ParseEvent.
var ErrEvent = errors.New("bad event")

// ParseEvent decodes a request body of a data connector:
// {"event":{"eventId","targetName","eventType","data","timestamp"},"labels","metadata"}.
// eventId, eventType, data and timestamp are required; Data is decoded into
// the type of eventType, from data.<eventType> (from data itself for
// labelsChanged). Unknown members are ignored and an unknown event type is
// kept as raw JSON, so that a receiver keeps working when the sender adds
// some. Verify the signature before parsing.
func ParseEvent(body []byte) (*Event, error) {
	var wire struct {
		Event *struct {
			EventID    string          `json:"eventId"`
			TargetName string          `json:"targetName"`
			EventType  EventType       `json:"eventType"`
			Data       json.RawMessage `json:"data"`
			Timestamp  string          `json:"timestamp"`
		} `json:"event"`
		Labels   map[string]string `json:"labels"`
		Metadata Metadata          `json:"metadata"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEvent, err)
	}
	e := wire.Event
	switch {
	case e == nil:
		return nil, fmt.Errorf("%w: no event member", ErrEvent)
	case e.EventID == "":
		return nil, fmt.Errorf("%w: no eventId", ErrEvent)
	case e.EventType == "":
		return nil, fmt.Errorf("%w: no eventType", ErrEvent)
	case len(e.Data) == 0 || e.Data[0] != '{':
		return nil, fmt.Errorf("%w: data is not an object", ErrEvent)
	}
	ts, err := time.Parse(time.RFC3339Nano, e.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("%w: timestamp %s is not an RFC 3339 time", ErrEvent, strconv.Quote(clip(e.Timestamp)))
	}
	ev := &Event{
		EventID: e.EventID, TargetName: e.TargetName, EventType: e.EventType, Timestamp: ts,
		Labels: wire.Labels, Metadata: wire.Metadata,
	}
	if ev.Labels == nil {
		ev.Labels = map[string]string{}
	}
	if ev.Data, err = decodeData(e.EventType, e.Data); err != nil {
		return nil, err
	}
	return ev, nil
}

func decodeData(t EventType, raw json.RawMessage) (any, error) {
	d := newData(t)
	if d == nil {
		return append(json.RawMessage(nil), raw...), nil
	}
	inner := raw
	if t != EventLabelsChanged {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil {
			return nil, fmt.Errorf("%w: data: %v", ErrEvent, err)
		}
		var ok bool
		if inner, ok = members[string(t)]; !ok || len(inner) == 0 || inner[0] != '{' {
			return nil, fmt.Errorf("%w: data.%s is not an object", ErrEvent, t)
		}
	}
	if err := json.Unmarshal(inner, d); err != nil {
		return nil, fmt.Errorf("%w: data.%s: %v", ErrEvent, t, err)
	}
	return d, nil
}

// dataAs returns ev.Data as a *T, and whether it is one.
func dataAs[T any](ev *Event) (*T, bool) {
	d, ok := ev.Data.(*T)
	return d, ok && d != nil
}

// Touch returns the data of a touch event; false for any other type.
func (ev *Event) Touch() (*TouchData, bool) { return dataAs[TouchData](ev) }

// Temperature returns the data of a temperature event; false for any other type.
func (ev *Event) Temperature() (*TemperatureData, bool) { return dataAs[TemperatureData](ev) }

// ObjectPresent returns the data of an objectPresent event; false for any other type.
func (ev *Event) ObjectPresent() (*ObjectPresentData, bool) { return dataAs[ObjectPresentData](ev) }

// Humidity returns the data of a humidity event; false for any other type.
func (ev *Event) Humidity() (*HumidityData, bool) { return dataAs[HumidityData](ev) }

// ObjectPresentCount returns the data of an objectPresentCount event; false for any other type.
func (ev *Event) ObjectPresentCount() (*ObjectPresentCountData, bool) {
	return dataAs[ObjectPresentCountData](ev)
}

// TouchCount returns the data of a touchCount event; false for any other type.
func (ev *Event) TouchCount() (*TouchCountData, bool) { return dataAs[TouchCountData](ev) }

// WaterPresent returns the data of a waterPresent event; false for any other type.
func (ev *Event) WaterPresent() (*WaterPresentData, bool) { return dataAs[WaterPresentData](ev) }

// CO2 returns the data of a co2 event; false for any other type.
func (ev *Event) CO2() (*CO2Data, bool) { return dataAs[CO2Data](ev) }

// Pressure returns the data of a pressure event; false for any other type.
func (ev *Event) Pressure() (*PressureData, bool) { return dataAs[PressureData](ev) }

// Motion returns the data of a motion event; false for any other type.
func (ev *Event) Motion() (*MotionData, bool) { return dataAs[MotionData](ev) }

// DeskOccupancy returns the data of a deskOccupancy event; false for any other type.
func (ev *Event) DeskOccupancy() (*DeskOccupancyData, bool) { return dataAs[DeskOccupancyData](ev) }

// Contact returns the data of a contact event; false for any other type.
func (ev *Event) Contact() (*ContactData, bool) { return dataAs[ContactData](ev) }

// ProbeWireStatus returns the data of a probeWireStatus event; false for any other type.
func (ev *Event) ProbeWireStatus() (*ProbeWireStatusData, bool) {
	return dataAs[ProbeWireStatusData](ev)
}

// BatteryStatus returns the data of a batteryStatus event; false for any other type.
func (ev *Event) BatteryStatus() (*BatteryStatusData, bool) { return dataAs[BatteryStatusData](ev) }

// NetworkStatus returns the data of a networkStatus event; false for any other type.
func (ev *Event) NetworkStatus() (*NetworkStatusData, bool) { return dataAs[NetworkStatusData](ev) }

// LabelsChanged returns the data of a labelsChanged event; false for any other type.
func (ev *Event) LabelsChanged() (*LabelsChangedData, bool) { return dataAs[LabelsChangedData](ev) }

// ConnectionStatus returns the data of a connectionStatus event; false for any other type.
func (ev *Event) ConnectionStatus() (*ConnectionStatusData, bool) {
	return dataAs[ConnectionStatusData](ev)
}

// EthernetStatus returns the data of an ethernetStatus event; false for any other type.
func (ev *Event) EthernetStatus() (*EthernetStatusData, bool) {
	return dataAs[EthernetStatusData](ev)
}

// CellularStatus returns the data of a cellularStatus event; false for any other type.
func (ev *Event) CellularStatus() (*CellularStatusData, bool) {
	return dataAs[CellularStatusData](ev)
}
