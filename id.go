package dcon

// IDLen is the length of every dcon identifier: an xid in its string form
// (20 characters of base32hex, lowercase, whose first bytes are the Unix second
// it was made in).
const IDLen = 20

// EmulatedDevicePrefix starts the id of every emulated device: "emu" + an xid,
// 23 characters in all, as the original product's clients expect.
const EmulatedDevicePrefix = "emu"

// ValidID reports whether s has the form of an xid string.
func ValidID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'v') {
			return false
		}
	}
	return true
}

// ValidProjectID reports whether s can name a project: 1 to 63 characters of
// lowercase letters, digits and hyphens, starting with a letter or digit. Project
// ids made by dcon are xids, which always qualify.
func ValidProjectID(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-') {
			return false
		}
	}
	return true
}

// ValidDeviceID reports whether s has the form of a device id: an xid, or
// "emu" followed by an xid for emulated devices.
func ValidDeviceID(s string) bool {
	if len(s) == len(EmulatedDevicePrefix)+IDLen && s[:len(EmulatedDevicePrefix)] == EmulatedDevicePrefix {
		return ValidID(s[len(EmulatedDevicePrefix):])
	}
	return ValidID(s)
}
