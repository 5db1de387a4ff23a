package httpapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/messaging"
	"github.com/switchboard-chat/switchboard/internal/store/memstore"
)

// TestBackupRefusals: the cases answered before any copy is attempted. The
// copy itself is tested end to end in cmd/switchboard (TestBackupUnderLoad).
func TestBackupRefusals(t *testing.T) {
	h := New(Config{Service: messaging.New(messaging.Config{Store: memstore.New()}), AdminToken: "admin"})
	srv := httptest.NewServer(h)
	defer srv.Close()
	exists := t.TempDir()
	for _, tc := range []struct {
		token, body string
		status      int
		want        string
	}{
		{"", `{"to":"/tmp/x"}`, 401, "admin token"},
		{"admin", `{"to":"relative/dir"}`, 400, "absolute path"},
		{"admin", `{}`, 400, "absolute path"},
		{"admin", `{"to":"` + exists + `"}`, 409, "exists already"},
		{"admin", `{"to":"` + filepath.Join(exists, "new") + `"}`, 400, "cannot be copied"},
		{"admin", `{"to":"/x","extra":1}`, 400, "extra"},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/admin/backup", strings.NewReader(tc.body))
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := res.Body.Read(buf)
		b.Write(buf[:n])
		res.Body.Close()
		if res.StatusCode != tc.status || !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: %d %s; want %d and %q", tc.body, res.StatusCode, b.String(), tc.status, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(exists, "new")); !os.IsNotExist(err) {
		t.Errorf("a refused backup made its directory: %v", err)
	}
}
