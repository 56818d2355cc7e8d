package sqsapi

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
)

// Limits of message attributes, as SQS sets them.
const (
	maxMessageAttributes = 10
	maxAttributeName     = 256
	maxAttributeType     = 256
	maxNumberDigits      = 38
)

// attributeValue is a message attribute on the wire and in storage.
type attributeValue struct {
	DataType         string   `json:"DataType"`
	StringValue      *string  `json:"StringValue,omitempty"`
	BinaryValue      []byte   `json:"BinaryValue,omitempty"`
	StringListValues []string `json:"StringListValues,omitempty"`
	BinaryListValues [][]byte `json:"BinaryListValues,omitempty"`
}

// storedAttributes is the JSON document the API keeps in a payload's
// Attributes.
type storedAttributes struct {
	// Format marks the encoding, so that attributes written by something
	// else are never misread.
	Format      string                    `json:"format"`
	Attributes  map[string]attributeValue `json:"attributes,omitempty"`
	TraceHeader string                    `json:"traceHeader,omitempty"`
	GroupID     string                    `json:"groupId,omitempty"`
	SenderID    string                    `json:"senderId,omitempty"`
}

const storedFormat = "sqs/1"

func (s *storedAttributes) encode() []byte {
	if len(s.Attributes) == 0 && s.TraceHeader == "" && s.GroupID == "" && s.SenderID == "" {
		return nil
	}
	s.Format = storedFormat
	b, err := json.Marshal(s)
	if err != nil {
		// json.Marshal fails only for channels, functions, cyclic values and
		// non-finite floats, which this struct cannot contain.
		panic("sqsapi: encode message attributes: " + err.Error())
	}
	return b
}

// decodeStoredAttributes reads what encode wrote. Anything else, such as no
// attributes at all, yields none.
func decodeStoredAttributes(b []byte) storedAttributes {
	var s storedAttributes
	if len(b) == 0 || json.Unmarshal(b, &s) != nil || s.Format != storedFormat {
		return storedAttributes{}
	}
	return s
}

var (
	attributeNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	numberPattern        = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)
)

// validateMessageAttributes checks attributes as SQS does and returns the
// bytes they count towards the message size: name, data type and value of
// each.
func validateMessageAttributes(attrs map[string]attributeValue) (int, *apiError) {
	if len(attrs) > maxMessageAttributes {
		return 0, errInvalidParameterValue("Number of message attributes [%d] exceeds the allowed maximum [%d].", len(attrs), maxMessageAttributes)
	}
	size := 0
	for name, v := range attrs {
		if err := validateAttributeName(name); err != nil {
			return 0, err
		}
		n, err := validateAttributeValue(name, v)
		if err != nil {
			return 0, err
		}
		size += len(name) + len(v.DataType) + n
	}
	return size, nil
}

func validateAttributeName(name string) *apiError {
	lower := strings.ToLower(name)
	switch {
	case name == "":
		return errInvalidParameterValue("Message attribute name must not be empty.")
	case len(name) > maxAttributeName:
		return errInvalidParameterValue("Message attribute name %q is longer than %d characters.", name, maxAttributeName)
	case !attributeNamePattern.MatchString(name):
		return errInvalidParameterValue("Message attribute name %q is invalid: use letters, digits, '_', '-' and '.'.", name)
	case strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon."):
		return errInvalidParameterValue("Message attribute name %q is reserved: names starting with AWS. or Amazon. belong to AWS.", name)
	case strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
		return errInvalidParameterValue("Message attribute name %q must not start or end with '.' or contain '..'.", name)
	}
	return nil
}

