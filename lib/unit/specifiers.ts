/**
 * fleet's specifier substitution for `[X-Fleet]` values, taken from the unit's name
 * (`%n` full name, `%N` name without suffix, `%p` prefix, `%i` instance). Other `%` sequences are
 * left alone, as fleet did; systemd substitutes the rest of the file on the host.
 */
import { parseUnitName } from "./unit-name";

/** Replaces `%n %N %p %i` in `value` with parts of `unitName`, in one pass. */
export function substituteSpecifiers(value: string, unitName: string): string {
  if (!value.includes("%")) return value;
  const parts = parseUnitName(unitName);
  return value.replace(/%[nNpi]/g, (spec) => {
    switch (spec) {
      case "%n": return parts.name;
      case "%N": return parts.base;
      case "%p": return parts.prefix;
      default: return parts.instance;
    }
  });
}
