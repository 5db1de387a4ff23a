package browsertest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/messaging"
)

// Two people, each in a browser of their own, signed in as users of two
// different apps: alice of messenger on a desktop-sized window, bob of
// instagram on a phone-sized one.
func TestChatInTwoBrowsers(t *testing.T) {
	srv, base, logs := startServer(t, true)
	if !strings.Contains(logs.String(), "development sign-in is on") {
		t.Errorf("no warning in the server's log while --dev is on; log:\n%s", logs)
	}
	alice := openWindow(t, base, "alice", 1280, 800)
	bob := openWindow(t, base, "bob", 390, 844)
	bob.wait("the development sign-in form", `!document.querySelector("#dev-form").hidden`)
	assertLabelled(t, bob)
	bob.screenshot("phone-signin")
	alice.signIn("messenger", "alice")
	bob.signIn("instagram", "bob")

	// Alice starts the conversation by address and writes first.
	alice.do(
		chromedp.SendKeys(chromedp.CSS(`[data-testid=new-conversation-input]`), "instagram:bob"),
		chromedp.Click(chromedp.CSS(`[data-testid=new-conversation-submit]`)),
	)
	alice.wait("the new conversation to open", `document.querySelector("#conversation-title").textContent === "bob"`)
	alice.send("hi bob")
	alice.wait("her message to be sent", `document.querySelector("[data-testid=message-item]")?.dataset.state === "sent"`)
	// The page asks for merge_acks: her ack came in the place of her
	// message's update, and the message shows once (checked below).
	if n := acksInStream(t, base); n < 1 {
		t.Errorf("switchboard_ws_acks_in_stream_total = %v after alice's first send; the page does not ask for merge_acks", n)
	}

	// Bob sees it in his list, unread, with alice's app on a badge.
	bob.wait("the conversation in bob's list, 1 unread, last message and badge", `(() => {
		const b = document.querySelector("[data-testid=conversation-item]");
		return b && b.querySelector("[data-testid=unread-count]")?.textContent === "1" &&
			b.querySelector(".item-last").textContent === "hi bob" &&
			b.querySelector(".badge").textContent === "messenger";
	})()`)
	bob.do(chromedp.Click(chromedp.CSS(`[data-testid=conversation-item]`)))
	bob.waitBodies("alice's message in bob's view", []string{"hi bob"})
	bob.wait("the unread count to clear", `!document.querySelector("[data-testid=unread-count]")`)

	// Bob opened it: alice sees her message read.
	alice.wait("her message to show read", `(() => {
		const m = document.querySelector("[data-testid=message-item]");
		return m.dataset.state === "read" && m.querySelector(".state").textContent === "Read";
	})()`)

	// Typing, both ways.
	bob.typeIn("hello al")
	alice.wait("bob typing", `document.querySelector("[data-testid=typing-indicator]").textContent === "bob (instagram) is typing…"`)
	// Shift+Enter breaks the line; Enter sends.
	bob.typeIn("ice")
	bob.do(pressEnter(true))
	bob.send("second line")
	alice.waitBodies("bob's two-line answer", []string{"hi bob", "hello alice\nsecond line"})
	alice.wait("bob's typing notice to go once his message came", `document.querySelector("[data-testid=typing-indicator]").textContent === ""`)
	alice.typeIn("ok")
	bob.wait("alice typing", `document.querySelector("[data-testid=typing-indicator]").textContent === "alice (messenger) is typing…"`)
	alice.do(pressEnter(false))
	bob.waitBodies("alice's answer", []string{"hi bob", "hello alice\nsecond line", "ok"})
	bob.wait("bob's message to show read", `document.querySelectorAll("[data-testid=message-item]")[1].dataset.state === "read"`)

	alice.screenshot("desktop-conversation")
	assertLabelled(t, alice)
	bob.screenshot("phone-conversation")

	// Bob loses the network. Alice writes meanwhile, and so does bob: his
	// messages wait in the outbox.
	bob.setOffline(true)
	bob.wait("bob's page to notice", `document.querySelector("[data-testid=connection-status]").dataset.state === "offline"`)
	for i := 1; i <= 3; i++ {
		alice.send(fmt.Sprintf("while you were away %d", i))
	}
	alice.wait("alice's three messages to be sent", `[...document.querySelectorAll("[data-testid=message-item]")].filter(m => m.dataset.state === "sent").length === 3`)
	bob.send("written offline")
	bob.wait("bob's message to wait in the outbox", `[...document.querySelectorAll("[data-testid=message-item]")].at(-1).dataset.state === "sending"`)
	bob.screenshot("phone-offline")
	bob.setOffline(false)
	bob.waitLive()

	want := []string{"hi bob", "hello alice\nsecond line", "ok",
		"while you were away 1", "while you were away 2", "while you were away 3", "written offline"}
	// Bob: every message once, in order, his own resent and stored.
	bob.wait("bob's outbox to drain", `[...document.querySelectorAll("[data-testid=message-item]")].at(-1).dataset.state !== "sending"`)
	bob.waitBodies("every message once, in order, after the network came back", want)
	alice.waitBodies("bob's offline message, once", want)

	// The stored history says the same: nothing doubled by the resend.
	assertHistory(t, srv.Service(), "messenger:alice", want)

	// Bob reloads the page while his socket cannot connect: his new
	// message is kept in the tab's storage over the reload and sent once
	// the socket is back; what alice wrote meanwhile arrives once.
	bob.blockSocket(true)
	bob.do(chromedp.Reload())
	bob.wait("bob signed in again after the reload", `document.querySelector("[data-testid=connection-status]").dataset.state !== "live" && !document.querySelector("#chat").hidden`)
	bob.do(chromedp.Click(chromedp.CSS(`[data-testid=conversation-item]`)))
	bob.waitBodies("history after the reload", want)
	bob.send("kept over a reload")
	alice.send("while you reloaded")
	bob.do(chromedp.Reload())
	bob.do(chromedp.Click(chromedp.CSS(`[data-testid=conversation-item]`)))
	bob.wait("the unsent message to survive the reload", `(() => {
		const last = [...document.querySelectorAll("[data-testid=message-item]")].at(-1);
		return last && last.dataset.state === "sending" && last.querySelector(".body").textContent === "kept over a reload";
	})()`)
	bob.blockSocket(false)
	bob.waitLive()
	want = append(want, "while you reloaded", "kept over a reload")
	bob.waitBodies("every message once, in order, after the reload", want)
	alice.waitBodies("bob's message from before the reload, once", want)
	assertHistory(t, srv.Service(), "messenger:alice", want)

	// A reload in the same moment as a send: the frame may or may not
	// have left, the ack surely never arrives. The outbox sends it again
	// with the same client_id after the reload, and it is stored once.
	bob.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Evaluate[chromedp.Void](`(() => {
			document.querySelector("[data-testid=composer-input]").value = "sent as the page went away";
			document.querySelector("[data-testid=send-button]").click();
			location.reload();
		})()`))(ctx, t)
		return err
	}))
	bob.waitLive()
	bob.do(chromedp.Click(chromedp.CSS(`[data-testid=conversation-item]`)))
	want = append(want, "sent as the page went away")
	bob.waitBodies("the message sent during the reload, once", want)
	alice.waitBodies("the message sent during bob's reload, once", want)
	bob.wait("it to show read once alice saw it", `[...document.querySelectorAll("[data-testid=message-item]")].at(-1).dataset.state === "read"`)
	assertHistory(t, srv.Service(), "messenger:alice", want)
}

