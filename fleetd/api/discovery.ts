/**
 * `GET /discovery`: a Google API discovery document describing the v1 API, as fleet served from
 * `schema/v1.json`. Like fleet's, its `rootUrl` is deliberately unusable: clients must know the endpoint.
 */

const str = { type: "string" };
const unitOption = { id: "UnitOption", type: "object", properties: { section: str, name: str, value: str } };
const unit = {
  id: "Unit",
  type: "object",
  properties: {
    name: str,
    options: { type: "array", items: { $ref: "UnitOption" } },
    desiredState: { type: "string", enum: ["inactive", "loaded", "launched"] },
    currentState: { type: "string", enum: ["inactive", "loaded", "launched"] },
    machineID: str,
  },
};
const machine = {
  id: "Machine",
  type: "object",
  properties: { id: str, primaryIP: str, metadata: { type: "object", additionalProperties: str } },
};
const unitState = {
  id: "UnitState",
  type: "object",
  properties: { name: str, hash: str, machineID: str, systemdLoadState: str, systemdActiveState: str, systemdSubState: str },
};
const page = (id: string, field: string, item: string): object => ({
  id,
  type: "object",
  properties: { [field]: { type: "array", items: { $ref: item } }, nextPageToken: str },
});
const tokenParam = { nextPageToken: { type: "string", location: "query" }, pageSize: { type: "integer", location: "query" } };

/** The discovery document for the API mounted at `basePath`. */
export function discoveryDocument(basePath: string): object {
  return {
    kind: "discovery#restDescription",
    discoveryVersion: "v1",
    id: "fleet:v1",
    name: "fleet",
    version: "v1",
    title: "fleet API",
    description: "Declaratively manage systemd units across a cluster (corefleet)",
    protocol: "rest",
    rootUrl: "$ENDPOINT/",
    servicePath: basePath.replace(/^\//, ""),
    batchPath: "batch",
    schemas: {
      Unit: unit,
      UnitOption: unitOption,
      UnitPage: page("UnitPage", "units", "Unit"),
      Machine: machine,
      MachinePage: page("MachinePage", "machines", "Machine"),
      UnitState: unitState,
      UnitStatePage: page("UnitStatePage", "states", "UnitState"),
    },
    resources: {
      Machines: {
        methods: {
          List: { id: "fleet.Machine.List", path: "machines", httpMethod: "GET", parameters: tokenParam, response: { $ref: "MachinePage" } },
        },
      },
      Units: {
        methods: {
          List: { id: "fleet.Unit.List", path: "units", httpMethod: "GET", parameters: tokenParam, response: { $ref: "UnitPage" } },
          Get: { id: "fleet.Unit.Get", path: "units/{unitName}", httpMethod: "GET", response: { $ref: "Unit" } },
          Set: { id: "fleet.Unit.Set", path: "units/{unitName}", httpMethod: "PUT", request: { $ref: "Unit" } },
          Delete: { id: "fleet.Unit.Delete", path: "units/{unitName}", httpMethod: "DELETE" },
        },
      },
      UnitState: {
        methods: {
          List: {
            id: "fleet.UnitState.List",
            path: "state",
            httpMethod: "GET",
            parameters: { ...tokenParam, machineID: { type: "string", location: "query" }, unitName: { type: "string", location: "query" } },
            response: { $ref: "UnitStatePage" },
          },
        },
      },
    },
  };
}
