/**
 * Deploy on a new image: `fleetctl deploy web@.service --set image=registry.cluster:5000/web:2`
 * resolves the tag to the digest its registry serves at that moment and sends
 * `image=registry.cluster:5000/web@sha256:...` instead, so every instance of the rollout runs the
 * same bits even if the tag moves during or after it. With `--tunnel` the registry is asked through
 * the same SSH host (a direct-tcpip channel, the name resolved there: `registry.cluster` exists only
 * inside the cluster); without, directly.
 */
import type { Duplex } from "node:stream";
import { parseImageReference, resolveImageDigest } from "../lib/image/image-reference";
import type { CommandContext } from "./context";
import { connectTunnelHost, forwardThrough } from "./ssh/tunnel";

/** The `--set` key that names a unit's image (`Environment=image=` in units/web@.service). */
export const IMAGE_KEY = "image";

/**
 * True when `value` names a registry by HOST:PORT (the cluster's) with a tag (or none) but no digest:
 * something to pin. Local names (`localhost/web:2`, podman's own storage) and registries without a
 * port are sent as they are.
 */
export function needsPinning(key: string, value: string): boolean {
  if (key !== IMAGE_KEY) return false;
  const ref = parseImageReference(value);
  return ref?.port !== undefined && ref.digest === undefined;
}

/**
 * `sets` with every `image=` tag replaced by its digest reference; unchanged when nothing needs it.
 * Each resolution is reported on stderr (`image registry.cluster:5000/web:2 is registry.cluster:5000/web@sha256:...`).
 */
export async function pinImageSets(ctx: CommandContext, sets: Readonly<Record<string, string>>): Promise<Record<string, string>> {
  const out = { ...sets };
  const todo = Object.entries(sets).filter(([k, v]) => needsPinning(k, v));
  if (todo.length === 0) return out;
  const globals = ctx.globals();
  const client = globals.tunnel ? await connectTunnelHost(globals, ctx.io) : undefined;
  try {
    const connect = client ? (host: string, port: number): Promise<Duplex> => forwardThrough(client, host, port) : undefined;
    for (const [k, v] of todo) {
      const pinned = await resolveImageDigest(v, { signal: ctx.signal, ...(connect ? { connect } : {}) });
      ctx.err(`image ${v} is ${pinned}`);
      out[k] = pinned;
    }
  } finally {
    client?.end();
  }
  return out;
}
