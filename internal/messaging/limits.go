package messaging

import (
	"context"

	"github.com/switchboard-chat/switchboard/internal/admission"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

func noRelease() {}

// admit checks the caller's app and user against their limits and the
// node's load before a call of class k does any work. The caller must call
// release when the call ends. Without Config.Admission everything is
// admitted.
func (s *Service) admit(ctx context.Context, caller chat.Address, k admission.Class) (release func(), err error) {
	if s.adm == nil {
		return noRelease, nil
	}
	a, err := s.app(ctx, caller.App())
	if err != nil {
		return nil, err
	}
	return s.adm.Admit(a, caller, k)
}

// Connect admits a new live session (a WebSocket) of caller: refused with
// unavailable while the app is frozen or at its connection limit. release
// must be called once the session ends.
func (s *Service) Connect(ctx context.Context, caller chat.Address) (release func(), err error) {
	if s.adm == nil {
		return noRelease, nil
	}
	a, err := s.app(ctx, caller.App())
	if err != nil {
		return nil, err
	}
	return s.adm.Connect(a)
}

// shown is an app as the admin API answers it: its limits in force, the
// server's defaults filled in for those it did not set.
func (s *Service) shown(a chat.App) chat.App {
	if s.adm != nil {
		a.Limits = s.adm.Limits(a)
	} else {
		a.Limits = a.Limits.Or(chat.DefaultLimits)
	}
	return a
}

// SetLimits changes the limits given in c and leaves the others as they
// are. Each must be a whole number from 1 to a sane bound.
func (s *Service) SetLimits(ctx context.Context, id string, c chat.LimitChange) (chat.App, error) {
	if chat.ValidAppID(id) != nil {
		return chat.App{}, chat.Errorf(chat.NotFound, "app %q not found", id)
	}
	var probe chat.Limits
	if err := c.Apply(&probe); err != nil {
		return chat.App{}, err // before touching the store
	}
	a, err := s.st.UpdateApp(ctx, id, func(a *chat.App) error { return c.Apply(&a.Limits) })
	if err != nil {
		return chat.App{}, storeErr(err, "app "+id)
	}
	s.remember(a)
	return s.shown(a.Public()), nil
}

// SetFrozen freezes or unfreezes an app. While frozen, every call of its
// users is refused with unavailable, and new sessions too; other apps carry
// on. This node sees the change at once, other nodes within CacheTTL.
func (s *Service) SetFrozen(ctx context.Context, id string, frozen bool) (chat.App, error) {
	if chat.ValidAppID(id) != nil {
		return chat.App{}, chat.Errorf(chat.NotFound, "app %q not found", id)
	}
	a, err := s.st.UpdateApp(ctx, id, func(a *chat.App) error { a.Frozen = frozen; return nil })
	if err != nil {
		return chat.App{}, storeErr(err, "app "+id)
	}
	s.remember(a)
	return s.shown(a.Public()), nil
}
