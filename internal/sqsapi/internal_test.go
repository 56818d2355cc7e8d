package sqsapi

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func str(s string) *string { return &s }

func TestMD5OfAttributesSamples(t *testing.T) {
	// Sample digests published for the SQS algorithm, each computed by an
	// implementation other than this one.
	tests := []struct {
		name  string
		attrs map[string]attributeValue
		want  string
	}{
		{"one string", map[string]attributeValue{
			"SellerName": {DataType: "String", StringValue: str("Example Store")},
		}, "cd28f3b68aeee4b2eac9c66f2f694b58"},
		{"two strings out of order", map[string]attributeValue{
			"test_attribute_name_2": {DataType: "String", StringValue: str("test_attribute_value_2")},
			"test_attribute_name_1": {DataType: "String", StringValue: str("test_attribute_value_1")},
		}, "d53f3b558fe951154770f25cb63dbba9"},
		{"binary", map[string]attributeValue{
			"test_attribute_name": {DataType: "Binary", BinaryValue: []byte("test_attribute_value")},
		}, "23f6bd27ea87aab7dfeadcc9aebee495"},
		{"number and string", map[string]attributeValue{
			"ordinal":  {DataType: "Number", StringValue: str("1")},
			"category": {DataType: "String", StringValue: str("test")},
		}, "d21ae90c49061e927f57df5f5d72be1f"},
		{"none", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := md5OfAttributes(tc.attrs); got != tc.want {
				t.Errorf("md5OfAttributes = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	r := receipt{Queue: "orders.v2", QueueMessageID: uuid.New(), MessageID: uuid.New()}
	handle := r.encode()
	got, ok := decodeReceipt(handle)
	if !ok || got != r {
		t.Fatalf("decode(%q) = %+v, %v, want %+v", handle, got, ok, r)
	}

	for i := range len(handle) {
		b := []byte(handle)
		if b[i] == 'x' {
			b[i] = 'y'
		} else {
			b[i] = 'x'
		}
		if got, ok := decodeReceipt(string(b)); ok && got == r {
			t.Errorf("handle changed at %d still decodes to the same delivery", i)
		}
	}
	for _, bad := range []string{"", "%%%", handle[:20], handle + "AA"} {
		if _, ok := decodeReceipt(bad); ok {
			t.Errorf("decodeReceipt(%q) accepted", bad)
		}
	}
}

func TestValidNumber(t *testing.T) {
	valid := []string{"0", "-1", "+3.5", ".5", "5.", "1e10", "-2.5E-3", strings.Repeat("9", 38), "0.000" + strings.Repeat("1", 38), strings.Repeat("1", 38) + ".000"}
	for _, s := range valid {
		if !validNumber(s) {
			t.Errorf("validNumber(%q) = false", s)
		}
	}
	invalid := []string{"", "-", "1.2.3", "e5", "1e", "0x10", "NaN", " 1", strings.Repeat("9", 39)}
	for _, s := range invalid {
		if validNumber(s) {
			t.Errorf("validNumber(%q) = true", s)
		}
	}
}

func TestStripExcessSpaces(t *testing.T) {
	tests := map[string]string{
		"a":              "a",
		"  a  ":          "a",
		"a   b    c":     "a b c",
		" a  b ":         "a b",
		"no-change here": "no-change here",
	}
	for in, want := range tests {
		if got := stripExcessSpaces(in); got != want {
			t.Errorf("stripExcessSpaces(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscapePath(t *testing.T) {
	tests := map[string]string{
		"/":                    "/",
		"/000000000000/q_1-.~": "/000000000000/q_1-.~",
		"/a%20b":               "/a%2520b",
		"/a b":                 "/a%20b",
	}
	for in, want := range tests {
		if got := escapePath(in); got != want {
			t.Errorf("escapePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStoredAttributesIgnoreForeignData(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("not json"), []byte(`{"attributes":{"a":{"DataType":"String","StringValue":"x"}}}`)} {
		if s := decodeStoredAttributes(b); len(s.Attributes) != 0 {
			t.Errorf("decodeStoredAttributes(%q) = %+v, want nothing", b, s)
		}
	}
	in := storedAttributes{Attributes: map[string]attributeValue{"a": {DataType: "String", StringValue: str("x")}}, TraceHeader: "Root=1"}
	out := decodeStoredAttributes(in.encode())
	if out.TraceHeader != "Root=1" || *out.Attributes["a"].StringValue != "x" {
		t.Errorf("round trip = %+v", out)
	}
	if b := (&storedAttributes{}).encode(); b != nil {
		t.Errorf("empty attributes encode to %q, want nil", b)
	}
}
