/**
 * Typed errors of the unit-file model. Each keeps fleet's exact wording in `reason` (what the HTTP API
 * and fleetctl print for compatibility) and a full sentence in `message` (what failed, for which unit,
 * why, what to do).
 */

/** A unit file's text cannot be parsed. `line` is 1-based. */
export class UnitFileParseError extends Error {
  override readonly name = "UnitFileParseError";
  /** fleet-compatible reason without position, e.g. "line too long (max 2048 bytes)". */
  readonly reason: string;
  readonly line: number;
  /** Unit name or file path the text came from, when known. */
  readonly source: string | undefined;

  constructor(reason: string, line: number, source?: string) {
    const where = source === undefined ? `line ${line}` : `"${source}" line ${line}`;
    super(`Cannot parse unit file ${where}: ${reason}; fix the unit file and submit it again`);
    this.reason = reason;
    this.line = line;
    this.source = source;
  }
}

/** A unit refused for `reason` (fleet's wording), with `message` saying which unit and what to do. */
abstract class UnitRefusedError extends Error {
  constructor(
    readonly unitName: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** A unit name breaks systemd's naming rules. `reason` is fleet's text, e.g. "invalid unit type: foo". */
export class UnitNameError extends UnitRefusedError {
  override readonly name = "UnitNameError";

  constructor(unitName: string, reason: string) {
    super(unitName, reason, `Invalid unit name ${JSON.stringify(unitName)}: ${reason}`);
  }
}

/**
 * A unit's options are valid text but cannot be accepted: contradictory `[X-Fleet]` requirements
 * ("MachineID cannot be used with Global", "unresolvable requirements: ...", "circular Replaces between
 * X and Y") or options that do not survive a serialize/parse round trip.
 */
export class UnitValidationError extends UnitRefusedError {
  override readonly name = "UnitValidationError";

  constructor(unitName: string, reason: string) {
    super(unitName, reason, `Invalid unit ${JSON.stringify(unitName)}: ${reason}; change its [X-Fleet] section or options and submit it again`);
  }
}