// assertHistory checks the stored messages of the one conversation of user
// (their bodies, oldest first) against want.
func assertHistory(t *testing.T, svc *messaging.Service, user chat.Address, want []string) {
	t.Helper()
	ctx := context.Background()
	list, _, err := svc.Conversations(ctx, user, "", 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("conversations of %s: %d, %v", user, len(list), err)
	}
	msgs, err := svc.History(ctx, user, list[0].ID, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := len(msgs) - 1; i >= 0; i-- {
		got = append(got, msgs[i].Body)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored history:\n got %q\nwant %q", got, want)
	}
}

// Older history loads as the reader scrolls up, in order, and the
// conversation list counts what is unread. Keyboard only: the list items
// are buttons, and Enter opens one.
func TestHistoryOnScrollUp(t *testing.T) {
	srv, base, _ := startServer(t, true)
	ctx := context.Background()
	svc := srv.Service()
	for _, u := range []struct{ app, user string }{{"messenger", "alice"}, {"instagram", "bob"}} {
		if _, err := svc.DevLogin(ctx, u.app, u.user); err != nil {
			t.Fatal(err)
		}
	}
	c, _, err := svc.CreateConversation(ctx, "instagram:bob", []string{"messenger:alice"}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Seeding 120 messages at once is past the default per-user send
	// rate (10/s, burst 20).
	lift := int64(1000)
	if _, err := svc.SetLimits(ctx, "instagram", chat.LimitChange{UserSendsPerSecond: &lift, UserBurst: &lift}); err != nil {
		t.Fatal(err)
	}
	const n = 120
	var want []string
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("message %d", i)
		want = append(want, body)
		if _, err := svc.Send(ctx, "instagram:bob", messaging.SendRequest{ConversationID: c.ID, ClientID: body, Body: body}); err != nil {
			t.Fatal(err)
		}
	}

	alice := openWindow(t, base, "alice", 1280, 800)
	alice.signIn("messenger", "alice")
	alice.wait("120 unread", `document.querySelector("[data-testid=unread-count]")?.textContent === "120"`)
	alice.screenshot("desktop-unread")
	alice.do(chromedp.Focus(chromedp.CSS(`[data-testid=conversation-item]`)), pressEnter(false))
	alice.wait("the newest page", `document.querySelectorAll("[data-testid=message-item]").length === 50`)
	if got := alice.bodies(); fmt.Sprint(got) != fmt.Sprint(want[n-50:]) {
		t.Fatalf("first page: %q", got)
	}
	alice.wait("the unread count to clear once read", `!document.querySelector("[data-testid=unread-count]")`)
	for _, count := range []int{100, 120} {
		alice.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("#messages").scrollTop = 0`))
		alice.wait(fmt.Sprintf("%d messages after scrolling up", count),
			fmt.Sprintf(`document.querySelectorAll("[data-testid=message-item]").length === %d`, count))
	}
	alice.waitBodies("the whole history, in order", want)
	alice.wait("the start of the conversation", `document.querySelector("#history-status").textContent === "This is the start of the conversation."`)
	alice.screenshot("desktop-history")
	// What the reader was looking at stays in view while pages land above.
	if top := eval[float64](alice, `document.querySelector("#messages").scrollTop`); top < 100 {
		t.Errorf("scrollTop %v after the last page: the view jumped to the top", top)
	}
}

// Errors say what went wrong in words a person can act on, mostly the
// server's own.
func TestErrorsInWords(t *testing.T) {
	srv, base, _ := startServer(t, true)
	ctx := context.Background()
	if _, err := srv.Service().CreateApp(ctx, "corp", "Corp"); err != nil {
		t.Fatal(err) // made by an admin: no interop with the dev apps
	}
	if _, err := srv.Service().DevLogin(ctx, "instagram", "bob"); err != nil {
		t.Fatal(err)
	}
	alice := openWindow(t, base, "alice", 390, 844)
	alice.signIn("messenger", "alice")
	for _, tc := range []struct{ input, want string }{
		{"corp:carol", "corp does not allow messages from messenger"},
		{"nosuch:x", `app nosuch not found`},
		{"bob", `"bob" is not an address: write app:user, for example instagram:bob.`},
	} {
		alice.do(
			chromedp.SetValue(chromedp.CSS(`[data-testid=new-conversation-input]`), tc.input),
			chromedp.Click(chromedp.CSS(`[data-testid=new-conversation-submit]`)),
		)
		alice.wait(fmt.Sprintf("the error for %q", tc.input), `document.querySelector("#new-conversation-error").textContent === `+js(tc.want))
	}
	alice.screenshot("phone-error")

	// A group of two other people, from two apps, with a title.
	alice.do(
		chromedp.SetValue(chromedp.CSS(`[data-testid=new-conversation-input]`), "instagram:bob, messenger:carol"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=new-conversation-title]`), "Plans"),
		chromedp.Click(chromedp.CSS(`[data-testid=new-conversation-submit]`)),
	)
	alice.wait("the group to open", `document.querySelector("#conversation-title").textContent === "Plans" &&
		document.querySelector("#new-conversation-error").textContent === ""`)
	alice.send("hello both")
	alice.wait("the group message sent", `document.querySelector("[data-testid=message-item]")?.dataset.state === "sent"`)
	alice.do(chromedp.Click(chromedp.CSS(`#back`)))
	alice.wait("the group in the list with a badge per app", `(() => {
		const b = document.querySelector("[data-testid=conversation-item]");
		return b.querySelector(".item-name").textContent === "Plans" &&
			[...b.querySelectorAll(".badge")].map(x => x.textContent).join() === "instagram,messenger";
	})()`)
	alice.screenshot("phone-list")
	assertLabelled(t, alice)

	// A send the server refuses for good is marked failed with its words,
	// and can be tried again (with the same client_id) once that changed.
	alice.do(
		chromedp.SetValue(chromedp.CSS(`[data-testid=new-conversation-input]`), "instagram:bob"),
		chromedp.Click(chromedp.CSS(`[data-testid=new-conversation-submit]`)),
	)
	alice.wait("the direct conversation to open", `document.querySelector("#conversation-title").textContent === "bob"`)
	svc := srv.Service()
	if _, err := svc.SetInterop(ctx, "messenger", []string{}); err != nil {
		t.Fatal(err)
	}
	alice.send("refused")
	alice.wait("the failed state with the server's words", `(() => {
		const m = document.querySelector("[data-testid=message-item]");
		return m && m.dataset.state === "failed" &&
			m.querySelector(".error").textContent === "messenger does not allow messages to instagram";
	})()`)
	alice.screenshot("phone-failed")
	assertLabelled(t, alice)
	if _, err := svc.SetInterop(ctx, "messenger", []string{"instagram"}); err != nil {
		t.Fatal(err)
	}
	alice.do(chromedp.Click(chromedp.CSS(`[data-testid=message-item] .actions button`)))
	alice.wait("the retried message sent", `document.querySelector("[data-testid=message-item]").dataset.state === "sent"`)
	alice.waitBodies("the retried message once", []string{"refused"})
}

