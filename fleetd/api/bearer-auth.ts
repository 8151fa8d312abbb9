/**
 * Credentials for the optional TCP listener. The unix socket is protected by file permissions; a TCP
 * port is not, so every request on it must carry `Authorization: Bearer <api_token>` unless the
 * operator explicitly configured the listener open.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** True when the request carries the expected bearer token (compared in constant time). */
export function hasBearerToken(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization;
  if (typeof header !== "string") return false;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) return false;
  return timingSafeEqual(digest(match[1]!), digest(token));
}

/**
 * Whether an open listener (no token: the unix socket, forwarded to a browser by `fleetctl dashboard`;
 * `api_tcp_open`) may answer this request. A page of another site whose name an attacker points at
 * 127.0.0.1 (DNS rebinding) sends its own name as `Host` and was answered, actions included. So a
 * browser's request (it sends `Origin` or `Sec-Fetch-*`) is answered only when addressed to an IP
 * address or `localhost`; other clients (fleet's fleetctl, curl, scripts) by any name, as before.
 */
export function openListenerAllows(req: Pick<IncomingMessage, "headers">): boolean {
  const h = req.headers;
  const browser = h.origin !== undefined || h["sec-fetch-site"] !== undefined || h["sec-fetch-mode"] !== undefined;
  return !browser || hostIsAddress(h.host);
}

/** An IP address or `localhost` (any port), or fleet's `domain-sock`, or no Host at all. */
function hostIsAddress(host: string | undefined): boolean {
  if (host === undefined || host === "") return true;
  const name = host.startsWith("[") ? host.slice(1, host.indexOf("]")) : host.replace(/:\d*$/, "");
  return isIP(name) !== 0 || name === "localhost" || name === "domain-sock";
}
