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

/**
 * A parser of TCP port options from `min` to 65535: 1 for a port to connect to (`--ssh-port 99999`
 * reached ssh2 and fleetctl hung), 0 for one to listen on, where 0 means any free port (`--local-port
 * 70000` reached Node's listen() and its raw RangeError).
 */
export function portOption(min: 0 | 1): (value: string) => number {
  const range = min === 0 ? "0 to 65535 (0 = any free port)" : "1 to 65535";
  return (value) => {
    const port = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!(port >= min && port <= 65_535)) throw new InvalidArgumentError(`"${value}" is not a port; use ${range}`);
    return port;
  };
}

/** Parses a TCP port to connect to, 1 to 65535. */
export const parsePort = portOption(1);

/** Parses a count from 0 up (`journal --lines -5` reached journalctl as "invalid option -- '5'"). */
export function parseNonNegative(value: string): number {
  const n = parseCount(value);
  if (n < 0) throw new InvalidArgumentError(`"${value}" is negative; use 0 or more.`);
  return n;
}
