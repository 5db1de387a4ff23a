package messaging

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard/internal/auth"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

// DevAppSuffix ends the name of every app that DevLogin created. The name is
// the only mark an app can carry without a change to the stored App, and it
// shows the admin where the app came from.
const DevAppSuffix = " (dev sign-in)"

// DevTokenTTL is the lifetime of the tokens DevLogin mints: a working day,
// so a developer is not signed out mid-session.
const DevTokenTTL = 12 * time.Hour

// IsDevApp reports whether a was created by DevLogin.
func IsDevApp(a chat.App) bool { return strings.HasSuffix(a.Name, DevAppSuffix) }

// DevLogin signs user of appID in without the app's secret, for the
// development sign-in only: whoever can call it can act as anyone. It
// creates the app when it does not exist (named id + DevAppSuffix), links
// every app DevLogin created with every other one in both directions, and
// mints a token valid for DevTokenTTL. An app created otherwise (by an
// admin) signs in as it is: its interop is left alone.
//
// The linking runs on every sign-in of a dev app, not only when it is
// created, so that two sign-ins racing to create two apps still end up
// linked both ways (each side adds what is missing, through the store's
// atomic UpdateApp).
func (s *Service) DevLogin(ctx context.Context, appID, user string) (string, error) {
	if err := chat.ValidAppID(appID); err != nil {
		return "", err
	}
	if err := chat.ValidUserID(user); err != nil {
		return "", err
	}
	a, err := s.st.App(ctx, appID)
	if errors.Is(err, store.ErrNotFound) {
		a, err = s.CreateApp(ctx, appID, appID+DevAppSuffix)
		if chat.ErrorCode(err) == chat.Conflict {
			a, err = s.st.App(ctx, appID) // a racing sign-in made it
		}
	}
	if err != nil {
		return "", storeErr(err, "app "+appID)
	}
	if IsDevApp(a) {
		if err := s.linkDevApp(ctx, a.ID); err != nil {
			return "", err
		}
	}
	return auth.Mint(a, user, DevTokenTTL, s.clock())
}

// linkDevApp makes id and every other dev app allow each other.
func (s *Service) linkDevApp(ctx context.Context, id string) error {
	all, err := s.st.Apps(ctx)
	if err != nil {
		return storeErr(err, "apps")
	}
	var peers []string
	for _, other := range all {
		if other.ID == id || !IsDevApp(other) {
			continue
		}
		peers = append(peers, other.ID)
		if other.Allows(id) {
			continue
		}
		if err := s.addInterop(ctx, other.ID, id); err != nil {
			return err
		}
	}
	return s.addInterop(ctx, id, peers...)
}

// errUnchanged stops an UpdateApp that has nothing to add.
var errUnchanged = errors.New("unchanged")

// addInterop adds apps to id's interop list, keeping what is there.
func (s *Service) addInterop(ctx context.Context, id string, apps ...string) error {
	a, err := s.st.UpdateApp(ctx, id, func(a *chat.App) error {
		n := len(a.Interop)
		for _, x := range apps {
			if !a.Allows(x) {
				a.Interop = append(a.Interop, x)
			}
		}
		if len(a.Interop) == n {
			return errUnchanged
		}
		slices.Sort(a.Interop)
		return nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return nil
	case err != nil:
		return storeErr(err, "app "+id)
	}
	s.remember(a)
	return nil
}
