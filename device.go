package dcon

import "time"

// DeviceType is the kind of a device, as in metadata.deviceType and the
// emulator's "type".
type DeviceType string

// The device types of the contract (section 5).
const (
	DeviceTemperature      DeviceType = "temperature"
	DeviceProximity        DeviceType = "proximity"
	DeviceTouch            DeviceType = "touch"
	DeviceHumidity         DeviceType = "humidity"
	DeviceProximityCounter DeviceType = "proximityCounter"
	DeviceTouchCounter     DeviceType = "touchCounter"
	DeviceWaterDetector    DeviceType = "waterDetector"
	DeviceCO2              DeviceType = "co2"
	DeviceMotion           DeviceType = "motion"
	DeviceDeskOccupancy    DeviceType = "deskOccupancy"
	DeviceContact          DeviceType = "contact"
	DeviceCloudConnector   DeviceType = "ccon"
)

// sensorCommon are the events every sensor (not a Cloud Connector) sends.
var sensorCommon = []EventType{EventTouch, EventBatteryStatus, EventNetworkStatus, EventLabelsChanged}

// deviceEvents says which event types each device type emits.
var deviceEvents = map[DeviceType][]EventType{
	DeviceTemperature:      append([]EventType{EventTemperature, EventProbeWireStatus}, sensorCommon...),
	DeviceProximity:        append([]EventType{EventObjectPresent}, sensorCommon...),
	DeviceTouch:            sensorCommon,
	DeviceHumidity:         append([]EventType{EventHumidity}, sensorCommon...),
	DeviceProximityCounter: append([]EventType{EventObjectPresentCount}, sensorCommon...),
	DeviceTouchCounter:     append([]EventType{EventTouchCount}, sensorCommon...),
	DeviceWaterDetector:    append([]EventType{EventWaterPresent}, sensorCommon...),
	DeviceCO2:              append([]EventType{EventCO2, EventHumidity, EventPressure}, sensorCommon...),
	DeviceMotion:           append([]EventType{EventMotion}, sensorCommon...),
	DeviceDeskOccupancy:    append([]EventType{EventDeskOccupancy}, sensorCommon...),
	DeviceContact:          append([]EventType{EventContact}, sensorCommon...),
	DeviceCloudConnector:   {EventConnectionStatus, EventEthernetStatus, EventCellularStatus, EventLabelsChanged},
}

// DeviceTypes lists every device type, in the order of the contract.
var DeviceTypes = []DeviceType{
	DeviceTemperature, DeviceProximity, DeviceTouch, DeviceHumidity,
	DeviceProximityCounter, DeviceTouchCounter, DeviceWaterDetector, DeviceCO2,
	DeviceMotion, DeviceDeskOccupancy, DeviceContact, DeviceCloudConnector,
}

// Valid reports whether t is a known device type.
func (t DeviceType) Valid() bool { _, ok := deviceEvents[t]; return ok }

// Emits reports whether a device of type t can send events of type e.
func (t DeviceType) Emits(e EventType) bool {
	for _, v := range deviceEvents[t] {
		if v == e {
			return true
		}
	}
	return false
}

// Device is a sensor or Cloud Connector of a project. dcon's devices are made by
// its emulator API; gateways publishing for real devices create them the same way.
type Device struct {
	ProjectID     string            `json:"projectId"`
	ID            string            `json:"id"`
	Type          DeviceType        `json:"type"`
	ProductNumber string            `json:"productNumber"` // "" for emulated devices
	Labels        map[string]string `json:"labels"`
	CreateTime    time.Time         `json:"createTime"`
	UpdateTime    time.Time         `json:"updateTime"`
}

// Name is the device's resource name, "projects/{p}/devices/{d}".
func (d *Device) Name() string { return "projects/" + d.ProjectID + "/devices/" + d.ID }

// LabelEmulated is the label the emulator puts on every device it makes.
const LabelEmulated = "virtual-sensor"

// Label keys and values: keys are 1–64 bytes; values at most 256 bytes; both
// valid UTF-8 without control characters. A device has at most 64 labels.
const (
	MaxLabelKeyLen   = 64
	MaxLabelValueLen = 256
	MaxLabels        = 64
)
