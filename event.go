package dcon

import (
	"slices"
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
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimeLayout)
	}
	hour, minute, sec := t.Clock()
	// What AppendFormat writes for TimeLayout, without interpreting it.
	dst = appendDigits(dst, year, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	dst = appendDigits(dst, t.Nanosecond()/1000, 6)
	return append(dst, 'Z')
}

// appendDigits appends n, which is not negative and has at most width
// digits, zero-padded to width digits.
func appendDigits(dst []byte, n, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, buf[:width]...)
}

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
	dst = slices.Grow(dst, e.JSONLen())
	dst = append(dst, `{"eventId":`...)
	dst = appendQuote(dst, e.ID)
	dst = append(dst, `,"targetName":`...)
	dst = appendQuote(dst, e.TargetName)
	dst = append(dst, `,"eventType":`...)
	dst = appendQuote(dst, string(e.Type))
	dst = append(dst, `,"data":`...)
	dst = append(dst, e.Data...)
	dst = append(dst, `,"timestamp":"`...)
	dst = AppendTime(dst, e.Timestamp)
	return append(dst, `"}`...)
}

// JSONLen is the length of the envelope AppendJSON appends when its strings
// need no escaping, as dcon's ids, names and types never do: the capacity to
// render it in.
func (e *Event) JSONLen() int {
	const fixed = len(`{"eventId":"","targetName":"","eventType":"","data":,"timestamp":""}`) + len(TimeLayout)
	return fixed + len(e.ID) + len(e.TargetName) + len(e.Type) + len(e.Data)
}

// appendQuote appends s quoted as strconv.AppendQuote does, without its cost
// for the strings of printable ASCII without quotes or backslashes that ids,
// resource names and event types are.
func appendQuote(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return strconv.AppendQuote(dst, s)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
