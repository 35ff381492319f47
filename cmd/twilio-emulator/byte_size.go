package main

import (
	"fmt"
	"strconv"
	"strings"
)

// byteSize is a flag value of bytes written with an optional unit: 4096,
// 1KB (1000), 1KiB (1024), 150MB, 2GiB.
type byteSize int64

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

func (b *byteSize) Set(s string) error {
	v := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("%q: want a non-negative number of bytes with an optional unit (B, KB, MB, GB, KiB, MiB, GiB)", s)
	}
	*b = byteSize(n * mult)
	return nil
}

// String writes the size in the largest unit that divides it, so that
// -help shows "150MB" rather than 150000000.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range units {
		if u.mult > 1 && n >= u.mult && n%u.mult == 0 && n/u.mult < 1000 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
