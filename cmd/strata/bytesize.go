package main

import (
	"fmt"
	"strconv"
	"strings"
)

// byteSize is a flag value for sizes: 1048576, 512KiB, 32MiB, 1GiB, 2GB.
type byteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

func (s *byteSize) Set(v string) error {
	u := strings.ToUpper(strings.TrimSpace(v))
	mult := int64(1)
	for _, unit := range sizeUnits {
		if strings.HasSuffix(u, unit.suffix) {
			u, mult = strings.TrimSpace(strings.TrimSuffix(u, unit.suffix)), unit.mult
			break
		}
	}
	n, err := strconv.ParseFloat(u, 64)
	b := n * float64(mult)
	// NaN fails every comparison; 2^63 bytes and more overflow int64.
	if err != nil || !(b >= 0 && b < 1<<63) {
		return fmt.Errorf("invalid size %q: want a number of bytes with an optional unit, like 512MiB or 2GB", v)
	}
	*s = byteSize(b)
	return nil
}

func (s *byteSize) String() string {
	n := int64(*s)
	for _, unit := range sizeUnits[:4] {
		if n >= unit.mult && n%unit.mult == 0 {
			return strconv.FormatInt(n/unit.mult, 10) + strings.Replace(unit.suffix, "I", "i", 1)
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *byteSize) Type() string { return "size" }
