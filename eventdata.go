package dcon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits on the event data a publisher may send.
const (
	// MaxEventDataLen bounds the raw data of one published event, in bytes.
	MaxEventDataLen = 64 << 10
	// MaxEventDataItems bounds every array of event data: samples,
	// cloudConnectors, remarks, errors, available.
	MaxEventDataItems = 1000
	// maxEventString bounds free-text strings of event data (identifiers, MAC
	// and IP addresses, remarks, error messages), in bytes.
	maxEventString = 1024
)

// ParseEventData validates the data of an event of type t as a publisher sends it
// — raw is the value inside {"<eventType>": ...} — fills its defaults, and returns
// the compact JSON of the event's data member, {"<eventType>":{...}}.
//
// raw must be a JSON object holding only the fields of the contract's table for
// t (section 5); field names are case-sensitive and a null field is treated as
// absent. Measurement and state fields are required; every other field has a
// default:
//
//   - updateTime (every type) defaults to now; any time is accepted in RFC 3339
//     and written in UTC with microseconds, see [TimeLayout].
//   - temperature and humidity: isBackfilled defaults to false; absent (or
//     empty) samples default to one sample of the event's value(s) at
//     updateTime, and a sample's sampleTime defaults to updateTime.
//   - networkStatus: cloudConnectors defaults to [] (the original Python client
//     sends it as "cloud_connectors", which is accepted as its alias); a cloud
//     connector's signalStrength and rssi default to 0; transmissionMode
//     defaults to LOW_POWER_STANDARD_MODE.
//   - deskOccupancy remarks, connectionStatus available, and the errors of
//     ethernetStatus and cellularStatus default to [].
//   - ethernetStatus macAddress and ipAddress default to "" and are not
//     checked beyond being strings; cellularStatus signalStrength defaults to 0.
//     Neither type has a required field. An error's code is an integer or a
//     string (both are seen in the wild) and is required; its message defaults
//     to "".
//
// Numbers must be finite; counts (total), percentages and signal strengths must
// be integers; percentage, signalStrength and relativeHumidity lie in 0–100;
// total, ppm and pascal are not negative. Free-text strings are at most 1024
// bytes, arrays at most [MaxEventDataItems] items, raw at most
// [MaxEventDataLen] bytes.
//
// Every failure is an *Error with code EINVALID whose message names the field,
// e.g. `temperature.samples[1].sampleTime: not an RFC 3339 time`. labelsChanged
// events cannot be published; their data is made by [LabelsChangedData].
//
// The output is deterministic and parsing it again yields the same bytes.
func ParseEventData(t EventType, raw []byte, now time.Time) ([]byte, error) {
	if len(raw) > MaxEventDataLen {
		return nil, Errorf(EINVALID, "%s: event data over %d bytes", t, MaxEventDataLen)
	}
	if out, ok := fastEventData(t, raw, now); ok {
		return out, nil
	}
	return parseEventData(t, raw, now)
}

// parseEventData is the general path of ParseEventData, for every input the
// fast path declines; it is the reference the fast path agrees with.
func parseEventData(t EventType, raw []byte, now time.Time) ([]byte, error) {
	var v any
	var err error
	switch t {
	case EventTouch:
		v, err = parseTouch(raw, now)
	case EventTemperature:
		v, err = parseTemperature(raw, now)
	case EventObjectPresent:
		v, err = parseObjectPresent(raw, now)
	case EventHumidity:
		v, err = parseHumidity(raw, now)
	case EventObjectPresentCount:
		v, err = parseObjectPresentCount(raw, now)
	case EventTouchCount:
		v, err = parseTouchCount(raw, now)
	case EventWaterPresent:
		v, err = parseWaterPresent(raw, now)
	case EventCO2:
		v, err = parseCO2(raw, now)
	case EventPressure:
		v, err = parsePressure(raw, now)
	case EventMotion:
		v, err = parseMotion(raw, now)
	case EventDeskOccupancy:
		v, err = parseDeskOccupancy(raw, now)
	case EventContact:
		v, err = parseContact(raw, now)
	case EventProbeWireStatus:
		v, err = parseProbeWireStatus(raw, now)
	case EventBatteryStatus:
		v, err = parseBatteryStatus(raw, now)
	case EventNetworkStatus:
		v, err = parseNetworkStatus(raw, now)
	case EventConnectionStatus:
		v, err = parseConnectionStatus(raw, now)
	case EventEthernetStatus:
		v, err = parseEthernetStatus(raw, now)
	case EventCellularStatus:
		v, err = parseCellularStatus(raw, now)
	case EventLabelsChanged:
		return nil, Errorf(EINVALID, "labelsChanged: cannot be published; change the device's labels instead")
	default:
		return nil, Errorf(EINVALID, "unknown event type %s", quoteName(string(t)))
	}
	if err != nil {
		return nil, err
	}
	return wrapEventData(t, v)
}

