package sqsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signature Version 4 constants.
const (
	sigAlgorithm   = "AWS4-HMAC-SHA256"
	sigService     = "sqs"
	sigTerminator  = "aws4_request"
	sigTimeFormat  = "20060102T150405Z"
	sigDateFormat  = "20060102"
	maxClockSkew   = 15 * time.Minute
	amzDateHeader  = "X-Amz-Date"
	authHeaderName = "Authorization"
)

// sigV4 is a parsed Authorization header.
type sigV4 struct {
	accessKey     string
	date          string
	region        string
	service       string
	terminator    string
	signedHeaders []string
	signature     []byte
}

// authenticate checks the request's Signature Version 4 against the
// configured credentials and returns the access key id that signed it. With
// no credentials configured it accepts every request.
func (a *API) authenticate(r *http.Request, body []byte) (string, *apiError) {
	if len(a.cfg.Credentials) == 0 {
		return "", nil
	}
	header := r.Header.Get(authHeaderName)
	if header == "" {
		if r.URL.Query().Get("X-Amz-Signature") != "" {
			return "", errMissingAuthenticationToken("Presigned URLs are not supported; sign requests with an Authorization header.")
		}
		return "", errMissingAuthenticationToken("Request is missing Authentication Token.")
	}
	sig, apiErr := parseAuthorization(header)
	if apiErr != nil {
		return "", apiErr
	}

	secret, ok := a.cfg.Credentials[sig.accessKey]
	if !ok {
		return "", errInvalidClientTokenID()
	}

	amzDate := r.Header.Get(amzDateHeader)
	if amzDate == "" {
		return "", errIncompleteSignature("AWS authentication requires a valid X-Amz-Date header.")
	}
	signedAt, err := time.Parse(sigTimeFormat, amzDate)
	if err != nil {
		return "", errIncompleteSignature("The X-Amz-Date header %q is not a date of the form 20060102T150405Z.", amzDate)
	}
	if apiErr := checkSkew(signedAt, a.cfg.Now()); apiErr != nil {
		return "", apiErr
	}
	if sig.date != signedAt.Format(sigDateFormat) {
		return "", errSignatureDoesNotMatch("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: %q != %q.", sig.date, signedAt.Format(sigDateFormat))
	}
	if sig.service != sigService {
		return "", errSignatureDoesNotMatch("Credential should be scoped to correct service: %q.", sigService)
	}
	if sig.terminator != sigTerminator {
		return "", errSignatureDoesNotMatch("Credential should be scoped with a valid terminator: %q, not %q.", sigTerminator, sig.terminator)
	}

	canonical := canonicalRequest(r, sig.signedHeaders, body)
	scope := strings.Join([]string{sig.date, sig.region, sig.service, sig.terminator}, "/")
	stringToSign := strings.Join([]string{sigAlgorithm, amzDate, scope, hexSHA256([]byte(canonical))}, "\n")
	key := signingKey(secret, sig.date, sig.region, sig.service)
	want := hmacSHA256(key, []byte(stringToSign))
	if !hmac.Equal(want, sig.signature) {
		return "", errSignatureDoesNotMatch("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return sig.accessKey, nil
}

// checkSkew rejects a signing time more than maxClockSkew away from now,
// with the messages AWS uses.
func checkSkew(signedAt, now time.Time) *apiError {
	now = now.UTC()
	switch {
	case signedAt.Before(now.Add(-maxClockSkew)):
		return errSignatureDoesNotMatch("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			signedAt.Format(sigTimeFormat), now.Add(-maxClockSkew).Format(sigTimeFormat), now.Format(sigTimeFormat))
	case signedAt.After(now.Add(maxClockSkew)):
		return errSignatureDoesNotMatch("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			signedAt.Format(sigTimeFormat), now.Add(maxClockSkew).Format(sigTimeFormat), now.Format(sigTimeFormat))
	}
	return nil
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=<key>/<date>/
// <region>/<service>/aws4_request, SignedHeaders=<h1;h2>, Signature=<hex>".
func parseAuthorization(header string) (sigV4, *apiError) {
	var sig sigV4
	algorithm, rest, _ := strings.Cut(strings.TrimSpace(header), " ")
	if algorithm != sigAlgorithm {
		return sig, errIncompleteSignature("Unsupported authorization type %q; sign requests with %s.", algorithm, sigAlgorithm)
	}
	fields := make(map[string]string, 3)
	for part := range strings.SplitSeq(rest, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sig, errIncompleteSignature("Authorization header requires each component to be of the form name=value; %q is not.", strings.TrimSpace(part))
		}
		fields[name] = value
	}
	for _, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[name] == "" {
			return sig, errIncompleteSignature("Authorization header requires the '%s' parameter.", name)
		}
	}

	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[0] == "" {
		return sig, errIncompleteSignature("Credential %q must have the form <access key id>/<date>/<region>/<service>/aws4_request.", fields["Credential"])
	}
	sig.accessKey, sig.date, sig.region, sig.service, sig.terminator = scope[0], scope[1], scope[2], scope[3], scope[4]

	sig.signedHeaders = strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(sig.signedHeaders, "host") {
		return sig, errSignatureDoesNotMatch("The host header must be signed.")
	}

	signature, err := hex.DecodeString(fields["Signature"])
	if err != nil || len(signature) != sha256.Size {
		return sig, errIncompleteSignature("Signature %q must be 64 hexadecimal digits.", fields["Signature"])
	}
	sig.signature = signature
	return sig, nil
}

// canonicalRequest builds the canonical request as the AWS SDK for Go v2
// signer does for services other than S3. The escaped path is escaped once
// more and the query is sorted. Signed header values are trimmed, with inner
// runs of spaces collapsed. The last line is the SHA-256 of the body.
func canonicalRequest(r *http.Request, signedHeaders []string, body []byte) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(escapePath(signedPath(r)))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(hexSHA256(body))
	return b.String()
}

// signedPath returns the escaped path the client sent. It prefers the
// request line to r.URL, which http.StripPrefix may have shortened.
func signedPath(r *http.Request) string {
	path := r.URL.EscapedPath()
	if r.RequestURI != "" && r.RequestURI != "*" {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			path = u.EscapedPath()
		}
	}
	if path == "" {
		path = "/"
	}
	return path
}

func canonicalHeaderValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return stripExcessSpaces(r.Host)
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return strings.TrimSpace(v)
		}
		return strconv.FormatInt(r.ContentLength, 10)
	}
	values := r.Header.Values(name)
	cleaned := make([]string, len(values))
	for i, v := range values {
		cleaned[i] = strings.TrimSpace(stripExcessSpaces(v))
	}
	return strings.Join(cleaned, ",")
}

// stripExcessSpaces trims spaces at both ends and collapses inner runs of
// spaces into one.
func stripExcessSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteByte(s[i])
	}
	return b.String()
}

// canonicalQuery sorts query parameters by name, then value, and escapes
// them as RFC 3986 requires (space as %20).
func canonicalQuery(q url.Values) string {
	type param struct{ key, value string }
	var params []param
	for k, vs := range q {
		for _, v := range vs {
			params = append(params, param{escapeQuery(k), escapeQuery(v)})
		}
	}
	slices.SortFunc(params, func(x, y param) int {
		if c := strings.Compare(x.key, y.key); c != 0 {
			return c
		}
		return strings.Compare(x.value, y.value)
	})
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = p.key + "=" + p.value
	}
	return strings.Join(parts, "&")
}

func escapeQuery(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// escapePath percent-encodes every byte of p except unreserved characters
// and '/'.
func escapePath(p string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if isUnreserved(c) || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte(sigTerminator))
}

func hmacSHA256(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

func hexSHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
