package objstore

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// Data files live at
//
//	{project}/{table}/date=YYYY-MM-DD/hour=HH/{level}-{ulid}.parquet
//
// The ULID sorts by creation time, so a listing of one partition is in the
// order files were written.

// Partition names the hour partition that holds time t (UTC).
func Partition(t time.Time) string {
	return t.UTC().Format("date=2006-01-02/hour=15")
}

// DataKey is the object key of a new data file.
func DataKey(project, table string, hour time.Time, level int, id ulid.ULID) string {
	return project + "/" + table + "/" + Partition(hour) + "/" + strconv.Itoa(level) + "-" + id.String() + ".parquet"
}

// DayPartition is the partition of a day-level file, which holds rows of
// any hour of one day: the compactor merges a day's small hour files into
// it once the day is cold.
func DayPartition(t time.Time) string {
	return t.UTC().Format("date=2006-01-02")
}

// DayKey is the object key of a new day-level data file.
func DayKey(project, table string, day time.Time, level int, id ulid.ULID) string {
	return project + "/" + table + "/" + DayPartition(day) + "/" + strconv.Itoa(level) + "-" + id.String() + ".parquet"
}

// NewID returns a new ULID for a data file created at t.
func NewID(t time.Time) ulid.ULID {
	return ulid.MustNew(ulid.Timestamp(t), rand.Reader)
}

// DataKeyParts is a parsed data file key.
type DataKeyParts struct {
	Project   string
	Table     string
	Partition string
	Hour      time.Time // the start of the partition: its hour, or its day
	Day       bool      // a day-level file
	Level     int
	ID        ulid.ULID
}

// ParseDataKey splits a data file key into its parts, or fails if the key
// does not follow the layout.
func ParseDataKey(key string) (DataKeyParts, error) {
	parts := strings.Split(key, "/")
	n := len(parts)
	if (n != 5 && n != 4) || !strings.HasSuffix(parts[n-1], ".parquet") {
		return DataKeyParts{}, fmt.Errorf("data key %q: not {project}/{table}/date=…[/hour=…]/{level}-{ulid}.parquet", key)
	}
	p := DataKeyParts{Project: parts[0], Table: parts[1], Partition: strings.Join(parts[2:n-1], "/"), Day: n == 4}
	layout := "date=2006-01-02/hour=15"
	if p.Day {
		layout = "date=2006-01-02"
	}
	start, err := time.Parse(layout, p.Partition)
	if err != nil {
		return DataKeyParts{}, fmt.Errorf("data key %q: partition: %w", key, err)
	}
	p.Hour = start
	lvl, id, ok := strings.Cut(strings.TrimSuffix(parts[n-1], ".parquet"), "-")
	if !ok {
		return DataKeyParts{}, fmt.Errorf("data key %q: file name is not {level}-{ulid}", key)
	}
	if p.Level, err = strconv.Atoi(lvl); err != nil {
		return DataKeyParts{}, fmt.Errorf("data key %q: level: %w", key, err)
	}
	if p.ID, err = ulid.ParseStrict(id); err != nil {
		return DataKeyParts{}, fmt.Errorf("data key %q: id: %w", key, err)
	}
	return p, nil
}

// StrandedUpload reports whether key names the temporary file a file://
// bucket writes an upload to, beside the data key it is renamed to once
// whole (KEY.HEX.tmp): one that is still there long after was left by a
// process killed midway, and is never registered.
func StrandedUpload(key string) bool {
	rest, ok := strings.CutSuffix(key, ".tmp")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 || i == len(rest)-1 {
		return false
	}
	if _, err := strconv.ParseUint(rest[i+1:], 16, 64); err != nil {
		return false
	}
	_, err := ParseDataKey(rest[:i])
	return err == nil
}
