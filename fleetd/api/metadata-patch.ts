/**
 * `PATCH /machines`: a JSON array of `{op, path, value: {value}}`, validated as a whole before anything
 * is applied, with fleet's messages. JSON keys are matched case-insensitively, as Go's decoder does.
 */
import { DEFAULT_MAX_TXN_OPS, MAX_TXN_BYTES } from "../registry/txn-limits";
import type { MetadataChange } from "./backend";

/** A patch document that cannot be applied; the message is sent with a 400. */
export class MetadataPatchError extends Error {
  override readonly name = "MetadataPatchError";
}

const PATH_RE = /^\/([^/]+)\/metadata\/([A-Za-z0-9_.-]+)$/;

/**
 * Longest metadata value (bytes). fleet set no limit; each value is one etcd key, and etcd refuses a
 * request over 1.5 MiB with an error that reached the client as a 500.
 */
export const MAX_METADATA_VALUE_BYTES = 64 * 1024;

function field(obj: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(obj).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : obj[key];
}

/** Validates a parsed PATCH body and turns it into metadata changes, in order. */
export function parseMetadataPatch(body: unknown): MetadataChange[] {
  if (!Array.isArray(body)) throw new MetadataPatchError("unable to decode body: expected a JSON array of operations");
  const changes: MetadataChange[] = [];
  for (const raw of body as unknown[]) {
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new MetadataPatchError("unable to decode body: each operation must be a JSON object");
    }
    const obj = raw as Record<string, unknown>;
    const op = field(obj, "op");
    if (op !== "add" && op !== "remove" && op !== "replace") {
      throw new MetadataPatchError("invalid op: expect add, remove, or replace");
    }
    const path = field(obj, "path");
    const match = typeof path === "string" ? PATH_RE.exec(path) : null;
    if (!match) throw new MetadataPatchError("machine metadata path invalid");
    const machineID = match[1]!;
    const key = match[2]!;
    // Stored, but lost when machines are listed: metadata are plain objects, where `__proto__` names
    // the prototype (it was answered 204 and never shown, nor matched by MachineMetadata).
    if (key === "__proto__") {
      throw new MetadataPatchError(`machine metadata key ${key} is reserved: choose another key name`);
    }
    if (op === "remove") {
      changes.push({ machineID, key, value: null });
      continue;
    }
    const wrapped = field(obj, "value");
    const value =
      wrapped !== null && typeof wrapped === "object" && !Array.isArray(wrapped)
        ? field(wrapped as Record<string, unknown>, "value")
        : undefined;
    if (typeof value !== "string" || value === "") {
      throw new MetadataPatchError("invalid value: add and replace require a value");
    }
    const bytes = Buffer.byteLength(value);
    if (bytes > MAX_METADATA_VALUE_BYTES) {
      throw new MetadataPatchError(`invalid value: ${bytes} bytes for metadata ${key} of machine ${machineID}; at most ${MAX_METADATA_VALUE_BYTES}`);
    }
    changes.push({ machineID, key, value });
  }
  checkFitsOneTransaction(changes);
  return changes;
}

/**
 * A patch is applied in one etcd transaction (all or nothing), so it must fit one: at most
 * {@link DEFAULT_MAX_TXN_OPS} distinct keys and {@link MAX_TXN_BYTES} of keys and values (etcd refuses
 * a larger request whole, which reached the client as a 500).
 */
function checkFitsOneTransaction(changes: readonly MetadataChange[]): void {
  const sizes = new Map<string, number>();
  for (const c of changes) {
    const path = `${c.machineID}/${c.key}`;
    sizes.set(path, Buffer.byteLength(path) + (c.value === null ? 0 : Buffer.byteLength(c.value)));
  }
  if (sizes.size > DEFAULT_MAX_TXN_OPS) {
    throw new MetadataPatchError(
      `patch too large: it changes ${sizes.size} metadata keys; at most ${DEFAULT_MAX_TXN_OPS} fit in one etcd transaction (a patch is applied all or nothing): split it into several requests`,
    );
  }
  let bytes = 0;
  for (const n of sizes.values()) bytes += n;
  if (bytes > MAX_TXN_BYTES) {
    throw new MetadataPatchError(
      `patch too large: ${bytes} bytes of machine IDs, keys and values; at most ${MAX_TXN_BYTES} fit in one etcd transaction (a patch is applied all or nothing): split it into several requests`,
    );
  }
}