// wrapEventData returns {"<t>":v} as compact JSON.
func wrapEventData(t EventType, v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(128)
	buf.WriteString(`{"`)
	buf.WriteString(string(t)) // event type names need no escaping
	buf.WriteString(`":`)
	if err := encodeCompact(&buf, v); err != nil {
		return nil, WrapError(EINTERNAL, err, "encode %s data", t)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// encodeCompact writes v as compact JSON without HTML escaping, so that the
// bytes sent are the characters the publisher sent.
func encodeCompact(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode ends with a newline
	return nil
}

// LabelsChangedData returns the data member of a labelsChanged event between two
// label sets, and false when they are equal:
// {"added":{k:v},"modified":{k:v},"removed":[k]}, every member present, keys
// sorted. modified holds the new values.
func LabelsChangedData(before, after map[string]string) ([]byte, bool) {
	d := labelsChangedData{Added: map[string]string{}, Modified: map[string]string{}, Removed: []string{}}
	for k, v := range after {
		old, ok := before[k]
		switch {
		case !ok:
			d.Added[k] = v
		case old != v:
			d.Modified[k] = v
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			d.Removed = append(d.Removed, k)
		}
	}
	if len(d.Added)+len(d.Modified)+len(d.Removed) == 0 {
		return nil, false
	}
	slices.Sort(d.Removed)
	var buf bytes.Buffer
	if err := encodeCompact(&buf, &d); err != nil {
		// Maps and slices of strings always encode.
		panic("dcon: encode labelsChanged: " + err.Error())
	}
	return buf.Bytes(), true
}

type labelsChangedData struct {
	Added    map[string]string `json:"added"`
	Modified map[string]string `json:"modified"`
	Removed  []string          `json:"removed"`
}

// eventTime is a time written in [TimeLayout].
type eventTime time.Time

// MarshalText makes encoding/json write t as a string; it needs no escaping,
// so this is cheaper than MarshalJSON, whose output would be checked.
func (t eventTime) MarshalText() ([]byte, error) {
	return AppendTime(make([]byte, 0, len(TimeLayout)), time.Time(t)), nil
}

// The data of each event type, its fields in the order of the contract's JSON
// examples where it gives one, otherwise in the order of its table.

type touchData struct {
	UpdateTime eventTime `json:"updateTime"`
}

type temperatureData struct {
	Value        float64             `json:"value"`
	IsBackfilled bool                `json:"isBackfilled"`
	Samples      []temperatureSample `json:"samples"`
	UpdateTime   eventTime           `json:"updateTime"`
}

type temperatureSample struct {
	Value      float64   `json:"value"`
	SampleTime eventTime `json:"sampleTime"`
}

type objectPresentData struct {
	State      string    `json:"state"`
	UpdateTime eventTime `json:"updateTime"`
}

type humidityData struct {
	Temperature      float64          `json:"temperature"`
	RelativeHumidity float64          `json:"relativeHumidity"`
	Samples          []humiditySample `json:"samples"`
	IsBackfilled     bool             `json:"isBackfilled"`
	UpdateTime       eventTime        `json:"updateTime"`
}

type humiditySample struct {
	Temperature      float64   `json:"temperature"`
	RelativeHumidity float64   `json:"relativeHumidity"`
	SampleTime       eventTime `json:"sampleTime"`
}

type objectPresentCountData struct {
	Total      int64     `json:"total"`
	UpdateTime eventTime `json:"updateTime"`
}

type touchCountData struct {
	Total      int64     `json:"total"`
	UpdateTime eventTime `json:"updateTime"`
}

type waterPresentData struct {
	State      string    `json:"state"`
	UpdateTime eventTime `json:"updateTime"`
}

type co2Data struct {
	PPM        float64   `json:"ppm"`
	UpdateTime eventTime `json:"updateTime"`
}

type pressureData struct {
	Pascal     float64   `json:"pascal"`
	UpdateTime eventTime `json:"updateTime"`
}

type motionData struct {
	State      string    `json:"state"`
	UpdateTime eventTime `json:"updateTime"`
}

type deskOccupancyData struct {
	State      string    `json:"state"`
	Remarks    []string  `json:"remarks"`
	UpdateTime eventTime `json:"updateTime"`
}

type contactData struct {
	State      string    `json:"state"`
	UpdateTime eventTime `json:"updateTime"`
}

type probeWireStatusData struct {
	State      string    `json:"state"`
	UpdateTime eventTime `json:"updateTime"`
}

type batteryStatusData struct {
	Percentage int64     `json:"percentage"`
	UpdateTime eventTime `json:"updateTime"`
}

type networkStatusData struct {
	SignalStrength   int64            `json:"signalStrength"`
	RSSI             int64            `json:"rssi"`
	UpdateTime       eventTime        `json:"updateTime"`
	CloudConnectors  []cloudConnector `json:"cloudConnectors"`
	TransmissionMode string           `json:"transmissionMode"`
}

type cloudConnector struct {
	ID             string `json:"id"`
	SignalStrength int64  `json:"signalStrength"`
	RSSI           int64  `json:"rssi"`
}

type connectionStatusData struct {
	Connection string    `json:"connection"`
	Available  []string  `json:"available"`
	UpdateTime eventTime `json:"updateTime"`
}

type ethernetStatusData struct {
	MACAddress string        `json:"macAddress"`
	IPAddress  string        `json:"ipAddress"`
	Errors     []deviceError `json:"errors"`
	UpdateTime eventTime     `json:"updateTime"`
}

type cellularStatusData struct {
	SignalStrength int64         `json:"signalStrength"`
	Errors         []deviceError `json:"errors"`
	UpdateTime     eventTime     `json:"updateTime"`
}

// deviceError is one of the errors a Cloud Connector reports. Code is the
// compact JSON of an integer or a string.
type deviceError struct {
	Code    json.RawMessage `json:"code"`
	Message string          `json:"message"`
}

// Enumerations of the contract's table.
var (
	presenceStates   = []string{"PRESENT", "NOT_PRESENT"}
	motionStates     = []string{"MOTION_DETECTED", "NO_MOTION_DETECTED"}
	occupancyStates  = []string{"OCCUPIED", "NOT_OCCUPIED"}
	contactStates    = []string{"OPEN", "CLOSED"}
	probeWireStates  = []string{"INVALID_WIRE_CONFIGURATION", "INVALID_COEFFICIENT_CONFIGURATION", "TWO_WIRE", "THREE_WIRE", "FOUR_WIRE"}
	transmissionMode = []string{"LOW_POWER_STANDARD_MODE", "HIGH_POWER_BOOST_MODE"}
	connections      = []string{"ETHERNET", "CELLULAR", "OFFLINE"}
	availableLinks   = []string{"ETHERNET", "CELLULAR"}
)

// Bounds of numbers; noMax leaves a number unbounded above.
const (
	noMax   = math.MaxFloat64
	noMin   = -math.MaxFloat64
	maxSafe = 1 << 53 // the largest integer every JSON reader holds exactly
)

func parseTouch(raw []byte, now time.Time) (any, error) {
	o := readObject("touch", raw, "updateTime")
	d := &touchData{UpdateTime: o.time("updateTime", now)}
	return d, o.err()
}

func parseTemperature(raw []byte, now time.Time) (any, error) {
	o := readObject("temperature", raw, "value", "isBackfilled", "samples", "updateTime")
	d := &temperatureData{
		Value:        o.number("value", true, noMin, noMax),
		IsBackfilled: o.boolean("isBackfilled"),
		UpdateTime:   o.time("updateTime", now),
	}
	o.objects("samples", []string{"value", "sampleTime"}, func(s *object) {
		d.Samples = append(d.Samples, temperatureSample{
			Value:      s.number("value", true, noMin, noMax),
			SampleTime: s.time("sampleTime", time.Time(d.UpdateTime)),
		})
	})
	if len(d.Samples) == 0 {
		d.Samples = []temperatureSample{{Value: d.Value, SampleTime: d.UpdateTime}}
	}
	return d, o.err()
}

func parseObjectPresent(raw []byte, now time.Time) (any, error) {
	o := readObject("objectPresent", raw, "state", "updateTime")
	d := &objectPresentData{
		State:      o.enum("state", "", presenceStates),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseHumidity(raw []byte, now time.Time) (any, error) {
	o := readObject("humidity", raw, "temperature", "relativeHumidity", "samples", "isBackfilled", "updateTime")
	d := &humidityData{
		Temperature:      o.number("temperature", true, noMin, noMax),
		RelativeHumidity: o.number("relativeHumidity", true, 0, 100),
		IsBackfilled:     o.boolean("isBackfilled"),
		UpdateTime:       o.time("updateTime", now),
	}
	o.objects("samples", []string{"temperature", "relativeHumidity", "sampleTime"}, func(s *object) {
		d.Samples = append(d.Samples, humiditySample{
			Temperature:      s.number("temperature", true, noMin, noMax),
			RelativeHumidity: s.number("relativeHumidity", true, 0, 100),
			SampleTime:       s.time("sampleTime", time.Time(d.UpdateTime)),
		})
	})
	if len(d.Samples) == 0 {
		d.Samples = []humiditySample{{Temperature: d.Temperature, RelativeHumidity: d.RelativeHumidity, SampleTime: d.UpdateTime}}
	}
	return d, o.err()
}

func parseObjectPresentCount(raw []byte, now time.Time) (any, error) {
	o := readObject("objectPresentCount", raw, "total", "updateTime")
	d := &objectPresentCountData{
		Total:      o.integer("total", true, 0, maxSafe),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseTouchCount(raw []byte, now time.Time) (any, error) {
	o := readObject("touchCount", raw, "total", "updateTime")
	d := &touchCountData{
		Total:      o.integer("total", true, 0, maxSafe),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseWaterPresent(raw []byte, now time.Time) (any, error) {
	o := readObject("waterPresent", raw, "state", "updateTime")
	d := &waterPresentData{
		State:      o.enum("state", "", presenceStates),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseCO2(raw []byte, now time.Time) (any, error) {
	o := readObject("co2", raw, "ppm", "updateTime")
	d := &co2Data{
		PPM:        o.number("ppm", true, 0, noMax),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parsePressure(raw []byte, now time.Time) (any, error) {
	o := readObject("pressure", raw, "pascal", "updateTime")
	d := &pressureData{
		Pascal:     o.number("pascal", true, 0, noMax),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseMotion(raw []byte, now time.Time) (any, error) {
	o := readObject("motion", raw, "state", "updateTime")
	d := &motionData{
		State:      o.enum("state", "", motionStates),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseDeskOccupancy(raw []byte, now time.Time) (any, error) {
	o := readObject("deskOccupancy", raw, "state", "remarks", "updateTime")
	d := &deskOccupancyData{
		State:      o.enum("state", "", occupancyStates),
		Remarks:    o.strings("remarks", nil),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseContact(raw []byte, now time.Time) (any, error) {
	o := readObject("contact", raw, "state", "updateTime")
	d := &contactData{
		State:      o.enum("state", "", contactStates),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseProbeWireStatus(raw []byte, now time.Time) (any, error) {
	o := readObject("probeWireStatus", raw, "state", "updateTime")
	d := &probeWireStatusData{
		State:      o.enum("state", "", probeWireStates),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseBatteryStatus(raw []byte, now time.Time) (any, error) {
	o := readObject("batteryStatus", raw, "percentage", "updateTime")
	d := &batteryStatusData{
		Percentage: o.integer("percentage", true, 0, 100),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseNetworkStatus(raw []byte, now time.Time) (any, error) {
	o := readObject("networkStatus", raw, "signalStrength", "rssi", "updateTime", "cloudConnectors", "cloud_connectors", "transmissionMode")
	d := &networkStatusData{
		SignalStrength:   o.integer("signalStrength", true, 0, 100),
		RSSI:             o.integer("rssi", true, -maxSafe, maxSafe),
		UpdateTime:       o.time("updateTime", now),
		CloudConnectors:  []cloudConnector{},
		TransmissionMode: o.enum("transmissionMode", "LOW_POWER_STANDARD_MODE", transmissionMode),
	}
	name := "cloudConnectors"
	if !o.has(name) {
		name = "cloud_connectors" // as the original Python client sends it
	} else if o.has("cloud_connectors") {
		o.fail("cloud_connectors", "conflicts with cloudConnectors")
	}
	o.objects(name, []string{"id", "signalStrength", "rssi"}, func(c *object) {
		d.CloudConnectors = append(d.CloudConnectors, cloudConnector{
			ID:             c.str("id", true),
			SignalStrength: c.integer("signalStrength", false, 0, 100),
			RSSI:           c.integer("rssi", false, -maxSafe, maxSafe),
		})
	})
	return d, o.err()
}

func parseConnectionStatus(raw []byte, now time.Time) (any, error) {
	o := readObject("connectionStatus", raw, "connection", "available", "updateTime")
	d := &connectionStatusData{
		Connection: o.enum("connection", "", connections),
		Available:  o.strings("available", availableLinks),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseEthernetStatus(raw []byte, now time.Time) (any, error) {
	o := readObject("ethernetStatus", raw, "macAddress", "ipAddress", "errors", "updateTime")
	d := &ethernetStatusData{
		MACAddress: o.str("macAddress", false),
		IPAddress:  o.str("ipAddress", false),
		Errors:     o.deviceErrors("errors"),
		UpdateTime: o.time("updateTime", now),
	}
	return d, o.err()
}

func parseCellularStatus(raw []byte, now time.Time) (any, error) {
	o := readObject("cellularStatus", raw, "signalStrength", "errors", "updateTime")
	d := &cellularStatusData{
		SignalStrength: o.integer("signalStrength", false, 0, 100),
		Errors:         o.deviceErrors("errors"),
		UpdateTime:     o.time("updateTime", now),
	}
	return d, o.err()
}

// object reads the fields of one JSON object of event data. Its first failure
// sticks: every later read returns a zero value, and err reports that failure.
type object struct {
	path   string // "temperature", "temperature.samples[1]"
	fields map[string]json.RawMessage
	fault  *Error
}

// readObject parses raw as a JSON object at path whose fields must all be among
// known.
func readObject(path string, raw []byte, known ...string) *object {
	o := &object{path: path}
	if firstByte(raw) != '{' {
		if !json.Valid(raw) {
			o.fault = Errorf(EINVALID, "%s: not valid JSON", path)
		} else {
			o.fault = Errorf(EINVALID, "%s: must be an object", path)
		}
		return o
	}
	if err := json.Unmarshal(raw, &o.fields); err != nil {
		o.fault = WrapError(EINVALID, err, "%s: not valid JSON", path)
		return o
	}
	var unknown []string
	for k := range o.fields {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		o.fault = Errorf(EINVALID, "%s: unknown field %s", path, quoteName(slices.Min(unknown)))
	}
	return o
}

// err returns the object's first failure, or nil.
func (o *object) err() error {
	if o.fault == nil {
		return nil
	}
	return o.fault
}

// fail records a failure of field name unless one is recorded already.
func (o *object) fail(name, format string, args ...any) {
	if o.fault == nil {
		o.fault = Errorf(EINVALID, "%s.%s: %s", o.path, name, fmt.Sprintf(format, args...))
	}
}

// has reports whether field name is present and not null.
func (o *object) has(name string) bool {
	raw, ok := o.fields[name]
	return ok && firstByte(raw) != 'n'
}

// value returns field name, or false when it is absent or null, or required and
// so failed, or when the object has failed already.
func (o *object) value(name string, required bool) (json.RawMessage, bool) {
	if o.fault != nil {
		return nil, false
	}
	if !o.has(name) {
		if required {
			o.fail(name, "required")
		}
		return nil, false
	}
	return o.fields[name], true
}

// number reads a finite number in [lo, hi].
func (o *object) number(name string, required bool, lo, hi float64) float64 {
	raw, ok := o.value(name, required)
	if !ok {
		return 0
	}
	if !isNumber(raw) {
		o.fail(name, "must be a number")
		return 0
	}
	f, ok := parseFinite(raw)
	if !ok {
		o.fail(name, "must be a finite number")
		return 0
	}
	if f < lo || f > hi {
		o.fail(name, "%s", rangeText(lo, hi))
		return 0
	}
	return f
}

// integer reads an integral number in [lo, hi]; 5.0 and 5e0 are read as 5.
func (o *object) integer(name string, required bool, lo, hi int64) int64 {
	raw, ok := o.value(name, required)
	if !ok {
		return 0
	}
	if !isNumber(raw) {
		o.fail(name, "must be an integer")
		return 0
	}
	n, ok := parseIntegral(raw)
	if !ok {
		o.fail(name, "must be an integer")
		return 0
	}
	if n < lo || n > hi {
		o.fail(name, "%s", rangeText(float64(lo), float64(hi)))
		return 0
	}
	return n
}

// boolean reads an optional boolean, false by default.
func (o *object) boolean(name string) bool {
	raw, ok := o.value(name, false)
	if !ok {
		return false
	}
	switch string(raw) {
	case "true":
		return true
	case "false":
		return false
	}
	o.fail(name, "must be a boolean")
	return false
}

// str reads a string of at most maxEventString bytes; "" when absent.
func (o *object) str(name string, required bool) string {
	raw, ok := o.value(name, required)
	if !ok {
		return ""
	}
	s, ok := o.decodeString(name, raw)
	if !ok {
		return ""
	}
	if required && s == "" {
		o.fail(name, "must not be empty")
		return ""
	}
	return s
}

func (o *object) decodeString(name string, raw json.RawMessage) (string, bool) {
	var s string
	if firstByte(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		o.fail(name, "must be a string")
		return "", false
	}
	if len(s) > maxEventString {
		o.fail(name, "over %d bytes", maxEventString)
		return "", false
	}
	return s, true
}

// enum reads one of values; def is the default, "" for a required field.
func (o *object) enum(name, def string, values []string) string {
	raw, ok := o.value(name, def == "")
	if !ok {
		return def
	}
	var s string
	if firstByte(raw) != '"' || json.Unmarshal(raw, &s) != nil || !slices.Contains(values, s) {
		o.fail(name, "must be one of %s", strings.Join(values, ", "))
		return def
	}
	return s
}

// time reads an RFC 3339 time, def by default.
func (o *object) time(name string, def time.Time) eventTime {
	raw, ok := o.value(name, false)
	if !ok {
		return eventTime(def)
	}
	t, ok := parseEventTime(raw)
	if !ok {
		o.fail(name, "not an RFC 3339 time")
		return eventTime(def)
	}
	return eventTime(t)
}

// parseEventTime parses a JSON string holding an RFC 3339 time whose UTC form
// has a four-digit year.
func parseEventTime(raw json.RawMessage) (time.Time, bool) {
	var s string
	if firstByte(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return time.Time{}, false
	}
	return parseTimeText(s)
}

// parseTimeText parses an RFC 3339 time whose UTC form has a four-digit year.
func parseTimeText(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// array reads field name as an array of at most MaxEventDataItems items; nil
// when absent.
func (o *object) array(name string) []json.RawMessage {
	raw, ok := o.value(name, false)
	if !ok {
		return nil
	}
	var items []json.RawMessage
	if firstByte(raw) != '[' || json.Unmarshal(raw, &items) != nil {
		o.fail(name, "must be an array")
		return nil
	}
	if len(items) > MaxEventDataItems {
		o.fail(name, "at most %d items", MaxEventDataItems)
		return nil
	}
	return items
}

// objects calls fn with each object of array field name, whose fields must be
// among known, until one fails.
func (o *object) objects(name string, known []string, fn func(item *object)) {
	for i, raw := range o.array(name) {
		item := readObject(o.path+"."+name+"["+strconv.Itoa(i)+"]", raw, known...)
		if item.fault == nil {
			fn(item)
		}
		if item.fault != nil {
			o.fault = item.fault
			return
		}
	}
}

// strings reads an array of strings, each one of values unless values is nil;
// [] when absent.
func (o *object) strings(name string, values []string) []string {
	items := o.array(name)
	out := make([]string, 0, len(items))
	for i, raw := range items {
		item := name + "[" + strconv.Itoa(i) + "]"
		if values != nil {
			out = append(out, o.enumItem(item, raw, values))
		} else {
			s, _ := o.decodeString(item, raw)
			out = append(out, s)
		}
		if o.fault != nil {
			return []string{}
		}
	}
	return out
}

func (o *object) enumItem(name string, raw json.RawMessage, values []string) string {
	var s string
	if firstByte(raw) != '"' || json.Unmarshal(raw, &s) != nil || !slices.Contains(values, s) {
		o.fail(name, "must be one of %s", strings.Join(values, ", "))
	}
	return s
}

// deviceErrors reads an array of {code, message}; [] when absent.
func (o *object) deviceErrors(name string) []deviceError {
	out := []deviceError{}
	o.objects(name, []string{"code", "message"}, func(e *object) {
		out = append(out, deviceError{Code: e.errorCode("code"), Message: e.str("message", false)})
	})
	if o.fault != nil {
		return []deviceError{}
	}
	return out
}

// errorCode reads a required integer or string, returned as compact JSON.
func (o *object) errorCode(name string) json.RawMessage {
	raw, ok := o.value(name, true)
	if !ok {
		return nil
	}
	switch firstByte(raw) {
	case '"':
		s, ok := o.decodeString(name, raw)
		if !ok {
			return nil
		}
		var buf bytes.Buffer
		if err := encodeCompact(&buf, s); err != nil {
			o.fail(name, "must be an integer or a string")
			return nil
		}
		return buf.Bytes()
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return strconv.AppendInt(nil, o.integer(name, true, -maxSafe, maxSafe), 10)
	}
	o.fail(name, "must be an integer or a string")
	return nil
}

// parseFinite parses raw, a JSON number, as a finite float64.
func parseFinite(raw []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// parseIntegral parses raw, a JSON number, as an integer of at most maxSafe
// in magnitude; 5.0 and 5e0 are read as 5.
func parseIntegral(raw []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		// A fraction or an exponent: accept the number if it is integral.
		f, ferr := strconv.ParseFloat(string(raw), 64)
		if ferr == nil && f == math.Trunc(f) && math.Abs(f) <= maxSafe {
			n, err = int64(f), nil
		}
	}
	if err != nil || n < -maxSafe || n > maxSafe {
		return 0, false
	}
	return n, true
}

// firstByte returns the first byte of raw that is not JSON white space, or 0.
func firstByte(raw []byte) byte {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

func isNumber(raw []byte) bool {
	c := firstByte(raw)
	return c == '-' || c >= '0' && c <= '9'
}

// rangeText says which values a bounded number may take.
func rangeText(lo, hi float64) string {
	switch {
	case hi == noMax || hi == maxSafe:
		return "must not be below " + strconv.FormatFloat(lo, 'g', -1, 64)
	case lo == noMin || lo == -maxSafe:
		return "must not be above " + strconv.FormatFloat(hi, 'g', -1, 64)
	}
	return "must be between " + strconv.FormatFloat(lo, 'g', -1, 64) + " and " + strconv.FormatFloat(hi, 'g', -1, 64)
}

// quoteName quotes a client-chosen name for an error message, cut to 64
// bytes so that a hostile name cannot make the message huge.
func quoteName(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}

// The fast path of ParseEventData.
//
// Almost every published event is a small flat object of one of the simple
// types, {"value":21.5}. fastEventData reads those with no map, no
// reflection and one allocation, the output. It takes only what it is sure
// of: a JSON object whose members are scalars (numbers, strings of printable
// ASCII without escapes, true, false, null), each a known field of the type,
// each once, every value valid, and samples absent or null. It declines
// everything else — every input that ParseEventData refuses among them — and
// the general path, the reference, takes it: FuzzFastEventData checks that
// the two agree on every input the fast path takes.

// fastKind is how the fast path reads and writes a field.
type fastKind uint8

const (
	fastNumber  fastKind = iota // a finite number in [lo, hi], required
	fastInteger                 // an integral number in [lo, hi], required
	fastEnum                    // one of values, required
	fastBool                    // a boolean, false by default
	fastTime                    // updateTime: an RFC 3339 time, now by default
	fastSamples                 // samples: absent or null, one sample of the numbers at updateTime
)

// fastField is one field of an event type of the fast path.
type fastField struct {
	name   string
	kind   fastKind
	lo, hi float64  // fastNumber, fastInteger
	values []string // fastEnum
}

// The event types of the fast path, their fields in the order of the output:
// the order of the general path's structs.
var (
	fastTouch              = []fastField{{name: "updateTime", kind: fastTime}}
	fastTemperature        = []fastField{{name: "value", kind: fastNumber, lo: noMin, hi: noMax}, {name: "isBackfilled", kind: fastBool}, {name: "samples", kind: fastSamples}, {name: "updateTime", kind: fastTime}}
	fastObjectPresent      = []fastField{{name: "state", kind: fastEnum, values: presenceStates}, {name: "updateTime", kind: fastTime}}
	fastHumidity           = []fastField{{name: "temperature", kind: fastNumber, lo: noMin, hi: noMax}, {name: "relativeHumidity", kind: fastNumber, lo: 0, hi: 100}, {name: "samples", kind: fastSamples}, {name: "isBackfilled", kind: fastBool}, {name: "updateTime", kind: fastTime}}
	fastObjectPresentCount = []fastField{{name: "total", kind: fastInteger, lo: 0, hi: maxSafe}, {name: "updateTime", kind: fastTime}}
	fastWaterPresent       = []fastField{{name: "state", kind: fastEnum, values: presenceStates}, {name: "updateTime", kind: fastTime}}
	fastCO2                = []fastField{{name: "ppm", kind: fastNumber, lo: 0, hi: noMax}, {name: "updateTime", kind: fastTime}}
	fastPressure           = []fastField{{name: "pascal", kind: fastNumber, lo: 0, hi: noMax}, {name: "updateTime", kind: fastTime}}
	fastMotion             = []fastField{{name: "state", kind: fastEnum, values: motionStates}, {name: "updateTime", kind: fastTime}}
	fastContact            = []fastField{{name: "state", kind: fastEnum, values: contactStates}, {name: "updateTime", kind: fastTime}}
	fastProbeWireStatus    = []fastField{{name: "state", kind: fastEnum, values: probeWireStates}, {name: "updateTime", kind: fastTime}}
	fastBatteryStatus      = []fastField{{name: "percentage", kind: fastInteger, lo: 0, hi: 100}, {name: "updateTime", kind: fastTime}}
)

// fastFields returns the fields of an event type of the fast path, or nil.
func fastFields(t EventType) []fastField {
	switch t {
	case EventTouch:
		return fastTouch
	case EventTemperature:
		return fastTemperature
	case EventObjectPresent:
		return fastObjectPresent
	case EventHumidity:
		return fastHumidity
	case EventObjectPresentCount, EventTouchCount:
		return fastObjectPresentCount
	case EventWaterPresent:
		return fastWaterPresent
	case EventCO2:
		return fastCO2
	case EventPressure:
		return fastPressure
	case EventMotion:
		return fastMotion
	case EventContact:
		return fastContact
	case EventProbeWireStatus:
		return fastProbeWireStatus
	case EventBatteryStatus:
		return fastBatteryStatus
	}
	return nil
}

// maxFastMembers bounds the members of an object the fast path reads; no
// type of the fast path has more fields.
const maxFastMembers = 5

// fastValue is a field's value as the fast path read it.
type fastValue struct {
	f    float64 // fastNumber
	n    int64   // fastInteger
	s    string  // fastEnum: one of the field's values
	b    bool    // fastBool
	time time.Time
}

// fastEventData is the fast path of ParseEventData: its output, and true, or
// false when it declines raw.
func fastEventData(t EventType, raw []byte, now time.Time) ([]byte, bool) {
	fields := fastFields(t)
	if fields == nil {
		return nil, false
	}
	var members [maxFastMembers][2][]byte // key, value
	n, ok := scanFlat(raw, &members)
	if !ok {
		return nil, false
	}
	var given [maxFastMembers][]byte // by field: the value, nil if absent or null
	for _, m := range members[:n] {
		i := slices.IndexFunc(fields, func(f fastField) bool { return f.name == string(m[0]) })
		if i < 0 {
			return nil, false
		}
		if m[1][0] != 'n' {
			given[i] = m[1]
		}
	}
	var vals [maxFastMembers]fastValue
	updateTime := now
	for i, f := range fields {
		v, ok := fastRead(f, given[i])
		if !ok {
			return nil, false
		}
		if f.kind == fastTime && given[i] != nil {
			updateTime = v.time
		}
		vals[i] = v
	}
	return appendFast(make([]byte, 0, fastLen(t, fields)), t, fields, vals[:len(fields)], updateTime), true
}

// fastRead reads the value raw of field f, nil when absent or null, or
// returns false.
func fastRead(f fastField, raw []byte) (fastValue, bool) {
	var v fastValue
	if raw == nil {
		required := f.kind == fastNumber || f.kind == fastInteger || f.kind == fastEnum
		return v, !required
	}
	ok := false
	switch f.kind {
	case fastNumber:
		if isNumber(raw) {
			v.f, ok = parseFinite(raw)
			ok = ok && v.f >= f.lo && v.f <= f.hi
		}
	case fastInteger:
		if isNumber(raw) {
			v.n, ok = parseIntegral(raw)
			ok = ok && float64(v.n) >= f.lo && float64(v.n) <= f.hi
		}
	case fastEnum:
		if raw[0] == '"' {
			i := slices.Index(f.values, string(raw[1:len(raw)-1]))
			if ok = i >= 0; ok {
				v.s = f.values[i]
			}
		}
	case fastBool:
		v.b, ok = string(raw) == "true", raw[0] == 't' || raw[0] == 'f'
	case fastTime:
		if raw[0] == '"' {
			v.time, ok = parseTimeText(string(raw[1 : len(raw)-1]))
		}
	}
	return v, ok
}

// appendFast appends {"<t>":{...}}, the output of the general path for the
// values of fields. Numbers and the time, which samples repeat, are
// formatted once.
func appendFast(dst []byte, t EventType, fields []fastField, vals []fastValue, updateTime time.Time) []byte {
	var timeBuf [len(TimeLayout) + 2]byte
	timeText := appendQuotedTime(timeBuf[:0], updateTime)
	var numBuf [maxFastMembers][32]byte
	var nums [maxFastMembers][]byte
	for i, f := range fields {
		if f.kind == fastNumber {
			nums[i] = appendFloat(numBuf[i][:0], vals[i].f)
		}
	}
	dst = append(dst, `{"`...)
	dst = append(dst, t...)
	dst = append(dst, `":{`...)
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, f.name...)
		dst = append(dst, `":`...)
		switch v := vals[i]; f.kind {
		case fastNumber:
			dst = append(dst, nums[i]...)
		case fastInteger:
			dst = strconv.AppendInt(dst, v.n, 10)
		case fastEnum:
			dst = append(dst, '"')
			dst = append(dst, v.s...)
			dst = append(dst, '"')
		case fastBool:
			dst = strconv.AppendBool(dst, v.b)
		case fastTime:
			dst = append(dst, timeText...)
		case fastSamples:
			dst = append(dst, "[{"...)
			for j, g := range fields {
				if g.kind == fastNumber {
					dst = append(dst, '"')
					dst = append(dst, g.name...)
					dst = append(dst, `":`...)
					dst = append(dst, nums[j]...)
					dst = append(dst, ',')
				}
			}
			dst = append(dst, `"sampleTime":`...)
			dst = append(dst, timeText...)
			dst = append(dst, "}]"...)
		}
	}
	return append(dst, "}}"...)
}

// fastLen bounds the length of appendFast's output for fields.
func fastLen(t EventType, fields []fastField) int {
	const value = 32 // a number (24 at most), an integer, a quoted time (29)
	n := len(t) + 8
	for _, f := range fields {
		n += len(f.name) + 4 + value
		if f.kind == fastEnum {
			n += len("INVALID_COEFFICIENT_CONFIGURATION")
		}
		if f.kind == fastSamples {
			n += len(`[{"sampleTime":}]`) + value
			for _, g := range fields {
				if g.kind == fastNumber {
					n += len(g.name) + 4 + value
				}
			}
		}
	}
	return n
}

func appendQuotedTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = AppendTime(dst, t)
	return append(dst, '"')
}

// appendFloat appends f as encoding/json writes a float64.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

// scanFlat reads raw as a JSON object of at most maxFastMembers members, each
// with a distinct key of printable ASCII without escapes and a scalar value:
// a number, true, false, null, or a string of printable ASCII without escapes.
// It stores each member's key (without quotes) and value (as written) in
// members and returns their number, or false when raw is anything else.
func scanFlat(raw []byte, members *[maxFastMembers][2][]byte) (int, bool) {
	i := skipSpaces(raw, 0)
	if i == len(raw) || raw[i] != '{' {
		return 0, false
	}
	i = skipSpaces(raw, i+1)
	if i < len(raw) && raw[i] == '}' {
		return 0, skipSpaces(raw, i+1) == len(raw)
	}
	for n := 0; n < maxFastMembers; n++ {
		end, ok := scanPlainString(raw, i)
		if !ok {
			return 0, false
		}
		key := raw[i+1 : end-1]
		for _, m := range members[:n] {
			if string(m[0]) == string(key) {
				return 0, false // the general path keeps the last
			}
		}
		if i = skipSpaces(raw, end); i == len(raw) || raw[i] != ':' {
			return 0, false
		}
		i = skipSpaces(raw, i+1)
		if end, ok = scanScalar(raw, i); !ok {
			return 0, false
		}
		members[n] = [2][]byte{key, raw[i:end]}
		if i = skipSpaces(raw, end); i == len(raw) {
			return 0, false
		}
		switch raw[i] {
		case '}':
			return n + 1, skipSpaces(raw, i+1) == len(raw)
		case ',':
			i = skipSpaces(raw, i+1)
		default:
			return 0, false
		}
	}
	return 0, false
}

// skipSpaces returns the index of the first byte of b at or after i that is
// not JSON white space, or len(b).
func skipSpaces(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanPlainString returns the index after the string at b[i] if it is a JSON
// string of printable ASCII without escapes.
func scanPlainString(b []byte, i int) (int, bool) {
	if i == len(b) || b[i] != '"' {
		return 0, false
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return 0, false
		}
	}
	return 0, false
}

// scanScalar returns the index after the scalar value at b[i]: a plain
// string (scanPlainString), true, false, null or a JSON number.
func scanScalar(b []byte, i int) (int, bool) {
	if i == len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return scanPlainString(b, i)
	case 't':
		return i + 4, bytes.HasPrefix(b[i:], []byte("true"))
	case 'f':
		return i + 5, bytes.HasPrefix(b[i:], []byte("false"))
	case 'n':
		return i + 4, bytes.HasPrefix(b[i:], []byte("null"))
	}
	return scanNumber(b, i)
}

// scanNumber returns the index after the JSON number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