// validateAttributeValue checks one value against its data type and returns
// the size of the value.
func validateAttributeValue(name string, v attributeValue) (int, *apiError) {
	base, _, _ := strings.Cut(v.DataType, ".")
	switch {
	case v.DataType == "":
		return 0, errInvalidParameterValue("The message attribute '%s' must contain a non-empty attribute type.", name)
	case len(v.DataType) > maxAttributeType:
		return 0, errInvalidParameterValue("The message attribute '%s' has a data type longer than %d characters.", name, maxAttributeType)
	case base != "String" && base != "Number" && base != "Binary":
		return 0, errInvalidParameterValue("The type of message attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", name)
	case len(v.StringListValues) > 0 || len(v.BinaryListValues) > 0:
		return 0, errInvalidParameterValue("The message attribute '%s' uses StringListValues or BinaryListValues, which SQS reserves and does not support.", name)
	}

	if base == "Binary" {
		if v.StringValue != nil {
			return 0, errInvalidParameterValue("The message attribute '%s' with type 'Binary' must use field 'Binary'.", name)
		}
		if len(v.BinaryValue) == 0 {
			return 0, errInvalidParameterValue("The message attribute '%s' must contain a non-empty message attribute value for message attribute type '%s'.", name, v.DataType)
		}
		return len(v.BinaryValue), nil
	}

	if v.BinaryValue != nil {
		return 0, errInvalidParameterValue("The message attribute '%s' with type '%s' must use field 'String'.", name, base)
	}
	if v.StringValue == nil || *v.StringValue == "" {
		return 0, errInvalidParameterValue("The message attribute '%s' must contain a non-empty message attribute value for message attribute type '%s'.", name, v.DataType)
	}
	s := *v.StringValue
	if r, ok := invalidRune(s); !ok {
		return 0, errInvalidParameterValue("The message attribute '%s' contains the character #x%X, which SQS does not allow.", name, r)
	}
	if base == "Number" && !validNumber(s) {
		return 0, errInvalidParameterValue("Can't cast the value of message (user) attribute '%s' to a number: %q.", name, s)
	}
	return len(s), nil
}

// validNumber reports whether s is a decimal number with at most 38
// significant digits.
func validNumber(s string) bool {
	if !numberPattern.MatchString(s) {
		return false
	}
	mantissa, _, _ := strings.Cut(strings.ToLower(s), "e")
	digits := strings.TrimLeft(strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, mantissa), "0")
	if strings.Contains(mantissa, ".") {
		digits = strings.TrimRight(digits, "0")
	}
	return len(digits) <= maxNumberDigits
}

// invalidRune returns the first character outside the set SQS allows in
// message bodies and attribute values (#x9, #xA, #xD, #x20 to #xD7FF, #xE000
// to #xFFFD, #x10000 to #x10FFFF), or true when there is none.
func invalidRune(s string) (rune, bool) {
	for _, r := range s {
		switch {
		case r == 0x9 || r == 0xA || r == 0xD:
		case r >= 0x20 && r <= 0xD7FF:
		case r >= 0xE000 && r <= 0xFFFD:
		case r >= 0x10000 && r <= 0x10FFFF:
		default:
			return r, false
		}
	}
	return 0, true
}

// Transport types of the attribute digest.
const (
	transportString = 1
	transportBinary = 2
)

// md5OfAttributes computes MD5OfMessageAttributes as SQS does. The digest
// covers the attributes in name order. Each contributes its name, data type
// and value, each preceded by its length as a 4-byte big-endian integer, and
// a transport type byte (1 for String and Number, 2 for Binary) before the
// value. It returns "" for no attributes.
func md5OfAttributes(attrs map[string]attributeValue) string {
	if len(attrs) == 0 {
		return ""
	}
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)

	h := md5.New()
	writeField := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, name := range names {
		v := attrs[name]
		writeField([]byte(name))
		writeField([]byte(v.DataType))
		if strings.HasPrefix(v.DataType, "Binary") {
			h.Write([]byte{transportBinary})
			writeField(v.BinaryValue)
			continue
		}
		h.Write([]byte{transportString})
		value := ""
		if v.StringValue != nil {
			value = *v.StringValue
		}
		writeField([]byte(value))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func md5Hex(b []byte) string {
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// selectAttributes returns the attributes that names ask for: "All" or ".*"
// selects every one, "prefix.*" those whose name starts with "prefix.", and
// any other entry the attribute of that name.
func selectAttributes(attrs map[string]attributeValue, names []string) map[string]attributeValue {
	if len(attrs) == 0 || len(names) == 0 {
		return nil
	}
	out := make(map[string]attributeValue)
	for _, want := range names {
		switch {
		case want == "All" || want == ".*":
			return attrs
		case strings.HasSuffix(want, ".*"):
			prefix := strings.TrimSuffix(want, "*")
			for name, v := range attrs {
				if strings.HasPrefix(name, prefix) {
					out[name] = v
				}
			}
		default:
			if v, ok := attrs[want]; ok {
				out[want] = v
			}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
