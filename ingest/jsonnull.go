package ingest

import "bytes"

// dropNullMembers removes the members of JSON objects whose value is null:
// "parentSpanId": null, {"doubleValue": null}. The protobuf JSON mapping
// that OTLP/JSON follows reads null as the field's default, but pdata's
// decoder refuses it for ids, enums and numbers, and the whole export
// with it (QA; the Vercel AI SDK sends doubleValue: null for non-finite
// values). Without a member, the field is its default, as null means.
// Text that is not valid JSON comes back in some form for the decoder to
// refuse.
func dropNullMembers(b []byte) []byte {
	if !bytes.Contains(b, []byte("null")) {
		return b
	}
	out := make([]byte, 0, len(b))
	var stack []byte // '{' or '[' of each open container
	keyAt := -1      // in out: where the current member's key starts
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			end := stringEnd(b, i)
			keyAt = -1
			if len(stack) > 0 && stack[len(stack)-1] == '{' && isKey(b, end) {
				keyAt = len(out)
			}
			out = append(out, b[i:end]...)
			i = end - 1
			continue
		case c == '{' || c == '[':
			stack = append(stack, c)
		case c == '}' || c == ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case c == 'n' && keyAt >= 0 && nullAt(b, i) && valueAfterColon(out[keyAt:]):
			// Drop the member: its key, colon and null, and one comma
			// beside it (the one after it, or else the one before).
			out = out[:keyAt]
			j := skipJSONSpace(b, i+4)
			if j < len(b) && b[j] == ',' {
				i = j
			} else {
				k := len(out)
				for k > 0 && isJSONSpace(out[k-1]) {
					k--
				}
				if k > 0 && out[k-1] == ',' {
					out = out[:k-1]
				}
				i += 3
			}
			keyAt = -1
			continue
		}
		if !isJSONSpace(c) && c != ':' {
			keyAt = -1 // past the member's value start: not a null member
		}
		out = append(out, c)
	}
	return out
}

// nullAt says whether the literal null starts at i, a whole token.
func nullAt(b []byte, i int) bool {
	if !bytes.HasPrefix(b[i:], []byte("null")) {
		return false
	}
	j := skipJSONSpace(b, i+4)
	return j >= len(b) || b[j] == ',' || b[j] == '}' || b[j] == ']'
}

// stringEnd is the index just past the string literal that opens at i.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// isKey says whether a colon follows the string that ends at end.
func isKey(b []byte, end int) bool {
	j := skipJSONSpace(b, end)
	return j < len(b) && b[j] == ':'
}

// valueAfterColon says whether member text (key, spaces, colon, spaces)
// has reached its value: a colon and nothing but spaces after the key.
func valueAfterColon(member []byte) bool {
	k := stringEnd(member, 0)
	rest := bytes.TrimLeft(member[k:], " \t\r\n")
	return len(rest) > 0 && rest[0] == ':' && len(bytes.TrimLeft(rest[1:], " \t\r\n")) == 0
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	return i
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
