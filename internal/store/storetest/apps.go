package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/store"
)

var errAbort = errors.New("storetest: fn refused")

var appCases = []testCase{
	{"CreateAndGet", func(e *env) {
		a := e.createApp("messenger", "instagram", "workplace")
		got, err := e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		wantEqual(e.t, "App", got, a)
	}},
	{"Conflict", func(e *env) {
		a := e.createApp("messenger")
		dup := a
		dup.Name, dup.Secret = "Other", "other-secret"
		e.wantErr("CreateApp of a taken id", e.s.CreateApp(e.ctx, dup), store.ErrConflict)
		got, err := e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		wantEqual(e.t, "App after the conflicting create", got, a)
	}},
	{"NotFound", func(e *env) {
		_, err := e.s.App(e.ctx, "nope")
		e.wantErr("App of an unknown id", err, store.ErrNotFound)
		e.createApp("nope-not")
		_, err = e.s.App(e.ctx, "nope")
		e.wantErr("App of an unknown id next to a known one", err, store.ErrNotFound)
	}},
	{"ListOrdered", func(e *env) {
		list, err := e.s.Apps(e.ctx)
		if err != nil {
			e.t.Fatalf("Apps on an empty store: %v", err)
		}
		if len(list) != 0 {
			e.t.Errorf("Apps on an empty store = %s", show(list))
		}
		var want []chat.App
		for _, id := range []string{"zeta", "alpha", "mid", "alpha-2", "b"} {
			want = append(want, e.createApp(id))
		}
		slices.SortFunc(want, func(a, b chat.App) int {
			if a.ID < b.ID {
				return -1
			}
			return 1
		})
		got, err := e.s.Apps(e.ctx)
		if err != nil {
			e.t.Fatalf("Apps: %v", err)
		}
		wantEqual(e.t, "Apps", got, want)
	}},
	{"Update", func(e *env) {
		a := e.createApp("messenger", "instagram")
		got, err := e.s.UpdateApp(e.ctx, "messenger", func(x *chat.App) error {
			wantEqual(e.t, "UpdateApp: fn's argument", *x, a)
			x.Name = "Renamed"
			x.Interop = []string{"instagram", "workplace"}
			return nil
		})
		if err != nil {
			e.t.Fatalf("UpdateApp: %v", err)
		}
		want := a
		want.Name = "Renamed"
		want.Interop = []string{"instagram", "workplace"}
		wantEqual(e.t, "UpdateApp's answer", got, want)
		stored, err := e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		wantEqual(e.t, "App after UpdateApp", stored, want)
	}},
	{"UpdateFnError", func(e *env) {
		a := e.createApp("messenger", "instagram")
		_, err := e.s.UpdateApp(e.ctx, "messenger", func(x *chat.App) error {
			// Changing the argument in place must not leak into the store
			// when fn then fails.
			x.Name = "Changed"
			if len(x.Interop) > 0 {
				x.Interop[0] = "changed"
			}
			x.Interop = append(x.Interop, "more")
			return errAbort
		})
		if !errors.Is(err, errAbort) {
			e.t.Errorf("UpdateApp with a failing fn: err = %v, want fn's error", err)
		}
		got, err := e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		wantEqual(e.t, "App after a failed UpdateApp", got, a)
	}},
	{"UpdateNotFound", func(e *env) {
		called := false
		_, err := e.s.UpdateApp(e.ctx, "nope", func(*chat.App) error { called = true; return nil })
		e.wantErr("UpdateApp of an unknown id", err, store.ErrNotFound)
		if called {
			e.t.Error("UpdateApp of an unknown id called fn")
		}
	}},
	{"UpdateKeepsID", func(e *env) {
		e.createApp("messenger")
		// The id cannot change: the store may refuse or ignore the change,
		// but the app stays where it was and nothing appears elsewhere.
		got, err := e.s.UpdateApp(e.ctx, "messenger", func(x *chat.App) error {
			x.ID = "other"
			return nil
		})
		if err == nil && got.ID != "messenger" {
			e.t.Errorf("UpdateApp answered id %q after fn changed it; want messenger", got.ID)
		}
		if _, err := e.s.App(e.ctx, "messenger"); err != nil {
			e.t.Errorf("App(messenger) after fn changed the id: %v", err)
		}
		_, err = e.s.App(e.ctx, "other")
		e.wantErr("App(other) after fn changed the id to other", err, store.ErrNotFound)
	}},
	{"UpdateAtomic", func(e *env) {
		e.createApp("messenger")
		const workers, each = 6, 5
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("app-%d-%d", w, i)
					_, err := e.s.UpdateApp(e.ctx, "messenger", func(x *chat.App) error {
						x.Interop = append(x.Interop, id)
						return nil
					})
					if err != nil {
						e.t.Errorf("UpdateApp: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		got, err := e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		if len(got.Interop) != workers*each {
			e.t.Errorf("after %d concurrent UpdateApp calls that each add one entry, Interop has %d: a lost update", workers*each, len(got.Interop))
		}
		seen := map[string]bool{}
		for _, id := range got.Interop {
			if seen[id] {
				e.t.Errorf("Interop holds %s twice", id)
			}
			seen[id] = true
		}
	}},
	{"LimitsAndFrozen", func(e *env) {
		a := e.createApp("messenger")
		a.Limits = chat.Limits{SendsPerSecond: 5, Burst: 7, MaxConcurrentRequests: 3, MaxConnections: 100000, UserSendsPerSecond: 2, UserBurst: 4}
		a.Frozen = true
		got, err := e.s.UpdateApp(e.ctx, "messenger", func(x *chat.App) error {
			x.Limits, x.Frozen = a.Limits, a.Frozen
			return nil
		})
		if err != nil {
			e.t.Fatalf("UpdateApp: %v", err)
		}
		wantEqual(e.t, "UpdateApp's answer with limits and frozen", got, a)
		stored, err := e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		wantEqual(e.t, "App after setting limits and frozen", stored, a)
		// Created with them, too.
		b := chat.App{ID: "other", Name: "Other", Secret: "s", Interop: []string{}, CreatedAt: e.now(),
			Limits: chat.Limits{SendsPerSecond: 1}, Frozen: true}
		if err := e.s.CreateApp(e.ctx, b); err != nil {
			e.t.Fatalf("CreateApp: %v", err)
		}
		list, err := e.s.Apps(e.ctx)
		if err != nil {
			e.t.Fatalf("Apps: %v", err)
		}
		wantEqual(e.t, "Apps with limits and frozen", list, []chat.App{a, b})
		// And cleared again.
		a.Limits, a.Frozen = chat.Limits{}, false
		if _, err := e.s.UpdateApp(e.ctx, "messenger", func(x *chat.App) error {
			x.Limits, x.Frozen = chat.Limits{}, false
			return nil
		}); err != nil {
			e.t.Fatalf("UpdateApp: %v", err)
		}
		stored, err = e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		wantEqual(e.t, "App after clearing limits and frozen", stored, a)
	}},
	{"NoAliasing", func(e *env) {
		in := []string{"instagram", "workplace"}
		a := chat.App{ID: "messenger", Name: "Messenger", Secret: "s", Interop: in, CreatedAt: e.now()}
		if err := e.s.CreateApp(e.ctx, a); err != nil {
			e.t.Fatalf("CreateApp: %v", err)
		}
		want := a
		want.Interop = slices.Clone(in)
		in[0] = "changed-by-caller"
		got, err := e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		wantEqual(e.t, "App after the caller changed its input slice", got, want)
		got.Interop[1] = "changed-by-caller"
		list, err := e.s.Apps(e.ctx)
		if err != nil {
			e.t.Fatalf("Apps: %v", err)
		}
		if len(list) == 1 {
			list[0].Interop[0] = "changed-by-caller"
		}
		got, err = e.s.App(e.ctx, "messenger")
		if err != nil {
			e.t.Fatalf("App: %v", err)
		}
		wantEqual(e.t, "App after the caller changed answers", got, want)
	}},
}
