// Small DOM helpers and how addresses and times are shown.

export const $ = (sel) => document.querySelector(sel);

// el makes an element with attributes and children (nodes or strings;
// strings become text, never HTML).
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  for (const c of children) if (c !== "" && c != null) n.append(c);
  return n;
}

export const appOf = (addr) => addr.slice(0, addr.indexOf(":"));
export const userOf = (addr) => addr.slice(addr.indexOf(":") + 1);

// appBadge gives each app a stable hue, so a badge is recognised at a
// glance; the CSS picks lightness for the colour scheme.
export function appBadge(app) {
  let h = 0;
  for (const c of app) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return String(h % 360);
}

const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });

export const timeLabel = (iso) => time.format(new Date(iso));

// dayTimeLabel is the time today, else the date.
export function dayTimeLabel(iso) {
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? time.format(d) : day.format(d);
}
