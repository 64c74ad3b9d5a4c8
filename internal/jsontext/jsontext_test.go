package jsontext

import (
	"encoding/json"
	"testing"
)

func TestAppendString(t *testing.T) {
	for _, c := range []struct {
		in, lenient string
		bad         int // in strict mode
	}{
		{"plain", `"plain"`, -1},
		{"q\"b\\n\nr\rt\t\x01", `"q\"b\\n\nr\rt\t\u0001"`, -1},
		{"héllo ☃", `"héllo ☃"`, -1},
		{"ab\xffc", `"ab\ufffdc"`, 2},
		{"\xc3", `"\ufffd"`, 0},
	} {
		got, bad := AppendString([]byte("x"), c.in, false)
		if string(got) != "x"+c.lenient || bad != -1 {
			t.Errorf("%q: %s, %d; want %s", c.in, got, bad, c.lenient)
		}
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil {
			t.Errorf("%q: %s is not JSON: %v", c.in, got[1:], err)
		}
		if _, bad := AppendString(nil, c.in, true); bad != c.bad {
			t.Errorf("%q strict: bad at %d, want %d", c.in, bad, c.bad)
		}
	}
}
