package dcon

import "time"

// ParseEventData validates the data of an event of type t as a publisher sends it
// — raw is the value inside {"<eventType>": ...} — fills its defaults, and returns
// the compact JSON of the event's data member, {"<eventType>":{...}}.
//
// PLACEHOLDER: being written; see the task of the domain helper.
func ParseEventData(t EventType, raw []byte, now time.Time) ([]byte, error) {
	panic("not yet written")
}

// LabelsChangedData returns the data member of a labelsChanged event between two
// label sets, and false when they are equal.
//
// PLACEHOLDER: being written.
func LabelsChangedData(before, after map[string]string) ([]byte, bool) {
	panic("not yet written")
}
