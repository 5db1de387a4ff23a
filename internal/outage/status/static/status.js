// The status page is complete without this script; it only keeps it live.
// Each event of /status/events says that something changed: the script
// fetches the page again and swaps its main part in, so what it shows is
// always what the server renders. EventSource reconnects by itself.
const live = document.querySelector("[data-testid=live]");
const note = live.querySelector(".live-note");
let pending = null;
let again = false;

async function refresh() {
  if (pending) {
    again = true;
    return;
  }
  pending = (async () => {
    do {
      again = false;
      try {
        const res = await fetch("/status", { headers: { Accept: "text/html" }, cache: "no-store" });
        if (!res.ok) throw new Error("HTTP " + res.status);
        const doc = new DOMParser().parseFromString(await res.text(), "text/html");
        const main = doc.querySelector("#status-main");
        const time = doc.querySelector("[data-testid=live] time");
        if (main) document.querySelector("#status-main").replaceWith(main);
        if (time) live.querySelector("time").replaceWith(time);
      } catch (e) {
        note.textContent = " (could not refresh: " + e.message + ")";
        return;
      }
    } while (again);
  })();
  await pending;
  pending = null;
}

const events = new EventSource("/status/events");
events.addEventListener("open", () => {
  live.dataset.state = "live";
  note.textContent = " · live";
});
events.addEventListener("error", () => {
  live.dataset.state = "reconnecting";
  note.textContent = " · reconnecting…";
});
events.addEventListener("status", () => {
  refresh();
});
