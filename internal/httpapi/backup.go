package httpapi

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// backup answers POST /v1/admin/backup {"to":"/abs/dir"}: a consistent copy
// of the message store in a new directory on the server's machine, made
// while the server serves (store.Checkpointer). It answers once the copy is
// complete: 201 {"backup":{"dir","took_ms"}}. The copy holds every message
// acknowledged before the call.
func (h *Handler) backup(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		To string `json:"to"`
	}
	if err := h.decodeBody(w, r, &req); err != nil {
		return err
	}
	if req.To == "" || !filepath.IsAbs(req.To) {
		return invalid("to must be an absolute path on the server's machine, of a directory that does not exist yet")
	}
	dir := filepath.Clean(req.To)
	if _, err := os.Lstat(dir); err == nil {
		return chat.Errorf(chat.Conflict, "%s exists already; name a new directory", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return invalid("cannot use %s: %v", dir, err)
	}
	cp, ok := h.svc.Store().(store.Checkpointer)
	if !ok {
		return invalid("this server's message store cannot be copied while it runs; back up its database with its own tools (pg_dump for PostgreSQL)")
	}
	start := time.Now()
	if err := cp.Checkpoint(r.Context(), dir); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return invalid("this server's message store cannot be copied while it runs; back up its database with its own tools (pg_dump for PostgreSQL)")
		}
		if errors.Is(err, store.ErrClosed) {
			return chat.Errorf(chat.Unavailable, "the server is shutting down; retry once it runs")
		}
		return err
	}
	took := time.Since(start)
	h.log.Info("backup made", "dir", dir, "took", took, "request_id", RequestID(r.Context()))
	writeJSON(w, http.StatusCreated, struct {
		Backup BackupInfo `json:"backup"`
	}{BackupInfo{Dir: dir, TookMS: took.Milliseconds()}})
	return nil
}

// BackupInfo describes a backup made by POST /v1/admin/backup.
type BackupInfo struct {
	Dir    string `json:"dir"`
	TookMS int64  `json:"took_ms"`
}
