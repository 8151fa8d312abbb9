/** Tiny DOM helpers: elements by ID (failing loudly when the page and the script disagree), text only. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`dashboard page has no element #${id}`);
  return el as T;
}

/** An element with text content (never HTML: unit names and metadata come from the cluster). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = "", className = ""): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text) e.textContent = text;
  if (className) e.className = className;
  return e;
}

/** First 8 characters of a machine ID, as fleetctl shows it. */
export function shortId(id: string): string {
  return id.slice(0, 8);
}
