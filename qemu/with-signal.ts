/** `{ signal }` when there is one, `{}` otherwise: RunOptions under exactOptionalPropertyTypes. */
export function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}
