package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// App is a tenant as the admin API shows it. Secret is set only in the
// answer to CreateApp.
type App struct {
	ID      string         `json:"id"`
	Name    string         `json:"name"`
	Secret  string         `json:"secret,omitempty"`
	Interop []string       `json:"interop"`
	Limits  map[string]int `json:"limits,omitempty"`
	// Frozen: the operators stopped the app's traffic (Admin.Freeze).
	Frozen bool `json:"frozen,omitempty"`
}

// Admin calls the admin API with the server's admin token. It is safe for
// concurrent use.
type Admin struct {
	base  string
	token string
	hc    *http.Client
}

// NewAdmin returns an admin client for the server at baseURL.
func NewAdmin(baseURL, adminToken string, opts *Options) *Admin {
	a := &Admin{base: strings.TrimRight(baseURL, "/"), token: adminToken}
	if opts != nil {
		a.hc = opts.HTTPClient
	}
	if a.hc == nil {
		a.hc = &http.Client{Timeout: 30 * time.Second}
	}
	return a
}

func (a *Admin) call(ctx context.Context, method, path string, in, out any) error {
	_, err := do(ctx, a.hc, method, a.base+path, a.token, in, out)
	return err
}

// CreateApp registers an app; the answer carries its secret.
func (a *Admin) CreateApp(ctx context.Context, id, name string) (*App, error) {
	var ans struct{ App App }
	if err := a.call(ctx, "POST", "/v1/admin/apps", map[string]any{"id": id, "name": name}, &ans); err != nil {
		return nil, err
	}
	return &ans.App, nil
}

// Apps lists every app, without secrets.
func (a *Admin) Apps(ctx context.Context) ([]App, error) {
	var ans struct{ Apps []App }
	if err := a.call(ctx, "GET", "/v1/admin/apps", nil, &ans); err != nil {
		return nil, err
	}
	return ans.Apps, nil
}

// SetInterop replaces the list of apps whose users app's users may message.
func (a *Admin) SetInterop(ctx context.Context, app string, apps []string) (*App, error) {
	var ans struct{ App App }
	if err := a.call(ctx, "PUT", "/v1/admin/apps/"+url.PathEscape(app)+"/interop", map[string]any{"apps": nonNil(apps)}, &ans); err != nil {
		return nil, err
	}
	return &ans.App, nil
}

// SetLimits changes some of an app's limits, by the API's field names
// (sends_per_second, burst, max_concurrent_requests, max_connections,
// user_sends_per_second).
func (a *Admin) SetLimits(ctx context.Context, app string, limits map[string]int) (*App, error) {
	var ans struct{ App App }
	if err := a.call(ctx, "PUT", "/v1/admin/apps/"+url.PathEscape(app)+"/limits", limits, &ans); err != nil {
		return nil, err
	}
	return &ans.App, nil
}

// Token mints a user token for user of app, valid for ttl (0: the
// server's default).
func (a *Admin) Token(ctx context.Context, app, user string, ttl time.Duration) (string, error) {
	in := map[string]any{"user": user}
	if ttl > 0 {
		in["ttl_seconds"] = int(ttl.Seconds())
	}
	var ans struct{ Token string }
	if err := a.call(ctx, "POST", "/v1/admin/apps/"+url.PathEscape(app)+"/tokens", in, &ans); err != nil {
		return "", err
	}
	return ans.Token, nil
}

// Freeze makes the app's users get 503 unavailable until Unfreeze; other
// apps carry on.
func (a *Admin) Freeze(ctx context.Context, app string) error {
	return a.call(ctx, "POST", "/v1/admin/apps/"+url.PathEscape(app)+"/freeze", nil, nil)
}

// Unfreeze lifts Freeze.
func (a *Admin) Unfreeze(ctx context.Context, app string) error {
	return a.call(ctx, "POST", "/v1/admin/apps/"+url.PathEscape(app)+"/unfreeze", nil, nil)
}
