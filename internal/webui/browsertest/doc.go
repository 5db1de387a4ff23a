// Package browsertest holds the browser tests of the web client: they run
// the real server in-process and drive Debian's chromium (headless, through
// the DevTools protocol with chromedp) as two people chatting. They fail,
// never skip, when chromium is missing. See docs/testing.md.
package browsertest
