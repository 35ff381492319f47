package retention

import (
	"testing"
	"time"
)

// The default window warns where mediasync always did (365 and 380
// days); a shorter one warns within it, before its purge.
func TestWarningsFollowTheWindow(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	for _, tc := range []struct {
		w                 Window
		warning, imminent time.Duration
	}{
		{Default, 365 * day, 380 * day},
		{Days(30), 22*day + 12*time.Hour, 26*day + 6*time.Hour},
		{Days(7), 5*day + 6*time.Hour, 6*day + 3*time.Hour},
	} {
		if got := tc.w.Warning(); got != tc.warning {
			t.Errorf("%v: Warning() = %v, want %v", tc.w, got, tc.warning)
		}
		if got := tc.w.Imminent(); got != tc.imminent {
			t.Errorf("%v: Imminent() = %v, want %v", tc.w, got, tc.imminent)
		}
	}
	sent := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := Days(30).PurgeAt(sent); !got.Equal(sent.AddDate(0, 0, 30)) {
		t.Errorf("PurgeAt = %v", got)
	}
}
