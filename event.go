package dcon

import (
	"strconv"
	"time"
)

// EventType names the kind of an event, as in its "eventType" field.
type EventType string

// The 19 event types of the contract (section 5).
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

// EventTypes lists every event type, in the order of the contract.
var EventTypes = []EventType{
	EventTouch, EventTemperature, EventObjectPresent, EventHumidity,
	EventObjectPresentCount, EventTouchCount, EventWaterPresent, EventCO2,
	EventPressure, EventMotion, EventDeskOccupancy, EventContact,
	EventProbeWireStatus, EventBatteryStatus, EventNetworkStatus,
	EventLabelsChanged, EventConnectionStatus, EventEthernetStatus,
	EventCellularStatus,
}

// Valid reports whether t is one of the 19 event types.
func (t EventType) Valid() bool {
	for _, v := range EventTypes {
		if v == t {
			return true
		}
	}
	return false
}

// TimeLayout is the layout of every timestamp dcon writes: RFC 3339, UTC,
// microseconds, "Z".
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// FormatTime formats t in [TimeLayout], in UTC.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeLayout) }

// AppendTime appends t in [TimeLayout], in UTC.
func AppendTime(dst []byte, t time.Time) []byte { return t.UTC().AppendFormat(dst, TimeLayout) }

// Event is one thing that happened on a device.
type Event struct {
	ID         string    // an xid, the same on every delivery attempt
	TargetName string    // "projects/{p}/devices/{d}"
	Type       EventType // the key of Data's single member
	// Data is the compact JSON of the event's data member, for example
	// {"touch":{"updateTime":"2022-02-10T12:42:13.313949Z"}}; for labelsChanged
	// it is {"added":{},"modified":{},"removed":[]}. It is produced by
	// [ParseEventData] or [LabelsChangedData] and is copied to the wire as is.
	Data      []byte
	Timestamp time.Time
}

// AppendJSON appends the event's envelope as compact JSON, its keys in the
// contract's order: eventId, targetName, eventType, data, timestamp.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"eventId":`...)
	dst = strconv.AppendQuote(dst, e.ID)
	dst = append(dst, `,"targetName":`...)
	dst = strconv.AppendQuote(dst, e.TargetName)
	dst = append(dst, `,"eventType":`...)
	dst = strconv.AppendQuote(dst, string(e.Type))
	dst = append(dst, `,"data":`...)
	dst = append(dst, e.Data...)
	dst = append(dst, `,"timestamp":"`...)
	dst = AppendTime(dst, e.Timestamp)
	return append(dst, `"}`...)
}
