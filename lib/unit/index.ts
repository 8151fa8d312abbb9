/** Public API of the unit-file model, shared by fleetd and fleetctl. */
export { UnitFileParseError, UnitNameError, UnitValidationError } from "./errors";
export { LINE_TOO_LONG, MAX_LINE_BYTES, firstLineBeforeSection, parseUnitFile, serializeUnitFile, unitHash, unitHashOfText, type ParseUnitFileOptions } from "./unit-file";
export {
  MANGLE_SUFFIXES, TEMPLATE_UNIT_TYPES, UNIT_NAME_MAX, UNIT_TYPES, assertValidUnitName, instanceOf, isInstance, isTemplate,
  mangleUnitName, parseUnitName, templateOf, unitNameProblem, type UnitNameParts,
} from "./unit-name";
export { substituteSpecifiers } from "./specifiers";
export { instanceRuns, numberedRuns, type InstanceRuns, type RunsCodec } from "./instance-runs";
export { compileGlob, globMatch, hasGlobMeta, type Glob } from "./glob";
export {
  X_FLEET_SECTION, emptyRequirements, parseMultiValue, parseRequirements, validateRequirements,
  type ParsedRequirements, type Requirements,
} from "./requirements";
export { buildUnit, MAX_UNIT_TEXT_BYTES, templateActivationProblem, validateUnit, type Unit } from "./unit";
export { formatCpus, formatMemory, parseCpus, parseMemory, parseResources, type ParsedResources, type ResourceAmounts } from "./resources";
