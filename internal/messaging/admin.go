package messaging

import (
	"context"
	"slices"
	"time"

	"github.com/switchboard-chat/switchboard/internal/auth"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// CreateApp registers an app with a fresh secret. The answer carries the
// secret; listings never do.
func (s *Service) CreateApp(ctx context.Context, id, name string) (chat.App, error) {
	if err := chat.ValidAppID(id); err != nil {
		return chat.App{}, err
	}
	if len(name) > 128 {
		return chat.App{}, chat.Errorf(chat.InvalidArgument, "name must be at most 128 bytes")
	}
	if name == "" {
		name = id
	}
	a := chat.App{ID: id, Name: name, Secret: auth.NewSecret(), Interop: []string{}, CreatedAt: s.clock()}
	if err := s.st.CreateApp(ctx, a); err != nil {
		return chat.App{}, storeErr(err, "app "+id)
	}
	s.remember(a)
	return s.shown(a), nil
}

// Apps lists every app, without secrets.
func (s *Service) Apps(ctx context.Context) ([]chat.App, error) {
	list, err := s.st.Apps(ctx)
	if err != nil {
		return nil, storeErr(err, "apps")
	}
	for i := range list {
		list[i] = s.shown(list[i].Public())
	}
	return list, nil
}

// SetInterop replaces the list of apps whose users id's users may message.
// Every app named must exist.
func (s *Service) SetInterop(ctx context.Context, id string, apps []string) (chat.App, error) {
	if err := chat.ValidAppID(id); err != nil {
		return chat.App{}, chat.Errorf(chat.NotFound, "app %q not found", id)
	}
	if apps == nil {
		return chat.App{}, chat.Errorf(chat.InvalidArgument, "apps is required (an empty list clears interop)")
	}
	list := slices.Clone(apps)
	slices.Sort(list)
	list = slices.Compact(list)
	for _, other := range list {
		if err := chat.ValidAppID(other); err != nil {
			return chat.App{}, err
		}
		if _, err := s.app(ctx, other); err != nil {
			return chat.App{}, err
		}
	}
	a, err := s.st.UpdateApp(ctx, id, func(a *chat.App) error {
		a.Interop = slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == id })
		return nil
	})
	if err != nil {
		return chat.App{}, storeErr(err, "app "+id)
	}
	s.remember(a)
	return s.shown(a.Public()), nil
}

// MintToken signs a user token for app. ttl 0 means one hour.
func (s *Service) MintToken(ctx context.Context, appID, user string, ttl time.Duration) (string, error) {
	if err := chat.ValidUserID(user); err != nil {
		return "", err
	}
	if ttl < 0 || ttl > auth.MaxTTL {
		return "", chat.Errorf(chat.InvalidArgument, "ttl_seconds must be between 1 and %d", int(auth.MaxTTL.Seconds()))
	}
	if ttl == 0 {
		ttl = time.Hour
	}
	if chat.ValidAppID(appID) != nil {
		return "", chat.Errorf(chat.NotFound, "app %q not found", appID)
	}
	a, err := s.app(ctx, appID)
	if err != nil {
		return "", err
	}
	return auth.Mint(a, user, ttl, s.clock())
}
