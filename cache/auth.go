package cache

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ContextHeader carries a request's query context: proof that it comes
// from a node of this deployment reading for the project it names. Its
// value is "<unix expiry>.<hex HMAC-SHA256>" over the project, the object
// key and the expiry, keyed with the deployment's secret, which every node
// reads from the catalog (catalog.Store.ClusterSecret): only a process with
// the catalog's credentials can make one.
const ContextHeader = "Strata-Context"

// contextTTL is how long a signed context stays valid: long enough for
// clocks a little apart, short enough that a leaked one soon expires.
const contextTTL = 5 * time.Minute

// SignContext returns the ContextHeader value for reading key of project.
func SignContext(secret []byte, project, key string, now time.Time) string {
	exp := strconv.FormatInt(now.Add(contextTTL).Unix(), 10)
	return exp + "." + hex.EncodeToString(contextMAC(secret, project, key, exp))
}

// CheckContext verifies a ContextHeader value for project and key.
func CheckContext(secret []byte, value, project, key string, now time.Time) error {
	if len(secret) == 0 {
		return errors.New("this node has no deployment secret to check query contexts with")
	}
	if value == "" {
		return errors.New("no " + ContextHeader + " header: objects are served for a query of this deployment")
	}
	exp, sig, ok := strings.Cut(value, ".")
	unix, err := strconv.ParseInt(exp, 10, 64)
	mac, herr := hex.DecodeString(sig)
	if !ok || err != nil || herr != nil || !hmac.Equal(mac, contextMAC(secret, project, key, exp)) {
		return errors.New("invalid " + ContextHeader + " for this project and object")
	}
	if now.Unix() > unix {
		return errors.New(ContextHeader + " has expired")
	}
	return nil
}

func contextMAC(secret []byte, project, key, exp string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(project + "\n" + key + "\n" + exp))
	return m.Sum(nil)
}
