package recording

import (
	"net/url"
	"time"

	"github.com/parley-voice/parley/internal/signedurl"
)

// LinkOrgParam is the query parameter of a recording link that names the
// call's organization (signed with the rest of the link).
const LinkOrgParam = "org"

// Path is the API path of a call's recording, escaped: the path its links
// are signed for (GET /api/v1/calls/{id}/recording).
func Path(callID string) string {
	return "/api/v1/calls/" + url.PathEscape(callID) + "/recording"
}

// Link is a signed recording_url for a call's recording, valid for ttl
// without an API key.
func Link(s signedurl.Signer, orgID, callID string, ttl time.Duration) string {
	return s.URL(Path(callID), url.Values{LinkOrgParam: {orgID}}, ttl)
}
