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
