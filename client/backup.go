package client

import "context"

// Backup asks the server for a consistent copy of its message store in
// dir, a directory that must not exist yet, given as an absolute path on
// the server's machine. It returns once the copy is complete; the copy
// holds every message acknowledged before the call.
func (a *Admin) Backup(ctx context.Context, dir string) (*BackupInfo, error) {
	var ans struct{ Backup BackupInfo }
	if err := a.call(ctx, "POST", "/v1/admin/backup", map[string]any{"to": dir}, &ans); err != nil {
		return nil, err
	}
	return &ans.Backup, nil
}

// BackupInfo describes a backup the server made.
type BackupInfo struct {
	Dir    string `json:"dir"`
	TookMS int64  `json:"took_ms"`
}
