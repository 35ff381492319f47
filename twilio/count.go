package twilio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Count is a non-negative count that Twilio may send as a JSON string
// ("3", as num_media and num_segments are documented), a number, or null.
// Known is false when the value was null or absent, which is not the same
// as zero: a message whose num_media is unknown may still have media.
type Count struct {
	N     int
	Known bool
}

// String returns the count, or "unknown".
func (c Count) String() string {
	if !c.Known {
		return "unknown"
	}
	return strconv.Itoa(c.N)
}

// UnmarshalJSON accepts "3", 3 or null. An empty string is treated like
// null. Negative, fractional and out-of-range values are errors.
func (c *Count) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	var digits string
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = Count{}
		return nil
	case len(b) > 0 && b[0] == '"':
		if err := json.Unmarshal(b, &digits); err != nil {
			return fmt.Errorf("twilio: count: %w", err)
		}
		if digits == "" {
			*c = Count{}
			return nil
		}
	case len(b) > 0 && (b[0] == '-' || '0' <= b[0] && b[0] <= '9'):
		digits = string(b)
	default:
		return fmt.Errorf("twilio: count must be a string, a number or null, got %s", jsonKind(b))
	}
	n, err := strconv.ParseUint(digits, 10, 31)
	if err != nil {
		return fmt.Errorf("twilio: count %s is not a whole number between 0 and %d", quoteInput(digits), math.MaxInt32)
	}
	*c = Count{N: int(n), Known: true}
	return nil
}

// MarshalJSON writes the count as Twilio does, a string, and unknown as null.
func (c Count) MarshalJSON() ([]byte, error) {
	if !c.Known {
		return []byte("null"), nil
	}
	return json.Marshal(strconv.Itoa(c.N))
}
