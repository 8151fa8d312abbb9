/**
 * Credentials for the optional TCP listener. The unix socket is protected by file permissions; a TCP
 * port is not, so every request on it must carry `Authorization: Bearer <api_token>` unless the
 * operator explicitly configured the listener open.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

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
