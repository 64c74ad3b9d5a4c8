package ingest

import "testing"

func TestDropNullMembers(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":null}`:                                  `{}`,
		`{"a": null, "b": 1}`:                         `{ "b": 1}`,
		`{"b": 1, "a" : null }`:                       `{"b": 1 }`,
		`{"b":1,"a":null,"c":2}`:                      `{"b":1,"c":2}`,
		`{"v":{"doubleValue":null},"k":"x"}`:          `{"v":{},"k":"x"}`,
		`{"s":"null","t":"a\"b: null","u":[null, 1]}`: `{"s":"null","t":"a\"b: null","u":[null, 1]}`,
		`{"nullx":"y","z":nullable}`:                  `{"nullx":"y","z":nullable}`,
		`{"a":[{"b":null}],"c":true}`:                 `{"a":[{}],"c":true}`,
		`{"a":1}`:                                     `{"a":1}`,
	} {
		if got := string(dropNullMembers([]byte(in))); got != want {
			t.Errorf("dropNullMembers(%s) = %s, want %s", in, got, want)
		}
	}
}