// Without --dev the page offers only the token sign-in, which takes a
// token from the URL fragment or pasted into its field.
func TestTokenSignIn(t *testing.T) {
	srv, base, logs := startServer(t, false)
	ctx := context.Background()
	svc := srv.Service()
	if _, err := svc.CreateApp(ctx, "messenger", "Messenger"); err != nil {
		t.Fatal(err)
	}
	tok, err := svc.MintToken(ctx, "messenger", "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	w := openWindow(t, base, "token", 1280, 800)
	w.wait("the token form only", `!document.querySelector("#signin").hidden && document.querySelector("#dev-form").hidden`)
	assertLabelled(t, w)
	w.screenshot("desktop-signin")

	w.do(chromedp.SetValue(chromedp.CSS(`[data-testid=token-input]`), "not-a-token"),
		chromedp.Click(chromedp.CSS(`[data-testid=token-submit]`)))
	w.wait("the malformed-token error", `document.querySelector("#signin-error").textContent.startsWith("That is not a token")`)

	forged := tok[:len(tok)-4] + "AAAA" // a signature that does not verify
	w.do(chromedp.SetValue(chromedp.CSS(`[data-testid=token-input]`), forged),
		chromedp.Click(chromedp.CSS(`[data-testid=token-submit]`)))
	w.wait("the refused-token error", `document.querySelector("#signin-error").textContent.startsWith("The server refused the token: ")`)

	w.do(chromedp.SetValue(chromedp.CSS(`[data-testid=token-input]`), tok),
		chromedp.Click(chromedp.CSS(`[data-testid=token-submit]`)))
	w.waitLive()
	w.wait("alice signed in", `document.querySelector("#me-user").textContent === "alice"`)
	w.do(chromedp.Click(chromedp.CSS(`#signout`)))
	w.wait("signed out", `!document.querySelector("#signin").hidden`)

	// From the fragment, which the page then drops from the address bar.
	w.do(chromedp.Navigate(base + "/#token=" + tok))
	w.waitLive()
	if u := eval[string](w, `location.href`); u != base+"/" {
		t.Errorf("the token stayed in the address bar: %s", u)
	}
	if strings.Contains(logs.String(), "development sign-in is on") {
		t.Error("the server warned about the development sign-in without --dev")
	}
}

// assertLabelled checks that every control the page shows has an
// accessible name.
func assertLabelled(t *testing.T, w *window) {
	t.Helper()
	unnamed := eval[[]string](w, `[...document.querySelectorAll("input, textarea, button, select, [role=button]")]
		.filter(e => e.offsetParent !== null)
		.filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.textContent.trim())
		.map(e => e.outerHTML.slice(0, 120))`)
	for _, e := range unnamed {
		t.Errorf("%s: a control without a label: %s", w.name, e)
	}
}
