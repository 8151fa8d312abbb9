/** For `.catch(undefinedIfMissing)`: a path that does not exist reads as undefined; any other failure is thrown. */
export function undefinedIfMissing(err: unknown): undefined {
  if ((err as NodeJS.ErrnoException | undefined)?.code === "ENOENT") return undefined;
  throw err;
}
