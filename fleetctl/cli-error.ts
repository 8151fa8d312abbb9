/**
 * The one error type commands throw: what to print (already worded for the operator) and the exit
 * code. `main()` alone prints it and sets `process.exitCode`.
 */
export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Ends the command early with an exit code and nothing (more) to print, e.g. a remote command's code. */
export class ExitCode extends Error {
  override readonly name = "ExitCode";
  constructor(readonly exitCode: number) {
    super(`exit status ${exitCode}`);
  }
}
