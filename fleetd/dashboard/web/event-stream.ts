/**
 * Reads fleetd's Server-Sent Events with `fetch` (EventSource cannot send an Authorization header):
 * frames separated by a blank line, `event:` and `data:` fields, comment lines (heartbeats) only
 * prove the connection is alive. Ends when the server closes or the signal aborts. Each event's
 * `id:` is handed on, so the caller can resume with `Last-Event-ID` after a reconnect.
 */

/** The listener refused our credentials (401): the page asks for a token. */
export class UnauthorizedError extends Error {
  override readonly name = "UnauthorizedError";
}

export interface StreamHandlers {
  onOpen(): void;
  onEvent(event: string, data: string, id: string | undefined): void;
}

/** Nothing (not even a heartbeat) for this long means the connection is dead. */
const SILENCE_LIMIT_MS = 45_000;

export async function readEventStream(url: string, headers: Record<string, string>, handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
  const watchdog = new AbortController();
  const abort = (): void => watchdog.abort();
  signal.addEventListener("abort", abort, { once: true });
  let timer = setTimeout(abort, SILENCE_LIMIT_MS);
  const alive = (): void => {
    clearTimeout(timer);
    timer = setTimeout(abort, SILENCE_LIMIT_MS);
  };
  try {
    const res = await fetch(url, { headers: { ...headers, Accept: "text/event-stream" }, signal: watchdog.signal });
    if (res.status === 401) throw new UnauthorizedError(await errorText(res));
    if (!res.ok || !res.body) throw new Error(`the event stream answered ${res.status}: ${await errorText(res)}`);
    handlers.onOpen();
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      alive();
      let scanFrom = Math.max(0, buffer.length - 1);
      buffer += value;
      for (;;) {
        const end = buffer.indexOf("\n\n", scanFrom);
        if (end < 0) break;
        dispatch(buffer.slice(0, end), handlers);
        buffer = buffer.slice(end + 2);
        scanFrom = 0;
      }
    }
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", abort);
  }
}

function dispatch(frame: string, handlers: StreamHandlers): void {
  let event = "message";
  let id: string | undefined;
  const data: string[] = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  }
  if (data.length > 0) handlers.onEvent(event, data.join("\n"), id);
}

/** The API's `{"error":{"message"}}` text, or the status line. */
export async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { message?: string } };
    if (body.error?.message) return body.error.message;
  } catch {
    // not JSON: the raw text below
  }
  return text.trim() || `${res.status} ${res.statusText}`;
}
