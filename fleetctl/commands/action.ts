/** The shape of a command implementation and small option parsers shared by commands. */
import { InvalidArgumentError } from "commander";
import type { CommandContext } from "../context";

/** A command: positional arguments and its own options in, exit status out (errors are thrown). */
export type Action<O> = (ctx: CommandContext, args: string[], opts: O) => Promise<number>;

/** Parses a non-negative integer option value (negative block attempts mean "forever", as fleet). */
export function parseCount(value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`"${value}" is not an integer.`);
  return Number(value);
}

/** Parses a TCP port to connect to, 1 to 65535 (`--ssh-port 99999` reached ssh2 and fleetctl hung). */
export function parsePort(value: string): number {
  const port = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!(port >= 1 && port <= 65_535)) throw new InvalidArgumentError(`"${value}" is not a port; use 1 to 65535`);
  return port;
}

/** Parses a count from 0 up (`journal --lines -5` reached journalctl as "invalid option -- '5'"). */
export function parseNonNegative(value: string): number {
  const n = parseCount(value);
  if (n < 0) throw new InvalidArgumentError(`"${value}" is negative; use 0 or more.`);
  return n;
}
