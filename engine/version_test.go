package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// writeV1 writes b's rows as strata wrote them at schema version 1: sorted
// like a current file, without the columns later versions added.
func writeV1(t *testing.T, dir, name string, tbl *schema.Table, b arrow.RecordBatch) string {
	t.Helper()
	cur, _ := writeFile(t, dir, name+".current", tbl, []arrow.RecordBatch{b}, engine.ParquetOptions{})
	f, err := file.OpenParquetFile(cur, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{BatchSize: 1 << 20}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	v1, err := tbl.SchemaAt(1)
	if err != nil {
		t.Fatal(err)
	}
	n := v1.NumFields()
	out, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	fw, err := pqarrow.NewFileWriter(v1, out, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.AppendKeyValueMetadata("strata.schema_version", "1"); err != nil {
		t.Fatal(err)
	}
	for rr.Next() {
		rec := rr.RecordBatch()
		cols := make([]arrow.Array, n)
		for i, f := range v1.Fields() {
			c := rec.Column(i)
			if ext, ok := f.Type.(arrow.ExtensionType); ok && !arrow.TypeEqual(c.DataType(), f.Type) {
				// JSON read back as bytes: the same buffers as strings.
				d := c.Data()
				str := array.MakeFromData(array.NewData(ext.StorageType(), d.Len(), d.Buffers(), nil, d.NullN(), d.Offset()))
				c = array.NewExtensionArrayWithStorage(ext, str)
				defer c.Release()
			}
			cols[i] = c
		}
		old := array.NewRecordBatch(v1, cols, rec.NumRows())
		err := fw.Write(old)
		old.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Name()
}

// A lake holds files of every schema version it was written with: a file
// of an older version reads with NULL in the columns it lacks, merges
// into a file of the current version with the same rows, and a file of a
// newer version than the node's is refused rather than misread.
func TestSchemaVersions_OlderFilesReadAndMergeWithNullColumns(t *testing.T) {
	for _, tbl := range schema.Tables() {
		t.Run(tbl.Name, func(t *testing.T) {
			added := tbl.AddedSince(1)
			if len(added) == 0 {
				t.Fatal("version 1 lacks no column: nothing to test")
			}
			dir := t.TempDir()
			b1, b2 := fill(tbl, 300, 0), fill(tbl, 300, 1)
			defer b1.Release()
			defer b2.Release()
			old := writeV1(t, dir, "old.parquet", tbl, b1)
			cur, _ := writeFile(t, dir, "cur.parquet", tbl, []arrow.RecordBatch{b2}, engine.ParquetOptions{})
			db := openDB(t, dir, engine.Options{})
			both := map[string][]engine.File{tbl.Name: {{Path: old, SchemaVersion: 1}, {Path: cur, SchemaVersion: schema.Version}}}

			// Every column of the current schema, in order.
			rows, err := db.Query(context.Background(), engine.Query{SQL: "SELECT * FROM " + tbl.Name + " LIMIT 0", Files: both})
			if err != nil {
				t.Fatal(err)
			}
			cols, _ := collect(t, rows)
			var names []string
			for _, f := range tbl.Schema.Fields() {
				names = append(names, f.Name)
			}
			if strings.Join(cols, ",") != strings.Join(names, ",") {
				t.Fatalf("columns %v, want %v", cols, names)
			}
			// The added columns hold the new file's values and NULL for
			// the old file's rows.
			sel := []string{"count(*)"}
			want := []string{"600"}
			for _, f := range added {
				sel = append(sel, "count("+f.Name+")")
				want = append(want, strconv.Itoa(b2.Column(tbl.Index(f.Name)).Len()-b2.Column(tbl.Index(f.Name)).NullN()))
			}
			q := "SELECT " + strings.Join(sel, ", ") + " FROM " + tbl.Name
			if got := query(t, db, engine.Query{SQL: q, Files: both}); strings.Join(got[0], ",") != strings.Join(want, ",") {
				t.Fatalf("%s: %v, want %v", q, got[0], want)
			}
			onlyOld := map[string][]engine.File{tbl.Name: {{Path: old, SchemaVersion: 1}}}
			if got := query(t, db, engine.Query{SQL: "SELECT count(" + added[0].Name + "), count(*) FROM " + tbl.Name, Files: onlyOld}); strings.Join(got[0], ",") != "0,300" {
				t.Fatalf("old file alone: %v", got[0])
			}

			// Merged, the same rows in a file of the current version.
			out, err := os.Create(filepath.Join(dir, "merged.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			info, err := engine.MergeParquet(context.Background(), out, tbl, []string{old, cur}, time.Time{}, engine.ParquetOptions{})
			out.Close()
			if err != nil {
				t.Fatal(err)
			}
			if info.Rows != 600 || info.SchemaVersion != schema.Version {
				t.Fatalf("merged %d rows at version %d", info.Rows, info.SchemaVersion)
			}
			fingerprint := fmt.Sprintf("SELECT count(*), bit_xor(hash(%s)) FROM %s", tbl.Name, tbl.Name)
			merged := map[string][]engine.File{tbl.Name: {{Path: out.Name(), SchemaVersion: info.SchemaVersion}}}
			before, after := query(t, db, engine.Query{SQL: fingerprint, Files: both}), query(t, db, engine.Query{SQL: fingerprint, Files: merged})
			if strings.Join(before[0], ",") != strings.Join(after[0], ",") {
				for _, c := range names {
					fp := fmt.Sprintf("SELECT bit_xor(hash(%s)), typeof(any_value(%s)) FROM %s", c, c, tbl.Name)
					b, a := query(t, db, engine.Query{SQL: fp, Files: both}), query(t, db, engine.Query{SQL: fp, Files: merged})
					if strings.Join(b[0], ",") != strings.Join(a[0], ",") {
						t.Errorf("column %s (hash, type): %v before the merge, %v after", c, b[0], a[0])
					}
				}
				t.Fatalf("rows before the merge %v, after %v", before[0], after[0])
			}

			// A file of a newer version than this build's.
			_, err = db.Query(context.Background(), engine.Query{SQL: "SELECT count(*) FROM " + tbl.Name,
				Files: map[string][]engine.File{tbl.Name: {{Path: cur, SchemaVersion: schema.Version + 1}}}})
			if err == nil || !strings.Contains(err.Error(), "newer than this node's") {
				t.Fatalf("a file of a newer schema version: %v", err)
			}
		})
	}
}
